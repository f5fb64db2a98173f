"""The hotspots page lists the recurring hotspots the detector finds, and each links to its place on the map."""
from __future__ import annotations

import pytest

from dashboard.services import Services
from layers.load import load_layer
from layers.store import Store

pytestmark = pytest.mark.browser


def test_hotspots_page_lists_the_planted_hotspots(serve_app, city_db, page):
    base = serve_app(city_db)
    page.goto(base + "/hotspots?window=7d", wait_until="networkidle")
    found = Services(Store(city_db)).hotspots("7d")
    planted = load_layer(Store(city_db), "planted_hotspots")
    assert len(found) >= len(planted) > 0
    assert page.locator(".hotspot-row").count() == len(found)
    text = page.locator(".catalogue-table").inner_text()
    for grid_code in planted["grid_code"]:
        assert grid_code in text  # the evidence names the grid cell of every planted hotspot
    # A hotspot's place opens that grid cell on the map.
    link = page.locator(".hotspot-row a").first
    link.click()
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.level === 'grid'")
    assert page.external_requests == []
    assert page.console_errors == []
