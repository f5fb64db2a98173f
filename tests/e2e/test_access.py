"""Access in a real browser: sign-in in both languages and its lockout, a Futian district manager who sees only
Futian, a wall screen run from a device token, a viewer who cannot act, the audit page that shows it all, and pages
without a single Content-Security-Policy violation."""
from __future__ import annotations

import re

import pytest

from conftest import add_account, sign_in
from layers.accounts import Accounts
from layers.store import Store
from layers.workorders import OrderQuery, WorkOrders

pytestmark = pytest.mark.browser

FUTIAN, LUOHU = "440304", "440303"
CSP_WATCH = """document.addEventListener('securitypolicyviolation', e =>
    (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI));"""


def signed_out(page, base):
    page.context.clear_cookies()


def test_sign_in_in_both_languages_then_lockout(serve_app, city_db, page, monkeypatch):
    monkeypatch.setenv("CITYTWIN_SIGNIN_ATTEMPTS", "3")
    base = serve_app(city_db)
    password = add_account(city_db, "li.wei", roles=("dispatcher",))
    signed_out(page, base)
    page.goto(base + "/orders", wait_until="domcontentloaded")
    assert page.url.startswith(base + "/login?next=%2Forders")
    page.locator("a", has_text="中文").click()
    page.locator("#sign-in-button").wait_for()
    assert page.locator("h1").inner_text() == "登录" and page.locator("html").get_attribute("lang") == "zh-CN"
    # a wrong password, three times: locked, and then even the right one is refused
    for _ in range(3):
        page.fill("#name", "li.wei")
        page.fill("#password", "not the password")
        page.locator("#sign-in-button").click()
        page.locator("#sign-in-message").wait_for()
        assert page.locator("#sign-in-message").inner_text() == "账号或密码错误。"
    page.fill("#name", "li.wei")
    page.fill("#password", password)
    page.locator("#sign-in-button").click()
    assert "登录失败次数过多" in page.locator("#sign-in-message").inner_text()
    # another account signs in (in English) and lands where it was going
    other = add_account(city_db, "zhao.min", roles=("dispatcher",))
    page.goto(base + "/login?next=%2Forders", wait_until="domcontentloaded")
    page.fill("#name", "zhao.min")
    page.fill("#password", other)
    page.locator("#sign-in-button").click()
    page.wait_for_url(base + "/orders")
    page.locator("#order-count").wait_for()
    audit = Accounts(Store(city_db)).audit()
    assert [e["action"] for e in audit if e["target"] == "li.wei"][:4] == ["sign_in_locked"] + ["sign_in_failed"] * 3
    assert any(e["action"] == "sign_in" and e["actor"] == "zhao.min" for e in audit)


def test_a_futian_manager_sees_only_futian(serve_app, city_db, page):
    base = serve_app(city_db, account="futian.lead", roles=("viewer", "dispatcher"), scope=FUTIAN)
    page.add_init_script(CSP_WATCH)
    page.goto(base + "/", wait_until="networkidle")
    page.wait_for_function(f"document.querySelector('#unit-title')?.dataset.unit === '{FUTIAN}'")
    assert "Futian" in page.locator("#unit-title").inner_text()
    # the ranking lists Futian's streets only
    links = page.locator("#ranking a.rank-row").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert links and all(re.search(rf"unit={FUTIAN}\d+", href) for href in links), links
    # a deep link to another district, and the city above, are refused with a reason
    for unit in (LUOHU, "440300"):
        answer = page.goto(f"{base}/?unit={unit}", wait_until="domcontentloaded")
        assert answer.status == 403
        assert page.locator("#error-page").get_attribute("data-status") == "403"
        assert "outside your area" in page.locator("#error-reason").inner_text()
    # exports: Futian's KPI table; another district's refused
    csv_text = page.request.get(f"{base}/export/kpis.csv").text()
    assert {line.split(",")[0] for line in csv_text.splitlines()[1:]} == {FUTIAN}
    assert page.request.get(f"{base}/export/kpis.csv?unit={LUOHU}").status == 403
    # orders: the list counts Futian's only; a Luohu order's page is refused
    work_orders = WorkOrders(Store(city_db))
    page.goto(base + "/orders", wait_until="networkidle")
    expected = work_orders.list_orders(OrderQuery(unit=FUTIAN, limit=1)).total
    page.wait_for_function("() => /\\d/.test(document.querySelector('#order-count').innerText)")
    assert int(re.sub(r"\D", "", page.locator("#order-count").inner_text())) == expected
    luohu_order = work_orders.list_orders(OrderQuery(unit=LUOHU, limit=1)).orders[0].order_id
    assert page.goto(f"{base}/orders/{luohu_order}", wait_until="domcontentloaded").status == 403
    assert page.external_requests == []
    csp = page.evaluate("window.__csp || []")
    assert csp == [], csp
    # a street of Futian zoomed in to its 3D buildings: tiles cut by the app and parsed by our worker under the
    # CSP, no violation (a community's or grid cell's buildings come with the page, not as tiles)
    units = Store(city_db).read_frame("units", ["code", "level"])
    street = units[(units["level"] == "street") & units["code"].str.startswith(FUTIAN)]["code"].iloc[0]
    page.goto(f"{base}/?unit={street}", wait_until="networkidle")
    canvas = page.locator("#city-map canvas").first.bounding_box()
    page.mouse.move(canvas["x"] + canvas["width"] * 0.6, canvas["y"] + canvas["height"] * 0.5)
    with page.expect_request(lambda r: "/tiles/buildings/" in r.url, timeout=60_000):
        for _ in range(4):  # each notch of the wheel zooms in; tiles are asked for from zoom 15
            page.mouse.wheel(0, -500)
    page.wait_for_load_state("networkidle")
    csp = page.evaluate("window.__csp || []")
    assert csp == [], csp


def test_the_wall_runs_from_a_device_token_and_can_only_watch(serve_app, city_db, page):
    base = serve_app(city_db)
    token_id, token = Accounts(Store(city_db)).add_device("lobby", scope=None, created_by="test")
    signed_out(page, base)
    page.add_init_script(CSP_WATCH)
    page.goto(f"{base}/device/{token}", wait_until="networkidle")
    assert page.url == base + "/wall?kiosk=1"
    page.locator("#wall").wait_for()
    page.wait_for_function("document.querySelectorAll('.wall-cards-frame *').length > 0")
    for path in ("/orders", "/supervision", "/admin/audit"):
        assert page.request.get(base + path, headers={"Accept": "text/html"}).status == 403, path
    assert page.evaluate("window.__csp || []") == []
    # revoked: refused from the server's next look at the token (it keeps one for at most 2 s)
    Accounts(Store(city_db)).revoke_device(token_id)
    for _ in range(40):
        if page.goto(f"{base}/wall", wait_until="domcontentloaded").url.startswith(base + "/login"):
            break
    assert page.url.startswith(base + "/login")
    assert page.goto(f"{base}/device/{token}", wait_until="domcontentloaded").status == 403


def test_a_viewer_cannot_act_and_the_audit_page_shows_it(serve_app, city_db, page, browser):
    base = serve_app(city_db)  # the test admin (this page)
    viewer = sign_in(base, "visitor", add_account(city_db, "visitor", roles=("viewer",)))
    order = WorkOrders(Store(city_db)).list_orders(OrderQuery(status=["received"], limit=1)).orders[0]
    assert viewer.get(f"{base}/orders/{order.order_id}", headers={"Accept": "text/html"}).status_code == 403
    assert viewer.get(f"{base}/orders", headers={"Accept": "text/html"}).status_code == 403
    assert viewer.get(f"{base}/?unit={FUTIAN}", headers={"Accept": "text/html"}).status_code == 200
    # a state-changing request from another site is refused, even with the admin's cookie
    assert base.http.post(f"{base}/_dash-update-component", json={"output": "map-goto.data"},
                          headers={"Origin": "https://evil.example"}).status_code == 403
    page.add_init_script(CSP_WATCH)
    page.goto(base + "/admin/audit?actor=visitor", wait_until="domcontentloaded")
    rows = page.locator("#audit-table .audit-row")
    actions = rows.evaluate_all("els => els.map(e => e.dataset.action)")
    assert actions.count("refused") == 2 and "sign_in" in actions, actions
    assert "/orders" in page.locator("#audit-table").inner_text()
    csv_text = page.request.get(base + "/admin/audit.csv?actor=visitor").text()
    assert csv_text.startswith("entry_id,at,actor,address,action") and csv_text.count("refused") >= 2
    # pages without a CSP violation, signed in as the admin
    for path in ("/supervision", "/catalogue", "/hotspots", "/admin/accounts"):
        page.goto(base + path, wait_until="networkidle")
    assert page.evaluate("window.__csp || []") == []
    assert page.console_errors == [] and page.external_requests == []


def test_a_department_handler_sees_and_acts_only_on_its_departments_orders(serve_app, own_city_db, page):
    city_db = own_city_db  # it acts on an order
    department = "Urban Management Bureau"
    base = serve_app(city_db, account="urban.handler", roles=("handler",), departments=(department,))
    work_orders = WorkOrders(Store(city_db))
    # the order list counts its department's orders only
    page.goto(base + "/orders", wait_until="networkidle")
    expected = work_orders.list_orders(OrderQuery(department=[department], limit=1)).total
    page.wait_for_function("() => /\\d/.test(document.querySelector('#order-count').innerText)")
    assert int(re.sub(r"\D", "", page.locator("#order-count").inner_text())) == expected
    assert expected < work_orders.list_orders(OrderQuery(limit=1)).total
    # another department's order: refused, by page and by a replayed callback alike (see test_access_matrix)
    dispatched = work_orders.list_orders(OrderQuery(status=["dispatched"], limit=200)).orders
    theirs = next(o for o in dispatched if o.department != department)
    assert page.goto(f"{base}/orders/{theirs.order_id}", wait_until="domcontentloaded").status == 403
    # its own order: it accepts it, and the log names the account
    ours = next(o for o in dispatched if o.department == department)
    page.goto(f"{base}/orders/{ours.order_id}", wait_until="networkidle")
    assert page.locator("#order-actor").inner_text() == "urban.handler"
    page.locator(".action-button.action-accept").click()
    page.wait_for_function("() => /done|refused|conflict/.test(document.querySelector('#order-message').className)")
    assert "done" in page.locator("#order-message").get_attribute("class")
    last = work_orders.timeline(ours.order_id)[-1]
    assert (last.action, last.actor) == ("accept", "urban.handler")
    assert work_orders.get(theirs.order_id).version == theirs.version
