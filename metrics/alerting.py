"""Alert evaluation as a pure function: (rules, facts of the city, the previous state of each rule at each place,
now) → the changes. No clock is read and nothing is written here; :mod:`metrics.alert_runner` gathers the facts
from the store and applies the changes through :class:`layers.alerts.AlertBook`.

Each rule is evaluated per *place* (a sensor, a unit, a grid cell and event type): the place's **condition** holds
(it breaches) or not, and its evaluation state moves as in Grafana alerting::

    normal ──breach──▶ pending ──held for pending_minutes──▶ alerting  (an alert fires)
       ▲                  │ clear                              │ clear
       └──────────────────┘                                    ▼
       ◀──────clear for keep_firing_minutes────────────── recovering ──breach──▶ alerting (the same alert)

A zero pending period fires at once; a zero keep-firing time resolves as soon as the condition clears. A place with
no data for a rule (no fresh reading, no unit in the table) counts as clear, except for the ``sensor_silent`` rule
whose condition *is* the missing data. Hysteresis (``reading_threshold``) is applied with the previous state: a
place that is pending, alerting or recovering keeps breaching until the value is past the limit by the hysteresis.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from metrics.alert_rules import Rule
from layers.reference import EVENT_TYPES
from metrics.registry import INDICATORS
from metrics.spec import STATE_RANK, WINDOWS, WINDOWS_ZH

EVENT_NAMES = {code: (name, name_zh) for code, _category, name, name_zh, *_ in EVENT_TYPES}

EVAL_STATES = ("normal", "pending", "alerting", "recovering")
ACTIVE_STATES = frozenset({"pending", "alerting", "recovering"})


@dataclass(frozen=True)
class Observation:
    """A rule's condition at one place now: whether it breaches, the value judged and what shows it."""

    place: str
    breaching: bool
    value: float | None = None
    evidence: str = ""
    evidence_zh: str = ""  # the same in Chinese (the wall and the pages show the one of their language)
    sensor_id: str | None = None
    building_id: str | None = None
    grid_code: str | None = None
    unit_code: str | None = None   # the most specific unit the place lies in (the grid cell for a sensor)
    lon: float | None = None
    lat: float | None = None


@dataclass(frozen=True)
class Instance:
    """The evaluation state of one rule at one place (kept by the store between evaluations)."""

    rule_id: str
    place: str
    state: str = "normal"
    since: pd.Timestamp | None = None   # when it entered the state
    alert_id: str | None = None         # the alert it fired (while alerting or recovering)


@dataclass(frozen=True)
class Change:
    """One evaluation's outcome at one place: the new instance and what it means for alerts.

    ``event``: ``fire`` (a new alert), ``clearing`` (the condition cleared; the alert resolves after the
    keep-firing time), ``recur`` (it breaches again before that: the same alert stays), ``resolve`` (clear for the
    keep-firing time: the alert resolves by itself), or None (only the evaluation state moved, e.g. to pending)."""

    rule: Rule
    instance: Instance
    event: str | None
    observation: Observation


@dataclass
class Facts:
    """What the rules look at, gathered once per evaluation (every frame may be empty)."""

    now: pd.Timestamp
    sensors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["sensor_id", "kind", "grid_code", "building_id", "status", "last_seen_at", "lon", "lat"]))
    readings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["sensor_id", "ts", "value"]))
    """The newest reading of each sensor."""
    open_alarms: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["sensor_id", "kind", "message"]))
    recent_orders: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["event_type", "grid_code", "received_at", "lon", "lat"]))
    indicator_tables: dict = field(default_factory=dict)
    """window → indicator table (metrics.engine's rows: code, level, indicator, value, state)."""
    anomalies: dict = field(default_factory=dict)
    """series ('orders' or a sensor kind) → the last complete hour's anomaly rows (unit_code, ts, value, baseline,
    score, anomaly) at the level the rule asks for: keyed (series, level)."""


# --- conditions ---------------------------------------------------------------------------------------------------

def _sensor_observations(rows: pd.DataFrame, breaching, values, evidence) -> list[Observation]:
    """``evidence``: (English, Chinese) per row."""
    out = []
    for row, breach, value, (text, text_zh) in zip(rows.itertuples(), breaching, values, evidence):
        out.append(Observation(
            place=f"sensor:{row.sensor_id}", breaching=bool(breach),
            value=None if value is None or value != value else float(value), evidence=text, evidence_zh=text_zh,
            sensor_id=row.sensor_id, building_id=row.building_id if isinstance(row.building_id, str) else None,
            grid_code=row.grid_code, unit_code=row.grid_code, lon=float(row.lon), lat=float(row.lat)))
    return out


def _reading_threshold(rule: Rule, facts: Facts, active: set[str]) -> list[Observation]:
    sensors = facts.sensors[facts.sensors["kind"] == rule.param("sensor_kind")]
    fresh_after = facts.now - pd.Timedelta(minutes=rule.param("max_age_minutes"))
    readings = facts.readings[pd.to_datetime(facts.readings["ts"]) >= fresh_after] \
        if len(facts.readings) else facts.readings
    rows = sensors.merge(readings, on="sensor_id", how="inner")
    if not len(rows):
        return []
    values = rows["value"].to_numpy(dtype=float)
    was_active = np.array([f"sensor:{s}" in active for s in rows["sensor_id"]], dtype=bool)
    band = rule.param("hysteresis")
    if rule.param("above") is not None:
        limit = rule.param("above")
        breaching = np.where(was_active, values > limit - band, values >= limit)
        word = "≥"
    else:
        limit = rule.param("below")
        breaching = np.where(was_active, values < limit + band, values <= limit)
        word = "≤"
    evidence = [(f"{v:g} at {pd.Timestamp(ts):%m-%d %H:%M} (limit {word} {limit:g})",
                 f"{pd.Timestamp(ts):%m-%d %H:%M} 读数 {v:g}（限值 {word} {limit:g}）")
                for v, ts in zip(values, rows["ts"])]
    return _sensor_observations(rows, breaching, values, evidence)


def _sensor_silent(rule: Rule, facts: Facts, active: set[str]) -> list[Observation]:
    sensors = facts.sensors
    if rule.param("sensor_kind"):
        sensors = sensors[sensors["kind"] == rule.param("sensor_kind")]
    if not len(sensors):
        return []
    newest = sensors["sensor_id"].map(facts.readings.set_index("sensor_id")["ts"]) if len(facts.readings) \
        else pd.Series(pd.NaT, index=sensors.index)
    last_seen = pd.to_datetime(sensors["last_seen_at"], utc=True)
    newest = pd.to_datetime(newest, utc=True)
    seen = pd.concat([last_seen, newest], axis=1).max(axis=1)
    silent_for = (facts.now - seen).dt.total_seconds() / 60
    offline = sensors["status"].isin(["offline", "fault"]).to_numpy()
    breaching = offline | (silent_for.fillna(np.inf).to_numpy() >= rule.param("silent_minutes"))
    evidence = [(f"status {status}, last seen {when:%m-%d %H:%M}", f"状态 {status}，最后上报 {when:%m-%d %H:%M}")
                if when == when else (f"status {status}, never seen", f"状态 {status}，从未上报")
                for status, when in zip(sensors["status"], seen)]
    return _sensor_observations(sensors, breaching, silent_for.to_numpy(), evidence)


def _fire_alarm(rule: Rule, facts: Facts, active: set[str]) -> list[Observation]:
    smoke = facts.sensors[facts.sensors["kind"] == "smoke"]
    if not len(smoke):
        return []
    alarmed = set(facts.open_alarms.loc[facts.open_alarms["kind"] == "smoke", "sensor_id"]) \
        if len(facts.open_alarms) else set()
    newest = smoke["sensor_id"].map(facts.readings.set_index("sensor_id")["value"]) if len(facts.readings) \
        else pd.Series(np.nan, index=smoke.index)
    values = newest.to_numpy(dtype=float)
    breaching = smoke["sensor_id"].isin(alarmed).to_numpy() | (np.nan_to_num(values) >= 1)
    evidence = [("smoke detector reports fire", "烟感探测器报火警") if b else ("no fire reported", "无火警")
                for b in breaching]
    return [o for o in _sensor_observations(smoke, breaching, values, evidence)
            if o.breaching or o.place in active]


def _order_burst(rule: Rule, facts: Facts, active: set[str]) -> list[Observation]:
    orders = facts.recent_orders
    since = facts.now - pd.Timedelta(minutes=rule.param("window_minutes"))
    if len(orders):
        orders = orders[(pd.to_datetime(orders["received_at"]) >= since)
                        & (pd.to_datetime(orders["received_at"]) <= facts.now)]
    if rule.param("event_type_filter"):
        orders = orders[orders["event_type"] == rule.param("event_type_filter")]
    groups = orders.groupby(["grid_code", "event_type"]).agg(
        count=("event_type", "size"), lon=("lon", "mean"), lat=("lat", "mean")).reset_index() \
        if len(orders) else pd.DataFrame(columns=["grid_code", "event_type", "count", "lon", "lat"])
    out, seen = [], set()
    for row in groups.itertuples():
        place = f"grid:{row.grid_code}:{row.event_type}"
        seen.add(place)
        breach = int(row.count) >= rule.param("min_orders")
        if breach or place in active:
            name, name_zh = EVENT_NAMES.get(row.event_type, (row.event_type, row.event_type))
            minutes, least = f"{rule.param('window_minutes'):g}", rule.param("min_orders")
            out.append(Observation(place, breach, float(row.count),
                                   f"{int(row.count)} × {name} in {minutes} min (alert from {least})",
                                   f"{minutes}分钟内{int(row.count)}件{name_zh}（{least}件起报警）",
                                   grid_code=row.grid_code, unit_code=row.grid_code, lon=float(row.lon),
                                   lat=float(row.lat)))
    for place in active - seen:  # no such order any more in the window: clear
        if place.startswith("grid:"):
            _, grid, _event = place.split(":", 2)
            out.append(Observation(place, False, 0.0, "no order in the window", "时段内无诉求", grid_code=grid,
                                   unit_code=grid))
    return out


def _indicator_state(rule: Rule, facts: Facts, active: set[str]) -> list[Observation]:
    table = facts.indicator_tables.get(rule.param("window"))
    if table is None or not len(table):
        return []
    rows = table[(table["indicator"] == rule.param("indicator")) & (table["level"] == rule.param("level"))]
    floor = STATE_RANK[rule.param("at_least")]
    out = []
    for row in rows.itertuples(index=False):
        rank = STATE_RANK.get(row.state, 0)
        value = None if row.value != row.value else float(row.value)
        indicator = INDICATORS.get(rule.param("indicator"))
        name, name_zh = (indicator.name, indicator.name_zh) if indicator else (rule.param("indicator"),) * 2
        window, window_zh = WINDOWS.get(rule.param("window"), ""), WINDOWS_ZH.get(rule.param("window"), "")
        out.append(Observation(f"unit:{row.code}", rank >= floor, value,
                               f"{name}: {value:g} ({row.state}), {window.lower()}" if value is not None
                               else f"{name}: no data",
                               f"{name_zh}：{value:g}（{window_zh}）" if value is not None else f"{name_zh}：无数据",
                               unit_code=str(row.code)))
    return out


def _anomaly(rule: Rule, facts: Facts, active: set[str]) -> list[Observation]:
    rows = facts.anomalies.get((rule.param("series"), rule.param("level")))
    if rows is None or not len(rows):
        return []
    out = []
    for row in rows.itertuples(index=False):
        score = float(row.score) if row.score == row.score else None
        breach = score is not None and score > rule.param("min_score")
        if breach or f"unit:{row.unit_code}" in active:
            hour = f"{pd.Timestamp(row.ts):%m-%d %H:00}"
            out.append(Observation(
                f"unit:{row.unit_code}", breach, float(row.value),
                f"{row.value:g} in the hour from {hour}, usually {row.baseline:g} (score {score:+.1f})"
                if score is not None else "not judged",
                f"{hour}起一小时{row.value:g}，通常{row.baseline:g}（异常分数{score:+.1f}）"
                if score is not None else "未评判", unit_code=str(row.unit_code)))
    return out


CONDITIONS = {
    "reading_threshold": _reading_threshold,
    "sensor_silent": _sensor_silent,
    "fire_alarm": _fire_alarm,
    "order_burst": _order_burst,
    "indicator_state": _indicator_state,
    "anomaly": _anomaly,
}


def observe(rule: Rule, facts: Facts, active: set[str] = frozenset()) -> list[Observation]:
    """The rule's condition at every place it can judge now (``active``: the places where the rule is pending,
    alerting or recovering, for hysteresis and to clear places that dropped out)."""
    return CONDITIONS[rule.kind](rule, facts, set(active))


# --- the state machine --------------------------------------------------------------------------------------------

def step(rule: Rule, instance: Instance, breaching: bool, now: pd.Timestamp) -> tuple[Instance, str | None]:
    """The next evaluation state of one place, and the alert event it makes (see the module's diagram)."""
    pending = pd.Timedelta(minutes=rule.pending_minutes)
    keep = pd.Timedelta(minutes=rule.keep_firing_minutes)
    state, since = instance.state, instance.since
    if state == "normal":
        if not breaching:
            return instance, None
        if pending <= pd.Timedelta(0):
            return replace(instance, state="alerting", since=now), "fire"
        return replace(instance, state="pending", since=now), None
    if state == "pending":
        if not breaching:
            return replace(instance, state="normal", since=now, alert_id=None), None
        if now - since >= pending:
            return replace(instance, state="alerting", since=now), "fire"
        return instance, None
    if state == "alerting":
        if breaching:
            return instance, None
        if keep <= pd.Timedelta(0):
            return replace(instance, state="normal", since=now), "resolve"
        return replace(instance, state="recovering", since=now), "clearing"
    if state == "recovering":
        if breaching:
            return replace(instance, state="alerting", since=now), "recur"
        if now - since >= keep:
            return replace(instance, state="normal", since=now), "resolve"
        return instance, None
    raise ValueError(f"unknown evaluation state {state!r}; states: {', '.join(EVAL_STATES)}")


def evaluate_rules(rules, facts: Facts, instances: dict[tuple[str, str], Instance],
                   now: pd.Timestamp) -> list[Change]:
    """Every change of evaluation state (and alert event) of every enabled rule at every place, at ``now``.
    ``instances``: (rule id, place) → :class:`Instance`, the state left by the previous evaluation (a place not in
    it is normal). A place that was active and is no longer observed counts as clear. A disabled rule's active
    places clear (its alerts resolve after the keep-firing time)."""
    changes = []
    for rule in rules:
        mine = {place: inst for (rule_id, place), inst in instances.items() if rule_id == rule.id}
        active = {place for place, inst in mine.items() if inst.state in ACTIVE_STATES}
        observed = {o.place: o for o in observe(rule, facts, active)} if rule.enabled else {}
        for place in sorted(set(observed) | active):
            observation = observed.get(place) or Observation(place, False, None, "no data", "无数据")
            before = mine.get(place) or Instance(rule.id, place)
            after, event = step(rule, before, observation.breaching, now)
            if after != before or event:
                changes.append(Change(rule, after, event, observation))
    return changes
