"""What Open311 takes in and writes out as text (issue 15 item 14): control characters are refused at intake, the
XML writer cannot produce a document that does not parse (a property test), bytes that are not UTF-8 are refused,
and OPTIONS and empty parameters agree with the OpenAPI document. Through Flask's test client on the sample city
of tests/test_open311.py (its fixtures are imported from there)."""
from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import work_order_snapshot
from dashboard.open311.formats import to_xml, xml_safe
from test_open311 import API_KEY, NOW, PREFIX, FrozenClock, _app, form

from layers.workorders import WorkOrders
from sample_data.__main__ import build


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    built = build("test", f"sqlite:///{tmp_path_factory.mktemp('open311-text') / 'city.sqlite'}", progress=False)
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def client(store):
    return _app(WorkOrders(store, clock=FrozenClock(NOW)), {API_KEY: "website"}).test_client()


@pytest.fixture(scope="module")
def inside(store) -> tuple[float, float]:
    """(lat, long) of a point inside a grid cell of the city."""
    import shapely

    units = store.read_frame("units", ["code", "level", "geometry"])
    grids = units[units["level"] == "grid"]
    point = shapely.from_wkb(grids["geometry"].iloc[len(grids) // 3]).representative_point()
    return point.y, point.x

CONTROL = {"ESC": "\x1b", "NUL": "\x00", "vertical tab": "\x0b", "form feed": "\x0c", "U+FFFF": "\uffff"}


@pytest.mark.parametrize("field", ["description", "address_string", "first_name"])
@pytest.mark.parametrize("name", list(CONTROL))
def test_control_characters_are_refused_at_intake(client, store, inside, field, name):
    before = work_order_snapshot(store)
    text = f"Bins overflowing{CONTROL[name]}[31m by the gate"
    response = client.post(f"{PREFIX}/requests.json", data=form(inside, **{field: text}))
    assert response.status_code == 400, response.data
    (error,) = [e["description"] for e in response.json if e["description"].startswith(field)]
    assert f"U+{ord(CONTROL[name]):04X} at position 17" in error
    assert work_order_snapshot(store) == before


def test_tabs_and_line_breaks_are_text(client, inside):
    response = client.post(f"{PREFIX}/requests.json",
                           data=form(inside, description="Line one\r\nLine two\tand a tab"))
    assert response.status_code == 201, response.data


def test_an_order_stored_with_control_characters_still_gives_parseable_xml(client, store):
    """Text stored before intake refused such characters (or imported) cannot break the XML documents."""
    path = store.engine.url.database
    with sqlite3.connect(path) as connection:
        order_id = connection.execute("SELECT order_id FROM orders ORDER BY received_at DESC LIMIT 1").fetchone()[0]
        connection.execute("UPDATE orders SET description = ?, address = ? WHERE order_id = ?",
                           ("noise\x1b[0m\x00 at night\x0b", "Lane 3\x07", order_id))
    one = client.get(f"{PREFIX}/requests/{order_id}.xml")
    assert one.status_code == 200
    request = ET.fromstring(one.data).find("request")
    assert request.findtext("description") == "noise\ufffd[0m\ufffd at night\ufffd"
    assert request.findtext("address") == "Lane 3\ufffd"
    listed = client.get(f"{PREFIX}/requests.xml", query_string={"service_request_id": order_id})
    ET.fromstring(listed.data)  # parses
    assert json.loads(client.get(f"{PREFIX}/requests/{order_id}.json").data)[0]["description"].startswith("noise")


ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=60)  # every code point, surrogates too


@given(description=ANY_TEXT, address=ANY_TEXT, status_notes=st.one_of(st.none(), ANY_TEXT),
       extra=st.lists(ANY_TEXT, max_size=3))
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_xml_writer_cannot_write_a_document_that_does_not_parse(description, address, status_notes, extra):
    payload = [{"service_request_id": "SZ1", "description": description, "address": address,
                "status_notes": status_notes, "citytwin:stage": extra[0] if extra else None}]
    document = ET.fromstring(to_xml("service_requests", payload))
    request = document.find("request")

    def read_back(text):  # XML parsers turn \r\n and \r into \n
        return None if text is None else xml_safe(text).replace("\r\n", "\n").replace("\r", "\n")
    assert (request.findtext("description") or "") == (read_back(description) or "")
    assert (request.findtext("address") or "") == (read_back(address) or "")
    assert (request.findtext("status_notes") or "") == (read_back(status_notes) or "")


def test_bytes_that_are_not_utf8_are_refused(client, store, inside):
    before = work_order_snapshot(store)
    body = "&".join(f"{k}={v}" for k, v in form(inside).items() if k != "description") + "&description=caf%E9+bins"
    response = client.post(f"{PREFIX}/requests.json", data=body.encode(),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json[0]["description"].startswith("description: not valid UTF-8")
    raw = client.post(f"{PREFIX}/requests.json", data=body.replace("caf%E9", "caf\xe9").encode("latin-1"),
                      content_type="application/x-www-form-urlencoded")
    assert raw.status_code == 400 and "not valid UTF-8" in raw.json[0]["description"]
    query = client.get(f"{PREFIX}/requests.json?service_code=%FF%FE")
    assert query.status_code == 400 and query.json[0]["description"].startswith("service_code: not valid UTF-8")
    assert work_order_snapshot(store) == before


@pytest.mark.parametrize("path, allow", [
    ("/requests.json", "GET, POST, HEAD, OPTIONS"),
    ("/services.xml", "GET, HEAD, OPTIONS"),
    ("/requests/SZ1.json", "GET, HEAD, OPTIONS"),
])
def test_options_lists_only_the_methods_the_path_allows(client, path, allow):
    response = client.options(PREFIX + path)
    assert response.status_code == 204
    assert response.headers["Allow"] == allow
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.open(PREFIX + path, method=method).status_code == 405


def test_options_on_an_unknown_path_is_404(client):
    assert client.options(f"{PREFIX}/reports.json").status_code == 404


@pytest.mark.parametrize("params, words", [
    ({"start_date": ""}, "start_date: empty"),
    ({"end_date": " "}, "end_date: empty"),
    ({"status": "open,"}, "empty item"),
    ({"status": "open", "service_request_id": "SZ1", "start_date": "soon"}, "start_date: 'soon'"),
])
def test_parameters_the_document_refuses_are_refused(client, params, words):
    response = client.get(f"{PREFIX}/requests.json", query_string=params)
    assert response.status_code == 400
    assert words in " ".join(e["description"] for e in response.json)


def test_the_document_states_the_rules_the_server_enforces(client):
    document = client.get(f"{PREFIX}/openapi.json").json
    get = {p["name"]: p for p in document["paths"]["/requests.{format}"]["get"]["parameters"]}
    assert get["status"]["schema"]["pattern"] and get["start_date"]["schema"]["minLength"] == 1
    post = document["paths"]["/requests.{format}"]["post"]
    props = post["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert props["email"]["format"] == "email"
    assert "inside the city" in props["lat"]["description"] and "inside the city" in props["long"]["description"]
    assert "garbage_overflow" in props["service_code"]["enum"]
    assert "\x1b" not in props["description"]["pattern"] or props["description"]["pattern"].startswith("^[^")
