"""The live sample city: rates, daily shapes, the incidents, and the two ways out (in-process writer, MQTT payloads
the ingest accepts)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy

from layers.ingest import SensorDirectory, arrived_since, decode_message
from layers.store import Store
from sample_data.__main__ import build
from sample_data.simulate import HOTSPOT_ORDERS, Simulator

# A fixed instant: 2026-12-01 00:00 in the city (UTC+8), inside the ingest's sanity window for any day after.
T0 = int(pd.Timestamp("2026-12-01 00:00", tz="Asia/Shanghai").timestamp())


@pytest.fixture(scope="module")
def city_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("city") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False, end=pd.Timestamp(T0, unit="s", tz="Asia/Shanghai"))
    return path


@pytest.fixture
def store(city_file, tmp_path) -> Store:
    path = tmp_path / "city.sqlite"
    shutil.copy(city_file, path)
    return Store(f"sqlite:///{path}")


def test_readings_come_at_the_rate_asked_each_sensor_in_its_turn(store):
    simulator = Simulator(store, now=T0, rate=40)
    sensors = len(simulator.measuring)
    counts = pd.Series(0, index=simulator.measuring["sensor_id"])
    total = 0
    for minute in range(1, 11):
        result = simulator.step(T0 + minute * 60)
        total += result.readings
        counts = counts.add(pd.Series([r[0] for r in result.batch.readings]).value_counts(), fill_value=0)
    assert total == pytest.approx(40 * 600, rel=0.01)
    # Every sensor reports every sensors/rate seconds: 600 s / interval readings each, give or take one.
    per_sensor = 600 / (sensors / 40)
    assert counts.min() >= per_sensor - 1 and counts.max() <= per_sensor + 1
    stored = arrived_since(store, "readings", 0)[0]
    assert len(stored) == total  # written in-process through the ingest's writer, each once, with its number
    seen = store.read_frame("sensors", ["sensor_id", "last_seen_at", "status"]).set_index("sensor_id")
    assert (seen.loc[counts.index, "last_seen_at"] >= T0 + 540).all()


def test_values_follow_the_day(store):
    simulator = Simulator(store, now=T0, rate=40)
    rows = np.arange(len(simulator.measuring))
    kinds = simulator.kinds

    def mean_at(hour: float, kind: str) -> float:
        values = simulator.values(rows, np.full(len(rows), T0 + int(hour * 3600)))
        return float(values[kinds == kind].mean())

    assert mean_at(8.5, "traffic_flow") > 3 * mean_at(3, "traffic_flow")    # the morning rush
    assert mean_at(18.5, "traffic_flow") > 3 * mean_at(3, "traffic_flow")   # the evening rush
    assert mean_at(8.5, "pm25") > mean_at(3, "pm25") + 5
    assert mean_at(12, "noise") > mean_at(3, "noise") + 5                   # day louder than night
    assert 0.5 < mean_at(6, "water_level") < 1.5


def test_pm25_episode_raises_a_district_over_the_limit_and_its_alarms(store):
    simulator = Simulator(store, now=T0, rate=40)
    incident = simulator.start_incident("pm25_episode")
    for minute in range(1, 6):
        simulator.step(T0 + minute * 60)
    readings = arrived_since(store, "readings", 0)[0]
    sensors = store.read_frame("sensors", ["sensor_id", "kind", "grid_code"]).set_index("sensor_id")
    readings = readings.join(sensors, on="sensor_id")
    pm25 = readings[readings["kind"] == "pm25"]
    inside = pm25["grid_code"].str[:6] == incident.place
    assert inside.any() and (~inside).any()
    assert pm25.loc[inside, "value"].mean() > 75 > pm25.loc[~inside, "value"].mean()
    alarms = arrived_since(store, "alarms", 0)[0].join(sensors[["grid_code"]], on="sensor_id")
    assert len(alarms) and (alarms["grid_code"].str[:6] == incident.place).all()


def test_fire_in_a_high_rise_above_100_m_raises_a_critical_smoke_alarm_then_clears(store):
    simulator = Simulator(store, now=T0, rate=40)
    incident = simulator.start_incident("fire", duration=600)
    simulator.step(T0 + 60)
    alarms = arrived_since(store, "alarms", 0)[0]
    fire = alarms[alarms["kind"] == "smoke"]
    assert len(fire) == 1 and fire["severity"].iloc[0] == "critical" and pd.isna(fire["cleared_at"].iloc[0])
    detector = store.read_frame("sensors", ["sensor_id", "building_id"]).set_index("sensor_id") \
        .loc[fire["sensor_id"].iloc[0], "building_id"]
    building = store.read_frame("buildings", ["building_id", "height_m", "high_rise_100m"]) \
        .set_index("building_id").loc[detector]
    assert detector == incident.place and bool(building["high_rise_100m"]) and building["height_m"] > 100
    simulator.step(T0 + 700)  # the incident is over: the alarm is cleared (the same alarm, not a new one)
    alarms = arrived_since(store, "alarms", 0)[0]
    fire = alarms[alarms["kind"] == "smoke"]
    assert len(fire) == 1 and fire["cleared_at"].notna().all()


def test_storm_raises_the_water_gauges_of_a_district(store):
    simulator = Simulator(store, now=T0, rate=40)
    incident = simulator.start_incident("storm")
    for minute in range(1, 41):
        simulator.step(T0 + minute * 60)
    readings = arrived_since(store, "readings", 0)[0]
    sensors = store.read_frame("sensors", ["sensor_id", "kind", "grid_code"]).set_index("sensor_id")
    readings = readings.join(sensors, on="sensor_id")
    water = readings[(readings["kind"] == "water_level") & (readings["grid_code"].str[:6] == incident.place)]
    early = water[water["ts"] < pd.Timestamp(T0 + 300, unit="s", tz="UTC")]["value"].mean()
    late = water[water["ts"] >= pd.Timestamp(T0 + 1900, unit="s", tz="UTC")]["value"].mean()
    assert late - early > 1.8  # risen by ~2.2 m after half an hour
    alarms = arrived_since(store, "alarms", 0)[0]
    assert set(alarms["kind"]) >= {"water_level"}


def test_hotspot_files_a_burst_of_same_type_orders_in_one_cell(store):
    before = store.count("orders")
    simulator = Simulator(store, now=T0, rate=40)
    incident = simulator.start_incident("hotspot")
    result = simulator.step(T0 + 60)
    assert len(result.orders) == HOTSPOT_ORDERS
    orders = store.read_frame("orders", ["order_id", "grid_code", "event_type", "received_at"],
                              where=lambda t: t.c.order_id.in_(result.orders))
    assert store.count("orders") == before + HOTSPOT_ORDERS
    assert set(orders["grid_code"]) == {incident.place}
    assert set(orders["event_type"]) == {incident.detail["event_type"]}
    assert simulator.step(T0 + 120).orders == []  # one burst, not one a step


def test_over_mqtt_it_publishes_what_the_ingest_accepts(store):
    published = []
    simulator = Simulator(store, now=T0, rate=40, publish=lambda topic, payload: published.append((topic, payload)))
    simulator.start_incident("fire")
    simulator.step(T0 + 120)
    assert store.count("readings") == len(store.read_frame("readings", ["sensor_id"]))  # nothing written in-process
    with store.engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT COUNT(*) FROM readings WHERE seq IS NOT NULL")).scalar() == 0
    directory = SensorDirectory(store)
    topics = {topic.rsplit("/", 1)[1] for topic, _ in published}
    assert topics == {"reading", "status", "alarm"}
    for topic, payload in published:
        batch = decode_message(topic, payload.encode(), directory, time.time())
        assert not batch.dead_letters, (topic, payload, batch.dead_letters)


def test_unknown_incidents_and_places_are_refused_by_name(store):
    simulator = Simulator(store, now=T0, rate=40)
    with pytest.raises(ValueError, match="unknown incident 'flood'; incidents: pm25_episode, fire, storm, hotspot"):
        simulator.start_incident("flood")
    with pytest.raises(ValueError, match="district '999999' has no pm25 sensors"):
        simulator.start_incident("pm25_episode", "999999")
    with pytest.raises(ValueError, match="is not a building above 100 m"):
        simulator.start_incident("fire", "no-such-building")
    with pytest.raises(ValueError, match="must be more than 0"):
        Simulator(store, rate=0)


def test_in_the_background_it_follows_the_wall_clock_until_stopped(store):
    from tests.mqtt_harness import wait_for

    simulator = Simulator(store, rate=200)
    stop, thread = simulator.run_in_background(step_seconds=0.1)
    try:
        wait_for(lambda: len(arrived_since(store, "readings", 0)[0]), 30, "readings written in the background",
                 at_least=50)
        simulator.start_incident("fire")  # from this thread, while the background one steps
        wait_for(lambda: (arrived_since(store, "alarms", 0)[0]["kind"] == "smoke").any(), 30, "the fire alarm")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    newest = arrived_since(store, "readings", 0)[0]["ts"].max()
    assert abs(newest.timestamp() - time.time()) < 60  # on the wall clock, not the sample city's end


def test_a_tour_step_starts_an_incident_only_for_those_allowed_and_its_rule_fires(store, monkeypatch):
    """The drill's server side (dashboard/components/tour.py): who may start an incident (rules.INCIDENTS, the whole
    city as scope), what a server without a simulator says (replay mode), and the fire that fires its alert."""
    import flask

    from dashboard import services
    from dashboard.components import tour
    from dashboard.services import Services
    from layers.accounts import Principal
    from layers.alerts import OPEN_STATUSES, AlertBook
    from metrics.alert_runner import evaluate

    service = Services(store)
    monkeypatch.setattr(services, "_services", service)
    app = flask.Flask(__name__)

    def start_as(principal):
        with app.test_request_context():
            flask.g.principal = principal
            return tour.start_incident("fire")

    admin = Principal("ana", frozenset({"admin"}))
    replayed = start_as(admin)  # no simulator in this process: nothing starts, and the step says why
    assert "live mode with the simulator" in replayed["en"] and "回放模式" in replayed["zh"]

    service.simulator = simulator = Simulator(store, now=T0, rate=50)
    assert "only a supervisor or an administrator" in start_as(Principal("vic", frozenset({"viewer", "intake"})))["en"]
    assert "city-wide" in start_as(Principal("sam", frozenset({"supervisor"}), scope="440304"))["en"]
    assert start_as(None)["zh"].startswith("演练未启动")
    assert simulator.incidents == []  # refused: nothing started

    started = start_as(Principal("sue", frozenset({"supervisor"})))
    incident = simulator.incidents[0]
    assert incident.kind == "fire"
    assert started == {"en": f"Drill: a fire alarm in a high-rise started at {incident.place}",
                       "zh": f"演练：已启动高层建筑火灾报警（地点：{incident.place}）"}
    simulator.step(T0 + 5)
    evaluate(store, pd.Timestamp(T0 + 5, unit="s", tz="Asia/Shanghai"))
    fired = AlertBook(store).frame(OPEN_STATUSES)
    fired = fired[fired["rule_id"] == "high_rise_fire"]
    assert fired["building_id"].tolist() == [incident.place]
    assert fired["severity"].tolist() == ["critical"] and fired["status"].tolist() == ["firing"]
