"""The incidents, enterprises, grid workers and patrols, cameras and road segments: their indicators against values
worked out by hand on a tiny city, and the sample city's layers at the ``test`` scale (counts, places, times,
calibration).

The tiny city has the hierarchy of ``tests/test_metrics.py``::

    C (city)
    ├── D1 (district) ── S1 (street) ── M1 (community) ── G1, G2 (grid cells)
    └── D2 (district) ── S2 (street) ── M2 (community) ── G3 (grid cell)

and the same window ``W``: Monday 2026-11-16 00:00 to Friday 2026-11-20 12:00 (Asia/Shanghai), 4.5 days.
:data:`EXPECTED` holds a hand-computed value per indicator and unit, with its arithmetic; ``tests/test_metrics.py``
checks that every indicator of the registry has its expectations there or here.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely

from layers.city import EVENT_LAYERS, City, build_hierarchy, load_city
from layers.load import empty_frame, encode_frame
from layers.reference import (GRID_WORKER_POSTS, INCIDENT_KINDS, INCIDENT_SEVERITIES, INDUSTRIES, RISK_CLASSES,
                              ROAD_CLASSES, ROAD_CONDITIONS)
from layers.specs import CITY_TIMEZONE, LAYERS
from layers.store import Store
from metrics.engine import compute
from metrics.registry import INDICATORS
from metrics.sensors import ONLINE_GRACE
from metrics.spec import NO_DATA, STATES, Window, named_window
from sample_data.generator import (BAOAN, BAOAN_CAMERA_SHARE, DEFAULT_END, SCALES, build_safety_layers,
                                   generate)

NaT = pd.NaT
NAN = math.nan
SEED = 20231
NEW_LAYERS = ("incidents", "enterprises", "grid_workers", "patrols", "cameras", "road_segments")


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=CITY_TIMEZONE)


W = Window(t("2026-11-16 00:00"), t("2026-11-20 12:00"), "w")

# --- the tiny city ------------------------------------------------------------------------------------------------

UNITS = pd.DataFrame(
    [("C", "city", None), ("D1", "district", "C"), ("D2", "district", "C"), ("S1", "street", "D1"),
     ("S2", "street", "D2"), ("M1", "community", "S1"), ("M2", "community", "S2"), ("G1", "grid", "M1"),
     ("G2", "grid", "M1"), ("G3", "grid", "M2")],
    columns=["code", "level", "parent_code"],
)

_BUILDINGS = [("B1", "G1", 30_000), ("B2", "G1", 10_000), ("B3", "G2", 10_000), ("B4", "G3", 50_000)]

_INCIDENTS = [
    # id, grid, reported, dispatched, arrived, resolved
    ("I1", "G1", "2026-11-16 10:00", "2026-11-16 10:01", "2026-11-16 10:09", "2026-11-16 11:00"),  # 9 min
    ("I2", "G1", "2026-11-17 08:00", "2026-11-17 08:02", "2026-11-17 08:20", "2026-11-17 09:00"),  # 20 min: late
    # Not reached at the end (12:00), 20 minutes after the report: known to be late; still active.
    ("I3", "G1", "2026-11-20 11:40", "2026-11-20 11:41", None, None),
    # Not reached at the end, 10 minutes after the report: not yet known whether in time; active.
    ("I4", "G2", "2026-11-20 11:50", "2026-11-20 11:51", None, None),
    # Reached in exactly 15 minutes (in time); resolved after the end, so active at the end.
    ("I5", "G2", "2026-11-19 14:00", "2026-11-19 14:01", "2026-11-19 14:15", "2026-11-20 13:00"),
    ("I6", "G3", "2026-11-18 09:00", "2026-11-18 09:01", "2026-11-18 09:12", "2026-11-18 10:00"),  # 12 min
    ("I7", "G3", "2026-11-15 22:00", "2026-11-15 22:01", "2026-11-15 22:30", "2026-11-16 01:00"),  # before W
    # Reached at 12:10, after the end: in W's view not yet reached, and late (11:15 < 12:00); active.
    ("I8", "G3", "2026-11-20 11:00", "2026-11-20 11:02", "2026-11-20 12:10", None),
    ("I9", "G1", "2026-11-20 12:30", "2026-11-20 12:31", None, None),                               # after W
    ("I10", "G3", "2026-11-19 10:00", "2026-11-19 10:01", "2026-11-19 10:05", "2026-11-19 10:30"),  # 5 min
]

_ENTERPRISES = [
    # id, grid, risk class, last inspected, open hazards. At W's end, 90 days back is 2026-08-22 12:00 and 180 days
    # back 2026-05-24 12:00.
    ("E1", "G1", "major_hazard", "2026-10-01 10:00", 2),
    ("E2", "G1", "major_hazard", "2026-08-01 10:00", 3),  # 111 days: overdue
    ("E3", "G1", "key", "2026-07-01 10:00", 1),           # 142 days: within key supervision's 180
    ("E4", "G2", "key", None, 0),                          # never inspected: overdue
    ("E5", "G2", "ordinary", None, 5),                     # ordinary: spot checks, never overdue
    ("E6", "G3", "major_hazard", "2026-08-22 12:00", 0),  # exactly 90 days: in time
    ("E7", "G3", "major_hazard", None, 1),                 # never inspected: overdue
    ("E8", "G3", "key", "2026-05-01 10:00", 4),           # 203 days: overdue
]

_WORKERS = [("W1", "G1", "full_time"), ("W2", "G1", "assistant"), ("W3", "G2", "full_time")]  # none in G3

_PATROLS = [
    # id, worker, grid, started, ended, issues found. The 24 hours before W's end begin on Thursday 19 at 12:00.
    ("P1", "W1", "G1", "2026-11-19 13:00", "2026-11-19 14:00", 2),
    ("P2", "W2", "G1", "2026-11-16 09:00", "2026-11-16 10:00", 1),
    ("P3", "W3", "G2", "2026-11-19 10:00", "2026-11-19 12:30", 1),  # ended inside the 24 hours: counts
    ("P4", "W3", "G2", "2026-11-20 11:30", None, 3),                # under way at the end of the data
    ("P5", "W1", "G1", "2026-11-20 11:00", "2026-11-20 12:30", 5),  # ended after W's end
    ("P6", "W3", "G3", "2026-11-18 09:00", "2026-11-18 10:00", 0),  # helping out in G3, before the 24 hours
    ("P7", "W2", "G1", "2026-11-15 09:00", "2026-11-15 10:00", 4),  # before W
    ("P8", "W1", "G1", "2026-11-20 12:00", "2026-11-20 13:00", 9),  # starts at W's end: outside
]

_CAMERAS = [
    # id, grid, AI video analysis, last seen (online at W's end when seen from 11:00 on)
    ("K1", "G1", True, "2026-11-20 11:59"),
    ("K2", "G1", False, "2026-11-20 11:00"),  # exactly an hour before: online
    ("K3", "G1", False, "2026-11-20 10:59"),  # offline
    ("K4", "G2", True, "2026-11-19 08:00"),   # offline
    ("K5", "G2", False, "2026-11-20 13:00"),  # seen after the end: online
]  # G3 has no camera

_ROADS = [
    # id, grid, class, length (m), condition, congestion index
    ("R1", "G1", "arterial", 1000.0, "poor", 8.0),
    ("R2", "G1", "branch", 200.0, "good", 7.0),  # exactly 7: congested
    ("R3", "G1", "branch", 300.0, "fair", 6.9),
    ("R4", "G2", "secondary", 500.0, "poor", 3.0),
    ("R5", "G3", "expressway", 2000.0, "good", 9.5),
    ("R6", "G3", "branch", 500.0, "poor", 2.0),
]


def _times(values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values))).dt.tz_localize(CITY_TIMEZONE)


def make_layers() -> dict[str, pd.DataFrame]:
    incidents = pd.DataFrame(_INCIDENTS, columns=["incident_id", "grid_code", "reported_at", "dispatched_at",
                                                  "arrived_at", "resolved_at"])
    for column in incidents.columns[2:]:
        incidents[column] = _times(incidents[column])
    incidents["kind"], incidents["severity"] = "fire", "general"
    enterprises = pd.DataFrame(_ENTERPRISES, columns=["enterprise_id", "grid_code", "risk_class",
                                                      "last_inspected_at", "open_hazards"])
    enterprises["last_inspected_at"] = _times(enterprises["last_inspected_at"])
    patrols = pd.DataFrame(_PATROLS, columns=["patrol_id", "worker_id", "grid_code", "started_at", "ended_at",
                                              "issues_found"])
    patrols["started_at"] = _times(patrols["started_at"])
    patrols["ended_at"] = _times(patrols["ended_at"])
    cameras = pd.DataFrame(_CAMERAS, columns=["camera_id", "grid_code", "ai_enabled", "last_seen_at"])
    cameras["last_seen_at"] = _times(cameras["last_seen_at"])
    return {
        "buildings": pd.DataFrame(_BUILDINGS, columns=["building_id", "grid_code", "residents"]),
        "incidents": incidents,
        "enterprises": enterprises,
        "grid_workers": pd.DataFrame(_WORKERS, columns=["worker_id", "grid_code", "post"]),
        "patrols": patrols,
        "cameras": cameras,
        "road_segments": pd.DataFrame(_ROADS, columns=["segment_id", "grid_code", "road_class", "length_m",
                                                       "condition", "congestion_index"]),
    }


def make_city(layers: dict[str, pd.DataFrame] | None = None) -> City:
    layers = make_layers() if layers is None else layers
    return City(units=UNITS.set_index("code", drop=False), hierarchy=build_hierarchy(UNITS),
                layers={name: frame.copy() for name, frame in layers.items()})


# --- expected values, by hand -------------------------------------------------------------------------------------

EXPECTED = {
    # Reported before 12:00 on Friday and not resolved by then: I3 (G1); I4, I5 (G2, resolved at 13:00); I8 (G3).
    # I7 was resolved on Monday, I9 reported after the end.
    "active_incidents": {"G1": 1, "G2": 2, "G3": 1, "D1": 3, "D2": 1, "C": 4},
    # Minutes from report to arrival, over incidents reported in W and reached before its end:
    # G1 I1 9, I2 20 → 14.5; G2 I5 15; G3 I6 12, I10 5 → 8.5 (I8 was reached after the end);
    # D1 (9 + 20 + 15) / 3 = 14.67; D2 8.5; C (44 + 17) / 5 = 12.2 (not (14.67 + 8.5) / 2 = 11.58).
    "incident_arrival_minutes": {"G1": 14.5, "G2": 15.0, "G3": 8.5, "D1": 44 / 3, "D2": 8.5, "C": 12.2},
    # Reported in W, outcome known at its end (reached, or 15 minutes gone): G1 I1 in time, I2 late, I3 late (20
    # minutes and still not there) → 1/3; G2 I5 in time (15:00 exactly), I4 unknown (10 minutes) → 1/1;
    # G3 I6, I10 in time, I8 late → 2/3; D1 2/4 = 50; D2 66.67; C 4/7 = 57.14 (not (50 + 66.67) / 2 = 58.33).
    "incident_arrival_15min_rate": {"G1": 100 / 3, "G2": 100.0, "G3": 200 / 3, "D1": 50.0, "D2": 200 / 3,
                                    "C": 400 / 7},
    # Reported in W × 100,000 ÷ residents ÷ 4.5 days: G1 3 (I1–I3) of 40,000 → 1.667; G2 2 (I4, I5) of 10,000
    # → 4.444; G3 3 (I6, I8, I10) of 50,000 → 1.333; D1 5 of 50,000 → 2.222; D2 1.333; C 8 of 100,000 → 1.778.
    "incidents_per_100k_residents": {"G1": 3e5 / (4.5 * 40_000), "G2": 2e5 / (4.5 * 10_000),
                                     "G3": 3e5 / (4.5 * 50_000), "D1": 5e5 / (4.5 * 50_000),
                                     "D2": 3e5 / (4.5 * 50_000), "C": 8e5 / (4.5 * 100_000)},
    # Major hazards not inspected in the 90 days before the end: E2 (G1), E7 (G3, never). E6 is exactly 90 days.
    # G2 has none: a real 0.
    "major_hazard_overdue_inspections": {"G1": 1, "G2": 0, "G3": 1, "D1": 1, "D2": 1, "C": 2},
    # Overdue of the major-hazard and key enterprises (E5 is ordinary): G1 E2 of E1–E3 → 1/3; G2 E4 of E4 → 1/1;
    # G3 E7, E8 of E6–E8 → 2/3; D1 2/4 = 50; D2 66.67; C 4/7 = 57.14.
    "inspection_overdue_rate": {"G1": 100 / 3, "G2": 100.0, "G3": 200 / 3, "D1": 50.0, "D2": 200 / 3,
                                "C": 400 / 7},
    # Open hazards per major hazard: G1 (2 + 3) / 2 = 2.5; G2 has no major hazard → no data; G3 (0 + 1) / 2 = 0.5;
    # D1 2.5; D2 0.5; C 6 / 4 = 1.5.
    "open_hazards_per_major_hazard_site": {"G1": 2.5, "G2": NAN, "G3": 0.5, "D1": 2.5, "D2": 0.5, "C": 1.5},
    # Patrolled since Thursday 12:00: G1 (P1, P5), G2 (P3 ended at 12:30; P4 under way); G3 only on Wednesday (P6).
    # G1 1/1, G2 1/1, G3 0/1; D1 2/2 = 100; D2 0; C 2/3 = 66.67 (not (100 + 0) / 2 = 50).
    "patrolled_cells_24h_rate": {"G1": 100.0, "G2": 100.0, "G3": 0.0, "D1": 100.0, "D2": 0.0, "C": 200 / 3},
    # Patrols started in W and ended before its end: P1 2, P2 1 (G1); P3 1 (G2); P6 0 (G3). P4 and P5 were not over,
    # P7 came before W, P8 at its end. G1 3/2 = 1.5; G2 1; G3 0; D1 4/3; D2 0; C 4/4 = 1 (not (1.33 + 0) / 2).
    "issues_per_patrol": {"G1": 1.5, "G2": 1.0, "G3": 0.0, "D1": 4 / 3, "D2": 0.0, "C": 1.0},
    # Residents ÷ workers: G1 40,000 / 2; G2 10,000 / 1; G3 50,000 and no worker → no data; D1 50,000 / 3;
    # D2 no worker → no data; C 100,000 / 3 (G3's residents count in the city).
    "residents_per_grid_worker": {"G1": 20_000.0, "G2": 10_000.0, "G3": NAN, "D1": 50_000 / 3, "D2": NAN,
                                  "C": 100_000 / 3},
    # Seen from 11:00 on: G1 K1, K2 of K1–K3 → 2/3; G2 K5 of K4, K5 → 1/2; G3 no camera → no data; D1 3/5 = 60.
    "camera_online_rate": {"G1": 200 / 3, "G2": 50.0, "G3": NAN, "D1": 60.0, "D2": NAN, "C": 60.0},
    # With AI: G1 K1 → 1/3; G2 K4 → 1/2; D1 2/5 = 40.
    "ai_camera_share": {"G1": 100 / 3, "G2": 50.0, "G3": NAN, "D1": 40.0, "D2": NAN, "C": 40.0},
    # Poor length ÷ length: G1 1,000 / 1,500; G2 500 / 500; G3 500 / 2,500 = 20; D1 1,500 / 2,000 = 75; D2 20;
    # C 2,000 / 4,500 = 44.44 (by number of segments it would be 3 of 6 = 50).
    "poor_road_share": {"G1": 200 / 3, "G2": 100.0, "G3": 20.0, "D1": 75.0, "D2": 20.0, "C": 2000 / 45},
    # Congestion index ≥ 7: G1 R1 + R2 (exactly 7) = 1,200 of 1,500 → 80; G2 0 (a real 0); G3 R5 2,000 of 2,500
    # → 80; D1 1,200 / 2,000 = 60; D2 80; C 3,200 / 4,500 = 71.11.
    "congested_road_share": {"G1": 80.0, "G2": 0.0, "G3": 80.0, "D1": 60.0, "D2": 80.0, "C": 3200 / 45},
}

CASES = [(indicator_id, code, value) for indicator_id, by_code in EXPECTED.items() for code, value in by_code.items()]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return compute(make_city(), W, list(EXPECTED))


def value_of(table: pd.DataFrame, indicator_id: str, code: str) -> pd.Series:
    rows = table[(table["indicator"] == indicator_id) & (table["code"] == code)]
    assert len(rows) == 1, f"{indicator_id} at {code}: {len(rows)} rows"
    return rows.iloc[0]


def test_expectations_are_for_registered_single_indicators():
    for indicator_id in EXPECTED:
        assert INDICATORS[indicator_id].family is None
        assert INDICATORS[indicator_id].thresholds is not None, f"{indicator_id}: an operator needs thresholds"
        assert INDICATORS[indicator_id].headline is False


@pytest.mark.parametrize("indicator_id, code, expected", CASES, ids=[f"{i}-{c}" for i, c, _ in CASES])
def test_indicator_value_by_hand(table, indicator_id, code, expected):
    row = value_of(table, indicator_id, code)
    if math.isnan(expected):
        assert math.isnan(row["value"]), f"{indicator_id} at {code}: expected no data, got {row['value']}"
        assert row["state"] == NO_DATA
    else:
        assert row["value"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert row["state"] in STATES


@pytest.mark.parametrize("indicator_id, code, state", [
    ("active_incidents", "C", "watch"),                     # 4: 1 ≤ 4 < 10
    ("incident_arrival_minutes", "G3", "good"),             # 8.5 < 10
    ("incident_arrival_minutes", "D1", "warning"),          # 14.67: 12 ≤ x < 15
    ("incident_arrival_minutes", "G2", "critical"),         # 15 ≥ 15
    ("incident_arrival_15min_rate", "G2", "good"),          # 100 ≥ 90
    ("incident_arrival_15min_rate", "C", "critical"),       # 57.14 < 70
    ("incidents_per_100k_residents", "G3", "good"),         # 1.33 < 3
    ("incidents_per_100k_residents", "G2", "watch"),        # 4.44: 3 ≤ x < 5
    ("major_hazard_overdue_inspections", "G2", "good"),     # 0 < 1
    ("major_hazard_overdue_inspections", "C", "watch"),     # 2: 1 ≤ 2 < 3
    ("inspection_overdue_rate", "C", "critical"),           # 57.14 ≥ 10
    ("open_hazards_per_major_hazard_site", "G3", "watch"),  # 0.5: 0.5 ≤ x < 1
    ("open_hazards_per_major_hazard_site", "C", "warning"),  # 1.5: 1 ≤ x < 2
    ("open_hazards_per_major_hazard_site", "G1", "critical"),  # 2.5 ≥ 2
    ("patrolled_cells_24h_rate", "D1", "good"),             # 100 ≥ 95
    ("patrolled_cells_24h_rate", "C", "critical"),          # 66.67 < 80
    ("issues_per_patrol", "G3", "good"),                    # 0 < 0.5
    ("issues_per_patrol", "C", "warning"),                  # 1: 1 ≤ x < 2
    ("residents_per_grid_worker", "G2", "critical"),        # 10,000 ≥ 4,000
    ("camera_online_rate", "C", "critical"),                # 60 < 90
    ("ai_camera_share", "C", "good"),                       # 40 ≥ 40
    ("ai_camera_share", "G1", "watch"),                     # 33.33: 20 ≤ x < 40
    ("poor_road_share", "D2", "critical"),                  # 20 ≥ 10
    ("congested_road_share", "G2", "good"),                 # 0 < 5
])
def test_states(table, indicator_id, code, state):
    assert value_of(table, indicator_id, code)["state"] == state


def test_numerators_and_denominators_add_up_from_the_grid_cells(table):
    hierarchy = build_hierarchy(UNITS)
    for indicator_id in EXPECTED:
        rows = table[table["indicator"] == indicator_id].set_index("code")
        for level, code in (("district", "D1"), ("district", "D2"), ("city", "C")):
            cells = hierarchy.index[hierarchy[level] == code]
            assert rows.loc[code, "numerator"] == pytest.approx(rows.loc[cells, "numerator"].sum()), indicator_id
            assert rows.loc[code, "denominator"] == pytest.approx(rows.loc[cells, "denominator"].sum()), indicator_id


def test_incidents_per_100k_residents_is_per_day_whatever_the_window():
    city = make_city()
    day = compute(city, Window(t("2026-11-19 12:00"), t("2026-11-20 12:00")), ["incidents_per_100k_residents"],
                  levels=("city",))
    # In those 24 hours: I5, I8, I3, I4 (I10 was at 10:00 on Thursday) → 4 × 100,000 ÷ 100,000 ÷ 1 day.
    assert day["value"].iloc[0] == pytest.approx(4.0)
    two_days = compute(city, Window(t("2026-11-18 12:00"), t("2026-11-20 12:00")), ["incidents_per_100k_residents"],
                       levels=("city",))
    # In 48 hours: those four and I10 (I6 was at 09:00 on Wednesday) → 5 × 100,000 ÷ 100,000 ÷ 2 days.
    assert two_days["value"].iloc[0] == pytest.approx(2.5)


def test_inspection_after_the_window_counts_as_in_time():
    # The register keeps the last inspection only: an enterprise inspected after a window's end was not overdue in
    # it as far as the data can tell.
    layers = make_layers()
    layers["enterprises"].loc[layers["enterprises"]["enterprise_id"] == "E7", "last_inspected_at"] = \
        t("2026-11-25 10:00")
    result = compute(make_city(layers), W, ["major_hazard_overdue_inspections"], levels=("grid",))
    assert result.set_index("code").loc["G3", "value"] == 0


@pytest.mark.parametrize("missing", ["absent", "empty"])
def test_a_city_without_the_layers_has_no_data_not_zero(missing):
    # An imported city (boundaries and buildings only): no incident, enterprise, patrol, camera or road figure.
    layers = make_layers()
    for name in NEW_LAYERS:
        if missing == "absent":
            del layers[name]
        else:
            layers[name] = layers[name].iloc[0:0]
    result = compute(make_city(layers), W, list(EXPECTED))
    assert result["value"].isna().all()
    assert set(result["state"]) == {NO_DATA}


def test_rows_outside_every_grid_cell_are_ignored():
    layers = make_layers()
    stray = layers["incidents"].iloc[[0]].assign(incident_id="I404", grid_code="G404")
    layers["incidents"] = pd.concat([layers["incidents"], stray], ignore_index=True)
    stray_road = layers["road_segments"].iloc[[0]].assign(segment_id="R404", grid_code="G404")
    layers["road_segments"] = pd.concat([layers["road_segments"], stray_road], ignore_index=True)
    result = compute(make_city(layers), W, ["incident_arrival_minutes", "poor_road_share"], levels=("city",))
    assert result.set_index("indicator")["value"].to_dict() == pytest.approx(
        {"incident_arrival_minutes": 12.2, "poor_road_share": 2000 / 45})


# --- the sample city's layers -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def layers() -> dict[str, pd.DataFrame]:
    return generate("test", seed=SEED)


@pytest.fixture(scope="module")
def cells(layers) -> pd.Series:
    units = layers["units"]
    grids = units[units["level"] == "grid"]
    return grids.set_index("code").geometry


def test_new_layers_are_registered_loaded_and_generated(layers):
    for name in NEW_LAYERS:
        assert name in LAYERS and name in EVENT_LAYERS and name in layers
        frame = layers[name]
        spec = LAYERS[name]
        assert set(spec.column_names) <= set(frame.columns), name
        assert frame[spec.key].is_unique, name
        assert len(frame) > 0, name


def test_same_seed_same_layers_and_each_has_its_own_random_stream(layers):
    again = generate("test", seed=SEED)
    other = generate("test", seed=7)
    for name in NEW_LAYERS:
        pd.testing.assert_frame_equal(pd.DataFrame(again[name]), pd.DataFrame(layers[name]), obj=name)
        assert not pd.DataFrame(other[name]).equals(pd.DataFrame(layers[name])), name
    # Built alone from the units and buildings, they come out the same: the older layers' draws do not touch them.
    alone = build_safety_layers(layers["units"], layers["buildings"], SCALES["test"], SEED, DEFAULT_END)
    for name in NEW_LAYERS:
        pd.testing.assert_frame_equal(pd.DataFrame(alone[name]), pd.DataFrame(layers[name]), obj=name)


def test_sizes_follow_the_scale(layers):
    scale = SCALES["test"]
    assert len(layers["enterprises"]) == scale.enterprises
    assert len(layers["cameras"]) == scale.cameras
    assert len(layers["road_segments"]) == scale.road_segments
    # Incidents: incidents_per_day over order_days + the last day up to 16:00 (7.67 days), ±30 %.
    assert len(layers["incidents"]) == pytest.approx(scale.incidents_per_day * (scale.order_days + 16 / 24),
                                                     rel=0.3)
    # City-scale figures are those of ../shared/CONTEXT.md (380,000 video feeds; 3.6 million legal entities, one in
    # ten on the work-safety register); the demo and test scales keep the city's ratio to buildings.
    city = SCALES["city"]
    assert city.cameras == 380_000 and city.enterprises == 360_000
    for name in ("test", "demo"):
        ratio = SCALES[name].buildings / city.buildings
        assert SCALES[name].cameras == pytest.approx(city.cameras * ratio, rel=0.01)
        assert SCALES[name].enterprises == pytest.approx(city.enterprises * ratio, rel=0.01)
        assert SCALES[name].road_segments == pytest.approx(city.road_segments * ratio, rel=0.02)


@pytest.mark.parametrize("name", ["incidents", "enterprises", "cameras", "road_segments"])
def test_points_lie_in_their_grid_cell(layers, cells, name):
    frame = layers[name]
    assert frame["grid_code"].isin(cells.index).all()
    inside = shapely.covers(cells.reindex(frame["grid_code"]).to_numpy(), shapely.points(frame["lon"], frame["lat"]))
    assert inside.all(), f"{name}: {(~inside).sum()} of {len(frame)} points outside their grid cell"


def test_incident_times_in_order_and_known_only_up_to_the_end(layers):
    incidents = layers["incidents"]
    stages = incidents[["reported_at", "dispatched_at", "arrived_at", "resolved_at"]]
    present = stages.notna()
    assert present["reported_at"].all()
    assert (present.cummin(axis=1) == present).all().all()  # no stage without the ones before it
    for earlier, later in zip(stages.columns, stages.columns[1:]):
        both = present[earlier] & present[later]
        assert (stages.loc[both, earlier] <= stages.loc[both, later]).all(), f"{earlier} after {later}"
    for column in stages.columns:
        assert (stages[column].dropna() <= DEFAULT_END).all(), column
    assert incidents["reported_at"].is_monotonic_increasing
    assert set(incidents["kind"]) <= {k[0] for k in INCIDENT_KINDS}
    assert set(incidents["severity"]) <= {s[0] for s in INCIDENT_SEVERITIES}
    assert incidents["kind"].nunique() >= 5


def test_incident_calibration(layers):
    # Stated ranges: responders arrive mostly 8–15 minutes after the report (at least 60 % of incidents), with a
    # tail; the median is 9–13 minutes and at least 80 % arrive within 15 minutes. At the demo scale there are a
    # few incidents per district per day.
    incidents = layers["incidents"]
    minutes = ((incidents["arrived_at"] - incidents["reported_at"]).dt.total_seconds() / 60).dropna()
    assert minutes.between(8, 15).mean() >= 0.6
    assert 9 <= minutes.median() <= 13
    assert (minutes <= 15).mean() >= 0.8
    assert minutes.max() > 15  # the tail
    districts = 8
    assert 2 <= SCALES["demo"].incidents_per_day / districts <= 6


def test_enterprises_classes_and_inspections(layers):
    enterprises = layers["enterprises"]
    assert set(enterprises["risk_class"]) == set(RISK_CLASSES)
    assert set(enterprises["industry"]) <= {i[0] for i in INDUSTRIES}
    assert (enterprises["employees"] >= 1).all() and (enterprises["open_hazards"] >= 0).all()
    share = enterprises["risk_class"].value_counts(normalize=True)
    # Stated ranges: 0.5–3 % major hazard installations, 5–15 % under key supervision.
    assert 0.005 <= share["major_hazard"] <= 0.03
    assert 0.05 <= share["key"] <= 0.15
    assert (enterprises["last_inspected_at"].dropna() <= DEFAULT_END).all()
    major = enterprises[enterprises["risk_class"] == "major_hazard"]
    assert major["last_inspected_at"].notna().all()  # only ordinary enterprises may never have been inspected
    overdue = major["last_inspected_at"] < DEFAULT_END - pd.Timedelta(days=90)
    assert overdue.mean() <= 0.15
    assert 0.2 <= major["open_hazards"].mean() <= 1.0
    # Major hazards are industrial: chemicals, fuel and manufacturing, not offices or shops.
    assert not major["industry"].isin(["software_it", "finance", "business_services", "retail"]).any()


def test_grid_workers_one_per_cell_and_more_where_people_are(layers, cells):
    workers, buildings = layers["grid_workers"], layers["buildings"]
    full_time = workers[workers["post"] == "full_time"]
    assert sorted(full_time["grid_code"]) == sorted(cells.index)  # exactly one full-time worker per cell
    assert set(workers["post"]) == {post[0] for post in GRID_WORKER_POSTS}
    per_cell = workers.groupby("grid_code").size().reindex(cells.index)
    residents = buildings.groupby("grid_code")["residents"].sum().reindex(cells.index).fillna(0)
    assert np.corrcoef(per_cell, residents)[0, 1] > 0.3
    assert len(cells) <= len(workers) <= 1.5 * len(cells)  # the test city is thinly populated


def test_patrols_by_their_workers_in_their_cells_without_overlap(layers):
    patrols, workers = layers["patrols"], layers["grid_workers"].set_index("worker_id")
    assert patrols["worker_id"].isin(workers.index).all()
    assert (patrols["grid_code"] == patrols["worker_id"].map(workers["grid_code"])).all()
    assert patrols["started_at"].is_monotonic_increasing
    assert (patrols["started_at"] <= DEFAULT_END).all()
    finished = patrols["ended_at"].notna()
    duration = patrols["ended_at"] - patrols["started_at"]
    assert duration[finished].between(pd.Timedelta(minutes=30), pd.Timedelta(minutes=100)).all()
    assert (patrols.loc[finished, "ended_at"] <= DEFAULT_END).all()
    # A patrol without an end is under way at the end of the data.
    assert (patrols.loc[~finished, "started_at"] > DEFAULT_END - pd.Timedelta(minutes=100)).all()
    assert (patrols["started_at"].dt.hour.between(8, 19)).all()
    ordered = patrols.sort_values(["worker_id", "started_at"])
    same_worker = ordered["worker_id"].eq(ordered["worker_id"].shift())
    assert (ordered["started_at"][same_worker] >= ordered["ended_at"].shift()[same_worker]).all()
    # Several a day per worker (on duty or not), over patrol_days + today.
    days = SCALES["test"].patrol_days + 16 / 24
    assert 1.5 <= len(patrols) / len(workers) / days <= 4


def test_cameras_calibration(layers):
    cameras = layers["cameras"]
    assert set(cameras["status"]) == {"online", "offline"}
    seen_recently = cameras["last_seen_at"] >= DEFAULT_END - ONLINE_GRACE
    assert (seen_recently == (cameras["status"] == "online")).all()
    assert (cameras["last_seen_at"] <= DEFAULT_END).all()
    # Bao'an: 131,000 of the 380,000 feeds (34.5 %), ±4 points at the test scale; 95–99.5 % online; 20–40 % with
    # AI video analysis, most in Longhua.
    district = cameras["grid_code"].str[:6]
    assert (district == BAOAN).mean() == pytest.approx(BAOAN_CAMERA_SHARE, abs=0.04)
    assert 0.95 <= (cameras["status"] == "online").mean() <= 0.995
    assert 0.20 <= cameras["ai_enabled"].mean() <= 0.40
    assert cameras.loc[district == "440309", "ai_enabled"].mean() > cameras.loc[district != "440309",
                                                                                "ai_enabled"].mean()


def test_roads_calibration(layers):
    roads = layers["road_segments"]
    assert set(roads["road_class"]) <= {c[0] for c in ROAD_CLASSES}
    assert set(roads["condition"]) <= set(ROAD_CONDITIONS)
    assert roads["congestion_index"].between(1, 10).all()
    assert roads["length_m"].between(30, 4_000).all()
    length = roads["length_m"]
    # Stated ranges: 200–400 m a segment on average (27,000 segments ≈ 8,000 km at the city scale); 1–8 % of the
    # length in poor condition; 2–15 % congested; expressways are the longest segments.
    assert 200 <= length.mean() <= 400
    assert 1 <= 100 * length[roads["condition"] == "poor"].sum() / length.sum() <= 8
    assert 2 <= 100 * length[roads["congestion_index"] >= 7].sum() / length.sum() <= 15
    by_class = length.groupby(roads["road_class"]).median()
    assert by_class.idxmax() == "expressway"


def test_every_new_indicator_has_a_judged_value_on_the_sample_city(layers):
    units = layers["units"].set_index("code", drop=False)
    data = {name: layers[name].copy() for name in (*NEW_LAYERS, "buildings")}
    city = City(units=units, hierarchy=build_hierarchy(units), layers=data)
    as_of = DEFAULT_END - pd.Timedelta(seconds=1)
    table = compute(city, named_window("7d", as_of), list(EXPECTED), levels=("city", "district"))
    city_rows = table[table["level"] == "city"]
    assert city_rows["state"].isin(STATES).all(), city_rows[~city_rows["state"].isin(STATES)]
    # In the districts too, but for the open hazards of districts without a major hazard site in the small city.
    districts = table[(table["level"] == "district") & ~table["state"].isin(STATES)]
    assert set(districts["indicator"]) <= {"open_hazards_per_major_hazard_site"}
    figures = city_rows.set_index("indicator")["value"]
    # Stated sanity bands for the test city.
    assert 80 <= figures["patrolled_cells_24h_rate"] <= 100
    assert 0.2 <= figures["issues_per_patrol"] <= 0.6
    assert 9 <= figures["incident_arrival_minutes"] <= 13
    assert figures["incident_arrival_15min_rate"] >= 80


def test_new_layers_load_from_the_store_with_their_grid_cells(tmp_path, layers):
    store = Store(f"sqlite:///{tmp_path / 'city.sqlite'}")
    store.replace_layers({name: encode_frame(name, frame) for name, frame in layers.items()}, "test")
    city = load_city(store)
    for name in NEW_LAYERS:
        frame = city[name]
        assert len(frame) == len(layers[name]), name
        assert (frame["grid_index"] >= 0).all(), name
    # And an empty layer (an imported city without it) loads as zero rows.
    store.replace_layers({"patrols": encode_frame("patrols", empty_frame("patrols"))}, "empty")
    assert len(load_city(store, layer_ids=("patrols",))["patrols"]) == 0
