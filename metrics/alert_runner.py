"""The alert runner: gather the facts the rules look at, evaluate them (:func:`metrics.alerting.evaluate_rules`, a pure
function) and write the outcome through :class:`layers.alerts.AlertBook` — one call, :func:`evaluate`, that a
periodic engine (or app.py's background thread) makes.

Readings (each sensor's newest), open alarms and recent orders are read from the store at each call (a reading
written a second ago counts); sensors, indicator tables and early-warning anomalies come from the loaded city when
the caller has one (the dashboard's services), else from the store.

Rules: the store keeps them, versioned. The first evaluation of a store without rules seeds them from the city's
rule file (``metrics/rules/shenzhen.toml`` for the sample); :func:`save_rule` adds or changes one (validated, a new
version each time) and :func:`set_rule_enabled` disables or enables one.
"""
from __future__ import annotations

import threading
import weakref
from pathlib import Path

import numpy as np
import pandas as pd

from layers.alerts import AlertBook
from layers.ingest import newest_readings
from layers.specs import CITY_TIMEZONE
from layers.store import Store
from metrics.alert_rules import SAMPLE_RULES, Rule, default_known, load_rules, rule_from_dict
from metrics.alerting import Facts, Instance, evaluate_rules
from metrics.spec import STATE_RANK, SEVERITIES

SEED_ACTOR = "rules file"
_anomaly_memo: dict = {}
_anomaly_lock = threading.Lock()
_evaluation_lock = threading.Lock()


# --- rules ----------------------------------------------------------------------------------------------------------

def seed_rules(book: AlertBook, path: Path = SAMPLE_RULES, at=None) -> int:
    """Version 1 of every rule of ``path`` when the store has none yet; the number of rules written."""
    if book.has_rules():
        return 0
    rules = load_rules(path)
    for rule in rules:
        body = rule.as_dict()
        book.save_rule_version(rule.id, body, enabled=rule.enabled, changed_by=SEED_ACTOR,
                               note=f"seeded from {Path(path).name}", at=at)
    return len(rules)


def current_rules(book: AlertBook) -> list[Rule]:
    """The current version of every rule, as :class:`Rule` (with its ``version``)."""
    out = []
    for body in book.rule_bodies():
        fields = {k: v for k, v in body.items() if k not in ("version", "changed_at", "changed_by", "note")}
        out.append(rule_from_dict(fields, f"store: rule {body.get('id')!r} version {body['version']}"))
    return out


def save_rule(book: AlertBook, raw: dict, *, changed_by: str, note: str, at=None) -> int:
    """Add a rule or change one (by its ``id``): validated like the file's rules, written as a new version."""
    rule = rule_from_dict(raw, "rule", default_known())
    return book.save_rule_version(rule.id, rule.as_dict(), enabled=rule.enabled, changed_by=changed_by, note=note,
                                  at=at)


def set_rule_enabled(book: AlertBook, rule_id: str, enabled: bool, *, changed_by: str, note: str, at=None) -> int:
    """Disable (or enable again) a rule: a new version with the same body."""
    body = next((b for b in book.rule_bodies() if b["id"] == rule_id), None)
    if body is None:
        raise ValueError(f"no rule {rule_id!r}")
    fields = {k: v for k, v in body.items() if k not in ("version", "changed_at", "changed_by", "note")}
    fields["enabled"] = bool(enabled)
    return save_rule(book, fields, changed_by=changed_by, note=note, at=at)


# --- facts ------------------------------------------------------------------------------------------------------------

def _times(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="float64"), unit="s", utc=True).dt.tz_convert(CITY_TIMEZONE)


def gather_facts(store: Store, rules: list[Rule], now: pd.Timestamp, city=None, table_of=None) -> Facts:
    """What ``rules`` need at ``now``: only what some enabled rule reads is read."""
    kinds = {r.kind for r in rules if r.enabled}
    facts = Facts(now=now)
    now_epoch = int(now.timestamp())
    if kinds & {"reading_threshold", "sensor_silent", "fire_alarm"}:
        if city is not None:
            sensors = city["sensors"].copy()
        else:
            sensors = store.read_frame("sensors")
            for name in ("installed_at", "last_seen_at"):
                sensors[name] = _times(sensors[name])
        facts.sensors = sensors
        oldest = max([r.param("max_age_minutes") for r in rules if r.kind == "reading_threshold"]
                     + [r.param("silent_minutes") for r in rules if r.kind == "sensor_silent"] + [180.0])
        since = now_epoch - int(oldest * 60)
        readings = newest_readings(store, since, now_epoch)
        readings["ts"] = _times(readings["ts"]).to_numpy()
        facts.readings = readings
        alarms = store.read_frame("alarms", ["sensor_id", "kind", "message", "raised_at"],
                                  where=lambda t: t.c.cleared_at.is_(None) & (t.c.raised_at <= now_epoch))
        facts.open_alarms = alarms
    if "order_burst" in kinds:
        longest = max(r.param("window_minutes") for r in rules if r.kind == "order_burst")
        since = now_epoch - int(longest * 60)
        orders = store.read_frame("orders", ["event_type", "grid_code", "received_at", "lon", "lat"],
                                  where=lambda t: (t.c.received_at >= since) & (t.c.received_at <= now_epoch))
        orders["received_at"] = _times(orders["received_at"]).to_numpy()
        facts.recent_orders = orders
    if "indicator_state" in kinds and table_of is not None:
        for window in {r.param("window") for r in rules if r.kind == "indicator_state" and r.enabled}:
            facts.indicator_tables[window] = table_of(window).reset_index(drop=True)
    if "anomaly" in kinds and city is not None:
        for rule in rules:
            if rule.kind == "anomaly" and rule.enabled:
                key = (rule.param("series"), rule.param("level"))
                facts.anomalies[key] = last_hour_anomalies(city, *key, now=now)
    return facts


def last_hour_anomalies(city, series: str, level: str, now: pd.Timestamp) -> pd.DataFrame:
    """The early-warning rows of the last complete hour before ``now`` (remembered per hour while what the series
    reads is unchanged)."""
    from metrics.early_warning import order_anomalies, sensor_anomalies
    end = min(now, city.as_of).floor("h")
    # Keyed by the versions of what the series reads and kept while its frame is the same object, not by the city:
    # in live mode every generation (every few seconds, the stream's readings) is a new city, and the orders' hourly
    # counts were computed again for each (0.3 s an evaluation at the city scale, 40 % of the alerts thread).
    # The stream bumps the sensors' version with every batch too: only a sensor series reads them.
    read = "orders" if series == "orders" else "readings"
    reads = ("orders", "units") if series == "orders" else ("readings", "sensors", "units")
    frame = city.layers.get(read)
    data_versions = tuple((k, v) for k, v in getattr(city, "version_key", ()) if k in reads)
    key = (data_versions, series, level, end)
    with _anomaly_lock:
        kept = _anomaly_memo.get(key)
        if kept is not None and frame is not None and kept[0]() is frame:
            return kept[1]
    if series == "orders":
        rows = order_anomalies(city, level, end=end) if "orders" in city.layers else pd.DataFrame()
    else:
        rows = sensor_anomalies(city, series, level, end=end) if "readings" in city.layers else pd.DataFrame()
    last = rows[rows["ts"] == rows["ts"].max()] if len(rows) else rows
    if frame is not None:
        with _anomaly_lock:
            if len(_anomaly_memo) > 16:
                _anomaly_memo.clear()
            _anomaly_memo[key] = (weakref.ref(frame), last)  # the frame is not kept alive by this memo
    return last


# --- the runner -------------------------------------------------------------------------------------------------------

def evaluate(store: Store, now: pd.Timestamp | None = None, *, city=None, table_of=None, book: AlertBook | None = None,
             rules_file: Path = SAMPLE_RULES) -> list:
    """Evaluate every enabled rule at ``now`` and write the changes: evaluation states, new alerts, cleared and
    recurring conditions, alerts resolved by their rule. Returns the changes (metrics.alerting.Change)."""
    now = pd.Timestamp.now(tz=CITY_TIMEZONE) if now is None else pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize(CITY_TIMEZONE)
    book = book or AlertBook(store)
    with _evaluation_lock:  # one evaluation at a time per process: two would both fire the same alert
        seed_rules(book, rules_file, at=now)
        rules = current_rules(book)
        versions = {b["id"]: b["version"] for b in book.rule_bodies()}
        instances = {(row["rule_id"], row["place"]): Instance(row["rule_id"], row["place"], row["state"],
                                                              row["since"], row["alert_id"])
                     for row in book.instance_rows()}
        facts = gather_facts(store, rules, now, city, table_of)
        changes = evaluate_rules(rules, facts, instances, now)
        points = _unit_points(city) if city is not None else {}
        with store.engine.begin() as conn:
            for change in changes:
                inst, obs = change.instance, change.observation
                alert_id = inst.alert_id
                if change.event == "fire":
                    lon, lat = obs.lon, obs.lat
                    if (lon is None or lat is None) and obs.unit_code in points:
                        lon, lat = points[obs.unit_code]
                    body = {**change.rule.as_dict(), "version": versions.get(change.rule.id, 1)}
                    alert_id = book.fire(conn, rule=body, place=dict(
                        place=obs.place, sensor_id=obs.sensor_id, building_id=obs.building_id,
                        grid_code=obs.grid_code, unit_code=obs.unit_code, lon=lon, lat=lat, value=obs.value,
                        evidence=obs.evidence, evidence_zh=obs.evidence_zh), at=now)
                elif change.event in ("clearing", "recur") and alert_id:
                    book.condition_event(conn, alert_id, change.event, now, obs.evidence)
                elif change.event == "resolve" and alert_id:
                    book.rule_resolve(conn, alert_id, now,
                                      f"clear for {change.rule.keep_firing_minutes:g} min: {obs.evidence}")
                    alert_id = None
                if inst.state == "normal":
                    alert_id = None
                book.set_instance(conn, inst.rule_id, inst.place, inst.state, inst.since, alert_id)
    return changes


def _unit_points(city) -> dict:
    """A point inside each unit (for an alert about a unit: the place its work order is filed at)."""
    # Keyed on the units' version alone: the alerts' own version moves with every alert, the units' do not.
    key = ("alert_unit_points", getattr(city, "versions", {}).get("units"))
    memo = getattr(city, "memo", None)
    if memo is not None and key in memo:
        return memo[key]
    points = city.units.geometry.representative_point()
    out = {code: (float(p.x), float(p.y)) for code, p in zip(city.units.index, points) if p is not None}
    if memo is not None:
        memo[key] = out
    return out


# --- roll-up ----------------------------------------------------------------------------------------------------------

def roll_up(alerts: pd.DataFrame, city) -> pd.DataFrame:
    """Open alerts per unit at every level above their place (a grid cell's alert shows on its community, street,
    district and the city): ``code``, ``open``, ``critical``, ``unacknowledged``, ``worst`` (a severity)."""
    columns = ["code", "open", "critical", "unacknowledged", "worst"]
    if not len(alerts):
        return pd.DataFrame(columns=columns)
    rows = []
    for alert in alerts.itertuples():
        place = alert.unit_code if isinstance(alert.unit_code, str) else alert.grid_code
        if not isinstance(place, str) or place not in city.units.index:
            continue
        for code in city.lineage(place):
            rows.append((code, alert.severity, alert.status == "firing"))
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows, columns=["code", "severity", "unacknowledged"])
    frame["rank"] = frame["severity"].map(STATE_RANK)
    grouped = frame.groupby("code").agg(open=("severity", "size"),
                                        critical=("severity", lambda s: int((s == "critical").sum())),
                                        unacknowledged=("unacknowledged", "sum"), rank=("rank", "max"))
    by_rank = {STATE_RANK[s]: s for s in SEVERITIES}
    grouped["worst"] = grouped["rank"].map(by_rank)
    return grouped.drop(columns="rank").reset_index()[columns]


def severity_order(severities: pd.Series) -> np.ndarray:
    """Sort key: the most severe first."""
    return -severities.map(STATE_RANK).astype("float64").fillna(0).to_numpy()
