"""The year sample (sample_data.year): 37 million orders a year cut into months with seasons, generated month by
month into history partitions. Checked on the test scale's city with a small share of the orders (the city-scale
year is bench/year.py's)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layers.city import City, build_hierarchy
from layers.history import History
from metrics import distributed
from metrics.spec import named_window
from sample_data import generator as g
from sample_data.year import ORDERS_PER_YEAR, SEASON, orders_per_day, write_year, year_segments

END = pd.Timestamp("2026-11-20 16:00", tz="Asia/Shanghai")


def test_a_year_is_twelve_months_of_37_million_orders_with_seasons():
    segments = year_segments(END)
    assert segments[0][1] == END - pd.DateOffset(years=1) and segments[-1][2] == END
    assert [m for m, _s, _e in segments][:2] == ["2025-11", "2025-12"] and segments[-1][0] == "2026-11"
    rates = orders_per_day(END)
    days = {m: (e - s) / pd.Timedelta(days=1) for m, s, e in segments}
    assert sum(rates[m] * days[m] for m in rates) == pytest.approx(ORDERS_PER_YEAR)
    assert rates["2026-02"] / rates["2026-07"] == pytest.approx(SEASON[2] / SEASON[7])
    assert 95_000 < np.mean(list(rates.values())) < 107_000  # Shenzhen's ~100,000 a day


@pytest.fixture(scope="module")
def static():
    rng = np.random.default_rng(20231)
    scale = g.SCALES["test"]
    units = g.build_units(scale, rng)
    buildings = g.build_buildings(units, scale, rng)
    sensors = g.build_sensors(units, buildings, scale, rng, END)
    event_types, channels = g.build_reference()
    return {"units": units, "buildings": buildings, "sensors": sensors, "event_types": event_types,
            "channels": channels}


def test_months_are_written_one_by_one_with_what_happened_after_them(static, tmp_path):
    history = History(tmp_path / "year")
    figures = write_year(history, static, seed=1, end=END, fraction=0.0005, months=3)
    assert list(figures) == ["2026-09", "2026-10", "2026-11"]
    september = history.partitions("orders")[0].read()
    assert len(september) == figures["2026-09"]["orders"]
    expected = orders_per_day(END, 0.0005)["2026-09"] * 30
    drawn = len(september) - figures["2026-09"]["planted"]  # the recurring hotspots come on top
    assert abs(drawn - expected) < 5 * np.sqrt(expected) + 0.06 * expected
    month_end = pd.Timestamp("2026-10-01", tz="Asia/Shanghai")
    assert september["received_at"].between(month_end - pd.DateOffset(months=1), month_end,
                                            inclusive="left").all()
    # The year goes on after September: its last orders were handled in October, and none is left open for ever.
    assert (september["handled_at"] >= month_end).any()
    assert september["handled_at"].notna().mean() > 0.99
    weekday = september["received_at"].dt.day_of_week
    assert (weekday < 5).sum() / 21 > (weekday >= 5).sum() / 9  # weekdays busier than weekends (Sep 2026)
    alarms = history.read("alarms", months=["2026-09", "2026-10"])
    assert alarms["cleared_at"].notna().all() and alarms["alarm_id"].is_unique
    assert history.as_of == END


def test_the_dask_engine_reads_the_year_files(static, tmp_path):
    history = History(tmp_path / "year")
    write_year(history, static, seed=1, end=END, fraction=0.0002, months=2, readings=False)
    units = static["units"].set_index("code", drop=False)
    city = City(units=units, hierarchy=build_hierarchy(units),
                layers={k: v.copy() for k, v in static.items() if k != "units"})
    table = distributed.compute(history, named_window("12m", END), city, ["order_volume"], ["city"])
    assert table["value"].iloc[0] == sum(len(p.read(["order_id"])) for p in history.partitions("orders"))
