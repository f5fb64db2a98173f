"""Recurring hotspots: the same event type, at the same place, in the same hours of the day, day after day.

One work order is a case; a hotspot is a class of cases that one visit could settle (a building site working at
night, a bar's terrace, a bin that overflows every evening). :func:`detect_hotspots` finds them in the orders of a
time window and says, for each, what it saw and how unlikely that is by chance.

Method
------
A space-time scan statistic [1]_ [2]_ simplified to fixed candidate cylinders: the base of a cylinder is one grid cell, its height one band of
``band_hours`` consecutive hours of the day (24 bands, one starting at each hour, wrapping past midnight), stacked
over every day of the window. For each event type ``e``, grid cell ``g`` and band ``b``:

.. math::

    \\text{expected}_{e,g,b} = N_{e,b} \\cdot \\frac{N_g}{N}

where :math:`N_{e,b}` is the number of orders of type ``e`` the whole city received in band ``b`` over the window,
:math:`N_g` the number of orders of any type received in cell ``g`` and :math:`N` all orders: the cell's usual share
of the city's orders, applied to what the city reported of that type in those hours. Under the null hypothesis the
count is Poisson with that mean, so

.. math::

    p_{e,g,b} = P(X \\ge \\text{observed}), \\quad X \\sim \\text{Poisson}(\\text{expected})

and the reported ``p_value`` is Bonferroni-corrected over every candidate that could have been tested
(event types × grid cells with orders in the window × 24 bands). A candidate is a hotspot when

1. its corrected p-value is at most ``alpha`` (the excess is real), and
2. it recurs: the excess shows on at least ``min_days_share`` of the days of the window. A day counts ("busy
   day") when the cylinder received at least one order that day and at least twice its daily expectation
   (``expected`` spread evenly over the days); so a week's worth of orders on one bad night is an incident, not a
   hotspot. A band that wraps past midnight belongs to the day it starts on: 22:00–01:00 is one night.

Overlapping bands of the same type and cell describe the same hotspot seen through a shifted window, so only the
strongest of them is kept (greedy, strongest first, as Kulldorff's secondary clusters). Strength is the Poisson
log-likelihood ratio, :math:`o \\ln(o/e) - (o - e)`, which ranks like the p-value but does not underflow to 0 at
city scale.

Assumptions
-----------
- Event type and place are independent apart from hotspots: a cell gets its overall share of every type. A cell
  that reports a type far more than others at every hour (a market and its street vending) is flagged on each
  band where that shows; those are real recurring hotspots too, only not tied to an hour.
- Counts are Poisson. Real counts are overdispersed (a rainstorm brings waterlogging everywhere for a day); the
  recurrence condition is what keeps such one-off bursts out.
- The expectation counts the hotspot's own orders. That makes the test conservative, not wrong.
- Days are counted from the window's first order to its last, so a window longer than the data does not dilute
  recurrence. A gap inside the data counts as days without the hotspot: conservative.

Parameters (of :func:`detect_hotspots`)
---------------------------------------
band_hours : int, default 3
    Height of the candidate cylinders, in hours of the day.
min_days_share : float, default 0.5
    Share of the band's days in the window (from its first order to its last) that must be busy days.
alpha : float, default 0.01
    Family-wise error rate: the chance that a city with no hotspot at all shows one.

References
----------
.. [1] Kulldorff M. (2001). Prospective time periodic geographical disease surveillance using a scan statistic.
   Journal of the Royal Statistical Society A, 164(1), 61–72.
.. [2] Kulldorff M., Heffernan R., Hartman J., Assunção R., Mostashari F. (2005). A space-time permutation scan
   statistic for disease outbreak detection. PLoS Medicine, 2(3), e59.

Examples
--------
>>> import pandas as pd
>>> nights = pd.date_range("2026-11-01 22:30", periods=10, freq="D", tz="Asia/Shanghai")
>>> noise = pd.DataFrame({"event_type": "business_noise", "grid_code": "G1",
...                       "received_at": nights.repeat(3) + pd.to_timedelta([0, 60, 120] * 10, unit="min")})
>>> days = pd.date_range("2026-11-01 10:00", periods=10, freq="D", tz="Asia/Shanghai")
>>> cells = [f"G{number}" for number in range(1, 11)]
>>> garbage = pd.DataFrame({"event_type": "garbage_overflow", "grid_code": cells * 30,
...                         "received_at": days.repeat(30)})
>>> found = detect_hotspots(pd.concat([noise, garbage]), None)
>>> print(found["evidence"].iloc[0])
30 'business noise' orders in grid G1 between 22:00 and 01:00 on 10 of 10 nights; 5.5 expected
>>> len(found)
1
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.spec import Window

HOURS = 24
# A day is busy when its count is at least this many times the daily expectation (and at least one order): a day
# with the usual count is no evidence of recurrence, however many such days there are.
BUSY_DAY_FACTOR = 2.0
# Hours of the day that make a band a "night" in the evidence sentence (20:00–06:00).
NIGHT_HOURS = frozenset(range(20, 24)) | frozenset(range(0, 6))

COLUMNS = ["event_type", "grid_code", "start_hour", "end_hour", "days_seen", "days", "orders", "expected", "ratio",
           "p_value", "log_likelihood_ratio", "evidence"]


def detect_hotspots(city_or_orders, window: Window | None, *, band_hours: int = 3, min_days_share: float = 0.5,
                    alpha: float = 0.01) -> pd.DataFrame:
    """Recurring hotspots among the orders received in ``window`` (all orders when ``None``), strongest first.

    ``city_or_orders`` is a :class:`layers.city.City` or a frame with the orders layer's ``event_type``,
    ``grid_code`` and ``received_at`` columns. Returns one row per hotspot with the columns of :data:`COLUMNS`:
    ``days_seen`` busy days of the band's ``days`` days in the window; ``orders`` observed against ``expected``;
    ``ratio`` = orders / expected; ``p_value`` Bonferroni-corrected (it underflows to 0 for the city-scale
    hotspots, so rows are ranked by ``log_likelihood_ratio``); ``evidence`` says it in one sentence. The method is
    described in the module docstring.
    """
    if not 1 <= band_hours <= HOURS:
        raise ValueError(f"band_hours must be between 1 and {HOURS}, got {band_hours}")
    orders = city_or_orders if isinstance(city_or_orders, pd.DataFrame) else city_or_orders["orders"]
    events = _events(orders, window)
    candidates = _significant_candidates(events, band_hours, min_days_share, alpha)
    candidates = _with_busy_days(candidates, events, band_hours)
    recurring = candidates[candidates["days_seen"] >= candidates["min_days"]]
    return _table(_strongest_non_overlapping(recurring, band_hours), band_hours)


def _events(orders: pd.DataFrame, window: Window | None) -> dict:
    """The orders of the window as integer arrays: type, cell, (type, cell) pair, local day number, hour of day."""
    in_window = np.ones(len(orders), dtype=bool)
    if len(orders) and window is not None:
        in_window = window.contains(orders["received_at"]).to_numpy()
    # factorize numbers the values and gives -1 to a missing type or cell: such an order cannot be placed.
    type_position, types = pd.factorize(orders["event_type"].to_numpy()[in_window], sort=True)
    grid_position, grids = pd.factorize(orders["grid_code"].to_numpy()[in_window], sort=True)
    placed = (type_position >= 0) & (grid_position >= 0)
    type_position, grid_position = type_position[placed], grid_position[placed]
    received = pd.to_datetime(orders["received_at"][in_window][placed])
    if received.dt.tz is not None:
        received = received.dt.tz_localize(None)  # local wall-clock time: the hours of the day are local hours
    hours_since_epoch = received.to_numpy().astype("datetime64[h]").astype(np.int64)
    return {"type": type_position, "grid": grid_position,
            "pair": type_position.astype(np.int64) * len(grids) + grid_position,
            "types": np.asarray(types, dtype=object), "grids": np.asarray(grids, dtype=object),
            "day": hours_since_epoch // HOURS, "hour": hours_since_epoch % HOURS}


def _band_sums(hourly: np.ndarray, band_hours: int) -> np.ndarray:
    """Column ``h`` of the result sums columns ``h … h + band_hours - 1`` of ``hourly``, wrapping past midnight."""
    return sum(np.roll(hourly, -offset, axis=-1) for offset in range(band_hours))


def _in_band(hour, start, band_hours: int):
    return (hour - start) % HOURS < band_hours


def _occurrence(day, hour, start):
    """The day on which the band starting at ``start`` began, for an order at ``day``/``hour`` inside the band:
    an order at 00:30 in a 22:00–01:00 band belongs to the night before."""
    return day - (hour < start)


def _days_spanned(events: dict, band_hours: int) -> np.ndarray:
    """Per band start hour, the number of times the band occurs between the first and the last order of the
    window (partly covered occurrences at either end included)."""
    if not len(events["hour"]):
        return np.zeros(HOURS, dtype=np.int64)
    hours_since_epoch = events["day"] * HOURS + events["hour"]
    first, last = hours_since_epoch.min(), hours_since_epoch.max()
    start = np.arange(HOURS)
    # Occurrence k of the band starting at ``start`` covers hours [24k + start, 24k + start + band_hours).
    first_occurrence = -((start + band_hours - 1 - first) // HOURS)  # ceil((first - start - band_hours + 1) / 24)
    last_occurrence = (last - start) // HOURS
    return last_occurrence - first_occurrence + 1


def _significant_candidates(events: dict, band_hours: int, min_days_share: float, alpha: float) -> pd.DataFrame:
    """Every (type, cell, band) whose count is significantly above its expectation, and how many busy days it
    needs to count as recurring."""
    type_count, grid_count = len(events["types"]), len(events["grids"])
    # Only (type, cell) pairs with orders can exceed their expectation: a dense types × cells × hours array would
    # not fit in memory for a city with many types and cells, the pairs are bounded by the orders.
    pair_position, pairs = pd.factorize(events["pair"])
    observed = _band_sums(np.bincount(pair_position * HOURS + events["hour"], minlength=len(pairs) * HOURS)
                          .reshape(len(pairs), HOURS), band_hours)
    type_band = _band_sums(np.bincount(events["type"] * HOURS + events["hour"], minlength=type_count * HOURS)
                           .reshape(type_count, HOURS), band_hours)
    grid_share = np.bincount(events["grid"], minlength=grid_count) / max(len(events["hour"]), 1)
    pair_type, pair_grid = pairs // max(grid_count, 1), pairs % max(grid_count, 1)
    expected = type_band[pair_type] * grid_share[pair_grid][:, None]

    days = _days_spanned(events, band_hours)
    # The epsilon keeps float noise from asking one day too many (0.7 * 10 is 7.000000000000001).
    min_days = np.maximum(1, np.ceil(min_days_share * days - 1e-9)).astype(np.int64)
    # Recurrence needs an order on each of min_days days, so smaller counts need no test.
    testable = (observed >= min_days[None, :]) & (observed > expected)
    pair_index, start = np.nonzero(testable)
    observed, expected = observed[pair_index, start], expected[pair_index, start]
    tests = type_count * grid_count * HOURS
    # Imported here: scipy.stats takes 1.5–3 s to import, a share of every start that no first page needs.
    from scipy.stats import poisson

    p_value = np.minimum(1.0, poisson.sf(observed - 1, expected) * tests)
    significant = p_value <= alpha
    pair_index, start = pair_index[significant], start[significant]
    return pd.DataFrame({
        "pair": pairs[pair_index],
        "event_type": events["types"][pair_type[pair_index]],
        "grid_code": events["grids"][pair_grid[pair_index]],
        "start_hour": start,
        "orders": observed[significant],
        "expected": expected[significant],
        "p_value": p_value[significant],
        "days": days[start],
        "min_days": min_days[start],
    })


def _with_busy_days(candidates: pd.DataFrame, events: dict, band_hours: int) -> pd.DataFrame:
    """``candidates`` with ``days_seen``: the days on which each had at least one order and at least
    ``BUSY_DAY_FACTOR`` times its daily expectation."""
    mine = np.isin(events["pair"], candidates["pair"].to_numpy())
    orders = pd.DataFrame({"pair": events["pair"][mine], "day": events["day"][mine], "hour": events["hour"][mine]})
    candidates = candidates.reset_index(drop=True)
    # Each order of a candidate's (type, cell) pair meets every band of that pair; keep those inside the band.
    meetings = orders.merge(candidates[["pair", "start_hour"]].reset_index(names="candidate"), on="pair")
    inside = _in_band(meetings["hour"], meetings["start_hour"], band_hours)
    meetings = meetings[inside]
    per_day = meetings.groupby(
        [meetings["candidate"], _occurrence(meetings["day"], meetings["hour"], meetings["start_hour"])]).size()
    candidate = per_day.index.get_level_values(0)
    daily_expected = (candidates["expected"] / candidates["days"].clip(lower=1)).to_numpy()[candidate]
    busy = per_day.to_numpy() >= np.maximum(1.0, BUSY_DAY_FACTOR * daily_expected)
    days_seen = np.bincount(candidate[busy], minlength=len(candidates))
    return candidates.assign(days_seen=days_seen)


def _strongest_non_overlapping(candidates: pd.DataFrame, band_hours: int) -> pd.DataFrame:
    """Per (type, cell), the strongest band, then the strongest that overlaps none kept so far, and so on."""
    observed, expected = candidates["orders"].to_numpy(float), candidates["expected"].to_numpy(float)
    candidates = candidates.assign(log_likelihood_ratio=observed * np.log(observed / expected) - (observed - expected))
    candidates = candidates.sort_values(["log_likelihood_ratio", "event_type", "grid_code", "start_hour"],
                                        ascending=[False, True, True, True], kind="stable")
    kept_starts: dict[int, list[int]] = {}
    keep = []
    # A loop over candidates, not orders: after the significance test they are a few per hotspot.
    for pair, start in zip(candidates["pair"].to_numpy(), candidates["start_hour"].to_numpy()):
        starts = kept_starts.setdefault(pair, [])
        overlaps = any(_bands_overlap(start, other, band_hours) for other in starts)
        if not overlaps:
            starts.append(start)
        keep.append(not overlaps)
    return candidates[np.array(keep, dtype=bool)]


def _bands_overlap(start, other_start, band_hours: int) -> bool:
    distance = (start - other_start) % HOURS
    return min(distance, HOURS - distance) < band_hours


def _table(hotspots: pd.DataFrame, band_hours: int) -> pd.DataFrame:
    """The public table: end hours, ratio and the evidence sentence added, columns in the order of COLUMNS."""
    end_hour = (hotspots["start_hour"] + band_hours) % HOURS
    hotspots = hotspots.assign(
        end_hour=end_hour,
        ratio=hotspots["orders"] / hotspots["expected"],
        evidence=[_evidence(*row, band_hours=band_hours) for row in zip(
            hotspots["event_type"], hotspots["grid_code"], hotspots["start_hour"], hotspots["days_seen"],
            hotspots["days"], hotspots["orders"], hotspots["expected"], strict=True)])
    return hotspots[COLUMNS].reset_index(drop=True).astype({
        "event_type": object, "grid_code": object, "start_hour": np.int64, "end_hour": np.int64,
        "days_seen": np.int64, "days": np.int64, "orders": np.int64, "expected": float, "ratio": float,
        "p_value": float, "log_likelihood_ratio": float, "evidence": object})


def _evidence(event_type, grid_code, start_hour, days_seen, days, orders, expected, *, band_hours: int) -> str:
    end_hour = (start_hour + band_hours) % HOURS
    band = {(start_hour + offset) % HOURS for offset in range(band_hours)}
    day_word = "nights" if band <= NIGHT_HOURS else "days"
    return (f"{orders} '{str(event_type).replace('_', ' ')}' orders in grid {grid_code} between "
            f"{start_hour:02d}:00 and {end_hour:02d}:00 on {days_seen} of {days} {day_word}; "
            f"{_round_for_reading(expected)} expected")


def _round_for_reading(value: float) -> str:
    """1,234 · 12 · 3.4 · 0.62 · 0.0071: as many digits as an operator needs to judge the size."""
    if value >= 10:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def compare_with_planted(found: pd.DataFrame, planted: pd.DataFrame) -> dict:
    """Recall and precision of ``found`` against the generator's ``planted_hotspots`` layer.

    A found hotspot matches a planted one with the same event type and grid cell whose hour band overlaps its own.
    Returns ``recall`` (planted hotspots found / planted), ``precision`` (found hotspots that match a planted one /
    found; NaN when nothing was found) and the counts they come from.
    """
    pairs = found.reset_index(names="found").merge(planted.reset_index(names="planted"),
                                                   on=["event_type", "grid_code"], suffixes=("", "_planted"))
    overlapping = (_band_hours_mask(pairs["start_hour"], pairs["end_hour"])
                   & _band_hours_mask(pairs["start_hour_planted"], pairs["end_hour_planted"])).any(axis=1)
    matches = pairs[overlapping]
    planted_found, found_matching = matches["planted"].nunique(), matches["found"].nunique()
    return {"planted": len(planted), "planted_found": planted_found, "found": len(found),
            "found_matching": found_matching,
            "recall": planted_found / len(planted) if len(planted) else np.nan,
            "precision": found_matching / len(found) if len(found) else np.nan}


def _band_hours_mask(start_hour: pd.Series, end_hour: pd.Series) -> np.ndarray:
    """One row per band, one column per hour of the day: True where the hour is in the band (a band whose end
    equals its start covers the whole day)."""
    start = start_hour.to_numpy(np.int64)[:, None]
    width = (end_hour.to_numpy(np.int64)[:, None] - start) % HOURS
    width = np.where(width == 0, HOURS, width)
    return _in_band(np.arange(HOURS)[None, :], start, width)
