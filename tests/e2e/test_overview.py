"""The first screen in real headless Chromium against a real server: read a KPI, click Futian on the map, see
Futian's view, go back up by the breadcrumb and by the browser's back button."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.e2e.conftest import click_unit_on_map, wait_for_frames

from dashboard.services import Services
from layers.store import Store
from metrics.registry import INDICATORS

pytestmark = pytest.mark.browser

FUTIAN = "440304"


@pytest.fixture(scope="module")
def expected(city_db):
    """What the screen must show, computed by the services the page uses (not by the test)."""
    services = Services(Store(city_db))
    city_view = services.unit_view(None, "on_time_rate", "7d")
    futian_view = services.unit_view(FUTIAN, "on_time_rate", "7d")
    return {"city": city_view, "futian": futian_view}


def kpi_text(page, indicator_id: str) -> str:
    return page.locator(f".kpi-value[data-indicator='{indicator_id}']").inner_text()


def formatted(view, indicator_id: str) -> str:
    return INDICATORS[indicator_id].format_value(float(view.kpis.loc[indicator_id, "value"]))


def test_read_kpi_click_district_and_come_back(serve_app, city_db, expected, page):
    base = serve_app(city_db)
    page.goto(base + "/", wait_until="networkidle")
    wait_for_frames(page)  # deck.gl draws on the next animation frames

    # The city's figures, as the engine computes them.
    assert page.locator("#unit-title").inner_text().startswith("Shenzhen")
    assert kpi_text(page, "order_volume") == formatted(expected["city"], "order_volume")
    assert kpi_text(page, "on_time_rate") == formatted(expected["city"], "on_time_rate")
    assert page.locator(".kpi-card").count() >= 12
    # The vital-sign score opens to show what pulls it down.
    score = expected["city"].score
    assert page.locator("#vital-score .score-value").inner_text() == f"{score:.0f}"
    page.locator("#vital-score summary").click()
    costs = expected["city"].score_explanation
    assert page.locator("#vital-score tbody tr").count() == min(6, int((costs["lost"] > 0).sum()))
    # Eight districts on the map's legend and in the ranking.
    assert page.locator(".rank-row").count() == 8

    # A wall screen does not scroll.
    scroll = page.evaluate("[document.documentElement.scrollWidth > innerWidth,"
                           " document.documentElement.scrollHeight > innerHeight]")
    assert scroll == [False, False]

    # Click Futian where the map draws it.
    click_unit_on_map(page, expected["city"], FUTIAN)

    page.wait_for_url(re.compile(rf"unit={FUTIAN}"))
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.unit === '440304'")
    assert page.locator("#unit-title").inner_text().startswith("Futian")
    assert kpi_text(page, "order_volume") == formatted(expected["futian"], "order_volume")
    assert kpi_text(page, "on_time_rate") == formatted(expected["futian"], "on_time_rate")
    assert kpi_text(page, "order_volume") != formatted(expected["city"], "order_volume")
    # Futian's streets are on the map and in the ranking.
    assert page.locator(".rank-row").count() == len(expected["futian"].children) == 10
    assert "Futian" in page.locator(".rank-row").first.inner_text()

    # The link reopens the view.
    page.goto(page.url, wait_until="networkidle")
    assert page.locator("#unit-title").inner_text().startswith("Futian")

    # Breadcrumb back to the city, then the browser's back button returns to Futian.
    page.locator("#breadcrumb a", has_text="Shenzhen").click()
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.unit === '440300'")
    page.go_back()
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.unit === '440304'")

    assert page.external_requests == []
    assert page.console_errors == []


def test_drawing_a_page_asks_the_server_once(serve_app, city_db, page):
    """A page drawn costs one callback, the page's own: the map's click, the tour's start and playback's callbacks
    are not called for a page being drawn (each once was, three to five round trips per page for no change)."""
    base = serve_app(city_db)
    asked = []
    page.on("request", lambda request: asked.append(json.loads(request.post_data)["output"])
            if "/_dash-update-component" in request.url else None)
    page.goto(base + "/", wait_until="networkidle")
    wait_for_frames(page)
    assert len(asked) == 1 and "_pages_content.children" in asked[0], asked
    asked.clear()
    page.locator(".rank-row", has_text="Futian").click()  # a drill step, as a person takes it
    page.wait_for_function(f"document.querySelector('#unit-title')?.dataset.unit === '{FUTIAN}'")
    page.wait_for_load_state("networkidle")
    wait_for_frames(page)
    assert len(asked) == 1 and "_pages_content.children" in asked[0], asked
    assert page.console_errors == []


def test_indicator_choice_is_in_the_url(serve_app, city_db, page):
    base = serve_app(city_db)
    page.goto(base + f"/?unit={FUTIAN}&indicator=overdue_orders&window=30d", wait_until="networkidle")
    assert page.locator(".kpi-card.selected .kpi-value").get_attribute("data-indicator") == "overdue_orders"
    assert "Red-card orders" in page.locator(".map-subtitle").inner_text()  # overdue_orders' name (issue 15 item 10)
    assert "30 days" in page.locator(".map-subtitle").inner_text()
    # An unknown unit or indicator falls back to the defaults instead of failing.
    page.goto(base + "/?unit=nowhere&indicator=<script>alert(1)</script>", wait_until="networkidle")
    assert page.locator("#unit-title").inner_text().startswith("Shenzhen")
    assert page.external_requests == []
    assert page.console_errors == []


def test_kpi_cards_carry_a_sparkline_of_the_window(serve_app, city_db, page):
    base = serve_app(city_db)
    page.goto(base + "/?unit=440304&window=7d", wait_until="networkidle")
    # Seven days, seven bars, on every headline card with at least two figures.
    spark = page.locator("#kpi-panel .kpi-card").filter(has=page.locator("[data-indicator='order_volume']"))
    assert spark.locator(".sparkline > span").count() == 7
    expected = Services(Store(city_db)).series("7d").loc[("440304", "order_volume")]
    heights = spark.locator(".sparkline > span").evaluate_all("bars => bars.map(b => b.style.height)")
    # The tallest bar is the day with the most requests.
    assert heights[int(np.argmax(expected))] == "100%"


@pytest.mark.parametrize("width,height", [(1920, 1080), (3840, 2160)])
def test_in_chinese_every_streets_row_of_the_ranking_is_on_the_screen(serve_app, city_db, browser, expected, width,
                                                                      height):
    """A district manager reads Futian in Chinese: all ten streets' rows are inside the side panel, none cut at the
    screen's edge or hidden below it (at "normal" line height the Chinese lines were a quarter taller than the English
    ones and the last two rows fell off the panel, at 1080 p and at 4K)."""
    base = serve_app(city_db)
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(f"{base}/?unit={FUTIAN}&lang=zh", wait_until="networkidle")
        page.wait_for_function("document.querySelectorAll('.rank-row').length === 10")
        place = page.evaluate("""() => {
            const list = document.querySelector('.rank-rows').getBoundingClientRect();
            const rows = [...document.querySelectorAll('.rank-row')].map(r => r.getBoundingClientRect());
            return {rows: rows.map(r => [r.top, r.bottom]), list: [list.top, list.bottom], screen: innerHeight,
                    scrolls: document.querySelector('.rank-rows').scrollHeight
                             > document.querySelector('.rank-rows').clientHeight + 1};
        }""")
        assert len(place["rows"]) == len(expected["futian"].children) == 10
        assert not place["scrolls"], place
        assert all(top >= place["list"][0] - 1 and bottom <= min(place["list"][1], place["screen"]) + 1
                   for top, bottom in place["rows"]), place
    finally:
        context.close()
