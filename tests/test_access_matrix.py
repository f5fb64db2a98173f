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
from conftest import app_in_process, built_test_city, work_order_snapshot
from dashboard.auth import rules
from layers.accounts import ROLES
from layers.store import Store
from layers.workorders import OrderQuery, WorkOrders
from sample_data.__main__ import build

FUTIAN, LUOHU = "440304", "440303"
DEPARTMENT = "Urban Management Bureau"


@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    return built_test_city(tmp_path_factory, "access")


@pytest.fixture(scope="module")
def app(city_url):
    app = app_in_process(city_url)
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
    "basemap_tile": ("GET", "/basemap/12/3346/1784.mvt", None),
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
    "auth.sso_start": ("GET", "/login/sso", None),              # 404 here: no single sign-on is set up
    "auth.sso_callback": ("GET", "/login/sso/callback?state=forged&code=x", None),
    "auth.accounts": ("GET", "/admin/accounts", None),
    "auth.account_change": ("POST", "/admin/accounts/nobody-at-all", {"active": "0"}),
    "auth.devices": ("GET", "/admin/devices", None),
    "auth.api_keys": ("GET", "/admin/api-keys", None),
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
    assert "'unsafe-inline'" not in csp.split("style-src")[0]
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


# --- scope everywhere: the tile edge, the supervision board, the wall, hotspots, alerts -------------------------

def as_principal(app, who: str):
    """A request context of the app in which ``who`` is the one asking (for the pages' own functions)."""
    from flask import g

    context = app.server.test_request_context("/")
    context.push()
    g.principal = app.server.extensions["citytwin.auth"].accounts.get(who, cached=False)
    return context


def straddling_tile(z: int = 15):
    """A tile holding buildings of Futian and of another district (the densest such), and that district."""
    import numpy as np

    from dashboard import services
    from dashboard.maps.tiles import BuildingTiles
    city = services.get().city()
    buildings = city["buildings"]
    district = buildings["grid_code"].map(city.hierarchy["district"]).to_numpy()
    index = BuildingTiles.build(buildings)
    bounds = buildings.geometry.bounds
    best = None
    for lon, lat in zip((bounds["minx"] + bounds["maxx"]) / 2, (bounds["miny"] + bounds["maxy"]) / 2):
        x, y = BuildingTiles.tile_of(lon, lat, z)
        rows = index.rows_in(z, x, y)
        districts = set(district[rows])
        if FUTIAN in districts and len(districts) > 1 and (best is None or len(rows) > best[3]):
            best = (x, y, sorted(districts - {FUTIAN})[0], len(rows))
    assert best is not None, "the test city has no tile across Futian's edge"
    ids_of = lambda d: set(buildings["building_id"][district == d])  # noqa: E731
    return z, best[0], best[1], ids_of(FUTIAN), ids_of(best[2]), best[2]


def tile_ids(client, z, x, y, **headers) -> tuple[set, str]:
    import mapbox_vector_tile

    answer = client.get(f"/tiles/buildings/{z}/{x}/{y}.pbf?color=use", headers=headers)
    assert answer.status_code == 200, answer.status_code
    layers = mapbox_vector_tile.decode(answer.data) if answer.data else {}
    return {f["properties"]["building_id"] for f in layers.get("buildings", {}).get("features", [])}, \
        answer.headers["ETag"]


def test_a_tile_across_the_scope_edge_holds_only_the_scope_and_is_never_served_to_another(app):
    z, x, y, futian_ids, other_ids, other = straddling_tile()
    accounts = app.server.extensions["citytwin.auth"].accounts
    if accounts.get("other-district-viewer", cached=False) is None:
        accounts.add("other-district-viewer", "a password long enough", roles={"viewer"}, scope=other)
    admin, futian = client_as(app, "only-admin"), client_as(app, "futian-viewer")
    neighbour = client_as(app, "other-district-viewer")
    # the city's tile first (and so cached), then the scopes': each gets its own buildings only
    everything, city_tag = tile_ids(admin, z, x, y)
    assert everything & futian_ids and everything & other_ids      # the tile straddles the edge
    in_futian, futian_tag = tile_ids(futian, z, x, y)
    assert in_futian == everything & futian_ids
    in_other, other_tag = tile_ids(neighbour, z, x, y)
    assert in_other == everything & other_ids
    assert len({city_tag, futian_tag, other_tag}) == 3
    # a scope's tile first, then the city's: the cut tile is not what the city gets
    z2, x2, y2 = z + 1, 2 * x, 2 * y
    first, _ = tile_ids(futian, z2, x2, y2)
    assert first <= futian_ids
    assert tile_ids(admin, z2, x2, y2)[0] >= first
    # a browser's revalidation with another scope's ETag gets its own tile, not a 304 for the other's
    revalidated = futian.get(f"/tiles/buildings/{z}/{x}/{y}.pbf?color=use", headers={"If-None-Match": city_tag})
    assert revalidated.status_code == 200


def find(component, component_id):
    """The component with ``id`` in a Dash layout (depth first), or None."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and not isinstance(child, (str, int, float)):
            found = find(child, component_id)
            if found is not None:
                return found
    return None


def test_the_supervision_board_counts_only_the_scope(app):
    from dash import html

    from dashboard import services
    from dashboard.pages import supervision
    from metrics.clocks import card_counts

    now = pd.Timestamp.now(tz="Asia/Shanghai")
    orders, _ = services.get().open_orders(fresh=True)

    def board_of(who):
        context = as_principal(app, who)
        try:
            return html.Div(supervision.board(now, "en"))
        finally:
            context.pop()

    def tile(board, name):
        return int(find(board, f"board-{name}").children[0].children.replace(",", ""))

    expected = card_counts(orders[orders["district"] == FUTIAN], now, by="district").iloc[0]
    city = card_counts(orders, now, by="district")[["open", "red"]].sum()
    futian_board, city_board = board_of("futian-viewer"), board_of("only-admin")
    assert (tile(futian_board, "open"), tile(futian_board, "red")) == (expected["open"], expected["red"])
    assert tile(city_board, "open") == city["open"] > expected["open"]
    districts = find(futian_board, "board-districts")
    assert FUTIAN in str(districts) and LUOHU not in str(districts)
    # a handler sees its department's cards only
    handler_board = board_of("urban-handler")
    ours = orders[orders["department"] == DEPARTMENT]
    assert tile(handler_board, "open") == card_counts(ours, now, by="department")["open"].sum() < city["open"]


def test_the_wall_ticker_hotspots_alerts_and_early_warning_follow_the_scope(app, monkeypatch):
    from dashboard import services
    from dashboard.pages import wall

    seen = {}
    real_ticker, real_alerts, real_early = wall.ticker_items, wall.alert_ticker_items, wall.early_warning_block
    monkeypatch.setattr(wall, "ticker_items", lambda alarms, children, hotspots, lang: seen.update(
        alarms=alarms, hotspots=hotspots) or real_ticker(alarms, children, hotspots, lang))
    monkeypatch.setattr(wall, "alert_ticker_items", lambda alerts, names, lang: seen.update(alerts=alerts) or
                        real_alerts(alerts, names, lang))
    monkeypatch.setattr(wall, "early_warning_block", lambda facts, names, lang: seen.update(early=facts) or
                        real_early(facts, names, lang))
    city = services.get().city()
    accounts = app.server.extensions["citytwin.auth"].accounts
    if accounts.get("luohu-viewer", cached=False) is None:
        accounts.add("luohu-viewer", "a password long enough", roles={"viewer"}, scope=LUOHU)

    def panels(who):
        context = as_principal(app, who)
        try:
            wall.status_panels(wall.parse_config(lang="en"))
            return dict(seen)
        finally:
            context.pop()

    everything = panels("only-admin")            # the city's first: what is remembered must not leak below
    cut_somewhere = set()
    for who, scope in (("futian-viewer", FUTIAN), ("luohu-viewer", LUOHU)):
        codes = city.units_within(scope)
        shown = panels(who)
        for name in ("alarms", "hotspots"):
            assert set(shown[name]["grid_code"]) <= codes, (who, name)
            assert len(shown[name]) == int(everything[name]["grid_code"].isin(codes).sum()), (who, name)
            if len(shown[name]) < len(everything[name]):
                cut_somewhere.add(name)
        assert set(shown["early"]["anomalies"]["unit_code"]) <= codes
        alerts = shown["alerts"]
        assert set(alerts["unit_code"].where(alerts["unit_code"].notna(), alerts["grid_code"])) <= codes
    assert cut_somewhere == {"alarms", "hotspots"}   # the city has alarms and hotspots outside each scope
    assert len(panels("only-admin")["hotspots"]) == len(everything["hotspots"])  # and the city's again, whole


def test_the_hotspots_page_lists_only_the_scope(app):
    from dashboard import services
    from dashboard.pages import hotspots

    found = services.get().hotspots("30d")
    in_futian = found["grid_code"].isin(services.get().city().units_within(FUTIAN))
    assert in_futian.any() and not in_futian.all()

    def count(who):
        context = as_principal(app, who)
        try:
            return int(find(hotspots.layout(window="30d"), "hotspots-title").to_plotly_json()["props"]["data-count"])
        finally:
            context.pop()

    assert count("only-admin") == len(found)
    assert count("futian-viewer") == int(in_futian.sum())


def test_alerts_outside_the_scope_are_not_listed_shown_or_acted_on(app, city_url):
    from dashboard import services
    from dashboard.pages import alerts as alerts_page
    from metrics.alert_rules import KINDS

    city = services.get().city()
    book = services.get().alerts()
    grids = city.hierarchy

    def fire(district):
        grid = grids.index[grids["district"] == district][0]
        with book.store.engine.begin() as conn:
            return book.fire(conn, rule={"id": f"scope-test-{district}", "kind": next(iter(KINDS)), "severity": "critical",
                                         "title": "scope test"},
                             place={"place": f"grid:{grid}", "grid_code": grid, "evidence": "test"},
                             at=pd.Timestamp.now(tz="Asia/Shanghai"))

    in_futian, in_luohu = fire(FUTIAN), fire(LUOHU)

    def listed(who):
        context = as_principal(app, who)
        try:
            return set(alerts_page.filtered_alerts(alerts_page.normalise_filters(status="all"))["alert_id"]), \
                str(alerts_page.alert_detail(in_luohu, "en")[0])
        finally:
            context.pop()

    futian_ids, futian_detail = listed("futian-dispatcher")
    city_ids, city_detail = listed("only-admin")
    assert in_futian in futian_ids and in_luohu not in futian_ids and {in_futian, in_luohu} <= city_ids
    assert "alert-detail-id" not in futian_detail and "alert-detail-id" in city_detail
    # acting on the Luohu alert by replaying the page's callback is refused, audited, and changes nothing
    key = next(k for k, e in server_callbacks(app).items() if callback_name(e) == "dashboard.pages.alerts.act")
    before = book.get(in_luohu).version
    for alert_id, outcome in ((in_luohu, "refused"), (in_futian, "done")):
        answer = client_as(app, "futian-dispatcher").post("/_dash-update-component", json=body(
            key, app.callback_map[key], [[1], alert_id, "someone else", "", None, {"lang": "en"}, 0],
            wildcard="acknowledge"))
        assert answer.status_code == 200 and f"order-message {outcome}" in answer.get_data(as_text=True), \
            answer.get_data(as_text=True)[:300]
    assert book.get(in_luohu).version == before and book.get(in_luohu).status == "firing"
    # the actor is the signed-in account, whatever the request's "actor" field says
    assert book.get(in_futian).acknowledged_by == "futian-dispatcher"
    audit = app.server.extensions["citytwin.auth"].accounts.audit(actor="futian-dispatcher", action="alert.")
    assert {(e["target"], e["outcome"]) for e in audit} >= {(in_luohu, "refused"), (in_futian, "ok")}


def test_every_inline_script_a_page_runs_is_allowed_by_its_csp(app):
    """The CSP names every inline script a page runs by its hash (Dash's clientside callbacks, the renderer): no
    page works by 'unsafe-inline'."""
    import base64
    import hashlib
    import re

    admin = client_as(app, "only-admin")
    for path in ("/login", "/catalogue", "/wall", "/"):
        answer = admin.get(path, headers={"Accept": "text/html"}, follow_redirects=True)
        assert answer.status_code == 200, path
        policy = answer.headers["Content-Security-Policy"]
        scripts = re.findall(r"<script(?![^>]*\b(?:src|type)=)[^>]*>(.*?)</script>", answer.get_data(as_text=True),
                             re.S)
        for script in scripts:
            if "does not support Internet Explorer" in script:  # inside <!--[if IE]>: never runs
                continue
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy, (path, script[:120])


def test_no_map_accessor_needs_eval():
    """deckgl-dash compiles an "@@=" accessor that holds an operator with Function() (an eval, which a CSP without
    'unsafe-eval' forbids); a property path it reads without. Every accessor the dashboard writes is a path."""
    import re
    from pathlib import Path

    import dashboard

    accessors = [(path.name, text) for path in Path(dashboard.__file__).parent.rglob("*.py")
                 for text in re.findall(r'"@@=([^"]*)"', path.read_text())]
    assert ("deck.py", "properties.fill") in accessors
    compiled = [(name, text) for name, text in accessors if re.search(r"[?:<>=!&|+\-*/%\[\]()]", text)]
    assert compiled == [], compiled
