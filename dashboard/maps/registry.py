"""The map's layers, declared once: the toggles, the legends and the freshness badges are generated from this list.

Each :class:`MapLayer` says what it is called, which stored layers it shows (for its freshness badge), whether it is
on by default, and how to build its deck.gl layers and its legend for a :class:`MapView`. Building a layer takes
only view-sized data from :class:`dashboard.services.Services`: aggregates above the community level, detail for one
unit, and buildings as vector tiles that the browser asks for by itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Callable
from urllib.parse import urlencode

import numpy as np
import pandas as pd
from deckgl_dash.binary import binary_data

from dashboard.i18n import both, indicator_name, pick, t, unit_of_measure
from dashboard.maps import deck, sources
from dashboard.maps.routes import colouring_version, scope_rows, tile_properties, unit_footprints
from dashboard.maps.tiles import INDEX_ZOOM, MIN_ZOOM
from dashboard.theme import PALETTE, STATE_COLORS, STATE_LABELS, rgba
from metrics.registry import INDICATORS
from metrics.spec import NEUTRAL, NO_DATA, SEVERITIES, STATE_RANK, STATES, named_window

MAX_ORDER_POINTS = 100_000
"""Above this many orders in view, the points layer steps aside for the hexagons (2 MB budget per interaction)."""
HEX_RAMP = ["#fde68a", "#fbbf24", "#f59e0b", "#ea580c", "#c2410c", "#9a3412"]


@dataclass(frozen=True)
class LegendEntry:
    color: str
    label: str
    label_zh: str


@dataclass
class MapView:
    """Everything a layer needs to draw one view."""
    services: object  # dashboard.services.Services
    data: object  # dashboard.services.UnitView
    indicator: str
    window: str
    building_color: str = "use"
    building: str | None = None  # the building whose card is open
    lang: str = "en"
    notes: list[str] = field(default_factory=list)  # what a layer chose not to draw, and why
    scale: float = 1.0  # the screen's size against 1920×1080 (dashboard.view.screen_scale): pixel sizes follow it

    @property
    def city(self):
        return self.services.city()

    @property
    def child_level(self) -> str:
        return self.data.child_level or self.data.level

    @property
    def period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        window = named_window(self.window, self.city.as_of)
        return window.start, window.end


@dataclass(frozen=True)
class MapLayer:
    id: str
    title: str
    title_zh: str
    sources: tuple[str, ...]
    default: bool
    build: Callable[[MapView], list[dict]]
    legend: Callable[[MapView], list[LegendEntry]]
    description: str = ""
    description_zh: str = ""  # the toggle's tooltip in Chinese


def _state_legend(states) -> list[LegendEntry]:
    return [LegendEntry(STATE_COLORS[s], *STATE_LABELS[s]) for s in
            (*reversed(STATES), NEUTRAL, NO_DATA) if s in states]


# --- base map ------------------------------------------------------------------------------------------------------

BASEMAP_URL_VARIABLE = "CITYTWIN_BASEMAP_URL"
"""An XYZ raster tile URL ({z}/{x}/{y}) of a tile server the deployment has on its own network."""
BASEMAP_PMTILES_VARIABLE = "CITYTWIN_BASEMAP_PMTILES"
"""A PMTiles file of vector tiles the city made itself (docs/basemap.md), served by this server. With neither, the
base map is drawn from the city's own data only."""
LAND_COLOR = "#16233a"
ROAD_COLOR = "#3b4f6e"
WATER_COLOR = PALETTE["bg"]
PARK_COLOR = "#17302f"
BASE_BUILDING_COLOR = "#1e2c45"
BOUNDARY_COLOR = PALETTE["muted"]
# The vector base map's layers, by the names of the usual schemas (Protomaps basemaps, OpenMapTiles as planetiler
# and tippecanoe users name them): dark, low-contrast fills, so that the data stays in front. A layer of another
# name is drawn as land (polygons) or road (lines).
BASEMAP_FILLS = {
    **dict.fromkeys(("earth", "land"), LAND_COLOR),
    **dict.fromkeys(("water", "ocean", "waterway"), WATER_COLOR),
    **dict.fromkeys(("park", "landcover", "landuse", "natural"), PARK_COLOR),
    **dict.fromkeys(("building", "buildings"), BASE_BUILDING_COLOR),
}
BASEMAP_LINES = {
    **dict.fromkeys(("water", "waterway"), "#1d3552"),
    **dict.fromkeys(("boundary", "boundaries"), BOUNDARY_COLOR),
}


def basemap_tile_url(version: str) -> str:
    return "/basemap/{z}/{x}/{y}.mvt?" + urlencode({"v": version})


def _base(view: MapView) -> list[dict]:
    layers = []
    settings = view.services.settings
    vector = view.services.basemap()
    raster = settings.basemap_url
    if vector is not None:
        layers.append(deck.vector_basemap_layer(
            "basemap-vector", basemap_tile_url(vector.version), vector.min_zoom, vector.max_zoom, vector.bounds,
            {name: rgba(color) for name, color in BASEMAP_FILLS.items()},
            {name: rgba(color, 200) for name, color in BASEMAP_LINES.items()},
            rgba(LAND_COLOR), rgba(ROAD_COLOR, 220)))
    elif raster:
        layers.append({"@@type": "TileLayer", "id": "basemap-tiles", "data": raster, "minZoom": 0, "maxZoom": 19,
                       "tileSize": 256, "pickable": False})
    drawn_land = vector is None and not raster
    districts = view.services.base_geojson()
    # Over another base map the districts stay as outlines, for orientation.
    layers.append(deck.land_layer("base-land", districts, rgba(LAND_COLOR, 255 if drawn_land else 0),
                                  rgba(PALETTE["muted"], 90)))
    if drawn_land and "roads" in view.city.layers:
        layers.append(deck.roads_layer("base-roads", view.services.memo(
            ("base_roads", view.data.code), lambda: sources.roads_geojson(view.city, view.data.level,
                                                                          view.data.bounds)),
            rgba(ROAD_COLOR, 200)))
    return layers


def _base_legend(view: MapView) -> list[LegendEntry]:
    if view.services.basemap() is not None:
        return [LegendEntry(LAND_COLOR, *both("legend.basemap_land")),
                LegendEntry(ROAD_COLOR, *both("legend.basemap_roads")), LegendEntry(WATER_COLOR, *both("legend.water")),
                LegendEntry(PARK_COLOR, *both("legend.green"))]
    return [LegendEntry(LAND_COLOR, *both("legend.land")), LegendEntry(ROAD_COLOR, *both("legend.roads")),
            LegendEntry(WATER_COLOR, *both("legend.water"))]


# --- admin units ---------------------------------------------------------------------------------------------------

def _units(view: MapView) -> list[dict]:
    data = view.data
    selected = INDICATORS[view.indicator]
    name, unit = indicator_name(selected, view.lang), unit_of_measure(selected.unit, view.lang)
    state_by_code = dict(zip(data.children["code"], data.children["state"]))
    value_by_code = {code: f"{name}: {selected.format_value(value)} {unit}"
                     for code, value in zip(data.children["code"], data.children["value"])}
    # A grid cell has no children: it is drawn itself, faintly, so that its buildings stand out.
    fill_alpha = 150 if data.child_level else 40
    return [deck.choropleth_layer("units", data.children_geojson, state_by_code, value_by_code, selected=data.code,
                                  fill_alpha=fill_alpha),
            deck.label_layer("unit-labels", data.children_geojson, view.lang)]


def _units_legend(view: MapView) -> list[LegendEntry]:
    return _state_legend(set(view.data.children["state"]))


# --- buildings -----------------------------------------------------------------------------------------------------

def building_tile_url(color: str, indicator: str, window: str, version: str = "") -> str:
    """The tiles' URL template; ``version`` (routes.colouring_version) changes when the generation recoloured the
    buildings, so the map asks for new tiles then and only then."""
    return "/tiles/buildings/{z}/{x}/{y}.pbf?" + urlencode({"color": color, "indicator": indicator,
                                                            "window": window, "v": version})


UNIT_BUILDING_LEVELS = ("community", "grid")
MAX_UNIT_BUILDINGS = 20_000
"""A community's or a grid cell's buildings (855 in the bench's community at the city scale, about 0.1 MB) come
with the page as one layer, drawn in one frame; a unit with more, and the levels above, get vector tiles from zoom
:data:`MIN_ZOOM` as the user zooms in. The layer goes out again with every redraw of the map (a restyle, a new
generation in live mode), where a tile layer's URL stays the same while the colours do."""


def _buildings(view: MapView) -> list[dict]:
    if "buildings" not in view.city.layers or not len(view.city["buildings"]):
        view.notes.append(t("layers.no_buildings", view.lang))
        return []
    gen = view.services.generation()
    if _shows_unit_buildings(gen, view.data.code):
        return [_unit_buildings(view, gen)]
    if deck.fit_view(view.data.bounds, **deck.MAP_PAGE_INSETS)["zoom"] + np.log2(view.scale) < MIN_ZOOM:
        # The map opens this unit further out than the tiles are drawn: the legend alone would promise buildings.
        view.notes.append(t("layers.buildings_from_zoom", view.lang, zoom=MIN_ZOOM))
    version = colouring_version(gen, view.building_color, view.indicator, view.window)
    return [deck.building_tiles_layer("buildings", building_tile_url(view.building_color, view.indicator,
                                                                     view.window, version), MIN_ZOOM, INDEX_ZOOM,
                                        selected=view.building)]


def _shows_unit_buildings(gen, code: str) -> bool:
    units = gen.city.units
    return (code in units.index and units.at[code, "level"] in UNIT_BUILDING_LEVELS
            and len(scope_rows(gen, code)) <= MAX_UNIT_BUILDINGS)


def _unit_buildings(view: MapView, gen) -> dict:
    code = view.data.code
    shapes = unit_footprints(gen, code)
    props = tile_properties(gen, view.building_color, view.indicator, view.window, scope=code)
    ids = props["building_id"]
    uses = pd.Series(props["use"]).map(lambda use: pick(*sources.USE_NAMES.get(use, (use, use)), view.lang))
    heights = np.nan_to_num(np.asarray(props["height"], dtype=float))  # a building of unknown height lies flat
    tips = [f"{building} · {use} · {height:g} m" for building, use, height in zip(ids, uses, heights)]
    selected = np.flatnonzero(ids[shapes.owner] == view.building) if view.building else []
    return deck.unit_buildings_layer("buildings", shapes, np.column_stack([props["r"], props["g"], props["b"]]),
                                     heights, [tips[owner] for owner in shapes.owner],
                                     selected=int(selected[0]) if len(selected) else None)


def unit_building_at(gen, code, index) -> str | None:
    """The building drawn as polygon ``index`` of unit ``code``'s buildings layer (a click on it comes back as
    that index, a binary layer having no feature to send), or None when there is no such polygon."""
    if not isinstance(code, str) or isinstance(index, bool) or not isinstance(index, int):
        return None
    if not _shows_unit_buildings(gen, code):
        return None
    shapes = unit_footprints(gen, code)
    if not 0 <= index < len(shapes.owner):
        return None
    return str(gen.city["buildings"]["building_id"].iloc[scope_rows(gen, code)[shapes.owner[index]]])


def _buildings_legend(view: MapView) -> list[LegendEntry]:
    if view.building_color == "use":
        return [LegendEntry(color, *sources.USE_NAMES.get(use, (use, use))) for use, color in
                sources.USE_COLORS.items()]
    if view.building_color == "alarms":
        return [LegendEntry(STATE_COLORS["critical"], *both("legend.alarm_critical")),
                LegendEntry(STATE_COLORS["warning"], *both("legend.alarm_open")),
                LegendEntry(STATE_COLORS["watch"], *both("legend.sensor_down")),
                LegendEntry("#3a4a5e", *both("legend.no_alarm"))]
    return _state_legend(STATE_COLORS)


# --- sensors -------------------------------------------------------------------------------------------------------

def _sensors(view: MapView) -> list[dict]:
    if "sensors" not in view.city.layers:
        return []
    states = view.services.sensor_states()
    resolution = sources.SENSOR_CLUSTER_RESOLUTION.get(view.data.level)
    if resolution is None:
        points = sources.sensor_points(view.city, states, view.data.code)
        return [deck.points_layer("sensors", points)]
    cells = sources.sensor_cells(states, resolution, view.services.memo("sensor_cells", dict))
    clusters = sources.sensor_clusters(view.city, states, view.data.code, resolution, cells)
    return [deck.points_layer("sensors", clusters), deck.count_labels_layer("sensor-counts", clusters)]


def _sensors_legend(view: MapView) -> list[LegendEntry]:
    return _state_legend(("critical", "warning", "watch", "good"))


# --- orders --------------------------------------------------------------------------------------------------------

def _hexes(view: MapView) -> pd.DataFrame:
    start, end = view.period
    resolution = sources.HEX_RESOLUTION[view.data.level]
    key = ("order_hexes", view.data.code, view.window, resolution)
    cells = view.services.order_cells()
    return view.services.memo(key, lambda: sources.order_hexes(view.city, cells, view.data.code, start, end,
                                                                resolution))


def _ramp_color(counts: np.ndarray) -> list[list[int]]:
    if not len(counts):
        return []
    top = max(float(np.quantile(counts, 0.98)), 1.0)
    steps = np.minimum((counts / top * (len(HEX_RAMP) - 1)).round().astype(int), len(HEX_RAMP) - 1)
    return [rgba(HEX_RAMP[s], 200) for s in steps]


def _order_hexes(view: MapView) -> list[dict]:
    if "orders" not in view.city.layers:
        return []
    hexes = _hexes(view)
    colors = _ramp_color(hexes["count"].to_numpy())
    data = [{"hex": h, "count": int(c), "fill": f, "tip_name": f"{int(c):,} orders", "tip_name_zh": f"{int(c):,} 件",
             "tip_value": h} for h, c, f in zip(hexes["hex"], hexes["count"], colors)]
    return [deck.hexagon_layer("order-hexes", data, int(hexes["count"].max()) if len(hexes) else 0)]


def _order_hexes_legend(view: MapView) -> list[LegendEntry]:
    if "orders" not in view.city.layers:
        return []
    counts = _hexes(view)["count"]
    top = int(max(np.quantile(counts, 0.98), 1)) if len(counts) else 0
    return [LegendEntry(HEX_RAMP[0], *both("legend.few_orders")),
            LegendEntry(HEX_RAMP[-1], *both("legend.orders_per_cell", count=f"{top:,}"))]


HEATMAP_POINTS = 10_000
"""At most this many weighted points feed the heatmap: the orders themselves when the view has no more, else their
counts per H3 cell of the finest resolution that stays under it."""


def heatmap_points(view: MapView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Longitudes, latitudes and weights of the heatmap's input for ``view``.

    The heatmap draws a kernel of fixed pixels around each point. Fed the centres of the ranking's H3 cells (the
    hexagon layer's resolution for the level), a street, community or grid cell showed a lattice of separate dots:
    at their zoom those centres lie 75 to 300 px apart, the kernel 40. The orders themselves (a unit in view has a
    few thousand at most) or, for a city or a district, cells fine enough to lie a few pixels apart make a smooth
    density."""
    start, end = view.period
    points = view.services.memo(("order_points", view.data.code, view.window),
                                lambda: sources.order_points(view.city, view.data.code, start, end))
    if len(points.lon) <= HEATMAP_POINTS:
        return points.lon, points.lat, np.ones(len(points.lon), dtype=int)
    cells = view.services.order_cells()
    for resolution in range(sources.BASE_HEX_RESOLUTION, 4, -1):
        hexes = view.services.memo(("order_hexes", view.data.code, view.window, resolution),
                                   lambda: sources.order_hexes(view.city, cells, view.data.code, start, end,
                                                               resolution))
        if len(hexes) <= HEATMAP_POINTS:
            break
    return hexes["lon"].to_numpy(), hexes["lat"].to_numpy(), hexes["count"].to_numpy()


HEATMAP_RADIUS = (40, 240)
"""The heatmap kernel's radius in pixels, least and most (see :func:`heatmap_radius`)."""


def heatmap_radius(view: MapView, lon: np.ndarray, lat: np.ndarray) -> int:
    """The kernel's radius in pixels: four times the typical distance between neighbouring points at the zoom the map
    opens the unit with (a kernel density's bandwidth follows the data's spacing), within :data:`HEATMAP_RADIUS`.
    A street's few hundred orders lie 20-40 px apart: a kernel of twice that still showed them as blotches."""
    from scipy.spatial import cKDTree

    least, most = HEATMAP_RADIUS
    if len(lon) < 2:
        return least
    camera = deck.fit_view(view.data.bounds, **deck.MAP_PAGE_INSETS)
    scale = deck.TILE_SIZE * 2 ** camera["zoom"]  # Web Mercator, in the map's pixels at that zoom
    x = (lon + 180.0) / 360.0 * scale
    y = (1.0 - np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) / np.pi) / 2.0 * scale
    pixels = np.unique(np.column_stack([x, y]).round(1), axis=0)
    if len(pixels) < 2:
        return least
    distances, _ = cKDTree(pixels).query(pixels, k=2)
    return int(np.clip(4 * np.median(distances[:, 1]), least, most))


def _order_heatmap(view: MapView) -> list[dict]:
    if "orders" not in view.city.layers:
        return []
    lon, lat, weight = heatmap_points(view)
    cells = [{"position": [round(float(x), 6), round(float(y), 6)], "count": int(w)}
             for x, y, w in zip(lon, lat, weight)]
    return [deck.heatmap_layer("order-heatmap", cells, radius=heatmap_radius(view, np.asarray(lon, float),
                                                                           np.asarray(lat, float)))]


def _order_points(view: MapView) -> list[dict]:
    if "orders" not in view.city.layers:
        return []
    start, end = view.period
    points = view.services.memo(("order_points", view.data.code, view.window),
                                lambda: sources.order_points(view.city, view.data.code, start, end))
    if len(points.lon) > MAX_ORDER_POINTS:
        view.notes.append(t("layers.too_many_points", view.lang, count=f"{len(points.lon):,}"))
        return []
    open_color = np.array(rgba(STATE_COLORS["warning"], 230), dtype=np.uint8)
    closed_color = np.array(rgba(STATE_COLORS["neutral"], 150), dtype=np.uint8)
    colors = np.where(points.open[:, None], open_color, closed_color).astype(np.uint8)
    data = binary_data(len(points.lon), {
        "getPosition": np.column_stack([points.lon, points.lat]).astype(np.float32),
        "getFillColor": colors,
    })
    return [{"@@type": "ScatterplotLayer", "id": "order-points", "data": data, "getRadius": 3,
             "radiusUnits": "pixels", "stroked": False, "pickable": False}]


def _order_points_legend(view: MapView) -> list[LegendEntry]:
    return [LegendEntry(STATE_COLORS["warning"], *both("legend.open")),
            LegendEntry(STATE_COLORS["neutral"], *both("legend.closed"))]


# --- hotspots ------------------------------------------------------------------------------------------------------

def _hotspots(view: MapView) -> list[dict]:
    if "orders" not in view.city.layers:
        return []
    found = view.services.hotspots(view.window)
    city = view.city
    level = view.data.level
    if level != city.hierarchy.columns[0]:  # below the top unit: the hotspots inside the unit in view
        found = found[found["grid_code"].map(city.hierarchy[level]) == view.data.code]
    points = []
    for row in found.itertuples():
        point = city.units.geometry[row.grid_code].representative_point()
        points.append({"position": [round(point.x, 6), round(point.y, 6)], "radius": 14,
                       "fill": rgba(STATE_COLORS["critical"], 200), "tip_name": escape(str(row.event_name)),
                       "tip_name_zh": escape(str(row.place)), "tip_value": f"{int(row.orders)} orders, "
                                                                   f"{row.expected:.1f} expected"})
    return [deck.points_layer("hotspots", points)]


def _hotspots_legend(view: MapView) -> list[LegendEntry]:
    return [LegendEntry(STATE_COLORS["critical"], *both("legend.hotspot"))]


# --- alerts ----------------------------------------------------------------------------------------------------------

ALERT_RADIUS = {"critical": 16, "warning": 12, "watch": 9}


def _alerts(view: MapView) -> list[dict]:
    """Open alerts with a point, pinned where they are, in the unit in view (a grid cell's alert shows from the
    city down), sized and coloured by severity; the most severe drawn last, on top."""
    open_alerts = view.services.open_alerts()  # read once per generation, not per draw
    shown = (open_alerts["lon"].notna() & open_alerts["lat"].notna()).to_numpy()
    if view.data.level != view.city.hierarchy.columns[0] and len(open_alerts):
        places = open_alerts["unit_code"].where(open_alerts["unit_code"].notna(), open_alerts["grid_code"])
        shown = shown & ((view.services.open_alert_units(view.data.level) == view.data.code)
                         | (places.to_numpy() == view.data.code))
    open_alerts = open_alerts[shown]
    rank = open_alerts["severity"].map(STATE_RANK).astype("float64")
    open_alerts = open_alerts.assign(rank=rank).sort_values("rank")
    points = [{"position": [round(a.lon, 6), round(a.lat, 6)], "fill": rgba(STATE_COLORS[a.severity], 240),
               "radius": ALERT_RADIUS.get(a.severity, 9), "alert_id": a.alert_id, "severity": a.severity,
               "tip_name": escape(f"{a.alert_id} · {pick(a.title, a.title_zh, view.lang)}"), "tip_name_zh": "",
               "tip_value": escape(f"{t(f'alerts.status.{a.status}', view.lang)} · "
                                   f"{pick(a.evidence, a.evidence_zh, view.lang)}")}
              for a in open_alerts.itertuples()]
    return [deck.points_layer("alerts", points)] if points else []


def _alerts_legend(view: MapView) -> list[LegendEntry]:
    return _state_legend(SEVERITIES)


# --- incidents, enterprises, cameras, patrols ------------------------------------------------------------------------

def _mark_layer(layer_id: str, stored: str, prepare: Callable[[MapView], pd.DataFrame],
                classes: dict[str, sources.MarkClass], noun: tuple[str, str], by_window: bool):
    """The build and legend of a point layer of marks (sources.MarkClass): one by one from the community level
    down, H3 clusters above it (as the sensors), never more than a unit's records through a callback. A city
    without the stored layer has neither."""

    def build(view: MapView) -> list[dict]:
        if stored not in view.city.layers:
            return []
        key = (layer_id, view.data.code) + ((view.window,) if by_window else ())
        marks = view.services.memo(key, lambda: prepare(view))

        def drawn() -> list[dict]:
            resolution = sources.SENSOR_CLUSTER_RESOLUTION.get(view.data.level)
            if resolution is None:
                return [deck.points_layer(layer_id, sources.mark_points(marks, classes, view.lang))]
            clusters = sources.mark_clusters(marks, classes, resolution, noun, view.lang)
            return [deck.points_layer(layer_id, clusters), deck.count_labels_layer(f"{layer_id}-counts", clusters)]

        # Clustering 380,000 cameras takes seconds at the city scale: drawn once per generation and language (and
        # carried over while the layer is unchanged, services.MEMO_LAYERS, for the layers that do not follow the
        # clock).
        return view.services.memo(key + ("drawn", view.lang), drawn)

    def legend(view: MapView) -> list[LegendEntry]:
        if stored not in view.city.layers:
            return []
        return [LegendEntry(c.color, c.label, c.label_zh) for c in classes.values()]

    return build, legend


_incidents, _incidents_legend = _mark_layer(
    "incidents", "incidents", lambda view: sources.incident_marks(view.city, view.data.code, *view.period),
    sources.INCIDENT_CLASSES, ("incidents", "起事件"), by_window=True)
_enterprises, _enterprises_legend = _mark_layer(
    "enterprises", "enterprises", lambda view: sources.enterprise_marks(view.city, view.data.code),
    sources.ENTERPRISE_CLASSES, ("enterprises", "家企业"), by_window=False)
_cameras, _cameras_legend = _mark_layer(
    "cameras", "cameras", lambda view: sources.camera_marks(view.city, view.data.code),
    sources.CAMERA_CLASSES, ("cameras", "路视频"), by_window=False)
_patrols, _patrols_legend = _mark_layer(
    "patrols", "patrols", lambda view: sources.patrol_marks(
        view.city, view.data.code, *view.period, view.services.memo("grid_points",
                                                                    lambda: sources.grid_points(view.city))),
    sources.PATROL_CLASSES, ("patrols", "次巡查"), by_window=True)


# In drawing order (the toggles' order too): what needs attention most, incidents and alerts, is drawn last, on top.
MAP_LAYERS: dict[str, MapLayer] = {layer.id: layer for layer in (
    MapLayer("base", "Base map", "底图", ("units",), True, _base, _base_legend,
             "Land and water from the city's own boundaries, district outlines for orientation; instead, the city's "
             f"own vector base map if {BASEMAP_PMTILES_VARIABLE} names a PMTiles file (served by this server), or a "
             f"deployment's own raster tile server if {BASEMAP_URL_VARIABLE} names one. Nothing is fetched from the "
             "internet.",
             description_zh="城市自有边界绘制的陆地和水面，叠加区界便于定位；若 "
             f"{BASEMAP_PMTILES_VARIABLE} 指定了 PMTiles 文件，则改用城市自有的矢量底图（由本服务器提供）；若 "
             f"{BASEMAP_URL_VARIABLE} 指定了部署方自有的栅格瓦片服务器，则用其底图。不从互联网获取任何内容。"),
    MapLayer("units", "Admin units by indicator", "行政区划指标", ("units",), True, _units, _units_legend,
             "The children of the unit in view, coloured by the selected indicator's state.",
             description_zh="当前单元的下级单元，按所选指标的状态着色。"),
    MapLayer("buildings", "3D buildings", "三维建筑", ("buildings", "sensors", "alarms"), True, _buildings,
             _buildings_legend, "Extruded by height: a community's or grid cell's own buildings, and above that "
                                f"level, all buildings in view from zoom {MIN_ZOOM}; coloured by use, by the "
                                "indicator's state in their grid cell, or by open alarms of their sensors.",
             description_zh=f"按高度拉伸：社区、网格显示其所属建筑；更高层级在缩放至 {MIN_ZOOM} 级后显示视野内全部建筑；"
                            "按用途、所在网格的指标状态或其设备的在途告警着色。"),
    MapLayer("sensors", "IoT sensors", "物联感知", ("sensors", "alarms"), False, _sensors, _sensors_legend,
             "By state at the data's now; clustered above the community level, showing the worst state inside.",
             description_zh="按数据时点的状态显示；社区以上层级聚合，显示其中最差的状态。"),
    MapLayer("order_hexes", "Orders · H3 hexagons", "工单 · 六边形", ("orders",), False, _order_hexes,
             _order_hexes_legend, "Orders received in the window, counted per H3 cell.",
             description_zh="窗口期内受理的工单，按 H3 六边形计数。"),
    MapLayer("order_heatmap", "Orders · heatmap", "工单 · 热力图", ("orders",), False, _order_heatmap,
             lambda view: [LegendEntry(HEX_RAMP[-1], *both("legend.dense"))], "Density of the orders received.",
             description_zh="受理工单的密度。"),
    MapLayer("order_points", "Orders · points", "工单 · 点位", ("orders",), False, _order_points,
             _order_points_legend, f"Each order received in the window (up to {MAX_ORDER_POINTS:,}).",
             description_zh=f"窗口期内受理的每一件工单（最多 {MAX_ORDER_POINTS:,} 件）。"),
    MapLayer("hotspots", "Hotspots", "热点", ("orders",), False, _hotspots, _hotspots_legend,
             "Recurring hotspots found by the space-time scan (see the Hotspots page).",
             description_zh="时空扫描发现的反复出现的热点（见热点页面）。"),
    MapLayer("enterprises", "Enterprises · work safety", "安全生产企业", ("enterprises",), False, _enterprises,
             _enterprises_legend, "Enterprises on the work-safety register, by risk class; clustered above the "
                                  "community level.",
             description_zh="安全生产监管名录中的企业，按风险等级显示；社区以上层级聚合。"),
    MapLayer("cameras", "Video cameras", "视频监控", ("cameras",), False, _cameras, _cameras_legend,
             "Public video cameras by status, AI video analysis apart; clustered above the community level.",
             description_zh="公共视频摄像头按状态显示，具备AI视频分析的单独标出；社区以上层级聚合。"),
    MapLayer("patrols", "Grid patrols", "网格巡查", ("patrols", "grid_workers"), False, _patrols, _patrols_legend,
             "Grid workers' patrols in the window, per grid cell, with the issues they found; cells not patrolled "
             "stand out. Clustered above the community level (the number: patrols).",
             description_zh="窗口期内网格员的巡查，按网格显示并附发现的问题；未巡查的网格突出显示。社区以上层级聚合（数字为巡查次数）。"),
    MapLayer("incidents", "Emergency incidents", "突发事件", ("incidents",), False, _incidents, _incidents_legend,
             "Emergencies reported in the window; open ones by their level, resolved ones grey. Clustered above "
             "the community level, showing the worst inside.",
             description_zh="窗口期内上报的突发事件；未处置完毕的按等级显示，已处置的为灰色。社区以上层级聚合，显示其中最严重的。"),
    MapLayer("alerts", "Alerts", "告警", ("readings", "orders"), True, _alerts, _alerts_legend,
             "Open alerts of the rules (see the Alerts page), pinned at their sensor or unit, by severity.",
             description_zh="规则产生的未关闭告警（见告警页面），标注在其设备或单元处，按严重程度显示。"),
)}
DEFAULT_LAYERS = tuple(layer.id for layer in MAP_LAYERS.values() if layer.default)


def normalise_layers(value: str | None) -> tuple[str, ...]:
    """Layer ids from a URL's ``layers=a,b``: known ids in registry order; the defaults when missing."""
    if value is None:
        return DEFAULT_LAYERS
    wanted = {v for v in value.split(",") if v}
    return tuple(layer_id for layer_id in MAP_LAYERS if layer_id in wanted)


def build_layers(view: MapView, layer_ids) -> list[dict]:
    """The deck.gl layers of ``layer_ids``, in that order but text last, sized for the view's screen."""
    layers = []
    for layer_id in layer_ids:
        layers += MAP_LAYERS[layer_id].build(view)
    return deck.for_screen(text_last(layers), view.scale)


def text_last(layers: list[dict]) -> list[dict]:
    """``layers`` with all text drawn last, each in its order: a name or a count is never hidden under another
    layer's markers (alert markers sit on the units' label points)."""
    text = [layer for layer in layers if layer.get("@@type") == "TextLayer"]
    return [layer for layer in layers if layer.get("@@type") != "TextLayer"] + text
