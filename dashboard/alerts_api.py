"""``GET /api/alerts``: the alerts as JSON, selected like the alerts page and within the asker's area.

    GET /api/alerts?state=open&severity=critical,warning&unit=440304&kind=fire_alarm&limit=100

Every parameter is optional; an unknown parameter or value is refused with 400 and a message naming it:

- ``state``: the lifecycle status: ``open`` (the default: firing, acknowledged or assigned), ``firing``,
  ``acknowledged``, ``assigned``, ``resolved`` or ``all``.
- ``severity``: ``watch``, ``warning``, ``critical``; several separated by commas.
- ``unit``: a unit code of the city; the alerts at that unit or anywhere below it (a grid cell's alert counts on its
  community, street, district and the city). An account bound to a unit gets only the alerts inside it, and a unit
  outside it is refused with 403 (as the map and the exports are).
- ``kind``: a rule kind (``reading_threshold``, ``indicator_state``, ``sensor_silent``, ``anomaly``, ``fire_alarm``,
  ``order_burst``).
- ``limit``: at most this many (default 500, at most 2000), the most urgent first: by severity, unacknowledged
  first, then the newest.

The answer: ``{"alerts": [...], "count": n, "total": N, "store": "up" | "unavailable"}``; while the store does not
answer, the alerts last read (``"store": "unavailable"``). Each alert carries its severity (a state of the one
vocabulary, :data:`metrics.spec.SEVERITIES`), its status and condition, title and evidence in English and Chinese,
its place and the links to the alerts page, the map and its work order; for an alert on an indicator's state,
``value_state`` is the state of its value by that indicator's thresholds (the same the map, the wall and the
catalogue give it). Titles and evidence are data: shown as text by whoever displays them.
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

import flask
import pandas as pd

from dashboard import auth, services
from layers.alerts import OPEN_STATUSES, STATUSES
from metrics.alert_rules import KINDS
from metrics.registry import INDICATORS
from metrics.spec import SEVERITIES, STATE_RANK

STATE_CHOICES = ("open", *STATUSES, "all")
PARAMETERS = ("state", "severity", "unit", "kind", "limit")
DEFAULT_LIMIT = 500
MAX_LIMIT = 2_000
TIMES = ("fired_at", "acknowledged_at", "assigned_at", "resolved_at")


class AlertQueryError(ValueError):
    """A request that names something unknown (the message says what, and what is known)."""


def parse_query(args, unit_codes) -> dict:
    """The selection a request asks for: ``state``, ``severities``, ``unit``, ``kind``, ``limit``."""
    unknown = sorted(set(args) - set(PARAMETERS))
    if unknown:
        raise AlertQueryError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; parameters: "
                              f"{', '.join(PARAMETERS)}")
    state = args.get("state") or "open"
    if state not in STATE_CHOICES:
        raise AlertQueryError(f"state: unknown state {state!r}; states: {', '.join(STATE_CHOICES)}")
    severities = [s for s in (args.get("severity") or "").split(",") if s]
    wrong = [s for s in severities if s not in SEVERITIES]
    if wrong:
        raise AlertQueryError(f"severity: unknown severity {wrong[0]!r}; severities: {', '.join(SEVERITIES)}")
    kind = args.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise AlertQueryError(f"kind: unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    unit = args.get("unit") or None
    if unit is not None and unit not in unit_codes:
        raise AlertQueryError(f"unit: unknown unit {unit[:64]!r} in this city")
    text = args.get("limit") or str(DEFAULT_LIMIT)
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise AlertQueryError(f"limit: a whole number from 1 to {MAX_LIMIT:,}, got {text[:20]!r}")
    return {"state": state, "severities": severities, "unit": unit, "kind": kind, "limit": int(text)}


def statuses_of(state: str) -> frozenset | None:
    """The lifecycle statuses a ``state`` choice selects (None: every one)."""
    return OPEN_STATUSES if state == "open" else None if state == "all" else frozenset({state})


def select_alerts(frame: pd.DataFrame, directory, *, severities=(), kind=None, unit=None,
                  scope=None) -> pd.DataFrame:
    """The alerts of ``frame`` (layers.alerts.AlertBook.frame) of those severities and kind, at ``unit`` or below it
    and inside ``scope`` (the asker's unit), the most urgent first: the most severe, unacknowledged before the others,
    then the newest. The alerts page and the API select with this one function."""
    if severities:
        frame = frame[frame["severity"].isin(list(severities))]
    if kind:
        frame = frame[frame["kind"] == kind]
    for code in {unit, scope} - {None}:
        if not len(frame):
            break
        level = directory.units.at[code, "level"] if code in directory.units.index else None
        places = frame["unit_code"].where(frame["unit_code"].notna(), frame["grid_code"])
        inside = (places.to_numpy() == code) | (directory.ancestor(places, level).to_numpy() == code)
        frame = frame[inside]
    rank = -frame["severity"].map(STATE_RANK).astype("float64").fillna(0) * 2 \
        - (frame["status"] == "firing").astype("float64")
    return frame.assign(_rank=rank.to_numpy()).sort_values(["_rank", "fired_at"], ascending=[True, False]) \
        .drop(columns="_rank")


def _plain(value):
    """A JSON value: None for a missing one (NaN, NaT), ISO text for an instant, Python numbers."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def value_state(alert: dict, rules: dict) -> str | None:
    """For an alert on an indicator's state: the state of its value by the indicator's thresholds."""
    indicator = INDICATORS.get(rules.get(alert["rule_id"], {}).get("indicator"))
    if alert["kind"] != "indicator_state" or indicator is None or alert["value"] is None:
        return None
    return indicator.thresholds.state(alert["value"])


def alert_json(row: dict, rules: dict, directory) -> dict:
    """One alert as the API gives it."""
    alert = {key: _plain(value) for key, value in row.items()}
    place = alert["unit_code"] or alert["grid_code"]
    district = directory.ancestor(pd.Series([place]), "district").iloc[0] if place else None
    map_query = {"unit": place, "layers": "units,buildings,sensors,alerts"}
    if alert["building_id"]:
        map_query["building"] = alert["building_id"]
    return {
        "alert_id": alert["alert_id"], "rule_id": alert["rule_id"], "rule_version": alert["rule_version"],
        "kind": alert["kind"], "severity": alert["severity"], "status": alert["status"],
        "condition": alert["condition"],
        "title": {"en": alert["title"], "zh": alert["title_zh"]},
        "evidence": {"en": alert["evidence"], "zh": alert["evidence_zh"]},
        "value": alert["value"], "value_state": value_state(alert, rules),
        "place": alert["place"], "sensor_id": alert["sensor_id"], "building_id": alert["building_id"],
        "grid_code": alert["grid_code"], "unit_code": alert["unit_code"], "district": _plain(district),
        "lon": alert["lon"], "lat": alert["lat"],
        **{name: alert[name] for name in TIMES},
        "acknowledged_by": alert["acknowledged_by"], "department": alert["department"],
        "order_id": alert["order_id"], "resolved_by": alert["resolved_by"], "version": alert["version"],
        "links": {"alert": "/alerts?" + urlencode({"status": "all", "alert": alert["alert_id"]}),
                  "map": "/?" + urlencode(map_query) if place else None,
                  "order": f"/orders/{quote(alert['order_id'], safe='')}" if alert["order_id"] else None},
    }


def alerts_answer(args) -> dict:
    """The answer to ``GET /api/alerts`` with ``args`` (the query), for the signed-in asker."""
    service = services.get()
    directory = service.directory()
    query = parse_query(args, directory.units.index)
    frame = service.read_alerts("frame", statuses_of(query["state"]))
    chosen = select_alerts(frame, directory, severities=query["severities"], kind=query["kind"],
                           unit=query["unit"], scope=auth.scope_unit())
    rules = {body["id"]: body for body in service.read_alerts("rule_bodies")}
    rows = chosen.head(query["limit"]).to_dict("records")
    return {"alerts": [alert_json(row, rules, directory) for row in rows], "count": len(rows), "total": len(chosen),
            "store": "up" if service.store.health.available else "unavailable"}


def register(server: flask.Flask) -> None:
    server.add_url_rule("/api/alerts", "alerts_api", _alerts_route)


def _alerts_route():
    try:
        answer = alerts_answer(flask.request.args)
    except AlertQueryError as error:
        return flask.jsonify({"error": "bad_request", "message": str(error)}), 400
    response = flask.jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response
