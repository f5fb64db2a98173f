"""What is coming, while it comes (issue 15 item 11), and the order service's refusals in Chinese (item 12), in a real
browser. A deep link to a grid cell showed an empty dark screen, then a map without its picker and slider, for
seconds with no sign; the playback slider stayed at 24 h while the day was replayed."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from layers.store import Store
from layers.workorders import OrderQuery, WorkOrders

pytestmark = pytest.mark.browser

AFTER = "(s) => getComputedStyle(document.querySelector(s), '::after').content"
THUMB = ".playback [role=slider]"


@pytest.fixture(scope="module")
def grid_cell(city_db):
    store = Store(city_db)
    with store.engine.connect() as conn:
        code = conn.execute(text("SELECT code FROM units WHERE level = 'grid' ORDER BY code LIMIT 1")).scalar_one()
    store.engine.dispose()
    return code


def test_a_deep_link_says_what_is_coming_in_its_language(serve_app, city_db, page, grid_cell):
    base = serve_app(city_db)
    held = []
    page.route("**/_dash-layout*", lambda route: held.append(route))  # the page's frame, held back
    page.route("**/async-dropdown.js*", lambda route: held.append(route))  # the picker's script
    page.route("**/async-slider.js*", lambda route: held.append(route))  # the slider's script
    with page.expect_request("**/_dash-layout*"):
        answer = page.goto(f"{base}/?unit={grid_cell}&lang=zh", wait_until="commit")
    # Before any script ran: a skeleton of the screen saying, in Chinese, that the page is loading …
    assert "boot-skeleton" in answer.text() and "正在加载页面" in answer.text()
    # … and once Dash's renderer runs and waits for the page's frame, its "Loading..." gives way to the same words.
    page.wait_for_function("""() => {
        const e = document.querySelector('._dash-loading');
        return e && getComputedStyle(e, '::after').content.includes('正在加载页面');
    }""")
    while not any("_dash-layout" in r.request.url for r in held):
        page.wait_for_function("() => true")  # lets the held request's route handler run
    for route in [r for r in held if "_dash-layout" in r.request.url]:
        route.continue_()
    page.wait_for_selector(".topbar")
    # The picker's and the slider's places say what is coming while their scripts are on their way.
    assert page.evaluate(AFTER, ".picker-slot") == '"正在加载指标…"'
    assert page.evaluate(AFTER, ".slider-slot") == '"正在加载回放…"'
    for route in [r for r in held if "async-" in r.request.url]:
        route.continue_()
    page.wait_for_selector(".picker-slot .indicator-select")
    page.wait_for_selector(THUMB, state="attached", timeout=300_000)
    assert page.evaluate(AFTER, ".picker-slot") == "none" and page.evaluate(AFTER, ".slider-slot") == "none"
    assert page.console_errors == []


def test_the_playback_slider_moves_with_the_replayed_clock(serve_app, city_db, page):
    base = serve_app(city_db)
    page.goto(f"{base}/", wait_until="domcontentloaded")
    thumb = page.locator(THUMB)
    thumb.wait_for(state="attached", timeout=300_000)  # the slider's script comes last on a loaded machine
    assert float(thumb.get_attribute("aria-valuenow")) == 24  # the end of the day: now
    page.locator("#play-button").click()
    position = ("() => parseFloat(document.querySelector(" + repr(THUMB) + ").getAttribute('aria-valuenow'))")
    page.wait_for_function(f"() => {{ const v = ({position})(); return v > 0 && v < 24; }}")
    first = page.evaluate(position)
    page.wait_for_function(f"(first) => ({position})() > first", arg=first)  # it keeps moving with the clock
    assert page.locator("#play-clock").inner_text() != "live"
    assert page.console_errors == []


def test_a_refusal_of_the_order_service_is_said_in_chinese(serve_app, city_db, page):
    store = Store(city_db)
    order_id = WorkOrders(store).list_orders(OrderQuery(status=["dispatched"], limit=1)).orders[0].order_id
    store.engine.dispose()
    base = serve_app(city_db)
    page.goto(f"{base}/orders/{order_id}?lang=zh", wait_until="domcontentloaded")
    page.locator(".action-button", has_text="督办").click()  # an escalation needs a note saying why: none given
    message = page.locator("#order-message.refused")
    message.wait_for()
    words = message.inner_text()
    assert "须填写办理意见" in words and not re.search(r"[A-Za-z]{3,}", words), words
