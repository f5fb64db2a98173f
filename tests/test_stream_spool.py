"""The stream's changes read once per machine (layers.stream_spool): a process that takes them from the spool shows
the same city and figures as one that reads the store, reads none of the stream's rows itself, makes the same
generation as every other follower, and reads the store itself when the chain breaks or the publisher goes quiet."""
from __future__ import annotations

import itertools
import threading

import pandas as pd
import pytest

from dashboard import services as services_module
from dashboard.services import Services
from dashboard.settings import Settings
from layers.city import load_city
from layers.ingest import Batch, BatchWriter
from layers.stream_spool import NOTHING_NEW, StreamSpool, merged, publish_every, read_step
from sample_data.__main__ import build
from sample_data.generator import DEFAULT_END
from tests.test_live import assert_as_a_full_reload, refreshed, sensor_seen_outside_the_stream


@pytest.fixture
def city_store(tmp_path):
    store = build("test", f"sqlite:///{tmp_path / 'city.sqlite'}", progress=False, end=DEFAULT_END)
    store.snapshot_dir = tmp_path / "snapshot"
    return store


class Publisher:
    """The jobs process's publisher, one step at a time (the test says when it reads)."""

    def __init__(self, store):
        self.store, self.spool = store, StreamSpool.of(store)
        _, self.position = read_step(store, None)
        self.spool.beat()

    def publish(self):
        step, self.position = read_step(self.store, self.position)
        if step is not None:
            self.spool.publish(step)
        self.spool.beat()
        return step


def follower(store, **settings) -> Services:
    service = Services(store, settings=Settings(version_check_seconds=0.01, **settings))
    service.stream_spool = StreamSpool.of(store)
    return service


MARKS = itertools.count()


def marked(service: Services, publisher: Publisher) -> None:
    """A first batch of the stream, which a process after its start reads from the store itself: a city loaded
    whole (or from a snapshot) has no mark of the readings to follow the stream's steps from."""
    before = service.city()
    at = int(DEFAULT_END.timestamp()) - 900 - next(MARKS)  # a new reading each time (a duplicate changes nothing)
    BatchWriter(service.store, source="test").write(Batch(readings=[(pm25_ids(before)[-1], at, 20.0)], received=1))
    publisher.publish()
    refreshed(service, before)
    assert service.stream_spool.read_from == "store"


def caught_up(service: Services, timeout: float = 60):
    """The service's city once it holds what the store holds (a follower may take an earlier step in first)."""
    import time

    wanted = {layer: info["version"] for layer, info in service.store.layer_versions().items()}
    deadline = time.monotonic() + timeout
    while service.city().versions != wanted and time.monotonic() < deadline:
        service.wait_for_refresh(5)
        time.sleep(0.02)
    assert service.city().versions == wanted, "the follower never caught up with the store"
    return service.city()


def one_reading(store, city, sensor: int, value: float) -> None:
    """One reading of an online PM2.5 monitor a minute before the sensors' clock, written as the stream writes."""
    online, _ = pm25_sensors(city)
    at = int(city.sensors_as_of.timestamp()) - 60
    BatchWriter(store, source="test").write(Batch(readings=[(online[sensor], at, value)], received=1))


def no_store_read(*_args, **_kwargs):
    raise AssertionError("the follower read the stream's changes from the store")


def pm25_ids(city) -> list[str]:
    return city["sensors"].query("kind == 'pm25'")["sensor_id"].tolist()


def pm25_sensors(city) -> tuple[list[str], pd.DataFrame]:
    sensors = city["sensors"]
    measuring = sensors[(sensors["kind"] == "pm25").to_numpy()]
    online = measuring[(measuring["last_seen_at"] >= city.sensors_as_of).to_numpy()]["sensor_id"].tolist()
    silent = measuring[(measuring["last_seen_at"] < city.sensors_as_of - pd.Timedelta(hours=3)).to_numpy()]
    assert len(online) >= 20 and len(silent), "the sample has PM2.5 monitors online and silent"
    return online, silent


def test_a_follower_of_the_spool_equals_a_full_reload_and_reads_no_stream_row_itself(city_store, monkeypatch):
    """Batches of the stream (a silent sensor reporting, a reading five hours late, the next hour, an alarm), each
    published as a step; the follower takes them in without reading the stream's rows, and its readings, sensors,
    tables and sparklines equal a full reload's after each. Two batches published as two steps before the follower
    looks are taken in at once (merged)."""
    service = follower(city_store)
    city = service.city()
    for window in ("today", "7d"):
        service.table(window)
        service.series(window)
    publisher = Publisher(city_store)
    marked(service, publisher)
    online, silent = pm25_sensors(city)
    now = int(city.sensors_as_of.timestamp())
    next_hour = (now // 3600 + 1) * 3600
    alarm = dict(alarm_id="spool-alarm-1", sensor_id=online[0], kind="pm25", severity="critical",
                 raised_at=now - 30, cleared_at=None, message="PM2.5 over the limit")
    batches = [
        [Batch(readings=[(s, now - 600, 33.0) for s in online[:5]], received=5)],
        [Batch(readings=[(silent["sensor_id"].iloc[0], now - 300, 44.0), (online[5], now - 5 * 3600 - 120, 240.0)],
               received=2, alarms=[alarm])],
        # Two batches, two steps, before the follower looks: one merged step.
        [Batch(readings=[(s, next_hour + 60, 66.0) for s in online[10:20]], received=10),
         Batch(readings=[(s, next_hour + 180, 77.0) for s in online[:5]], received=5)],
    ]
    monkeypatch.setattr(services_module, "with_sensor_layers_read_again", no_store_read)
    writer = BatchWriter(city_store, source="test")
    for group in batches:
        before = service.city()
        for batch in group:
            writer.write(batch)
            assert publisher.publish() is not None
        after = caught_up(service)
        assert after is not before and service.stream_spool.read_from == "spool"
        assert_as_a_full_reload(service, city_store)
        loaded = load_city(city_store)
        by_id = lambda frame: frame.set_index("sensor_id").sort_index()  # noqa: E731
        pd.testing.assert_frame_equal(by_id(after["sensors"]), by_id(loaded["sensors"]), check_like=True)
        by_alarm = lambda frame: frame.set_index("alarm_id").sort_index()  # noqa: E731
        pd.testing.assert_frame_equal(by_alarm(after["alarms"]), by_alarm(loaded["alarms"]), check_like=True)
    assert "spool-alarm-1" in set(service.city()["alarms"]["alarm_id"])
    late = service.city()["readings"].set_index(["sensor_id", "ts"])["value"]
    assert late[(online[5], pd.Timestamp(now - 5 * 3600 - 120, unit="s", tz="UTC").floor("h")
                 .tz_convert(city.as_of.tz))] > 100  # the late reading's hour took it in


def test_two_followers_make_the_same_generation_from_one_step(city_store):
    """Live mode: two processes taking in the same step show the city at the publisher's clock with the same
    versions — the same generation key, so that an answer could be shared between them."""
    # The clock alone makes no generation here (an hour's step): each new generation is the step's.
    first, second = (follower(city_store, mode="live", clock_step_seconds=3600) for _ in range(2))
    publisher = Publisher(city_store)
    marked(first, publisher)
    marked(second, publisher)
    befores = first.city(), second.city()
    at = int(DEFAULT_END.timestamp()) - 60
    BatchWriter(city_store, source="test").write(Batch(readings=[(s, at, 21.0) for s in pm25_ids(befores[0])[:3]],
                                                       received=3))
    step = publisher.publish()
    made = [caught_up(service) for service in (first, second)]
    assert made[0].as_of == made[1].as_of == step.clock
    assert first.generation().key == second.generation().key
    assert first.stream_spool.read_from == second.stream_spool.read_from == "spool"


def test_a_follower_waits_for_the_publisher_and_makes_no_generation_meanwhile(city_store):
    """The store moved on but the publisher has not read it yet: the follower keeps its generation (no store read,
    no generation with nothing new), then takes the step in once published."""
    service = follower(city_store)
    publisher = Publisher(city_store)
    marked(service, publisher)
    city = service.city()
    one_reading(city_store, city, 0, 22.0)
    assert service.stream_spool.changes_for(service.city()) == NOTHING_NEW
    for _ in range(3):
        service.city()
        service.wait_for_refresh(30)
    assert service.city() is city
    publisher.publish()
    assert caught_up(service) is not city


def test_a_chain_broken_by_a_write_outside_the_stream_is_read_from_the_store_then_followed_again(city_store):
    """Sensors updated outside the stream (an import): the publisher cannot say which changed and starts a new
    chain; the follower reads the store itself once (equal to a full reload), then takes the next steps again."""
    service = follower(city_store)
    publisher = Publisher(city_store)
    marked(service, publisher)
    city = service.city()
    service.table("today")
    online, silent = pm25_sensors(city)
    quiet = silent["sensor_id"].iloc[0]
    at = int((city.sensors_as_of - pd.Timedelta(minutes=5)).timestamp())
    sensor_seen_outside_the_stream(city_store, quiet, at)
    assert publisher.publish() is None  # not the stream's: no step, a new chain from here
    after = caught_up(service)
    assert service.stream_spool.read_from == "store"
    assert_as_a_full_reload(service, city_store, windows=("today",))
    BatchWriter(city_store, source="test").write(Batch(readings=[(online[1], at + 60, 23.0)], received=1))
    assert publisher.publish() is not None
    caught_up(service)
    assert service.stream_spool.read_from == "spool"
    assert_as_a_full_reload(service, city_store, windows=("today",))


def test_a_quiet_publisher_leaves_the_follower_reading_the_store(city_store, monkeypatch):
    service = follower(city_store)
    marked(service, Publisher(city_store))
    city = service.city()
    monkeypatch.setattr("layers.stream_spool.QUIET_SECONDS", 0.0)
    assert service.stream_spool.changes_for(city) is None
    one_reading(city_store, city, 0, 24.0)
    refreshed(service, city)
    assert service.stream_spool.read_from == "store"


def test_steps_merged_keep_each_rows_newest_read_and_the_last_alarms(city_store):
    publisher = Publisher(city_store)
    city = load_city(city_store)
    online, _ = pm25_sensors(city)
    at = int(city.sensors_as_of.timestamp()) - 60
    writer = BatchWriter(city_store, source="test")
    writer.write(Batch(readings=[(online[0], at, 10.0), (online[1], at, 11.0)], received=2))
    first = publisher.publish()
    writer.write(Batch(readings=[(online[0], at + 1, 30.0)], received=1))  # the same hour: its mean read again
    second = publisher.publish()
    both = merged([first, second])
    assert both.start == first.start and both.end == second.end and both.clock == second.clock
    readings = both.changes.fresh["readings"].set_index(["sensor_id", "ts"])["value"]
    assert not readings.index.duplicated().any()
    hour = pd.Timestamp(at, unit="s", tz="UTC").floor("h").tz_convert(city.as_of.tz)
    assert readings[(online[0], hour)] == second.changes.fresh["readings"].set_index(["sensor_id", "ts"]).loc[
        (online[0], hour), "value"]
    # What was written reads back as it was read from the store.
    spool = StreamSpool.of(city_store)
    back = [spool._read(name, meta) for name, meta in spool._steps()]
    for step, read in zip((first, second), back, strict=True):
        assert (read.start, read.end, read.versions, read.clock) == (step.start, step.end, step.versions, step.clock)
        assert read.changes.marks == step.changes.marks and read.changes.since == step.changes.since
        for layer, frame in step.changes.fresh.items():
            pd.testing.assert_frame_equal(read.changes.fresh[layer], frame)


def test_the_publisher_thread_publishes_beats_and_prunes(city_store, monkeypatch):
    stop = threading.Event()
    spool = StreamSpool.of(city_store)
    thread = threading.Thread(target=publish_every, args=(city_store, 0.02, stop), daemon=True)
    thread.start()
    try:
        city = load_city(city_store)
        online, _ = pm25_sensors(city)
        at = int(city.sensors_as_of.timestamp()) - 60
        for _ in range(200):
            if spool.publisher_at_work():
                break
            stop.wait(0.02)
        assert spool.publisher_at_work()
        BatchWriter(city_store, source="test").write(Batch(readings=[(online[0], at, 25.0)], received=1))
        for _ in range(500):
            if spool._steps():
                break
            stop.wait(0.02)
        [(_, meta)] = spool._steps()
        assert meta["layers"] == ["readings", "sensors"]
        monkeypatch.setattr("layers.stream_spool.KEEP_SECONDS", 0.0)  # from now on a step is kept for no time
        for _ in range(500):
            if not [p for p in spool.folder.iterdir() if p.is_dir()]:
                break
            stop.wait(0.02)
        assert [p.name for p in spool.folder.iterdir() if p.is_dir()] == []
    finally:
        stop.set()
        thread.join(10)


def test_two_publishers_on_one_store_write_two_chains_and_the_follower_takes_the_furthest(city_store, monkeypatch):
    """Two servers on one machine and one store publish into one spool: their steps interleave, and the follower
    still takes each batch in from the spool (not stuck at a step the other chain does not continue)."""
    service = follower(city_store)
    one, other = Publisher(city_store), Publisher(city_store)
    marked(service, one)
    other.publish()  # the other publisher's step over the marking batch
    online, _ = pm25_sensors(service.city())
    at = int(DEFAULT_END.timestamp()) - 120
    monkeypatch.setattr(services_module, "with_sensor_layers_read_again", no_store_read)
    writer = BatchWriter(city_store, source="test")
    for number in range(4):
        before = service.city()
        writer.write(Batch(readings=[(online[number], at + number, 26.0 + number)], received=1))
        (one if number % 2 else other).publish()
        refreshed(service, before)
        (other if number % 2 else one).publish()
        assert service.stream_spool.read_from == "spool"
    assert_as_a_full_reload(service, city_store, windows=("today",))


def test_a_step_that_cannot_be_read_is_read_from_the_store(city_store):
    """A step's file cut short (a disk full, another release's format): the follower reads the store itself, and
    equals a full reload."""
    service = follower(city_store)
    publisher = Publisher(city_store)
    marked(service, publisher)
    city = service.city()
    one_reading(city_store, city, 2, 27.0)
    step_folder = publisher.spool.publish(read_step(city_store, publisher.position)[0])
    (step_folder / "readings.arrow").write_bytes(b"not arrow")
    assert service.stream_spool.changes_for(city) is None
    caught_up(service)
    assert service.stream_spool.read_from == "store"
    assert_as_a_full_reload(service, city_store, windows=("today",))
