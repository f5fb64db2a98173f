"""Tests for recurring-hotspot detection (metrics/hotspots.py).

On the sample cities the generator's ground truth (``planted_hotspots``) says what must be found; on a city
generated with no hotspot nothing should be; a tiny hand-made city checks every figure of the one hotspot it holds,
with its arithmetic written out.
"""
from __future__ import annotations

import dataclasses
import doctest

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

import metrics.hotspots
from layers.specs import CITY_TIMEZONE
from metrics.hotspots import COLUMNS, compare_with_planted, detect_hotspots
from metrics.spec import Window
from sample_data.generator import SCALES, generate

MIN_RECALL = 0.9
MIN_PRECISION = 0.8
# With alpha = 0.01 the chance that a city without hotspots shows any is at most 1% under the model; two allow for
# the model being only a model (the generator's counts are multinomial, not exactly Poisson).
MAX_FALSE_HOTSPOTS = 2

MEASURED: dict[str, str] = {}
"""What each sample city measured, printed at the end of the module's tests (and in failure messages)."""


@pytest.fixture(scope="module", autouse=True)
def report_measured(request):
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\nhotspot detection, measured:")
        for name, figures in MEASURED.items():
            print(f"  {name}: {figures}")


SAMPLE_SEEDS = {"test": 7, "demo": 20231}


@pytest.fixture(scope="module", params=list(SAMPLE_SEEDS))
def sample_city(request):
    return request.param, generate(request.param, seed=SAMPLE_SEEDS[request.param])


def test_finds_the_planted_hotspots(sample_city):
    scale, city = sample_city
    found = detect_hotspots(city, None)
    score = compare_with_planted(found, city["planted_hotspots"])
    MEASURED[scale] = (f"recall {score['recall']:.2f} ({score['planted_found']}/{score['planted']} planted found), "
                       f"precision {score['precision']:.2f} ({score['found_matching']}/{score['found']} found "
                       f"match a planted one)")
    assert score["recall"] >= MIN_RECALL, MEASURED[scale]
    assert score["precision"] >= MIN_PRECISION, MEASURED[scale]


@pytest.mark.parametrize("scale, seed", [("test", 7), ("demo", 3)])
def test_a_city_without_hotspots_shows_few(scale, seed):
    city = generate(dataclasses.replace(SCALES[scale], hotspots=0), seed=seed)
    found = detect_hotspots(city, None)
    MEASURED[f"{scale} without hotspots"] = f"{len(found)} found"
    assert len(found) <= MAX_FALSE_HOTSPOTS, found["evidence"].tolist()


# --- a city worked out by hand -----------------------------------------------------------------------------------
#
# Ten grid cells G01…G10, ten days from Monday 2026-11-02 (Asia/Shanghai):
# - garbage overflow: every cell 3 orders a day at 10:00                                           300 orders
# - business noise in G01: every night at 22:30, 23:30 and 00:30 (the next day)  — the hotspot      30 orders
# - illegal parking in G02: 15 orders in one hour (20:00–20:56) on one night     — an incident      15 orders
# N = 345 orders; G01 has 30 + 30 = 60 of them, G02 30 + 15 = 45.
# Business noise 22:00–01:00: 30 orders city-wide, all in G01. Expected in G01: 30 × 60/345 = 5.22; ratio 5.75.
# Tests: 3 event types × 10 cells × 24 bands = 720. Every night has orders between 22:00 and 01:00: 10 days.
# Daily expectation 0.52, so a busy night needs 2 orders (≥ 2 × 0.52 = 1.04): all ten nights, with 3, are busy.
# The incident: 15 illegal-parking orders against 15 × 45/345 = 1.96 expected, significant, but on 1 night of 10.

CELLS = [f"G{number:02d}" for number in range(1, 11)]
FIRST_DAY = pd.Timestamp("2026-11-02", tz=CITY_TIMEZONE)


def hand_made_orders() -> pd.DataFrame:
    days = FIRST_DAY + pd.to_timedelta(np.arange(10), unit="D")
    garbage = pd.DataFrame({"event_type": "garbage_overflow", "grid_code": np.tile(np.repeat(CELLS, 3), 10),
                            "received_at": (days + pd.Timedelta(hours=10)).repeat(30)})
    noise = pd.DataFrame({"event_type": "business_noise", "grid_code": "G01",
                          "received_at": days.repeat(3) + pd.to_timedelta(np.tile([22.5, 23.5, 24.5], 10), unit="h")})
    incident = pd.DataFrame({"event_type": "illegal_parking", "grid_code": "G02",
                             "received_at": days[5] + pd.Timedelta(hours=20) + pd.to_timedelta(np.arange(15) * 4,
                                                                                              unit="min")})
    return pd.concat([garbage, noise, incident], ignore_index=True)


def test_hand_made_city():
    found = detect_hotspots(hand_made_orders(), None)
    assert len(found) == 1
    hotspot = found.iloc[0]
    expected = 30 * 60 / 345
    assert (hotspot["event_type"], hotspot["grid_code"], hotspot["start_hour"], hotspot["end_hour"]) == \
        ("business_noise", "G01", 22, 1)
    assert (hotspot["days_seen"], hotspot["days"], hotspot["orders"]) == (10, 10, 30)
    assert hotspot["expected"] == pytest.approx(expected)
    assert hotspot["ratio"] == pytest.approx(5.75)
    assert hotspot["p_value"] == pytest.approx(720 * poisson.sf(29, expected))
    assert hotspot["evidence"] == \
        "30 'business noise' orders in grid G01 between 22:00 and 01:00 on 10 of 10 nights; 5.2 expected"


def test_a_one_night_incident_is_significant_but_not_recurring():
    found = detect_hotspots(hand_made_orders(), None, min_days_share=0)
    incident = found[found["event_type"] == "illegal_parking"]
    assert len(incident) == 1
    assert (incident["grid_code"].item(), incident["orders"].item(), incident["days_seen"].item()) == ("G02", 15, 1)
    assert incident["expected"].item() == pytest.approx(15 * 45 / 345)
    assert (20 - incident["start_hour"].item()) % 24 < 3  # its band covers 20:00


def test_the_window_selects_the_orders():
    orders = hand_made_orders()
    first_five_nights = Window(FIRST_DAY, FIRST_DAY + pd.Timedelta(days=5, hours=2))
    found = detect_hotspots(orders, first_five_nights)
    assert found[["grid_code", "days_seen", "days", "orders"]].values.tolist() == [["G01", 5, 5, 15]]


def test_strongest_first():
    orders = hand_made_orders()
    # A second, weaker hotspot: garbage overflow in G05 once more every evening at 19:00.
    days = FIRST_DAY + pd.to_timedelta(np.arange(10), unit="D")
    weaker = pd.DataFrame({"event_type": "garbage_overflow", "grid_code": "G05",
                           "received_at": days + pd.Timedelta(hours=19)})
    found = detect_hotspots(pd.concat([orders, weaker], ignore_index=True), None)
    assert found["grid_code"].tolist() == ["G01", "G05"]
    assert found["log_likelihood_ratio"].is_monotonic_decreasing


def test_orders_without_a_type_or_a_cell_are_left_out():
    orders = hand_made_orders()
    unplaced = pd.DataFrame({"event_type": [None, "business_noise"], "grid_code": ["G01", None],
                             "received_at": [FIRST_DAY + pd.Timedelta(hours=23)] * 2})
    found = detect_hotspots(pd.concat([orders, unplaced], ignore_index=True), None)
    pd.testing.assert_frame_equal(found, detect_hotspots(orders, None))


def test_no_orders_gives_an_empty_table_with_the_columns():
    empty_orders = hand_made_orders().iloc[:0]
    found = detect_hotspots(empty_orders, None)
    assert found.empty and list(found.columns) == COLUMNS
    nothing_in_window = Window(FIRST_DAY - pd.Timedelta(days=30), FIRST_DAY)
    found = detect_hotspots(hand_made_orders(), nothing_in_window)
    assert found.empty and list(found.columns) == COLUMNS


def test_compare_with_planted_matches_overlapping_bands_only():
    planted = pd.DataFrame({"event_type": ["business_noise"], "grid_code": ["G01"], "start_hour": [22],
                            "end_hour": [1]})
    found = pd.DataFrame({"event_type": ["business_noise", "business_noise", "business_noise"],
                          "grid_code": ["G01", "G01", "G02"], "start_hour": [0, 1, 22], "end_hour": [3, 4, 1]})
    score = compare_with_planted(found, planted)
    # 00:00–03:00 overlaps 22:00–01:00 across midnight; 01:00–04:00 does not; G02 is another cell.
    assert (score["planted_found"], score["found_matching"], score["recall"]) == (1, 1, 1.0)
    assert score["precision"] == pytest.approx(1 / 3)


def test_docstring_example():
    assert doctest.testmod(metrics.hotspots).failed == 0
