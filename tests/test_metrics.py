"""Tests for the metrics: every indicator of the registry against values worked out by hand on a tiny city.

The fixture city has no database behind it: a hand-made unit hierarchy and a handful of hand-written orders,
sensors, alarms and readings, each chosen to exercise one rule of an indicator (on time, late, open and overdue,
evaluated after the window, dispatched after 24 hours, sensor not yet installed, …). Every expected figure below is
written out with its arithmetic, so a failing test says which rule broke.

The hierarchy::

    C (city)
    ├── D1 (district) ── S1 (street) ── M1 (community) ── G1, G2 (grid cells)
    └── D2 (district) ── S2 (street) ── M2 (community) ── G3 (grid cell)

The window under test, ``W``, runs from Monday 2026-11-16 00:00 to Friday 2026-11-20 12:00 (Asia/Shanghai);
the window before it, ``W.previous()``, from Wednesday 2026-11-11 12:00 to Monday 2026-11-16 00:00.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from layers.city import City, build_hierarchy
from layers.specs import ALL_LEVELS, CITY_TIMEZONE, LAYERS, LEVELS
from metrics.engine import COLUMNS, compare, compute
from metrics.registry import INDICATORS, TOPICS
from metrics.spec import NO_DATA, Contributions, Step, Thresholds, Window, named_window
from metrics.workdays import HOLIDAYS, working_days_between

NaT = pd.NaT


def t(text: str) -> pd.Timestamp:
    """A local (Asia/Shanghai) instant."""
    return pd.Timestamp(text, tz=CITY_TIMEZONE)


W = Window(t("2026-11-16 00:00"), t("2026-11-20 12:00"), "w")
PREVIOUS = Window(t("2026-11-11 12:00"), t("2026-11-16 00:00"), "before w")

# --- the tiny city ----------------------------------------------------------------------------------------------

UNITS = pd.DataFrame(
    [
        ("C", "city", None),
        ("D1", "district", "C"),
        ("D2", "district", "C"),
        ("S1", "street", "D1"),
        ("S2", "street", "D2"),
        ("M1", "community", "S1"),
        ("M2", "community", "S2"),
        ("G1", "grid", "M1"),
        ("G2", "grid", "M1"),
        ("G3", "grid", "M2"),
    ],
    columns=["code", "level", "parent_code"],
)

_ORDER_COLUMNS = ["order_id", "grid_code", "received_at", "dispatched_at", "handled_at", "feedback_at",
                  "supervised_at", "evaluated_at", "deadline_at", "satisfied", "reopen_count"]
_ORDERS = [
    # O1 G1: on time (handled 12 h after intake, well before the 24 h deadline), evaluated satisfied.
    ("O1", "G1", "2026-11-16 09:00", "2026-11-16 09:30", "2026-11-16 21:00", "2026-11-16 21:30",
     "2026-11-16 22:00", "2026-11-17 10:00", "2026-11-17 09:00", True, 0),
    # O2 G1: late (handled Wed 10:00, deadline Tue 10:00), evaluated unsatisfied and reopened once.
    ("O2", "G1", "2026-11-16 10:00", "2026-11-16 10:30", "2026-11-18 10:00", "2026-11-18 11:00",
     "2026-11-18 12:00", "2026-11-18 20:00", "2026-11-17 10:00", False, 1),
    # O3 G1: still open at the window's end and past its deadline (Wed 08:00): late, open and overdue.
    ("O3", "G1", "2026-11-17 08:00", "2026-11-17 08:30", None, None, None, None, "2026-11-18 08:00", None, 0),
    # O4 G2: open, not yet due (deadline Sat 12:00): outcome unknown, open, not overdue.
    ("O4", "G2", "2026-11-19 12:00", "2026-11-19 13:00", None, None, None, None, "2026-11-21 12:00", None, 0),
    # O5 G2: dispatched 25 h after intake (late first response), handled exactly at its deadline (on time: the
    # deadline is inclusive), never evaluated.
    ("O5", "G2", "2026-11-18 08:00", "2026-11-19 09:00", "2026-11-19 18:00", "2026-11-19 19:00",
     "2026-11-19 20:00", None, "2026-11-19 18:00", None, 0),
    # O6 G3: on time, evaluated satisfied.
    ("O6", "G3", "2026-11-17 14:00", "2026-11-17 14:10", "2026-11-17 20:00", "2026-11-17 20:30",
     "2026-11-17 21:00", "2026-11-18 09:00", "2026-11-18 14:00", True, 0),
    # O7 G3: received in the previous window (Fri 13th), handled late on Monday 16th after the weekend.
    ("O7", "G3", "2026-11-13 10:00", "2026-11-13 10:30", "2026-11-16 10:00", "2026-11-16 11:00",
     "2026-11-16 11:30", "2026-11-16 12:00", "2026-11-14 10:00", True, 0),
    # O8 G3: received 2 h before the window's end, not dispatched yet (its 24 h are not up): open.
    ("O8", "G3", "2026-11-20 10:00", None, None, None, None, None, "2026-11-21 10:00", None, 0),
    # O9 G2: handled on time, but evaluated (unsatisfied, reopened) only after the window's end (Fri 14:00).
    ("O9", "G2", "2026-11-19 09:00", "2026-11-19 09:20", "2026-11-19 15:00", "2026-11-19 15:30",
     "2026-11-19 16:00", "2026-11-20 14:00", "2026-11-20 09:00", False, 1),
]

_SENSORS = [
    # sensor, kind, grid, building, installed, last seen
    ("SN1", "pm25", "G1", None, "2025-06-01 00:00", "2026-11-20 11:50"),         # online (10 min before the end)
    ("SN2", "noise", "G2", None, "2025-06-01 00:00", "2026-11-20 07:00"),        # offline (5 h before the end)
    ("SN3", "smoke", "G2", "B1", "2026-12-01 00:00", "2026-12-01 10:00"),        # not installed by the end
    ("SN4", "streetlight", "G2", None, "2024-01-01 00:00", "2026-11-20 11:30"),  # online
    ("SN5", "pm25", "G2", None, "2025-06-01 00:00", "2026-11-20 11:55"),         # online
]  # G3 has no sensor at all

_ALARMS = [
    ("AL1", "SN1", "pm25", "2026-11-20 09:00", None),                  # active at the end
    ("AL2", "SN2", "noise", "2026-11-19 22:00", "2026-11-19 23:30"),   # cleared before the end
    ("AL3", "SN4", "streetlight", "2026-11-19 20:00", "2026-11-20 13:00"),  # cleared after the end: active then
    ("AL4", "SN1", "pm25", "2026-11-20 12:30", None),                  # raised after the end
]

_READINGS = [
    ("SN1", "2026-11-15 10:00", 90.0),   # previous window
    ("SN1", "2026-11-20 08:00", 80.0),   # over 75
    ("SN1", "2026-11-20 09:00", 75.0),   # at the limit: not over
    ("SN1", "2026-11-20 10:00", 40.0),
    ("SN1", "2026-11-20 11:00", 100.0),  # over 75
    ("SN1", "2026-11-20 12:00", 200.0),  # at the window's end: outside the half-open window
    ("SN5", "2026-11-20 10:00", 30.0),
    ("SN2", "2026-11-20 08:00", 95.0),   # noise, not PM2.5
    ("SN2", "2026-11-01 08:00", 50.0),   # noise: only says the data go back before the previous window
]


def _times(values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values))).dt.tz_localize(CITY_TIMEZONE)


def make_city() -> City:
    orders = pd.DataFrame(_ORDERS, columns=_ORDER_COLUMNS)
    for column in _ORDER_COLUMNS[2:9]:
        orders[column] = _times(orders[column])
    orders["satisfied"] = orders["satisfied"].astype("boolean")
    orders["reopen_count"] = orders["reopen_count"].astype("int64")
    orders["status"] = "received"  # not read by any formula
    # Event types, departments and channels split the orders for the families (see test_family_members_…).
    orders["event_type"] = ["garbage_overflow", "garbage_overflow", "illegal_parking", "illegal_parking",
                            "garbage_overflow", "night_construction_noise", "illegal_parking",
                            "night_construction_noise", "garbage_overflow"]
    orders["department"] = orders["event_type"].map({
        "garbage_overflow": "Urban Management Bureau", "illegal_parking": "Traffic Police",
        "night_construction_noise": "Ecology and Environment Bureau"})
    orders["channel"] = ["hotline_12345", "wechat", "hotline_12345", "ai_camera", "hotline_12345", "wechat",
                         "hotline_12345", "grid_patrol", "hotline_12345"]
    event_types = pd.DataFrame({"code": ["garbage_overflow", "illegal_parking", "night_construction_noise"],
                                "category": ["city_appearance", "traffic", "environment"]})

    sensors = pd.DataFrame(_SENSORS, columns=["sensor_id", "kind", "grid_code", "building_id", "installed_at",
                                              "last_seen_at"])
    sensors["installed_at"] = _times(sensors["installed_at"])
    sensors["last_seen_at"] = _times(sensors["last_seen_at"])

    alarms = pd.DataFrame(_ALARMS, columns=["alarm_id", "sensor_id", "kind", "raised_at", "cleared_at"])
    alarms["raised_at"] = _times(alarms["raised_at"])
    alarms["cleared_at"] = _times(alarms["cleared_at"])

    readings = pd.DataFrame(_READINGS, columns=["sensor_id", "ts", "value"])
    readings["ts"] = _times(readings["ts"])

    # City gives readings and alarms their sensor's grid cell, and readings its kind.

    units = UNITS.set_index("code", drop=False)
    buildings = pd.DataFrame(_BUILDINGS, columns=["building_id", "grid_code", "height_m", "year_built",
                                                  "residents", "high_rise_100m"])
    buildings["year_built"] = buildings["year_built"].astype("Int64")
    return City(units=units, hierarchy=build_hierarchy(UNITS),
                layers={"orders": orders, "sensors": sensors, "alarms": alarms, "readings": readings,
                        "event_types": event_types, "buildings": buildings})


_BUILDINGS = [
    # building, grid, height, year built, residents, 100 m or taller
    ("B1", "G2", 120.0, 2010, 300, True),   # a skyscraper with a smoke sensor (SN3, though not yet installed)
    ("B2", "G2", 30.0, 1985, 80, False),    # a high-rise (over 27 m) without one; old
    ("B3", "G1", 12.0, None, 20, False),    # year unknown
    ("B4", "G3", 9.0, 1975, 10, False),     # old
]


@pytest.fixture(scope="module")
def city() -> City:
    return make_city()


@pytest.fixture(scope="module")
def table(city) -> pd.DataFrame:
    return compute(city, W)


def value_of(table: pd.DataFrame, indicator_id: str, code: str) -> pd.Series:
    rows = table[(table["indicator"] == indicator_id) & (table["code"] == code)]
    assert len(rows) == 1, f"{indicator_id} at {code}: {len(rows)} rows"
    return rows.iloc[0]


# --- expected values, by hand -------------------------------------------------------------------------------------

NAN = math.nan

EXPECTED = {
    # Orders received in W: G1 O1 O2 O3 → 3; G2 O4 O5 O9 → 3; G3 O6 O8 → 2 (O7 came before W).
    "order_volume": {"G1": 3, "G2": 3, "G3": 2, "D1": 6, "D2": 2, "C": 8},
    # Known outcome = handled by the end, or past the deadline unhandled. O4 and O8 are not yet due: unknown.
    # G1: O1 on time, O2 late, O3 overdue → 1/3 = 33.33; G2: O5, O9 on time → 2/2 = 100; G3: O6 → 1/1 = 100.
    # D1: 3/5 = 60 (not (33.33 + 100) / 2 = 66.67); D2 = 100; C: 4/6 = 66.67 (not (60 + 100) / 2 = 80).
    "on_time_rate": {"G1": 100 / 3, "G2": 100.0, "G3": 100.0, "D1": 60.0, "D2": 100.0, "C": 400 / 6},
    # Evaluated before the end: O1 satisfied, O2 unsatisfied, O6 satisfied (O9 is evaluated after the end, O5
    # never). G1 1/2 = 50; G2 none → no data; G3 1/1 = 100; D1 50; D2 100; C 2/3 = 66.67 (not (50 + 100) / 2).
    "satisfaction_rate": {"G1": 50.0, "G2": NAN, "G3": 100.0, "D1": 50.0, "D2": 100.0, "C": 200 / 3},
    # Same evaluated orders; reopened: O2 only. G1 1/2 = 50; G2 no data; G3 0/1 = 0; D1 50; D2 0; C 1/3 = 33.33.
    "reopen_rate": {"G1": 50.0, "G2": NAN, "G3": 0.0, "D1": 50.0, "D2": 0.0, "C": 100 / 3},
    # Working days intake → handling, over orders received in W and handled by its end:
    # O1 Mon 09:00→21:00 = 0.5; O2 Mon 10:00→Wed 10:00 = 2.0; O5 Wed 08:00→Thu 18:00 = 1 + 10/24;
    # O6 Tue 14:00→20:00 = 0.25; O9 Thu 09:00→15:00 = 0.25.
    # G1 (0.5 + 2) / 2 = 1.25; G2 (1.41667 + 0.25) / 2 = 0.83333; G3 0.25; D1 4.16667 / 4 = 1.04167;
    # D2 0.25; C 4.41667 / 5 = 0.88333 (not (1.04167 + 0.25) / 2 = 0.64583).
    "average_handling_days": {"G1": 1.25, "G2": (1 + 10 / 24 + 0.25) / 2, "G3": 0.25,
                              "D1": (2.5 + 1 + 10 / 24 + 0.25) / 4, "D2": 0.25,
                              "C": (2.5 + 1 + 10 / 24 + 0.5) / 5},
    # Due = dispatched by the end or received more than 24 h before it (O8: 2 h old, undispatched, not due).
    # In time: all dispatched within 1 h but O5 (25 h). G1 3/3 = 100; G2 O4 O9 of O4 O5 O9 → 2/3 = 66.67;
    # G3 O6 → 1/1 = 100; D1 5/6 = 83.33; D2 100; C 6/7 = 85.71 (not (83.33 + 100) / 2 = 91.67).
    "response_24h_rate": {"G1": 100.0, "G2": 200 / 3, "G3": 100.0, "D1": 500 / 6, "D2": 100.0, "C": 600 / 7},
    # Received but not handled at the end: O3 (G1), O4 (G2), O8 (G3); O7 was handled on Monday.
    "open_orders": {"G1": 1, "G2": 1, "G3": 1, "D1": 2, "D2": 1, "C": 3},
    # Of those, past their deadline: O3 only. A cell with none shows 0, a real zero.
    "overdue_orders": {"G1": 1, "G2": 0, "G3": 0, "D1": 1, "D2": 0, "C": 1},
    # Installed by the end (SN3 is not): G1 SN1 online → 1/1 = 100; G2 SN2 offline, SN4 and SN5 online → 2/3;
    # G3 has no sensor → no data; D1 3/4 = 75 (not (100 + 66.67) / 2 = 83.33); D2 no data; C 3/4 = 75.
    "sensor_online_rate": {"G1": 100.0, "G2": 200 / 3, "G3": NAN, "D1": 75.0, "D2": NAN, "C": 75.0},
    # Raised before the end and not cleared by then: AL1 (G1), AL3 (G2, cleared after the end). AL2 was cleared,
    # AL4 raised after the end. G3 has no sensor at all → no data (not 0), and so has D2.
    "active_alarms": {"G1": 1, "G2": 1, "G3": NAN, "D1": 2, "D2": NAN, "C": 2},
    # PM2.5 readings in W over 75: SN1 80 and 100 (75 is not over; 200 at the end and 90 before W are outside).
    # G2's PM2.5 monitor SN5 read 30 → a real 0; G3 has no PM2.5 monitor → no data; the noise reading of 95 is
    # not PM2.5.
    "pm25_exceedance_hours": {"G1": 2, "G2": 0, "G3": NAN, "D1": 2, "D2": NAN, "C": 2},
    # Mean PM2.5 in W: G1 (80 + 75 + 40 + 100) / 4 = 73.75; G2 30 / 1 = 30; G3 no monitor → no data;
    # D1 (295 + 30) / 5 = 65 (not (73.75 + 30) / 2 = 51.875); D2 no data; C 65.
    "pm25_mean": {"G1": 73.75, "G2": 30.0, "G3": NAN, "D1": 65.0, "D2": NAN, "C": 65.0},
    # Buildings: residents G1 20, G2 300 + 80 = 380, G3 10; D1 400; D2 10; C 410.
    "residents": {"G1": 20, "G2": 380, "G3": 10, "D1": 400, "D2": 10, "C": 410},
    # The tiny city has no unit geometry, so no area: no data everywhere.
    "population_density": {"G1": NAN, "G2": NAN, "G3": NAN, "D1": NAN, "D2": NAN, "C": NAN},
    # Orders received in W × 10,000 ÷ residents, G1 3 / 20 → 1,500; G2 3 / 380 → 78.95; G3 2 / 10 → 2,000;
    # D1 6 / 400 → 150; D2 2,000; C 8 / 410 → 195.12.
    # … per day: W lasts 4.5 days (Monday 00:00 to Friday 12:00), so each figure is divided by 4.5.
    "orders_per_10k_residents": {"G1": 1500.0 / 4.5, "G2": 30_000 / 380 / 4.5, "G3": 2000.0 / 4.5,
                                 "D1": 150.0 / 4.5, "D2": 2000.0 / 4.5, "C": 80_000 / 410 / 4.5},
    "buildings": {"G1": 1, "G2": 2, "G3": 1, "D1": 3, "D2": 1, "C": 4},
    # Built before 1990, of those with a known year: G1 none known → no data; G2 B2 of B1, B2 → 50; G3 100;
    # D1 1/2 = 50; D2 100; C 2/3 = 66.67.
    "old_building_share": {"G1": NAN, "G2": 50.0, "G3": 100.0, "D1": 50.0, "D2": 100.0, "C": 200 / 3},
    "skyscrapers": {"G1": 0, "G2": 1, "G3": 0, "D1": 1, "D2": 0, "C": 1},
    # High-rises (over 27 m): B1 (smoke sensor SN3) and B2 (none), both in G2 → 1/2 = 50; others have none.
    "high_rise_smoke_coverage": {"G1": NAN, "G2": 50.0, "G3": NAN, "D1": 50.0, "D2": NAN, "C": 50.0},
    # Noise in W: SN2 (G2) read 95 at 08:00 (the 1 November reading is outside W) → 95; no night reading over 55.
    "noise_mean": {"G1": NAN, "G2": 95.0, "G3": NAN, "D1": 95.0, "D2": NAN, "C": 95.0},
    "night_noise_hours": {"G1": NAN, "G2": 0, "G3": NAN, "D1": 0, "D2": NAN, "C": 0},
    # No water-level gauge and no traffic counter in the tiny city: no data.
    "water_level_high_hours": {"G1": NAN, "G2": NAN, "G3": NAN, "D1": NAN, "D2": NAN, "C": NAN},
    "traffic_flow_mean": {"G1": NAN, "G2": NAN, "G3": NAN, "D1": NAN, "D2": NAN, "C": NAN},
}

CASES = [(indicator_id, code, value) for indicator_id, by_code in EXPECTED.items() for code, value in by_code.items()]


def test_every_indicator_has_hand_computed_expectations():
    # Family members are checked against their base on the restricted data (test_family_members_…). The indicators
    # of the incidents, enterprises, patrols, cameras and roads layers are worked out by hand on their own tiny city
    # in tests/test_city_layers.py.
    from test_city_layers import EXPECTED as CITY_LAYERS_EXPECTED
    assert not set(EXPECTED) & set(CITY_LAYERS_EXPECTED)
    assert set(EXPECTED) | set(CITY_LAYERS_EXPECTED) == {i for i, ind in INDICATORS.items() if ind.family is None}
    for by_code in (*EXPECTED.values(), *CITY_LAYERS_EXPECTED.values()):
        assert {"G1", "G2", "G3", "D1", "D2", "C"} <= set(by_code)


@pytest.mark.parametrize("indicator_id, code, expected", CASES, ids=[f"{i}-{c}" for i, c, _ in CASES])
def test_indicator_value_by_hand(table, indicator_id, code, expected):
    row = value_of(table, indicator_id, code)
    if math.isnan(expected):
        assert math.isnan(row["value"]), f"{indicator_id} at {code}: expected no data, got {row['value']}"
        assert row["state"] == NO_DATA
    else:
        assert row["value"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert row["state"] != NO_DATA


def test_compute_table_shape(table, city):
    assert list(table.columns) == COLUMNS
    # Every indicator on every level for every unit: 12 indicators × 10 units.
    assert len(table) == len(INDICATORS) * len(UNITS)
    for level in LEVELS:
        codes = set(table.loc[table["level"] == level, "code"])
        assert codes == set(UNITS.loc[UNITS["level"] == level, "code"])
    # A single street or community has the same figures as its only child level above (D1 ≡ S1 ≡ M1 ⊇ G1 + G2).
    for indicator_id in INDICATORS:
        d1, s1, m1 = (value_of(table, indicator_id, c) for c in ("D1", "S1", "M1"))
        assert d1["numerator"] == s1["numerator"] == m1["numerator"]
        assert d1["denominator"] == s1["denominator"] == m1["denominator"]


def test_compute_subset_of_indicators_and_levels(city):
    part = compute(city, W, ["on_time_rate", "pm25_mean"], levels=("district",))
    assert set(part["indicator"]) == {"on_time_rate", "pm25_mean"}
    assert set(part["level"]) == {"district"}
    assert len(part) == 4


@pytest.mark.parametrize("indicator_id, parent, children", [
    ("on_time_rate", "D1", ("G1", "G2")),
    ("on_time_rate", "C", ("D1", "D2")),
    ("sensor_online_rate", "D1", ("G1", "G2")),
    ("satisfaction_rate", "C", ("D1", "D2")),
    ("response_24h_rate", "C", ("D1", "D2")),
    ("average_handling_days", "C", ("D1", "D2")),
    ("pm25_mean", "D1", ("G1", "G2")),
])
def test_rate_is_recomputed_not_averaged(table, indicator_id, parent, children):
    up = value_of(table, indicator_id, parent)
    kids = [value_of(table, indicator_id, c) for c in children]
    # Numerators and denominators add up …
    assert up["numerator"] == pytest.approx(sum(k["numerator"] for k in kids))
    assert up["denominator"] == pytest.approx(sum(k["denominator"] for k in kids))
    # … and the parent's value is their quotient, which here differs from the mean of the children's values.
    scale = 1.0 if INDICATORS[indicator_id].aggregation == "mean" else 100.0
    assert up["value"] == pytest.approx(scale * up["numerator"] / up["denominator"])
    mean_of_children = np.nanmean([k["value"] for k in kids])
    assert abs(up["value"] - mean_of_children) > 0.1


def test_no_data_is_not_zero(table):
    # A district without a PM2.5 monitor: no data, not 0 µg/m³ …
    row = value_of(table, "pm25_mean", "D2")
    assert math.isnan(row["value"]) and row["state"] == NO_DATA
    assert value_of(table, "pm25_exceedance_hours", "D2")["state"] == NO_DATA
    # … while a cell with a monitor and no exceedance is a real, good 0.
    row = value_of(table, "pm25_exceedance_hours", "G2")
    assert row["value"] == 0 and row["state"] == "good"
    # A rate with a zero denominator (no evaluated order in G2) has no data.
    row = value_of(table, "satisfaction_rate", "G2")
    assert row["denominator"] == 0 and math.isnan(row["value"]) and row["state"] == NO_DATA
    # Volumes are judged by their rise against the previous window (compare); a window alone leaves them neutral.
    assert value_of(table, "order_volume", "G3")["state"] == "neutral"
    assert value_of(table, "open_orders", "C")["state"] == "neutral"


@pytest.mark.parametrize("indicator_id, code, state", [
    ("on_time_rate", "G1", "critical"),       # 33.33 < 95
    ("on_time_rate", "G2", "good"),           # 100 ≥ 99
    ("satisfaction_rate", "C", "critical"),   # 66.67 < 95
    ("reopen_rate", "G3", "good"),            # 0 < 1
    ("reopen_rate", "D1", "critical"),        # 50 ≥ 4
    ("average_handling_days", "G3", "good"),  # 0.25 < 1.5
    ("average_handling_days", "G1", "good"),  # 1.25 < 1.5
    ("overdue_orders", "G1", "watch"),        # 1 ≥ 1, < 10
    ("overdue_orders", "D2", "good"),         # 0 < 1
    ("sensor_online_rate", "C", "critical"),  # 75 < 90
    ("active_alarms", "C", "watch"),          # 2: 1 ≤ 2 < 10
    ("pm25_mean", "G1", "warning"),           # 73.75: 55 ≤ x < 75
    ("pm25_mean", "G2", "good"),              # 30 < 35
    ("pm25_exceedance_hours", "D1", "watch"),  # 2: 1 ≤ 2 < 10
])
def test_states(table, indicator_id, code, state):
    assert value_of(table, indicator_id, code)["state"] == state


def test_rows_outside_every_grid_cell_are_ignored(city):
    orders = city["orders"]
    stray = orders.iloc[[0]].assign(order_id="O10", grid_code="G404")
    data = City(units=city.units, hierarchy=city.hierarchy,
                layers={**city.layers, "orders": pd.concat([orders, stray], ignore_index=True)})
    result = compute(data, W, ["order_volume"], levels=("city",))
    assert result["value"].tolist() == [8]


# --- compare ----------------------------------------------------------------------------------------------------

def test_window_previous_is_adjacent():
    assert W.previous() == PREVIOUS


def test_no_change_against_a_window_the_data_do_not_cover(city):
    # The data begin on 1 November: the window before a 30-day window ending on 20 November is not covered.
    assert city.starts_at == t("2026-11-01 08:00")
    month = Window(t("2026-10-21 12:00"), W.end, "30d")
    result = compare(city, month, ["order_volume"], levels=("city",))
    assert result["previous"].isna().all() and result["change"].isna().all()
    assert result["value"].iloc[0] == 9  # all nine orders, O1–O9, are in the month


def test_compare_gives_previous_and_change(city):
    ids = ["order_volume", "on_time_rate", "open_orders", "pm25_mean"]
    result = compare(city, W, ids, levels=("city", "grid"))
    assert {"previous", "change"} <= set(result.columns)
    assert len(result) == len(ids) * 4  # 1 city + 3 grid cells
    got = result.set_index(["indicator", "code"])
    # The previous window holds O7 (G3) only, and SN1's reading of 90 on Sunday.
    # Volume: 8 now, 1 before → +7.
    assert got.loc[("order_volume", "C"), ["value", "previous", "change"]].tolist() == [8, 1, 7]
    # A volume is judged by its rise: z = (8 − 1) ÷ √1.01 ≈ 6.97 ≥ 5 → critical; G3 had 1 and has 2 → good.
    assert got.loc[("order_volume", "C"), "state"] == "critical"
    assert got.loc[("order_volume", "G3"), ["value", "previous", "state"]].tolist() == [2, 1, "good"]
    # On time: O7 was unhandled and past its deadline (Sat 10:00) at Monday 00:00 → 0/1 = 0 %; now 66.67 %.
    row = got.loc[("on_time_rate", "C")]
    assert row["previous"] == 0.0
    assert row["change"] == pytest.approx(400 / 6)
    # G2 had no order before: no previous value, no change.
    row = got.loc[("on_time_rate", "G2")]
    assert math.isnan(row["previous"]) and math.isnan(row["change"])
    # Open at Monday 00:00: O7 → 1; now 3 → +2.
    assert got.loc[("open_orders", "C"), ["previous", "change"]].tolist() == [1, 2]
    # PM2.5 mean: 90 before, 65 now → −25.
    assert got.loc[("pm25_mean", "C"), ["previous", "change"]].tolist() == [90.0, -25.0]
    # The values are those of compute() for the same window.
    current = compute(city, W, ids, levels=("city", "grid")).set_index(["indicator", "code"])["value"]
    pd.testing.assert_series_equal(got["value"].sort_index(), current.sort_index(), check_names=False)


# --- thresholds ---------------------------------------------------------------------------------------------------

def test_thresholds_state_of_boundaries_inclusive():
    higher_better = Thresholds.of("critical", (95, "warning"), (98, "watch"), (99, "good"))
    values = [-math.inf, 0, 94.999, 95, 97.99, 98, 98.5, 99, 100, math.inf, math.nan]
    expected = ["critical", "critical", "critical", "warning", "warning", "watch", "watch", "good", "good", "good",
                NO_DATA]
    assert higher_better.state_of(values).tolist() == expected

    lower_better = Thresholds.of("good", (1, "watch"), (10, "warning"), (50, "critical"))
    assert lower_better.state_of([0, 0.999, 1, 9, 10, 49.9, 50, 1e9, math.nan]).tolist() == [
        "good", "good", "watch", "watch", "warning", "warning", "critical", "critical", NO_DATA]


def test_thresholds_state_of_scalar_and_single_step():
    assert Thresholds.of("good").state_of([5.0, math.nan]).tolist() == ["good", NO_DATA]
    assert Thresholds.of("critical", (95, "good")).state_of(95) == "good"
    assert Thresholds.of("critical", (95, "good")).state_of(math.nan) == NO_DATA


def test_thresholds_refuse_bad_steps():
    with pytest.raises(ValueError, match="sorted"):
        Thresholds.of("critical", (98, "watch"), (95, "warning"))
    with pytest.raises(ValueError, match="-inf"):
        Thresholds((Step(0.0, "good"), Step(10.0, "watch")))
    with pytest.raises(ValueError, match="-inf"):
        Thresholds(())
    with pytest.raises(ValueError, match="unknown state"):
        Thresholds.of("critical", (95, "fine"))


def test_indicator_without_thresholds_is_neutral():
    volume = INDICATORS["order_volume"]
    assert volume.thresholds is None
    assert volume.state_of([0, 12, math.nan]).tolist() == ["neutral", "neutral", NO_DATA]


# --- working days -------------------------------------------------------------------------------------------------

def _wd(start, end, **kwargs) -> list[float]:
    return working_days_between(pd.Series(pd.to_datetime(start)), pd.Series(pd.to_datetime(end)),
                                **kwargs).tolist()


def test_working_days_same_day():
    # Monday 2026-11-16, 09:00 → 15:00: a quarter of a working day.
    assert _wd(["2026-11-16 09:00"], ["2026-11-16 15:00"]) == pytest.approx([0.25])
    assert _wd(["2026-11-16 09:00"], ["2026-11-16 09:00"]) == [0.0]


def test_working_days_over_a_weekend():
    # Fri 2026-11-20 12:00 → Mon 23 12:00: half of Friday + half of Monday = 1 (not 3).
    # Fri 18:00 → Mon 06:00: 6 h + 6 h = 0.5. Sat 10:00 → Sun 20:00: nothing.
    # Fri 12:00 → next Fri 12:00: 5.
    assert _wd(["2026-11-20 12:00", "2026-11-20 18:00", "2026-11-21 10:00", "2026-11-20 12:00"],
               ["2026-11-23 12:00", "2026-11-23 06:00", "2026-11-22 20:00", "2026-11-27 12:00"]) == \
        pytest.approx([1.0, 0.5, 0.0, 5.0])


def test_working_days_over_public_holidays():
    # Dragon Boat Festival, Friday 2026-06-19, is in the holiday list: Thu 18 12:00 → Mon 22 12:00 is 1 working
    # day (Thu afternoon + Mon morning), and would be 2 without the holiday.
    assert np.datetime64("2026-06-19") in HOLIDAYS
    assert _wd(["2026-06-18 12:00"], ["2026-06-22 12:00"]) == pytest.approx([1.0])
    assert _wd(["2026-06-18 12:00"], ["2026-06-22 12:00"], holidays=np.array([], dtype="datetime64[D]")) == \
        pytest.approx([2.0])
    # National Day: Wed 2026-09-30 12:00 → Thu 10-08 12:00; Oct 1, 2, 5, 6, 7 are holidays, 3–4 a weekend → 1.
    assert _wd(["2026-09-30 12:00"], ["2026-10-08 12:00"]) == pytest.approx([1.0])


def test_working_days_missing_in_missing_out():
    out = _wd(["2026-11-16 09:00", None, "2026-11-16 09:00"], ["2026-11-16 21:00", "2026-11-16 21:00", None])
    assert out[0] == pytest.approx(0.5)
    assert math.isnan(out[1]) and math.isnan(out[2])
    assert np.isnan(working_days_between(pd.Series([pd.NaT]), pd.Series([pd.NaT]))).all()


def test_working_days_count_local_time():
    # Fri 23:00 → Mon 01:00 local is 1 h + 1 h of working time. In UTC it would be Fri 15:00 → Sun 17:00: 9 h.
    start = pd.Series([t("2026-11-20 23:00")])
    end = pd.Series([t("2026-11-23 01:00")])
    assert working_days_between(start, end).tolist() == pytest.approx([2 / 24])


# --- windows ------------------------------------------------------------------------------------------------------

def test_named_window_today_starts_at_local_midnight():
    as_of = t("2026-11-20 01:30")  # 2026-11-19 17:30 UTC: "today" must still be the local 20th
    today = named_window("today", as_of)
    assert today.start == t("2026-11-20 00:00")
    assert str(today.start.tz) == CITY_TIMEZONE
    assert today.start <= as_of < today.end
    assert today.contains(pd.Series([as_of, t("2026-11-19 23:59:59")])).tolist() == [True, False]


@pytest.mark.parametrize("name, days", [("7d", 7), ("30d", 30)])
def test_named_window_length_and_previous(name, days):
    as_of = t("2026-11-20 16:00")
    window = named_window(name, as_of)
    assert window.end - window.start == pd.Timedelta(days=days)
    assert window.days == pytest.approx(days)
    assert window.contains(pd.Series([as_of])).all()  # the as-of instant itself is in
    assert not window.contains(pd.Series([as_of - pd.Timedelta(days=days, seconds=1)])).any()
    before = window.previous()
    assert before.end == window.start
    assert before.end - before.start == window.end - window.start


def test_named_window_unknown():
    with pytest.raises(ValueError):
        named_window("1y", t("2026-11-20 16:00"))


def test_window_is_half_open():
    times = pd.Series([W.start - pd.Timedelta(microseconds=1), W.start, W.end - pd.Timedelta(microseconds=1), W.end])
    assert W.contains(times).tolist() == [False, True, True, False]


# --- the registry -------------------------------------------------------------------------------------------------

def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize("indicator_id", list(INDICATORS))
def test_registry_declaration(indicator_id, city):
    ind = INDICATORS[indicator_id]
    assert ind.id == indicator_id
    assert ind.name.strip() and ind.name.isascii()
    assert _has_cjk(ind.name_zh)
    assert ind.topic in TOPICS
    assert ind.unit.strip()
    assert len(ind.description) > 20
    assert ind.owner.strip()
    assert ind.frequency in {"real-time", "hourly", "daily", "weekly", "monthly"}
    assert set(ind.inputs) <= set(LAYERS)
    assert set(ind.levels) <= set(ALL_LEVELS)  # a province store adds one level above its cities
    if ind.aggregation == "rate":
        assert ind.unit == "%"
    if ind.thresholds is not None:
        assert ind.good_direction in ("up", "down")
    ind.format_value(1.5)  # the format fits a number

    parts = ind.formula(city, W)
    assert isinstance(parts, Contributions)
    n = len(parts.grid)
    assert len(parts.numerator) == n
    assert set(city.hierarchy["grid"].to_numpy()[parts.grid]) <= {"G1", "G2", "G3"}
    assert np.isfinite(np.asarray(parts.numerator, float)).all()
    if ind.aggregation == "count":
        assert parts.denominator is None
    else:
        assert parts.denominator is not None and len(parts.denominator) == n


def test_registry_ids_unique_and_topics_named():
    # Issue 3: at least 200 indicators in at least 14 topics, every topic with some.
    assert len(INDICATORS) >= 200
    assert len(TOPICS) >= 14 and {i.topic for i in INDICATORS.values()} == set(TOPICS)
    # Every indicator is judged: by thresholds on its value, or (a volume) by its rise against the window before.
    unjudged = [i.id for i in INDICATORS.values() if i.thresholds is None and i.judged_by != "surge"]
    assert unjudged == []


def test_surge_scores_are_poisson_z_scores():
    from metrics.spec import SURGE, surge_scores
    z = surge_scores([8, 2, 4_100, 5_000, 3, np.nan], [1, 1, 4_000, 4_000, 10, 5])
    # (8 − 1)/√(1 + 0.01) ≈ 6.97; (2 − 1)/√1.01 ≈ 0.995; (4,100 − 4,000)/√(4,000 + 400²) ≈ 0.25: a 2.5% rise of
    # a big volume is no surge, while a 25% one is: 1,000/√164,000 ≈ 2.47; a fall is negative; missing stays missing.
    np.testing.assert_allclose(z[:5], [7 / math.sqrt(1.01), 1 / math.sqrt(1.01), 100 / math.sqrt(164_000),
                                       1_000 / math.sqrt(164_000), -7 / math.sqrt(11)])
    assert math.isnan(z[5])
    assert list(SURGE.state_of(z)) == ["critical", "good", "good", "watch", "good", NO_DATA]
    assert len({i.name for i in INDICATORS.values()}) == len(INDICATORS)
    assert len({i.name_zh for i in INDICATORS.values()}) == len(INDICATORS)
    for name, name_zh in TOPICS.values():
        assert name.strip() and _has_cjk(name_zh)


def test_a_city_without_orders_has_no_order_figures(city):
    # An imported city with boundaries and buildings only: its order counts are "no data", not 0 orders.
    empty_orders = city["orders"].iloc[0:0]
    data = City(units=city.units, hierarchy=city.hierarchy, layers={**city.layers, "orders": empty_orders})
    result = compute(data, W, ["order_volume", "overdue_orders", "on_time_rate"], levels=("city",))
    assert result["value"].isna().all()
    assert set(result["state"]) == {NO_DATA}


def test_rank_among_siblings(table, city):
    from metrics.engine import rank_among_siblings
    ranked = rank_among_siblings(table, city.units).set_index(["indicator", "code"])
    # On-time: G2 (100 %) is better than G1 (33.33 %) among M1's cells; G3 is alone in M2.
    assert ranked.loc[("on_time_rate", "G2"), ["rank", "siblings"]].tolist() == [1, 2]
    assert ranked.loc[("on_time_rate", "G1"), ["rank", "siblings"]].tolist() == [2, 2]
    # Lower is better for overdue orders; a volume has no direction and no rank; the city has no siblings.
    assert math.isnan(ranked.loc[("order_volume", "G1"), "rank"])
    assert math.isnan(ranked.loc[("on_time_rate", "C"), "rank"])


def test_vital_score_is_the_weighted_mean_of_state_points_and_explains_itself(table):
    from metrics.score import STATE_POINTS, explain_score, vital_scores
    scores = vital_scores(table).set_index("code")
    rows = table[(table["code"] == "G1") & table["state"].isin(STATE_POINTS.keys())]
    weights = rows["indicator"].map({i: ind.weight for i, ind in INDICATORS.items()})
    expected = (rows["state"].map(STATE_POINTS) * weights).sum() / weights.sum()
    assert scores.loc["G1", "score"] == pytest.approx(expected)
    assert 0 <= scores["score"].min() and scores["score"].max() <= 100
    why = explain_score(table, "G1")
    # What each indicator costs adds up to what the score lacks of 100, the costliest first.
    assert why["lost"].sum() == pytest.approx(100 - scores.loc["G1", "score"])
    assert list(why["lost"]) == sorted(why["lost"], reverse=True)
    assert why.iloc[0]["state"] == "critical"  # G1's on-time rate is 33 %


FAMILY_MEMBERS = [i for i, ind in INDICATORS.items() if ind.family is not None]


@pytest.mark.parametrize("indicator_id", FAMILY_MEMBERS)
def test_family_members_equal_their_base_on_the_restricted_rows(city, table, indicator_id):
    # Computed by the engine's one-run split of the base formula, a member must equal its base computed on a
    # city whose input layer holds only the member's rows.
    member = INDICATORS[indicator_id]
    layer = member.inputs[0]
    frame = city[layer]
    column = frame[member.family.column] if member.family.column in frame else None
    restricted = frame[(column == member.family.key).to_numpy()] if column is not None else frame.iloc[0:0]
    layers = {**city.layers, layer: restricted.reset_index(drop=True)}
    if layer == "alarms" or (layer == "sensors" and member.family.column == "kind"):
        # A sensor kind restricts the sensors (and so the coverage) too, not only the alarms.
        layers["sensors"] = city["sensors"][city["sensors"]["kind"] == member.family.key].reset_index(drop=True)
        layers["alarms"] = city["alarms"][city["alarms"]["kind"] == member.family.key].reset_index(drop=True)
    only = City(units=city.units, hierarchy=city.hierarchy, layers=layers)
    expected = compute(only, W, [member.family.base]).set_index("code")
    got = table[table["indicator"] == indicator_id].set_index("code")
    if not len(restricted) and member.family.base in ("order_volume", "overdue_orders"):
        # No order of the member at all: the restricted city has no orders layer rows → no data, while the
        # member in the real city is a true 0.
        assert (got["value"] == 0).all()
        return
    np.testing.assert_allclose(got["value"].to_numpy(float), expected.loc[got.index, "value"].to_numpy(float),
                               rtol=1e-9, equal_nan=True, err_msg=indicator_id)


def test_series_splits_the_window_into_equal_steps(city):
    from metrics.engine import series
    points = series(city, W, ["order_volume", "on_time_rate"], steps=3, levels=("city",))
    # W (4.5 days) in 3 steps of 1.5 days: Mon 00:00–Tue 12:00 O1 O2 O3 (Tue 08:00) → 3;
    # Tue 12:00–Thu 00:00 O6 (Tue 14:00) O5 (Wed 08:00) → 2; Thu 00:00–Fri 12:00 O9 O4 O8 → 3.
    volume = points[points["indicator"] == "order_volume"].sort_values("step")["value"].tolist()
    assert volume == [3, 2, 3]
    assert points["step"].nunique() == 3
    # Each step is computed as a window of its own: the same as compute on that sub-window.
    third = Window(W.start + 2 * (W.end - W.start) / 3, W.end)
    assert compute(city, third, ["on_time_rate"], levels=("city",))["value"].iloc[0] == \
        points[(points["indicator"] == "on_time_rate") & (points["step"] == 2)]["value"].iloc[0]


def test_vital_score_of_a_unit_with_nothing_judged_is_no_data(table):
    from metrics.score import explain_score, vital_scores
    unjudged = table.assign(state="no_data")
    scores = vital_scores(unjudged)
    assert scores["score"].isna().all() and (scores["indicators"] == 0).all()
    assert explain_score(unjudged, "C").empty


def test_one_units_score_from_its_rows_equals_the_score_of_the_whole_table(table):
    """What a map page shows for its unit (metrics.score.unit_score, from the unit's rows alone) is what the
    whole table's scores and explanation say of it, for every unit, and for a unit with nothing judged."""
    from metrics.score import explain_score, unit_score, vital_scores
    for judged in (table, table.assign(state="no_data")):
        scores = vital_scores(judged).set_index("code")
        for code in judged["code"].unique():
            rows = judged[judged["code"] == code].reset_index(drop=True)
            score, count, why = unit_score(rows)
            assert (score == pytest.approx(scores.loc[code, "score"])
                    if not np.isnan(scores.loc[code, "score"]) else np.isnan(score)), code
            assert count == scores.loc[code, "indicators"], code
            pd.testing.assert_frame_equal(why, explain_score(judged, code))


# --- the orders' facts, compared in numpy, are pandas' comparisons ---------------------------------------------------

def _facts_by_pandas(orders: pd.DataFrame, window: Window) -> dict:
    """The facts as pandas' zoned comparisons give them (the reference the numpy comparisons must equal)."""
    from layers.lifecycle import RESPONSE_HOURS

    def known_by(times, instant):
        return (times.notna() & (times < instant)).to_numpy()

    end = window.end
    received = window.contains(orders["received_at"]).to_numpy()
    handled = known_by(orders["handled_at"], end)
    cancelled = known_by(orders["closed_at"], end) & ~handled
    past_deadline = (orders["deadline_at"] < end).to_numpy() & ~cancelled
    limit = orders["received_at"] + pd.Timedelta(hours=RESPONSE_HOURS)
    dispatched = known_by(orders["dispatched_at"], end)
    open_at_end = known_by(orders["received_at"], end) & ~handled & ~cancelled
    return dict(received=received, outcome_known=handled | past_deadline,
                on_time=handled & (orders["handled_at"] <= orders["deadline_at"]).fillna(False).to_numpy(),
                evaluated_at_end=known_by(orders["evaluated_at"], end), handled=handled,
                response_due=dispatched | (limit < end).to_numpy(),
                responded_in_time=dispatched & (orders["dispatched_at"] <= limit).fillna(False).to_numpy(),
                open_at_end=open_at_end, overdue_at_end=open_at_end & past_deadline,
                red_card_at_end=open_at_end & ((orders["deadline_at"] <= end).to_numpy()
                                               | (~dispatched & (limit <= end).to_numpy())))


def test_order_facts_compared_in_numpy_equal_pandas_comparisons(tmp_path):
    """The sample's orders (missing instants in every column), windows whose bounds fall between the columns'
    microseconds and on them: every fact equals pandas' zoned comparison."""
    from layers.city import load_city
    from metrics.workorders import _order_columns, _order_facts
    from sample_data.__main__ import build

    city = load_city(build("test", f"sqlite:///{tmp_path / 'city.sqlite'}", progress=False))
    orders = city["orders"]
    assert orders["handled_at"].isna().any() and orders["dispatched_at"].isna().any()
    columns = _order_columns(orders)
    end = city.as_of
    # An order dispatched, still open at its deadline: a window ending on its deadline gives it a red card (`<=`),
    # one ending half a microsecond before does not (the bound is finer than the column's microseconds).
    open_then = orders[(orders["dispatched_at"] < orders["deadline_at"]).fillna(False)
                       & ~(orders["handled_at"] <= orders["deadline_at"]).fillna(False)
                       & orders["closed_at"].isna()]
    deadline = open_then["deadline_at"].iloc[0]
    for start, stop in [(end - pd.Timedelta(days=7), end), (end - pd.Timedelta(days=30), deadline),
                        (end - pd.Timedelta(hours=5, nanoseconds=1), end - pd.Timedelta(nanoseconds=500)),
                        (deadline - pd.Timedelta(days=2, nanoseconds=7), deadline - pd.Timedelta(nanoseconds=500)),
                        (deadline - pd.Timedelta(days=2), deadline + pd.Timedelta(nanoseconds=3))]:
        window = Window(start, stop, "odd bounds")
        facts = _order_facts(columns, orders, window)
        for name, expected in _facts_by_pandas(orders, window).items():
            assert np.array_equal(getattr(facts, name), expected), (name, start, stop)
