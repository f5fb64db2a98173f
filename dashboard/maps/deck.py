"""deck.gl maps through ``deckgl-dash``, behind functions that take plain data and return the component.

deckgl-dash bundles deck.gl locally (no CDN) and returns clicks to callbacks as ``clickInfo``. The base map is the
city's own boundaries: no tiles are fetched from anywhere, so the map works on a closed network.
"""
from __future__ import annotations

import html
import math

from deckgl_dash import DeckGL

from dashboard.components.labels import short_name
from dashboard.theme import PALETTE, STATE_COLORS, rgba

TILE_SIZE = 512  # deck.gl's Web Mercator world is 512 px wide at zoom 0
# The map's size on a 1920×1080 screen (see assets/theme.css); used to fit the camera on the server, so that a
# link opens on the same view and the initial view is known without a round trip.
NOMINAL_MAP_SIZE = (1240, 960)


def _mercator(lon: float, lat: float) -> tuple[float, float]:
    x = (lon + 180.0) / 360.0
    y = (1.0 - math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) / math.pi) / 2.0
    return x, y


def fit_view(bounds, size=NOMINAL_MAP_SIZE, padding: int = 48, max_zoom: float = 17.0) -> dict:
    """The camera (longitude, latitude, zoom) that shows ``bounds`` (minx, miny, maxx, maxy) in a map of ``size``."""
    minx, miny, maxx, maxy = bounds
    x0, y1 = _mercator(minx, miny)
    x1, y0 = _mercator(maxx, maxy)
    width, height = size[0] - 2 * padding, size[1] - 2 * padding
    span_x, span_y = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    zoom = min(math.log2(width / (span_x * TILE_SIZE)), math.log2(height / (span_y * TILE_SIZE)), max_zoom)
    return {"longitude": (minx + maxx) / 2, "latitude": (miny + maxy) / 2, "zoom": round(zoom, 3),
            "pitch": 0, "bearing": 0}


def project(view: dict, lon: float, lat: float, size: tuple[float, float]) -> tuple[float, float]:
    """The pixel (x, y) of a point on a map of ``size`` showing ``view`` (pitch and bearing 0)."""
    scale = TILE_SIZE * 2 ** view["zoom"]
    cx, cy = _mercator(view["longitude"], view["latitude"])
    px, py = _mercator(lon, lat)
    return size[0] / 2 + (px - cx) * scale, size[1] / 2 + (py - cy) * scale


def choropleth_layer(layer_id: str, geojson: dict, state_by_code: dict[str, str], value_by_code: dict[str, str],
                     selected: str | None = None) -> dict:
    """Admin units filled by their indicator state, outlined; pickable so that a click drills down."""
    features = []
    for feature in geojson["features"]:
        code = feature["properties"]["code"]
        state = state_by_code.get(code, "no_data")
        props = feature["properties"]
        # The tooltip is HTML: names come from data users import, so only escaped copies go into it.
        properties = dict(props, state=state, fill=rgba(STATE_COLORS[state], 150),
                          line=rgba(PALETTE["text"], 255 if code == selected else 150),
                          tip_name=html.escape(str(props["name"])), tip_name_zh=html.escape(str(props["name_zh"])),
                          tip_value=html.escape(value_by_code.get(code, "")))
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


def label_layer(layer_id: str, geojson: dict) -> dict:
    """Unit names at their representative points (Latin names: the font atlas has no CJK glyphs)."""
    labels = [{"position": f["properties"]["label_point"], "text": short_name(f["properties"]["name"])}
              for f in geojson["features"] if f["properties"].get("label_point")]
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
        "fontSettings": {"sdf": True},
        "fontFamily": "DejaVu Sans, Noto Sans, sans-serif",
        "pickable": False,
    }


def city_map(component_id: str, layers: list[dict], view: dict) -> DeckGL:
    return DeckGL(
        id=component_id,
        layers=layers,
        initial_view_state=view,
        controller=True,
        enable_events=["click"],
        tooltip={"html": "<b>{tip_name}</b> {tip_name_zh}<br/>{tip_value}", "style": {"background": PALETTE["panel"],
                                                                 "color": PALETTE["text"], "fontSize": "14px"}},
        style={"position": "absolute", "inset": "0", "width": "100%", "height": "100%",
               "background": PALETTE["bg"]},
    )
