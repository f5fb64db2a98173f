"""The operators' work-order screens in a real browser against a real server: the list pages through SQL, two
operators on one order get one winner and a clear conflict, citizens' text stays text, and one order goes the whole
loop: filed through Open311, acted on in the UI, reopened by an unsatisfied citizen, with the KPI cards following."""
from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import pandas as pd
import pytest
import shapely

from dashboard import open311
from layers.specs import CITY_TIMEZONE
from layers.store import Store
from layers.workorders import OrderQuery, WorkOrders
from sample_data.__main__ import build
from conftest import add_account, sign_in, work_order_snapshot

pytestmark = pytest.mark.browser

API_KEY = "e2e-key-41c2"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> & 垃圾'


@pytest.fixture(scope="module")
def live_city(tmp_path_factory):
    """A test-scale city whose history ends at the current hour, so that orders filed now fall in "today"."""
    path = tmp_path_factory.mktemp("orders") / "city.sqlite"
    url = f"sqlite:///{path}"
    build("test", url, progress=False, end=pd.Timestamp.now(tz=CITY_TIMEZONE).floor("h"))
    return url


@pytest.fixture
def server(live_city, serve_app, monkeypatch):
    """The app on the live city, with an Open311 key, checking the store on every request (an action shows at once
    on the KPI cards)."""
    monkeypatch.setenv(open311.KEYS_ENV, API_KEY)
    monkeypatch.setenv("CITYTWIN_VERSION_CHECK_SECONDS", "0")
    return serve_app(live_city)


FIRST_ID = ".ag-row[row-index='0'] [col-id='order_id'] a"


def first_row_id(page) -> str:
    link = page.locator(FIRST_ID)
    link.wait_for()
    return link.inner_text().strip()


def grid_count(page) -> int:
    page.wait_for_function("() => /\\d/.test(document.querySelector('#order-count').innerText)")
    return int(re.sub(r"\D", "", page.locator("#order-count").inner_text()))


def test_the_list_pages_filters_sorts_and_opens_an_order(server, live_city, page):
    work_orders = WorkOrders(Store(live_city))
    newest = work_orders.list_orders(OrderQuery(limit=1))
    page.goto(server + "/orders", wait_until="networkidle")
    assert first_row_id(page) == newest.orders[0].order_id
    assert grid_count(page) == newest.total
    # Scrolling far down asks for another block: row 250 is the SQL page's row 250.
    far = work_orders.list_orders(OrderQuery(offset=250, limit=1)).orders[0].order_id
    page.evaluate("dash_ag_grid.getApi('order-grid').ensureIndexVisible(250, 'middle')")
    cell = page.locator(".ag-row[row-index='250'] [col-id='order_id'] a")
    cell.wait_for()
    assert cell.inner_text().strip() == far
    # A header click sorts in SQL: oldest first.
    page.evaluate("dash_ag_grid.getApi('order-grid').ensureIndexVisible(0, 'top')")
    page.locator(".ag-header-cell[col-id='received_at']").click()
    oldest = work_orders.list_orders(OrderQuery(descending=False, limit=1)).orders[0].order_id
    page.wait_for_function("([css, oldest]) => { const a = document.querySelector(css);"
                           " return a && a.innerText.trim() === oldest; }", arg=[FIRST_ID, oldest])
    # A filter is a URL: received orders of one department, overdue.
    department = newest.orders[0].department
    page.goto(server + "/orders?" + urllib.parse.urlencode({"status": "received,dispatched",
                                                             "department": department}), wait_until="networkidle")
    expected = work_orders.list_orders(OrderQuery(status=["received", "dispatched"], department=[department],
                                                  limit=1))
    assert grid_count(page) == expected.total
    assert first_row_id(page) == expected.orders[0].order_id
    # Choosing a filter in the bar rewrites the URL and the list.
    page.locator(".order-flags input[value='overdue']").check()
    page.wait_for_url(re.compile(r"overdue=1"))
    overdue = work_orders.list_orders(OrderQuery(status=["received", "dispatched"], department=[department],
                                                 overdue_at=pd.Timestamp.now(tz=CITY_TIMEZONE), limit=1))
    page.wait_for_function(f"() => document.querySelector('#order-count').innerText.replace(/\\D/g, '') === "
                           f"'{overdue.total}'")
    # The id opens the order.
    page.goto(server + "/orders", wait_until="networkidle")
    order_id = first_row_id(page)
    page.locator(FIRST_ID).click()
    page.wait_for_url(re.compile(f"/orders/{order_id}$"))
    page.locator("#order-id").wait_for()
    assert page.locator("#order-id").inner_text() == order_id
    assert page.external_requests == [] and page.console_errors == []


def received_order(live_city, description="Bins overflowing on the corner") -> str:
    store = Store(live_city)
    work_orders = WorkOrders(store)
    grid = store.read_frame("units", ["code", "level", "geometry"]).query("level == 'grid'").iloc[7]
    point = shapely.from_wkb(grid["geometry"]).representative_point()
    return work_orders.file_request(event_type="garbage_overflow", lon=point.x, lat=point.y, description=description,
                                    actor="intake desk").order_id


def act(page, action: str, actor: str | None = None, note: str = "") -> str:
    """Click an action as the signed-in ``actor`` (the page names who is signed in; nobody types a name);
    returns how the page answered: done, conflict or refused."""
    if actor is not None:
        assert page.locator("#order-actor").inner_text() == actor
    if note:
        page.fill("#order-note", note)
    said = page.locator("#order-message").inner_text()
    page.locator(f".action-button.action-{action}").click()
    # The answer is a new message (each names the action and the order's version, so two never read the same).
    page.wait_for_function("said => { const m = document.querySelector('#order-message');"
                           " return m.innerText !== said && /done|conflict|refused/.test(m.className); }",
                           arg=said)
    return page.locator("#order-message").get_attribute("class").split()[-1]


@pytest.fixture
def pg_city(postgis_db_url):
    """The same city in a real PostgreSQL + PostGIS database."""
    build("test", postgis_db_url, progress=False, end=pd.Timestamp.now(tz=CITY_TIMEZONE).floor("h"))
    return postgis_db_url


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_operators_on_one_order_one_wins_the_other_is_told(database, request, serve_app, monkeypatch, page,
                                                               browser):
    live_city = request.getfixturevalue("live_city" if database == "sqlite" else "pg_city")
    monkeypatch.setenv("CITYTWIN_VERSION_CHECK_SECONDS", "0")
    server = serve_app(live_city, account="dispatcher-li", roles=("dispatcher",))
    order_id = received_order(live_city)
    other = browser.new_page(viewport={"width": 1920, "height": 1080})
    wang = sign_in(server, "dispatcher-wang", add_account(live_city, "dispatcher-wang", roles=("dispatcher",)))
    other.context.add_cookies([{"name": "citytwin_session", "value": wang.cookies["citytwin_session"], "url": server}])
    try:
        for p in (page, other):
            p.goto(f"{server}/orders/{order_id}", wait_until="networkidle")
            assert p.locator("#order-status").get_attribute("data-status") == "received"
        act(page, "dispatch", "dispatcher-li", "by the list")
        assert "Dispatched" in page.locator("#order-message").inner_text()
        act(other, "cancel", "dispatcher-wang", "looks like a duplicate of yesterday's")
        message = other.locator("#order-message")
        assert "conflict" in message.get_attribute("class")
        assert "dispatcher-li" in message.inner_text() and "Dispatch" in message.inner_text()
        # The loser sees the order as it is now, and keeps what they typed.
        assert other.locator("#order-status").get_attribute("data-status") == "dispatched"
        assert other.locator("#order-note").input_value() == "looks like a duplicate of yesterday's"
        timeline = WorkOrders(Store(live_city)).timeline(order_id)
        assert [e.action for e in timeline] == ["file", "dispatch"]
        # Acting again, on what they now see, works.
        act(other, "escalate", "dispatcher-wang", "citizen called twice")
        assert "done" in other.locator("#order-message").get_attribute("class")
        timeline = WorkOrders(Store(live_city)).timeline(order_id)
        assert [(e.action, e.actor) for e in timeline] == [("file", "intake desk"), ("dispatch", "dispatcher-li"),
                                                           ("escalate", "dispatcher-wang")]
    finally:
        other.close()


def test_a_refused_action_names_the_reason_and_writes_nothing(server, live_city, page):
    order_id = received_order(live_city)
    page.goto(f"{server}/orders/{order_id}", wait_until="networkidle")
    store = Store(live_city)
    before = work_order_snapshot(store)
    act(page, "cancel")  # no reason given
    assert "refused" in page.locator("#order-message").get_attribute("class")
    assert "note" in page.locator("#order-message").inner_text()
    assert work_order_snapshot(store) == before


def test_citizens_and_operators_text_is_shown_as_text(server, live_city, page):
    order_id = received_order(live_city, description=HOSTILE)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{server}/orders/{order_id}", wait_until="networkidle")
    assert page.locator("#order-description").inner_text() == HOSTILE
    act(page, "escalate", note=HOSTILE)
    step = page.locator(".lane-step[data-action='escalate']")
    assert HOSTILE in step.inner_text()
    for path in (f"/orders?q={order_id}", "/supervision", f"/orders/{order_id}?lang=zh", "/orders/" +
                 urllib.parse.quote(HOSTILE, safe="")):
        page.goto(server + path, wait_until="networkidle")
        page.wait_for_selector(".topbar")
        assert page.locator("img[src='x']").count() == 0, path
        assert page.evaluate("window.__pwned === undefined"), path
    assert HOSTILE in page.locator(".order-body").inner_text()  # the unknown id, as text
    page.goto(f"{server}/orders?q={order_id}", wait_until="networkidle")
    assert first_row_id(page) == order_id
    assert page.locator(".ag-row[row-index='0'] [col-id='description']").inner_text().startswith("<img src=x")
    assert dialogs == [] and page.external_requests == [] and page.console_errors == []


def kpis(page, server, grid: str) -> dict[str, float | None]:
    """The map page's KPI cards of a grid cell, today: indicator → number (None: no data)."""
    page.goto(f"{server}/?unit={grid}&window=today", wait_until="networkidle")
    page.locator("#unit-title").wait_for()
    values = {}
    for name in ("order_volume", "open_orders", "reopen_rate", "satisfaction_rate"):
        text = page.locator(f".kpi-value[data-indicator='{name}']").inner_text()
        number = re.sub(r"[^\d.]", "", text)
        values[name] = float(number) if number else None
    return values


def test_one_order_from_intake_to_reopen_and_close(server, live_city, page):
    store = Store(live_city)
    grid = store.read_frame("units", ["code", "level", "geometry"]).query("level == 'grid'").iloc[11]
    point = shapely.from_wkb(grid["geometry"]).representative_point()
    before = kpis(page, server, grid["code"])

    # Intake through the Open311 API, as a citizen's app would.
    form = urllib.parse.urlencode({"api_key": API_KEY, "service_code": "garbage_overflow", "lat": f"{point.y:.7f}",
                                   "long": f"{point.x:.7f}", "description": "Bins overflowing since Monday",
                                   "attribute[recurring]": "again"}).encode()
    request = urllib.request.Request(f"{server}/open311/v2/requests.json", data=form, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as answer:
        assert answer.status == 201
        order_id = json.loads(answer.read())[0]["service_request_id"]
    filed = kpis(page, server, grid["code"])
    assert filed["order_volume"] == (before["order_volume"] or 0) + 1
    assert filed["open_orders"] == (before["open_orders"] or 0) + 1

    # Dispatch and handle it in the UI.
    page.goto(f"{server}/orders/{order_id}", wait_until="networkidle")
    stored = WorkOrders(store).get(order_id).description
    assert stored.startswith("Bins overflowing since Monday") and "Seen before: It happened before" in stored
    assert page.locator("#order-description").inner_text() == stored
    for action in ("dispatch", "accept", "handle", "reply"):
        assert act(page, action) == "done", page.locator("#order-message").inner_text()  # as the test admin
    assert page.locator("#order-status").get_attribute("data-status") == "feedback"

    # The citizen is unsatisfied: the order goes back to the unit.
    act(page, "evaluate-unsatisfied")
    assert page.locator("#order-status").get_attribute("data-status") == "accepted"
    assert page.locator("#order-reopens").get_attribute("data-count") == "1"
    lanes = page.locator(".lane-step").evaluate_all("els => els.map(e => [e.dataset.action, e.dataset.lane])")
    assert [a for a, _ in lanes] == ["file", "dispatch", "accept", "handle", "reply", "reopen"]
    assert dict(lanes)["reopen"] == "citizen" and dict(lanes)["accept"].startswith("dept:")
    reopened = kpis(page, server, grid["code"])
    assert reopened["open_orders"] == filed["open_orders"]
    assert before["reopen_rate"] is None and reopened["reopen_rate"] == 100.0 or \
        reopened["reopen_rate"] > before["reopen_rate"]
    assert before["satisfaction_rate"] is None and reopened["satisfaction_rate"] == 0.0 or \
        reopened["satisfaction_rate"] < before["satisfaction_rate"]

    # Handled again, satisfied this time, closed: the order leaves the open count.
    page.goto(f"{server}/orders/{order_id}", wait_until="networkidle")
    for action in ("handle", "reply", "evaluate-satisfied", "close"):
        assert act(page, action) == "done", page.locator("#order-message").inner_text()  # as the test admin
    assert page.locator("#order-status").get_attribute("data-status") == "closed"
    closed = kpis(page, server, grid["code"])
    assert closed["open_orders"] == (before["open_orders"] or 0)
    assert closed["order_volume"] == filed["order_volume"]
    # The log rebuilds the order, and the API reads it back closed.
    work_orders = WorkOrders(store)
    assert work_orders.rebuilt_order(order_id)["status"] == "closed"
    with opener.open(f"{server}/open311/v2/requests/{order_id}.json", timeout=30) as answer:
        assert json.loads(answer.read())[0]["status"] == "closed"
    assert page.external_requests == [] and page.console_errors == []
