"""deck.gl maps through ``deckgl-dash``, behind functions that take plain data and return the component.

deckgl-dash bundles deck.gl locally (no CDN) and returns clicks to callbacks as ``clickInfo``. The base map is the
city's own boundaries: no tiles are fetched from anywhere, so the map works on a closed network.
"""
from __future__ import annotations

import hashlib
import html
import math
from pathlib import Path

import numpy as np
from deckgl_dash import DeckGL
from deckgl_dash.binary import binary_data

from dashboard.components.labels import atlas_characters, map_text, short_name
from dashboard.i18n import FONT_FAMILY, normalise_language, unit_name
from dashboard.theme import PALETTE, STATE_COLORS, rgba

ASCII_CHARACTERS = [chr(c) for c in range(32, 127)]
TILE_SIZE = 512  # deck.gl's Web Mercator world is 512 px wide at zoom 0
# The map's size on a 1920×1080 screen (see assets/theme.css); used to fit the camera on the server, so that a
# link opens on the same view and the initial view is known without a round trip.
NOMINAL_MAP_SIZE = (1240, 960)


def _mercator(lon: float, lat: float) -> tuple[float, float]:
    x = (lon + 180.0) / 360.0
    y = (1.0 - math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) / math.pi) / 2.0
    return x, y


# What the map page lays over the map: the layer panel on the left, the playback bar at the bottom. The camera fits
# a unit into the rest, so that nothing of it hides under them.
MAP_PAGE_INSETS = {"left": 360, "bottom": 70}
# Levels shown in 3D: the camera tilts where buildings are the subject (and more on a building's card).
TILTED_LEVELS = {"community": 45, "grid": 50}
BUILDING_PITCH = 55


def fit_view(bounds, size=NOMINAL_MAP_SIZE, padding: int = 48, max_zoom: float = 17.0, left: int = 0,
             bottom: int = 0) -> dict:
    """The camera (longitude, latitude, zoom) that shows ``bounds`` (minx, miny, maxx, maxy) in a map of ``size``,
    within the part of it that ``left``/``bottom`` pixels of overlaid panels leave free."""
    minx, miny, maxx, maxy = bounds
    x0, y1 = _mercator(minx, miny)
    x1, y0 = _mercator(maxx, maxy)
    width, height = size[0] - 2 * padding - left, size[1] - 2 * padding - bottom
    span_x, span_y = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    zoom = min(math.log2(width / (span_x * TILE_SIZE)), math.log2(height / (span_y * TILE_SIZE)), max_zoom)
    scale = TILE_SIZE * 2 ** zoom
    # The free area's centre is left/2 right of and bottom/2 above the map's centre: move the camera the other way.
    cx, cy = (x0 + x1) / 2 - left / 2 / scale, (y0 + y1) / 2 + bottom / 2 / scale
    longitude = cx * 360.0 - 180.0
    latitude = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * cy))))
    return {"longitude": longitude, "latitude": latitude, "zoom": round(zoom, 3), "pitch": 0, "bearing": 0}


def project(view: dict, lon: float, lat: float, size: tuple[float, float]) -> tuple[float, float]:
    """The pixel (x, y) of a point on a map of ``size`` showing ``view`` (pitch and bearing 0)."""
    scale = TILE_SIZE * 2 ** view["zoom"]
    cx, cy = _mercator(view["longitude"], view["latitude"])
    px, py = _mercator(lon, lat)
    return size[0] / 2 + (px - cx) * scale, size[1] / 2 + (py - cy) * scale


def choropleth_layer(layer_id: str, geojson: dict, state_by_code: dict[str, str], value_by_code: dict[str, str],
                     selected: str | None = None, fill_alpha: int = 150) -> dict:
    """Admin units filled by their indicator state, outlined; pickable so that a click drills down."""
    features = []
    for feature in geojson["features"]:
        code = feature["properties"]["code"]
        state = state_by_code.get(code, "no_data")
        props = feature["properties"]
        # The tooltip is HTML: names come from data users import, so only escaped copies go into it.
        properties = dict(props, state=state, fill=rgba(STATE_COLORS[state], fill_alpha),
                          line=rgba(PALETTE["text"], 255 if code == selected else 150),
                          tip_name=html.escape(str(props["name"])), tip_name_zh=html.escape(str(props["name_zh"])),
                          tip_value=html.escape(value_by_code.get(code, "")), tip_code=html.escape(str(code)))
        features.append({**feature, "properties": properties})
    return {
        "@@type": "GeoJsonLayer",
        "id": layer_id,
        "data": {"type": "FeatureCollection", "features": features},
        "filled": True,
        "stroked": True,
        "pickable": True,
        "autoHighlight": True,
        "highlightColor": [255, 255, 255, 60],
        "getFillColor": "@@=properties.fill",
        "getLineColor": "@@=properties.line",
        "getLineWidth": 2,
        "lineWidthUnits": "pixels",
    }


def land_layer(layer_id: str, geojson: dict, fill: list[int], line: list[int]) -> dict:
    """The base map's land: the city's districts filled over the water-coloured background, outlined faintly."""
    return {
        "@@type": "GeoJsonLayer",
        "id": layer_id,
        "data": geojson,
        "filled": True,
        "stroked": True,
        "getFillColor": fill,
        "getLineColor": line,
        "getLineWidth": 1,
        "lineWidthUnits": "pixels",
        "pickable": False,
    }


def roads_layer(layer_id: str, geojson: dict, color: list[int]) -> dict:
    """The base map's roads, thin and muted so that the data stays in front."""
    return {
        "@@type": "GeoJsonLayer",
        "id": layer_id,
        "data": geojson,
        "stroked": True,
        "filled": False,
        "getLineColor": color,
        "getLineWidth": "@@=properties.width",
        "lineWidthUnits": "pixels",
        "pickable": False,
    }


def label_layer(layer_id: str, geojson: dict, lang: str = "en") -> dict:
    """Unit names at their representative points, in the page's language. deck.gl draws text from a font atlas of
    the characters it is given: ASCII by default, so in Chinese the names' own characters are added."""
    labels = [{"position": f["properties"]["label_point"],
               "text": map_text(short_name(unit_name(f["properties"], lang), _parent_name(f["properties"], lang)))}
              for f in geojson["features"] if f["properties"].get("label_point")]
    characters = atlas_characters((label["text"] for label in labels), ASCII_CHARACTERS)
    return {
        "@@type": "TextLayer",
        "id": layer_id,
        "data": labels,
        "getPosition": "@@=position",
        "getText": "@@=text",
        "getSize": 15,
        "getColor": rgba(PALETTE["text"]),
        "outlineWidth": 3,
        "outlineColor": rgba(PALETTE["bg"]),
        # A larger atlas than deck.gl's default: Chinese glyphs are dense and blur into each other at 64 px.
        "fontSettings": {"sdf": True, "fontSize": 96, "buffer": 8, "radius": 16},
        "fontWeight": 600,
        "fontFamily": FONT_FAMILY[normalise_language(lang)],
        "characterSet": characters,
        # Drawn over everything: on a tilted map (a grid cell with its 3D buildings) the label would otherwise be
        # cut by the cell's own polygon and the buildings' depth, half of each glyph hidden.
        "parameters": {"depthCompare": "always", "depthWriteEnabled": False},
        "pickable": False,
    }


def _parent_name(properties: dict, lang: str) -> str | None:
    parent = {"name": properties.get("parent_name"), "name_zh": properties.get("parent_name_zh")}
    return unit_name(parent, lang) if parent["name"] or parent["name_zh"] else None


# The tooltip names the unit under the pointer for assets/map_click.js (see there why a click needs it); a feature
# without ``tip_code`` (a building) leaves the placeholder as it is, which the script ignores.
TOOLTIP_HTML = '<b>{tip_name}</b> {tip_name_zh}<br/>{tip_value}<span hidden data-unit="{tip_code}"></span>'


def city_map(component_id: str, layers: list[dict], view: dict) -> DeckGL:
    return DeckGL(
        id=component_id,
        layers=layers,
        initial_view_state=view,
        controller=True,
        enable_events=["click"],
        tooltip={"html": TOOLTIP_HTML, "style": {"background": PALETTE["panel"],
                                                                 "color": PALETTE["text"], "fontSize": "0.875rem"}},
        style={"position": "absolute", "inset": "0", "width": "100%", "height": "100%",
               "background": PALETTE["bg"]},
    )


# What a layer may draw in screen pixels: (the units prop, deck.gl's default for it, the prop that scales it, the
# layer types that have it). Only a TextLayer is in pixels by default; the others say so (their default is metres).
PIXEL_SCALES = (("sizeUnits", "pixels", "sizeScale", ("TextLayer",)),
                ("radiusUnits", "meters", "radiusScale", ("ScatterplotLayer",)),
                ("lineWidthUnits", "meters", "lineWidthScale", ("GeoJsonLayer", "MVTLayer", "ScatterplotLayer")),
                ("pointRadiusUnits", "meters", "pointRadiusScale", ("GeoJsonLayer", "MVTLayer")))
PIXEL_BOUNDS = ("lineWidthMinPixels", "radiusMinPixels", "radiusPixels", "sizeMinPixels")


def for_screen(layers: list[dict], scale: float) -> list[dict]:
    """``layers`` drawn for a screen ``scale`` times as large as 1920×1080 (dashboard.view.screen_scale).

    The page is sized in rem and the camera zooms in by log2(scale) (overview.py), so everything deck.gl draws in
    the map's own units grows with the screen by itself; what it draws in pixels (text, points, outlines, the
    heatmap's kernel) would stay 1920's size, half as large on 3840×2160. Each such size gets the layer's scale
    prop; sizes in "common" or "meters" units are left alone. The layers are copied, not changed: their data may be
    shared with other views."""
    if abs(scale - 1.0) < 1e-3:
        return layers
    scaled = []
    for layer in layers:
        changes = {scale_prop: layer.get(scale_prop, 1) * scale for units, default, scale_prop, types in PIXEL_SCALES
                   if layer.get("@@type") in types and layer.get(units, default) == "pixels"}
        changes.update({bound: layer[bound] * scale for bound in PIXEL_BOUNDS if bound in layer})
        scaled.append({**layer, **changes} if changes else layer)
    return scaled


# --- detail layers (see dashboard/maps/registry.py for which the map shows and when) ---------------------------------

MVT_WORKER_URL = "/_citytwin/workers/mvt-worker.js?v=" + hashlib.sha1(
    (Path(__file__).parent / "static" / "mvt-worker.js").read_bytes()).hexdigest()[:12]
"""loaders.gl's MVT worker, served by the app (dashboard/maps/routes.py): the component would otherwise fetch it
from unpkg.com, which a closed network does not reach. Its URL names its content, so a browser keeps it a year
(dashboard/delivery.py)."""


def building_tiles_layer(layer_id: str, url_template: str, min_zoom: int, max_zoom: int,
                         selected: str | None = None) -> dict:
    """3D buildings from the app's vector tiles, extruded by height, coloured by the tile's r/g/b properties; the
    selected building (the open card's) is lit up."""
    return {
        "@@type": "MVTLayer",
        "id": layer_id,
        "data": url_template,
        "minZoom": min_zoom,
        "maxZoom": max_zoom,
        "binary": True,
        "filled": True,
        "extruded": True,
        "stroked": False,
        "wireframe": False,
        # A property path, never an expression: deckgl-dash compiles an accessor holding an operator with
        # Function(), an eval (one step towards a CSP without 'unsafe-eval'). Our tile worker (static/mvt-worker.js) joins each
        # building's r, g, b into the array "fill".
        "getFillColor": "@@=properties.fill",
        "getElevation": "@@=properties.height",
        "pickable": True,
        "autoHighlight": True,
        "highlightColor": [255, 255, 255, 140],
        "uniqueIdProperty": "building_id",
        "highlightedFeatureId": selected,
        "loadOptions": {"mvt": {"workerUrl": MVT_WORKER_URL}},
        # Every visible tile asked for at once (deck.gl's default is 6 at a time, the next ones only on a later
        # frame: with software WebGL a frame takes seconds, and a community's 16 tiles came in four waves over 5 s).
        # The browser queues them on its own connections while the first frame is drawn.
        "maxRequests": 0,
    }


LNGLAT_OFFSETS = "lnglat-offsets"  # deck.gl 9's COORDINATE_SYSTEM.LNGLAT_OFFSETS: degrees from coordinateOrigin


def unit_buildings_layer(layer_id: str, footprints, fill: np.ndarray, height: np.ndarray, tooltips: list[str],
                         selected: int | None = None) -> dict:
    """A small unit's buildings in one binary layer that comes with the page: extruded by ``height``, coloured by
    ``fill`` ((buildings, 3) uint8), the ``selected`` polygon lit up. One layer drawn once, where tiles arrive one
    by one and each redraws the scene (a community's 16 tiles were 16 frames of 1-2 s each with software WebGL)."""
    data = binary_data(len(footprints.starts), {
        "getPolygon": (footprints.offsets, "float32", 2),
        "getFillColor": (footprints.per_vertex(fill), "uint8", 3),
        "getElevation": (footprints.per_vertex(height), "float32", 1),
    }, start_indices=footprints.starts, tooltips=tooltips)
    return {
        "@@type": "PolygonLayer",  # deckgl-dash draws binary polygons with deck.gl's SolidPolygonLayer
        "id": layer_id,
        "data": data,
        "coordinateSystem": LNGLAT_OFFSETS,
        "coordinateOrigin": [*footprints.origin, 0],
        # The rings are closed and counter-clockwise already (sources.footprints): deck.gl need not walk them.
        "_normalize": False,
        "_windingOrder": "CCW",
        "filled": True,
        "extruded": True,
        "wireframe": False,
        "pickable": True,
        "autoHighlight": True,
        "highlightColor": [255, 255, 255, 140],
        "highlightedObjectIndex": -1 if selected is None else int(selected),
    }


def _by_layer_name(colors: dict[str, list[int]], default: list[int]) -> str:
    """A deck.gl accessor choosing a colour by the feature's vector layer (loaders.gl names it ``layerName``)."""
    expression = str(default)
    for name, color in colors.items():
        expression = f"properties.layerName === '{name}' ? {color} : ({expression})"
    return "@@=" + expression


def vector_basemap_layer(layer_id: str, url_template: str, min_zoom: int, max_zoom: int,
                         bounds: tuple[float, float, float, float], fills: dict[str, list[int]],
                         lines: dict[str, list[int]], fill: list[int], line: list[int]) -> dict:
    """The city's own vector base map (a PMTiles file served as MVT by the app), drawn flat and dark under the
    data: polygons filled by their layer's colour, lines thin; points (labels, POIs) are not drawn (the map's own
    labels name the units). Tiles are asked for only within the file's bounds and zooms; deeper zooms reuse the
    deepest tiles (deck.gl over-zooms them)."""
    return {
        "@@type": "MVTLayer",
        "id": layer_id,
        "data": url_template,
        "minZoom": min_zoom,
        "maxZoom": max_zoom,
        "extent": list(bounds),
        "binary": False,
        "filled": True,
        "stroked": False,
        "extruded": False,
        "getFillColor": _by_layer_name(fills, fill),
        "getLineColor": _by_layer_name(lines, line),
        "getLineWidth": 1.2,
        "lineWidthUnits": "pixels",
        "getPointRadius": 0,
        "pointRadiusMinPixels": 0,
        "pickable": False,
        "loadOptions": {"mvt": {"workerUrl": MVT_WORKER_URL}},
        "maxRequests": 0,
    }


def points_layer(layer_id: str, points: list[dict], stroked: bool = True) -> dict:
    """Small data (clusters, a unit's sensors, hotspots): one object per point with position, fill and radius."""
    return {
        "@@type": "ScatterplotLayer",
        "id": layer_id,
        "data": points,
        "getPosition": "@@=position",
        "getFillColor": "@@=fill",
        "getRadius": "@@=radius",
        "radiusUnits": "pixels",
        "stroked": stroked,
        "getLineColor": rgba(PALETTE["bg"], 220),
        "lineWidthMinPixels": 1,
        "pickable": True,
    }


def count_labels_layer(layer_id: str, points: list[dict]) -> dict:
    return {
        "@@type": "TextLayer",
        "id": layer_id,
        "data": [p for p in points if p.get("count", 0) > 1],
        "getPosition": "@@=position",
        "getText": "@@=label",
        "getSize": 12,
        "getColor": rgba(PALETTE["bg"]),
        "fontWeight": 700,
        "fontFamily": "DejaVu Sans, Noto Sans, sans-serif",
        "pickable": False,
    }


def hexagon_layer(layer_id: str, hexes: list[dict], max_count: int) -> dict:
    """Order counts per H3 cell, a sequential amber ramp, extruded a little so that peaks read in 3D."""
    return {
        "@@type": "H3HexagonLayer",
        "id": layer_id,
        "data": hexes,
        "getHexagon": "@@=hex",
        "getFillColor": "@@=fill",
        "getElevation": "@@=count",
        "elevationScale": 0,
        "extruded": False,
        "filled": True,
        "stroked": True,
        "getLineColor": rgba(PALETTE["bg"], 160),
        "lineWidthMinPixels": 1,
        "opacity": 0.75,
        "pickable": True,
    }


def heatmap_layer(layer_id: str, cells: list[dict], radius: int = 40) -> dict:
    """Order density: the orders of the view, or their counts per fine H3 cell (see registry.heatmap_points)."""
    return {
        "@@type": "HeatmapLayer",
        "id": layer_id,
        "data": cells,
        "getPosition": "@@=position",
        "getWeight": "@@=count",
        "radiusPixels": radius,
        "intensity": 1,
        "threshold": 0.05,
        "aggregation": "SUM",
        "colorRange": [[255, 255, 178], [254, 217, 118], [254, 178, 76], [253, 141, 60], [240, 59, 32],
                       [189, 0, 38]],
        "pickable": False,
    }


def timed_points_layer(layer_id: str, data: dict, fill: list[int], radius: float) -> dict:
    """Points carried as binary columns, shown by the component's GPU time filter (playback)."""
    return {
        "@@type": "ScatterplotLayer",
        "id": layer_id,
        "data": data,
        "getFillColor": fill,
        "getRadius": radius,
        "radiusUnits": "pixels",
        "radiusMinPixels": 2,
        "stroked": False,
        "pickable": False,
        "extensions": ["DataFilterExtension"],
    }
