"""The store keeps every layer exactly, on SQLite and on PostGIS, and writes all or nothing.

Each test runs on both back ends: a fresh SQLite file and a fresh PostGIS database (``postgis_db_url``), so the one
code path in :mod:`layers.store` is held to the same result on both.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import sqlalchemy

from layers.load import encode_frame, load_layer
from layers.specs import LAYERS
from layers.store import Store
from sample_data.generator import generate

GEOMETRY_TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def sample_city() -> dict[str, pd.DataFrame]:
    """The ``test``-scale sample city, with a few unknown construction years so a nullable int is exercised."""
    city = generate("test")
    buildings = city["buildings"].copy()
    buildings["year_built"] = buildings["year_built"].astype("Int64")
    buildings.loc[buildings.index[::97], "year_built"] = pd.NA
    city["buildings"] = buildings
    return city


@pytest.fixture(params=["sqlite_url", pytest.param("postgis_db_url", marks=pytest.mark.postgis)])
def store(request):
    """An empty store on each back end."""
    store = Store(request.getfixturevalue(request.param))
    yield store
    store.engine.dispose()


def write_city(store: Store, city: dict[str, pd.DataFrame], source: str = "test") -> None:
    store.replace_layers({layer_id: encode_frame(layer_id, frame) for layer_id, frame in city.items()}, source)


def assert_column_equal(layer_id: str, column, expected: pd.Series, got: pd.Series) -> None:
    where = f"{layer_id}.{column.name}"
    expected = expected.reset_index(drop=True)
    got = got.reset_index(drop=True)
    missing_expected = expected.isna().to_numpy()
    missing_got = got.isna().to_numpy()
    assert (missing_expected == missing_got).all(), f"{where}: nulls differ"
    present = ~missing_expected
    if column.kind == "polygon":
        same = shapely.equals_exact(np.asarray(expected[present]), np.asarray(got[present]),
                                    tolerance=GEOMETRY_TOLERANCE)
        assert same.all(), f"{where}: {int((~same).sum())} geometries differ"
    elif column.kind == "time":
        assert str(got.dt.tz) == "Asia/Shanghai", f"{where}: loaded in {got.dt.tz}"
        # Instants are stored as whole epoch seconds: the sample's sub-second parts are dropped, by design.
        expected_seconds = expected[present].dt.tz_convert("UTC").dt.floor("s")
        assert (expected_seconds.to_numpy() == got[present].dt.tz_convert("UTC").to_numpy()).all(), \
            f"{where}: instants differ"
    elif column.kind == "float":
        np.testing.assert_array_equal(expected[present].to_numpy(float), got[present].to_numpy(float), where)
    else:
        assert expected[present].tolist() == got[present].tolist(), f"{where}: values differ"


def test_every_layer_round_trips(store, sample_city):
    write_city(store, sample_city)
    for layer_id, expected in sample_city.items():
        spec = LAYERS[layer_id]
        got = load_layer(store, layer_id)
        assert len(got) == len(expected) == store.count(layer_id), layer_id
        if spec.has_geometry:
            assert isinstance(got, gpd.GeoDataFrame) and got.crs.to_epsg() == 4326, layer_id
        else:  # the orders: lon/lat alone, no shapely point per row (LayerSpec.point_geometry)
            assert not isinstance(got, gpd.GeoDataFrame) and "geometry" not in got, layer_id
        # Rows come back in the order they were written on both back ends (no ORDER BY is asked for), but the
        # comparison should not depend on it: align on the layer's key where it is unique.
        if expected[spec.key].is_unique:
            expected = expected.set_index(spec.key, drop=False).loc[got[spec.key]]
        for column in spec.columns:
            assert_column_equal(layer_id, column, expected[column.name], got[column.name])


def test_nullable_columns_keep_their_nulls(store, sample_city):
    write_city(store, sample_city)
    buildings = load_layer(store, "buildings")
    assert str(buildings["year_built"].dtype) == "Int64"
    assert buildings["year_built"].isna().sum() == sample_city["buildings"]["year_built"].isna().sum() > 0
    sensors = load_layer(store, "sensors")
    assert sensors["building_id"].isna().sum() == sample_city["sensors"]["building_id"].isna().sum() > 0
    orders = load_layer(store, "orders")
    assert str(orders["satisfied"].dtype) == "boolean"
    assert orders["satisfied"].isna().sum() == sample_city["orders"]["satisfied"].isna().sum() > 0
    assert orders["evaluated_at"].isna().sum() == sample_city["orders"]["evaluated_at"].isna().sum() > 0
    units = load_layer(store, "units")
    assert units.loc[units["level"] == "city", "parent_code"].tolist() == [None]


def test_layer_versions_count_the_writes(store, sample_city):
    store.create_schema()
    assert store.layer_version("units") == 0
    small = {"units": sample_city["units"], "event_types": sample_city["event_types"]}
    write_city(store, small, source="first")
    write_city(store, {"units": sample_city["units"]}, source="second")
    versions = store.layer_versions()
    assert versions["units"]["version"] == 2
    assert versions["units"]["source"] == "second"
    assert versions["units"]["rows"] == len(sample_city["units"])
    assert versions["event_types"]["version"] == 1
    assert store.layer_version("orders") == 0


@pytest.mark.postgis
def test_postgis_geometry_is_a_real_geometry_column(postgis_db_url, sample_city):
    store = Store(postgis_db_url)
    try:
        write_city(store, {"units": sample_city["units"]})
        with store.engine.connect() as conn:
            srid, kind = conn.execute(
                sqlalchemy.text("SELECT ST_SRID(geometry), GeometryType(geometry) FROM units LIMIT 1")).one()
            valid = conn.execute(sqlalchemy.text("SELECT bool_and(ST_IsValid(geometry)) FROM units")).scalar_one()
    finally:
        store.engine.dispose()
    assert srid == 4326
    assert kind in ("POLYGON", "MULTIPOLYGON")
    assert valid


def _null_in_required_column(buildings: pd.DataFrame) -> pd.DataFrame:
    """The database refuses the row (NOT NULL constraint)."""
    broken = buildings.copy()
    broken.loc[broken.index[-1], "use"] = None
    return broken


def _text_in_integer_column(buildings: pd.DataFrame) -> pd.DataFrame:
    """The value cannot be converted for the insert, in the middle of the write."""
    broken = buildings.copy()
    broken["floors"] = broken["floors"].astype(object)
    broken.loc[broken.index[-1], "floors"] = "many"
    return broken


@pytest.mark.parametrize("break_frame", [_null_in_required_column, _text_in_integer_column])
def test_failed_write_keeps_the_previous_rows(store, sample_city, break_frame):
    write_city(store, {"units": sample_city["units"], "buildings": sample_city["buildings"]})
    versions_before = store.layer_versions()
    units_before = store.read_frame("units")

    # Units first, so the failure comes after one layer has already been replaced inside the transaction.
    new_units = sample_city["units"].iloc[:10]
    broken_buildings = encode_frame("buildings", sample_city["buildings"])
    broken_buildings = break_frame(broken_buildings)
    with pytest.raises(Exception):
        store.replace_layers({"units": encode_frame("units", new_units), "buildings": broken_buildings}, "broken")

    assert store.layer_versions() == versions_before
    assert store.count("units") == len(sample_city["units"])
    assert store.count("buildings") == len(sample_city["buildings"])
    pd.testing.assert_frame_equal(store.read_frame("units"), units_before)
