"""Roll-ups are right on random cities (hypothesis): counts add up from grid to city, rates and means are recomputed
from numerators and denominators at every level, and a unit with nothing to measure has no data, not 0."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layers.city import City, build_hierarchy
from layers.specs import CITY_TIMEZONE, LEVELS
from metrics.engine import compute
from metrics.registry import INDICATORS
from metrics.spec import Window

START = pd.Timestamp("2026-11-01", tz=CITY_TIMEZONE)
WINDOW = Window(START + pd.Timedelta(days=3), START + pd.Timedelta(days=10), "random")


@st.composite
def random_cities(draw) -> City:
    """A random hierarchy (1–3 children per unit) with random orders, sensors, readings and alarms."""
    rows = [("C", "city", None)]
    for level_index, level in enumerate(LEVELS[1:], start=1):
        parents = [code for code, lvl, _ in rows if lvl == LEVELS[level_index - 1]]
        for parent in parents:
            for k in range(draw(st.integers(1, 3))):
                rows.append((f"{parent}.{k}", level, parent))
    units = pd.DataFrame(rows, columns=["code", "level", "parent_code"])
    units["name"] = units["name_zh"] = units["code"]
    grids = units.loc[units["level"] == "grid", "code"].to_numpy()
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def hours(values):
        return pd.to_timedelta(values, unit="h")

    n = draw(st.integers(0, 80))
    received = START + hours(rng.uniform(0, 240, n))
    handled = pd.Series(received + hours(rng.exponential(30, n))).where(rng.random(n) < 0.8)
    evaluated = (handled + hours(rng.exponential(10, n))).where(rng.random(n) < 0.7)
    orders = pd.DataFrame({
        "order_id": [f"O{i}" for i in range(n)],
        # a few orders fall in no known cell: they must count nowhere, not break the roll-up
        "grid_code": np.where(rng.random(n) < 0.05, "nowhere", rng.choice(grids, n)),
        "received_at": received,
        "dispatched_at": pd.Series(received + hours(rng.exponential(10, n))),
        "handled_at": handled,
        "evaluated_at": evaluated,
        "deadline_at": received + hours(rng.choice([24, 72], n)),
        "satisfied": pd.array(np.where(evaluated.notna(), rng.random(n) < 0.9, None), dtype="boolean"),
        "reopen_count": rng.integers(0, 2, n),
    })
    m = draw(st.integers(0, 12))
    sensors = pd.DataFrame({
        "sensor_id": [f"S{i}" for i in range(m)],
        "kind": rng.choice(["pm25", "noise", "smoke"], m),
        "grid_code": rng.choice(grids, m),
        "installed_at": START + hours(rng.uniform(0, 300, m)),
        "last_seen_at": START + hours(rng.uniform(150, 240, m)),
    })
    ts = START + hours(np.arange(0, 240, 6))
    readings = pd.DataFrame([(s, t, rng.gamma(2.0, 25.0)) for s in sensors["sensor_id"] for t in ts],
                            columns=["sensor_id", "ts", "value"])
    k = draw(st.integers(0, 10)) if m else 0
    raised = START + hours(rng.uniform(0, 240, k))
    alarms = pd.DataFrame({
        "alarm_id": [f"A{i}" for i in range(k)],
        "sensor_id": rng.choice(sensors["sensor_id"].to_numpy(), k) if m else [],
        "raised_at": raised,
        "cleared_at": pd.Series(raised + hours(rng.exponential(20, k))).where(rng.random(k) < 0.6),
    })
    return City(units=units.set_index("code", drop=False), hierarchy=build_hierarchy(units),
                layers={"orders": orders, "sensors": sensors, "readings": readings, "alarms": alarms})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(city=random_cities())
def test_roll_ups_are_sums_of_children_and_rates_are_recomputed(city):
    table = compute(city, WINDOW).set_index(["indicator", "code"])
    parent_of = city.units["parent_code"]
    for indicator_id, indicator in INDICATORS.items():
        rows = table.loc[indicator_id]
        children = rows.assign(parent=parent_of.reindex(rows.index).to_numpy()).dropna(subset=["parent"])
        sums = children.groupby("parent")[["numerator", "denominator"]].sum()
        parents = rows.loc[sums.index]
        # Numerators and denominators add up exactly from every level to the one above.
        np.testing.assert_allclose(parents["numerator"], sums["numerator"], rtol=1e-9, atol=1e-9,
                                   err_msg=indicator_id)
        np.testing.assert_allclose(parents["denominator"], sums["denominator"], rtol=1e-9, atol=1e-9,
                                   err_msg=indicator_id)
        values = rows["value"].to_numpy(dtype=float)
        if indicator.aggregation == "count":
            # An additive indicator: the parent's value is the sum of its children's (where it has data).
            child_values = children.groupby("parent")["value"].sum(min_count=1)
            has_data = ~np.isnan(parents["value"].to_numpy(dtype=float))
            np.testing.assert_allclose(parents["value"].to_numpy(dtype=float)[has_data],
                                       child_values.reindex(parents.index).to_numpy(dtype=float)[has_data],
                                       rtol=1e-9, err_msg=indicator_id)
        else:
            # A rate or mean is recomputed from its own numerator and denominator, and is no data without one.
            scale = 100.0 if indicator.aggregation == "rate" else 1.0
            denominator = rows["denominator"].to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                expected = np.where(denominator > 0, scale * rows["numerator"].to_numpy(dtype=float) / denominator,
                                    np.nan)
            np.testing.assert_allclose(values, expected, rtol=1e-9, equal_nan=True, err_msg=indicator_id)
            assert (rows.loc[denominator == 0, "state"] == "no_data").all(), indicator_id


@settings(max_examples=30, deadline=None)
@given(city=random_cities())
def test_the_city_counts_every_placed_order_once(city):
    orders = city["orders"]
    placed = orders["grid_code"].isin(city.hierarchy["grid"])
    received = WINDOW.contains(orders["received_at"])
    table = compute(city, WINDOW, ["order_volume"], levels=("city",))
    assert table["value"].iloc[0] == (placed & received).sum() or (len(orders) == 0 and table["value"].isna().all())
