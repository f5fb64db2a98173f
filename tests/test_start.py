"""The start at the city scale: what the first page needs is ready without recomputing what a start before already
computed, and the shortcuts taken for speed give what the long way gives."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import built_test_city  # tests/ is on sys.path (rootdir conftest)
from dashboard import services as services_module
from dashboard.services import PLAYBACK_HOURS, Services, code_fingerprint, computed_key, lists_by_unit_and_indicator
from dashboard.settings import Settings
from layers.snapshot import read_computed
from layers.store import Store
from layers.workorders import OrderQuery


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


# --- a start reads the first page's tables that the start before it computed for the same city ----------------------

@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    return built_test_city(tmp_path_factory, "start")


def started(url: str, snapshot_dir, **settings) -> Services:
    service = Services(Store(url, snapshot_dir=snapshot_dir),
                       settings=Settings(snapshots=True, version_check_seconds=0, **settings))
    service.warm(("7d", "today"))
    return service


def assert_same_series(got: pd.Series, expected: pd.Series) -> None:
    assert got.index.equals(expected.index) and got.index.names == expected.index.names
    assert got.name == expected.name and got.dtype == expected.dtype
    for mine, theirs in zip(got, expected):
        assert isinstance(mine, list)
        np.testing.assert_array_equal(np.array(mine, dtype=float), np.array(theirs, dtype=float))


def test_a_restart_reads_the_tables_the_start_before_computed(city_url, monkeypatch, tmp_path):
    first = started(city_url, tmp_path / "snapshot")
    first.warm_playback()
    first.keep_computed()
    assert {f"computed-{kind}-{window}.arrow" for kind in ("table", "series") for window in ("7d", "today")} \
        | {f"computed-playback-{hour}.arrow" for hour in range(1, PLAYBACK_HOURS + 1)} \
        <= {path.name for path in (tmp_path / "snapshot").iterdir()}

    def computed_again(*_args, **_kwargs):
        raise AssertionError("a table kept for this generation was computed again")

    monkeypatch.setattr(services_module, "window_table", computed_again)
    monkeypatch.setattr(services_module, "window_series", computed_again)
    monkeypatch.setattr(services_module, "compare", computed_again)  # what a playback hour is computed with
    restarted = started(city_url, tmp_path / "snapshot")
    restarted.warm_playback()
    for window in ("7d", "today"):
        pd.testing.assert_frame_equal(restarted.table(window), first.table(window), check_exact=True)
        assert list(restarted.table(window).dtypes) == list(first.table(window).dtypes)
        assert_same_series(restarted.series(window), first.series(window))
    for hour in (1, PLAYBACK_HOURS):
        pd.testing.assert_frame_equal(restarted.playback_table(hour), first.playback_table(hour), check_exact=True)
    restarted.keep_computed()  # kept already: not written again
    monkeypatch.undo()


def test_a_window_first_asked_after_the_fork_is_read_from_what_a_start_before_kept(city_url, monkeypatch,
                                                                                     tmp_path):
    """Several workers are forked with the default window only (replay mode); a page asking for "today" in one
    reads the table and sparklines a start before kept for this generation instead of computing them."""
    first = started(city_url, tmp_path / "snapshot")
    first.keep_computed()

    def computed_again(*_args, **_kwargs):
        raise AssertionError("a table kept for this generation was computed again")

    restarted = Services(Store(city_url, snapshot_dir=tmp_path / "snapshot"),
                         settings=Settings(snapshots=True, version_check_seconds=0))
    restarted.warm(("7d",))  # what the master warms before it forks
    assert "today" not in restarted.generation().tables
    monkeypatch.setattr(services_module, "window_table", computed_again)
    monkeypatch.setattr(services_module, "window_series", computed_again)
    view = restarted.unit_view(None, "on_time_rate", "today")
    pd.testing.assert_frame_equal(restarted.table("today"), first.table("today"), check_exact=True)
    assert view.kpis.loc["on_time_rate", "value"] == first.table("today").set_index(["code", "indicator"]).loc[
        (view.code, "on_time_rate"), "value"]


def test_a_restart_reads_the_tile_index_the_start_before_built(city_url, monkeypatch, tmp_path):
    from dashboard.maps import routes
    from dashboard.maps.tiles import BuildingTiles

    first = started(city_url, tmp_path / "snapshot")
    first.keep_computed()  # the snapshot is written (the index goes beside it)
    routes.warm(first)
    routes.keep_tile_index(first, first.generation())
    built = routes.tile_index(first.generation())
    assert {f"computed-tile-index-{part}.arrow" for part in ("buildings", "rings", "vertices")} \
        <= {path.name for path in (tmp_path / "snapshot").iterdir()}

    def built_again(*_args, **_kwargs):
        raise AssertionError("the tile index kept for these buildings was built again")

    monkeypatch.setattr(BuildingTiles, "build", built_again)
    restarted = started(city_url, tmp_path / "snapshot")
    routes.warm(restarted)
    kept = routes.tile_index(restarted.generation())
    for name in ("order", "keys", "ring_offsets", "ring_starts", "xs", "ys"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(built, name))
    monkeypatch.undo()
    # Kept by another release of the tile code: not used, built again.
    monkeypatch.setattr(routes, "TILE_INDEX_CODE", "another release")
    again = started(city_url, tmp_path / "snapshot")
    routes.restore_tile_index(again, again.generation())
    assert "building_tiles" not in again.generation().memo


def test_the_open_orders_come_from_the_city_when_it_holds_the_stores_version(city_url, monkeypatch, tmp_path):
    from layers.workorders import WorkOrders

    service = started(city_url, tmp_path / "snapshot")
    from_store = service.work_orders().open_orders_frame()

    def read_from_store(*_args, **_kwargs):
        raise AssertionError("the open orders were read from the store although the city holds them")

    monkeypatch.setattr(WorkOrders, "open_orders_frame", read_from_store)
    orders, _ = service.open_orders()
    monkeypatch.undo()
    by_id = lambda frame: frame.drop(columns="district", errors="ignore").set_index("order_id").sort_index()  # noqa: E731
    pd.testing.assert_frame_equal(by_id(orders), by_id(from_store), check_exact=True)
    assert orders["district"].notna().all()
    # An action the city does not hold yet (the store's version moved on): read from the store, current.
    order = service.work_orders().list_orders(OrderQuery(status=["received"], limit=1)).orders[0]
    service.work_orders().dispatch(order.order_id, expected_version=order.version, actor="operator")
    orders, _ = service.open_orders(fresh=True)
    assert orders.set_index("order_id").at[order.order_id, "status"] == "dispatched"


def test_tables_kept_for_another_generation_or_release_are_not_used(city_url, monkeypatch, tmp_path):
    first = started(city_url, tmp_path / "snapshot")
    first.keep_computed()
    gen = first.generation()
    key = computed_key(gen, "7d")
    store = first.store
    assert read_computed(store, "table-7d", key) is not None
    assert read_computed(store, "table-7d", computed_key(gen, "30d")) is None
    assert read_computed(store, "table-7d", key.replace(code_fingerprint(), "another release")) is None
    # The store changed while the server was down: the restarted city is another generation, its tables computed.
    work_orders = first.work_orders()
    order = work_orders.list_orders(OrderQuery(status=["received"], limit=1)).orders[0]
    work_orders.dispatch(order.order_id, expected_version=order.version, actor="operator")
    restarted = started(city_url, tmp_path / "snapshot")
    assert restarted.city().versions != gen.city.versions
    fresh = Services(Store(city_url), settings=Settings(snapshots=False))
    pd.testing.assert_frame_equal(restarted.table("7d"), fresh.table("7d"), check_exact=True)
    assert_same_series(restarted.series("7d"), fresh.series("7d"))


def test_in_live_mode_no_table_is_kept(city_url, monkeypatch, tmp_path):
    live = Services(Store(city_url, snapshot_dir=tmp_path / "snapshot"), settings=Settings(snapshots=True, version_check_seconds=0, mode="live"))
    live.city()
    live._snapshotting.join(120)
    live.table("7d")
    live.keep_computed()
    assert not list((tmp_path / "snapshot").glob("computed-*"))


# --- the city's orders: lon/lat alone, no shapely point per order ----------------------------------------------------

def test_the_maps_card_and_hotspots_draw_the_points_from_lon_lat_alone(city_url, monkeypatch, tmp_path):
    """At the city scale a shapely point per order cost about 4 s of every start and 0.65 GB; the city holds the
    orders' lon/lat alone (layers.specs.ORDERS.point_geometry). Every map layer that reads orders, the building
    card's open orders nearby and the hotspots then work from a city started from the snapshot, as served."""
    import geopandas as gpd
    import pyarrow.feather as feather

    from dashboard.maps import sources
    from dashboard.maps.registry import MAP_LAYERS, MapView
    from dashboard.services import ORDER_RADIUS_M
    from metrics.spec import named_window

    first = started(city_url, tmp_path / "snapshot")
    first._snapshotting.join(120)
    service = started(city_url, tmp_path / "snapshot")
    assert service._snapshotting is None  # read from the snapshot, as a restart is
    city = service.city()
    orders = city["orders"]
    assert type(orders) is pd.DataFrame and "geometry" not in orders
    assert orders["lon"].dtype == orders["lat"].dtype == np.float64 and orders[["lon", "lat"]].notna().all().all()
    assert "geometry" not in feather.read_table(tmp_path / "snapshot" / "orders.arrow").column_names
    assert isinstance(city["sensors"], gpd.GeoDataFrame)  # a point layer that did not opt out keeps its points

    top = service.resolve_unit(None)
    cell = orders["grid_code"].value_counts().index[0]  # the grid cell with the most orders
    window = named_window("30d", city.as_of)
    for code in (top, cell):
        in_unit = orders[(city.hierarchy.loc[orders["grid_code"], city.units.at[code, "level"]].to_numpy() == code)
                         & (orders["received_at"] >= window.start).to_numpy()
                         & (orders["received_at"] < window.end).to_numpy()]
        assert len(in_unit), code
        view = MapView(service, service.unit_view(code, "on_time_rate", "30d"), "on_time_rate", "30d")
        built = {layer_id: layer.build(view) for layer_id, layer in MAP_LAYERS.items() if "orders" in layer.sources}
        assert set(built) >= {"order_hexes", "order_heatmap", "order_points", "hotspots"}
        hexes = built["order_hexes"][0]["data"]
        assert sum(h["count"] for h in hexes) == len(in_unit), code
        if code == cell:  # few enough to draw each: the points are the orders' own lon/lat
            points = sources.order_points(city, code, window.start, window.end)
            assert sorted(zip(points.lon.tolist(), points.lat.tolist())) == sorted(
                zip(in_unit["lon"].astype(np.float32).tolist(), in_unit["lat"].astype(np.float32).tolist()))
            assert built["order_points"][0]["data"]["@@binary"]["length"] == len(in_unit)
    assert len(service.hotspots("30d").columns)

    # The enterprises and cameras (360,000-380,000 each at the city scale) are drawn from lon/lat too.
    for name, marks_of in (("enterprises", sources.enterprise_marks), ("cameras", sources.camera_marks)):
        frame = city[name]
        assert type(frame) is pd.DataFrame and "geometry" not in frame, name
        busiest = frame["grid_code"].value_counts().index[0]
        rows = frame[frame["grid_code"] == busiest]
        marks = marks_of(city, busiest)
        assert len(rows) and sorted(zip(marks["lon"], marks["lat"])) == sorted(zip(rows["lon"], rows["lat"])), name
        view = MapView(service, service.unit_view(busiest, "on_time_rate", "30d"), "on_time_rate", "30d")
        assert len(MAP_LAYERS[name].build(view)[0]["data"]) == len(rows), name

    # The building card lists an open order lying on a building of its cell (distance measured from lon/lat).
    buildings = city["buildings"]
    open_orders = orders[orders["status"] != "closed"]
    for order in open_orders.itertuples():
        inside = buildings[buildings.contains(gpd.points_from_xy([order.lon], [order.lat])[0]).to_numpy()]
        if len(inside):
            break
    else:
        pytest.fail("no open order lies on a building in the test city")
    card = service.building_card(inside["building_id"].iloc[0])
    listed = card.open_orders.set_index("order_id")
    assert order.order_id in listed.index and listed.at[order.order_id, "distance_m"] == 0
    assert (listed["distance_m"] <= ORDER_RADIUS_M).all()
