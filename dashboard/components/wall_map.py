"""The wall's district map: the city's 8 districts from :mod:`dashboard.maps.deck`, painted by one indicator.

The geometry goes to the browser once, with the page. Rotating to the next topic only repaints it: :func:`repaint`
returns a ``Patch`` of the fill colours, tooltips and labels, so the districts' GeoJSON never travels again.

The map scales with the wall like the rest of the page: the camera is fitted on the server for the map's size on a
1920×1080 screen (:data:`NOMINAL_MAP_SIZE`), and the browser adds ``log2(actual size / nominal size)`` to the zoom
(see the clientside callback in ``dashboard/pages/wall.py``). Line widths and label sizes are in deck.gl's "common"
units, which grow with the zoom, so that on a 3840×2160 wall everything is exactly twice as large.
"""
from __future__ import annotations


import pandas as pd
from dash import Patch

from dashboard.components.labels import atlas_characters, map_text
from dashboard.components.numbers import number_or_none
from dashboard.i18n import DEFAULT_LANGUAGE, FONT_FAMILY, indicator_name, normalise_language, unit_name, unit_of_measure
from dashboard.maps.deck import choropleth_layer, city_map, fit_view, label_layer
from dashboard.theme import STATE_COLORS, rgba
from metrics.spec import Indicator

# The map's size in CSS pixels on a 1920×1080 wall in kiosk mode (assets/wall.css: the centre column, above the
# district ranking); tests/e2e/test_wall.py checks it against the page.
NOMINAL_MAP_SIZE = (830, 500)
LABEL_PX = 19       # label size on a 1920×1080 wall
LINE_PX = 2.5       # district outline on a 1920×1080 wall
FILL_ALPHA = 200
DISTRICTS_LAYER, LABELS_LAYER = "wall-districts", "wall-labels"
NO_VALUE_LABEL = {"en": "n/a", "zh": "无数据"}
# deck.gl draws text from a font atlas of the characters it is given (ASCII by default): Chinese labels need theirs.
ASCII = [chr(c) for c in range(32, 127)]


def paint(geojson: dict, children: pd.DataFrame, indicator: Indicator, lang: str = DEFAULT_LANGUAGE) -> list[dict]:
    """Per district, in the GeoJSON's order: its state, fill colour, tooltip line and map label.

    A judged indicator fills a district with its state's colour; an indicator without thresholds (a volume) with
    the neutral colour, darker for a smaller value, so that the map still tells where the volume is."""
    rows = children.set_index("code")
    values = {code: number_or_none(rows.at[code, "value"]) for code in rows.index}
    largest = max((v for v in values.values() if v is not None), default=None)
    painted = []
    for feature in geojson["features"]:
        props = feature["properties"]
        code = props["code"]
        value = values.get(code)
        state = rows.at[code, "state"] if code in rows.index else "no_data"
        state = state if isinstance(state, str) else "no_data"
        if state == "neutral" and value is not None and largest:
            fill = rgba(STATE_COLORS["neutral"], int(50 + 170 * value / largest))
        else:
            fill = rgba(STATE_COLORS[state], FILL_ALPHA)
        figure = indicator.format_value(value)
        # The map's font atlas holds ASCII (and, in Chinese, the names' characters): no "—", "µ" or "³" on the
        # map (the tooltip has them).
        label_value = NO_VALUE_LABEL[normalise_language(lang)] if value is None else \
            figure + ("%" if indicator.unit == "%" else "")
        painted.append({"code": code, "state": state, "fill": fill,
                        "tip_value": f"{indicator_name(indicator, lang)}: {figure} {unit_of_measure(indicator.unit, lang)}",
                        "label": map_text(f"{unit_name(props, lang)}\n{label_value}")})
    return painted


def _labels(geojson: dict, painted: list[dict]) -> list[dict]:
    return [{"position": f["properties"]["label_point"], "text": p["label"]}
            for f, p in zip(geojson["features"], painted) if f["properties"].get("label_point")]


def label_characters(geojson: dict, lang: str) -> list[str]:
    """The characters the labels can hold: ASCII, every district's name (an imported city's "Łódź" too) and, in
    Chinese, the no-value word."""
    names = [map_text(unit_name(f["properties"], lang)) for f in geojson["features"]]
    if normalise_language(lang) == "zh":
        names.append(NO_VALUE_LABEL["zh"])
    return atlas_characters(names, ASCII)


def wall_layers(geojson: dict, painted: list[dict], zoom: float, lang: str = DEFAULT_LANGUAGE) -> list[dict]:
    """The district fill and the labels, sized for the wall at the nominal ``zoom``."""
    state_by_code = {p["code"]: p["state"] for p in painted}
    value_by_code = {p["code"]: p["tip_value"] for p in painted}
    districts = choropleth_layer(DISTRICTS_LAYER, geojson, state_by_code, value_by_code)
    for feature, p in zip(districts["data"]["features"], painted):
        feature["properties"]["fill"] = p["fill"]
    common = 2.0 ** zoom  # a "common" unit is 2**zoom pixels
    districts.update(getLineWidth=LINE_PX / common, lineWidthUnits="common", autoHighlight=False)
    labels = label_layer(LABELS_LAYER, geojson)
    labels.update(data=_labels(geojson, painted), getSize=LABEL_PX / common, sizeUnits="common",
                  fontWeight=700, lineHeight=1.15, outlineWidth=4)
    labels.update(characterSet=label_characters(geojson, lang), fontFamily=FONT_FAMILY[normalise_language(lang)])
    return [districts, labels]


def repaint(geojson: dict, painted: list[dict]) -> Patch:
    """A Patch of the layers of :func:`wall_layers` that repaints the districts, leaving their geometry alone."""
    patch = Patch()
    for index, p in enumerate(painted):
        properties = patch[0]["data"]["features"][index]["properties"]
        properties["fill"] = p["fill"]
        properties["state"] = p["state"]
        properties["tip_value"] = p["tip_value"]
    patch[1]["data"] = _labels(geojson, painted)
    return patch


def nominal_view(bounds) -> dict:
    return fit_view(bounds, NOMINAL_MAP_SIZE, padding=24)


def wall_map(component_id: str, layers: list[dict], view: dict):
    """The map, still: nobody pans a wall, and the camera follows the wall's size (``view_state``)."""
    deck = city_map(component_id, layers, view)
    deck.controller = False
    deck.enableEvents = False
    return deck
