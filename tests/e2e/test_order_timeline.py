"""An order's timeline (issue 15 item 9): nine steps fit a 1920×1080 screen, a longer timeline opens on its newest
step with a cue that earlier ones are to the left, and an operator's "Close" lands in the dispatch center's lane."""
from __future__ import annotations

import shutil

import pytest

from layers.store import Store
from layers.workorders import WorkOrders

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def nine_step_order(city_db, tmp_path_factory):
    """A copy of the test city with one order taken through nine steps (a reject and a second dispatch among
    them), closed by an operator."""
    path = tmp_path_factory.mktemp("timeline") / "city.sqlite"
    shutil.copy(city_db.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    store = Store(url)
    orders = WorkOrders(store)
    place = orders.open_orders_frame().iloc[0]
    order_id = orders.file_request(event_type=place["event_type"], lon=place["lon"], lat=place["lat"],
                                   actor="operator Li").order_id

    def version():
        return orders.get(order_id).version

    orders.dispatch(order_id, expected_version=version(), actor="operator Li")
    orders.reject(order_id, expected_version=version(), actor="unit Wang", note="not ours")
    orders.dispatch(order_id, expected_version=version(), actor="operator Li")
    orders.accept(order_id, expected_version=version(), actor="unit Zhao")
    orders.handle(order_id, expected_version=version(), actor="unit Zhao")
    orders.reply(order_id, expected_version=version(), actor="unit Zhao")
    orders.evaluate(order_id, expected_version=version(), satisfied=True)
    orders.close(order_id, expected_version=version(), actor="operator Li")
    assert len(orders.timeline(order_id)) == 9
    store.engine.dispose()
    return url, order_id


SHOWN = """() => {
    const lanes = document.getElementById('order-lanes').getBoundingClientRect();
    const step = document.querySelector('.lane-step[data-action="close"]').getBoundingClientRect();
    return step.left >= lanes.left - 0.5 && step.right <= lanes.right + 0.5 && step.right <= innerWidth;
}"""


@pytest.mark.parametrize("width,height,fit", [(1920, 1080, "fits"), (3840, 2160, "fits"), (640, 800, "overflowing")])
def test_the_newest_step_is_on_screen_and_close_is_the_dispatch_centers(serve_app, browser, nine_step_order,
                                                                        width, height, fit):
    url, order_id = nine_step_order
    base = serve_app(url)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        page.goto(f"{base}/orders/{order_id}", wait_until="networkidle")
        page.wait_for_selector("#order-lanes[data-fit]")
        assert page.locator("#order-lanes").get_attribute("data-fit") == fit
        assert page.locator(".lane-step").count() == 9
        close = page.locator('.lane-step[data-action="close"]')
        assert close.get_attribute("data-lane") == "dispatch"
        page.wait_for_function(SHOWN)  # the newest step is in view, scrolled to where the timeline is wider
        assert page.locator(".lanes-cue").is_visible() == (fit == "overflowing")
    finally:
        context.close()
