"""The sample city's safety and grid-management layers on the map (issue 15 item 16): incidents, enterprises,
cameras and patrols are toggles of the layer registry, each with its legend and freshness badge, and each draws."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import wait_for_frames

pytestmark = pytest.mark.browser

MAP_IMAGE = "() => (document.querySelector('#city-map canvas') || document.querySelector('canvas')).toDataURL()"
EXTRA = {"incidents": "Emergency incidents", "enterprises": "Enterprises · work safety",
         "cameras": "Video cameras", "patrols": "Grid patrols"}


@pytest.mark.parametrize("lang, titles", [("en", EXTRA), ("zh", {"incidents": "突发事件", "patrols": "网格巡查"})])
def test_each_extra_layer_toggles_on_and_draws(serve_app, city_db, page, lang, titles):
    base = serve_app(city_db)
    page.goto(base + f"/?unit=440304&layers=base,units&lang={lang}", wait_until="networkidle")
    wait_for_frames(page)
    for layer_id, title in titles.items():
        option = page.locator("#layer-toggles .layer-option", has_text=title)
        expect(option.locator(".fresh-badge")).to_have_count(1)
        before = page.evaluate(MAP_IMAGE)
        option.click()
        page.wait_for_selector(f".legend-block[data-layer={layer_id}]", timeout=60_000)
        page.wait_for_function(f"([before]) => ({MAP_IMAGE})() !== before", arg=[before], polling=250,
                               timeout=60_000)
        page.wait_for_function(f"location.search.includes('{layer_id}')")
        option.click()  # off again: its legend goes, and the next layer is drawn on the plain map
        page.wait_for_selector(f".legend-block[data-layer={layer_id}]", state="detached", timeout=60_000)
    assert page.external_requests == []
    assert page.console_errors == []
