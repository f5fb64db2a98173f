""""Now" is the clock: live and replay mode, each layer's own freshness, generations that every worker names alike.

The regression that opened the live-city issue: in replay mode, dispatching one order moved the city's as-of to the
dispatch's wall-clock time, and every sensor then read 0 % online (none had reported since). Sensor indicators now
stand at the sensors' own newest record, and in live mode at the clock.
"""
from __future__ import annotations

import copy

import pandas as pd
import pytest

from dashboard import services as services_module
from dashboard.services import Services
from dashboard.settings import Settings
from layers.city import SENSOR_LAYERS, load_city, with_clock, with_versions
from layers.workorders import OrderQuery
from metrics.registry import INDICATORS
from sample_data.__main__ import build
from sample_data.generator import DEFAULT_END

SENSOR_INDICATORS = [i for i, ind in INDICATORS.items()
                     if set(ind.inputs) & set(SENSOR_LAYERS) and "orders" not in ind.inputs]


@pytest.fixture
def city_store(tmp_path):
    # The reproducible sample ends on 2026-11-20 16:00: every action below is stamped days after its data.
    return build("test", f"sqlite:///{tmp_path / 'city.sqlite'}", progress=False, end=DEFAULT_END)


def sensor_rows(table: pd.DataFrame) -> pd.DataFrame:
    rows = table[table["indicator"].isin(SENSOR_INDICATORS)].reset_index(drop=True)
    return rows[["code", "indicator", "value", "previous", "state"]].sort_values(["code", "indicator"]) \
        .reset_index(drop=True)


def test_there_are_sensor_indicators_to_watch():
    assert {"sensor_online_rate", "active_alarms"} <= set(SENSOR_INDICATORS)


def test_acting_on_an_order_changes_no_sensor_indicator(city_store):
    service = Services(city_store, settings=Settings(version_check_seconds=0))
    before_city = service.city()
    before = {window: sensor_rows(service.table(window)) for window in ("today", "7d")}
    online = before["7d"].query("indicator == 'sensor_online_rate' and code == '440300'")["value"].iloc[0]
    assert online > 0.9  # the sample's sensors are online at their own newest record

    work_orders = service.work_orders()
    order = work_orders.list_orders(OrderQuery(status=["received"], limit=1)).orders[0]
    work_orders.dispatch(order.order_id, expected_version=order.version, actor="operator")

    after_city = service.city()
    assert after_city is not before_city
    assert after_city.as_of > before_city.as_of + pd.Timedelta(days=1)  # the dispatch moved the orders' clock ...
    assert after_city.sensors_as_of == before_city.sensors_as_of       # ... not the sensors'
    for window in before:
        pd.testing.assert_frame_equal(sensor_rows(service.table(window)), before[window])


def test_in_live_mode_the_city_is_shown_at_the_clock(city_store):
    service = Services(city_store, settings=Settings(mode="live", version_check_seconds=0))
    city = service.city()
    now = pd.Timestamp.now(tz=city.as_of.tz)
    assert abs((now - city.as_of).total_seconds()) < 60
    assert city.sensors_as_of == city.as_of
    # Twelve days after the sample's last report, no sensor is online and the score's freshness says so.
    online = service.table("today").set_index(["code", "indicator"]).loc[("440300", "sensor_online_rate"), "value"]
    assert online == 0


def test_in_live_mode_a_new_generation_follows_the_clock_without_a_change_in_the_store(city_store):
    service = Services(city_store, settings=Settings(mode="live", version_check_seconds=0, clock_step_seconds=1))
    first = service.generation()
    service._now = lambda: first.city.as_of + pd.Timedelta(seconds=5)  # the clock moves on
    second = service.generation()
    assert second is not first and second.city.as_of == first.city.as_of + pd.Timedelta(seconds=5)
    assert second.city.layers is first.city.layers  # nothing was read again
    assert second.key != first.key


def test_live_mode_does_not_warm_a_playback_day_that_the_next_generation_drops(city_store):
    service = Services(city_store, settings=Settings(mode="live", version_check_seconds=0, clock_step_seconds=1))
    clock = service.generation().city.as_of
    service._now = lambda: clock
    service.warm_playback()
    assert not any(isinstance(key, tuple) and key[0] == "playback" for key in service.generation().memo)
    table = service.playback_table(3)  # pressed: the hour is computed then, and kept for this generation
    assert service.playback_table(3) is table
    service._now = lambda: clock + pd.Timedelta(seconds=5)  # the next generation does not carry it: why not warm
    assert service.playback_table(3) is not table
    replay = Services(city_store, settings=Settings(mode="replay", version_check_seconds=0))
    replay.warm_playback()
    assert sum(isinstance(key, tuple) and key[0] == "playback" for key in replay.generation().memo) == 24


def test_a_unit_view_is_made_once_per_generation_and_again_for_the_next(city_store, monkeypatch):
    from dashboard import services as services_module

    service = Services(city_store, settings=Settings(mode="live", version_check_seconds=0, clock_step_seconds=1))
    clock = service.generation().city.as_of
    service._now = lambda: clock
    first = service.unit_view("440304", "on_time_rate", "7d")
    assert service.unit_view("440304", "on_time_rate", "7d") is first  # the same generation: not made again
    assert service.unit_view("440304", "overdue_orders", "7d") is not first
    service._now = lambda: clock + pd.Timedelta(seconds=5)  # the clock moves on: a new generation
    later = service.unit_view("440304", "on_time_rate", "7d")
    assert later is not first and later.as_of == clock + pd.Timedelta(seconds=5)
    monkeypatch.setattr(services_module, "MAX_UNIT_VIEWS", 2)
    for code in ("no-such-unit-1", "no-such-unit-2", "no-such-unit-3"):  # inputs from the network cannot grow it
        service.unit_view(code, "on_time_rate", "7d")
    assert len(service.generation().memo["unit_views"]) == 2


def test_a_shared_answer_is_made_once_per_generation_and_never_served_for_another(city_store):
    """Services.shared_answer (the live map's redraw, shared by every screen on the same view): made once for a
    generation and key; made again for a generation whose clock moved, and for one where only the alerts changed
    (the answer draws them); inputs from the network cannot grow it."""
    service = Services(city_store, settings=Settings(mode="live", version_check_seconds=0, clock_step_seconds=1))
    clock = service.generation().city.as_of
    service._now = lambda: clock
    made = []

    def answer(tag):
        return lambda: made.append(tag) or (tag, service.generation().key)

    first = service.shared_answer(("view", 1), answer("first"))
    assert service.shared_answer(("view", 1), answer("again")) is first and made == ["first"]
    assert service.shared_answer(("view", 2), answer("other"))[0] == "other"  # another key: its own answer
    service._now = lambda: clock + pd.Timedelta(seconds=5)  # the clock moves on: a new generation
    later = service.shared_answer(("view", 1), answer("later"))
    assert later[0] == "later" and later[1] != first[1]
    gen = service.generation()
    alerts_moved = with_versions(gen.city, {**gen.city.versions, "alerts": gen.city.versions.get("alerts", 0) + 1})
    service._gen = service._next_generation(gen, alerts_moved)  # only the alerts changed
    assert service.shared_answer(("view", 1), answer("alerts"))[0] == "alerts"
    for number in range(3, 300):
        service.shared_answer(("view", number), answer("many"))
    assert len(service.generation().memo["shared_answers"]) == services_module.MAX_UNIT_VIEWS


def test_readings_are_in_time_order_from_the_load_on(city_store):
    """The store gives the hourly readings by sensor; the city keeps them by instant, so that a refresh finds each
    window's rows by a binary search (layers.city.TIME_ORDERED)."""
    from layers.city import _sorted
    from layers.retention import hourly_readings

    assert not _sorted(hourly_readings(city_store)["ts"])  # else this test would prove nothing
    city = load_city(city_store)
    assert city.in_time_order("readings")
    assert len(city["readings"]) == len(hourly_readings(city_store))


def test_generation_keys_agree_across_processes_and_differ_across_versions(city_store):
    """Two workers that loaded the same store at the same clock name their generation alike; any change of a
    layer or of the clock gives another name (answers are cached under it)."""
    city = load_city(city_store)
    clock = pd.Timestamp("2026-12-01 10:00", tz=city.as_of.tz)
    one, other = Services(city_store), Services(city_store)
    one._gen, other._gen = one._generation(with_clock(city, clock)), other._generation(with_clock(load_city(city_store), clock))
    assert one._gen.key == other._gen.key
    later = other._generation(with_clock(city, clock + pd.Timedelta(seconds=1)))
    assert later.key != one._gen.key
    bumped = with_clock(city, clock)
    bumped.versions = dict(bumped.versions, orders=bumped.versions["orders"] + 1)
    assert other._generation(bumped).key != one._gen.key


def write_readings(store, rows: list[dict]) -> None:
    """Readings as the ingest writes them: rows of the readings layer and a new layer version, in one transaction."""
    from sqlalchemy import insert, select

    from layers.store import METADATA

    versions = METADATA.tables["layer_versions"]
    with store.engine.begin() as conn:
        conn.execute(insert(store.table("readings")), rows)
        current = conn.execute(select(versions.c.version).where(versions.c.layer_id == "readings")).scalar_one()
        conn.execute(versions.update().where(versions.c.layer_id == "readings").values(version=current + 1))


def test_a_batch_of_readings_is_read_and_computed_again_in_part_and_equals_a_full_recompute(city_store, monkeypatch):
    from dashboard import services as services_module
    from dashboard.services import window_series, window_table

    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    before = service.city()
    for window in ("today", "7d"):
        service.table(window)
        service.series(window)
    service.grid_buildings(before.hierarchy["grid"].iloc[0])
    index_before = service.generation().memo["buildings_by_grid"]
    pm25 = before["sensors"].query("kind == 'pm25'")["sensor_id"].tolist()
    at = int((before.sensors_as_of - pd.Timedelta(minutes=30)).timestamp())
    late = int((before.sensors_as_of - pd.Timedelta(minutes=90)).timestamp())  # a backlog arriving late
    write_readings(city_store, [dict(sensor_id=s, ts=t, value=400.0) for s in pm25 for t in (at, late)])

    def no_full_load(*_args, **_kwargs):
        raise AssertionError("the whole city was loaded again")

    monkeypatch.setattr(services_module, "load_city", no_full_load)
    import time
    deadline = time.monotonic() + 60
    while service.city() is before and time.monotonic() < deadline:
        service.wait_for_refresh(5)
        time.sleep(0.02)
    after = service.city()
    assert after is not before
    # What depends on unchanged layers only carried over; what depends on the sensors did not.
    assert service.generation().memo.get("buildings_by_grid") is index_before
    monkeypatch.undo()
    loaded = load_city(city_store)
    pd.testing.assert_frame_equal(  # the readings layer (hourly means) as a full load reads it
        after["readings"].sort_values(["sensor_id", "ts"]).reset_index(drop=True),
        loaded["readings"].sort_values(["sensor_id", "ts"]).reset_index(drop=True), check_like=True)
    for window in ("today", "7d"):
        pd.testing.assert_frame_equal(service.table(window), window_table(loaded, window), check_like=True)
        pd.testing.assert_series_equal(service.series(window), window_series(loaded, window))
    changed = service.table("today").loc[("440300", "pm25_mean"), "value"]
    assert changed > before_value(before)


def before_value(city) -> float:
    from dashboard.services import window_table
    return window_table(city, "today").loc[("440300", "pm25_mean"), "value"]


def test_a_building_cards_place_carries_over_a_batch_of_readings_and_its_sensors_do_not(city_store, monkeypatch):
    """The stream changes the sensor layers every second: the card's row, lineage and open orders near it (~70 ms at
    the city scale) are kept, its sensors' last readings are read again."""
    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    before = service.city()
    sensors = before["sensors"]
    in_buildings = sensors[sensors["building_id"].notna() & ~sensors["sensor_id"].isin(before["readings"]["sensor_id"])]
    sensor_id, building_id = in_buildings[["sensor_id", "building_id"]].iloc[0]  # no reading yet
    card = service.building_card(building_id)
    place = service.generation().memo["building_places"][building_id]
    at = int((before.sensors_as_of - pd.Timedelta(minutes=10)).timestamp())
    write_readings(city_store, [dict(sensor_id=sensor_id, ts=at, value=987.0)])

    made = []
    real_place = services_module.building_place
    monkeypatch.setattr(services_module, "building_place", lambda *args: made.append(args) or real_place(*args))
    wait_for_a_new_city(service, before)
    again = service.building_card(building_id)
    assert not made and service.generation().memo["building_places"][building_id] is place
    assert again is not card and again.open_orders is card.open_orders and again.lineage == card.lineage
    def last_value(of):
        return of.sensors.set_index("sensor_id").loc[sensor_id, "last_value"]

    assert pd.isna(last_value(card)) and last_value(again) == pytest.approx(987.0)
    # The ids come from the network: however many are asked, the memos stay bounded.
    assert all(service.building_card(f"B-none-{n}") is None for n in range(services_module.MAX_UNIT_VIEWS + 20))
    memo = service.generation().memo
    assert len(memo["building_places"]) <= services_module.MAX_UNIT_VIEWS
    assert len(memo["building_cards"]) <= services_module.MAX_UNIT_VIEWS


def test_a_units_buildings_and_their_outlines_carry_over_a_batch_of_readings(city_store):
    """A small unit's map draws its buildings' outlines: found once for the buildings and units, not for each
    generation of the stream."""
    from dashboard.maps import routes

    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    before = service.city()
    community = before.units.index[before.units["level"] == "community"][0]
    rows = routes.scope_rows(service.generation(), community)
    outlines = routes.unit_footprints(service.generation(), community)
    assert len(rows)
    sensor_id = before["sensors"]["sensor_id"].iloc[0]
    at = int((before.sensors_as_of - pd.Timedelta(minutes=10)).timestamp())
    write_readings(city_store, [dict(sensor_id=sensor_id, ts=at, value=1.0)])
    wait_for_a_new_city(service, before)
    assert routes.scope_rows(service.generation(), community) is rows
    assert routes.unit_footprints(service.generation(), community) is outlines


def wait_for_a_new_city(service: Services, before) -> None:
    import time
    deadline = time.monotonic() + 60
    while service.city() is before and time.monotonic() < deadline:
        service.wait_for_refresh(5)
        time.sleep(0.02)
    assert service.city() is not before


def test_the_layers_newest_records_are_found_again_only_for_the_layers_that_changed(city_store, monkeypatch):
    """The map's freshness badges: a batch of readings moves the readings' newest record; the max over the orders'
    times (3 M at the city scale) is not taken again for it."""
    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    before = service.city()
    drawn = service.layer_freshness()
    newest = before.sensors_as_of + pd.Timedelta(minutes=90)  # an hour later than the newest hourly mean
    sensor_id = before["sensors"]["sensor_id"].iloc[0]
    write_readings(city_store, [dict(sensor_id=sensor_id, ts=int(newest.timestamp()), value=1.0)])
    looked_at = []
    real = services_module.newest_record
    monkeypatch.setattr(services_module, "newest_record",
                        lambda city, layer_id: looked_at.append(layer_id) or real(city, layer_id))
    wait_for_a_new_city(service, before)
    now = service.layer_freshness()
    assert "readings" in looked_at and set(looked_at) & set(service.city().layers) <= set(SENSOR_LAYERS)
    assert now["orders"] == drawn["orders"] and now["readings"] > drawn["readings"]
    assert now == services_module.layer_freshness(service.city(), service.stored_versions())


# --- a restart reads the city's snapshot, then what changed since ---------------------------------------------------

def test_a_restart_reads_the_snapshot_and_then_the_changes_since(city_store, monkeypatch, tmp_path):
    from dashboard import services as services_module
    from dashboard.services import window_table
    from layers.snapshot import read_computed, snapshot_folder, write_computed

    city_store.snapshot_dir = tmp_path / "snapshot"
    first = Services(city_store, settings=Settings(snapshots=True, version_check_seconds=0))
    loaded = first.city()
    first._snapshotting.join(120)
    assert (snapshot_folder(city_store) / "manifest.json").exists()

    # While the server was down: an operator acted on an order, a citizen filed one, the stream sent readings.
    work_orders = first.work_orders()
    order = work_orders.list_orders(OrderQuery(status=["received"], limit=1)).orders[0]
    work_orders.dispatch(order.order_id, expected_version=order.version, actor="operator")
    cell = loaded.hierarchy["grid"].iloc[3]
    point = loaded.units.loc[cell].geometry.representative_point()
    filed = work_orders.file_request(event_type="garbage_overflow", lon=point.x, lat=point.y, actor="citizen")
    pm25 = loaded["sensors"].query("kind == 'pm25'")["sensor_id"].tolist()
    at = int((loaded.sensors_as_of - pd.Timedelta(minutes=20)).timestamp())
    write_readings(city_store, [dict(sensor_id=s, ts=at, value=300.0) for s in pm25])

    def no_full_load(*_args, **_kwargs):
        raise AssertionError("the whole city was loaded from the store")

    # Something computed from the first city, kept beside its snapshot (as the tile index is).
    write_computed(city_store, "kept-frame", pd.DataFrame({"x": [1, 2]}), "made from the first city")
    monkeypatch.setattr(services_module, "load_city", no_full_load)
    restarting = Services(city_store, settings=Settings(snapshots=True, version_check_seconds=0))
    restarted = restarting.city()
    # The snapshot was behind the store: the start wrote a new one, which the next start reads with nothing to
    # read again (and what was kept beside the old one is still there, its tag deciding whether it is used).
    restarting._snapshotting.join(120)
    monkeypatch.setattr(services_module, "with_orders_read_again", no_full_load)
    monkeypatch.setattr(services_module, "with_sensor_layers_read_again", no_full_load)
    again = Services(city_store, settings=Settings(snapshots=True, version_check_seconds=0)).city()
    assert again.versions == restarted.versions
    assert read_computed(city_store, "kept-frame", "made from the first city")["x"].tolist() == [1, 2]
    monkeypatch.undo()
    fresh = load_city(city_store)
    assert restarted.versions == fresh.versions
    by_id = lambda city: city["orders"].set_index("order_id").sort_index()  # noqa: E731
    assert by_id(restarted).at[filed.order_id, "status"] == "received"
    assert by_id(restarted).at[order.order_id, "status"] == "dispatched"
    assert len(restarted["readings"]) == len(fresh["readings"])
    for window in ("today", "7d"):
        pd.testing.assert_frame_equal(window_table(restarted, window), window_table(fresh, window), check_like=True)


def test_a_snapshot_of_another_city_is_not_used(city_store, monkeypatch, tmp_path):
    from layers.snapshot import read_snapshot, write_snapshot

    city_store.snapshot_dir = tmp_path / "snapshot"
    city = load_city(city_store)
    write_snapshot(city, city_store, 0)
    assert read_snapshot(city_store, list(city.layers)) is not None
    other = build("test", f"sqlite:///{tmp_path / 'other.sqlite'}", progress=False, seed=7)
    other.snapshot_dir = city_store.snapshot_dir
    assert read_snapshot(other, list(city.layers)) is None  # same folder, another city's units


# --- a batch reads the sensors it reported on, and changes only their units' figures --------------------------------

def refreshed(service, before, timeout=60):
    import time
    deadline = time.monotonic() + timeout
    while service.city() is before and time.monotonic() < deadline:
        service.wait_for_refresh(5)
        time.sleep(0.02)
    assert service.city() is not before, "no new generation"
    return service.city()


def sensor_reads(monkeypatch) -> list[bool]:
    """Each read of the sensors layer by a refresh: True when it read them all."""
    import layers.city as city_module

    reads, load_layer = [], city_module.load_layer

    def recorded(store, layer_id, *args, **kwargs):
        if layer_id == "sensors":
            reads.append(kwargs.get("where") is None)
        return load_layer(store, layer_id, *args, **kwargs)

    monkeypatch.setattr(city_module, "load_layer", recorded)
    return reads


def test_a_sensor_heard_from_changes_the_online_rates_of_its_units_only_equal_to_a_full_recompute(city_store,
                                                                                                   monkeypatch):
    """Two sensors silent for hours report (a reading each, within the hour before the sensors' newest record, so
    the sensors' clock stays): the refresh reads those two sensors, not all of them; the online rates that moved
    are those of the units above their cells, and every row equals a full recompute."""
    from dashboard.services import window_series, window_table
    from layers.ingest import Batch, BatchWriter, MEASURING_KINDS

    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    before = service.city()
    tables = {window: service.table(window).copy() for window in ("today", "7d")}
    for window in tables:
        service.series(window)
    sensors = before["sensors"]
    silent = sensors[(sensors["last_seen_at"] < before.sensors_as_of - pd.Timedelta(hours=3)).to_numpy()
                     & sensors["kind"].isin(MEASURING_KINDS).to_numpy()]
    assert len(silent) >= 2, "the sample has sensors that stopped reporting"
    heard = silent.drop_duplicates("grid_code").head(2)
    at = int((before.sensors_as_of - pd.Timedelta(minutes=10)).timestamp())
    BatchWriter(city_store, source="test").write(
        Batch(readings=[(s, at, 20.0) for s in heard["sensor_id"]], received=len(heard)))
    reads = sensor_reads(monkeypatch)
    after = refreshed(service, before)
    monkeypatch.undo()
    assert reads == [False]  # the sensors the batch reported on, not the city's
    assert after.sensors_as_of == before.sensors_as_of

    loaded = load_city(city_store)
    by_id = lambda frame: frame.set_index("sensor_id").sort_index()  # noqa: E731
    pd.testing.assert_frame_equal(by_id(after["sensors"]), by_id(loaded["sensors"]), check_like=True)
    assert list(after["sensors"]["sensor_id"]) == list(sensors["sensor_id"])  # the rows keep their places
    above = {code for cell in heard["grid_code"] for code in before.lineage(cell)}
    for window, table in tables.items():
        now = service.table(window)
        pd.testing.assert_frame_equal(now, window_table(loaded, window), check_like=True)
        pd.testing.assert_series_equal(service.series(window), window_series(loaded, window))
        rate = lambda t: t[t["indicator"] == "sensor_online_rate"].set_index("code")["value"]  # noqa: E731
        was = rate(table).reindex(rate(now).index)
        moved = rate(now)[(rate(now) != was) & ~(rate(now).isna() & was.isna())]
        assert set(moved.index) == above, window  # every unit above the two cells, and none other
        assert (moved > rate(table)[moved.index]).all()


def sensor_seen_outside_the_stream(store, sensor_id: str, at: int) -> None:
    """A sensor's last report written as an import writes it: an update and a version of its own, not numbered."""
    from sqlalchemy import select, text

    from layers.store import METADATA

    versions = METADATA.tables["layer_versions"]
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE sensors SET last_seen_at = :at WHERE sensor_id = :s"), {"at": at, "s": sensor_id})
        current = conn.execute(select(versions.c.version).where(versions.c.layer_id == "sensors")).scalar_one()
        conn.execute(versions.update().where(versions.c.layer_id == "sensors").values(version=current + 1))


def test_sensors_written_outside_the_stream_are_read_whole(city_store, monkeypatch):
    """A write the stream did not number (here an update and a version of its own, as an import makes): the next
    refresh cannot tell which sensors changed, so it reads them all, and equals a full recompute."""
    from dashboard.services import window_table
    from layers.ingest import Batch, BatchWriter

    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    before = service.city()
    service.table("today")
    sensors = before["sensors"]
    quiet = sensors[sensors["last_seen_at"] < before.sensors_as_of - pd.Timedelta(hours=3)]["sensor_id"].iloc[0]
    at = int((before.sensors_as_of - pd.Timedelta(minutes=5)).timestamp())
    sensor_seen_outside_the_stream(city_store, quiet, at)
    # ... and a numbered batch of the stream after it: the numbers account for one change of two.
    other = sensors[sensors["kind"] == "pm25"]["sensor_id"].iloc[0]
    BatchWriter(city_store, source="test").write(Batch(readings=[(other, at, 30.0)], received=1))
    reads = sensor_reads(monkeypatch)
    after = refreshed(service, before)
    monkeypatch.undo()
    assert reads == [True]
    loaded = load_city(city_store)
    by_id = lambda frame: frame.set_index("sensor_id").sort_index()  # noqa: E731
    pd.testing.assert_frame_equal(by_id(after["sensors"]), by_id(loaded["sensors"]), check_like=True)
    pd.testing.assert_frame_equal(service.table("today"), window_table(loaded, "today"), check_like=True)
    # From the mark this refresh took, the stream's next batch is read by its numbers again.
    later = service.city()
    BatchWriter(city_store, source="test").write(Batch(readings=[(quiet, at + 60, 31.0)], received=1))
    reads = sensor_reads(monkeypatch)
    refreshed(service, later)
    monkeypatch.undo()
    assert reads == [False]


# --- a batch of the stream reads the (sensor, hour) rows it touched ---------------------------------------------------

def assert_as_a_full_reload(service, store, windows=("today", "7d")) -> None:
    """The served city's readings, every window's table and sparklines equal those of the city loaded whole."""
    from dashboard.services import window_series, window_table

    loaded, served = load_city(store), service.city()
    by_key = lambda frame: frame.sort_values(["sensor_id", "ts"]).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(by_key(served["readings"]), by_key(loaded["readings"]), check_like=True)
    for window in windows:
        pd.testing.assert_frame_equal(service.table(window), window_table(loaded, window), check_like=True)
        pd.testing.assert_series_equal(service.series(window), window_series(loaded, window))


def test_the_streams_batches_read_the_hours_they_touched_and_equal_a_full_reload(city_store, monkeypatch):
    """Once a refresh has taken the readings' mark, each batch of the stream is read as the (sensor, hour) rows its
    readings fell in, whole: a sensor silent for hours that reports, a reading five hours late (further back than
    the last hours a read of the newest rows reaches), and then a batch that moves the sensors' clock into a new
    hour. After each batch, the readings and both windows' tables and sparklines equal a full reload's."""
    import layers.city as city_module
    from dashboard import services as services_module
    from layers.ingest import MEASURING_KINDS, Batch, BatchWriter

    def no_series_anew(*_args, **_kwargs):
        raise AssertionError("a sparkline was computed anew")

    step_values = services_module._step_values

    def only_judged_at_instants(city, named, count, ids):
        assert not [i for i in ids if INDICATORS[i].rows_add_up], "the readings' steps were computed anew"
        return step_values(city, named, count, ids)

    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    city = service.city()
    for window in ("today", "7d"):
        service.table(window)
        service.series(window)
    sensors = city["sensors"]
    measuring = sensors[sensors["kind"].isin(["pm25"]).to_numpy()]
    assert set(MEASURING_KINDS) >= {"pm25"}
    silent = measuring[(measuring["last_seen_at"] < city.sensors_as_of - pd.Timedelta(hours=3)).to_numpy()]
    online = measuring[(measuring["last_seen_at"] >= city.sensors_as_of).to_numpy()]["sensor_id"].tolist()
    assert len(silent) and len(online) >= 20, "the sample has PM2.5 monitors online and silent"
    now = int(city.sensors_as_of.timestamp())
    next_hour = (now // 3600 + 1) * 3600
    batches = [
        [(s, now - 600, 33.0) for s in online[:5]],  # read from the newest hours (no mark yet): takes the mark
        [(silent["sensor_id"].iloc[0], now - 300, 44.0), (online[5], now - 5 * 3600 - 120, 240.0)]
        + [(s, now - 200, 55.0) for s in online[6:10]],
        [(s, next_hour + 60, 66.0) for s in online[10:20]],  # the next hour: the city's clock moves into it
        [(s, next_hour + 180, 77.0) for s in online[:5]],  # the sensors' clock moves on within the hour
        [(s, next_hour + 300, 88.0) for s in online[5:10]],  # and again: the steps' sums follow the last ones
    ]
    arrived, read = [], city_module.hourly_readings_arrived
    monkeypatch.setattr(city_module, "hourly_readings_arrived",
                        lambda *args, **kwargs: arrived.append(args) or read(*args, **kwargs))
    writer = BatchWriter(city_store, source="test")
    for number, readings in enumerate(batches):
        before = service.city()
        writer.write(Batch(readings=readings, received=len(readings)))
        with monkeypatch.context() as patch:
            if number == len(batches) - 1:  # the sparklines' steps all moved: taken in step by step, not anew
                patch.setattr(services_module, "window_series", no_series_anew)
                patch.setattr(services_module.StepSums, "of", no_series_anew)
                patch.setattr(services_module, "_step_values", only_judged_at_instants)
            after = refreshed(service, before)
        assert len(arrived) == number  # every batch after the first is read by the hours it touched
        assert_as_a_full_reload(service, city_store)
    assert after.sensors_as_of.floor("h") > city.sensors_as_of.floor("h")
    assert after.sensors_as_of > after.as_of  # the last batch moved the sensors' clock, not the city's
    late = after["readings"].set_index(["sensor_id", "ts"])["value"]
    assert late[(online[5], pd.Timestamp(now - 5 * 3600 - 120, unit="s", tz="UTC").floor("h")
                 .tz_convert(city.as_of.tz))] > 100  # the late reading's hour took it in


def test_live_generations_come_at_the_pace_of_the_screens_polls():
    """In live mode the store's versions are compared (and a generation made) as often as the screens poll: a
    generation made more often is seen by none, yet every worker reads and draws it."""
    from dashboard import live
    from dashboard.settings import LIVE_VERSION_CHECK_SECONDS, Settings

    assert LIVE_VERSION_CHECK_SECONDS == live.POLL_SECONDS
    assert Settings.from_environ({"CITYTWIN_MODE": "live"}).version_check_seconds == live.POLL_SECONDS
    assert Settings.from_environ({"CITYTWIN_MODE": "live", "CITYTWIN_VERSION_CHECK_SECONDS": "1"}) \
        .version_check_seconds == 1.0


def test_the_early_warning_is_made_once_an_hour_not_at_every_live_generation(city_store):
    """components.wall_alerts.early_warning_key: the early warning reads the orders, the units and the clock's
    hours, so a generation whose clock moved within the hour keeps it, and the next hour makes it again."""
    from dashboard.components.wall_alerts import early_warning_facts, early_warning_key, unit_early_warning

    service = Services(city_store, settings=Settings(mode="live", version_check_seconds=0, clock_step_seconds=1))
    start = service.generation().city.as_of.floor("h") + pd.Timedelta(minutes=10)
    made = []

    def at(clock):
        service._now = lambda: clock
        service._gen = service._next_generation(service.generation(), with_clock(service.city(), clock))
        city = service.city()
        return service.memo(early_warning_key(city), lambda: made.append(clock) or early_warning_facts(city))

    first = at(start)
    assert at(start + pd.Timedelta(minutes=20)) is first and made == [start]
    assert at(start + pd.Timedelta(hours=1)) is not first and made == [start, start + pd.Timedelta(hours=1)]
    assert unit_early_warning(service, service.city().units.index[0], "city") is not None  # the page's own use


def test_what_requests_remember_while_a_refresh_runs_is_carried_like_the_rest(city_store):
    """A memo made on the old generation after the refresh copied its memos (a slow one under load) goes to the new
    generation at the swap when its layers did not change; one computed from the clock does not."""
    service = Services(city_store, settings=Settings(mode="live", version_check_seconds=0, clock_step_seconds=1))
    old = service.generation()
    new = service._next_generation(old, with_clock(old.city, old.city.as_of + pd.Timedelta(seconds=2)))
    old.memo[("district_forecast", "an hour")] = "made late"
    old.memo["of the clock"] = "not carried"
    new.memo[("wall_early_warning", "an hour")] = "made by the refresh"
    old.memo[("wall_early_warning", "an hour")] = "made late too"
    Services._carry_late_memos(old, new)
    assert new.memo[("district_forecast", "an hour")] == "made late" and "of the clock" not in new.memo
    assert new.memo[("wall_early_warning", "an hour")] == "made by the refresh"


def test_the_alert_rules_early_warning_of_orders_is_not_made_again_for_a_generation_of_the_stream(city_store,
                                                                                                monkeypatch):
    import threading

    from metrics import alert_runner, early_warning

    # Counted in this thread only: an app an earlier test started in this process keeps its alerts thread, which
    # evaluates its own city's rules (and calls order_anomalies) every few seconds.
    made, here = [], threading.get_ident()
    order_anomalies = early_warning.order_anomalies
    monkeypatch.setattr(early_warning, "order_anomalies",
                        lambda *a, **k: (threading.get_ident() == here and made.append(1)) or order_anomalies(*a, **k))
    monkeypatch.setattr(alert_runner, "_anomaly_memo", {})
    service = Services(city_store, settings=Settings(mode="live", version_check_seconds=0, clock_step_seconds=1))
    first = service.generation().city
    now = first.as_of
    rows = alert_runner.last_hour_anomalies(first, "orders", "district", now)
    # A batch of the stream: a new city with new readings and sensors (another layers dict, other versions: the
    # stream moves both with every batch), the same orders.
    second = copy.copy(first)
    second.layers = {**first.layers, "readings": first.layers["readings"].copy(),
                     "sensors": first.layers["sensors"].copy()}
    second.versions = {**first.versions, "readings": first.versions["readings"] + 1,
                       "sensors": first.versions["sensors"] + 1}
    assert alert_runner.last_hour_anomalies(second, "orders", "district", now) is rows
    assert len(made) == 1
    acted = copy.copy(second)  # an action on an order: the orders read again, at a new version
    acted.layers = {**second.layers, "orders": second.layers["orders"].copy()}
    acted.versions = {**second.versions, "orders": second.versions["orders"] + 1}
    alert_runner.last_hour_anomalies(acted, "orders", "district", now)
    assert len(made) == 2


def test_a_memo_of_network_keys_keeps_the_most_recently_asked_and_no_unknowns():
    """services.Kept: bounded however many keys are asked; what screens keep asking for stays (the least recently
    asked goes first); an unknown id (None) is not kept."""
    from dashboard.services import Kept

    memo = Kept(limit=3)
    made = []

    def make(key):
        return lambda: made.append(key) or f"value of {key}"

    for key in ("a", "b", "c"):
        memo.get(key, make(key))
    memo.get("a", make("a"))  # asked again: now the most recent
    memo.get("d", make("d"))  # the fourth: "b", the least recently asked, goes
    assert made == ["a", "b", "c", "d"] and len(memo) == 3 and "b" not in memo and "a" in memo
    assert memo.get("nobody", lambda: None) is None and "nobody" not in memo


def test_the_maps_memos_per_unit_are_bounded(city_store, monkeypatch):
    """A unit's buildings, outlines, tile index and colours are kept per unit code across generations: a client
    walking every unit keeps at most MAX_UNIT_VIEWS of each."""
    from dashboard.maps import routes

    monkeypatch.setattr(services_module, "MAX_UNIT_VIEWS", 3)
    service = Services(city_store, settings=Settings(version_check_seconds=0))
    gen = service.generation()
    communities = gen.city.units.index[gen.city.units["level"] == "community"][:5]
    assert len(communities) == 5
    for code in communities:
        routes.unit_footprints(gen, code)
        routes.tile_index(gen, code)
        routes.tile_properties(gen, "use", "on_time_rate", "7d", scope=code)
    for name in ("building_scope_rows", "unit_footprints", "scoped_building_tiles", "scoped_building_properties:use"):
        assert len(gen.memo[name]) == 3, name


def test_the_warm_up_forgets_the_facts_its_windows_shared(city_store):
    """After the warm-up (app.warm_in_background: before several workers are forked) the city's memo no longer
    holds the orders' facts of every window and sparkline step (0.5 GB at the city scale); a window computed again
    afterwards finds them anew and equals the warm one."""
    from app import warm_in_background
    from dashboard.services import window_table
    from tests.conftest import serving

    service = Services(city_store, settings=Settings(version_check_seconds=0))
    service.warm()
    with serving(service):
        warm_in_background(service)
    city = service.city()
    assert not [key for key in city.memo if key[0] == "order_facts"]
    pd.testing.assert_frame_equal(window_table(city, "30d"), service.table("30d"))
    assert [key for key in city.memo if key[0] == "order_facts"]  # found anew for the window computed again


def pm25_batch(store, city, minutes_before: int = 30) -> None:
    """A reading from every PM2.5 monitor, written as the ingest writes them."""
    pm25 = city["sensors"].query("kind == 'pm25'")["sensor_id"].tolist()
    at = int((city.sensors_as_of - pd.Timedelta(minutes=minutes_before)).timestamp())
    write_readings(store, [dict(sensor_id=s, ts=at, value=400.0) for s in pm25])


def test_a_window_nobody_asks_for_is_no_longer_followed_and_is_made_again_when_asked(city_store):
    """A live refresh brings up to date the default window and the windows asked for within
    ``window_idle_minutes``; one idle longer is dropped (its table, sums and sparklines), and the next request for it
    computes it again, equal to a full reload."""
    service = Services(city_store, settings=Settings(version_check_seconds=0.01, window_idle_minutes=1))
    city = service.city()
    for window in ("today", "7d", "30d"):
        service.table(window)
        service.series(window)
    asked = service.generation().window_asked
    asked["30d"] -= 61  # last asked a minute and a second ago
    asked["7d"] -= 3600  # the default window is followed however long ago it was asked
    pm25_batch(city_store, city)
    refreshed(service, city)
    gen = service.generation()
    assert set(gen.tables) == set(gen.series) == {"today", "7d"} and "30d" not in gen.sums
    assert_as_a_full_reload(service, city_store, windows=("today", "7d", "30d"))
    assert "30d" in service.generation().tables  # asked again: kept again


def test_a_window_asked_by_many_at_once_is_computed_once(city_store, monkeypatch):
    """Eight requests for a window not computed yet (at the city scale seconds of work): the first computes it, the
    others wait for it and get the same table."""
    import contextlib
    import threading

    service = Services(city_store, settings=Settings(version_check_seconds=0))
    service.city()
    calls, release, entered = [], threading.Event(), threading.Condition()
    window_table = services_module.window_table

    def held(city, window, sums=None):
        with entered:
            calls.append(window)
            entered.notify_all()
        release.wait(60)
        return window_table(city, window, sums)

    monkeypatch.setattr(services_module, "window_table", held)
    computing, arrived, tables = services_module._computing, [], service.generation().tables

    @contextlib.contextmanager
    def counted(memo, key):
        with entered:
            arrived.append(memo is tables and key == "30d")
            entered.notify_all()
        with computing(memo, key):
            yield

    monkeypatch.setattr(services_module, "_computing", counted)
    answers = []
    askers = [threading.Thread(target=lambda: answers.append(service.table("30d"))) for _ in range(8)]
    for asker in askers:
        asker.start()
    with entered:  # until all eight are in: one computing, seven waiting for it
        assert entered.wait_for(lambda: sum(arrived) == 8 and len(calls) == 1, timeout=60)
    release.set()
    for asker in askers:
        asker.join(60)
    assert calls == ["30d"] and len(answers) == 8 and all(a is answers[0] for a in answers)
    assert not services_module._FLIGHTS  # nothing left behind


def test_a_window_first_asked_while_a_refresh_runs_is_followed_into_the_new_generation(city_store, monkeypatch):
    """A request computes "30 days" on the old generation while the refresh is making the new one: the refresh
    follows it too, rather than leaving the next request to compute it whole again."""
    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    city = service.city()
    service.table("7d")
    follow_table = Services._follow_table

    def follow_while_a_request_asks(old, new, window, affected):
        if "30d" not in old.tables:
            Services.table_of(old, "30d")  # a request, meanwhile, on the generation it is served
        follow_table(old, new, window, affected)

    monkeypatch.setattr(Services, "_follow_table", staticmethod(follow_while_a_request_asks))
    pm25_batch(city_store, city)
    refreshed(service, city)
    assert "30d" in service.generation().tables and "30d" in service.generation().sums  # followed, not asked
    monkeypatch.undo()
    from dashboard.services import window_table
    pd.testing.assert_frame_equal(service.table("30d"), window_table(load_city(city_store), "30d"), check_like=True)


def test_several_workers_are_forked_with_the_default_window_only(city_store):
    """Before gunicorn forks (create_app's warm_now), the default window is computed, not today and 30 days: the
    workers would share them only until their first live refresh and then follow them for good, asked or not."""
    from app import create_app
    from dashboard import services as services_module

    create_app(city_store.url, jobs=False, warm_now=True, settings=Settings(mode="live", snapshots=False))
    gen = services_module.get().generation()
    assert set(gen.tables) == set(gen.series) == {"7d"}


def test_the_generation_is_handed_out_without_the_lock_between_checks(city_store):
    """Between two version checks a request takes the generation without waiting for the services' lock: a thread
    that held it and lost the interpreter made every request of a 24-thread worker wait behind it."""
    import threading

    service = Services(city_store, settings=Settings(version_check_seconds=3600))
    gen = service.generation()
    got = []
    with service._lock:  # held, as by a thread swapping a generation in
        asker = threading.Thread(target=lambda: got.append(service.generation()), daemon=True)
        asker.start()
        asker.join(30)
        assert got == [gen], "the request waited for the lock"


def test_a_live_refresh_makes_the_sensors_states_the_maps_ask_for(city_store):
    """The map's sensors of a new generation are made by the refresh, before the swap, when the old generation's
    were asked for: not by the first requests after it, each of whose threads waited on them."""
    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    city = service.city()
    service.table("7d")
    service.sensor_states()
    pm25_batch(city_store, city)
    refreshed(service, city)
    made = service.generation().memo.get("sensor_states")
    assert made is not None
    from dashboard.maps.sources import sensor_states
    pd.testing.assert_frame_equal(made, sensor_states(service.city()))


def test_a_window_whose_first_computation_outlasted_the_refresh_is_computed_by_the_next(city_store):
    """At the city scale a window takes seconds and the stream makes a generation every 2 s: a request computing
    "30 days" on a generation swapped out meanwhile leaves it in that generation only. The next refresh computes it
    (in the background) for its generation, where later requests find it and later refreshes follow it."""
    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    city = service.city()
    service.table("7d")
    old = service.generation()
    pm25_batch(city_store, city)
    refreshed(service, city)
    Services.table_of(old, "30d")  # a request on the generation it started with, done after the swap
    assert "30d" not in service.generation().tables
    pm25_batch(city_store, service.city(), minutes_before=20)
    refreshed(service, service.city())
    assert "30d" in service.generation().tables and "30d" in service.generation().series
    from dashboard.services import window_series, window_table
    loaded = load_city(city_store)
    pd.testing.assert_frame_equal(service.generation().tables["30d"], window_table(loaded, "30d"), check_like=True)
    pd.testing.assert_series_equal(service.generation().series["30d"], window_series(loaded, "30d"))


def test_a_live_refresh_hands_the_freed_heap_back_after_the_swap(city_store, monkeypatch):
    """Each generation frees what the one before held; glibc kept those pages (1 GB of 5.4 in a 50-user run):
    the refresh hands them back once the new generation is in."""
    trims = []
    service = Services(city_store, settings=Settings(version_check_seconds=0.01))
    city = service.city()
    service.table("7d")
    monkeypatch.setattr(services_module, "give_back_free_memory",
                        lambda: trims.append(service.generation().city is not city))
    pm25_batch(city_store, city)
    refreshed(service, city)
    service.wait_for_refresh(30)
    assert trims and trims[0], "not handed back, or before the swap"
