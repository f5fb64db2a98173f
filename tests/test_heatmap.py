"""The orders' heatmap is a smooth density at every level (issue 15 item 13): it looked like a lattice of dots.

deck.gl's HeatmapLayer draws a kernel of ``radiusPixels`` around each of its points; where neighbouring points lie
farther apart than that on the screen, each shows as a dot of its own. Its points were the centres of the hexagon
layer's H3 cells, 75 to 300 px apart at the zoom of a street, community or grid cell. Checked here without a
browser: at the zoom the map page opens each level with, the typical point's nearest neighbour lies within the
kernel's radius."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from conftest import built_test_city, serving
from dashboard.maps import deck
from dashboard.maps.registry import MAP_LAYERS, MapView, heatmap_points
from dashboard.services import Services
from layers.store import Store


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with serving(Services(Store(built_test_city(tmp_path_factory, "heatmap")))) as service:
        yield service


def _one_of_each_level(service) -> list[str | None]:
    units = service.city().units
    levels = units["level"] if "level" in units else units.reset_index()["level"]
    codes = units.index if "level" in units else units.reset_index()["code"]
    chosen = [None]  # the city
    for level in ("district", "street", "community", "grid"):
        chosen.append(sorted(codes[(levels == level).to_numpy()])[0])
    return chosen


def test_the_heatmap_points_lie_within_a_kernel_of_each_other_at_every_level(service):
    codes = _one_of_each_level(service)
    for code in codes:
        view = service.unit_view(code, "on_time_rate", "7d")
        map_view = MapView(service, view, "on_time_rate", "7d")
        layer = MAP_LAYERS["order_heatmap"].build(map_view)[0]
        radius = layer["radiusPixels"]
        lon, lat, weight = heatmap_points(map_view)
        assert len(lon) == len(layer["data"]) > 10 and weight.sum() > 0, view.level
        camera = deck.fit_view(view.bounds, **deck.MAP_PAGE_INSETS)
        pixels = np.unique(np.array([deck.project(camera, x, y, deck.NOMINAL_MAP_SIZE)
                                     for x, y in zip(lon, lat)]).round(1), axis=0)
        if len(pixels) < 2:
            continue
        distances, _ = cKDTree(pixels).query(pixels, k=2)
        typical = float(np.median(distances[:, 1]))
        assert typical <= radius, f"{view.level} {code}: neighbours {typical:.0f} px apart, kernel {radius} px"
