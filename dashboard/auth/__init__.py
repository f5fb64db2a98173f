"""The access layer: sign-in, sessions, the gate every request passes, hardened HTTP answers and the audit trail.

``setup(app)`` (one call in ``create_app``) adds it all to the Dash app's Flask server:

* ``/login`` (both languages), ``/logout`` (POST), ``/device/<token>`` (a wall screen's device token),
  ``/admin/accounts``, ``/admin/devices``, ``/admin/audit`` (and ``.csv``) for admins;
* a gate before every request: the route's rule (:mod:`dashboard.auth.rules`), then for a page its path and the
  unit it names (scope), for a Dash callback the callback's own rule; unknown routes and callbacks are refused;
* an Origin check on every state-changing request (CSRF), security headers on every answer (CSP with Dash's
  inline-script hashes, frame-ancestors from ``CITYTWIN_FRAME_ANCESTORS``, nosniff, Referrer-Policy), styled 403 /
  404 / 413 pages, no traceback or version in any answer.

Elsewhere in the app: :func:`current` is who is asking, :func:`record` appends to the audit trail (one line:
``auth.record("alert.acknowledge", alert_id)``), :func:`in_scope` says whether a unit is inside the asker's scope.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import secrets
import sys
import time
from urllib.parse import urlencode, urlparse

import dash
import flask

from layers import store_health
from flask import Blueprint, g, redirect, render_template_string, request, session
from werkzeug.exceptions import HTTPException, NotFound

from dashboard.auth import rules
from dashboard.auth.lockout import Lockout
from dashboard.settings import Settings
from dashboard.auth.templates import (ACCOUNTS_PAGE, API_KEYS_PAGE, AUDIT_PAGE, DEVICES_PAGE, ERROR_PAGE, SIGN_IN_PAGE,
                                      text)
from layers.accounts import ROLES, AccountError, Accounts, Principal

log = logging.getLogger("citytwin.access")
blueprint = Blueprint("auth", __name__)

SESSION_COOKIE = "citytwin_session"
MAX_REQUEST_BYTES = 2 * 1024 * 1024
SEEN_EVERY_SECONDS = 60        # how often a session's last-seen time is rewritten (a new cookie)
EXTENSION = "citytwin.auth"


class Access:
    """What the gate needs, kept on the Flask app (``server.extensions["citytwin.auth"]``)."""

    def __init__(self, app: dash.Dash, accounts: Accounts, lockout: Lockout, settings: Settings):
        self.app = app
        self.accounts = accounts
        self.lockout = lockout
        self.idle_seconds = settings.idle_minutes * 60
        self.frame_ancestors = settings.frame_ancestors
        self.extra_origins = set(settings.origins)
        self.sso = None  # dashboard.auth.sso.SingleSignOn when CITYTWIN_OIDC_ISSUER is set
        self._csp: str | None = None
        self._callbacks: dict[str, str] | None = None

    def callback_name(self, output: str) -> str | None:
        """``module.function`` of the server-side callback that writes ``output`` (None: no such callback)."""
        if self._callbacks is None or output not in self._callbacks:
            self._callbacks = {key: f"{entry['callback'].__module__}.{entry['callback'].__name__}"
                               for key, entry in self.app.callback_map.items() if entry.get("callback")}
        return self._callbacks.get(output)

    def csp(self) -> str:
        if self._csp is None:
            from dashboard import services

            basemap = services.get().settings.basemap_url or ""  # the raster tile server's origin, if any
            tile_origin = ""
            if basemap:
                parsed = urlparse(basemap.replace("{", "").replace("}", ""))
                tile_origin = f" {parsed.scheme}://{parsed.netloc}" if parsed.scheme and parsed.netloc else ""
            hashes = " ".join(self.app.csp_hashes())  # each already quoted: 'sha256-…'
            self._csp = "; ".join([
                "default-src 'self'",
                # 'unsafe-eval' stays for now: every map accessor is a property path (deckgl-dash compiles none with
                # Function()), and the pages load without an eval, but drilling down on the map stops without it
                # (tests/e2e/test_map.py::test_drill_down…; the script that evals is not yet found). No inline script
                # runs but Dash's own (by hash), and no script from another origin.
                f"script-src 'self' 'unsafe-eval' {hashes}",
                "style-src 'self' 'unsafe-inline'",      # AG Grid and React write style elements at run time
                f"img-src 'self' data: blob:{tile_origin}",
                f"connect-src 'self' data: blob:{tile_origin}",
                "worker-src 'self' blob:",               # deck.gl's and the tile decoder's workers
                "font-src 'self' data:",
                "object-src 'none'",
                "base-uri 'self'",
                "form-action 'self'",
                f"frame-ancestors {self.frame_ancestors}",
            ])
        return self._csp


def _access() -> Access:
    return flask.current_app.extensions[EXTENSION]


# --- who is asking ----------------------------------------------------------------------------------------------

def current() -> Principal | None:
    """The signed-in person or wall screen of this request (None outside a request or when nobody is)."""
    if not flask.has_request_context():
        return None
    return g.get("principal")


def actor() -> str:
    """The name to write into a log for this request."""
    principal = current()
    return principal.actor if principal else "anonymous"


def address() -> str:
    return (request.remote_addr or "") if flask.has_request_context() else ""


def record(action: str, target: str = "", *, outcome: str = "ok", detail: str = "", who: str | None = None) -> None:
    """Append one entry to the audit trail, as the person of this request (or ``who``). Never raises: a failed
    audit write is reported in the log and the request goes on."""
    try:
        accounts = _access().accounts if flask.has_app_context() else None
        if accounts is None:
            return
        accounts.record(who or actor(), action, target, outcome=outcome, detail=detail, address=address())
    except Exception as error:  # noqa: BLE001
        log.error("citytwin: could not write the audit trail (%s %s): %r", action, target, error)


def in_scope(code: str | None) -> bool:
    """Whether unit ``code`` is inside the asker's scope (the scope unit or below it)."""
    principal = current()
    if principal is None or principal.scope is None:
        return True
    if not code:
        return False
    from dashboard import services
    return any(unit["code"] == principal.scope for unit in services.get().directory().lineage(code))


def scope_unit() -> str | None:
    """The unit the asker is bound to (None: the whole city)."""
    principal = current()
    return principal.scope if principal else None


def scope_codes() -> frozenset | None:
    """Every unit code inside the asker's scope (its unit and all below it), remembered per generation and scope;
    None: the whole city (nothing to cut)."""
    scope = scope_unit()
    if scope is None:
        return None
    from dashboard import services
    service = services.get()
    return service.memo(("scope_codes", scope), lambda: service.city().units_within(scope))


def within_scope(frame, *columns: str):
    """The rows of ``frame`` whose place is inside the asker's scope: the first of ``columns`` that is filled names
    the place (a unit or grid code). The frame itself for a city-wide asker."""
    codes = scope_codes()
    if codes is None or not len(frame):
        return frame
    place = frame[columns[0]]
    for column in columns[1:]:
        place = place.where(place.notna(), frame[column])
    return frame[place.isin(codes).to_numpy()]


def department_bound() -> frozenset:
    """The departments a handler-only account is bound to (it sees those departments' orders only); empty: any."""
    principal = current()
    if principal is None or not principal.departments or principal.roles - {"handler", "viewer"}:
        return frozenset()
    return principal.departments


def default_unit(unit: str | None) -> str | None:
    """The unit a page shows when the URL names none: the asker's scope (a district's manager starts in the
    district), else the city."""
    return unit or scope_unit()


class OutOfScope(ValueError):
    """A request for something outside the asker's scope (the message says so, without naming what exists)."""


def scoped_filters(filters: dict) -> dict:
    """The order list's filters narrowed to the asker's scope (unit) and departments (a handler's)."""
    principal = current()
    if principal is None:
        raise OutOfScope("not signed in")
    filters = dict(filters)
    if principal.scope:
        if filters.get("unit") and not in_scope(filters["unit"]):
            raise OutOfScope("that place is outside your area")
        filters["unit"] = filters.get("unit") or principal.scope
    if principal.departments and not principal.roles & {"dispatcher", "supervisor", "admin", "intake"}:
        asked = filters.get("department") or []
        filters["department"] = [d for d in asked if d in principal.departments] if asked \
            else sorted(principal.departments)
        if not filters["department"]:
            raise OutOfScope("those departments are not yours")
    return filters


def may_act_on(order, action: str, lang: str = "en") -> str | None:
    """Why the asker may not take ``action`` on ``order``, in ``lang`` (None: they may)."""
    from dashboard.components.order_views import action_label
    from dashboard.i18n import t

    principal = current()
    if principal is None:
        return t("refusal.not_signed_in", lang)
    label = action_label(action, lang) if action in rules.ORDER_ACTIONS else action
    allowed = rules.ORDER_ACTIONS.get(action, frozenset())
    if not principal.roles & allowed:
        return t("refusal.roles", lang, action=label, roles=", ".join(sorted(principal.roles)))
    if action in rules.HANDLER_ACTIONS and not principal.roles & (allowed - {"handler"}):
        if principal.departments and order.department not in principal.departments:
            return t("refusal.not_your_department", lang, action=label)
    if not in_scope(order.grid_code):
        return t("refusal.outside_area", lang)
    return None


def may_start_incident() -> str | None:
    """Why the asker may not start a drill's incident, as a message key (``tour.refused.<why>``, both languages);
    None: they may (rules.INCIDENTS, and the whole city as scope)."""
    principal = current()
    if principal is None or not principal.roles & rules.INCIDENTS:
        return "roles"
    if principal.scope is not None:
        return "scoped"
    return None


def may_read_order(order) -> bool:
    principal = current()
    if principal is None:
        return False
    if not in_scope(order.grid_code):
        return False
    if principal.departments and principal.roles <= {"handler", "viewer"} and order.department not in \
            principal.departments:
        return False
    return True


# --- the gate ---------------------------------------------------------------------------------------------------

_as_last_read = store_health.LastRead()
"""What the store last said of an account or a device token: while the store does not answer, a signed-in person
goes on seeing the city as last loaded (writes are refused with 503 by the store itself)."""


def _principal_of_session(access: Access) -> Principal | None:
    now = time.time()
    if "d" in session:  # a wall screen: no idle timeout, ends when its token is revoked
        token_id = session["d"]
        if _as_last_read(("device", token_id), lambda: access.accounts.device_active(token_id)):
            return Principal(name=token_id, roles=frozenset({"device"}), scope=session.get("s") or None,
                             device=True)
        session.clear()
        return None
    name = session.get("u")
    if not name:
        return None
    if now - float(session.get("t", 0)) > access.idle_seconds:
        session.clear()
        g.session_expired = True
        return None
    principal = _as_last_read(("account", name), lambda: access.accounts.get(name))
    if principal is None or principal.generation != session.get("g"):
        session.clear()
        return None
    if now - float(session.get("t", 0)) > SEEN_EVERY_SECONDS:
        session["t"] = now
    return principal


def _same_origin() -> bool:
    """Whether a state-changing request comes from our own pages (the Origin header, else the Referer). A client
    that sends neither is not a browser acting for someone on another site (browsers send Origin on every
    cross-origin POST); the session cookie's SameSite=Lax stops those too."""
    ours = {request.host_url.rstrip("/")} | _access().extra_origins
    origin = request.headers.get("Origin")
    if origin:
        return origin.rstrip("/") in ours
    referer = request.headers.get("Referer")
    if referer:
        parsed = urlparse(referer)
        return f"{parsed.scheme}://{parsed.netloc}" in ours
    return True


def _wants_html() -> bool:
    """A person's browser opening a page (not a callback, a tile or an API call)."""
    if request.path.startswith(("/admin", "/login", "/device/")):
        return True
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "") and \
        not request.path.startswith(("/_dash", "/tiles/", "/export/", "/open311/"))


def refuse(status: int, reason: str, *, audit: bool = True):
    """A refusal: styled page for people, JSON for callbacks and APIs. Audited (who, what, why)."""
    if audit:
        record("refused", request.path, outcome="refused", detail=f"{status}: {reason}")
    if request.path == "/_dash-update-component" or not _wants_html():
        response = flask.jsonify({"status": status, "message": reason})
        response.status_code = status
        return response
    return error_page(status, reason)


def error_page(status: int, reason: str):
    lang = "zh" if request.args.get("lang") == "zh" else "en"
    body = render_template_string(ERROR_PAGE, status=status, reason=reason, lang=lang, t=lambda k: text(k, lang),
                                  signed_in=current() is not None)
    return flask.Response(body, status=status, mimetype="text/html")


# A template's variable matches one segment, or the rest of the path when it ends the template (the server sees
# an order id's %2F decoded; the browser's router does not).
PAGE_PATTERNS = [(re.compile("^" + re.sub(r"<[^>]+>$", ".+", re.sub(r"<[^>]+>(?=/)", "[^/]+", path)) + "$"), path)
                 for path in rules.PAGES]


def page_of(path: str) -> str | None:
    for pattern, page in PAGE_PATTERNS:
        if pattern.fullmatch(path or "/"):
            return page
    return None


def check_page(principal: Principal, path: str, query: dict) -> tuple[int, str] | None:
    """Why ``principal`` may not open page ``path`` with ``query`` (status, reason), or None."""
    page = page_of(path)
    if page is None:
        return 404, f"no page {path}"
    if not principal.roles & rules.PAGES[page]:
        return 403, f"your roles ({', '.join(sorted(principal.roles))}) may not open {page}"
    unit = query.get("unit")
    if unit and not in_scope(unit):
        return 403, "that place is outside your area"
    from dashboard import services
    building = query.get("building")
    if building and principal.scope:
        card = services.get().building_card(building)
        if card is not None and not in_scope(card.grid_code):
            return 403, "that building is outside your area"
    if page == "/orders/<order_id>":
        from urllib.parse import unquote
        from layers.workorders import UnknownOrder
        order_id = unquote(path.split("/orders/", 1)[1])
        try:
            order = services.get().work_orders().get(order_id)
        except (UnknownOrder, Exception):  # noqa: BLE001 — an unknown id is shown as such by the page
            return None
        if not may_read_order(order):
            return 403, "that order is outside your area or department"
    return None


def _callback_check(access: Access, principal: Principal):
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return refuse(400, "a callback request names its output")
    name = access.callback_name(body["output"])
    if name is None:
        return refuse(403, "no such callback")
    allowed = rules.CALLBACKS.get(name)
    if allowed is None:
        log.error("citytwin: callback %s has no access rule in dashboard/auth/rules.py; refused", name)
        return refuse(403, "this callback has no access rule")
    if not principal.roles & allowed:
        return refuse(403, f"your roles ({', '.join(sorted(principal.roles))}) may not do this")
    if name == "dash.dash.update":  # drawing a page: the same checks as opening it
        inputs = body.get("inputs") or []
        values = {i.get("property"): i.get("value") for i in inputs if isinstance(i, dict)}
        pathname, search = values.get("pathname"), values.get("search")
        if not isinstance(pathname, str) or not isinstance(search or "", str):
            return refuse(400, "a page is drawn for a path")
        from urllib.parse import parse_qs
        query = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}
        problem = check_page(principal, pathname, query)
        if problem:
            return refuse(*problem)
    g.callback = name
    return None


def gate():
    access = _access()
    g.principal = principal = _principal_of_session(access)
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    if endpoint is None:
        return None  # no route: Flask answers 404
    rule = rules.ROUTES.get(endpoint)
    if rule is None:
        log.error("citytwin: route %s has no access rule in dashboard/auth/rules.py; refused", endpoint)
        return refuse(403, "this route has no access rule")
    if request.method not in ("GET", "HEAD", "OPTIONS") and endpoint not in rules.CSRF_EXEMPT \
            and not _same_origin():
        return refuse(403, "a request from another site is refused (Origin)")
    if rule is rules.PUBLIC:
        return None
    if principal is None:
        if request.method == "GET" and endpoint in ("/", "/<path:path>") or request.path.startswith("/admin"):
            query = {"next": request.full_path.rstrip("?")}
            if g.get("session_expired"):
                query["expired"] = "1"
            return redirect("/login?" + urlencode(query))
        return refuse(401, "sign in first", audit=False)
    if not principal.roles & rule:
        return refuse(403, f"your roles ({', '.join(sorted(principal.roles))}) may not use {request.path}")
    if endpoint in ("/", "/<path:path>"):
        problem = check_page(principal, request.path, request.args.to_dict())
        if problem:
            return refuse(*problem)
        if request.path == "/" and principal.scope and not request.args.get("unit") \
                and not request.args.get("building"):
            args = request.args.to_dict() | {"unit": principal.scope}
            return redirect("/?" + urlencode(args))
        if request.path == "/wall" and principal.scope and not request.args.get("unit"):
            pass  # the wall shows the scope's unit (dashboard/pages/wall reads auth.scope_unit())
    if endpoint == "/_dash-update-component":
        return _callback_check(access, principal)
    if endpoint in ("export_kpis_csv", "export_scene_html", "buildings_tile", "alerts_api"):
        unit = request.args.get("unit") or principal.scope
        if unit and not in_scope(unit):
            return refuse(403, "that place is outside your area")
        if endpoint not in ("buildings_tile", "alerts_api"):
            record("export", request.full_path.rstrip("?"))
    return None


def headers(response):
    """Security headers on every answer; no server software or version."""
    access = _access()
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if response.mimetype == "text/html" or "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = access.csp()
    if access.frame_ancestors == "'self'":
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers.pop("Server", None)
    if request.endpoint not in ("static", "_dash_assets.static") and \
            not request.path.startswith("/_dash-component-suites/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# --- routes -----------------------------------------------------------------------------------------------------

def _language() -> str:
    return "zh" if (request.values.get("lang") or "") == "zh" else "en"


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never //other.site or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@blueprint.route("/login", methods=["GET", "POST"])
def sign_in():
    access = _access()
    lang = _language()
    message = None
    status = 200
    target = _safe_next(request.values.get("next"))
    if request.args.get("expired"):
        message = text("expired", lang)
    if request.method == "POST":
        name = (request.form.get("name") or "").strip()[:64]
        password = request.form.get("password") or ""
        keys = ["name:" + name.lower(), "addr:" + address()]
        left = access.lockout.locked(keys)
        if left:
            record("sign_in_locked", name, outcome="refused", detail=f"{left} s left", who=name or "anonymous")
            message, status = text("locked", lang).format(minutes=max(1, round(left / 60))), 429
        else:
            principal = access.accounts.verify(name, password)
            if principal is None:
                access.lockout.failed(keys)
                record("sign_in_failed", name, outcome="refused", who=name or "anonymous")
                message, status = text("wrong", lang), 401
            else:
                access.lockout.clear(keys[:1])
                session.clear()
                session.update(u=principal.name, g=principal.generation, t=time.time(), lang=lang)
                g.principal = principal
                record("sign_in", principal.name)
                return redirect(target)
    body = render_template_string(SIGN_IN_PAGE, lang=lang, t=lambda k: text(k, lang), message=message,
                                  next=target, sso=access.sso is not None)
    return flask.Response(body, status=status, mimetype="text/html")


@blueprint.get("/login/sso")
def sso_start():
    """Single sign-on: off to the OpenID Connect provider (dashboard/auth/sso.py)."""
    from dashboard.auth.sso import SsoRefused
    access = _access()
    if access.sso is None:
        return refuse(404, "single sign-on is not set up on this server", audit=False)
    session.clear()
    session.update(sso_next=_safe_next(request.args.get("next")), lang=_language())
    try:
        return access.sso.redirect(flask.url_for("auth.sso_callback", _external=True))
    except SsoRefused as refused:
        record("sign_in_failed", "sso", outcome="refused", detail=str(refused), who="anonymous")
        return error_page(502, str(refused))


@blueprint.get("/login/sso/callback")
def sso_callback():
    """The provider's answer: a signed-in person, or a refusal (a forged or replayed state included)."""
    from dashboard.auth.sso import SsoRefused
    access = _access()
    if access.sso is None:
        return refuse(404, "single sign-on is not set up on this server", audit=False)
    target, lang = _safe_next(session.get("sso_next")), session.get("lang") or "en"
    try:
        principal = access.sso.finish()
    except SsoRefused as refused:
        session.clear()
        record("sign_in_failed", "sso", outcome="refused", detail=str(refused), who="anonymous")
        return error_page(403, str(refused))
    session.clear()
    session.update(u=principal.name, g=principal.generation, t=time.time(), lang=lang)
    g.principal = principal
    record("sign_in", principal.name, detail="single sign-on")
    return redirect(target)


@blueprint.post("/logout")
def sign_out():
    principal = current()
    if principal is not None:
        record("sign_out", principal.actor)
    session.clear()
    return redirect("/login")


@blueprint.get("/device/<token>")
def device_sign_in(token: str):
    """A wall screen signs in with its device token (``/device/<token>?next=/wall%3Fkiosk%3D1``)."""
    access = _access()
    device = access.accounts.device(token)
    if device is None:
        record("device_sign_in_failed", token.partition(".")[0][:32], outcome="refused", who="anonymous")
        return error_page(403, text("device_refused", _language()))
    session.clear()
    session.update(d=device.name, s=device.scope or "")
    g.principal = device
    record("device_sign_in", device.name)
    return redirect(_safe_next(request.args.get("next")) if request.args.get("next") else "/wall?kiosk=1")


def _units():
    from dashboard import services
    return set(services.get().directory().units.index)


@blueprint.route("/admin/accounts", methods=["GET", "POST"])
def accounts():
    access = _access()
    lang = _language()
    message, new_password = None, None
    if request.method == "POST":
        form = request.form
        name = form.get("name", "")
        try:
            password = form.get("password") or secrets.token_urlsafe(12)
            roles_chosen = form.getlist("roles")
            departments = [d for d in (form.get("departments") or "").split(",")]
            access.accounts.add(name, password, roles=roles_chosen, scope=form.get("scope"),
                                departments=departments, units=_units())
            if not form.get("password"):
                new_password = password
            record("account.create", name, detail=f"roles={','.join(sorted(roles_chosen))} "
                                                  f"scope={form.get('scope') or 'city'}")
            message = text("created", lang).format(name=name)
        except AccountError as error:
            record("account.create", name[:64], outcome="refused", detail=str(error))
            message = str(error)
    body = render_template_string(ACCOUNTS_PAGE, lang=lang, t=lambda k: text(k, lang), rows=access.accounts.list(),
                                  roles=ROLES, message=message, new_password=new_password, me=actor())
    return flask.Response(body, mimetype="text/html")


@blueprint.post("/admin/accounts/<name>")
def account_change(name: str):
    access = _access()
    form = request.form
    changes = {}
    if "roles" in form:
        changes["roles"] = form.getlist("roles")
    if "active" in form:
        changes["active"] = form.get("active") == "1"
    if form.get("password"):
        changes["password"] = form["password"]
    try:
        access.accounts.change(name, units=_units(), **changes)
        record("account.change", name, detail=", ".join(sorted(k for k in changes)))
    except AccountError as error:
        record("account.change", name[:64], outcome="refused", detail=str(error))
        return refuse(400, str(error), audit=False)
    return redirect("/admin/accounts")


@blueprint.route("/admin/devices", methods=["GET", "POST"])
def devices():
    access = _access()
    lang = _language()
    message, token = None, None
    if request.method == "POST":
        try:
            if request.form.get("revoke"):
                access.accounts.revoke_device(request.form["revoke"])
                record("device.revoke", request.form["revoke"])
                message = text("revoked", lang)
            else:
                token_id, token = access.accounts.add_device(request.form.get("name", ""),
                                                             scope=request.form.get("scope"), created_by=actor(),
                                                             units=_units())
                record("device.create", token_id, detail=f"scope={request.form.get('scope') or 'city'}")
        except AccountError as error:
            message = str(error)
    body = render_template_string(DEVICES_PAGE, lang=lang, t=lambda k: text(k, lang), rows=access.accounts.devices(),
                                  message=message, token=token, host=request.host_url.rstrip("/"))
    return flask.Response(body, mimetype="text/html")


@blueprint.route("/admin/api-keys", methods=["GET", "POST"])
def api_keys():
    """Open311 API keys: create (the key shown once), list, revoke; each change in the audit trail."""
    from dashboard import services
    from layers.reference import CHANNELS
    access = _access()
    lang = _language()
    default = services.get().settings.open311_posts_per_minute
    message, key, status = None, None, 200
    if request.method == "POST":
        form = request.form
        try:
            if form.get("revoke"):
                access.accounts.revoke_api_key(form["revoke"])
                record("api_key.revoke", form["revoke"])
                message = text("key_revoked", lang)
            else:
                limit_text = (form.get("posts_per_minute") or "").strip()
                if limit_text and not limit_text.isdigit():
                    raise AccountError(f"posts per minute: {limit_text[:20]!r} is not a whole number")
                key_id, key = access.accounts.add_api_key(
                    form.get("name", ""), channel=form.get("channel") or "website", created_by=actor(),
                    posts_per_minute=int(limit_text) if limit_text else None,
                    channels={code for code, *_ in CHANNELS})
                record("api_key.create", key_id, detail=f"name={form.get('name', '').strip()[:200]} "
                                                        f"channel={form.get('channel') or 'website'} "
                                                        f"per_minute={limit_text or default}")
        except AccountError as error:
            record("api_key.change", (form.get("revoke") or form.get("name") or "")[:64], outcome="refused",
                   detail=str(error))
            message, status = str(error), 400
    channels = [(code, english if lang == "en" else chinese) for code, english, chinese, _share in CHANNELS]
    body = render_template_string(API_KEYS_PAGE, lang=lang, t=lambda k: text(k, lang), rows=access.accounts.api_keys(),
                                  message=message, key=key, channels=channels, default=default)
    return flask.Response(body, status=status, mimetype="text/html")


def _audit_rows():
    args = request.args
    return _access().accounts.audit(actor=args.get("actor") or None, action=args.get("action") or None,
                                    text=(args.get("q") or "")[:200] or None,
                                    limit=int(args.get("limit")) if (args.get("limit") or "").isdigit() else 500)


@blueprint.get("/admin/audit")
def audit_page():
    lang = _language()
    rows = _audit_rows()
    for row in rows:
        row["when"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"] / 1000)) + " UTC"
    body = render_template_string(AUDIT_PAGE, lang=lang, t=lambda k: text(k, lang), rows=rows, args=request.args,
                                  csv_href="/admin/audit.csv?" + urlencode(request.args.to_dict()))
    return flask.Response(body, mimetype="text/html")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@blueprint.get("/admin/audit.csv")
def audit_csv():
    rows = _audit_rows()
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ["entry_id", "at", "actor", "address", "action", "target", "outcome", "detail"]
    writer.writerow(columns + ["when_utc"])
    for row in rows:
        cells = [("'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v)
                 for v in (row[c] for c in columns)]
        writer.writerow(cells + [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["at"] / 1000))])
    record("export", "/admin/audit.csv", detail=f"{len(rows)} entries")
    return flask.Response(out.getvalue(), mimetype="text/csv",
                          headers={"Content-Disposition": "attachment; filename=citytwin-audit.csv"})


# --- setup ------------------------------------------------------------------------------------------------------

def first_admin(accounts: Accounts, out=sys.stdout) -> None:
    """On the first start with no accounts, an admin with a random password, printed once (never an open door)."""
    if accounts.count():
        return
    password = secrets.token_urlsafe(15)
    try:
        accounts.add("admin", password, roles={"admin"})
    except AccountError:
        return  # another worker made it
    accounts.record("system", "account.create", "admin", detail="first start: the first admin")
    print(f"citytwin: no accounts yet; created the admin account 'admin' with the password {password}\n"
          f"citytwin: sign in at /login and change it (/admin/accounts), or create accounts with "
          f"`python -m dashboard.auth add-user NAME --role ROLE`", file=out, flush=True)


def setup(app: dash.Dash, accounts: Accounts | None = None) -> Access:
    """Add the access layer to ``app`` (call once, after the routes are registered)."""
    from dashboard import services
    server = app.server
    accounts = accounts or Accounts(services.get().store)
    settings = services.get().settings
    access = Access(app, accounts, Lockout(settings.signin_attempts, settings.lockout_seconds, settings.redis_url),
                    settings)
    if settings.single_sign_on:
        from dashboard.auth.sso import SingleSignOn
        access.sso = SingleSignOn(server, settings, accounts)
    server.extensions[EXTENSION] = access
    server.secret_key = settings.secret_key or accounts.secret("session-signing-key")
    server.config.update(SESSION_COOKIE_NAME=SESSION_COOKIE, SESSION_COOKIE_HTTPONLY=True,
                         SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.secure_cookies,
                         MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, PROPAGATE_EXCEPTIONS=False)
    server.register_blueprint(blueprint)
    server.before_request(gate)
    server.after_request(headers)
    _guard_callbacks(app)

    @server.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code in (401, 403, 404, 405, 413, 429, 431, 400) or error.code >= 500:
            reason = {404: "not found", 413: "the request is too large", 405: "method not allowed"}.get(
                error.code, error.description if error.code < 500 else "internal error")
            if request.path.startswith("/open311/"):
                return error
            return refuse(error.code, reason, audit=error.code in (401, 403))
        return error

    @server.errorhandler(Exception)
    def server_error(error: Exception):
        if isinstance(error, dash.exceptions.DependencyException):  # an unknown component-suite file
            return refuse(404, "not found", audit=False)
        log.error("citytwin: %s %s failed: %s", request.method, request.path, type(error).__name__)
        return refuse(500, "internal error", audit=False)

    first_admin(accounts)
    return access


def _guard_callbacks(app: dash.Dash) -> None:
    """Dash answers a callback that raises with a 500 and a traceback in the log. A callback request is input
    from the network: one that makes a callback fail is refused with a 400 and one log line (the callback and
    the error's type), never a traceback and never a 500."""
    server = app.server
    original = server.view_functions["/_dash-update-component"]

    def dispatch(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        except (HTTPException, dash.exceptions.PreventUpdate):
            raise
        except Exception as error:  # noqa: BLE001
            if store_health.is_unavailability(error):
                raise  # the store did not answer: a 503 with Retry-After (dashboard/health.py), not the request's fault
            log.warning("citytwin: refused a callback request to %s: %s", g.get("callback", "?"),
                        type(error).__name__)
            response = flask.jsonify({"status": 400, "message": "refused: the request's values are not ones "
                                                                "this screen sends"})
            response.status_code = 400
            return response

    server.view_functions["/_dash-update-component"] = dispatch
