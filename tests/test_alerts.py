"""Alerts: the lifecycle table (every allowed and refused transition), each rule kind with a frozen clock (pending,
firing, keep-firing, resolving, no flapping around a threshold), rules as data (errors naming file and line,
versions), and the loop through the store: fire → acknowledge → assign (a work order, linked both ways) → resolve
by itself; deduplication and the roll-up to the units above."""
from __future__ import annotations

import itertools

import pandas as pd
import pytest

from layers import alerts as lifecycle
from layers.alerts import AlertBook, AlertError, AlertRefused
from layers.specs import CITY_TIMEZONE
from layers.store import Store
from metrics.alert_rules import RuleError, load_rules, parse_rules, rule_from_dict
from metrics.alerting import Facts, Instance, evaluate_rules, step

T0 = pd.Timestamp("2026-11-20 10:00", tz=CITY_TIMEZONE)


def minutes(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=n)


# --- the lifecycle table ------------------------------------------------------------------------------------------

ALLOWED = {
    ("firing", "acknowledge"): "acknowledged",
    ("firing", "assign"): "assigned",
    ("firing", "resolve"): "resolved",
    ("acknowledged", "assign"): "assigned",
    ("acknowledged", "resolve"): "resolved",
    ("assigned", "resolve"): "resolved",
}
ACTIONS = ("acknowledge", "assign", "resolve")


@pytest.mark.parametrize("status, action", list(itertools.product(lifecycle.STATUSES, ACTIONS)))
def test_every_transition_is_allowed_or_refused_by_the_table(status, action):
    if (status, action) in ALLOWED:
        assert lifecycle.next_status(status, action) == ALLOWED[(status, action)]
    else:
        with pytest.raises(AlertRefused, match=f"cannot {action} an alert that is {status}; allowed here"):
            lifecycle.next_status(status, action)


def test_unknown_actions_and_statuses_are_refused_by_name():
    with pytest.raises(AlertRefused, match="unknown action 'escalate'"):
        lifecycle.next_status("firing", "escalate")
    with pytest.raises(AlertRefused, match="unknown status 'gone'"):
        lifecycle.next_status("gone", "resolve")
    assert lifecycle.allowed_actions("resolved") == []


# --- the evaluation state machine, rule by rule, with a frozen clock -----------------------------------------------

def rule(**fields):
    base = dict(id="r", title="R", kind="reading_threshold", severity="warning", sensor_kind="pm25", above=75.0,
                hysteresis=10.0, pending_minutes=10, keep_firing_minutes=30)
    base.update(fields)
    return rule_from_dict({k: v for k, v in base.items() if v is not None})


SENSORS = pd.DataFrame({"sensor_id": ["S1", "SM1"], "kind": ["pm25", "smoke"], "grid_code": ["G1", "G1"],
                        "building_id": [None, "B1"], "status": ["online", "online"],
                        "last_seen_at": [T0, T0], "lon": [114.0, 114.01], "lat": [22.5, 22.51]})


def facts_with(now, value=None, sensor="S1", **extra):
    readings = pd.DataFrame({"sensor_id": [sensor], "ts": [now], "value": [value]}) if value is not None else \
        pd.DataFrame(columns=["sensor_id", "ts", "value"])
    return Facts(now=now, sensors=SENSORS, readings=readings, **extra)


def run(the_rule, timeline, make_facts):
    """Evaluate ``the_rule`` at each (minute, input) of ``timeline``; the state and the events after each step."""
    instances, seen = {}, []
    for minute, given in timeline:
        now = minutes(minute)
        changes = evaluate_rules([the_rule], make_facts(now, given), instances, now)
        events = [c.event for c in changes if c.event]
        for change in changes:
            instances[(change.instance.rule_id, change.instance.place)] = change.instance
        states = sorted({i.state for i in instances.values()}) or ["normal"]
        seen.append((minute, states[0] if len(states) == 1 else states, events))
    return seen


def test_a_threshold_waits_for_its_pending_period_fires_keeps_firing_and_resolves():
    timeline = [(0, 80), (5, 82), (10, 85), (20, 70), (25, 60), (40, 60), (55, 60)]
    assert run(rule(), timeline, facts_with) == [
        (0, "pending", []),          # over 75: pending
        (5, "pending", []),          # not yet 10 minutes
        (10, "alerting", ["fire"]),  # held 10 minutes: fires
        (20, "alerting", []),        # 70 is under 75 but within the hysteresis (clears under 65)
        (25, "recovering", ["clearing"]),  # 60: clear; keep firing 30 minutes
        (40, "recovering", []),
        (55, "normal", ["resolve"]),  # clear for 30 minutes: resolves by itself
    ]


def test_a_spike_shorter_than_the_pending_period_never_fires():
    assert run(rule(), [(0, 90), (5, 60), (10, 90), (15, 60)], facts_with) == [
        (0, "pending", []), (5, "normal", []), (10, "pending", []), (15, "normal", [])]


def test_a_value_oscillating_around_its_threshold_does_not_flap():
    # 74 ↔ 77 around a limit of 75 with a hysteresis of 10: one alert, never cleared, never fired again.
    values = [77, 74, 77, 74, 77, 74, 77, 74, 77, 74]
    timeline = [(10 * i, v) for i, v in enumerate(values)]
    events = [e for _, _, es in run(rule(pending_minutes=0), timeline, facts_with) for e in es]
    assert events == ["fire"]


def test_breaching_again_while_recovering_keeps_the_same_alert():
    timeline = [(0, 80), (10, 50), (20, 80), (30, 50), (70, 50)]
    assert [es for _, _, es in run(rule(pending_minutes=0), timeline, facts_with)] == [
        ["fire"], ["clearing"], ["recur"], ["clearing"], ["resolve"]]


def test_a_below_threshold_and_a_stale_reading():
    low = rule(above=None, below=1.0, hysteresis=0.5, pending_minutes=0, keep_firing_minutes=0)
    assert [es for _, _, es in run(low, [(0, 0.8), (5, 1.2), (10, 1.6)], facts_with)] == [["fire"], [], ["resolve"]]

    def stale(now, value):  # the reading is from four hours ago: not judged, so clear
        return Facts(now=now, sensors=SENSORS, readings=pd.DataFrame(
            {"sensor_id": ["S1"], "ts": [now - pd.Timedelta(hours=4)], "value": [value]}))
    assert run(rule(pending_minutes=0), [(0, 99)], stale) == [(0, "normal", [])]


def test_a_fire_alarm_fires_at_once_and_resolves_after_keep_firing():
    fire = rule_from_dict(dict(id="fire", title="Fire", kind="fire_alarm", severity="critical",
                               keep_firing_minutes=10))

    def smoke(now, on):
        return facts_with(now, 1.0 if on else 0.0, sensor="SM1")
    assert run(fire, [(0, False), (1, True), (2, False), (8, False), (12, False)], smoke) == [
        (0, "normal", []), (1, "alerting", ["fire"]), (2, "recovering", ["clearing"]), (8, "recovering", []),
        (12, "normal", ["resolve"])]

    def open_alarm(now, on):  # an open smoke alarm in the alarms layer counts as well as a reading of 1
        return Facts(now=now, sensors=SENSORS, open_alarms=pd.DataFrame(
            {"sensor_id": ["SM1"] if on else [], "kind": ["smoke"] if on else [], "message": ["fire"] if on else []}))
    assert [es for _, _, es in run(fire, [(0, True)], open_alarm)] == [["fire"]]


def test_a_silent_sensor():
    silent = rule_from_dict(dict(id="silent", title="Silent", kind="sensor_silent", severity="watch",
                                 sensor_kind="pm25", silent_minutes=60, pending_minutes=0))

    def last_seen(now, minutes_ago):
        sensors = SENSORS.assign(last_seen_at=now - pd.Timedelta(minutes=minutes_ago))
        return Facts(now=now, sensors=sensors)
    assert [es for _, _, es in run(silent, [(0, 30), (10, 90), (20, 5)], last_seen)] == [[], ["fire"], ["resolve"]]


def test_a_burst_of_same_type_orders_in_one_grid_cell():
    burst = rule_from_dict(dict(id="burst", title="Burst", kind="order_burst", severity="warning", min_orders=3,
                                window_minutes=60, keep_firing_minutes=0))

    def orders(now, count):
        times = [now - pd.Timedelta(minutes=5 * i) for i in range(count)]
        return Facts(now=now, recent_orders=pd.DataFrame({
            "event_type": ["garbage_overflow"] * count, "grid_code": ["G1"] * count, "received_at": times,
            "lon": [114.0] * count, "lat": [22.5] * count}))
    result = run(burst, [(0, 2), (5, 3), (10, 0)], orders)
    assert [es for _, _, es in result] == [[], ["fire"], ["resolve"]]


def test_an_indicator_state_at_a_unit_and_an_anomaly():
    indicator = rule_from_dict(dict(id="ind", title="Ind", kind="indicator_state", severity="warning",
                                    indicator="overdue_orders", at_least="warning", level="district"))

    def table(now, state):
        return Facts(now=now, indicator_tables={"7d": pd.DataFrame({
            "code": ["D1", "D2"], "level": ["district"] * 2, "indicator": ["overdue_orders"] * 2,
            "value": [40.0, 1.0], "state": [state, "good"]})})
    assert [es for _, _, es in run(indicator, [(0, "watch"), (5, "critical"), (10, "good")], table)] == [
        [], ["fire"], ["resolve"]]

    anomaly = rule_from_dict(dict(id="ano", title="Ano", kind="anomaly", severity="watch", series="orders",
                                  min_score=4.0))

    def scored(now, score):
        return Facts(now=now, anomalies={("orders", "district"): pd.DataFrame({
            "unit_code": ["D1"], "ts": [now.floor("h")], "value": [30.0], "baseline": [10.0], "score": [score],
            "anomaly": [abs(score) > 4]})})
    # Upwards only: a quiet hour (score −6) is not an alert.
    assert [es for _, _, es in run(anomaly, [(0, -6.0), (5, 6.0), (10, 1.0)], scored)] == [[], ["fire"], ["resolve"]]


def test_a_disabled_rule_clears_its_places():
    firing = {("r", "sensor:S1"): Instance("r", "sensor:S1", "alerting", T0, "AL000001")}
    changes = evaluate_rules([rule(enabled=False, keep_firing_minutes=0)], facts_with(T0, 99), firing, T0)
    assert [(c.instance.state, c.event) for c in changes] == [("normal", "resolve")]


def test_step_refuses_an_unknown_state():
    with pytest.raises(ValueError, match="unknown evaluation state"):
        step(rule(), Instance("r", "p", "asleep"), True, T0)


# --- rules as data ------------------------------------------------------------------------------------------------

GOOD = """
[[rule]]
id = "a"
title = "A"
kind = "fire_alarm"
severity = "critical"
"""


@pytest.mark.parametrize("text, message", [
    (GOOD + '\n[[rule]]\nid = "b"\ntitle = "B"\nkind = "fire_alarm"\nseverity = "loud"\n',
     r"rules.toml:8: rule 'b': unknown severity 'loud'; severities: watch, warning, critical"),
    (GOOD + '\n[[rule]]\nid = "a"\ntitle = "A2"\nkind = "fire_alarm"\nseverity = "watch"\n',
     r"rules.toml:8: rule 'a': the id is used already at line 2"),
    ('[[rule]]\nid = "c"\ntitle = "C"\nkind = "reading_threshold"\nseverity = "watch"\nsensor_kind = "pm25"\n',
     r"rules.toml:1: rule 'c': a reading_threshold rule needs exactly one of above or below"),
    ('[[rule]]\nid = "c"\ntitle = "C"\nkind = "reading_threshold"\nseverity = "watch"\nsensor_kind = "pm25"\n'
     'above = "high"\n', r"rules.toml:1: rule 'c': above must be a number, got 'high'"),
    ('[[rule]]\nid = "c"\ntitle = "C"\nkind = "reading_threshold"\nseverity = "watch"\nsensor_kind = "radon"\n'
     'above = 1\n', r"rules.toml:1: rule 'c': unknown sensor_kind 'radon'"),
    ('[[rule]]\nid = "d"\ntitle = "D"\nkind = "meteor"\nseverity = "watch"\n', r"rules.toml:1: rule 'd': unknown kind"),
    ('[[rule]]\nid = "d"\ntitle = "D"\nkind = "fire_alarm"\nseverity = "watch"\npending_minutes = -5\n',
     r"rules.toml:1: rule 'd': pending_minutes cannot be negative"),
    ('[[rule]]\nid = "d"\ntitle = "D"\nkind = "fire_alarm"\nseverity = "watch"\ncolour = "red"\n',
     r"rules.toml:1: rule 'd': unknown field 'colour' for a fire_alarm rule"),
    ('[[rule]]\ntitle = "E"\nkind = "fire_alarm"\nseverity = "watch"\n', r"rules.toml:1: missing id"),
    ('[[rule]\nid = 1', r"rules.toml: not valid TOML: .*line 1"),
])
def test_a_bad_rule_is_refused_naming_file_line_and_field(text, message):
    with pytest.raises(RuleError, match=message):
        parse_rules(text, "rules.toml", known={"sensor_kinds": {"pm25", "smoke"}})


def test_the_shipped_rules_load_and_cover_every_kind():
    rules = load_rules()
    assert {r.kind for r in rules} == {"reading_threshold", "indicator_state", "sensor_silent", "anomaly",
                                       "fire_alarm", "order_burst"}


# --- through the store: the loop, deduplication, versions, roll-up --------------------------------------------------

@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    from sample_data.__main__ import build
    path = tmp_path_factory.mktemp("alerts") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False)
    return f"sqlite:///{path}"


def write_reading(store: Store, sensor_id: str, at: pd.Timestamp, value: float) -> None:
    """What the ingest writes: one row of the readings layer."""
    from sqlalchemy import insert
    with store.engine.begin() as conn:
        conn.execute(insert(store.table("readings")), [{"sensor_id": sensor_id, "ts": int(at.timestamp()),
                                                        "value": value}])


def test_the_loop_fire_acknowledge_assign_and_resolve_by_itself(city_url):
    from layers.city import load_city
    from layers.workorders import WorkOrders
    from metrics.alert_runner import evaluate, roll_up
    store = Store(city_url)
    city = load_city(store)
    gauge = city["sensors"][city["sensors"]["kind"] == "water_level"].iloc[0]
    now = pd.Timestamp.now(tz=CITY_TIMEZONE).floor("min")
    book = AlertBook(store)

    write_reading(store, gauge.sensor_id, now, 3.1)  # over 2.5: the shipped rule fires at once (critical)
    evaluate(store, now, city=city, book=book)
    evaluate(store, now + pd.Timedelta(minutes=1), city=city, book=book)  # still over: the same alert
    open_alerts = book.frame(lifecycle.OPEN_STATUSES)
    mine = open_alerts[open_alerts["place"] == f"sensor:{gauge.sensor_id}"]
    assert len(mine) == 1 and mine.iloc[0]["severity"] == "critical" and mine.iloc[0]["status"] == "firing"
    alert_id = mine.iloc[0]["alert_id"]

    # Rolled up: the gauge's grid cell, community, street, district and the city all show it.
    rolled = roll_up(open_alerts, city).set_index("code")
    for code in city.lineage(gauge.grid_code):
        assert rolled.at[code, "critical"] >= 1

    alert = book.acknowledge(alert_id, actor="operator 7", note="seen on the wall", at=now + pd.Timedelta(minutes=2))
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", "operator 7")
    with pytest.raises(AlertRefused, match="cannot acknowledge an alert that is acknowledged"):
        book.acknowledge(alert_id, actor="operator 8")
    with pytest.raises(AlertError, match="department: unknown department 'Nobody'"):
        book.assign(alert_id, department="Nobody", actor="operator 7")
    orders = WorkOrders(store)
    department = orders.responsibility_list().rule("waterlogging").department
    alert = book.assign(alert_id, department=department, actor="operator 7", at=now + pd.Timedelta(minutes=3))
    assert alert.status == "assigned" and alert.order_id
    order = orders.get(alert.order_id)
    assert (order.status, order.department, order.channel) == ("dispatched", department, "iot_alarm")
    assert alert_id in order.description and book.for_order(order.order_id).alert_id == alert_id
    assert order.received_at == now + pd.Timedelta(minutes=3)  # its clocks run from the assignment

    write_reading(store, gauge.sensor_id, now + pd.Timedelta(minutes=5), 2.4)  # within the hysteresis: still on
    evaluate(store, now + pd.Timedelta(minutes=5), city=city, book=book)
    assert book.get(alert_id).condition == "active"
    write_reading(store, gauge.sensor_id, now + pd.Timedelta(minutes=6), 1.0)  # clear: keep firing 30 minutes
    evaluate(store, now + pd.Timedelta(minutes=6), city=city, book=book)
    assert (book.get(alert_id).status, book.get(alert_id).condition) == ("assigned", "clearing")
    evaluate(store, now + pd.Timedelta(minutes=36), city=city, book=book)
    resolved = book.get(alert_id)
    assert (resolved.status, resolved.resolved_by, resolved.condition) == ("resolved", "rule", "clear")
    assert [e.action for e in book.timeline(alert_id)] == ["fire", "acknowledge", "assign", "clearing", "resolve"]
    with pytest.raises(AlertRefused, match="a resolved alert is final"):
        book.resolve(alert_id, actor="operator 7", note="done")


def test_resolving_by_hand_needs_a_note_and_a_new_breach_is_a_new_alert(city_url):
    from layers.city import load_city
    from metrics.alert_runner import evaluate
    store = Store(city_url)
    city = load_city(store)
    gauge = city["sensors"][city["sensors"]["kind"] == "water_level"].iloc[1]
    book = AlertBook(store)
    now = pd.Timestamp.now(tz=CITY_TIMEZONE).floor("min") + pd.Timedelta(hours=2)
    place = f"sensor:{gauge.sensor_id}"
    write_reading(store, gauge.sensor_id, now, 3.0)
    evaluate(store, now, city=city, book=book)
    alert = book.frame(lifecycle.OPEN_STATUSES).query("place == @place").iloc[0]
    with pytest.raises(AlertError, match="note: required"):
        book.resolve(alert.alert_id, actor="operator", note=" ")
    book.resolve(alert.alert_id, actor="operator", note="gauge fouled by debris; crew checked")
    # Still breaching: no second alert while the rule stays alerting at that place.
    evaluate(store, now + pd.Timedelta(minutes=1), city=city, book=book)
    assert book.frame(lifecycle.OPEN_STATUSES).query("place == @place").empty
    write_reading(store, gauge.sensor_id, now + pd.Timedelta(minutes=2), 0.5)
    evaluate(store, now + pd.Timedelta(minutes=2), city=city, book=book)
    evaluate(store, now + pd.Timedelta(minutes=40), city=city, book=book)  # normal again
    write_reading(store, gauge.sensor_id, now + pd.Timedelta(minutes=41), 3.2)
    evaluate(store, now + pd.Timedelta(minutes=41), city=city, book=book)
    again = book.frame(lifecycle.OPEN_STATUSES).query("place == @place")
    assert len(again) == 1 and again.iloc[0]["alert_id"] != alert.alert_id


def test_rules_are_seeded_from_the_file_and_every_change_is_a_version(city_url, tmp_path):
    import shutil
    from metrics.alert_runner import current_rules, save_rule, seed_rules, set_rule_enabled
    path = tmp_path / "copy.sqlite"
    shutil.copy(city_url.removeprefix("sqlite:///"), path)
    book = AlertBook(Store(f"sqlite:///{path}"))
    if not book.has_rules():
        assert seed_rules(book) == len(load_rules())
    assert seed_rules(book) == 0  # only once
    body = next(b for b in book.rule_bodies() if b["id"] == "pm25_episode")
    changed = {k: v for k, v in body.items() if k not in ("version", "changed_at", "changed_by", "note")}
    changed["above"] = 100.0
    assert save_rule(book, changed, changed_by="admin", note="raise for the dry season") == body["version"] + 1
    assert set_rule_enabled(book, "pm25_episode", False, changed_by="admin", note="sensor campaign") == \
        body["version"] + 2
    current = {r.id: r for r in current_rules(book)}
    assert current["pm25_episode"].param("above") == 100.0 and not current["pm25_episode"].enabled
    history = book.rule_history("pm25_episode")
    assert [h["changed_by"] for h in history][-2:] == ["admin", "admin"]
    assert history[0]["body"]["above"] == 75.0  # the first version is kept as it was
    with pytest.raises(RuleError, match="unknown severity"):
        save_rule(book, {**changed, "severity": "apocalyptic"}, changed_by="admin", note="")


# --- the wall's cue and ticker (render functions, without a browser) ------------------------------------------------

def _alerts_frame(rows):
    columns = ["alert_id", "severity", "status", "title", "title_zh", "unit_code", "grid_code", "evidence",
               "fired_at"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(evidence_zh=frame["evidence"] + "（中文）")


@pytest.mark.parametrize("rows, on", [
    ([], False),
    ([("AL1", "critical", "acknowledged", "Fire", "火警", "G1", "G1", "smoke", T0)], False),
    ([("AL1", "warning", "firing", "PM2.5", "PM2.5", "G1", "G1", "80", T0)], False),
    ([("AL1", "watch", "firing", "Noise", "噪声", "G1", "G1", "72", T0),
      ("AL2", "critical", "firing", "Fire", "火警", "G1", "G1", "smoke", T0)], True),
])
def test_the_cue_is_on_only_while_a_critical_alert_is_unacknowledged(rows, on):
    from dashboard.components.wall_alerts import alert_cue, alert_ticker_items
    frame = _alerts_frame(rows).astype({"severity": "str", "status": "str"})
    children, class_name = alert_cue(frame, {"G1": "Grid 1"}, "en")
    assert (class_name == "wall-alert-cue on") == on and bool(children) == on
    items = alert_ticker_items(frame, {"G1": "Grid 1"}, "zh")
    assert len(items) == len(rows)
    if on:
        assert "AL2" in str(children) and "Grid 1" in str(children)
        # The critical one first, in the wall's language (title and evidence).
        assert items[0].critical and "火警" in items[0].text and "smoke（中文）" in items[0].text


def test_alert_tables_of_an_earlier_release_get_the_columns_added_since(tmp_path):
    from sqlalchemy import text
    store = Store(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE alerts (alert_id VARCHAR(32) PRIMARY KEY, rule_id VARCHAR(64) NOT NULL, "
                          "evidence TEXT NOT NULL)"))
    book = AlertBook(store)
    assert book.frame().empty and "evidence_zh" in book.frame().columns


@pytest.mark.parametrize("text, seconds", [(None, 15), ("0", 0), ("2.5", 2.5)])
def test_the_evaluation_interval_comes_from_the_environment(text, seconds):
    from dashboard import services
    assert services.alert_seconds({} if text is None else {"CITYTWIN_ALERT_SECONDS": text}) == seconds


@pytest.mark.parametrize("text", ["often", "-1", "nan", "inf"])
def test_a_bad_evaluation_interval_is_refused_with_its_name(text):
    from dashboard import services
    with pytest.raises(SystemExit, match="CITYTWIN_ALERT_SECONDS"):
        services.alert_seconds({"CITYTWIN_ALERT_SECONDS": text})


def test_the_background_evaluation_runs_until_stopped_and_survives_a_failure(monkeypatch):
    import threading
    import time as time_module

    import app
    calls = []
    stop = threading.Event()

    class FailingOnce:
        def evaluate_alerts(self):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database away")
            if len(calls) == 3:
                stop.set()
    # A test elsewhere replaces time.sleep: this loop must not depend on it.
    monkeypatch.setattr(time_module, "sleep", lambda _s: (_ for _ in ()).throw(AssertionError("time.sleep used")))
    app.evaluate_alerts_every(FailingOnce(), 0.01, stop)
    assert len(calls) == 3


# --- the screens read alerts once per generation, and keep the last read while the store is away ---------------------

def test_the_map_and_the_district_view_read_alerts_once_per_generation_and_keep_them_while_the_store_is_away(
        tmp_path, monkeypatch):
    """The map's alerts layer and the district view's "open alerts here" used to read the store at every draw, so a
    database outage made the map page answer 503. Now an alert's change makes a new generation (nothing of the city
    read or computed again), the generation reads its alerts once, and while the store does not answer the screens
    draw the last alerts read."""
    import re

    from sqlalchemy import event

    from dashboard.components.wall_alerts import unit_early_warning
    from dashboard.maps.registry import MAP_LAYERS, MapView
    from dashboard.services import Services
    from dashboard.settings import Settings
    from layers import store_health
    from layers.store_health import StoreUnavailable
    from sample_data.__main__ import build

    store = build("test", f"sqlite:///{tmp_path / 'city.sqlite'}", progress=False)
    service = Services(store, settings=Settings(version_check_seconds=0))
    city = service.city()
    service.table("7d")
    before = service.generation()
    gauge = city["sensors"][city["sensors"]["kind"] == "water_level"].iloc[0]
    district = city.hierarchy.at[gauge.grid_code, "district"]
    now = pd.Timestamp.now(tz=CITY_TIMEZONE).floor("min")
    write_reading(store, gauge.sensor_id, now, 3.4)
    service.evaluate_alerts(now)
    fired = service.alerts().frame(lifecycle.OPEN_STATUSES).query("place == @place",
                                                                  local_dict={"place": f"sensor:{gauge.sensor_id}"})
    assert len(fired) == 1
    alert_id = fired.iloc[0]["alert_id"]

    after = service.generation()
    assert after.key != before.key  # the alerts' version is in the key: every screen following the city redraws
    assert after.city.layers is city.layers and after.tables["7d"] is before.tables["7d"]  # nothing read again

    reads = []

    def count(_conn, _cursor, statement, *_args):
        if re.search(r'FROM "?alerts"?(\s|$)', statement):
            reads.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)

    def draw():
        view = MapView(service, service.unit_view(district, "on_time_rate", "7d"), "on_time_rate", "7d")
        points = [p for layer in MAP_LAYERS["alerts"].build(view) for p in layer["data"]]
        here = unit_early_warning(service, district, "district", "en")
        return {p["alert_id"]: p["tip_value"] for p in points}, str(here)

    for _ in range(3):
        points, here = draw()
        assert alert_id in points and points[alert_id].startswith("firing") and "1 critical" in here
    assert len(reads) == 1, reads  # three draws, one read
    # another district's map does not pin it (each alert's district is found once per generation, not per draw)
    elsewhere = next(code for code in service.directory().of_level("district").index if code != district)
    view = MapView(service, service.unit_view(elsewhere, "on_time_rate", "7d"), "on_time_rate", "7d")
    assert alert_id not in {p["alert_id"] for layer in MAP_LAYERS["alerts"].build(view) for p in layer["data"]}

    mark = service.read_alerts("mark")  # what the alerts page and the wall's cue read by the second
    service.alerts().acknowledge(alert_id, actor="operator 7")  # a change: a new generation, not yet drawn
    newer = service.generation()
    assert newer.key != after.key and "open_alerts" not in newer.memo
    # The store stops answering (the circuit is open; no probe gets through during the test).
    monkeypatch.setattr(store_health, "PROBE_SECONDS", 3600.0)
    store.health.failed("stopped by the test")
    with pytest.raises(StoreUnavailable):
        store.layer_versions()
    points, here = draw()  # the map and the district view draw the last alerts read, not a 503
    assert points[alert_id].startswith("firing") and "1 critical" in here
    assert service.read_alerts("mark") == mark  # the last read, not the acknowledgement it could not see
    assert "open_alerts" not in service.generation().memo  # an old read is not taken for this generation's

    store.health.succeeded()  # the store answers again: the generation reads its own alerts
    points, _ = draw()
    assert points[alert_id].startswith("acknowledged")


def test_the_building_card_shows_the_alerts_of_the_building_and_its_sensors_linked_to_the_alerts_page(tmp_path):
    from dashboard.components.building_card import building_card
    from dashboard.services import Services
    from dashboard.settings import Settings
    from sample_data.__main__ import build
    from sample_data.simulate import Simulator

    store = build("test", f"sqlite:///{tmp_path / 'city.sqlite'}", progress=False)
    service = Services(store, settings=Settings(version_check_seconds=0))
    now = pd.Timestamp.now(tz=CITY_TIMEZONE).floor("s")
    simulator = Simulator(store, now=now.timestamp(), rate=50)
    fire = simulator.start_incident("fire")
    simulator.step(now.timestamp() + 2)
    service.evaluate_alerts(now + pd.Timedelta(seconds=2))
    card = service.building_card(fire.place)
    assert card is not None

    def rows(lang):
        drawn = building_card(card, "/", lang, alerts=service.building_alerts(fire.place, card.sensors["sensor_id"]))
        found = []

        def walk(node):
            props = node.to_plotly_json()["props"] if hasattr(node, "to_plotly_json") else {}
            if "card-alert" in str(props.get("className", "")).split():
                severity, alert, status, _fired = node.children
                link = alert.children[0]
                found.append((props["data-alert"], severity.className, link.href, alert.children[2].children,
                              status.children))
            children = props.get("children")
            for child in children if isinstance(children, list) else [children]:
                if hasattr(child, "to_plotly_json"):
                    walk(child)
        walk(drawn)
        return found

    [(alert_id, severity, href, title, status)] = rows("en")
    assert severity == "kpi-state state-critical" and status == "firing" and title == "Fire alarm in a building"
    assert href == f"/alerts?status=all&alert={alert_id}"
    [(_, _, href_zh, title_zh, status_zh)] = rows("zh")
    assert (href_zh, title_zh, status_zh) == (f"/alerts?status=all&alert={alert_id}&lang=zh", "建筑火灾报警", "告警中")

    service.alerts().acknowledge(alert_id, actor="operator 7")  # a new generation: the card reads it again
    [(_, _, _, _, status)] = rows("en")
    assert status == "acknowledged"
    other = service.city()["buildings"].query("building_id != @b", local_dict={"b": fire.place}).iloc[0]
    assert service.building_alerts(other.building_id).empty  # another building has none


# --- the shipped noise rule on a quiet night -----------------------------------------------------------------------

NIGHT = pd.Timestamp("2026-11-20 22:00", tz=CITY_TIMEZONE)


def night_of(hourly_means: list[float], every_minutes: int = 5) -> list[tuple]:
    """The shipped noise rule evaluated every ``every_minutes`` from 22:00 with a frozen clock, over a noise monitor
    reporting ``hourly_means`` (one a hour from 22:00: what the demo city's data hold); its events with their times."""
    shipped = next(r for r in load_rules() if r.id == "noise_over_limit")
    sensors = pd.DataFrame({"sensor_id": ["N1"], "kind": ["noise"], "grid_code": ["G1"], "building_id": [None],
                            "status": ["online"], "last_seen_at": [NIGHT], "lon": [114.0], "lat": [22.5]})
    instances, events = {}, []
    for step in range(len(hourly_means) * 60 // every_minutes):
        now = NIGHT + pd.Timedelta(minutes=step * every_minutes)
        hour = step * every_minutes // 60
        readings = pd.DataFrame({"sensor_id": ["N1"], "ts": [NIGHT + pd.Timedelta(hours=hour)],
                                 "value": [hourly_means[hour]]})
        for change in evaluate_rules([shipped], Facts(now=now, sensors=sensors, readings=readings), instances, now):
            instances[(change.instance.rule_id, change.instance.place)] = change.instance
            if change.event:
                events.append((f"{now:%H:%M}", change.event))
    return events


def test_a_quiet_night_does_not_fire_the_shipped_noise_rule():
    """The demo city's noise data are hourly means; at its loudest sites (a site factor of 1.25 on a night level of
    52 dB(A)) the night's hours wander around 65 dB(A) with single hours just over 70. With the earlier 30-minute
    pending period each such hour fired a "noise over limit" alert (each lasting one reading): a few every night.
    An hour over the limit between quiet ones is not an episode: the rule now waits 90 minutes (two successive
    hourly means over 70, or 90 minutes of the live stream's readings)."""
    assert night_of([66, 71, 65, 70.5, 64, 72, 66, 71.5]) == []
    # A real episode at night (three loud hours): it fires once, then resolves by itself 30 minutes after the level
    # is back under 67 (70 less the hysteresis of 3).
    assert night_of([66, 72, 73, 71, 64, 60, 60]) == [
        ("00:30", "fire"), ("02:00", "clearing"), ("02:30", "resolve")]
