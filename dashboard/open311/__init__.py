"""Open311 GeoReport v2 on the dashboard's server: citizens' requests in, work orders' status out.

``register(app.server)`` adds a Flask blueprint under ``/open311/v2`` (docs/open311.md; the OpenAPI document is
``GET /open311/v2/openapi.json``):

    GET  discovery.{json,xml}           the endpoint, its formats and contact
    GET  services.{json,xml}            the public part of the responsibility list: one service per event type
    GET  services/{code}.{json,xml}     a service definition (its attributes)
    POST requests.{json,xml}            file a request (form-encoded, api_key required) → a new work order
    GET  requests.{json,xml}            requests, with the spec's filters (newest first, at most 1,000)
    GET  requests/{id}.{json,xml}       one request

Everything is built on :class:`layers.workorders.WorkOrders`; errors use the spec's format
(``[{"code": 400, "description": "…"}]``) with 400 (bad input), 403 (missing or unknown api_key), 404 (unknown
service, request or path), 405 (wrong method), 409 (never by these endpoints today; mapped for completeness), 503
with Retry-After (the store unavailable; ``X-Citytwin-Outcome`` says whether a POST may have been saved). Nothing
stored changes on any other error: every check runs before the one write. A POST with an ``Idempotency-Key`` header
files one order however often it is sent (the same key again answers 200 with the order filed the first time).

API keys: an admin creates, lists and revokes them (``/admin/api-keys`` or ``python -m dashboard.auth add-api-key``);
only their sha256 is kept, in the store (:class:`layers.accounts.Accounts`). ``CITYTWIN_OPEN311_KEYS`` still works, to
bootstrap: a comma list of keys, each optionally ``key=channel`` (the intake channel its requests are filed under,
default :data:`DEFAULT_CHANNEL`). ``CITYTWIN_OPEN311_DEV_KEY=1`` explicitly enables the development key
:data:`DEV_KEY` (never in production). Each key may make ``CITYTWIN_OPEN311_POSTS_PER_MINUTE`` POSTs a minute (or
its own limit, set when an admin made it): past that, 429 with Retry-After in the spec's error format, nothing stored.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import unquote_to_bytes

import pandas as pd
from flask import Blueprint, Flask, current_app, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from dashboard.auth.lockout import RateLimit
from dashboard.open311 import openapi, records
from dashboard.open311.formats import FORMATS, error_response, render
from layers import reference, store_health
from layers.city_settings import timezone as city_timezone
from layers.lifecycle import FINAL_STATUSES, OPEN_STATUSES, TransitionRefused
from layers.store_health import is_unavailability
from layers.workorders import (
    MAX_NOTE_CHARS,
    MAX_PAGE_ROWS,
    InvalidRequest,
    OrderQuery,
    UnknownOrder,
    VersionConflict,
    WorkOrders,
)

__all__ = ["register", "keys_from_env", "blueprint", "KEYS_ENV", "DEV_KEY_ENV", "DEV_KEY", "DEFAULT_CHANNEL",
           "MAX_RESULTS", "DEFAULT_WINDOW"]

log = logging.getLogger(__name__)

KEYS_ENV = "CITYTWIN_OPEN311_KEYS"
DEV_KEY_ENV = "CITYTWIN_OPEN311_DEV_KEY"
DEV_KEY = "citytwin-dev-key"
DEFAULT_CHANNEL = "website"
MAX_RESULTS = min(1_000, MAX_PAGE_ROWS)      # the spec's suggested cap on one GET requests
DEFAULT_WINDOW = pd.Timedelta(days=90)       # the spec's default (and widest) start_date..end_date window
MAX_IDS = MAX_RESULTS
CONTACT_FIELDS = {"email": 254, "first_name": 100, "last_name": 100, "phone": 40, "device_id": 200,
                  "account_id": 200, "media_url": 2_000, "address_id": 200, "jurisdiction_id": 200}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ATTRIBUTE_KEY = re.compile(r"attribute\[([^\[\]]*)\](\[\])?")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Characters XML 1.0 cannot carry (its Char production), which no citizen's text needs.
NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
PHONE = re.compile(r"[0-9+()\- ]+")
IDEMPOTENCY_HEADER = "Idempotency-Key"    # the IETF draft's header: the same key again returns the same request
MAX_IDEMPOTENCY_KEY_CHARS = 255

blueprint = Blueprint("open311", __name__, url_prefix="/open311/v2")


class Problem(Exception):
    """An HTTP error in the spec's format; ``descriptions`` name every problem found."""

    def __init__(self, status: int, *descriptions: str, headers: dict | None = None):
        self.status, self.descriptions, self.headers = status, descriptions, headers or {}
        super().__init__("; ".join(descriptions))


# --- configuration ------------------------------------------------------------------------------------------------

def keys_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """API key → intake channel, from :data:`KEYS_ENV` (and the development key if :data:`DEV_KEY_ENV` is 1)."""
    channels = {code for code, *_rest in reference.CHANNELS}
    keys: dict[str, str] = {}
    for entry in environ.get(KEYS_ENV, "").split(","):
        key, _, channel = (part.strip() for part in entry.strip().partition("="))
        if not key:
            continue
        channel = channel or DEFAULT_CHANNEL
        if channel not in channels:
            raise ValueError(f"{KEYS_ENV}: unknown channel {channel!r} for a key; channels: "
                             f"{', '.join(sorted(channels))}")
        keys[key] = channel
    if environ.get(DEV_KEY_ENV, "").strip() == "1":
        keys.setdefault(DEV_KEY, DEFAULT_CHANNEL)
    return keys


class Open311:
    """What the views need: the work orders (made on first use), the API keys (the environment's, and the store's
    through ``stored_key``), their rate limit and the clock."""

    def __init__(self, workorders: WorkOrders | Callable[[], WorkOrders], keys: Mapping[str, str],
                 clock: Callable[[], pd.Timestamp] | None = None,
                 stored_key: Callable[[str], dict | None] | None = None, posts_per_minute: int = 60,
                 rate_limit: RateLimit | None = None):
        self._workorders = workorders
        self._lock = threading.Lock()
        self.keys = dict(keys)
        self.stored_key = stored_key or (lambda key: None)
        """``stored_key(key)``: the store's key (a dict) or None; ``stored_key(None)``: whether the store has any."""
        self.posts_per_minute = posts_per_minute
        self.rate_limit = rate_limit or RateLimit()
        self.clock = clock or (lambda: pd.Timestamp.now(tz=city_timezone()))

    @property
    def workorders(self) -> WorkOrders:
        with self._lock:
            if not isinstance(self._workorders, WorkOrders):
                self._workorders = self._workorders()
            return self._workorders

    def channel_of(self, api_key: str | None) -> str:
        """The channel of a valid key, else :class:`Problem` 403 (a missing key is refused as an invalid one)."""
        return self.client_of(api_key)[0]

    def client_of(self, api_key: str | None) -> tuple[str, str, int]:
        """(channel, the key's name for the rate limit, its posts per minute) of a valid key, else
        :class:`Problem` 403."""
        if not api_key:
            raise Problem(403, "api_key: missing; every POST needs the api_key the city issued to your application")
        for key, channel in self.keys.items():
            if hmac.compare_digest(key.encode(), api_key.encode()):
                # The environment's keys are named by a hash: the key itself is never a Redis key or a log line.
                return channel, "env:" + hashlib.sha256(key.encode()).hexdigest()[:16], self.posts_per_minute
        stored = self.stored_key(api_key)
        if stored is not None:
            return stored["channel"], "key:" + stored["key_id"], stored["posts_per_minute"] or self.posts_per_minute
        if not self.keys and not self.stored_key(None):
            raise Problem(403, f"api_key: not accepted: no API keys are configured on this server ({KEYS_ENV}, or "
                               f"an admin's /admin/api-keys)")
        raise Problem(403, "api_key: invalid api_key received; ask the city's operators for one")

    def count_post(self, api_key: str | None) -> str:
        """The channel of a valid key that is within its rate limit; else 403, or 429 with Retry-After."""
        channel, name, limit = self.client_of(api_key)
        retry_after = self.rate_limit.use("open311:" + name, limit)
        if retry_after:
            raise Problem(429, f"api_key: this key may make {limit} POST requests a minute; try again in "
                               f"{retry_after} s", headers={"Retry-After": str(retry_after)})
        return channel


def register(server: Flask, workorders: WorkOrders | None = None, keys: Mapping[str, str] | None = None,
             clock: Callable[[], pd.Timestamp] | None = None, settings=None) -> None:
    """Serve Open311 GeoReport v2 under ``/open311/v2`` on ``server``. By default over the dashboard's store
    (:func:`dashboard.services.get`) with the keys of the environment (:func:`keys_from_env`) and those an admin
    made (kept by the access layer, when the app has one); ``settings`` (dashboard/settings.py) give the rate
    limit and where it is counted."""
    if workorders is None:
        def workorders():
            # The dashboard's own service: its schema check and grid index are made at the start, not in the
            # first citizen's request (where a slow store would cut them off, again and again).
            from dashboard import services
            return services.get().work_orders()
    def stored_key(key: str | None):
        access = current_app.extensions.get("citytwin.auth")
        if access is None:
            return None
        if key is None:
            return any(row["revoked_at"] is None for row in access.accounts.api_keys())
        return access.accounts.api_key(key)

    limit = settings.open311_posts_per_minute if settings is not None else 60
    server.extensions["citytwin.open311"] = Open311(
        workorders, keys_from_env() if keys is None else keys, clock, stored_key=stored_key, posts_per_minute=limit,
        rate_limit=RateLimit(settings.redis_url if settings is not None else None))
    server.register_blueprint(blueprint)


def _api() -> Open311:
    return current_app.extensions["citytwin.open311"]


# --- views --------------------------------------------------------------------------------------------------------

def endpoint(view):
    """Check the format, run the view, and turn every error into the spec's error format."""
    @functools.wraps(view)
    def wrapper(*args, fmt: str, **kwargs):
        if fmt not in FORMATS:
            return error_response("json", 404, f"format: unknown format {fmt!r}; use .json or .xml")
        try:
            return view(*args, fmt=fmt, **kwargs)
        except Problem as problem:
            response = error_response(fmt, problem.status, *problem.descriptions)
            response.headers.update(problem.headers)
            return response
        except InvalidRequest as exc:
            return error_response(fmt, 400, str(exc))
        except UnknownOrder as exc:
            return error_response(fmt, 404, f"service_request_id: {exc}")
        except (VersionConflict, TransitionRefused) as exc:
            return error_response(fmt, 409, str(exc))
        except Exception as exc:
            if is_unavailability(exc):
                return store_unavailable_response(fmt, exc)
            log.exception("Open311 %s %s failed", request.method, request.path)
            return error_response(fmt, 500, "internal error; the server log has the details")
    return wrapper


def store_unavailable_response(fmt: str, error: BaseException):
    """503 with Retry-After in the spec's error format. A POST whose commit was cut off says its outcome is unknown
    and names the id it would have (``X-Citytwin-Outcome: unknown``, ``X-Citytwin-Service-Request-Id``): never that
    it failed, so a client checks before filing it again."""
    from dashboard.health import unavailable_message

    error = store_health.unavailable(error)
    response = error_response(fmt, 503, unavailable_message(error))
    response.headers["Retry-After"] = str(error.retry_after)
    response.headers["X-Citytwin-Outcome"] = error.outcome
    if error.order_id:
        response.headers["X-Citytwin-Service-Request-Id"] = error.order_id
    return response


@blueprint.get("/discovery.<fmt>")
@endpoint
def discovery(fmt: str):
    return render(fmt, "discovery", records.discovery_record(request.host_url.rstrip("/") + blueprint.url_prefix))


@blueprint.get("/services.<fmt>")
@endpoint
def services_list(fmt: str):
    return render(fmt, "services", records.service_records(_api().workorders.responsibility_list()))


@blueprint.get("/services/<service_code>.<fmt>")
@endpoint
def service_definition(service_code: str, fmt: str):
    rules = _api().workorders.responsibility_list()
    if service_code not in rules.rules:
        raise Problem(404, f"service_code: no service {service_code!r}; GET services.{fmt} lists the "
                           f"{len(rules.rules)} services")
    return render(fmt, "service_definition", records.service_definition(rules.rules[service_code]))


@blueprint.get("/requests/<service_request_id>.<fmt>")
@endpoint
def one_request(service_request_id: str, fmt: str):
    service = _api().workorders
    order = service.get(service_request_id)
    rules = service.responsibility_list()
    return render(fmt, "service_requests", [records.request_record(order, rules.rules.get(order.event_type))])


@blueprint.get("/requests.<fmt>")
@endpoint
def list_requests(fmt: str):
    api = _api()
    service = api.workorders
    rules = service.responsibility_list()
    query = requests_query(request.args, rules.rules, api.clock())
    page = service.list_orders(query)
    return render(fmt, "service_requests",
                  [records.request_record(o, rules.rules.get(o.event_type)) for o in page.orders],
                  headers={"X-Citytwin-Total-Count": str(page.total)})


@blueprint.post("/requests.<fmt>")
@endpoint
def create_request(fmt: str):
    api = _api()
    if request.mimetype not in FORM_TYPES:
        raise Problem(400, f"the parameters must be form-encoded (application/x-www-form-urlencoded), not "
                           f"{request.mimetype or 'an empty content type'!r}")
    form = request.form
    channel = api.count_post(form.get("api_key"))
    service = api.workorders
    rules = service.responsibility_list()
    intake = checked_intake(form, rules.rules, service)
    key = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable():
        raise Problem(400, f"{IDEMPOTENCY_HEADER}: at most {MAX_IDEMPOTENCY_KEY_CHARS} printable characters")
    if key:
        # Scoped by channel (one per API key): two applications' keys never meet.
        order, created = service.file_request_once(f"{channel}:{key}", channel=channel,
                                                   actor=f"open311 ({channel})", **intake)
    else:
        order, created = service.file_request(channel=channel, actor=f"open311 ({channel})", **intake), True
    response = render(fmt, "service_requests", [records.created_record(order, rules.rules[order.event_type])],
                      status=201 if created else 200)
    if key and not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blueprint.get("/openapi.json")
def openapi_document():
    codes = sorted(_api().workorders.responsibility_list().rules)
    return render("json", "openapi", openapi.document(request.host_url.rstrip("/") + blueprint.url_prefix,
                                                      service_codes=codes))


def _allowed_methods() -> list[str]:
    """The methods the request's path answers (GET, POST), not counting the catch-all below, which only refuses."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST"):
        try:
            endpoint_name, _args = adapter.match(request.path, method=method)
        except (NotFound, MethodNotAllowed):
            continue
        if endpoint_name != f"{blueprint.name}.unknown":
            allowed.append(method)
    return allowed


@blueprint.before_request
def answer_options_and_refuse_bad_encoding():
    """OPTIONS answers with the methods the path allows (Flask's own answer also listed the catch-all's PUT, PATCH
    and DELETE, which are refused); a query or form that is not UTF-8 is refused, not stored with U+FFFD."""
    fmt = "xml" if request.path.rsplit("?", 1)[0].endswith(".xml") else "json"
    if request.method == "OPTIONS":
        allowed = _allowed_methods()
        if not allowed:
            return error_response(fmt, 404, f"no Open311 resource {request.path}; see "
                                            f"{blueprint.url_prefix}/openapi.json")
        response = current_app.response_class(status=204)
        response.headers["Allow"] = ", ".join(allowed + (["HEAD"] if "GET" in allowed else []) + ["OPTIONS"])
        return response
    raw_parts = [request.query_string]
    if request.method == "POST" and request.mimetype == FORM_TYPES[0]:
        raw_parts.append(request.get_data(cache=True))  # cached: request.form parses it afterwards
    for raw in raw_parts:
        name = _not_utf8(raw)
        if name is not None:
            return error_response(fmt, 400, f"{name}: not valid UTF-8; send every parameter as UTF-8 text "
                                            "(percent-encoded)")
    if request.method == "POST" and request.mimetype == FORM_TYPES[1]:
        # Multipart parts are decoded by the form parser, which replaces bytes that are not UTF-8 with U+FFFD.
        for name, value in request.form.items(multi=True):
            if "\ufffd" in value:
                return error_response(fmt, 400, f"{name}: not valid UTF-8 (or holds U+FFFD); send UTF-8 text")
    return None


def _not_utf8(raw: bytes) -> str | None:
    """The name of the first parameter of a query string or form body that is not UTF-8 once percent-decoded."""
    for pair in raw.split(b"&"):
        name, _separator, value = pair.partition(b"=")
        for part in (name, value):
            try:
                unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                return unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
    return None


@blueprint.route("/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@blueprint.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(rest: str):
    """Anything else under the prefix: the spec's 404 (or 405 for a known path with another method)."""
    fmt = "xml" if rest.endswith(".xml") else "json"
    allowed = _allowed_methods()
    if allowed:
        response = error_response(fmt, 405, f"{request.method} is not allowed on {request.path}; allowed: "
                                            f"{', '.join(allowed)}")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return error_response(fmt, 404, f"no Open311 resource {request.path}; see {blueprint.url_prefix}/openapi.json")


# --- checking input -----------------------------------------------------------------------------------------------

def parse_instant(name: str, text: str) -> pd.Timestamp:
    """An ISO 8601 date-time (a date alone is its midnight; no offset: Shenzhen time)."""
    try:
        value = pd.Timestamp(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise Problem(400, f"{name}: {text!r} is not an ISO 8601 date-time (e.g. 2026-11-01T00:00:00+08:00 "
                           "or 2026-11-01T00:00:00Z)") from None
    return value.tz_localize(city_timezone()) if value.tzinfo is None else value.tz_convert(city_timezone())


def comma_list(text: str | None) -> list[str]:
    return list(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))


def requests_query(args: Mapping[str, str], rules: Mapping, now: pd.Timestamp) -> OrderQuery:
    """The OrderQuery of GET requests' parameters (:class:`Problem` 400 naming every bad one)."""
    ids = comma_list(args.get("service_request_id"))
    if len(ids) > MAX_IDS:
        raise Problem(400, f"service_request_id: {len(ids):,} ids; at most {MAX_IDS:,} at once")
    problems = []
    statuses: list[str] = []
    # The list the OpenAPI document states (STATUS_LIST): open and/or closed, comma separated, spaces allowed.
    status_text = args.get("status")
    for status in ([] if status_text is None else [part.strip(" ") for part in status_text.split(",")]):
        if status == "open":
            statuses += sorted(OPEN_STATUSES)
        elif status == "closed":
            statuses += sorted(FINAL_STATUSES)
        elif not status:
            problems.append(f"status: {status_text!r} has an empty item; use open, closed or open,closed")
        else:
            problems.append(f"status: unknown status {status!r}; use open, closed or both (comma separated)")
    codes = comma_list(args.get("service_code"))
    unknown_codes = [c for c in codes if c not in rules] if not ids else []
    if unknown_codes:
        problems.append(f"service_code: unknown service code(s) {', '.join(map(repr, unknown_codes))}; "
                        "GET services.json lists them")
    start = end = None
    for name in ("start_date", "end_date"):
        text = args.get(name)
        if text is not None and not text.strip():
            problems.append(f"{name}: empty; give an ISO 8601 date-time or leave {name} out")
        elif text is not None:
            try:
                if name == "start_date":
                    start = parse_instant(name, text)
                else:
                    end = parse_instant(name, text)
            except Problem as problem:
                problems += problem.descriptions
    if problems:
        raise Problem(400, *problems)
    if ids:  # the spec: a list of ids overrides every other filter (which must still be well formed)
        return OrderQuery(order_ids=ids, sort="received_at", descending=True, limit=MAX_RESULTS)
    if start is None and end is None:
        end = now
    if start is None:
        start = end - DEFAULT_WINDOW
    if end is None:
        end = start + DEFAULT_WINDOW
    if end < start:
        raise Problem(400, f"end_date: {end.isoformat()} is before start_date {start.isoformat()}")
    if end - start > DEFAULT_WINDOW:
        raise Problem(400, f"start_date, end_date: the range spans {(end - start).days} days; at most "
                           f"{DEFAULT_WINDOW.days} days at once")
    # end_date is the latest instant to include; the query's end is exclusive (times are whole seconds).
    return OrderQuery(status=statuses, event_type=codes, received_from=start,
                      received_to=end.floor("s") + pd.Timedelta(seconds=1), sort="received_at", descending=True,
                      limit=MAX_RESULTS)


def _number(name: str, text: str, low: float, high: float, problems: list[str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{name}: {text!r} is not a number (WGS 84 degrees)")
        return None
    if not math.isfinite(value) or not low <= value <= high:
        problems.append(f"{name}: {text!r} is not a coordinate: {name} is between {low:g} and {high:g} degrees")
        return None
    return value


def checked_intake(form, rules: Mapping, service: WorkOrders) -> dict:
    """The arguments of :meth:`WorkOrders.file_request` from a POST's form, every problem reported at once.
    The citizen's contact fields (email, first_name, last_name, phone, device_id, account_id) and media_url are
    checked but not stored: the order has no private field, and its description is public."""
    problems: list[str] = []
    code = (form.get("service_code") or "").strip()
    if not code:
        problems.append("service_code: required; GET services.json lists the service codes")
    elif code not in rules:
        problems.append(f"service_code: unknown service code {code!r}; GET services.json lists the "
                        f"{len(rules)} service codes")

    lat_text, long_text = (form.get("lat") or "").strip(), (form.get("long") or "").strip()
    address = (form.get("address_string") or "").strip()
    lat = lon = None
    if not lat_text and not long_text:
        if address or (form.get("address_id") or "").strip():
            problems.append("location: an address alone cannot be placed (this server has no geocoder); send lat "
                            "and long (WGS 84 degrees) with it")
        else:
            problems.append("location: required: send lat and long (WGS 84 degrees)")
    elif not lat_text or not long_text:
        problems.append(f"location: {'lat' if not lat_text else 'long'} is missing; lat and long go together")
    else:
        lat = _number("lat", lat_text, -90, 90, problems)
        lon = _number("long", long_text, -180, 180, problems)
        if lat is not None and lon is not None:
            try:
                service.place_of(lon, lat)
            except InvalidRequest as exc:
                problems.append(str(exc))
    if len(address) > MAX_NOTE_CHARS:
        problems.append(f"address_string: is {len(address):,} characters long; at most {MAX_NOTE_CHARS:,} are "
                        "allowed")

    description = (form.get("description") or "").strip()
    if len(description) > records.MAX_DESCRIPTION_CHARS:
        problems.append(f"description: is {len(description):,} characters long; at most "
                        f"{records.MAX_DESCRIPTION_CHARS:,} are allowed")

    attributes = _attributes(form, problems)
    for name, limit in CONTACT_FIELDS.items():
        value = (form.get(name) or "").strip()
        if len(value) > limit:
            problems.append(f"{name}: is {len(value):,} characters long; at most {limit:,} are allowed")
        elif value and name == "email" and not EMAIL.fullmatch(value):
            problems.append(f"email: {value!r} is not an e-mail address")
        elif value and name == "phone" and not PHONE.fullmatch(value):
            problems.append(f"phone: {value!r} is not a phone number (digits, spaces, +, -, parentheses)")
        elif value and name == "media_url" and not re.match(r"https?://[^\s]+$", value):
            problems.append(f"media_url: {value!r} is not an http(s) URL")

    if attributes and len(description) <= records.MAX_DESCRIPTION_CHARS:
        appended = records.attribute_lines(attributes)
        description = f"{description}\n\n{appended}" if description else appended
        if len(description) > records.MAX_DESCRIPTION_CHARS:
            problems.append(f"description: with the attribute values appended it is {len(description):,} "
                            f"characters long; at most {records.MAX_DESCRIPTION_CHARS:,} are allowed")
    for name in form.keys():
        if name == "api_key":
            continue
        for value in form.getlist(name):
            problem = control_character_problem(name, value)
            if problem:
                problems.append(problem)
                break
    if problems:
        raise Problem(400, *problems)
    return dict(event_type=code, lon=lon, lat=lat, description=description, address=address or None)


def control_character_problem(name: str, text: str) -> str | None:
    """Why ``text`` cannot be stored, or None: it must be text XML can carry (no control character but tab, line
    feed and carriage return; no U+FFFE, U+FFFF or lone surrogate). Such a character once made every later
    requests.xml unparseable; a citizen's app never means to send one, so it is refused, not silently dropped.

    >>> control_character_problem("description", "pothole\x1b[31m")
    'description: holds the control character U+001B at position 8; remove it (tab and line breaks are allowed)'
    """
    match = NOT_XML_TEXT.search(text)
    if match is None:
        return None
    return (f"{name}: holds the control character U+{ord(match.group()):04X} at position {match.start() + 1}; "
            "remove it (tab and line breaks are allowed)")


def _attributes(form, problems: list[str]) -> dict[str, str]:
    """The posted ``attribute[code]`` values, checked against the service definition."""
    values: dict[str, str] = {}
    for key in form.keys():
        if not key.startswith("attribute"):
            continue
        match = ATTRIBUTE_KEY.fullmatch(key)
        if match is None:
            problems.append(f"{key}: not an attribute parameter; write attribute[code]=value")
            continue
        code, many = match.group(1), match.group(2)
        attribute = records.ATTRIBUTES_BY_CODE.get(code)
        if attribute is None:
            problems.append(f"{key}: unknown attribute {code!r}; the attributes are "
                            f"{', '.join(records.ATTRIBUTES_BY_CODE)}")
            continue
        given = [v.strip() for v in form.getlist(key) if v.strip()]
        if many or len(given) > 1:
            problems.append(f"{key}: takes one value ({attribute.datatype}), not a list")
            continue
        if not given:
            continue
        value = given[0]
        if attribute.values and value not in dict(attribute.values):
            problems.append(f"{key}: unknown value {value!r}; the keys are "
                            f"{', '.join(k for k, _name in attribute.values)}")
        elif attribute.max_chars and len(value) > attribute.max_chars:
            problems.append(f"{key}: is {len(value):,} characters long; at most {attribute.max_chars:,} are allowed")
        else:
            values[code] = value
    for attribute in records.ATTRIBUTES:
        if attribute.required and attribute.code not in values:
            problems.append(f"attribute[{attribute.code}]: required")
    return values
