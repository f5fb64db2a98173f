"""The stream ingest against a real Mosquitto (persistence on, free port): faults lose nothing and store nothing
twice; bad input goes to the dead letters; FIWARE payloads in both forms are read.

Every wait is on a condition with a deadline (tests/mqtt_harness.wait_for), never a fixed sleep.
"""
from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy

from layers.ingest import (Batch, BatchWriter, IngestService, SensorDirectory, arrived_since, decode_message,
                           newest_readings, status)
from layers.store import Store
from sample_data.__main__ import build
from tests.mqtt_harness import IngestProcess, Mosquitto, Publisher, wait_for

FIXTURES = Path(__file__).parent / "fixtures" / "fiware"
MEASURING = ("pm25", "noise", "water_level", "traffic_flow")


@pytest.fixture(scope="module")
def city_file(tmp_path_factory) -> Path:
    """A small sample city ending at the last hour but one, built once; each test copies it. Not this hour: a test
    stamps its messages a few minutes ago, and in the first minutes of an hour that was before the city's last
    status report, which (rightly) kept its status — the FIWARE Device test failed so at 19:0x."""
    path = tmp_path_factory.mktemp("city") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False,
          end=(pd.Timestamp.now(tz="Asia/Shanghai") - pd.Timedelta(hours=1)).floor("h"))
    return path


@pytest.fixture
def city_url(city_file, tmp_path) -> str:
    path = tmp_path / "city.sqlite"
    shutil.copy(city_file, path)
    return f"sqlite:///{path}"


@pytest.fixture
def broker(tmp_path):
    directory = tmp_path / "mosquitto"
    directory.mkdir()
    mosquitto = Mosquitto(directory)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def measuring_sensors(store: Store) -> list[str]:
    sensors = store.read_frame("sensors", ["sensor_id", "kind"])
    return sorted(sensors.loc[sensors["kind"].isin(MEASURING), "sensor_id"])


def stream(sensors: list[str], count: int, base: int | None = None):
    """``count`` readings, each a distinct (sensor, instant), value = its index: (topic, payload, value). The instants
    are after the sample city's last hour (within the ingest's tolerance of a day ahead), so none is one it has."""
    base = base or int(time.time()) + 4 * 3600
    for i in range(count):
        sensor = sensors[i % len(sensors)]
        yield f"citytwin/{sensor}/reading", json.dumps({"ts": base - i, "value": i}), i


def streamed_rows(store: Store) -> pd.DataFrame:
    """The readings the ingest stored (they carry an arrival number; the sample city's own have none)."""
    return store.read_frame("readings", ["sensor_id", "ts", "value", "seq"], where=lambda t: t.c.seq.is_not(None))


def streamed_count(store: Store) -> int | str:
    with store.engine.connect() as conn:
        return conn.execute(sqlalchemy.text("SELECT COUNT(*) FROM readings WHERE seq IS NOT NULL")).scalar_one()


def assert_exactly(store: Store, count: int) -> None:
    rows = streamed_rows(store)
    assert len(rows) == count
    assert sorted(rows["value"].astype(int)) == list(range(count)), "a reading was lost or stored twice"
    assert not rows.duplicated(["sensor_id", "ts"]).any()
    assert rows["seq"].is_unique


# --- faults -----------------------------------------------------------------------------------------------------

def test_broker_restarted_during_a_stream_of_10000_loses_and_doubles_nothing(broker, city_url, tmp_path):
    store = Store(city_url)
    ingest = IngestProcess(broker.url, city_url, tmp_path / "ingest.log")
    ingest.start()
    publisher = None
    try:
        ingest.wait_connected()
        publisher = Publisher(broker.port)
        messages = list(stream(measuring_sensors(store), 10_000))
        for topic, payload, _ in messages[:5_000]:
            publisher.publish(topic, payload)
        wait_for(lambda: publisher.acknowledged, 30, "the broker to acknowledge 2,000", at_least=2_000)
        broker.restart()  # SIGTERM: it saves the sessions and their queued messages; then up again, same port
        for topic, payload, _ in messages[5_000:]:
            publisher.publish(topic, payload)
        wait_for(lambda: publisher.acknowledged, 45, "the broker to acknowledge all 10,000", at_least=10_000)
        wait_for(lambda: streamed_count(store), 45, "10,000 readings stored", at_least=10_000)
        assert publisher.sent == 10_000
        assert_exactly(store, 10_000)
        assert ingest.output().count("connected to") >= 2, "the ingest did not reconnect by itself"
        assert ingest.process.poll() is None
    finally:
        if publisher:
            publisher.close()
        ingest.stop()


def test_ingest_killed_mid_batch_and_restarted_loses_and_doubles_nothing(broker, city_url, tmp_path):
    store = Store(city_url)
    ingest = IngestProcess(broker.url, city_url, tmp_path / "ingest.log")
    ingest.start()
    publisher = None
    try:
        ingest.wait_connected()
        publisher = Publisher(broker.port)
        for topic, payload, _ in stream(measuring_sensors(store), 10_000):
            publisher.publish(topic, payload)
        # Killed while batches are arriving: some committed, one being written or waiting for its ack.
        wait_for(lambda: streamed_count(store), 30, "the first batches stored", at_least=1_500)
        ingest.kill()
        killed_at = streamed_count(store)
        wait_for(lambda: publisher.acknowledged, 30, "the broker to acknowledge all 10,000", at_least=10_000)
        assert killed_at < 10_000, "the stream ended before the kill: the test proves nothing"
        ingest.start()  # same client id: the session, with every unacknowledged message, is waiting for it
        wait_for(lambda: streamed_count(store), 45, "10,000 readings stored after the restart", at_least=10_000)
        assert_exactly(store, 10_000)
        counters = status(store)
        assert counters["stored"] == 10_000
    finally:
        if publisher:
            publisher.close()
        ingest.stop()


def test_database_down_for_20_seconds_holds_acknowledgements_and_loses_nothing(broker, postgis_db_url):
    build("test", postgis_db_url, progress=False, end=pd.Timestamp.now(tz="Asia/Shanghai").floor("h"))
    store = Store(postgis_db_url)
    service = IngestService(store, broker.url, client_id="citytwin-ingest-dbdown", batch_size=200)
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    admin = sqlalchemy.create_engine(store.engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT",
                                     poolclass=sqlalchemy.pool.NullPool)
    database = store.engine.url.database
    publisher = None
    try:
        wait_for(service.connected.is_set, 15, "the ingest to connect")
        publisher = Publisher(broker.port)
        messages = list(stream(measuring_sensors(store), 3_000))
        for topic, payload, _ in messages[:1_000]:
            publisher.publish(topic, payload)
        wait_for(lambda: streamed_count(store), 30, "the first 1,000 stored", at_least=1_000)

        with admin.connect() as conn:  # the database goes away: no new connections, the open ones cut
            conn.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(sqlalchemy.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": database})
        down_at = time.monotonic()
        acknowledged_before = service.acknowledged
        for topic, payload, _ in messages[1_000:]:
            publisher.publish(topic, payload)
        wait_for(lambda: service.waiting_for_database, 15, "the ingest to notice the database is down")
        wait_for(lambda: publisher.acknowledged, 30, "the broker to take all 3,000", at_least=3_000)
        wait_for(lambda: time.monotonic() - down_at >= 20, 25, "20 seconds of outage", interval=0.5)
        assert service.waiting_for_database, "the ingest stopped retrying during the outage"
        assert service.acknowledged == acknowledged_before, "the ingest acknowledged what it could not store"

        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        wait_for(lambda: streamed_count(store), 45, "all 3,000 stored after the outage", at_least=3_000)
        assert_exactly(store, 3_000)
        wait_for(lambda: service.acknowledged, 15, "every message acknowledged once stored", at_least=3_000)
        assert runner.is_alive()
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        if publisher:
            publisher.close()
        service.stop()
        runner.join(timeout=15)
        store.engine.dispose()


def malformed_payloads(sensor: str, smoke: str, now: int) -> list[tuple[str, bytes, str]]:
    """1,000 bad messages: (topic, payload, what the reason must mention)."""
    good = json.dumps({"ts": now, "value": 1.5}).encode()
    kinds = [
        (f"citytwin/{sensor}/reading", good[:-5], "not JSON"),                                      # truncated
        (f"citytwin/{sensor}/reading", b'{"ts": %d, "value": "high"}' % now, "expected a number"),  # wrong type
        (f"citytwin/{sensor}/reading", b'{"ts": [1], "value": 3}', "time has type list"),
        (f"citytwin/{sensor}/reading", b'{"ts": %d, "value": NaN}' % now, "NaN"),
        (f"citytwin/{sensor}/reading", b'{"ts": %d, "value": Infinity}' % now, "Infinity"),
        (f"citytwin/{sensor}/reading", b'{"ts": %d, "value": 1e999}' % now, "not finite"),
        ("citytwin/NO-SUCH-SENSOR/reading", good, "unknown sensor"),
        (f"citytwin/{smoke}/reading", good, "not readings"),
        (f"citytwin/{sensor}/reading", b"[" + b"7" * (1024 * 1024) + b"]", "over the 65,536-byte limit"),  # 1 MB
        (f"citytwin/{sensor}/humidity", good, "unknown topic"),  # under our prefix: we subscribe to it
        (f"citytwin/{sensor}/status", b'{"ts": %d, "status": "sleeping"}' % now, "not one of"),
        (f"citytwin/{sensor}/reading", b"\xff\xfe\x00garbage", "not JSON"),
        (f"citytwin/{sensor}/reading", b'{"ts": "yesterday", "value": 1}', "not ISO 8601"),
        ("citytwin/fiware/x", b'{"id": "urn:ngsi-ld:Building:1", "type": "Building"}', "not one we read"),
    ]
    # 10 bodies of 1 MB, the rest spread over the other kinds.
    out = [kinds[8]] * 10
    others = [k for i, k in enumerate(kinds) if i != 8]
    out += [others[i % len(others)] for i in range(1_000 - len(out))]
    return out


def test_1000_malformed_payloads_are_dead_lettered_and_the_service_keeps_storing(broker, city_url, tmp_path):
    store = Store(city_url)
    ingest = IngestProcess(broker.url, city_url, tmp_path / "ingest.log")
    ingest.start()
    publisher = None
    try:
        ingest.wait_connected()
        publisher = Publisher(broker.port)
        sensors = store.read_frame("sensors", ["sensor_id", "kind"])
        sensor = sensors.loc[sensors["kind"] == "pm25", "sensor_id"].iloc[0]
        smoke = sensors.loc[sensors["kind"] == "smoke", "sensor_id"].iloc[0]
        bad = malformed_payloads(sensor, smoke, int(time.time()) - 30)
        for topic, payload, _ in bad:
            publisher.publish(topic, payload)
        for topic, payload, _ in stream(measuring_sensors(store), 100):  # good ones after the bad
            publisher.publish(topic, payload)
        wait_for(lambda: streamed_count(store), 45, "the good readings after the bad ones", at_least=100)
        wait_for(lambda: status(store)["dead_lettered"], 30, "1,000 dead letters", at_least=1_000)
        letters = store.engine.connect().execute(sqlalchemy.text(
            "SELECT topic, reason, payload_bytes, LENGTH(payload_excerpt) AS excerpt FROM dead_letters "
            "ORDER BY letter_id")).mappings().all()
        assert len(letters) == 1_000
        for (topic, payload, expected), letter in zip(bad, letters):
            assert letter["topic"] == topic
            assert expected in letter["reason"], (expected, letter["reason"])
            assert letter["payload_bytes"] == len(payload)
            assert letter["excerpt"] <= 200  # a 1 MB body is not copied into the table
        assert_exactly(store, 100)
        assert ingest.process.poll() is None, "the service stopped on bad input"
    finally:
        if publisher:
            publisher.close()
        ingest.stop()


# --- FIWARE -----------------------------------------------------------------------------------------------------

FIWARE_CASES = {
    # fixture stem: (layer it feeds, what it must store)
    "AirQualityObserved": ("readings", ("S000001", 42.0)),
    "NoiseLevelObserved": ("readings", ("S000037", 65.3)),
    "TrafficFlowObserved": ("readings", ("S000109", 197 * 12.0)),  # 197 vehicles in 5 minutes → veh/h
    "WaterObserved": ("readings", ("S000085", 3.52)),
    "Device": ("sensors", ("S000157", "fault")),
    "Alert": ("alarms", ("S000157", "critical")),
}


@pytest.mark.parametrize("form", ["keyvalues", "normalized"])
@pytest.mark.parametrize("model", sorted(FIWARE_CASES))
def test_fiware_examples_are_ingested_in_both_forms(model, form, city_url):
    """The Smart Data Models' documented examples (adapted to our sensor ids and to today) are stored as the
    reading, status or alarm they describe, through the same decoder and writer the service uses."""
    store = Store(city_url)
    layer, expected = FIWARE_CASES[model]
    text = (FIXTURES / f"{model}.{form}.json").read_text()
    # The examples are dated in the past; today's date keeps them inside the ingest's sanity window. Their times
    # become a few minutes ago, off the hour: the sample city already has each sensor's reading on the hour, and a
    # second reading at the same instant is (rightly) not stored twice.
    today = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    payload = text.replace("2016-12-07", today).replace("2020-03-17", today).replace("2017-01-31", today) \
        .replace("2018-08-07", today)
    recent = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=7)).floor("min") + pd.Timedelta(seconds=37)
    pattern = rf"{today}T\d{{2}}:\d{{2}}:\d{{2}}(\.\d+)?Z"
    found = [pd.Timestamp(m.group(0)) for m in re.finditer(pattern, payload)]
    shift = recent - min(found) if found else pd.Timedelta(0)  # intervals (from/to) keep their length
    payload = re.sub(pattern, lambda m: (pd.Timestamp(m.group(0)) + shift).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     payload).encode()
    today = recent.strftime("%Y-%m-%d")
    sensors = store.read_frame("sensors", ["sensor_id", "kind"]).set_index("sensor_id")["kind"]
    assert expected[0] in sensors.index, "the fixture's sensor is not in the sample city"
    batch = decode_message(f"citytwin/fiware/{model}", payload, SensorDirectory(store), time.time())
    assert not batch.dead_letters, batch.dead_letters
    BatchWriter(store).write(batch)
    if layer == "readings":
        rows, _ = arrived_since(store, "readings", 0)
        assert rows[["sensor_id", "value"]].values.tolist() == [list(expected)]
        assert rows["ts"].iloc[0].strftime("%Y-%m-%d") in (today, (pd.Timestamp(today) + pd.Timedelta(days=1))
                                                           .strftime("%Y-%m-%d"))
    elif layer == "sensors":
        row = store.read_frame("sensors", ["sensor_id", "status"], where=lambda t: t.c.sensor_id == expected[0])
        assert row["status"].tolist() == [expected[1]]
    else:
        rows, _ = arrived_since(store, "alarms", 0)
        assert rows[["sensor_id", "severity"]].values.tolist() == [list(expected)]
        assert rows["message"].iloc[0]


# --- the writer, without a broker -------------------------------------------------------------------------------

def test_sensor_status_and_last_seen_follow_what_the_sensors_send(city_url):
    store = Store(city_url)
    writer, directory = BatchWriter(store), SensorDirectory(store)
    now = int(time.time())
    sensors = store.read_frame("sensors", ["sensor_id", "kind"])
    reporting = sensors.loc[sensors["kind"] == "pm25", "sensor_id"].iloc[:2].tolist()
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE sensors SET status = 'offline' WHERE sensor_id = :s"), {"s": reporting[0]})
        conn.execute(sqlalchemy.text("UPDATE sensors SET status = 'fault' WHERE sensor_id = :s"), {"s": reporting[1]})

    def send(topic, body):
        writer.write(decode_message(topic, json.dumps(body).encode(), directory, time.time()))

    def state(sensor_id):
        row = store.read_frame("sensors", ["status", "last_seen_at"], where=lambda t: t.c.sensor_id == sensor_id)
        return row["status"].iloc[0], int(row["last_seen_at"].iloc[0])

    for sensor_id in reporting:
        send(f"citytwin/{sensor_id}/reading", {"ts": now, "value": 20})
    assert state(reporting[0]) == ("online", now)   # an offline sensor that reports is back
    assert state(reporting[1]) == ("fault", now)    # a fault stays until the sensor says otherwise
    send(f"citytwin/{reporting[1]}/status", {"ts": now + 5, "status": "online"})
    assert state(reporting[1]) == ("online", now + 5)
    send(f"citytwin/{reporting[1]}/reading", {"ts": now - 600, "value": 21})  # a late reading: last_seen stays
    assert state(reporting[1]) == ("online", now + 5)
    assert store.layer_versions()["sensors"]["source"] == "ingest"


def test_followers_read_what_arrived_since_their_last_number(city_url):
    store = Store(city_url)
    writer, directory = BatchWriter(store), SensorDirectory(store)
    sensors = measuring_sensors(store)
    now = int(time.time())
    first = Batch()
    for topic, payload, _ in stream(sensors, 5, base=now):
        first.extend(decode_message(topic, payload.encode(), directory, time.time()))
    writer.write(first)
    rows, newest = arrived_since(store, "readings", 0)
    assert len(rows) == 5 and newest == rows["seq"].max() and rows["seq"].is_monotonic_increasing
    writer.write(first)  # a redelivery: nothing new to follow
    assert len(arrived_since(store, "readings", newest)[0]) == 0
    second = decode_message(f"citytwin/{sensors[0]}/reading", json.dumps({"ts": now + 1, "value": 9}).encode(),
                            directory, time.time())
    writer.write(second)
    rows, latest = arrived_since(store, "readings", newest)
    assert rows["value"].tolist() == [9.0] and latest > newest
    # An alarm comes again when it is cleared, with a newer number.
    alarm = {"ts": now, "severity": "critical", "message": "over", "id": "A-live-1"}
    writer.write(decode_message(f"citytwin/{sensors[0]}/alarm", json.dumps(alarm).encode(), directory, time.time()))
    raised, mark = arrived_since(store, "alarms", 0)
    assert raised["alarm_id"].tolist() == ["A-live-1"] and raised["cleared_at"].isna().all()
    cleared = dict(alarm, cleared_at=now + 60)
    writer.write(decode_message(f"citytwin/{sensors[0]}/alarm", json.dumps(cleared).encode(), directory, time.time()))
    again, _ = arrived_since(store, "alarms", mark)
    assert again["alarm_id"].tolist() == ["A-live-1"] and again["cleared_at"].notna().all()
    with pytest.raises(KeyError, match="has no arrival numbers"):
        arrived_since(store, "orders", 0)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_each_sensors_newest_reading_in_a_window_is_the_one_a_scan_of_the_window_finds(backend, request):
    """layers.ingest.newest_readings (the alert rules' readings: one index seek per sensor) against the scan of the
    whole window it replaced: the same rows; a reading after the window's end or only before its start not taken."""
    url = request.getfixturevalue("city_url" if backend == "sqlite" else "postgis_db_url")
    if backend == "postgresql":
        build("test", url, progress=False, end=(pd.Timestamp.now(tz="Asia/Shanghai") - pd.Timedelta(hours=1)).floor("h"))
    store = Store(url)
    writer, directory = BatchWriter(store), SensorDirectory(store)
    sensors = measuring_sensors(store)
    now = int(time.time())
    since, until = now - 3 * 3600, now
    sent = {sensors[0]: [(now - 100, 1.0), (now - 50, 2.0), (now + 30, 3.0)],  # the last one after the window
            sensors[1]: [(now - 7200, 4.0)],
            sensors[2]: [(now + 100, 5.0)]}
    batch = Batch()
    for sensor_id, readings in sent.items():
        for ts, value in readings:
            batch.extend(decode_message(f"citytwin/{sensor_id}/reading", json.dumps({"ts": ts, "value": value}).encode(),
                                        directory, time.time()))
    writer.write(batch)
    with store.engine.begin() as conn:  # a sensor heard from only before the window: none of its readings count
        conn.execute(sqlalchemy.text("DELETE FROM readings WHERE sensor_id = :s AND ts >= :t"),
                     {"s": sensors[3], "t": since})

    newest = newest_readings(store, since, until).sort_values("sensor_id", ignore_index=True)
    scan = store.read_frame("readings", ["sensor_id", "ts", "value"],
                            where=lambda t: (t.c.ts >= since) & (t.c.ts <= until))
    scan = scan.sort_values("ts").groupby("sensor_id", as_index=False).last()
    scan = scan[scan["sensor_id"].isin(store.read_frame("sensors", ["sensor_id"])["sensor_id"])]
    pd.testing.assert_frame_equal(newest, scan.sort_values("sensor_id", ignore_index=True).astype(newest.dtypes),
                                  check_like=False)
    by_sensor = newest.set_index("sensor_id")
    assert by_sensor.loc[sensors[0], "value"] == 2.0 and by_sensor.loc[sensors[0], "ts"] == now - 50
    assert by_sensor.loc[sensors[1], "ts"] >= now - 7200  # its own, or the sample's newer hour
    assert sensors[3] not in by_sensor.index
    assert len(newest) > 3  # the sample's hours within the window count too


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_hourly_aggregate_counts_each_stored_reading_once_across_batches(backend, request, tmp_path):
    """The stream's readings_hourly rows (aggregated by the database from the batch's numbered rows) equal the
    aggregate of the raw readings stored: a redelivered reading is neither stored nor counted again."""
    url = (f"sqlite:///{tmp_path / 'hourly.sqlite'}" if backend == "sqlite"
           else request.getfixturevalue("postgis_db_url"))
    store = Store(url)
    store.create_schema()
    writer = BatchWriter(store)
    hour = int(time.time()) // 3600 * 3600 - 3 * 3600
    first = [("S1", hour + 60 * m, float(m)) for m in range(30)] + [("S2", hour + 5, 7.5), ("S2", hour + 3605, 1.0)]
    second = first[10:12] + [("S1", hour + 60 * m, 100.0 - m) for m in range(30, 60)] + [("S2", hour + 6, -2.5)]
    results = [writer.write(Batch(readings=first)), writer.write(Batch(readings=second))]
    assert [(r.stored, r.duplicates) for r in results] == [(32, 0), (31, 2)]
    with store.engine.connect() as conn:
        raw = pd.DataFrame(conn.execute(sqlalchemy.text("SELECT sensor_id, ts, value FROM readings")).all(),
                           columns=["sensor_id", "ts", "value"])
        hourly = pd.DataFrame(conn.execute(sqlalchemy.text(
            "SELECT sensor_id, hour, count, min, max, mean FROM readings_hourly ORDER BY sensor_id, hour")).all(),
            columns=["sensor_id", "hour", "count", "min", "max", "mean"])
    raw["hour"] = raw["ts"] - raw["ts"] % 3600
    expected = (raw.groupby(["sensor_id", "hour"], as_index=False)
                .agg(count=("value", "size"), min=("value", "min"), max=("value", "max"), mean=("value", "mean")))
    assert len(raw) == 63
    pd.testing.assert_frame_equal(hourly.astype({"count": "int64", "hour": "int64"}),
                                  expected.astype({"count": "int64", "hour": "int64"}), check_exact=False)
