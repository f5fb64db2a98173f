"""The columnar snapshot (layers.snapshot): a restart that reads it has the same city as a load from the store, and
a snapshot that does not fit (another format, a damaged file) is not used.

The snapshot is a cache for the start at the city scale; these tests hold it to what a load from the store gives,
layer by layer and column by column (values, missing values, dtypes, geometry, CRS), on the test-scale sample city
and on hand-made rows where every nullable column is empty.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.feather as feather
import pytest

from layers.city import EVENT_LAYERS, in_time_order, load_city
from layers.load import decode_frame, empty_frame, encode_frame, instants, load_layer, shared_strings
from layers.snapshot import read_snapshot, read_stored, snapshot_folder, stored_table, write_snapshot
from layers.retention import hourly_readings
from layers.specs import CITY_TIMEZONE, LAYERS
from sample_data.__main__ import build


@pytest.fixture(scope="module")
def city_store(tmp_path_factory):
    return build("test", f"sqlite:///{tmp_path_factory.mktemp('snapshot') / 'city.sqlite'}", progress=False)


@pytest.fixture
def snapshot_dir(city_store, tmp_path):
    city_store.snapshot_dir = tmp_path / "snapshot"
    yield city_store.snapshot_dir
    city_store.snapshot_dir = None


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    assert type(got) is type(expected), what
    assert list(got.columns) == list(expected.columns), what
    assert list(got.dtypes) == list(expected.dtypes), what
    pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=what)
    if isinstance(expected, gpd.GeoDataFrame):
        assert got.crs == expected.crs, what


def test_a_snapshot_reads_back_every_layer_as_the_store_loads_it(city_store, snapshot_dir):
    loaded = load_city(city_store)
    write_snapshot(loaded, city_store, 0)
    assert {path.name for path in snapshot_dir.iterdir()} == {"manifest.json", "units.arrow",
                                                             *(f"{layer}.arrow" for layer in loaded.layers)}
    city, _mark = read_snapshot(city_store, EVENT_LAYERS)
    assert city.derived  # the derived columns compared below are the snapshot's, not derived again
    assert set(city.layers) == set(loaded.layers) == set(EVENT_LAYERS)
    assert city.versions == loaded.versions
    assert_same_frame(city.units, loaded.units, "units")
    assert_same_frame(city.hierarchy, loaded.hierarchy, "hierarchy")
    for layer in EVENT_LAYERS:  # with the columns the city derives (grid_index, category, kind, …)
        assert len(loaded[layer]), f"{layer}: the test city should have rows to compare"
        assert_same_frame(city[layer], loaded[layer], layer)
    for layer in ("units", "orders", "sensors", "buildings", "roads", "readings"):  # each file as the store loads it
        snapshotted = decode_frame(LAYERS[layer], read_stored(snapshot_dir / f"{layer}.arrow"))
        # The city's readings are the hourly means (layers.retention), in time order: what the snapshot holds.
        from_store = (in_time_order(layer, hourly_readings(city_store)) if layer == "readings" else
                      load_layer(city_store, layer))
        assert_same_frame(snapshotted, from_store, layer)


def test_readings_of_a_snapshot_by_sensor_are_read_back_in_time_order(city_store, snapshot_dir):
    """A snapshot written before the city kept its readings by instant holds them by sensor: read back, they are
    in time order (layers.city.TIME_ORDERED), the same rows."""
    loaded = load_city(city_store)
    by_sensor = loaded["readings"].sort_values(["sensor_id", "ts"], ignore_index=True)
    loaded.layers = dict(loaded.layers, readings=by_sensor)
    write_snapshot(loaded, city_store, 0)
    city, _mark = read_snapshot(city_store, EVENT_LAYERS)
    assert not loaded.in_time_order("readings") and city.in_time_order("readings")
    assert_same_frame(city["readings"], in_time_order("readings", by_sensor), "readings")


def test_empty_values_of_every_kind_survive_a_snapshot():
    """Rows where every nullable column is empty (text, integers, booleans, instants), and a layer without rows."""
    orders = load_layer_rows_with_every_nullable_empty()
    raw = encode_frame("orders", orders)
    stored = read_stored_of(raw)
    assert_same_frame(decode_frame(LAYERS["orders"], stored), decode_frame(LAYERS["orders"], raw), "orders")
    decoded = decode_frame(LAYERS["orders"], stored)
    for column in LAYERS["orders"].columns:
        if column.nullable:
            assert decoded[column.name].isna().all(), column.name
    assert decoded["description"].tolist() == [None, None]
    for layer in LAYERS:
        raw = encode_frame(layer, empty_frame(layer))
        assert_same_frame(decode_frame(LAYERS[layer], read_stored_of(raw)), empty_frame(layer), layer)


def load_layer_rows_with_every_nullable_empty() -> pd.DataFrame:
    spec = LAYERS["orders"]
    rows = {}
    for column in spec.columns:
        if column.nullable:
            rows[column.name] = [None, None]
        elif column.kind == "time":
            rows[column.name] = [1763625600, 1763629200]
        elif column.kind in ("int", "float"):
            rows[column.name] = [1, 2]
        elif column.kind == "bool":
            rows[column.name] = [True, False]
        else:
            rows[column.name] = ["a", "b"]
    return decode_frame(spec, pd.DataFrame(rows))


def read_stored_of(raw: pd.DataFrame) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "layer.arrow"
        feather.write_feather(stored_table(raw), path, compression="lz4")
        return read_stored(path)


def test_repeated_text_is_read_once_per_value_and_ids_as_they_are(city_store, snapshot_dir):
    write_snapshot(load_city(city_store), city_store, 0)
    schema = feather.read_table(snapshot_dir / "orders.arrow").schema
    assert str(schema.field("grid_code").type).startswith("dictionary")
    assert not str(schema.field("order_id").type).startswith("dictionary")
    orders = read_snapshot(city_store, EVENT_LAYERS)[0]["orders"]
    codes = orders["grid_code"].to_numpy()
    first = codes[0]
    same = codes[np.flatnonzero(codes == first)]
    assert len(same) > 1 and all(value is first for value in same)  # one string object, shared by its rows


def test_shared_strings_and_instants_keep_every_value():
    values = pd.Series(["G1", None, "G2", "G1", np.nan] * 3000)
    shared = shared_strings(values)
    assert shared.dtype == object
    assert shared.tolist() == ["G1", None, "G2", "G1", None] * 3000
    assert shared[0] is shared[3]
    distinct = pd.Series([f"order-{i}" for i in range(20_000)] + [None])
    assert shared_strings(distinct).tolist() == [f"order-{i}" for i in range(20_000)] + [None]
    assert shared_strings(pd.Series([None, None], dtype=object)).tolist() == [None, None]
    for seconds in (pd.Series([1763625600, None], dtype=object), pd.Series([1763625600.0, np.nan]),
                    pd.Series([1763625600, None], dtype="Int64")):
        stamps = instants(seconds)
        assert str(stamps.dtype) == f"datetime64[us, {CITY_TIMEZONE}]"
        assert stamps.iloc[0] == pd.Timestamp("2025-11-20 16:00", tz=CITY_TIMEZONE) and pd.isna(stamps.iloc[1])
    assert str(instants(pd.Series([], dtype=object)).dtype) == f"datetime64[us, {CITY_TIMEZONE}]"


def test_a_snapshot_of_the_earlier_format_is_not_used(city_store, snapshot_dir):
    write_snapshot(load_city(city_store), city_store, 0)
    manifest = json.loads((snapshot_dir / "manifest.json").read_text())
    for earlier in (1, 2):  # Parquet files; Arrow files without the derived columns
        (snapshot_dir / "manifest.json").write_text(json.dumps(dict(manifest, format=earlier)))
        assert read_snapshot(city_store, EVENT_LAYERS) is None


def test_a_damaged_snapshot_file_is_not_used(city_store, snapshot_dir):
    write_snapshot(load_city(city_store), city_store, 0)
    path = snapshot_folder(city_store) / "orders.arrow"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert read_snapshot(city_store, EVENT_LAYERS) is None


def test_derived_columns_a_snapshot_lacks_or_has_too_many_are_derived_again(city_store, snapshot_dir):
    """A snapshot whose derived columns are not the ones this code derives (written by another release of the
    derivation) gives the city a load from the store gives, its columns derived again."""
    loaded = load_city(city_store)
    path, manifest_path = snapshot_dir / "orders.arrow", snapshot_dir / "manifest.json"

    def lacking(table, derived):
        derived.pop("category")
        return table.drop_columns(["category"])

    def retired(table, derived):
        derived["retired"] = "int64"
        return table.append_column("retired", table.column("grid_index"))

    for change in (lacking, retired):
        write_snapshot(loaded, city_store, 0)
        manifest = json.loads(manifest_path.read_text())
        assert set(manifest["derived"]["orders"]) == {"grid_index", "category"}
        feather.write_feather(change(feather.read_table(path), manifest["derived"]["orders"]), path,
                              compression="lz4")
        manifest_path.write_text(json.dumps(manifest))
        city, _mark = read_snapshot(city_store, EVENT_LAYERS)
        assert not city.derived, change.__name__
        for layer in EVENT_LAYERS:
            assert_same_frame(city[layer], loaded[layer], layer)
