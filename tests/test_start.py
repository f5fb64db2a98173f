"""The start at the city scale: what the first page needs is ready without recomputing what a start before already
computed, and the shortcuts taken for speed give what the long way gives."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.services import lists_by_unit_and_indicator


def test_sparkline_lists_are_what_a_groupby_gives():
    rng = np.random.default_rng(3)
    rows = [(code, indicator, step) for code in ("440300", "440304", "44030401") for indicator in ("b_rate", "a_count")
            for step in range(5)]
    points = pd.DataFrame(rows, columns=["code", "indicator", "step"]).assign(value=rng.random(len(rows)))
    points.loc[points.index[::7], "value"] = np.nan
    points = points.sample(frac=1, random_state=4).reset_index(drop=True)  # steps in any order
    expected = points.sort_values("step").groupby(["code", "indicator"], sort=True)["value"].agg(list)
    got = lists_by_unit_and_indicator(points)
    assert got.index.equals(expected.index) and got.index.names == expected.index.names
    assert got.name == expected.name and got.dtype == expected.dtype
    for mine, theirs in zip(got, expected):
        assert isinstance(mine, list) and all(type(v) is float for v in mine)
        np.testing.assert_array_equal(np.array(mine), np.array(theirs))
    empty = lists_by_unit_and_indicator(points.iloc[:0])
    assert len(empty) == 0 and empty.index.names == ["code", "indicator"]

