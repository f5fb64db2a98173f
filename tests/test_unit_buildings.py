"""A community's or a grid cell's buildings come with the page as one binary polygon layer (not as vector tiles
that arrive and are drawn one by one): their outlines exact, their colours and heights per vertex, a click on one
answered with the building it is, and hostile clicks answered with nothing."""
from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from dashboard import ids, services
from dashboard.maps import registry, routes, sources
from conftest import app_in_process, built_test_city  # tests/ is on sys.path (rootdir conftest)
from tests.callback_requests import body, callback_name, server_callbacks


def unpack(layer: dict) -> dict[str, np.ndarray]:
    """The arrays of a deckgl-dash binary layer, as its JavaScript rebuilds them."""
    block = layer["data"]["@@binary"]
    buffer = base64.b64decode(block["buffer"])
    out = {}
    for name, meta in block["attributes"].items():
        values = np.frombuffer(buffer, dtype=meta["dtype"], count=meta["byteLength"] // np.dtype(meta["dtype"]).itemsize,
                               offset=meta["offset"])
        out[name] = values.reshape(-1, meta["size"]) if meta["size"] > 1 else values
    starts = block["startIndices"]
    out["startIndices"] = np.frombuffer(buffer, dtype=starts["dtype"], count=starts["byteLength"] // 4,
                                        offset=starts["offset"])
    out["length"] = block["length"]
    out["tooltips"] = block.get("tooltips")
    return out


def test_footprints_are_closed_counter_clockwise_rings_exact_to_a_millimetre():
    clockwise = Polygon([(114.05, 22.54), (114.05, 22.5405), (114.0507, 22.5405), (114.0507, 22.54)])
    assert not clockwise.exterior.is_ccw
    courtyard = box(114.06, 22.55, 114.061, 22.551).difference(box(114.0603, 22.5503, 114.0607, 22.5507))
    twin = MultiPolygon([box(114.07, 22.56, 114.0701, 22.5601), box(114.0703, 22.56, 114.0704, 22.5601)])
    shapes = sources.footprints([clockwise, courtyard, twin])
    assert shapes.owner.tolist() == [0, 1, 2, 2]  # the multipolygon's two parts are two polygons of building 2
    assert shapes.vertex_counts.tolist() == [5, 5, 5, 5]  # outer rings only (the courtyard is roofed), closed
    for polygon in range(4):
        start, count = shapes.starts[polygon], shapes.vertex_counts[polygon]
        ring = shapes.offsets[start:start + count].astype(float) + np.array(shapes.origin)
        assert np.array_equal(ring[0], ring[-1])
        assert shapely.LinearRing(ring).is_ccw
        source = [clockwise, courtyard, twin.geoms[0], twin.geoms[1]][polygon]
        # every vertex within a millimetre of the source's (1e-8° is about 1 mm)
        nearest = [min(np.hypot(*(np.array(v) - ring[:, :2]).T)) for v in source.exterior.coords]
        assert max(nearest) < 1e-8
    assert shapes.per_vertex(np.array([10.0, 20.0, 30.0])).tolist() == [10.0] * 5 + [20.0] * 5 + [30.0] * 10


def test_no_buildings_make_an_empty_layer():
    shapes = sources.footprints([])
    assert len(shapes.starts) == 0 and len(shapes.offsets) == 0


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return app_in_process(built_test_city(tmp_path_factory, "unit-buildings"), jobs=False)


def call(app, name: str, values: list):
    key, entry = next((k, e) for k, e in server_callbacks(app).items() if callback_name(e) == name)
    response = app.server.test_client().post("/_dash-update-component", json=body(key, entry, values))
    assert response.status_code in (200, 204), response.get_data(as_text=True)[:500]
    return (response.get_json(silent=True) or {}).get("response")


def unit_of_level(level: str) -> str:
    units = services.get().city().units
    counts = services.get().city()["buildings"]["grid_code"].value_counts()
    for code in units.index[units["level"] == level]:
        if len(routes.scope_rows(services.get().generation(), code)) > 3 or (level == "grid" and counts.get(code, 0)):
            return code
    raise LookupError(level)


def drawn_buildings(app, code: str, color: str = "use") -> dict:
    answer = call(app, "dashboard.pages.overview.restyle_map", [["base", "units", "buildings"], color, f"?unit={code}"])
    return next(layer for layer in answer[ids.MAP]["layers"] if layer["id"] == "buildings")


@pytest.mark.parametrize("level", ["community", "grid"])
def test_a_small_units_buildings_are_one_layer_of_exactly_its_buildings(app, level):
    code = unit_of_level(level)
    city = services.get().city()
    buildings = city["buildings"]
    inside = buildings[buildings["grid_code"].isin(city.units_within(code))]
    layer = drawn_buildings(app, code)
    assert layer["@@type"] == "PolygonLayer" and layer["extruded"] is True
    arrays = unpack(layer)
    assert arrays["length"] == len(arrays["startIndices"]) >= len(inside)  # one polygon per building or part
    shapes = routes.unit_footprints(services.get().generation(), code)
    ids_drawn = inside["building_id"].to_numpy()[shapes.owner]
    assert set(ids_drawn) == set(inside["building_id"])
    # heights per vertex: each polygon's vertices carry its building's height
    first_vertex_height = arrays["getElevation"][arrays["startIndices"]]
    assert np.allclose(first_vertex_height, inside["height_m"].round(1).to_numpy()[shapes.owner], atol=0.05)
    # the tooltip names the building
    assert all(tip.startswith(building + " · ") for tip, building in zip(arrays["tooltips"], ids_drawn))


def test_a_district_gets_vector_tiles_not_its_buildings(app):
    layer = drawn_buildings(app, unit_of_level("district"))
    assert layer["@@type"] == "MVTLayer" and layer["data"].startswith("/tiles/buildings/")


def test_colouring_by_alarms_recolours_the_same_polygons(app):
    code = unit_of_level("community")
    by_use, by_alarms = unpack(drawn_buildings(app, code, "use")), unpack(drawn_buildings(app, code, "alarms"))
    assert np.array_equal(by_use["getPolygon"], by_alarms["getPolygon"])
    assert not np.array_equal(by_use["getFillColor"], by_alarms["getFillColor"])


def test_a_click_on_a_drawn_building_opens_its_card_and_the_card_lights_it_up(app):
    code = unit_of_level("community")
    shapes = routes.unit_footprints(services.get().generation(), code)
    index = len(shapes.owner) // 2
    click = {"picked": True, "index": index, "layerId": "buildings", "object": None, "properties": None}
    search = call(app, "dashboard.pages.overview.navigate", [click, None, None, None, f"?unit={code}", [], "use"])
    building = re.search(r"building=([^&]+)", search["map-goto"]["data"]).group(1)
    city = services.get().city()
    rows = routes.scope_rows(services.get().generation(), code)
    assert building == city["buildings"]["building_id"].iloc[rows[shapes.owner[index]]]
    # the polygon clicked is the building's: its centre lies in the building's footprint
    start, count = shapes.starts[index], shapes.vertex_counts[index]
    ring = shapes.offsets[start:start + count].astype(float) + np.array(shapes.origin)
    footprint = city["buildings"].set_index("building_id").geometry[building]
    assert footprint.buffer(1e-7).contains(Polygon(ring).representative_point())
    # the open card's building is the highlighted polygon
    view = f"?unit={code}&building={building}"
    answer = call(app, "dashboard.pages.overview.restyle_map", [["buildings"], "use", view])
    layer = next(layer for layer in answer[ids.MAP]["layers"] if layer["id"] == "buildings")
    assert city["buildings"]["building_id"].iloc[rows[shapes.owner[layer["highlightedObjectIndex"]]]] == building


@pytest.mark.parametrize("index", [-1, 10 ** 9, "3", True, 1.5, None, [1], {"i": 1}])
def test_a_hostile_click_index_opens_no_card(app, index):
    code = unit_of_level("community")
    click = {"picked": True, "index": index, "layerId": "buildings", "object": None, "properties": None}
    answer = call(app, "dashboard.pages.overview.navigate", [click, None, None, None, f"?unit={code}", [], "use"])
    assert "building=" not in str(answer)


@pytest.mark.parametrize("unit", ["440304", "no-such-unit", "", None, 7])
def test_a_building_index_outside_a_small_unit_names_no_building(app, unit):
    assert registry.unit_building_at(services.get().generation(), unit, 0) is None


def test_a_unit_the_map_opens_further_out_than_its_building_tiles_says_so(app):
    """Above a community the buildings are tiles drawn from zoom 15; a district opens further out, so its legend's
    colours alone would promise buildings the map does not show: a note says where they appear."""
    def legend_text(code, lang="en", layers=("base", "units", "buildings")):
        answer = call(app, "dashboard.pages.overview.restyle_map", [list(layers), "use", f"?unit={code}&lang={lang}"])
        return str(answer[ids.LAYER_LEGENDS]["children"])

    district = unit_of_level("district")
    assert "3D buildings from zoom 15: zoom in or drill down" in legend_text(district)
    assert "三维建筑自 15 级起显示" in legend_text(district, "zh")
    assert "from zoom" not in legend_text(district, layers=("base", "units"))  # no buildings asked for, no note
    assert "from zoom" not in legend_text(unit_of_level("community"))  # drawn with the page, at any zoom
