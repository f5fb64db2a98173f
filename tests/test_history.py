"""History files (layers.history): monthly partitions written from the store, read back by pandas, geopandas and
Dask with the store's rows; closed months written once, the open month again, a closed month again when its orders
change in the store.

The sample city ends on 3 December 2026, so its 7 days of orders span two months (November is closed, December
open) while readings and alarms lie in December only.
"""
from __future__ import annotations

import dask.dataframe as dd
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from layers.history import HISTORY_LAYERS, History, HistoryError, month_of, write_history
from layers.load import load_layer
from layers.specs import CITY_TIMEZONE
from layers.store import Store
from layers.workorders import WorkOrders
from sample_data.__main__ import build

END = pd.Timestamp("2026-12-03 16:00", tz=CITY_TIMEZONE)
CITY = "440300"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    path = tmp_path_factory.mktemp("history_store") / "city.sqlite"
    return build("test", f"sqlite:///{path}", progress=False, end=END)


@pytest.fixture()
def written(store, tmp_path) -> History:
    write_history(store, tmp_path / "history")
    return History(tmp_path / "history")


def _store_months(store: Store, layer: str) -> pd.Series:
    times = load_layer(store, layer, columns=[HISTORY_LAYERS[layer]])[HISTORY_LAYERS[layer]]
    return times.map(month_of).value_counts().sort_index()


def test_every_month_of_every_layer_is_a_partition_with_the_stores_rows(store, written):
    assert written.cities == [CITY]
    for layer in HISTORY_LAYERS:
        expected = _store_months(store, layer)
        months = [p.month for p in written.partitions(layer)]
        assert months == list(expected.index), layer
        for partition in written.partitions(layer):
            assert len(partition.read()) == expected[partition.month], (layer, partition.month)
    assert [p.month for p in written.partitions("orders")] == ["2026-11", "2026-12"]
    assert written.manifest["open_month"] == "2026-12"


def test_partitions_hold_the_stores_values(store, written):
    stored = load_layer(store, "orders").sort_values("order_id").reset_index(drop=True)  # loaded without points
    filed = written.read("orders").drop(columns="geometry").sort_values("order_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(filed, stored, check_dtype=False)
    readings = load_layer(store, "readings").sort_values(["sensor_id", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(written.read("readings").sort_values(["sensor_id", "ts"]).reset_index(drop=True),
                                  readings, check_dtype=False)


def test_pandas_and_dask_read_the_hive_layout_and_geopandas_the_points(written):
    root = written.root / "orders"
    by_pandas = pd.read_parquet(root, columns=["order_id", "received_at", "month"])
    assert len(by_pandas) == sum(len(p.read(["order_id"])) for p in written.partitions("orders"))
    months = by_pandas["received_at"].map(month_of)
    assert (months.to_numpy() == by_pandas["month"].astype(str).to_numpy()).all()
    by_dask = written.dask_frame("orders", columns=["order_id", "grid_code"])
    assert isinstance(by_dask, dd.DataFrame)
    assert by_dask.npartitions == 2
    assert len(by_dask) == len(by_pandas)
    assert by_dask["grid_code"].str.len().max().compute() == 14
    points = gpd.read_parquet(written.partitions("orders")[0].path)
    assert points.crs.to_epsg() == 4326
    np.testing.assert_allclose(points.geometry.x, points["lon"])
    np.testing.assert_allclose(points.geometry.y, points["lat"])


def test_closed_months_are_written_once_and_the_open_month_again(store, written):
    november = written.partitions("orders")[0].path
    stamp = november.stat().st_mtime_ns
    report = write_history(store, written.root)
    assert ("orders", "2026-11") in report.kept
    assert set(report.written) == {("orders", "2026-12"), ("readings", "2026-12"), ("alarms", "2026-12")}
    assert november.stat().st_mtime_ns == stamp


def test_a_closed_month_is_written_again_when_its_orders_change(store, tmp_path):
    root = tmp_path / "history"
    write_history(store, root)
    history = History(root)
    november = history.partitions("orders")[0]
    frame = november.read(["order_id", "status", "handled_at"])
    order_id = frame.loc[frame["handled_at"].isna(), "order_id"].iloc[0]
    work = WorkOrders(store)
    order = work.get(order_id)
    work.cancel(order_id, expected_version=order.version, actor="test", reason="duplicate of another request")
    report = write_history(store, root)
    assert ("orders", "2026-11") in report.written
    again = november.read(["order_id", "status"]).set_index("order_id")["status"]
    assert again[order_id] == "cancelled"
    assert write_history(store, root).kept.count(("orders", "2026-11")) == 1  # and kept once written


def test_bad_use_is_named(tmp_path, written):
    with pytest.raises(HistoryError, match="run write_history"):
        History(tmp_path / "nothing").city()
    with pytest.raises(HistoryError, match="'buildings' is not a history layer"):
        written.partitions("buildings")
