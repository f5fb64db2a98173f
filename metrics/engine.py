"""The engine: run indicator formulas for a window and roll them up the hierarchy.

Contributions are summed per grid cell (``np.bincount``), then per unit on each level by the hierarchy table, and only
then divided: counts add up from grid to city, and rates and means are recomputed from their numerators and
denominators on every level.

>>> table = compute(city, named_window("7d", city.as_of))                       # doctest: +SKIP
>>> table.query("level == 'district' and indicator == 'on_time_rate'")         # doctest: +SKIP
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.arrays import ArrowStringArray

from layers.specs import ALL_LEVELS
from metrics.registry import INDICATORS
from metrics.spec import (SURGE, Contributions, Indicator, Window, column_codes, memoised, named_window,
                          surge_scores)

COLUMNS = ["code", "level", "indicator", "value", "numerator", "denominator", "state"]


GridSums = tuple  # (numerator, denominator, covered): arrays over the grid cells, in hierarchy order


def grid_sums(indicator: Indicator, data, window: Window, size: int) -> GridSums:
    """Numerator, denominator and coverage per grid cell (in the order of the hierarchy table)."""
    numerator, denominator, covered = _sums(indicator.formula(data, window), size)
    return numerator[:, 0], denominator[:, 0], covered


def _sums(parts: Contributions, size: int, member: np.ndarray | None = None, members: int = 1):
    """Sum contributions per (grid cell, member): arrays of shape (size, members), and coverage per cell."""
    position = np.asarray(parts.grid, dtype=np.int64)
    known = position >= 0  # rows outside every grid cell cannot be placed on any level
    if member is not None:
        known &= member >= 0
        position = position * members + member
    position = position[known]
    bins = size * members
    numerator = np.bincount(position, weights=np.asarray(parts.numerator, float)[known], minlength=bins)
    if parts.denominator is None:
        denominator = np.zeros(bins)
    else:
        denominator = np.bincount(position, weights=np.asarray(parts.denominator, float)[known], minlength=bins)
    if parts.covered is None:
        covered = np.ones(size)
    else:
        covered = np.zeros(size)
        covered_position = np.asarray(parts.covered, dtype=np.int64)
        covered[covered_position[covered_position >= 0]] = 1
    return numerator.reshape(size, members), denominator.reshape(size, members), covered


def family_sums(members: list[Indicator], data, window: Window, size: int) -> dict[str, GridSums]:
    """Grid sums of every member of one family from a single run of the base formula, split by the members'
    column (a family of 48 event types costs about one indicator, not 48)."""
    family = members[0].family
    base = INDICATORS[family.base]
    parts = base.formula(data, window)
    if parts.rows is None:  # the base formula cannot say which rows contributed: one run per member
        return {m.id: grid_sums(m, data, window, size) for m in members}
    codes, code_of = column_codes(data, base.inputs[0], family.column)
    numerator, denominator, covered = _sums(parts, size, member=codes[parts.rows], members=max(len(code_of), 1))
    nothing = np.zeros(size)
    result = {}
    for m in members:
        k = code_of.get(m.family.key)
        result[m.id] = ((numerator[:, k], denominator[:, k], covered) if k is not None else (nothing, nothing, covered))
    return result


def grid_matrices(data, window: Window, ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numerators, denominators and coverage of every indicator (rows) per grid cell (columns)."""
    size = len(data.hierarchy)
    sums: dict[str, GridSums] = {}
    families: dict[tuple, list[Indicator]] = {}
    for indicator_id in ids:
        indicator = INDICATORS[indicator_id]
        if indicator.family is not None:
            families.setdefault((indicator.family.base, indicator.family.column), []).append(indicator)
    for members in families.values():
        sums.update(family_sums(members, data, window, size))
    for indicator_id in ids:
        if indicator_id not in sums:
            sums[indicator_id] = grid_sums(INDICATORS[indicator_id], data, window, size)
    return tuple(np.vstack([sums[i][part] for i in ids]).reshape(len(ids), size) for part in range(3))


def level_groups(hierarchy: pd.DataFrame, levels: Iterable[str] = ALL_LEVELS) -> list[tuple]:
    """Per level of ``hierarchy``: ``(level, order, starts, unit codes)``, the grid cells sorted by their unit there
    and where each unit's cells start: how :func:`unit_values` sums cells into units. The same for every sum over
    one hierarchy (a live refresh rolls up dozens of times: :func:`city_level_groups` keeps them per city)."""
    groups = []
    for level in [lvl for lvl in levels if lvl in hierarchy.columns]:  # a single city has no province level
        codes, units = pd.factorize(hierarchy[level].to_numpy())
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        groups.append((level, order, starts, units[codes[order][starts]]))
    return groups


def city_level_groups(data) -> list[tuple]:
    """:func:`level_groups` of a city's hierarchy, every level, once per city (its memo)."""
    return memoised(data, "level_groups", lambda: level_groups(data.hierarchy))


def unit_values(ids: list[str], numerator: np.ndarray, denominator: np.ndarray, covered: np.ndarray,
                hierarchy: pd.DataFrame, levels: Iterable[str] = ALL_LEVELS, groups: list | None = None) -> list[tuple]:
    """Sum grid matrices up each level, then divide: per level, ``(level, unit codes, value, numerator,
    denominator)``, the matrices indicators × units (every indicator, whatever its levels). The numbers of
    :func:`roll_up`'s table; a live refresh compares them with the table it has and writes only what changed.
    ``groups``: :func:`level_groups` of ``hierarchy`` for ``levels``, when the caller keeps them."""
    aggregation = np.array([INDICATORS[i].aggregation for i in ids])[:, None]
    rolled = []
    for level, order, starts, unit_codes in (level_groups(hierarchy, levels) if groups is None else groups):
        num, den, cov = (np.add.reduceat(matrix[:, order], starts, axis=1)
                         for matrix in (numerator, denominator, covered))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(den > 0, num / den, np.nan)
        value = np.where(aggregation == "count", num, np.where(aggregation == "rate", 100.0 * ratio, ratio))
        rolled.append((level, unit_codes, np.where(cov > 0, value, np.nan), num, den))
    return rolled


def roll_up(ids: list[str], numerator: np.ndarray, denominator: np.ndarray, covered: np.ndarray,
            hierarchy: pd.DataFrame, levels: Iterable[str] = ALL_LEVELS) -> pd.DataFrame:
    """Sum grid matrices up each level, then divide: the tidy table of ``compute``."""
    frames = []
    for level, unit_codes, value, num, den in unit_values(ids, numerator, denominator, covered, hierarchy, levels):
        keep = [k for k, i in enumerate(ids) if level in INDICATORS[i].levels]
        states = np.concatenate([INDICATORS[ids[k]].state_of(value[k]) for k in keep]) if keep else []
        state_codes, state_names = pd.factorize(np.asarray(states, dtype=object))
        count = len(unit_codes)
        frames.append(pd.DataFrame({
            "code": _strings(unit_codes, np.tile(np.arange(count), len(keep))), "level": level,
            "indicator": _strings(np.array(ids, dtype=object)[keep], np.repeat(np.arange(len(keep)), count)),
            "value": value[keep].ravel(), "numerator": num[keep].ravel(), "denominator": den[keep].ravel(),
            "state": _strings(state_names, state_codes)}))
    return pd.concat(frames, ignore_index=True)[COLUMNS]


STRINGS = pd.StringDtype("pyarrow", na_value=np.nan)  # what pandas makes of a column of str


def _strings(values, positions: np.ndarray) -> ArrowStringArray:
    """``values[positions]`` as a column of str, each distinct value converted once: a table repeats a few thousand
    unit codes and a few hundred indicator ids over hundreds of thousands of rows, and converting them row by row
    was most of a live refresh's roll-up."""
    strings = pa.array(np.asarray(values, dtype=object), type=pa.large_string())
    return ArrowStringArray(strings.take(pa.array(np.asarray(positions, dtype=np.int64))), dtype=STRINGS)


def compute(data, window: Window, indicator_ids: Iterable[str] | None = None,
            levels: Iterable[str] = ALL_LEVELS) -> pd.DataFrame:
    """Every requested indicator for every unit of the requested levels: a tidy table (see ``COLUMNS``).

    All indicators are rolled up together as matrices (indicators × grid cells → indicators × units), then
    divided, so that hundreds of indicators cost a few array operations per level, not a frame each.
    """
    ids = list(indicator_ids or INDICATORS)
    if not ids:
        return pd.DataFrame(columns=COLUMNS)
    return roll_up(ids, *grid_matrices(data, window, ids), data.hierarchy, levels)


def compare(data, window: Window, indicator_ids: Iterable[str] | None = None,
            levels: Iterable[str] = ALL_LEVELS) -> pd.DataFrame:
    """``compute`` for the window and the one before it, with ``previous`` and ``change`` columns.

    When the previous window begins before the data do (the 30 days before a 30-day sample), it has no data: a
    change against a window the data do not cover would be meaningless.
    """
    ids = list(indicator_ids or INDICATORS)
    levels = list(levels)
    return compared(data, window, compute(data, window, ids, levels), compute(data, window.previous(), ids, levels))


def compared(data, window: Window, current: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """The tables of ``window`` and of the one before it (``compute``'s) side by side: what ``compare`` returns."""
    if not previous_covered(data, window):
        previous = previous.assign(value=np.nan)
    if _same_rows(current, previous):  # both rolled up alike (``roll_up``): no join needed
        merged = current.assign(previous=previous["value"].to_numpy())
    else:
        merged = current.merge(previous[["code", "indicator", "value"]].rename(columns={"value": "previous"}),
                               on=["code", "indicator"], how="left")
    merged["change"] = merged["value"] - merged["previous"]
    # Volumes are judged by their rise against the previous window; without a previous figure they stay neutral.
    surge = per_value(merged["indicator"], {i: ind.judged_by == "surge" for i, ind in INDICATORS.items()}).astype(bool)
    known = surge & merged["previous"].notna().to_numpy() & merged["value"].notna().to_numpy()
    if known.any():
        state = merged["state"].to_numpy(dtype=object).copy()
        state[known] = SURGE.state_of(surge_scores(merged["value"].to_numpy()[known],
                                                   merged["previous"].to_numpy()[known]))
        merged["state"] = state
    return merged


def previous_covered(data, window: Window) -> bool:
    """Whether the data cover the window before ``window`` (a 30-day sample has no 30 days before its 30 days)."""
    starts_at = getattr(data, "starts_at", None)
    return starts_at is not None and window.previous().start >= starts_at


def _same_rows(one: pd.DataFrame, other: pd.DataFrame) -> bool:
    """Whether two tables have the same (code, indicator) in every row, in the same order."""
    return (len(one) == len(other) and one["level"].equals(other["level"]) and one["code"].equals(other["code"])
            and one["indicator"].equals(other["indicator"]))


def per_value(column: pd.Series, mapping: dict) -> np.ndarray:
    """``column.map(mapping)`` as an array, each distinct value looked up once: a table's indicator column repeats a
    few hundred ids over a million rows, and mapping its strings one by one cost most of a live refresh."""
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    return np.array([mapping.get(value) for value in uniques], dtype=object)[codes]


def by_clock(data, indicator_ids: Iterable[str]) -> dict[pd.Timestamp, list[str]]:
    """The indicators grouped by the instant they are judged at: each layer keeps its own freshness
    (``City.layer_as_of``), so sensor indicators stand at the sensors' newest record while order indicators follow
    the orders (in live mode both are the clock)."""
    groups: dict[pd.Timestamp, list[str]] = {}
    for indicator_id in indicator_ids:
        groups.setdefault(data.layer_as_of(INDICATORS[indicator_id].inputs), []).append(indicator_id)
    return groups


def compare_named(data, window_name: str, indicator_ids: Iterable[str] | None = None,
                  levels: Iterable[str] = ALL_LEVELS) -> pd.DataFrame:
    """``compare`` for a named window (``today``, ``7d``, …), each indicator's window ending at its own layers'
    as-of instant (see :func:`by_clock`)."""
    frames = [compare(data, named_window(window_name, as_of), ids, levels)
              for as_of, ids in by_clock(data, list(indicator_ids or INDICATORS)).items()]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def rank_among_siblings(table: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Add ``rank`` (1 = best, by the indicator's direction of good) and ``siblings`` (how many units share the
    parent and have a value) to a ``compute``/``compare`` table. Indicators without a direction, units without a
    value and the city (no siblings) get no rank."""
    parent = units.set_index("code")["parent_code"] if "code" in units else units["parent_code"]
    codes, unique_codes = pd.factorize(table["code"], use_na_sentinel=False)
    parents, _ = pd.factorize(parent.reindex(unique_codes).to_numpy(dtype=object)[codes])  # -1: no parent
    indicators, unique_ids = pd.factorize(table["indicator"], use_na_sentinel=False)
    direction = np.array([INDICATORS[i].good_direction for i in unique_ids], dtype=object)[indicators]
    value = table["value"].to_numpy(dtype=float)
    # Rank "higher is better" on -value, so that rank 1 is always the best.
    key = np.where(direction == "none", np.nan, np.where(direction == "up", -value, value))
    # Siblings are the units of one indicator under one parent (as integers: grouping strings cost seconds).
    group = np.where(parents >= 0, indicators.astype(float) * (parents.max(initial=0) + 1) + parents, np.nan)
    groups = pd.Series(key).groupby(group, dropna=True)
    rank = groups.rank(method="min").to_numpy()
    siblings = groups.transform("count").to_numpy(dtype=float, copy=True)
    siblings[np.isnan(rank)] = np.nan
    return table.assign(rank=rank, siblings=siblings)


def series(data, window: Window, indicator_ids: Iterable[str], steps: int,
           levels: Iterable[str] = ALL_LEVELS) -> pd.DataFrame:
    """The indicators over ``steps`` equal sub-windows of ``window`` (a sparkline's points): ``compute`` for each,
    with a ``step`` column (0 = the oldest).

    Each sub-window's per-order facts are kept only while it is computed (the city's memo would hold dozens of
    windows of millions of rows otherwise).
    """
    ids = list(indicator_ids)
    frames = []
    for step, sub in enumerate(step_windows(window, steps)):
        scratch = copy.copy(data)
        scratch.memo = {}
        frames.append(compute(scratch, sub, ids, levels).assign(step=step))
    return pd.concat(frames, ignore_index=True)


def step_windows(window: Window, steps: int) -> list[Window]:
    """``window`` cut into ``steps`` equal sub-windows, the oldest first: a sparkline's points (:func:`series`)."""
    length = (window.end - window.start) / steps
    return [Window(window.start + step * length, window.start + (step + 1) * length, f"{window.name}[{step}]")
            for step in range(steps)]


def sparkline_steps(window: Window) -> int:
    """How many points a named window's sparkline has: an hour each for ``today`` (the last one begun), a day each
    for the others."""
    return max(1, int(np.ceil(window.days * 24))) if window.name == "today" else int(round(window.days))


def stepped_unit_values(ids: list[str], steps: list[tuple], hierarchy: pd.DataFrame,
                        groups: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`unit_values`' values for each step's grid matrices (``steps``: (numerator, denominator, covered) per
    step), rolled up in one go: the units' codes (every level, in order) and the values, steps × (indicators ×
    units), each row the indicators' blocks of units. A sparkline of 24 steps rolled up step by step cost 24 times
    the work of numpy's calls, not of the sums."""
    stacked = [np.vstack([step[part] for step in steps]) for part in range(3)]
    rolled = unit_values(list(ids) * len(steps), *stacked, hierarchy, groups=groups)
    values = np.hstack([value for _level, _codes, value, _num, _den in rolled])
    codes = np.concatenate([unit_codes for _level, unit_codes, *_ in rolled])
    return codes, values.reshape(len(steps), len(ids) * len(codes))
