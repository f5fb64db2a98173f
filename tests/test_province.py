"""The province scale (sample_data.province): Guangdong's 21 cities on their district boundaries under one province
unit, things in proportion to each city's residents, figures that roll up from the cities to the province, and the
Dask engine giving the same table as the engine in memory on it. A single-city store keeps its five levels."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from layers.city import build_hierarchy, levels_of, load_city
from layers.history import History, write_history
from layers.specs import ALL_LEVELS, LEVELS, PROVINCE
from layers.store import Store
from metrics import distributed, engine
from metrics.registry import INDICATORS
from metrics.spec import named_window
from sample_data import province
from tests.test_distributed import assert_same_table


@pytest.fixture(scope="module")
def city(province_db):
    return load_city(Store(province_db))


def test_the_province_sample_holds_guangdongs_cities_on_their_district_boundaries(city):
    units = city.units
    assert units.loc[units["level"] == PROVINCE, "code"].tolist() == [province.PROVINCE_CODE]
    cities = units[units["level"] == "city"]
    assert sorted(cities["code"]) == sorted(province.POPULATION_2020) and len(cities) == 21
    assert set(cities["parent_code"]) == {province.PROVINCE_CODE}
    districts = units[units["level"] == "district"].set_index("code")
    shipped = gpd.read_file(province.DISTRICTS_FILE).set_index("code")
    assert sorted(districts.index) == sorted(shipped.index) and len(districts) == 123
    assert (districts["parent_code"] == shipped.loc[districts.index, "city_code"]).all()
    # The districts are the decoded boundaries themselves (the store keeps them to its own precision).
    same = [districts.geometry[c].symmetric_difference(shipped.geometry[c]).area < 1e-9 * max(shipped.geometry[c].area, 1)
            for c in districts.index]
    assert all(same)
    assert {"Guangzhou", "Dongguan"} <= set(cities["name"]) and "广州市" in set(cities["name_zh"])
    assert levels_of(city.hierarchy) == ALL_LEVELS


def test_each_city_gets_buildings_sensors_and_orders_by_its_residents(city):
    of_city = {layer: city[layer]["grid_code"].map(city.hierarchy["city"]).value_counts()
               for layer in ("buildings", "sensors", "orders")}
    for code in province.POPULATION_2020:
        scale = province.city_scale(code)
        # The city's share of the province's buildings (a lattice in a small cell may hold one fewer).
        assert abs(of_city["buildings"][code] - scale.buildings) <= max(2, 0.02 * scale.buildings), code
    people = pd.Series(province.POPULATION_2020)
    share = people / people.sum()
    for layer in ("sensors", "orders"):
        counts = of_city[layer].reindex(people.index)
        # Every city is above the floor (MINIMUM) at this scale, so each city's share follows its residents.
        assert np.allclose(counts / counts.sum(), share, atol=0.01), (layer, (counts / counts.sum() - share).abs().max())
    assert of_city["orders"]["440100"] > 5 * of_city["orders"]["445300"]  # Guangzhou against Yunfu


def test_the_province_figures_are_the_sums_of_its_cities(city):
    table = engine.compute(city, named_window("7d", city.as_of))
    assert set(table["level"]) == set(ALL_LEVELS)
    parent = city.units["parent_code"]
    for upper, lower in (("province", "city"), ("city", "district")):
        children = table[table["level"] == lower].assign(parent=lambda t: t["code"].map(parent))
        summed = children.groupby(["parent", "indicator"])[["numerator", "denominator"]].sum()
        above = table[table["level"] == upper].set_index(["code", "indicator"])[["numerator", "denominator"]]
        summed = summed.reindex(above.index)
        assert np.allclose(above.to_numpy(float), summed.to_numpy(float), rtol=1e-12, equal_nan=True), upper
    # ... and divided last: a rate of the province is its summed numerator over its summed denominator.
    rows = table[(table["level"] == "province") & (table["indicator"] == "on_time_rate")].iloc[0]
    assert rows["value"] == pytest.approx(100 * rows["numerator"] / rows["denominator"])
    volume = table[(table["level"] == "province") & (table["indicator"] == "order_volume")]["value"].iloc[0]
    window = named_window("7d", city.as_of)
    received = city["orders"]["received_at"]
    assert volume == ((received >= window.start) & (received < window.end)).sum()


def test_a_single_city_store_keeps_its_five_levels(city):
    """Without a province unit (every store before this one) the hierarchy and the table have no province level."""
    units = city.units[city.units["code"].str.startswith("4403") & (city.units["level"] != PROVINCE)].copy()
    units.loc[units["level"] == "city", "parent_code"] = None
    hierarchy = build_hierarchy(units)
    assert levels_of(hierarchy) == LEVELS and PROVINCE not in hierarchy.columns
    # A hierarchy where some cities have a province above them and others not is refused, naming a city.
    mixed = city.units.copy()
    mixed.loc["440300", "parent_code"] = None
    with pytest.raises(ValueError, match="has no province above it"):
        build_hierarchy(mixed)


@pytest.fixture(scope="module")
def history(province_db, tmp_path_factory):
    root = tmp_path_factory.mktemp("province-history")
    write_history(Store(province_db), root)
    return History(root)


def test_the_province_history_has_a_partition_per_city_and_month(city, history):
    orders = history.partitions("orders")
    assert {p.city for p in orders} == set(province.POPULATION_2020)
    assert {p.month for p in orders} == {"2026-11", "2026-12"}
    assert sum(len(p.read(["order_id"])) for p in orders) == len(city["orders"])
    # Each city's partition holds its own orders only.
    guangzhou = history.read("orders", ["grid_code"], city="440100")
    assert len(guangzhou) and guangzhou["grid_code"].str.startswith("4401").all()
    assert history.context_key == province.PROVINCE_CODE


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="1GiB", host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as dask_client:
        yield dask_client


@pytest.mark.parametrize("window_name", ["today", "7d", "12m"])
def test_dask_engine_equals_the_engine_in_memory_on_the_province(city, history, client, window_name):
    window = named_window(window_name, city.as_of)
    run = distributed.Run()
    table = distributed.compute(history, window, city, client=client, run=run)
    assert_same_table(engine.compute(city, window), table)
    assert set(table["level"]) == set(ALL_LEVELS) and set(table["indicator"]) == set(INDICATORS)
    assert run.partitions >= 21  # the cities' partitions, read as tasks
