"""New orders added to a live table give the same table as a full recompute with them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dataclasses import replace

from layers.city import load_city
from layers.store import Store
from metrics.engine import compute
from metrics.incremental import LiveTable
from metrics.spec import named_window
from sample_data.__main__ import build


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('live') / 'city.sqlite'}"
    build("test", url, seed=11, progress=False)
    return load_city(Store(url))


def test_adding_orders_equals_recomputing(full):
    orders = full["orders"].sort_values("received_at").reset_index(drop=True)
    # The last 300 orders arrive after the table was made.
    old, new = orders.iloc[:-300], orders.iloc[-300:]
    window = named_window("7d", full.as_of)
    live = LiveTable(replace(full, layers={**full.layers, "orders": old.reset_index(drop=True)}, memo={}), window)
    live.add_orders(new.assign(grid_index=-1))  # the table places them itself
    expected = compute(full, window).set_index(["indicator", "code"]).sort_index()
    got = live.table().set_index(["indicator", "code"]).sort_index()
    assert live.added == 300
    pd.testing.assert_index_equal(got.index, expected.index)
    np.testing.assert_allclose(got["value"].to_numpy(float), expected["value"].to_numpy(float), rtol=1e-9,
                               equal_nan=True)
    assert (got["state"] == expected["state"]).all()
