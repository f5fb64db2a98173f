"""Open311 GeoReport v2 (dashboard/open311) on a real sample city.

Many small cases through Flask's test client (a bare Flask app with the blueprint over the city's store, a frozen
clock); the same endpoints over real HTTP against ``app.py`` running in a subprocess; and the independent client,
the PyPI package ``georeport`` in its own virtualenv (``make georeport``), reading services and requests in JSON and
XML from that server. Every response body is validated: JSON against the public schemas in ../shared/open311/ (and
small local schemas for what they do not cover: errors, the POST answer, discovery), XML parsed back into the same
structure, validated the same way and compared with the JSON answer. Every refused request leaves the store as it
was (row counts and a checksum).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from flask import Flask
from referencing import Registry
from referencing.jsonschema import DRAFT7
from sqlalchemy import func, select

from dashboard import open311
from dashboard.settings import Settings
from dashboard.open311 import records
from layers.lifecycle import FINAL_STATUSES, OPEN_STATUSES
from layers.store import METADATA, Store
from layers.workorders import WorkOrders
from sample_data.__main__ import build
from sample_data.generator import DEFAULT_END
from conftest import REPO_ROOT, run_app_server, work_order_snapshot  # tests/ is on sys.path (rootdir conftest)

SCHEMAS = Path("/work/shared/open311")
API_KEY = "test-key-7f3a9c"
APP_KEY = "app-key-5b1e"          # a second client, filing under the app channel
PREFIX = "/open311/v2"
GEOREPORT_PYTHON = REPO_ROOT / ".venv-georeport" / "bin" / "python"
NOW = DEFAULT_END + pd.Timedelta(hours=1)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes" 垃圾满溢'


# --- schemas ------------------------------------------------------------------------------------------------------

def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


REGISTRY = Registry().with_resources(
    (name, DRAFT7.create_resource(_schema(name)))
    for name in ("service.json", "services.json", "request.json", "requests.json", "service-definition.json"))

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:
    if not isinstance(value, str):
        return True
    if not RFC3339.fullmatch(value):
        raise ValueError(f"{value!r} is not RFC 3339")
    datetime.fromisoformat(value)
    return True


@FORMATS.checks("uri", raises=ValueError)
def _uri(value) -> bool:
    if isinstance(value, str) and not urllib.parse.urlparse(value).scheme:
        raise ValueError(f"{value!r} is not a URI")
    return True


# What the public schemas do not cover: the spec's error list, the POST answer, discovery.
LOCAL_SCHEMAS = {
    "errors": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["code", "description"], "additionalProperties": False,
        "properties": {"code": {"type": "integer", "enum": [400, 403, 404, 405, 409]},
                       "description": {"type": "string", "minLength": 10}}}},
    "created": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
        "type": "object", "required": ["service_request_id", "service_notice", "account_id"],
        "properties": {"service_request_id": {"type": "string", "minLength": 1},
                       "service_notice": {"type": ["string", "null"]},
                       "account_id": {"type": ["string", "null"]}}}},
    "discovery": {"type": "object", "required": ["changeset", "contact", "endpoints"], "properties": {
        "changeset": {"type": "string", "format": "date-time"}, "contact": {"type": "string"},
        "key_service": {"type": "string"},
        "endpoints": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["specification", "url", "changeset", "type", "formats"],
            "properties": {"specification": {"type": "string", "format": "uri"},
                           "url": {"type": "string", "format": "uri"},
                           "changeset": {"type": "string", "format": "date-time"},
                           "type": {"enum": ["production", "test"]},
                           "formats": {"type": "array", "items": {"enum": ["text/xml", "application/json"]}}}}}}},
}


def validate(kind: str, document) -> None:
    """``kind``: a file of ../shared/open311/ (services.json, service-definition.json, requests.json) or a local
    schema (errors, created, discovery)."""
    schema = LOCAL_SCHEMAS[kind] if kind in LOCAL_SCHEMAS else _schema(kind)
    jsonschema.Draft7Validator(schema, registry=REGISTRY, format_checker=FORMATS).validate(document)


# --- XML back to the JSON structure -------------------------------------------------------------------------------

NS = "{" + records.NAMESPACE + "}"
XML_LISTS = {"services": "service", "service_requests": "request", "errors": "error", "attributes": "attribute",
             "values": "value", "endpoints": "endpoint", "formats": "format"}
XML_NUMBERS = {"lat", "long"}
XML_INTEGERS = {"order", "citytwin:version", "citytwin:reopen_count"}
XML_BOOLEANS = {"metadata", "variable", "required", "citytwin:escalated", "citytwin:satisfied"}


def _name(tag: str) -> str:
    return f"{records.PREFIX}:{tag[len(NS):]}" if tag.startswith(NS) else tag


def _value(element: ET.Element):
    name = _name(element.tag)
    if name in XML_LISTS:
        return [_value(child) for child in element]
    if len(element):
        return {_name(child.tag): _value(child) for child in element}
    text = element.text
    if text is None:
        return None
    if name in XML_NUMBERS:
        return float(text)
    if name in XML_INTEGERS:
        return int(text)
    if name in XML_BOOLEANS:
        assert text in ("true", "false"), f"{name}: {text!r}"
        return text == "true"
    return text


def from_xml(body: bytes, root: str):
    element = ET.fromstring(body)
    assert element.tag == root, f"root element {element.tag!r}, expected {root!r}"
    if root in XML_LISTS:
        assert all(child.tag == XML_LISTS[root] for child in element)
        items = [_value(child) for child in element]
        if root == "errors":  # an error's code is a number; an attribute's code is text
            for item in items:
                item["code"] = int(item["code"])
        return items
    return {_name(child.tag): _value(child) for child in element}


# --- the city -----------------------------------------------------------------------------------------------------

class FrozenClock:
    def __init__(self, now: pd.Timestamp):
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now


@pytest.fixture(scope="module")
def city_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('open311') / 'citytwin.sqlite'}"
    build("test", url, progress=False)
    return url


@pytest.fixture(scope="module")
def store(city_url) -> Store:
    built = Store(city_url)
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def service(store) -> WorkOrders:
    return WorkOrders(store, clock=FrozenClock(NOW))


def _app(service: WorkOrders, keys) -> Flask:
    app = Flask("open311-tests")
    # Many POSTs a minute with one key here: the rate limit has tests of its own (tests/test_open311_keys.py).
    open311.register(app, service, keys=keys, clock=service.clock,
                     settings=Settings().but(open311_posts_per_minute=100_000))
    return app


@pytest.fixture(scope="module")
def client(service):
    return _app(service, {API_KEY: "website", APP_KEY: "ishenzhen_app"}).test_client()


@pytest.fixture(scope="module")
def inside(store) -> tuple[float, float]:
    """(lat, long) of a point inside a grid cell of the city."""
    import shapely

    units = store.read_frame("units", ["code", "level", "geometry"])
    grids = units[units["level"] == "grid"]
    point = shapely.from_wkb(grids["geometry"].iloc[len(grids) // 3]).representative_point()
    return point.y, point.x


def count_orders(store: Store, *conditions) -> int:
    orders = METADATA.tables["orders"]
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(orders).where(*conditions)).scalar_one()


def epoch(instant: pd.Timestamp) -> int:
    return int(instant.tz_convert("UTC").timestamp())


def check(response, kind: str, root: str, fmt: str):
    """The body of a response, validated (XML is turned into the JSON structure first)."""
    if fmt == "xml":
        assert response.content_type.startswith("text/xml"), response.content_type
        document = from_xml(response.data, root)
    else:
        assert response.content_type.startswith("application/json"), response.content_type
        document = json.loads(response.data)
    validate(kind, document)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return document


def form(lat_long, **extra) -> dict:
    lat, long = lat_long
    return {"api_key": API_KEY, "service_code": "garbage_overflow", "lat": f"{lat:.6f}", "long": f"{long:.6f}",
            "description": "Bins overflowing by the school gate", **extra}


# --- discovery, services, definitions -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_discovery(client, fmt):
    response = client.get(f"{PREFIX}/discovery.{fmt}")
    assert response.status_code == 200
    document = check(response, "discovery", "discovery", fmt)
    assert document["endpoints"][0]["url"].endswith(PREFIX)
    assert document["endpoints"][0]["specification"] == records.SPECIFICATION


def test_services_are_the_responsibility_list_in_both_formats(client, service):
    rules = service.responsibility_list().rules
    as_json = check(client.get(f"{PREFIX}/services.json"), "services.json", "services", "json")
    as_xml = check(client.get(f"{PREFIX}/services.xml"), "services.json", "services", "xml")
    assert as_json == as_xml
    assert [s["service_code"] for s in as_json] == sorted(rules)
    for entry in as_json:
        rule = rules[entry["service_code"]]
        assert entry["service_name"] == rule.name
        assert entry["type"] == "realtime" and entry["metadata"] is True
        assert rule.department in entry["description"] and str(rule.time_limit_hours) in entry["description"]
        assert entry["group"] and rule.name_zh in entry["keywords"]


def test_every_service_definition_validates_in_both_formats(client, service):
    for code in service.responsibility_list().rules:
        as_json = check(client.get(f"{PREFIX}/services/{code}.json"), "service-definition.json",
                        "service_definition", "json")
        as_xml = check(client.get(f"{PREFIX}/services/{code}.xml"), "service-definition.json",
                       "service_definition", "xml")
        assert as_json == as_xml
        assert as_json["service_code"] == code
        kinds = {a["datatype"] for a in as_json["attributes"]}
        assert {"string", "singlevaluelist"} <= kinds
        assert [a["order"] for a in as_json["attributes"]] == list(range(1, len(as_json["attributes"]) + 1))


# --- POST: success ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_files_a_work_order_and_get_reads_it_back(client, service, store, inside, fmt):
    before = work_order_snapshot(store)[0]
    response = client.post(f"{PREFIX}/requests.{fmt}", data=form(
        inside, address_string="Futian, Shenzhen", email="citizen@example.org", first_name="Li",
        **{"attribute[urgency]": "today", "attribute[location_detail]": "north gate",
           "attribute[recurring]": "again"}))
    assert response.status_code == 201, response.data
    created = check(response, "created", "service_requests", fmt)[0]
    order = service.get(created["service_request_id"])
    after = work_order_snapshot(store)[0]
    assert after["orders"] == before["orders"] + 1
    assert after["order_transitions"] == before["order_transitions"] + 1
    assert (order.event_type, order.channel, order.status, order.version) == ("garbage_overflow", "website",
                                                                              "received", 1)
    assert (round(order.lat, 6), round(order.lon, 6)) == tuple(round(v, 6) for v in inside)
    assert order.address == "Futian, Shenzhen"
    # The attribute values are appended to the description, one line each; contact details are not stored.
    assert order.description == ("Bins overflowing by the school gate\n\nUrgency: Needs attention today\n"
                                 "Where exactly: north gate\nSeen before: It happened before")
    assert "citizen@example.org" not in repr(order)
    assert order.order_id in created["service_notice"]

    read = check(client.get(f"{PREFIX}/requests/{order.order_id}.{fmt}"), "requests.json", "service_requests", fmt)
    assert len(read) == 1
    got = read[0]
    assert (got["service_request_id"], got["status"], got["service_code"]) == (order.order_id, "open",
                                                                              "garbage_overflow")
    assert got["description"] == order.description
    assert (got["lat"], got["long"]) == (pytest.approx(order.lat), pytest.approx(order.lon))
    assert got["requested_datetime"] == NOW.isoformat()
    assert (got["citytwin:stage"], got["citytwin:version"], got["citytwin:channel"]) == ("received", 1, "website")
    assert got["expected_datetime"] == order.deadline_at.isoformat()


def test_the_key_decides_the_channel(client, service, inside):
    response = client.post(f"{PREFIX}/requests.json", data=form(inside, api_key=APP_KEY))
    assert response.status_code == 201
    assert service.get(response.json[0]["service_request_id"]).channel == "ishenzhen_app"


def test_html_in_a_description_is_stored_verbatim_and_returned_as_text(client, service, inside):
    response = client.post(f"{PREFIX}/requests.json", data=form(inside, description=HOSTILE))
    assert response.status_code == 201
    order_id = response.json[0]["service_request_id"]
    assert service.get(order_id).description == HOSTILE

    as_json = client.get(f"{PREFIX}/requests/{order_id}.json")
    assert json.loads(as_json.data)[0]["description"] == HOSTILE  # a plain JSON string

    as_xml = client.get(f"{PREFIX}/requests/{order_id}.xml")
    assert b"<script>" not in as_xml.data and b"<img" not in as_xml.data
    assert b"&lt;script&gt;alert(\"x\")&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp;" in as_xml.data
    assert from_xml(as_xml.data, "service_requests")[0]["description"] == HOSTILE


def test_a_description_of_exactly_4000_characters_is_accepted(client, service, inside):
    text = "x" * records.MAX_DESCRIPTION_CHARS
    response = client.post(f"{PREFIX}/requests.json", data=form(inside, description=text))
    assert response.status_code == 201
    assert service.get(response.json[0]["service_request_id"]).description == text


# --- POST: every refusal, nothing stored --------------------------------------------------------------------------

REFUSALS = [
    # (case, form changes (None: drop the field), status, words in the description)
    ("missing api_key", {"api_key": None}, 403, ["api_key", "missing"]),
    ("empty api_key", {"api_key": ""}, 403, ["api_key", "missing"]),
    ("unknown api_key", {"api_key": "guess"}, 403, ["api_key", "invalid"]),
    ("missing service_code", {"service_code": None}, 400, ["service_code", "required"]),
    ("unknown service_code", {"service_code": "alien_landing"}, 400, ["service_code", "alien_landing"]),
    ("description over 4,000 characters", {"description": "y" * 4001}, 400, ["description", "4,001", "4,000"]),
    ("no location", {"lat": None, "long": None}, 400, ["location", "lat and long"]),
    ("an address alone", {"lat": None, "long": None, "address_string": "1 Shennan Road"}, 400,
     ["address", "geocoder"]),
    ("lat without long", {"long": None}, 400, ["long is missing"]),
    ("long without lat", {"lat": None}, 400, ["lat is missing"]),
    ("lat not a number", {"lat": "north"}, 400, ["lat", "not a number"]),
    ("lat out of range", {"lat": "222.5"}, 400, ["lat", "between -90 and 90"]),
    ("infinite long", {"long": "inf"}, 400, ["long", "not a coordinate"]),
    ("outside the city (Beijing)", {"lat": "39.9042", "long": "116.4074"}, 400, ["location", "outside the city"]),
    ("outside the city (0, 0)", {"lat": "0", "long": "0"}, 400, ["outside the city"]),
    ("unknown attribute", {"attribute[colour]": "red"}, 400, ["attribute[colour]", "unknown attribute"]),
    ("unknown list value", {"attribute[urgency]": "yesterday"}, 400, ["attribute[urgency]", "danger"]),
    ("list given for a single value", {"attribute[urgency][]": "today"}, 400, ["one value"]),
    ("malformed attribute key", {"attributes": "x"}, 400, ["attributes", "attribute[code]"]),
    ("attribute text too long", {"attribute[location_detail]": "z" * 201}, 400, ["location_detail", "200"]),
    ("description plus attributes over 4,000", {"description": "w" * 3990, "attribute[urgency]": "danger"}, 400,
     ["attribute values appended", "4,000"]),
    ("bad e-mail", {"email": "not-an-address"}, 400, ["email"]),
    ("bad phone", {"phone": "<b>call me</b>"}, 400, ["phone"]),
    ("bad media_url", {"media_url": "javascript:alert(1)"}, 400, ["media_url"]),
]


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("case,changes,status,words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_post_refusals_use_the_spec_format_and_store_nothing(client, store, inside, fmt, case, changes, status,
                                                             words):
    data = form(inside)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    before = work_order_snapshot(store)
    response = client.post(f"{PREFIX}/requests.{fmt}", data=data)
    assert response.status_code == status, response.data
    errors = check(response, "errors", "errors", fmt)
    assert all(e["code"] == status for e in errors)
    text = " ".join(e["description"] for e in errors)
    for word in words:
        assert word in text, f"{case}: {word!r} not in {text!r}"
    assert work_order_snapshot(store) == before


def test_every_problem_of_a_post_is_named_at_once(client, store):
    before = work_order_snapshot(store)
    response = client.post(f"{PREFIX}/requests.json", data={
        "api_key": API_KEY, "service_code": "nope", "description": "d" * 5000, "attribute[urgency]": "meh"})
    assert response.status_code == 400
    fields = [e["description"].split(":")[0] for e in check(response, "errors", "errors", "json")]
    assert fields == ["service_code", "location", "description", "attribute[urgency]"]
    assert work_order_snapshot(store) == before


def test_no_configured_key_refuses_every_post(service, store, inside):
    locked = _app(service, {}).test_client()
    before = work_order_snapshot(store)
    response = locked.post(f"{PREFIX}/requests.json", data=form(inside))
    assert response.status_code == 403
    assert "no API keys are configured" in check(response, "errors", "errors", "json")[0]["description"]
    assert work_order_snapshot(store) == before


def test_a_json_body_is_refused_as_not_form_encoded(client, store, inside):
    before = work_order_snapshot(store)
    response = client.post(f"{PREFIX}/requests.json", json=form(inside))
    assert response.status_code == 400
    assert "form-encoded" in check(response, "errors", "errors", "json")[0]["description"]
    assert work_order_snapshot(store) == before


def test_keys_from_the_environment():
    assert open311.keys_from_env({}) == {}
    assert open311.keys_from_env({open311.KEYS_ENV: " a1 , b2=wechat,, "}) == {"a1": "website", "b2": "wechat"}
    # The development key only when explicitly enabled.
    assert open311.keys_from_env({open311.DEV_KEY_ENV: "1"}) == {open311.DEV_KEY: "website"}
    assert open311.keys_from_env({open311.DEV_KEY_ENV: "yes"}) == {}
    with pytest.raises(ValueError, match="unknown channel 'pigeon'"):
        open311.keys_from_env({open311.KEYS_ENV: "k=pigeon"})


# --- GET requests: filters ----------------------------------------------------------------------------------------

def _get(client, fmt="json", **params):
    response = client.get(f"{PREFIX}/requests.{fmt}", query_string=params)
    assert response.status_code == 200, response.data
    return check(response, "requests.json", "service_requests", fmt), int(response.headers["X-Citytwin-Total-Count"])


def test_default_window_is_the_last_90_days_newest_first_capped_at_1000(client, store):
    orders = METADATA.tables["orders"].c
    expected = count_orders(store, orders.received_at >= epoch(NOW - pd.Timedelta(days=90)),
                            orders.received_at <= epoch(NOW))
    got, total = _get(client)
    assert total == expected > open311.MAX_RESULTS
    assert len(got) == open311.MAX_RESULTS
    times = [pd.Timestamp(r["requested_datetime"]) for r in got]
    assert times == sorted(times, reverse=True)
    assert times[0] <= NOW


def test_dates_status_and_service_code_filter_in_sql(client, store):
    orders = METADATA.tables["orders"].c
    start, end = DEFAULT_END - pd.Timedelta(days=2), DEFAULT_END - pd.Timedelta(days=1)
    codes = ["garbage_overflow", "illegal_parking"]
    got, total = _get(client, start_date=start.isoformat(), end_date=end.isoformat(), status="closed",
                      service_code=",".join(codes))
    expected = count_orders(store, orders.received_at >= epoch(start), orders.received_at <= epoch(end),
                            orders.status.in_(sorted(FINAL_STATUSES)), orders.event_type.in_(codes))
    assert total == len(got) == expected > 0
    for entry in got:
        assert start <= pd.Timestamp(entry["requested_datetime"]) <= end
        assert entry["status"] == "closed" and entry["citytwin:stage"] in FINAL_STATUSES
        assert entry["service_code"] in codes

    opened, open_total = _get(client, start_date=start.isoformat(), end_date=end.isoformat(), status="open")
    assert open_total == count_orders(store, orders.received_at >= epoch(start), orders.received_at <= epoch(end),
                                      orders.status.in_(sorted(OPEN_STATUSES)))
    assert {e["status"] for e in opened} == {"open"}


def test_dates_in_utc_and_without_offset_mean_the_same_instant(client):
    start = DEFAULT_END - pd.Timedelta(hours=6)
    with_offset, n1 = _get(client, start_date=start.isoformat(), end_date=DEFAULT_END.isoformat())
    in_utc, n2 = _get(client, start_date=start.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
                      end_date=DEFAULT_END.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"))
    local, n3 = _get(client, start_date=start.strftime("%Y-%m-%dT%H:%M:%S"),
                     end_date=DEFAULT_END.strftime("%Y-%m-%dT%H:%M:%S"))
    assert n1 == n2 == n3 > 0
    assert with_offset == in_utc == local


def test_service_request_ids_override_every_other_filter(client, store):
    orders = METADATA.tables["orders"]
    with store.engine.connect() as conn:
        ids = conn.execute(select(orders.c.order_id).where(orders.c.status == "closed")
                           .order_by(orders.c.order_id).limit(3)).scalars().all()
    got, total = _get(client, service_request_id=",".join(ids + ["SZ-no-such-order"]), status="open",
                      service_code="gas_leak", start_date="2001-01-01")
    assert sorted(e["service_request_id"] for e in got) == sorted(ids) and total == 3


def test_a_list_says_the_same_in_json_and_xml(client):
    start = (DEFAULT_END - pd.Timedelta(hours=3)).isoformat()
    as_json, _ = _get(client, "json", start_date=start)
    as_xml, _ = _get(client, "xml", start_date=start)
    assert as_json == as_xml and len(as_json) > 10


GET_REFUSALS = [
    ("bad start_date", {"start_date": "yesterday"}, ["start_date", "ISO 8601"]),
    ("bad end_date", {"end_date": "2026-13-45"}, ["end_date", "ISO 8601"]),
    ("end before start", {"start_date": "2026-11-10", "end_date": "2026-11-01"}, ["before start_date"]),
    ("over 90 days", {"start_date": "2026-01-01", "end_date": "2026-11-01"}, ["304 days", "at most 90"]),
    ("unknown status", {"status": "open,pending"}, ["status", "pending"]),
    ("unknown service_code", {"service_code": "garbage_overflow,alien_landing"}, ["alien_landing"]),
    ("too many ids", {"service_request_id": ",".join(f"SZ{i}" for i in range(1001))}, ["1,001 ids"]),
]


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("case,params,words", GET_REFUSALS, ids=[r[0] for r in GET_REFUSALS])
def test_get_refusals(client, store, fmt, case, params, words):
    before = work_order_snapshot(store)
    response = client.get(f"{PREFIX}/requests.{fmt}", query_string=params)
    assert response.status_code == 400
    text = " ".join(e["description"] for e in check(response, "errors", "errors", fmt))
    for word in words:
        assert word in text, f"{case}: {word!r} not in {text!r}"
    assert work_order_snapshot(store) == before


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("method,path,status,words", [
    ("GET", "/requests/SZ000.{fmt}", 404, ["SZ000"]),
    ("GET", "/services/alien_landing.{fmt}", 404, ["alien_landing"]),
    ("GET", "/requests.csv", 404, ["csv"]),
    ("GET", "/reports.{fmt}", 404, ["no Open311 resource"]),
    ("DELETE", "/requests.{fmt}", 405, ["DELETE", "GET, POST"]),
    ("POST", "/services.{fmt}", 405, ["POST", "GET"]),
])
def test_unknown_things_and_wrong_methods(client, store, fmt, method, path, status, words):
    before = work_order_snapshot(store)
    response = client.open(PREFIX + path.format(fmt=fmt), method=method)
    assert response.status_code == status
    body_format = "json" if path.endswith(".csv") else fmt
    text = " ".join(e["description"] for e in check(response, "errors", "errors", body_format))
    for word in words:
        assert word in text
    assert work_order_snapshot(store) == before


# --- the lifecycle seen through Open311 ---------------------------------------------------------------------------

def test_every_stage_maps_to_open_or_closed_with_the_detail(client, service, inside):
    created = client.post(f"{PREFIX}/requests.json", data=form(inside)).json[0]["service_request_id"]
    order = service.get(created)
    department = service.responsibility_list().rule("garbage_overflow").department
    steps = [("dispatch", {}, "open", "Dispatched to"), ("accept", {}, "open", "Accepted by"),
             ("handle", {}, "open", "Handled by"), ("reply", {}, "open", "waiting for the citizen's evaluation"),
             ("evaluate", {"satisfied": False}, "open", "reopened 1 time"),
             ("handle", {}, "open", "Handled by"), ("reply", {}, "open", "replied"),
             ("evaluate", {"satisfied": True}, "open", "Evaluated (the citizen was satisfied)"),
             ("close", {}, "closed", "Closed (the citizen was satisfied)")]
    for action, extra, status, words in steps:
        order = service.act(order.order_id, action, expected_version=order.version, actor="tests", **extra)
        got = check(client.get(f"{PREFIX}/requests/{order.order_id}.xml"), "requests.json", "service_requests",
                    "xml")[0]
        assert got["status"] == status, action
        assert words in got["status_notes"], (action, got["status_notes"])
        assert f"Stage {records.STAGE_NUMBERS[order.status]} of 7: {order.status}." in got["status_notes"]
        assert (got["citytwin:stage"], got["citytwin:version"]) == (order.status, order.version)
        assert got["citytwin:department"] == got["agency_responsible"] == department
    assert got["citytwin:reopen_count"] == 1 and got["citytwin:satisfied"] is True
    assert got["updated_datetime"] == order.closed_at.isoformat()

    cancelled = service.get(client.post(f"{PREFIX}/requests.json", data=form(inside)).json[0]["service_request_id"])
    service.cancel(cancelled.order_id, expected_version=1, actor="tests", reason="duplicate of " + order.order_id)
    got = client.get(f"{PREFIX}/requests/{cancelled.order_id}.json").json[0]
    assert (got["status"], got["citytwin:stage"]) == ("closed", "cancelled")
    assert got["status_notes"].startswith("Cancelled")


# --- the OpenAPI document -----------------------------------------------------------------------------------------

def test_openapi_describes_every_route(client):
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"].startswith("3.")
    routes = {}
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint.startswith("open311.") and rule.endpoint != "open311.unknown":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len(PREFIX):]).replace("{fmt}", "{format}")
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(operations) for path, operations in document["paths"].items()}
    assert documented == routes
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert operation["responses"], path
    post = document["paths"]["/requests.{format}"]["post"]
    props = post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert props["description"]["maxLength"] == records.MAX_DESCRIPTION_CHARS
    assert {f"attribute[{a.code}]" for a in records.ATTRIBUTES} <= set(props)
    assert set(post["responses"]) == {"201", "400", "403", "404", "429"}


# --- over real HTTP, and the independent client -------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(city_url):
    saved = os.environ.get(open311.KEYS_ENV)
    os.environ[open311.KEYS_ENV] = f"{API_KEY},{APP_KEY}=ishenzhen_app"
    try:
        with run_app_server(city_url) as base_url:
            yield base_url + PREFIX
    finally:
        if saved is None:
            os.environ.pop(open311.KEYS_ENV, None)
        else:
            os.environ[open311.KEYS_ENV] = saved


class HttpResponse:
    """What :func:`check` needs of a urllib answer."""

    def __init__(self, status: int, headers, data: bytes):
        self.status_code, self.headers, self.data = status, headers, data
        self.content_type = headers.get("Content-Type", "")


def http(method: str, url: str, data: dict | None = None) -> HttpResponse:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as answer:
            return HttpResponse(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as error:
        return HttpResponse(error.code, error.headers, error.read())


def test_over_http_post_then_read_and_refusals(server, store, inside):
    for fmt in ("json", "xml"):
        services = http("GET", f"{server}/services.{fmt}")
        assert services.status_code == 200
        rules = WorkOrders(store).responsibility_list().rules
        assert [s["service_code"] for s in check(services, "services.json", "services", fmt)] == sorted(rules)

    before = work_order_snapshot(store)
    for data, status in ((form(inside, api_key="wrong"), 403), (form(inside, description="q" * 4001), 400),
                         (form(inside, lat="39.9", long="116.4"), 400), ({**form(inside), "api_key": ""}, 403)):
        refused = http("POST", f"{server}/requests.xml", data)
        assert refused.status_code == status
        check(refused, "errors", "errors", "xml")
    assert work_order_snapshot(store) == before

    created = http("POST", f"{server}/requests.json", form(inside, api_key=APP_KEY, description=HOSTILE))
    assert created.status_code == 201, created.data
    order_id = check(created, "created", "service_requests", "json")[0]["service_request_id"]
    assert work_order_snapshot(store)[0]["orders"] == before[0]["orders"] + 1
    read = http("GET", f"{server}/requests/{order_id}.xml")
    assert b"&lt;script&gt;" in read.data and b"<script>" not in read.data
    got = check(read, "requests.json", "service_requests", "xml")[0]
    assert (got["description"], got["citytwin:channel"]) == (HOSTILE, "ishenzhen_app")
    # The dashboard itself still answers beside the API.
    assert http("GET", server.rsplit(PREFIX, 1)[0] + "/").status_code == 200


GEOREPORT_SCRIPT = textwrap.dedent("""
    import json, sys
    from georeport import GeoReport

    root, order_id, start, end = sys.argv[1:5]
    out = {}
    for fmt in ("json", "xml"):
        client = GeoReport(root, output_format=fmt)
        services = client.get_service_list()
        definition = client.get_service_definition("garbage_overflow")
        requests = client.get_service_requests(start_date=start, end_date=end, status="open")
        one = client.get_service_request(order_id)
        by_id = client.get_service_requests(service_request_id=order_id)
        out[fmt] = {
            "service_codes": [s["service_code"] for s in services],
            "service_names": [s["service_name"] for s in services],
            "metadata": [s["metadata"] for s in services],
            "attribute_codes": [a["code"] for a in definition["attributes"]] if fmt == "json"
                               else [a["code"] for a in definition["attributes"]["attribute"]],
            "request_ids": [r["service_request_id"] for r in requests],
            "request_statuses": sorted({r["status"] for r in requests}),
            "one": {k: one[k] for k in ("service_request_id", "status", "service_code", "description")},
            "by_id": by_id if isinstance(by_id, dict) else by_id[0],
        }
    print(json.dumps(out))
""")


def test_the_independent_georeport_client_reads_json_and_xml(server, service, inside, tmp_path):
    if not GEOREPORT_PYTHON.exists():
        pytest.fail(f"{GEOREPORT_PYTHON} is missing: run `make georeport` (make test does)", pytrace=False)
    created = http("POST", f"{server}/requests.json", form(inside, description="Seen by georeport & <b>co</b>"))
    assert created.status_code == 201
    order_id = json.loads(created.data)[0]["service_request_id"]
    start, end = DEFAULT_END - pd.Timedelta(hours=12), DEFAULT_END
    script = tmp_path / "read_with_georeport.py"
    script.write_text(GEOREPORT_SCRIPT)
    env = {"PATH": os.environ.get("PATH", ""), "NO_PROXY": "*", "no_proxy": "*"}
    run = subprocess.run([str(GEOREPORT_PYTHON), str(script), server, order_id, start.isoformat(), end.isoformat()],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    read = json.loads(run.stdout)

    rules = service.responsibility_list().rules
    orders = service.list_orders(open311.requests_query(
        {"start_date": start.isoformat(), "end_date": end.isoformat(), "status": "open"}, rules, NOW))
    for fmt in ("json", "xml"):
        got = read[fmt]
        assert got["service_codes"] == sorted(rules), fmt
        assert got["service_names"] == [rules[c].name for c in sorted(rules)]
        assert got["metadata"] == ([True] * len(rules) if fmt == "json" else ["true"] * len(rules))
        assert got["attribute_codes"] == [a.code for a in records.ATTRIBUTES]
        assert got["request_ids"] == [o.order_id for o in orders.orders] and len(got["request_ids"]) > 0
        assert got["request_statuses"] == ["open"]
        assert got["one"] == {"service_request_id": order_id, "status": "open", "service_code": "garbage_overflow",
                              "description": "Seen by georeport & <b>co</b>"}
        assert got["by_id"]["service_request_id"] == order_id
