"""The catalogue page lists every indicator of the registry with its live value for the selected unit."""
from __future__ import annotations

import pytest

from dashboard.services import Services
from layers.store import Store
from metrics.registry import INDICATORS

pytestmark = pytest.mark.browser


def test_catalogue_lists_every_indicator_with_live_values(serve_app, city_db, page):
    base = serve_app(city_db)
    page.goto(base + "/catalogue?unit=440304&window=30d", wait_until="networkidle")
    assert page.locator("#catalogue-title").get_attribute("data-unit") == "440304"
    values = page.locator(".cat-value")
    assert values.count() == len(INDICATORS)
    expected = Services(Store(city_db)).unit_view("440304", "on_time_rate", "30d").kpis
    for indicator_id in ("order_volume", "on_time_rate", "pm25_mean"):
        shown = page.locator(f".cat-value[data-indicator='{indicator_id}']").inner_text()
        assert shown == INDICATORS[indicator_id].format_value(float(expected.loc[indicator_id, "value"]))
    # From the catalogue back to the map of the same unit.
    page.locator(".page-link", has_text="Map").click()
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.unit === '440304'")
    assert page.external_requests == []
    assert page.console_errors == []
