"""GET /api/alerts: the filters (state, severity, unit, kind, limit), the asker's area, clear refusals naming what is
wrong, and the answer's shape. In process (Flask's test client) on the test city, through the same gate the served
app runs."""
from __future__ import annotations

import time

import pandas as pd
import pytest
from sqlalchemy import insert

from layers.alerts import AlertBook
from layers.specs import CITY_TIMEZONE
from layers.store import Store
from sample_data.__main__ import build


@pytest.fixture(scope="module")
def fired(tmp_path_factory):
    """A test city with two critical water-gauge alerts in two districts: one open, one resolved by hand."""
    from metrics.alert_runner import evaluate
    url = f"sqlite:///{tmp_path_factory.mktemp('alerts-api') / 'city.sqlite'}"
    store = build("test", url, progress=False)
    sensors = store.read_frame("sensors", ["sensor_id", "kind", "grid_code"])
    gauges = sensors[sensors["kind"] == "water_level"]
    first = gauges.iloc[0]
    other = gauges[gauges["grid_code"].str[:6] != first["grid_code"][:6]].iloc[0]
    now = pd.Timestamp.now(tz=CITY_TIMEZONE).floor("min")
    with store.engine.begin() as conn:
        conn.execute(insert(store.table("readings")), [{"sensor_id": s, "ts": int(now.timestamp()), "value": 3.2}
                                                       for s in (first["sensor_id"], other["sensor_id"])])
    book = AlertBook(store)
    evaluate(store, now, book=book)
    frame = book.frame()
    by_sensor = frame.set_index("sensor_id")["alert_id"]
    book.resolve(by_sensor[other["sensor_id"]], actor="operator", note="gauge checked: debris")
    return {"url": url, "open": by_sensor[first["sensor_id"]], "resolved": by_sensor[other["sensor_id"]],
            "district": first["grid_code"][:6], "other_district": other["grid_code"][:6], "grid": first["grid_code"]}


@pytest.fixture(scope="module")
def app(fired):
    from app import create_app
    app = create_app(fired["url"])
    app.server.test_client().get("/login")
    accounts = app.server.extensions["citytwin.auth"].accounts
    accounts.add("scoped-viewer", "a password long enough", roles={"viewer"}, scope=fired["other_district"])
    return app


def get(app, query: str = "", who: str | None = None):
    client = app.server.test_client()
    if who:
        principal = app.server.extensions["citytwin.auth"].accounts.get(who, cached=False)
        with client.session_transaction() as session:
            session.update(u=principal.name, g=principal.generation, t=time.time())
    return client.get("/api/alerts" + query)


def ids(answer) -> set[str]:
    return {a["alert_id"] for a in answer.get_json()["alerts"]}


def test_open_alerts_by_default_with_their_facts_and_links(app, fired):
    answer = get(app)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.get_json()
    assert fired["open"] in ids(answer) and fired["resolved"] not in ids(answer)
    assert body["count"] == len(body["alerts"]) == body["total"] and body["store"] == "up"
    alert = next(a for a in body["alerts"] if a["alert_id"] == fired["open"])
    assert (alert["severity"], alert["status"], alert["kind"], alert["value"]) == ("critical", "firing",
                                                                                    "reading_threshold", 3.2)
    assert alert["title"] == {"en": "Water level above 2.5 m", "zh": "水位超过2.5米"}
    assert alert["district"] == fired["district"] and alert["grid_code"] == fired["grid"]
    assert alert["links"]["alert"] == f"/alerts?status=all&alert={fired['open']}"
    assert alert["links"]["map"].startswith(f"/?unit={fired['grid']}") and alert["links"]["order"] is None
    pd.Timestamp(alert["fired_at"])  # ISO text with its offset
    assert alert["value_state"] is None  # only an indicator's alert has a value judged by thresholds


@pytest.mark.parametrize("query, wanted, unwanted", [
    ("?state=all", ["open", "resolved"], []),
    ("?state=resolved", ["resolved"], ["open"]),
    ("?state=firing&severity=critical", ["open"], ["resolved"]),
    ("?severity=watch,warning", [], ["open"]),
    ("?kind=fire_alarm", [], ["open"]),
    ("?kind=reading_threshold&state=all", ["open", "resolved"], []),
    ("?unit={district}&state=all", ["open"], ["resolved"]),
    ("?unit={grid}", ["open"], []),
    ("?unit={other_district}&state=all", ["resolved"], ["open"]),
])
def test_the_filters(app, fired, query, wanted, unwanted):
    answer = get(app, query.format(**fired))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    found = ids(answer)
    assert {fired[w] for w in wanted} <= found and not {fired[u] for u in unwanted} & found


@pytest.mark.parametrize("query, message", [
    ("?state=burning", "state: unknown state 'burning'; states: open, firing, acknowledged, assigned, resolved, all"),
    ("?severity=critical,loud", "severity: unknown severity 'loud'; severities: watch, warning, critical"),
    ("?kind=meteor", "kind: unknown kind 'meteor'"),
    ("?unit=999999", "unit: unknown unit '999999' in this city"),
    ("?limit=0", "limit: a whole number from 1 to 2,000, got '0'"),
    ("?limit=-5", "limit: a whole number from 1 to 2,000"),
    ("?sevrity=critical", "unknown parameter(s) 'sevrity'; parameters: state, severity, unit, kind, limit"),
])
def test_bad_requests_are_refused_naming_what_is_wrong(app, query, message):
    answer = get(app, query)
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "bad_request" and message in body["message"]


def test_the_limit_keeps_the_most_urgent(app, fired):
    body = get(app, "?state=all&limit=1").get_json()
    assert body["count"] == 1 and body["total"] >= 2
    assert body["alerts"][0]["alert_id"] == fired["open"]  # critical and unacknowledged first


def test_an_account_bound_to_a_district_sees_its_alerts_only(app, fired):
    mine = get(app, "?state=all", who="scoped-viewer")
    assert mine.status_code == 200
    assert fired["resolved"] in ids(mine) and fired["open"] not in ids(mine)
    outside = get(app, f"?unit={fired['district']}", who="scoped-viewer")
    assert outside.status_code == 403
    assert fired["open"] not in outside.get_data(as_text=True)
    nobody = app.server.test_client()
    nobody.delete_cookie("citytwin_session")
    assert nobody.get("/api/alerts").status_code == 401
