"""Who may do what: the pages, the Dash callbacks and the HTTP routes, each with the roles allowed to use it.

Every callback of the app and every URL rule of its server must have an entry here: one without is refused at
run time and fails ``tests/test_access_matrix.py``. docs/access.md has the same matrix for people.
"""
from __future__ import annotations

from layers.accounts import DEVICE_ROLE, ROLES

EVERYONE = frozenset(ROLES)
"""Any signed-in person."""
WATCHERS = EVERYONE | {DEVICE_ROLE}
"""Any signed-in person, and a wall screen's device token."""
OPERATORS = frozenset({"intake", "dispatcher", "handler", "supervisor", "admin"})
"""Those who work on orders (and so may read them: citizens' text, places, operators' notes)."""
ADMIN = frozenset({"admin"})

PAGES = {
    # path (or path template) of a Dash page → roles that may open it
    "/": WATCHERS,
    "/wall": WATCHERS,
    "/catalogue": WATCHERS,
    "/hotspots": WATCHERS,
    "/orders": OPERATORS,
    "/orders/<order_id>": OPERATORS,
    "/supervision": EVERYONE,   # leaders watch the board; only supervisors escalate (callback rule)
    "/alerts": EVERYONE,        # everyone signed in watches alerts; only operators act on them (callback rule)
}

CALLBACKS = {
    # "module.function" of a server-side callback → roles that may call it
    "dash.dash.update": WATCHERS,                      # Dash Pages: draws a page (its path is checked too)
    "dashboard.pages.overview.navigate": WATCHERS,
    "dashboard.pages.overview.restyle_map": WATCHERS,
    "dashboard.components.playback.control_playback": WATCHERS,
    "dashboard.components.playback.follow_play_head": WATCHERS,
    "dashboard.components.tour.drive": WATCHERS,
    "dashboard.components.tour.show": WATCHERS,
    "dashboard.pages.wall.show_topic": WATCHERS,
    "dashboard.pages.wall.refresh_status": WATCHERS,
    "dashboard.pages.wall.follow_alerts": WATCHERS,        # the wall's alert cue and ticker
    "dashboard.pages.overview.follow_the_city": WATCHERS,   # a new generation redraws the map page's data
    "dashboard.pages.overview.follow_the_card_alerts": WATCHERS,  # … and the open building card's alerts
    "dashboard.pages.orders.serve_block": OPERATORS,
    "dashboard.pages.orders.apply_filters": OPERATORS,
    "dashboard.pages.order.act_on_order": OPERATORS,   # and each action has its own roles (ORDER_ACTIONS)
    "dashboard.pages.supervision.escalate_red_cards": frozenset({"supervisor", "admin"}),
    "dashboard.pages.alerts.render": EVERYONE,
    # acknowledge, assign (files a work order), resolve: the dispatch center's and supervision's work
    "dashboard.pages.alerts.act": frozenset({"dispatcher", "supervisor", "admin"}),
}

ORDER_ACTIONS = {
    # an action of the lifecycle (layers/lifecycle.py) → roles that may take it
    "dispatch": frozenset({"dispatcher", "supervisor", "admin"}),
    "redispatch": frozenset({"dispatcher", "supervisor", "admin"}),
    "reject": frozenset({"handler", "dispatcher", "supervisor", "admin"}),
    "accept": frozenset({"handler", "supervisor", "admin"}),
    "handle": frozenset({"handler", "supervisor", "admin"}),
    "reply": frozenset({"handler", "supervisor", "admin"}),
    "evaluate": frozenset({"intake", "supervisor", "admin"}),   # the citizen's answer, taken by the hotline
    "reopen": frozenset({"intake", "supervisor", "admin"}),
    "close": frozenset({"intake", "dispatcher", "supervisor", "admin"}),
    "cancel": frozenset({"intake", "dispatcher", "supervisor", "admin"}),
    "escalate": frozenset({"dispatcher", "supervisor", "admin"}),
}
INCIDENTS = frozenset({"supervisor", "admin"})
"""Who may start a drill's incident (a tour step that plays one through the sample city's simulator, see
docs/tours.md): it fires real alerts on every screen of the city, so only supervision and admins, and only with the
whole city as their scope."""

HANDLER_ACTIONS = frozenset({"reject", "accept", "handle", "reply"})
"""Actions a department handler takes only on its own department's orders."""

PUBLIC = object()
"""A route anyone may use without signing in."""

ROUTES = {
    # Flask endpoint → roles (or PUBLIC). Dash's own routes are listed by their endpoint (their rule).
    "static": PUBLIC,
    "_dash_assets.static": PUBLIC,
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": PUBLIC,  # the JS bundles
    "/_favicon.ico": PUBLIC,
    "/_dash-layout": WATCHERS,
    "/_dash-dependencies": WATCHERS,
    "/_dash-update-component": WATCHERS,    # then CALLBACKS
    "/_reload-hash": WATCHERS,
    "/": WATCHERS,                          # then PAGES
    "/<path:path>": WATCHERS,               # then PAGES
    "buildings_tile": WATCHERS,
    "basemap_tile": WATCHERS,               # the city's own vector base map (CITYTWIN_BASEMAP_PMTILES)
    "generation": WATCHERS,                 # the key every open screen polls (dashboard/live.py)
    "alerts_api": EVERYONE,                 # GET /api/alerts, within the asker's area (dashboard/alerts_api.py)
    "health": PUBLIC,                       # which parts are up, for a load balancer (dashboard/health.py)
    "mvt_worker": PUBLIC,                   # a static script (the map's tile decoder)
    "export_kpis_csv": WATCHERS,
    "export_scene_html": WATCHERS,
    # Open311 GeoReport v2 is the public face: GETs open, POSTs need an API key (dashboard/open311).
    "open311.discovery": PUBLIC,
    "open311.services_list": PUBLIC,
    "open311.service_definition": PUBLIC,
    "open311.one_request": PUBLIC,
    "open311.list_requests": PUBLIC,
    "open311.create_request": PUBLIC,
    "open311.openapi_document": PUBLIC,
    "open311.unknown": PUBLIC,
    # the access layer itself (dashboard/auth)
    "auth.sign_in": PUBLIC,
    "auth.sign_out": PUBLIC,
    "auth.device_sign_in": PUBLIC,
    "auth.sso_start": PUBLIC,               # single sign-on (404 unless CITYTWIN_OIDC_ISSUER is set)
    "auth.sso_callback": PUBLIC,
    "auth.accounts": ADMIN,
    "auth.account_change": ADMIN,
    "auth.devices": ADMIN,
    "auth.api_keys": ADMIN,                 # Open311 API keys: create, list, revoke
    "auth.audit_page": ADMIN,
    "auth.audit_csv": ADMIN,
}

CSRF_EXEMPT = frozenset({"open311.create_request"})
"""State-changing routes called cross-origin by design (authenticated by an API key, not a cookie)."""
