"""The authorization matrix, generated from the app itself: every URL rule of its server, every server-side
callback of its callback map and every page of its page registry, for every role (and a wall screen, and nobody)
and for scopes. A route, callback or page without a rule in dashboard/auth/rules.py fails here; the wrong role or
scope never gets 200 with data and nothing ever answers 500.

In process (Flask's test client), on a small city: the same gate that the served app runs."""
from __future__ import annotations

import json
import shutil
import time

import dash
import pandas as pd
import pytest

from callback_requests import body, callback_name, server_callbacks
from conftest import work_order_snapshot
from dashboard.auth import rules
from layers.accounts import ROLES
from layers.store import Store
from layers.workorders import OrderQuery, WorkOrders
from sample_data.__main__ import build

FUTIAN, LUOHU = "440304", "440303"
DEPARTMENT = "Urban Management Bureau"


@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    path = tmp_path_factory.mktemp("access") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def app(city_url):
    from app import create_app

    app = create_app(city_url)
    app.server.test_client().get("/login")  # Dash moves its callbacks into the app on the first request
    accounts = app.server.extensions["citytwin.auth"].accounts
    for role in ROLES:
        accounts.add(f"only-{role}", "a password long enough", roles={role})
    accounts.add("futian-dispatcher", "a password long enough", roles={"dispatcher"}, scope=FUTIAN)
    accounts.add("futian-viewer", "a password long enough", roles={"viewer"}, scope=FUTIAN)
    accounts.add("urban-handler", "a password long enough", roles={"handler"}, departments=[DEPARTMENT])
    return app


def client_as(app, who: str | None):
    """A test client signed in as account ``who`` (None: nobody; "device": a wall screen's token)."""
    client = app.server.test_client()
    client.delete_cookie("citytwin_session")
    accounts = app.server.extensions["citytwin.auth"].accounts
    if who == "device":
        token_id, _ = accounts.add_device("wall", scope=None, created_by="test")
        with client.session_transaction() as session:
            session.update(d=token_id, s="")
    elif who is not None:
        principal = accounts.get(who, cached=False)
        with client.session_transaction() as session:
            session.update(u=principal.name, g=principal.generation, t=time.time())
    return client


WHO = [*(f"only-{role}" for role in ROLES), "device", None]


def roles_of(who: str | None) -> frozenset:
    if who is None:
        return frozenset()
    return frozenset({"device"}) if who == "device" else frozenset({who.removeprefix("only-")})


# A request for every route: (method, path, form). A new route needs a line here, and a rule in rules.ROUTES.
ROUTE_SAMPLES = {
    "static": ("GET", "/static/none.txt", None),
    "_dash_assets.static": ("GET", "/assets/theme.css", None),
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>":
        ("GET", "/_dash-component-suites/dash/no-such-file.js", None),
    "/_favicon.ico": ("GET", "/_favicon.ico", None),
    "/_dash-layout": ("GET", "/_dash-layout", None),
    "/_dash-dependencies": ("GET", "/_dash-dependencies", None),
    "/_dash-update-component": None,  # every callback, below
    "/_reload-hash": ("GET", "/_reload-hash", None),
    "/": ("GET", "/", None),
    "/<path:path>": None,  # every page, below
    "buildings_tile": ("GET", "/tiles/buildings/15/26716/14240.pbf", None),
    "mvt_worker": ("GET", "/_citytwin/workers/mvt-worker.js", None),
    "export_kpis_csv": ("GET", "/export/kpis.csv", None),
    "export_scene_html": ("GET", "/export/scene.html", None),
    "open311.discovery": ("GET", "/open311/v2/discovery.json", None),
    "open311.services_list": ("GET", "/open311/v2/services.json", None),
    "open311.service_definition": ("GET", "/open311/v2/services/garbage_overflow.json", None),
    "open311.one_request": ("GET", "/open311/v2/requests/NO-SUCH-ORDER.json", None),
    "open311.list_requests": ("GET", "/open311/v2/requests.json", None),
    "open311.create_request": ("POST", "/open311/v2/requests.json", {"service_code": "garbage_overflow"}),
    "open311.openapi_document": ("GET", "/open311/v2/openapi.json", None),
    "open311.unknown": ("GET", "/open311/v2/no-such-thing", None),
    "auth.sign_in": ("GET", "/login", None),
    "auth.sign_out": ("POST", "/logout", {}),
    "auth.device_sign_in": ("GET", "/device/not.a-token", None),
    "auth.accounts": ("GET", "/admin/accounts", None),
    "auth.account_change": ("POST", "/admin/accounts/nobody-at-all", {"active": "0"}),
    "auth.devices": ("GET", "/admin/devices", None),
    "auth.audit_page": ("GET", "/admin/audit", None),
    "auth.audit_csv": ("GET", "/admin/audit.csv", None),
    "generation": ("GET", "/api/generation", None),
    "alerts_api": ("GET", "/api/alerts", None),
    "health": ("GET", "/health", None),
}


def test_every_route_callback_and_page_has_a_rule(app):
    endpoints = {rule.endpoint for rule in app.server.url_map.iter_rules()}
    assert endpoints - set(rules.ROUTES) == set(), "routes without an access rule (dashboard/auth/rules.py)"
    assert endpoints - set(ROUTE_SAMPLES) == set(), "routes the matrix does not try (ROUTE_SAMPLES)"
    names = {callback_name(entry) for entry in server_callbacks(app).values()}
    assert names - set(rules.CALLBACKS) == set(), "callbacks without an access rule"
    pages = {page.get("path_template") or page["path"] for page in dash.page_registry.values()}
    assert pages - set(rules.PAGES) == set(), "pages without an access rule"
    assert set(rules.ORDER_ACTIONS) >= {"dispatch", "accept", "handle", "close", "cancel", "escalate"}


def _refused(response, who) -> bool:
    if who is None:
        return response.status_code in (302, 401) and (response.status_code == 401 or
                                                       response.headers["Location"].startswith("/login"))
    return response.status_code == 403


@pytest.mark.parametrize("who", WHO)
def test_routes_by_role(app, who):
    for endpoint, sample in ROUTE_SAMPLES.items():
        if sample is None:
            continue
        method, path, form = sample
        client = client_as(app, who)
        response = client.open(path, method=method, data=form, headers={"Accept": "text/html"})
        rule = rules.ROUTES[endpoint]
        assert response.status_code < 500, (who, path, response.status_code)
        assert b"Traceback" not in response.data and b"/work/" not in response.data, (who, path)
        if rule is rules.PUBLIC or roles_of(who) & rule:
            assert response.status_code not in (401, 403) or endpoint in (
                "open311.create_request", "auth.device_sign_in"), (who, path, response.status_code)
        else:
            assert _refused(response, who), (who, path, response.status_code)


@pytest.mark.parametrize("who", WHO)
def test_pages_by_role(app, who):
    for page in rules.PAGES:
        path = page.replace("<order_id>", "NO-SUCH-ORDER")
        client = client_as(app, who)
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.status_code < 500
        # the same page drawn by Dash Pages' own callback (what the browser's router asks for)
        key = next(k for k, e in server_callbacks(app).items() if callback_name(e) == "dash.dash.update")
        drawn = client.post("/_dash-update-component", json=body(key, app.callback_map[key], [path, ""]))
        assert drawn.status_code < 500
        if roles_of(who) & rules.PAGES[page]:
            assert response.status_code == 200, (who, path, response.status_code)
            assert drawn.status_code == 200, (who, path, drawn.status_code)
        else:
            assert _refused(response, who), (who, path, response.status_code)
            assert drawn.status_code in (401, 403) and b"response" not in drawn.data, (who, path)


@pytest.mark.parametrize("who", WHO)
def test_callbacks_by_role(app, who, city_url):
    store = Store(city_url)
    before = work_order_snapshot(store)
    for key, entry in server_callbacks(app).items():
        name = callback_name(entry)
        client = client_as(app, who)
        values = {"dash.dash.update": ["/", ""]}.get(name, [1])
        response = client.post("/_dash-update-component", json=body(key, entry, values, wildcard="dispatch"))
        assert response.status_code < 500, (who, name, response.status_code)
        if roles_of(who) & rules.CALLBACKS[name]:
            assert response.status_code not in (401, 403), (who, name, response.get_data(as_text=True)[:200])
        else:
            assert response.status_code in (401, 403), (who, name, response.status_code)
            assert b'"response"' not in response.data
    if who not in ("only-dispatcher", "only-supervisor", "only-admin"):
        assert work_order_snapshot(store) == before, who


def test_unknown_paths_and_files_are_404(app):
    client = client_as(app, "only-admin")
    for path in ("/no-such-page", "/orders/", "/wall/extra", "/_dash-component-suites/dash/no-such-file.js",
                 "/static/../app.py", "/assets/no-such.css"):
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 404, path
        assert b"Traceback" not in response.data
    assert b'id="error-page"' in client.get("/no-such-page", headers={"Accept": "text/html"}).data


def test_an_unknown_callback_is_refused(app):
    client = client_as(app, "only-admin")
    response = client.post("/_dash-update-component", json={"output": "made-up.children", "inputs": []})
    assert response.status_code == 403 and b"no such callback" in response.data
    assert client.post("/_dash-update-component", data=b"not json",
                       content_type="application/json").status_code == 400


def test_headers_csrf_and_size_limits(app):
    client = client_as(app, "only-admin")
    page = client.get("/wall", headers={"Accept": "text/html"})
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'self'" in csp and "https:" not in csp
    assert all(f"'{h.strip(chr(39))}'" in csp for h in app.csp_hashes())
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Referrer-Policy"]
    assert "Server" not in page.headers
    key = next(k for k, e in server_callbacks(app).items() if callback_name(e).endswith("navigate"))
    foreign = client.post("/_dash-update-component", json=body(key, app.callback_map[key]),
                          headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and b"another site" in foreign.data
    referred = client.post("/_dash-update-component", json=body(key, app.callback_map[key]),
                           environ_base={"HTTP_ORIGIN": ""}, headers={"Referer": "https://evil.example/x"})
    assert referred.status_code == 403
    big = client.post("/_dash-update-component", data=b"x" * (3 * 1024 * 1024), content_type="application/json")
    assert big.status_code == 413


def test_scope_futian(app, city_url):
    futian = client_as(app, "futian-dispatcher")
    admin = client_as(app, "only-admin")
    html = {"Accept": "text/html"}
    # the map: starts in Futian, refuses Luohu and the city above, by URL and through Dash's page callback
    assert futian.get("/", headers=html).headers["Location"].endswith(f"unit={FUTIAN}")
    assert futian.get(f"/?unit={FUTIAN}", headers=html).status_code == 200
    assert futian.get(f"/?unit={LUOHU}", headers=html).status_code == 403
    assert futian.get("/?unit=440300", headers=html).status_code == 403
    key = next(k for k, e in server_callbacks(app).items() if callback_name(e) == "dash.dash.update")
    refused = futian.post("/_dash-update-component", json=body(key, app.callback_map[key], ["/", f"?unit={LUOHU}"]))
    assert refused.status_code == 403 and LUOHU.encode() not in refused.data
    drawn = futian.post("/_dash-update-component", json=body(key, app.callback_map[key], ["/", ""]))
    assert drawn.status_code == 200 and f'"data-unit": "{FUTIAN}"' in drawn.get_data(as_text=True).replace(
        '":"', '": "')
    # exports: Futian's rows only, even after the city's export was cached for the admin (Superset's test)
    city_csv = admin.get("/export/kpis.csv").get_data(as_text=True)
    futian_csv = futian.get("/export/kpis.csv").get_data(as_text=True)
    assert {line.split(",")[0] for line in futian_csv.splitlines()[1:]} == {FUTIAN}
    assert {line.split(",")[0] for line in city_csv.splitlines()[1:]} == {"440300"}
    assert futian.get(f"/export/kpis.csv?unit={LUOHU}").status_code == 403
    assert futian.get(f"/export/scene.html?unit={LUOHU}").status_code == 403
    # orders: the list holds Futian's only; another district's order page is refused
    work_orders = WorkOrders(Store(city_url))
    in_futian = work_orders.list_orders(OrderQuery(unit=FUTIAN, limit=1)).orders[0]
    in_luohu = work_orders.list_orders(OrderQuery(unit=LUOHU, limit=1)).orders[0]
    assert futian.get(f"/orders/{in_futian.order_id}", headers=html).status_code == 200
    assert futian.get(f"/orders/{in_luohu.order_id}", headers=html).status_code == 403
    grid_key = next(k for k, e in server_callbacks(app).items() if callback_name(e).endswith("serve_block"))
    filters = {"status": [], "event_type": [], "department": [], "channel": [], "unit": None, "overdue": False,
               "escalated": False, "q": None, "lang": "en"}
    rows = futian.post("/_dash-update-component", json=body(grid_key, app.callback_map[grid_key],
                                                            [{"startRow": 0, "endRow": 100}, filters])).get_json()
    total = rows["response"]["order-grid"]["getRowsResponse"]["rowCount"]
    assert total == work_orders.list_orders(OrderQuery(unit=FUTIAN, limit=1)).total
    everything = admin.post("/_dash-update-component", json=body(grid_key, app.callback_map[grid_key],
                                                                 [{"startRow": 0, "endRow": 100}, filters])).get_json()
    assert everything["response"]["order-grid"]["getRowsResponse"]["rowCount"] > total
    luohu_list = futian.post("/_dash-update-component", json=body(
        grid_key, app.callback_map[grid_key], [{"startRow": 0, "endRow": 100}, {**filters, "unit": LUOHU}]))
    assert luohu_list.get_json()["response"]["order-grid"]["getRowsResponse"]["rowCount"] == 0


def test_handler_sees_and_acts_on_its_department_only(app, city_url):
    handler = client_as(app, "urban-handler")
    work_orders = WorkOrders(Store(city_url))
    grid_key = next(k for k, e in server_callbacks(app).items() if callback_name(e).endswith("serve_block"))
    filters = {"status": [], "event_type": [], "department": [], "channel": [], "unit": None, "overdue": False,
               "escalated": False, "q": None, "lang": "en"}
    rows = handler.post("/_dash-update-component", json=body(
        grid_key, app.callback_map[grid_key], [{"startRow": 0, "endRow": 100}, filters])).get_json()
    grid = rows["response"]["order-grid"]["getRowsResponse"]
    assert grid["rowCount"] == work_orders.list_orders(OrderQuery(department=[DEPARTMENT], limit=1)).total
    assert {row["department"] for row in grid["rowData"]} == {DEPARTMENT}
    ours = work_orders.list_orders(OrderQuery(status=["dispatched"], department=[DEPARTMENT], limit=1)).orders[0]
    theirs = work_orders.list_orders(OrderQuery(status=["dispatched"], limit=200)).orders
    theirs = next(o for o in theirs if o.department != DEPARTMENT)
    html = {"Accept": "text/html"}
    assert handler.get(f"/orders/{theirs.order_id}", headers=html).status_code == 403
    act_key = next(k for k, e in server_callbacks(app).items() if callback_name(e).endswith("act_on_order"))
    for order, expected in ((theirs, "refused"), (ours, "done")):
        state = {"order_id": order.order_id, "version": order.version, "lang": "en"}
        answer = handler.post("/_dash-update-component", json=body(
            act_key, app.callback_map[act_key], [1, state, "", None], wildcard="accept"))
        assert answer.status_code == 200
        assert f"order-message {expected}" in answer.get_data(as_text=True), answer.get_data(as_text=True)[:300]
    assert work_orders.get(theirs.order_id).version == theirs.version
    accepted = work_orders.timeline(ours.order_id)[-1]
    assert (accepted.action, accepted.actor) == ("accept", "urban-handler")


def test_a_viewer_replaying_a_captured_action_changes_nothing(app, city_url):
    store = Store(city_url)
    order = WorkOrders(store).list_orders(OrderQuery(status=["received"], limit=1)).orders[0]
    act_key = next(k for k, e in server_callbacks(app).items() if callback_name(e).endswith("act_on_order"))
    captured = body(act_key, app.callback_map[act_key],
                    [1, {"order_id": order.order_id, "version": order.version, "lang": "en"}, "", None],
                    wildcard="cancel")
    before = work_order_snapshot(store)
    for who in ("only-viewer", "futian-viewer", "device", None):
        answer = client_as(app, who).post("/_dash-update-component", json=captured)
        assert answer.status_code in (401, 403), who
    # an intake operator may cancel, but the actor written is the account, whatever the request says
    answer = client_as(app, "only-intake").post("/_dash-update-component", json={
        **captured, "state": captured["state"][:1] + [{"id": "order-note", "property": "value",
                                                       "value": "supervision sweep"}] + captured["state"][2:]})
    assert "order-message done" in answer.get_data(as_text=True)
    assert work_order_snapshot(store) != before
    assert WorkOrders(store).timeline(order.order_id)[-1].actor == "only-intake"
