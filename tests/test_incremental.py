"""New orders added to a live table give the same table as a full recompute with them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dataclasses import replace

from layers.city import load_city
from layers.store import Store
from metrics.engine import compute
from metrics.incremental import LiveTable
from metrics.spec import Window, named_window
from sample_data.__main__ import build


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('live') / 'city.sqlite'}"
    build("test", url, seed=11, progress=False)
    return load_city(Store(url))


@pytest.mark.parametrize("derived", [False, True], ids=["loaded", "read-with-derived-columns"])
def test_adding_orders_equals_recomputing(full, derived):
    orders = full["orders"].sort_values("received_at").reset_index(drop=True)
    # The last 300 orders arrive after the table was made.
    old, new = orders.iloc[:-300], orders.iloc[-300:]
    window = named_window("7d", full.as_of)
    # derived: the table's city skipped deriving (a snapshot's, which keeps the derived columns); the new orders
    # still arrive as the store has them, without a grid position or category, and the table places them itself.
    live = LiveTable(replace(full, layers={**full.layers, "orders": old.reset_index(drop=True)}, memo={},
                             derived=derived), window)
    live.add_orders(new.drop(columns=["grid_index", "category"]))
    expected = compute(full, window).set_index(["indicator", "code"]).sort_index()
    got = live.table().set_index(["indicator", "code"]).sort_index()
    assert live.added == 300
    pd.testing.assert_index_equal(got.index, expected.index)
    np.testing.assert_allclose(got["value"].to_numpy(float), expected["value"].to_numpy(float), rtol=1e-9,
                               equal_nan=True)
    assert (got["state"] == expected["state"]).all()


# --- readings: the sums of a window follow a live stream by the rows that changed ------------------------------------

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layers.city import City, _sorted
from metrics.engine import compare
from metrics.incremental import WindowSums, rows_from
from metrics.registry import INDICATORS

ROWS_ADD_UP = WindowSums.indicators("readings")


def test_the_readings_indicators_are_the_ones_whose_rows_add_up():
    assert {"pm25_mean", "pm25_exceedance_hours", "noise_mean", "night_noise_hours", "water_level_high_hours",
            "traffic_flow_mean"} == set(ROWS_ADD_UP)
    assert not {"sensor_online_rate", "active_alarms"} & set(ROWS_ADD_UP)  # judged at an instant, not by rows


def at_clock(city: City, readings: pd.DataFrame, clock: pd.Timestamp, since=None, in_time_order=False) -> City:
    """``city`` with ``readings`` (derived columns already there) shown at ``clock``; ``since``: the instant from
    which its readings were read again (None: the same rows as ``city``); ``in_time_order``: the readings sorted by
    their instant, as a live refresh keeps them (the sums then find their rows by binary searches); else by
    sensor, as the store gives them (the sums then compare every row's instant)."""
    if in_time_order:
        readings = readings.sort_values("ts", kind="stable", ignore_index=True)
    elif _sorted(readings["ts"]):  # the city loaded keeps them in time order (layers.city.TIME_ORDERED)
        readings = readings.sort_values(["sensor_id", "ts"], kind="stable", ignore_index=True)
    return City(units=city.units, hierarchy=city.hierarchy, layers=dict(city.layers, readings=readings),
                versions=city.versions, derived=True, clock=clock,
                read_again_since={} if since is None else {"readings": since})


def assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = got.set_index(["indicator", "code"]).sort_index()
    expected = expected.set_index(["indicator", "code"]).sort_index()
    pd.testing.assert_index_equal(got.index, expected.index)
    for column in ("value", "numerator", "denominator", "previous", "change"):
        np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float), rtol=1e-9,
                                   atol=1e-9, equal_nan=True, err_msg=column)
    assert (got["state"] == expected["state"]).all()


# One step of the stream: how far the clock moves on (minutes: within the hour, across hours, across midnight), how
# many hours before the newest reading the refresh reads again, and a seed for what it finds there.
STEPS = st.lists(st.tuples(st.integers(0, 9 * 60), st.integers(0, 3), st.integers(0, 2**31 - 1)),
                 min_size=1, max_size=4)


@pytest.mark.parametrize("in_time_order", [False, True], ids=["rows as loaded", "rows in time order"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, window_name=st.sampled_from(["today", "7d", "30d"]))
def test_readings_sums_following_the_stream_equal_a_full_recompute(full, in_time_order, steps, window_name):
    """The stream replaces the hourly means of its newest hours, adds new hours and the clock moves on (the
    window slides: hours enter it and leave it): the sums brought up to date by the changed rows alone give the
    table a full recompute gives, batch after batch — whether the rows are found by comparing every instant or,
    in a layer kept in time order, by binary searches."""
    readings = full["readings"]  # the test city's two days of hourly readings
    clock = readings["ts"].max() - pd.Timedelta(hours=24)  # the last day of the sample is still to come
    city = at_clock(full, readings[(readings["ts"] <= clock).to_numpy()].reset_index(drop=True), clock,
                    in_time_order=in_time_order)
    assert city.in_time_order("readings") == in_time_order
    sums = WindowSums.of(city, window_name)
    for minutes, hours_back, seed in steps:
        rng = np.random.default_rng(seed)
        clock = clock + pd.Timedelta(minutes=minutes)
        since = (city["readings"]["ts"].max() - pd.Timedelta(hours=hours_back)).floor("h")
        old = city["readings"]
        kept = old[(old["ts"] < since).to_numpy()]
        # What the store holds from ``since`` on: the sample's hours up to the clock, their means changed by the
        # stream's new readings, and some hours gone (a sensor's backlog folded elsewhere).
        found = readings[((readings["ts"] >= since) & (readings["ts"] <= clock)).to_numpy()]
        found = found[rng.random(len(found)) > 0.1].assign(value=lambda f: f["value"] * rng.uniform(0.5, 2.0, len(f)))
        new_city = at_clock(city, pd.concat([kept, found], ignore_index=True), clock, since=since,
                            in_time_order=in_time_order)
        assert len(found) or minutes == 0 or clock > readings["ts"].max()  # the stream brings rows in
        sums = sums.following(city, new_city)
        window = named_window(window_name, clock)
        assert sums.window == window
        assert_same_rows(sums.table(new_city), compare(new_city, window, list(ROWS_ADD_UP)))
        city = new_city


def test_only_the_clock_moving_slides_the_sums_too(full):
    readings = full["readings"]
    clock = readings["ts"].max() - pd.Timedelta(hours=30)
    city = at_clock(full, readings, clock)
    sums = WindowSums.of(city, "today")
    later = at_clock(city, city["readings"], clock + pd.Timedelta(hours=9))  # past midnight: a new "today"
    assert later["readings"] is city["readings"]
    moved = sums.following(city, later)
    assert_same_rows(moved.table(later), compare(later, named_window("today", later.as_of), list(ROWS_ADD_UP)))
    assert sums.following(city, at_clock(city, city["readings"], clock)) is sums  # nothing moved: nothing to do


def test_a_city_loaded_whole_gets_its_sums_computed_again(full):
    readings = full["readings"]
    clock = readings["ts"].max()
    city = at_clock(full, readings.iloc[: len(readings) // 2].reset_index(drop=True), clock)
    reloaded = at_clock(full, readings, clock)  # other rows, and no word of which were read again
    sums = WindowSums.of(city, "7d").following(city, reloaded)
    assert_same_rows(sums.table(reloaded), compare(reloaded, named_window("7d", clock), list(ROWS_ADD_UP)))


@pytest.mark.parametrize("in_time_order", [False, True], ids=["rows as loaded", "rows in time order"])
@pytest.mark.parametrize("hours", [1, 5, 30])
def test_recent_rows_alone_give_a_recent_windows_figures(full, hours, in_time_order):
    """A sparkline's newest steps are computed on the rows of their own hours (rows_from): the same figures."""
    city = at_clock(full, full["readings"], full.as_of, in_time_order=in_time_order) if in_time_order else full
    start = city["readings"]["ts"].max() - pd.Timedelta(hours=hours)
    ids = ["pm25_mean", "pm25_exceedance_hours", "sensor_online_rate", "active_alarms"]
    recent = rows_from(city, start, ids)
    assert 0 < len(recent["readings"]) < len(city["readings"])
    assert recent["sensors"] is city["sensors"] and recent["alarms"] is city["alarms"]  # read at an instant
    window = Window(start + pd.Timedelta(minutes=30), city.as_of + pd.Timedelta(hours=1))
    got, expected = compute(recent, window, ids), compute(full, window, ids)
    pd.testing.assert_frame_equal(got, expected)


@settings(max_examples=40, deadline=None)
@given(bounds=st.lists(st.integers(-60, 60), min_size=5, max_size=5), since=st.one_of(st.none(), st.integers(-60, 60)))
def test_rows_found_by_binary_search_are_the_rows_the_comparisons_find(full, bounds, since):
    """In a layer kept in time order, the rows that entered or left a window, or were read again within either,
    are found between the windows' bounds (hours around the readings' last day, windows possibly empty)."""
    from layers.city import time_slice
    from metrics.incremental import _touched_in_time_order

    city = at_clock(full, full["readings"], full["readings"]["ts"].max(), in_time_order=True)
    origin = city["readings"]["ts"].max() - pd.Timedelta(hours=24)
    at = [origin + pd.Timedelta(minutes=30 * b) for b in bounds]
    old, new = Window(min(at[0], at[1]), max(at[0], at[1])), Window(min(at[2], at[3]), max(at[2], at[3]))
    read_since = None if since is None else origin + pd.Timedelta(minutes=30 * since + 7)
    times = city["readings"]["ts"]
    before, after = old.contains(times).to_numpy(), new.contains(times).to_numpy()
    expected = before != after
    if read_since is not None:
        expected |= (times >= read_since).to_numpy() & (before | after)
    np.testing.assert_array_equal(_touched_in_time_order(city, "readings", old, new, read_since),
                                  np.flatnonzero(expected))
    rows = time_slice(city, "readings", at[4], None)
    assert rows.start == int((times < at[4]).sum()) and rows.stop == len(times)


@pytest.mark.parametrize("in_time_order", [False, True], ids=["rows as loaded", "rows in time order"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, window_name=st.sampled_from(["today", "7d"]))
def test_sparkline_step_sums_following_the_stream_equal_a_full_recompute(full, in_time_order, steps, window_name):
    """A sparkline's steps keep their readings' sums (StepSums) and follow the stream as the tables' sums do: as the
    clock moves every step's bounds move (today's hours stretch, and a new hour or a new day changes their number),
    rows come late and new ones come in; every step equals its own computation over every row."""
    from metrics.engine import series, sparkline_steps
    from metrics.incremental import StepSums

    readings = full["readings"]
    clock = readings["ts"].max() - pd.Timedelta(hours=24)
    city = at_clock(full, readings[(readings["ts"] <= clock).to_numpy()].reset_index(drop=True), clock,
                    in_time_order=in_time_order)
    sums = StepSums.of(city, window_name, ["pm25_mean", "pm25_exceedance_hours", "noise_mean", "night_noise_hours"])
    for minutes, hours_back, seed in steps:
        rng = np.random.default_rng(seed)
        clock = clock + pd.Timedelta(minutes=minutes)
        since = (city["readings"]["ts"].max() - pd.Timedelta(hours=hours_back)).floor("h")
        old = city["readings"]
        found = readings[((readings["ts"] >= since) & (readings["ts"] <= clock)).to_numpy()]
        found = found.assign(value=lambda f: f["value"] * rng.uniform(0.5, 2.0, len(f)))
        new_city = at_clock(city, pd.concat([old[(old["ts"] < since).to_numpy()], found], ignore_index=True), clock,
                            since=since, in_time_order=in_time_order)
        sums = sums.following(city, new_city)
        named = named_window(window_name, clock)
        count = sparkline_steps(named)
        assert sums.window == named and len(sums.windows) == count
        codes, got = sums.values(new_city)
        expected = series(new_city, named, list(sums.ids), count).set_index(["step", "indicator", "code"])["value"]
        wanted = pd.MultiIndex.from_product([range(count), sums.ids, codes], names=["step", "indicator", "code"])
        np.testing.assert_allclose(got.ravel(), expected.reindex(wanted).to_numpy(float), rtol=1e-9, atol=1e-9,
                                   equal_nan=True)
        city = new_city
