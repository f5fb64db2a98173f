"""The composite vital-sign score of a unit (0–100), and what pulls it down.

Each indicator with thresholds contributes points by its state — good 100, watch 75, warning 40, critical 0 — and
the score is the weighted mean of those points over the indicators that have data for the unit (``weight`` in the
registry, 1 by default). Indicators without thresholds (volumes) and units with no data for an indicator do not
count. States, not raw values, are averaged so that units (%, orders, µg/m³) never mix, and the score can be
explained in one line per indicator: ``lost = weight × (100 − points)`` of the total weight's 100.

>>> table = compute(city, window)                         # doctest: +SKIP
>>> vital_scores(table).query("level == 'district'")      # doctest: +SKIP
>>> explain_score(table, "440304")                         # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.registry import INDICATORS
from metrics.spec import STATES, Thresholds

STATE_POINTS = {"good": 100.0, "watch": 75.0, "warning": 40.0, "critical": 0.0}
assert tuple(STATE_POINTS) == STATES  # one point value per state of the vocabulary

SCORE_STATES = Thresholds.of("critical", (50, "warning"), (75, "watch"), (90, "good"))
"""The state of a vital-sign score (0–100): judged once here for the map page's badge, the wall's ring and the API."""


def _scored(table: pd.DataFrame) -> pd.DataFrame:
    scored = table[table["state"].isin(STATE_POINTS.keys())].copy()
    # As floats even when nothing is judged (an imported city with boundaries only): an empty map keeps text dtype.
    scored["points"] = scored["state"].map(STATE_POINTS).astype(float)
    scored["weight"] = scored["indicator"].map({i: ind.weight for i, ind in INDICATORS.items()}).astype(float)
    return scored


def vital_scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per unit: ``score`` (0–100, NaN when no indicator has data) and ``indicators`` counted."""
    scored = _scored(table)
    scored["weighted"] = scored["points"] * scored["weight"]
    sums = scored.groupby(["code", "level"])[["weighted", "weight"]].sum()
    counts = scored.groupby(["code", "level"]).size()
    result = pd.DataFrame({"score": sums["weighted"] / sums["weight"], "indicators": counts}).reset_index()
    units = table[["code", "level"]].drop_duplicates()
    return units.merge(result, on=["code", "level"], how="left").fillna({"indicators": 0})


WEIGHTS = {i: ind.weight for i, ind in INDICATORS.items()}


def unit_score(rows: pd.DataFrame) -> tuple[float, int, pd.DataFrame]:
    """One unit's score, the indicators counted and :func:`explain_score`'s table, from that unit's rows alone: what
    ``vital_scores`` and ``explain_score`` give for it, without grouping by unit (a map page asks this once per view
    and generation: 9 ms through them, for 221 rows, most of it pandas' string machinery)."""
    states = rows["state"].to_numpy(dtype=object)
    judged = np.flatnonzero(np.isin(states, list(STATE_POINTS)))
    indicators = rows["indicator"].to_numpy(dtype=object)[judged]
    points = np.array([STATE_POINTS[state] for state in states[judged]], dtype=float)
    weight = np.array([WEIGHTS.get(indicator, np.nan) for indicator in indicators], dtype=float)
    total_weight = np.nansum(weight)  # as pandas' sums: an indicator without a weight does not count
    score = float(np.nansum(points * weight) / total_weight) if total_weight > 0 else np.nan
    lost = weight * (100.0 - points) / total_weight if total_weight > 0 else np.full(len(judged), np.nan)
    explanation = pd.DataFrame({"indicator": pd.Series(indicators, dtype=rows["indicator"].dtype),
                                "value": rows["value"].to_numpy()[judged],
                                "state": pd.Series(states[judged], dtype=rows["state"].dtype),
                                "points": points, "weight": weight, "lost": lost})
    explanation = explanation.sort_values(["lost", "indicator"], ascending=[False, True]).reset_index(drop=True)
    return score, len(judged), explanation


def explain_score(table: pd.DataFrame, code: str) -> pd.DataFrame:
    """The indicators behind a unit's score, the ones that cost most first: state, points, weight, and the points
    of the score each one loses (they add up to ``100 − score``)."""
    scored = _scored(table[table["code"] == code])
    total_weight = scored["weight"].sum()
    scored["lost"] = np.where(total_weight > 0, scored["weight"] * (100.0 - scored["points"]) / total_weight, np.nan)
    columns = ["indicator", "value", "state", "points", "weight", "lost"]
    return scored.sort_values(["lost", "indicator"], ascending=[False, True])[columns].reset_index(drop=True)
