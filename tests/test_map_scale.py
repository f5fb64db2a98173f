"""The map's pixel sizes follow the screen (dashboard.maps.deck.for_screen), text is drawn over every marker
(registry.text_last), and the screen's scale, a cookie the browser sets, is read as hostile input."""
from __future__ import annotations

import flask
import pytest

from dashboard.maps import deck
from dashboard.maps.registry import text_last
from dashboard.view import screen_scale


def layers() -> list[dict]:
    return [
        deck.label_layer("unit-labels", {"features": []}),
        {"@@type": "ScatterplotLayer", "id": "alerts", "radiusUnits": "pixels", "radiusMinPixels": 2,
         "lineWidthMinPixels": 1},
        {"@@type": "ScatterplotLayer", "id": "metres"},  # deck.gl's default: metres, which the camera scales
        {"@@type": "GeoJsonLayer", "id": "units", "lineWidthUnits": "pixels"},
        {"@@type": "TextLayer", "id": "on-the-ground", "sizeUnits": "common"},
        {"@@type": "HeatmapLayer", "id": "heat", "radiusPixels": 40},
        deck.count_labels_layer("sensor-counts", []),
    ]


def test_pixel_sizes_are_multiplied_by_the_screens_scale_and_nothing_else():
    before = layers()
    after = {layer["id"]: layer for layer in deck.for_screen(before, 2.0)}
    assert after["unit-labels"]["sizeScale"] == 2 and after["sensor-counts"]["sizeScale"] == 2
    assert after["alerts"]["radiusScale"] == 2 and after["alerts"]["radiusMinPixels"] == 4
    assert after["alerts"]["lineWidthMinPixels"] == 2
    assert after["units"]["lineWidthScale"] == 2
    assert after["heat"]["radiusPixels"] == 80
    assert after["metres"] == {"@@type": "ScatterplotLayer", "id": "metres"}
    assert "sizeScale" not in after["on-the-ground"]
    assert before == layers()  # copied, not changed: a layer's dict may be shared by other views
    assert deck.for_screen(before, 1.0) == before


def test_text_is_drawn_after_every_other_layer_in_its_order():
    ids = [layer["id"] for layer in text_last(layers())]
    assert ids == ["alerts", "metres", "units", "heat", "unit-labels", "on-the-ground", "sensor-counts"]


@pytest.mark.parametrize("cookie, scale", [
    (None, 1.0), ("2.000", 2.0), ("1.333", 1.333), ("0.1", 0.5), ("1e9", 4.0), ("nan", 1.0), ("inf", 1.0),
    ("-inf", 1.0), ("", 1.0), ("2drop", 1.0), ("<script>", 1.0),
])
def test_the_screens_scale_comes_from_the_cookie_within_bounds(cookie, scale):
    app = flask.Flask(__name__)
    headers = {"Cookie": f"citytwin_scale={cookie}"} if cookie is not None else {}
    with app.test_request_context("/", headers=headers):
        assert screen_scale() == pytest.approx(scale)
    assert screen_scale() == 1.0  # outside a request: a 1920×1080 screen
