"""The engine: run indicator formulas for a window and roll them up the hierarchy.

Contributions are summed per grid cell (``np.bincount``), then per unit on each level by the hierarchy table, and only
then divided: counts add up from grid to city, and rates and means are recomputed from their numerators and
denominators on every level.

>>> table = compute(city, named_window("7d", city.as_of))                       # doctest: +SKIP
>>> table.query("level == 'district' and indicator == 'on_time_rate'")         # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from layers.specs import LEVELS
from metrics.registry import INDICATORS
from metrics.spec import Indicator, Window

COLUMNS = ["code", "level", "indicator", "value", "numerator", "denominator", "state"]


def grid_sums(indicator: Indicator, data, window: Window, size: int) -> pd.DataFrame:
    """Numerator, denominator and coverage per grid cell (rows in the order of the hierarchy table)."""
    parts = indicator.formula(data, window)
    position = np.asarray(parts.grid, dtype=np.int64)
    known = position >= 0  # rows outside every grid cell cannot be placed on any level
    position = position[known]
    numerator = np.bincount(position, weights=np.asarray(parts.numerator, float)[known], minlength=size)
    if parts.denominator is None:
        denominator = np.zeros(size)
    else:
        denominator = np.bincount(position, weights=np.asarray(parts.denominator, float)[known], minlength=size)
    if parts.covered is None:
        covered = np.ones(size)
    else:
        covered = np.zeros(size)
        covered_position = np.asarray(parts.covered, dtype=np.int64)
        covered[covered_position[covered_position >= 0]] = 1
    return pd.DataFrame({"numerator": numerator, "denominator": denominator, "covered": covered})


def finish(indicator: Indicator, sums: pd.DataFrame) -> pd.DataFrame:
    """Value and state from summed numerators and denominators."""
    numerator, denominator = sums["numerator"].to_numpy(), sums["denominator"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        if indicator.aggregation == "count":
            value = numerator.astype(float)
        elif indicator.aggregation == "rate":
            value = np.where(denominator > 0, 100.0 * numerator / denominator, np.nan)
        else:
            value = np.where(denominator > 0, numerator / denominator, np.nan)
    value = np.where(sums["covered"].to_numpy() > 0, value, np.nan)
    return sums.assign(value=value, state=indicator.state_of(value))


def compute(data, window: Window, indicator_ids: Iterable[str] | None = None,
            levels: Iterable[str] = LEVELS) -> pd.DataFrame:
    """Every requested indicator for every unit of the requested levels: a tidy table (see ``COLUMNS``)."""
    hierarchy = data.hierarchy
    frames = []
    for indicator_id in indicator_ids or INDICATORS:
        indicator = INDICATORS[indicator_id]
        sums = grid_sums(indicator, data, window, len(hierarchy))
        for level in levels:
            if level not in indicator.levels:
                continue
            rolled = sums.groupby(hierarchy[level].to_numpy()).sum()
            done = finish(indicator, rolled)
            frames.append(pd.DataFrame({
                "code": done.index.to_numpy(), "level": level, "indicator": indicator_id,
                "value": done["value"].to_numpy(), "numerator": done["numerator"].to_numpy(),
                "denominator": done["denominator"].to_numpy(), "state": done["state"].to_numpy()}))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def compare(data, window: Window, indicator_ids: Iterable[str] | None = None,
            levels: Iterable[str] = LEVELS) -> pd.DataFrame:
    """``compute`` for the window and the one before it, with ``previous`` and ``change`` columns.

    When the previous window begins before the data do (the 30 days before a 30-day sample), it has no data: a
    change against a window the data do not cover would be meaningless.
    """
    ids = list(indicator_ids or INDICATORS)
    levels = list(levels)
    current = compute(data, window, ids, levels)
    previous = compute(data, window.previous(), ids, levels)
    starts_at = getattr(data, "starts_at", None)
    if starts_at is None or window.previous().start < starts_at:
        previous = previous.assign(value=np.nan)
    merged = current.merge(previous[["code", "indicator", "value"]].rename(columns={"value": "previous"}),
                           on=["code", "indicator"], how="left")
    merged["change"] = merged["value"] - merged["previous"]
    return merged


def rank_among_siblings(table: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Add ``rank`` (1 = best, by the indicator's direction of good) and ``siblings`` (how many units share the
    parent and have a value) to a ``compute``/``compare`` table. Indicators without a direction, units without a
    value and the city (no siblings) get no rank."""
    parent = units.set_index("code")["parent_code"] if "code" in units else units["parent_code"]
    ranked = table.assign(parent=table["code"].map(parent))
    direction = ranked["indicator"].map({i: ind.good_direction for i, ind in INDICATORS.items()})
    # Rank "higher is better" on -value, so that rank 1 is always the best.
    key = np.where(direction == "up", -ranked["value"], ranked["value"])
    ranked["_key"] = np.where(direction == "none", np.nan, key)
    groups = ranked.groupby(["indicator", "parent"], dropna=True)["_key"]
    ranked["rank"] = groups.rank(method="min")
    ranked["siblings"] = groups.transform("count")
    ranked.loc[ranked["rank"].isna(), "siblings"] = np.nan
    return ranked.drop(columns=["parent", "_key"])
