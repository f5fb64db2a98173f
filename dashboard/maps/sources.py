"""What the map layers draw, prepared from a loaded :class:`~layers.city.City` as small, view-sized data.

Pure functions of the city and the view; :class:`dashboard.services.Services` memoises them on the city's version.
Nothing here returns city-scale geometry: buildings go out as vector tiles (``dashboard/maps/tiles.py``) or, for
one community or grid cell, as one binary polygon layer (:func:`footprints`), orders as
H3 counts or, for one unit, as binary columns, sensors as clusters until a unit is small enough to show them one by
one.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

import h3
import h3.api.numpy_int as h3_int
import numpy as np
import pandas as pd
import shapely
import shapely.geometry

from dashboard.theme import PALETTE, STATE_COLORS, rgba
from metrics.spec import STATE_RANK
from layers.city import City
from layers.reference import (BUILDING_USES, INCIDENT_KINDS, INCIDENT_SEVERITIES, INDUSTRIES, RISK_CLASSES,
                              SENSOR_KINDS)

# H3 resolution of order bins by the level whose children the map shows (cells of ~5 km² at the city, ~0.1 km² in
# a street, ~0.015 km² in a community or grid cell).
HEX_RESOLUTION = {"province": 6, "city": 7, "district": 8, "street": 9, "community": 10, "grid": 10}
BASE_HEX_RESOLUTION = 10
SENSOR_CLUSTER_RESOLUTION = {"province": 5, "city": 6, "district": 7, "street": 8}
"""Sensors are drawn one by one from the community level down; above it, in H3 clusters of this resolution."""
RANKED_STATES = {rank: state for state, rank in STATE_RANK.items() if state not in ("no_data",)}

USE_COLORS = {
    "residential": "#4f8fc0", "commercial": "#d9a441", "office": "#8f7ad6", "industrial": "#8a8f98",
    "public": "#4fb58f", "mixed": "#c77a9b",
}
USE_NAMES = {code: (en, zh) for code, en, zh, *_ in BUILDING_USES}
SENSOR_KIND_NAMES = {code: (en, zh) for code, en, zh, *_ in SENSOR_KINDS}


def unit_grid_mask(city: City, code: str, frame: pd.DataFrame) -> np.ndarray:
    """Rows of a layer (with ``grid_index``) that lie in a unit."""
    level = city.units.at[code, "level"]
    if level == city.hierarchy.columns[0]:  # the top unit (the city, or a province store's province) holds all
        return np.ones(len(frame), dtype=bool)
    grids = city.hierarchy.index[city.hierarchy[level] == code]
    wanted = np.zeros(len(city.hierarchy) + 1, dtype=bool)
    wanted[city.hierarchy.index.get_indexer(grids)] = True
    index = frame["grid_index"].to_numpy()
    return wanted[np.where(index >= 0, index, len(city.hierarchy))]


# --- sensors ----------------------------------------------------------------------------------------------------------

def sensor_states(city: City) -> pd.DataFrame:
    """Every sensor with its state at the data's "now": critical/warning while an alarm of that severity is open,
    watch when offline or faulty, good otherwise; and the open alarm's message."""
    sensors = city["sensors"]
    alarms = city["alarms"] if "alarms" in city.layers else pd.DataFrame(columns=["sensor_id", "severity"])
    now = city.sensors_as_of
    open_alarms = alarms[(alarms["raised_at"] <= now)
                         & (alarms["cleared_at"].isna() | (alarms["cleared_at"] > now))]
    worst = (open_alarms.assign(rank=open_alarms["severity"].map(STATE_RANK).fillna(3))
             .sort_values("rank").groupby("sensor_id").last())
    state = pd.Series("good", index=sensors.index)
    state[sensors["status"].isin(["offline", "fault"]).to_numpy()] = "watch"
    alarm_rank = sensors["sensor_id"].map(worst["rank"])
    state[alarm_rank.notna().to_numpy()] = alarm_rank.dropna().map(RANKED_STATES).to_numpy()
    return sensors.assign(state=state.to_numpy(),
                          alarm=sensors["sensor_id"].map(worst["message"]).fillna("").to_numpy())


def sensor_points(city: City, states: pd.DataFrame, code: str) -> list[dict]:
    rows = states[unit_grid_mask(city, code, states)]
    return [{"position": [round(r.lon, 6), round(r.lat, 6)], "fill": rgba(STATE_COLORS[r.state], 230),
             "radius": 6 if r.state == "good" else 9, "sensor_id": r.sensor_id, "kind": r.kind, "state": r.state,
             "tip_name": escape(SENSOR_KIND_NAMES.get(r.kind, (r.kind, r.kind))[0]),
             "tip_name_zh": escape(str(r.sensor_id)),
             "tip_value": escape(f"{r.state}{' · ' + r.alarm if r.alarm else ''}")}
            for r in rows.itertuples()]


def sensor_clusters(city: City, states: pd.DataFrame, code: str, resolution: int,
                    cells: np.ndarray | None = None) -> list[dict]:
    """Sensors of a unit binned into H3 cells; each cluster shows its count and the worst state inside. ``cells``:
    every sensor's cell at ``resolution``, in ``states``' order, when the caller kept them (:func:`sensor_cells`)."""
    mask = unit_grid_mask(city, code, states)
    rows = states[mask]
    if not len(rows):
        return []
    cells = cells[mask] if cells is not None else _cells(rows["lat"].to_numpy(), rows["lon"].to_numpy(), resolution)
    rank = rows["state"].map(STATE_RANK).to_numpy(dtype=float)
    # Per cell, in the cells' order: how many sensors, the worst state, how many in alarm (warning or worse).
    unique, inverse = np.unique(cells, return_inverse=True)
    count = np.bincount(inverse, minlength=len(unique))
    worst = np.full(len(unique), np.nan)
    np.fmax.at(worst, inverse, rank)
    alarms = np.bincount(inverse, weights=(rank >= 3).astype(float), minlength=len(unique)).astype(int)
    clusters = []
    for cell, n, worst_rank, in_alarm in zip(unique.tolist(), count.tolist(), worst.tolist(), alarms.tolist()):
        lat, lon = h3_int.cell_to_latlng(int(cell))
        state = RANKED_STATES[int(worst_rank)]
        clusters.append({"position": [round(lon, 6), round(lat, 6)], "count": n,
                         "fill": rgba(STATE_COLORS[state], 220), "state": state,
                         "radius": float(8 + 4 * np.log2(n + 1)),
                         "label": str(n),
                         "tip_name": f"{n} sensors", "tip_name_zh": f"{n} 个传感器",
                         "tip_value": f"worst: {state} · {in_alarm} in alarm"})
    return clusters


def sensor_cells(states: pd.DataFrame, resolution: int, kept: dict) -> np.ndarray:
    """Every sensor's H3 cell at ``resolution``, in ``states``' order. ``kept`` (a generation memo's dict, carried
    to the next generation) holds the last positions and their cells: the stream rewrites the sensors' rows every
    second, their positions stay, and finding 30,000 cells took 15 ms of every map page's redraw."""
    lat, lon = states["lat"].to_numpy(dtype=float), states["lon"].to_numpy(dtype=float)
    found = kept.get(resolution)
    if found is not None and np.array_equal(found[0], lat) and np.array_equal(found[1], lon):
        return found[2]
    cells = _cells(lat, lon, resolution)
    kept[resolution] = (lat, lon, cells)
    return cells


# --- orders -----------------------------------------------------------------------------------------------------------

def _cells(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    convert = h3_int.latlng_to_cell
    return np.fromiter((convert(a, b, resolution) for a, b in zip(lat.tolist(), lon.tolist())),
                       dtype=np.uint64, count=len(lat))


def order_cells(city: City) -> np.ndarray:
    """The H3 cell (resolution 10) of every order; coarser bins are their parents (one pass of h3 per order)."""
    orders = city["orders"]
    return _cells(orders["lat"].to_numpy(), orders["lon"].to_numpy(), BASE_HEX_RESOLUTION)


def order_hexes(city: City, base_cells: np.ndarray, code: str, start, end, resolution: int) -> pd.DataFrame:
    """Orders received in [start, end) in a unit, counted per H3 cell: columns hex (string id), count, lon, lat."""
    orders = city["orders"]
    received = orders["received_at"]
    mask = unit_grid_mask(city, code, orders) & (received >= start).to_numpy() & (received < end).to_numpy()
    cells, counts = np.unique(base_cells[mask], return_counts=True)
    if resolution != BASE_HEX_RESOLUTION and len(cells):
        parents = np.array([h3_int.cell_to_parent(int(c), resolution) for c in cells], dtype=np.uint64)
        frame = pd.DataFrame({"cell": parents, "count": counts}).groupby("cell", as_index=False)["count"].sum()
        cells, counts = frame["cell"].to_numpy(), frame["count"].to_numpy()
    centres = [h3_int.cell_to_latlng(int(c)) for c in cells]
    return pd.DataFrame({"hex": [h3.int_to_str(int(c)) for c in cells], "count": counts.astype(int),
                         "lat": [c[0] for c in centres], "lon": [c[1] for c in centres]})


@dataclass(frozen=True)
class OrderPoints:
    """Orders of a unit as columns (seconds since ``origin`` for the GPU time filter)."""
    lon: np.ndarray
    lat: np.ndarray
    seconds: np.ndarray
    open: np.ndarray
    origin: pd.Timestamp


def order_points(city: City, code: str, start, end) -> OrderPoints:
    orders = city["orders"]
    received = orders["received_at"]
    mask = unit_grid_mask(city, code, orders) & (received >= start).to_numpy() & (received < end).to_numpy()
    rows = orders[mask]
    seconds = (rows["received_at"] - start).dt.total_seconds().to_numpy(np.float32)
    return OrderPoints(lon=rows["lon"].to_numpy(np.float32), lat=rows["lat"].to_numpy(np.float32), seconds=seconds,
                       open=(rows["status"] != "closed").to_numpy(), origin=start)


# --- buildings --------------------------------------------------------------------------------------------------------

BUILDING_COLOR_MODES = ("use", "state", "alarms")


def building_colors(city: City, mode: str, grid_states: pd.Series | None = None,
                    states: pd.DataFrame | None = None) -> np.ndarray:
    """An (n, 3) uint8 colour per building: by use, by the state of its grid cell for the selected indicator, or
    red/amber where a sensor in the building has an open alarm."""
    buildings = city["buildings"]
    if mode == "use":
        return _lookup_colors(buildings["use"], {use: rgba(color)[:3] for use, color in USE_COLORS.items()},
                              rgba(PALETTE["muted"])[:3])
    if mode == "state":
        # Through the grid cells (thousands), not the buildings (hundreds of thousands): one state per cell.
        cell_states = pd.Series(city.hierarchy.index).map(grid_states).fillna("no_data")
        cell_colors = _lookup_colors(cell_states, {s: rgba(c)[:3] for s, c in STATE_COLORS.items()},
                                     rgba(STATE_COLORS["no_data"])[:3])
        # grid_index is -1 for a building outside every grid cell: it takes the extra "no data" row.
        cell_colors = np.vstack([cell_colors, np.array(rgba(STATE_COLORS["no_data"])[:3], dtype=np.uint8)])
        index = buildings["grid_index"].to_numpy()
        return cell_colors[np.where(index >= 0, index, len(cell_states))]
    if mode == "alarms":
        by_building = states[states["building_id"].notna() & (states["building_id"] != "")]
        worst = by_building.assign(rank=by_building["state"].map(STATE_RANK)).groupby("building_id")["rank"].max()
        rank = buildings["building_id"].map(worst).fillna(0).to_numpy()
        colors = np.tile(np.array(rgba("#3a4a5e")[:3], dtype=np.uint8), (len(buildings), 1))
        for state in ("watch", "warning", "critical"):
            colors[rank == STATE_RANK[state]] = rgba(STATE_COLORS[state])[:3]
        return colors
    raise ValueError(f"unknown building colour mode {mode!r}; expected one of {', '.join(BUILDING_COLOR_MODES)}")


@dataclass(frozen=True)
class Footprints:
    """Buildings' outlines as flat arrays, for one binary deck.gl polygon layer: each polygon's closed outer ring,
    counter-clockwise, as float32 longitude/latitude offsets from ``origin`` (float32 lon/lat alone would round to a
    metre; offsets from a point inside the unit keep millimetres). A multipolygon's parts are separate polygons:
    ``owner`` says whose each is (a position in the buildings given), and ``starts`` where each begins."""
    origin: tuple[float, float]
    offsets: np.ndarray  # (vertices, 2) float32
    starts: np.ndarray  # (polygons,) uint32: first vertex of each
    owner: np.ndarray  # (polygons,) int: the building of each

    @property
    def vertex_counts(self) -> np.ndarray:
        return np.diff(np.append(self.starts, len(self.offsets)))

    def per_vertex(self, per_building: np.ndarray) -> np.ndarray:
        """A value per building, repeated for each vertex of its polygons (a binary polygon layer takes its colours
        and heights per vertex)."""
        return np.repeat(np.asarray(per_building)[self.owner], self.vertex_counts, axis=0)


def footprints(geometry) -> Footprints:
    """The outer rings of ``geometry`` (polygons or multipolygons in EPSG:4326). Holes are left out: the layer draws
    a courtyard roofed over, as a 2.5D city model usually does."""
    geoms = shapely.orient_polygons(np.asarray(geometry), exterior_cw=False)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(parts), return_index=True)
    counts = np.bincount(ring, minlength=len(parts))
    starts = (np.cumsum(counts) - counts).astype(np.uint32)
    if len(coords):
        west, south = coords.min(axis=0)
        east, north = coords.max(axis=0)
        origin = (round((west + east) / 2, 6), round((south + north) / 2, 6))
    else:
        origin = (0.0, 0.0)
    offsets = (coords - np.array(origin)).astype(np.float32)
    return Footprints(origin=origin, offsets=offsets, starts=starts, owner=owner)


def _lookup_colors(values: pd.Series, palette: dict, default) -> np.ndarray:
    """(n, 3) uint8 colours of categorical values, through their codes (a Python loop over 640 k buildings took
    0.2–0.6 s)."""
    categories = list(palette)
    codes = pd.Categorical(values, categories=categories).codes  # -1 where a value is not in the palette
    table = np.array([palette[c] for c in categories] + [default], dtype=np.uint8)
    return table[np.where(codes >= 0, codes, len(categories))]


def alarm_points(city: City, code: str, start, end) -> OrderPoints:
    """Sensor alarms raised in [start, end) in a unit, at their sensor's place (``open``: still open at the end)."""
    if "alarms" not in city.layers or "sensors" not in city.layers:
        empty = np.array([], dtype=np.float32)
        return OrderPoints(empty, empty, empty, np.array([], dtype=bool), start)
    alarms = city["alarms"]
    raised = alarms["raised_at"]
    mask = unit_grid_mask(city, code, alarms) & (raised >= start).to_numpy() & (raised < end).to_numpy()
    rows = alarms[mask].merge(city["sensors"][["sensor_id", "lon", "lat"]], on="sensor_id", how="inner")
    seconds = (rows["raised_at"] - start).dt.total_seconds().to_numpy(np.float32)
    return OrderPoints(lon=rows["lon"].to_numpy(np.float32), lat=rows["lat"].to_numpy(np.float32), seconds=seconds,
                       open=(rows["cleared_at"].isna() | (rows["cleared_at"] > end)).to_numpy(), origin=start)


# --- base map roads -----------------------------------------------------------------------------------------------

ROAD_WIDTH_PX = {"expressway": 2.5, "arterial": 1.5, "secondary": 0.8}
DETAILED_ROAD_LEVELS = {"street", "community", "grid"}
"""Secondary roads are drawn from the street level down; above it they would be a mesh, not a map."""


def roads_geojson(city: City, level: str, bounds) -> dict:
    """The roads worth drawing for a view: main roads everywhere, secondary ones in a street and below, within the
    view's bounds (a little widened)."""
    roads = city["roads"]
    if level not in DETAILED_ROAD_LEVELS:
        roads = roads[roads["road_class"] != "secondary"]
    minx, miny, maxx, maxy = bounds
    pad = max(maxx - minx, maxy - miny) * 0.5
    roads = roads.cx[minx - pad:maxx + pad, miny - pad:maxy + pad]
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": shapely.geometry.mapping(shapely.set_precision(g, 1e-5)),
         "properties": {"width": ROAD_WIDTH_PX.get(c, 1.0)}}
        for c, g in zip(roads["road_class"], roads.geometry)]}


# --- safety and grid-management layers: incidents, enterprises, cameras, patrols ----------------------------------

@dataclass(frozen=True)
class MarkClass:
    """A class of a point layer's marks: its colour and its names (the legend's entries)."""
    color: str
    label: str
    label_zh: str


MARK_COLUMNS = ["lon", "lat", "cls", "weight", "name", "name_zh", "detail", "detail_zh"]
"""Marks of a point layer, one row per record (a grid cell for patrols): place, class, weight (records it stands
for), and its tooltip in both languages (HTML-escaped here: names come from imported data)."""

INCIDENT_KIND_NAMES = {code: (en, zh) for code, en, zh, *_ in INCIDENT_KINDS}
INCIDENT_SEVERITY_NAMES = {code: (en, zh) for code, en, zh, _ in INCIDENT_SEVERITIES}
INDUSTRY_NAMES = {code: (en, zh) for code, en, zh, *_ in INDUSTRIES}
INCIDENT_CLASSES = {
    "open_major": MarkClass(STATE_COLORS["critical"], "Open, level III or above", "未处置 · III级及以上"),
    "open": MarkClass(STATE_COLORS["warning"], "Open", "未处置"),
    "resolved": MarkClass("#6b7a90", "Resolved", "已处置"),
}
ENTERPRISE_CLASSES = {code: MarkClass(color, en, zh) for code, color, (en, zh) in (
    ("major_hazard", STATE_COLORS["critical"], RISK_CLASSES["major_hazard"]),
    ("key", STATE_COLORS["warning"], RISK_CLASSES["key"]),
    ("ordinary", "#7c8aa0", RISK_CLASSES["ordinary"]))}
CAMERA_CLASSES = {
    "offline": MarkClass(STATE_COLORS["watch"], "Offline", "离线"),
    "ai": MarkClass("#4fb5c8", "Online, AI video analysis", "在线 · AI视频分析"),
    "online": MarkClass("#5f7ea6", "Online", "在线"),
}
PATROL_CLASSES = {
    "unpatrolled": MarkClass(STATE_COLORS["warning"], "Grid cell not patrolled in the window", "窗口内未巡查网格"),
    "issues": MarkClass(STATE_COLORS["watch"], "Patrolled, issues found", "已巡查 · 发现问题"),
    "patrolled": MarkClass(STATE_COLORS["good"], "Patrolled, nothing found", "已巡查 · 未发现问题"),
}
"""Each layer's classes, worst first: a cluster shows the worst class inside it."""


def _names(codes: pd.Series, names: dict[str, tuple[str, str]]) -> tuple[pd.Series, pd.Series]:
    english = codes.map(lambda c: names.get(c, (c, c))[0]).astype(str)
    chinese = codes.map(lambda c: names.get(c, (c, c))[1]).astype(str)
    return english.map(escape), chinese.map(escape)


def _marks(rows: pd.DataFrame, **columns) -> pd.DataFrame:
    frame = pd.DataFrame({"lon": rows["lon"].to_numpy(float), "lat": rows["lat"].to_numpy(float)})
    for name, values in columns.items():
        frame[name] = np.asarray(values)
    return frame[MARK_COLUMNS].dropna(subset=["lon", "lat"]).reset_index(drop=True)


def incident_marks(city: City, code: str, start, end) -> pd.DataFrame:
    """Emergency incidents reported in [start, end) in a unit: open ones (not resolved by ``end``) by their level,
    resolved ones grey."""
    incidents = city["incidents"]
    reported = incidents["reported_at"]
    rows = incidents[unit_grid_mask(city, code, incidents) & (reported >= start).to_numpy()
                     & (reported < end).to_numpy()]
    open_ = (rows["resolved_at"].isna() | (rows["resolved_at"] >= end)).to_numpy()
    major = rows["severity"].isin(["relatively_major", "major", "especially_major"]).to_numpy()
    kind, kind_zh = _names(rows["kind"], INCIDENT_KIND_NAMES)
    level, level_zh = _names(rows["severity"], INCIDENT_SEVERITY_NAMES)
    when = rows["reported_at"].dt.strftime("%m-%d %H:%M")
    state = np.where(open_, "open", "resolved")
    return _marks(rows, cls=np.where(open_ & major, "open_major", np.where(open_, "open", "resolved")), weight=1,
                  name=kind + " · " + rows["incident_id"].astype(str).map(escape), name_zh=kind_zh,
                  detail=level + " · reported " + when + " · " + state,
                  detail_zh=level_zh + " · 报告于 " + when + np.where(open_, " · 未处置", " · 已处置"))


def enterprise_marks(city: City, code: str) -> pd.DataFrame:
    """Enterprises on the work-safety register in a unit, by risk class."""
    enterprises = city["enterprises"]
    rows = enterprises[unit_grid_mask(city, code, enterprises)]
    industry, industry_zh = _names(rows["industry"], INDUSTRY_NAMES)
    hazards = rows["open_hazards"].fillna(0).astype(int).astype(str)
    employees = rows["employees"].fillna(0).astype(int).astype(str)
    risk = rows["risk_class"].where(rows["risk_class"].isin(list(ENTERPRISE_CLASSES)), "ordinary")
    return _marks(rows, cls=risk.to_numpy(), weight=1,
                  name=industry + " · " + rows["enterprise_id"].astype(str).map(escape), name_zh=industry_zh,
                  detail=employees + " employees · " + hazards + " open hazards",
                  detail_zh="员工 " + employees + " 人 · 未整改隐患 " + hazards + " 项")


def camera_marks(city: City, code: str) -> pd.DataFrame:
    """Video cameras in a unit: offline ones first, AI-enabled ones apart."""
    cameras = city["cameras"]
    rows = cameras[unit_grid_mask(city, code, cameras)]
    offline = (rows["status"] != "online").to_numpy()
    ai = rows["ai_enabled"].fillna(False).astype(bool).to_numpy()
    seen = rows["last_seen_at"].dt.strftime("%m-%d %H:%M").fillna("—")
    return _marks(rows, cls=np.where(offline, "offline", np.where(ai, "ai", "online")), weight=1,
                  name=rows["camera_id"].astype(str).map(escape), name_zh=np.where(ai, "AI视频", "视频监控"),
                  detail=np.where(offline, "offline", "online") + " · last seen " + seen,
                  detail_zh=np.where(offline, "离线", "在线") + " · 最近在线 " + seen)


def grid_points(city: City) -> pd.DataFrame:
    """A point inside each grid cell (lon, lat), indexed by the cell's code."""
    grids = city.units[city.units["level"] == "grid"]
    points = shapely.point_on_surface(grids.geometry.to_numpy())
    return pd.DataFrame({"lon": shapely.get_x(points), "lat": shapely.get_y(points)}, index=grids.index)


def patrol_marks(city: City, code: str, start, end, points: pd.DataFrame) -> pd.DataFrame:
    """The grid cells of a unit with the patrols that started in [start, end) and the issues they found (a patrol
    has no place of its own: it goes through its cell), cells never patrolled in the window included."""
    level = city.units.at[code, "level"]
    cells = city.hierarchy.index if level == "city" else city.hierarchy.index[city.hierarchy[level] == code]
    patrols = city["patrols"]
    started = patrols["started_at"]
    inside = patrols[unit_grid_mask(city, code, patrols) & (started >= start).to_numpy() & (started < end).to_numpy()]
    counts = inside.groupby("grid_code").agg(patrols=("patrol_id", "size"), issues=("issues_found", "sum"))
    rows = points.reindex(cells).join(counts).fillna({"patrols": 0, "issues": 0})
    names = city.units["name"].reindex(rows.index).astype(str).map(escape)
    names_zh = city.units["name_zh"].reindex(rows.index).astype(str).map(escape)
    patrolled, issues = rows["patrols"].astype(int), rows["issues"].astype(int)
    cls = np.where(patrolled == 0, "unpatrolled", np.where(issues > 0, "issues", "patrolled"))
    return _marks(rows, cls=cls, weight=patrolled.to_numpy(), name=names.to_numpy(), name_zh=names_zh.to_numpy(),
                  detail=(patrolled.astype(str) + " patrols · " + issues.astype(str) + " issues found").to_numpy(),
                  detail_zh=("巡查 " + patrolled.astype(str) + " 次 · 发现问题 " + issues.astype(str) + " 个")
                  .to_numpy())


def mark_points(marks: pd.DataFrame, classes: dict[str, MarkClass], lang: str) -> list[dict]:
    """Marks one by one (a community or smaller), coloured by class; the worst class is drawn last, on top."""
    order = {cls: rank for rank, cls in enumerate(classes)}
    marks = marks.assign(rank=marks["cls"].map(order)).sort_values("rank", ascending=False, kind="stable")
    english = lang != "zh"
    return [{"position": [round(m.lon, 6), round(m.lat, 6)], "fill": rgba(classes[m.cls].color, 230),
             "radius": 7 if m.rank == 0 else 5, "cls": m.cls,
             "tip_name": m.name if english else m.name_zh, "tip_name_zh": "",
             "tip_value": m.detail if english else m.detail_zh} for m in marks.itertuples()]


def mark_clusters(marks: pd.DataFrame, classes: dict[str, MarkClass], resolution: int, noun: tuple[str, str],
                  lang: str) -> list[dict]:
    """Marks binned into H3 cells (above the community level): each cluster shows how many records it holds
    (the weights' sum) and takes the colour of the worst class inside."""
    if not len(marks):
        return []
    order = {cls: rank for rank, cls in enumerate(classes)}
    cells = _cells(marks["lat"].to_numpy(), marks["lon"].to_numpy(), resolution)
    grouped = (marks.assign(cell=cells, rank=marks["cls"].map(order))
               .groupby("cell").agg(count=("weight", "sum"), rank=("rank", "min"), marks=("rank", "size")))
    names = list(classes)
    clusters = []
    for cell, row in grouped.iterrows():
        lat, lon = h3_int.cell_to_latlng(int(cell))
        worst = classes[names[int(row["rank"])]]
        count = int(row["count"])
        clusters.append({"position": [round(lon, 6), round(lat, 6)], "count": count, "label": f"{count:,}",
                         "fill": rgba(worst.color, 220), "cls": names[int(row["rank"])],
                         "radius": float(8 + 4 * np.log2(count + 1)),
                         "tip_name": f"{count:,} {noun[0]}" if lang != "zh" else f"{count:,} {noun[1]}",
                         "tip_name_zh": "",
                         "tip_value": f"worst inside: {worst.label}" if lang != "zh" else f"最需关注：{worst.label_zh}"})
    return clusters
