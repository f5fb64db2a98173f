"""Tests for the sample city generator at the ``test`` scale: determinism, the unit hierarchy on the real district
boundaries, buildings, sensors and readings, work orders and their stages, calibration and planted hotspots, and the
``python -m sample_data build`` command.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from layers.city import City, build_hierarchy, load_city
from layers.specs import LEVELS, METRIC_CRS, ORDER_STAGES, STATUS_AFTER_STAGE
from layers.store import Store
from metrics.engine import compute
from metrics.sensors import ONLINE_GRACE
from metrics.spec import named_window
from sample_data.generator import DEFAULT_END, SCALES, STREETS_PER_DISTRICT, generate

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED = 20231  # the generator's default seed
OTHER_SEED = 7

# Shenzhen's district adcodes on the shipped 8-district map (Guangming is inside Bao'an, Dapeng inside Longgang).
ADCODES = {"440303", "440304", "440305", "440306", "440307", "440308", "440309", "440310"}
CORE = {"440303", "440304", "440305"}  # Luohu, Futian, Nanshan
CODE_LENGTH = {"city": 6, "district": 6, "street": 9, "community": 12, "grid": 14}
STAGE_COLUMNS = [f"{stage}_at" for stage in ORDER_STAGES]


@pytest.fixture(scope="module")
def layers() -> dict[str, pd.DataFrame]:
    return generate("test", seed=SEED)


@pytest.fixture(scope="module")
def units(layers):
    return layers["units"].set_index("code", drop=False)


@pytest.fixture(scope="module")
def city(layers) -> City:
    """The generated layers as :func:`layers.city.load_city` would give them, without a database."""
    units = layers["units"].set_index("code", drop=False)
    data = {k: v.copy() for k, v in layers.items() if k != "units"}
    # City gives readings and alarms their sensor's grid cell and kind.
    return City(units=units, hierarchy=build_hierarchy(units), layers=data)


@pytest.fixture(scope="module")
def city_figures(city) -> pd.Series:
    table = compute(city, named_window("7d", city.as_of), levels=("city",))
    return table.set_index("indicator")["value"]


# --- determinism ----------------------------------------------------------------------------------------------------

def test_same_seed_same_city(layers):
    again = generate("test", seed=SEED)
    pd.testing.assert_frame_equal(again["orders"], layers["orders"])
    assert (shapely.to_wkb(again["units"].geometry.to_numpy())
            == shapely.to_wkb(layers["units"].geometry.to_numpy())).all()
    assert (shapely.to_wkb(again["buildings"].geometry.to_numpy())
            == shapely.to_wkb(layers["buildings"].geometry.to_numpy())).all()
    for name in ("sensors", "readings", "alarms", "planted_hotspots"):
        pd.testing.assert_frame_equal(pd.DataFrame(again[name]), pd.DataFrame(layers[name]), obj=name)


def test_other_seed_other_city(layers):
    other = generate("test", seed=OTHER_SEED)
    assert not other["orders"].equals(layers["orders"])
    mine = layers["units"].set_index("code")
    theirs = other["units"].set_index("code").geometry
    # The city, its districts and the streets' codes are fixed; only the city and its districts, the real
    # boundaries, keep their shapes: everything below them is redrawn.
    top = mine["level"].isin(["city", "district"])
    assert set(mine.index[mine["level"] != "grid"].str[:9]) == set(theirs.index.str[:9])
    shared = mine.index.intersection(theirs.index)
    same = pd.Series(shapely.equals_exact(mine.geometry[shared].to_numpy(), theirs[shared].to_numpy(), tolerance=0),
                     index=shared)
    assert same[top[shared]].all()
    # (A unit may come out the same by chance, e.g. an island given whole to one community.)
    assert same[~top[shared]].mean() < 0.05


# --- administrative units -------------------------------------------------------------------------------------------

def test_city_and_districts(units):
    city = units[units["level"] == "city"]
    assert city["code"].tolist() == ["440300"]
    assert city["parent_code"].isna().all()
    districts = units[units["level"] == "district"]
    assert set(districts["code"]) == ADCODES
    assert (districts["parent_code"] == "440300").all()
    assert districts.set_index("code").loc["440304", "name_zh"] == "福田区"


def test_streets_per_district(units):
    streets = units[units["level"] == "street"]
    assert len(streets) == 74
    assert sum(STREETS_PER_DISTRICT.values()) == 74
    assert set(STREETS_PER_DISTRICT) == ADCODES
    assert streets.groupby("parent_code").size().to_dict() == STREETS_PER_DISTRICT


def test_unit_counts_follow_the_scale(units):
    counts = units["level"].value_counts()
    assert counts["community"] == SCALES["test"].communities
    assert counts["grid"] == SCALES["test"].grids
    # Every unit above the grid has children.
    parents = set(units["parent_code"].dropna())
    assert set(units.loc[units["level"] != "grid", "code"]) == parents


def test_codes_unique_and_prefixed_by_parent(units):
    assert units["code"].is_unique
    assert (units["code"].str.len() == units["level"].map(CODE_LENGTH)).all()
    children = units[units["parent_code"].notna()]
    # Districts carry their adcode, which shares the city's 4-digit prefix (4403); below, a code extends its
    # parent's.
    below = children[children["level"] != "district"]
    assert all(code.startswith(parent) for code, parent in zip(below["code"], below["parent_code"]))
    assert (children.loc[children["level"] == "district", "code"].str[:4] == "4403").all()
    # A parent sits on the level just above its child.
    parent_level = children["parent_code"].map(units["level"])
    expected = children["level"].map(lambda lvl: LEVELS[LEVELS.index(lvl) - 1])
    assert (parent_level == expected).all()
    hierarchy = build_hierarchy(units)
    assert len(hierarchy) == SCALES["test"].grids


def test_units_are_valid_polygons(units):
    geoms = units.geometry.to_numpy()
    assert shapely.is_valid(geoms).all()
    assert not shapely.is_empty(geoms).any()
    assert set(shapely.get_type_id(geoms)) <= {3, 6}  # Polygon, MultiPolygon


def test_every_level_nests_exactly_in_its_parent(units):
    # Checked in the stored CRS (EPSG:4326), where children share their parent's vertices exactly. (Re-projected to
    # metres, a straight edge between two shared vertices is no longer exactly straight, which opens slivers of
    # ~1e-5 of a unit's area: that is the projection, not the data.)
    bad = []
    for parent_code, children in units.groupby("parent_code"):
        parent = units.geometry[parent_code]
        union = shapely.union_all(children.geometry.to_numpy())
        gap_or_spill = shapely.symmetric_difference(union, parent).area / parent.area
        overlap = abs(shapely.area(children.geometry.to_numpy()).sum() - union.area) / union.area
        if gap_or_spill >= 1e-9 or overlap >= 1e-9:
            bad.append((parent_code, gap_or_spill, overlap))
    assert not bad, f"units not covered exactly by their children (code, sym. diff., overlap): {bad[:10]}"


# --- buildings ------------------------------------------------------------------------------------------------------

def test_buildings_lie_in_their_grid_cell(layers, units):
    buildings = layers["buildings"]
    assert buildings["building_id"].is_unique
    assert len(buildings) == pytest.approx(SCALES["test"].buildings, rel=0.05)
    assert buildings["grid_code"].isin(units.index[units["level"] == "grid"]).all()
    cells = units.geometry.reindex(buildings["grid_code"]).to_numpy()
    points = shapely.point_on_surface(buildings.geometry.to_numpy())
    inside = shapely.contains(cells, points)
    assert inside.all(), f"{(~inside).sum()} of {len(buildings)} buildings outside their grid cell"
    assert shapely.is_valid(buildings.geometry.to_numpy()).all()
    assert buildings["height_m"].between(3.0, 599.0).all()
    assert (buildings["floors"] >= 1).all()


def test_core_is_denser_and_taller(layers, units):
    buildings = layers["buildings"]
    district = buildings["grid_code"].str[:6]
    districts = units[units["level"] == "district"]
    area_km2 = districts.geometry.to_crs(METRIC_CRS).area / 1e6
    density = district.value_counts() / area_km2
    height = buildings.groupby(district)["height_m"].median()
    rest = ADCODES - CORE
    core_list, rest_list = sorted(CORE), sorted(rest)
    assert density[core_list].min() > density[rest_list].max(), density.round(2).to_dict()
    assert height[core_list].min() > height[rest_list].max(), height.to_dict()
    # And by a clear margin overall.
    in_core = district.isin(CORE)
    core_density = in_core.sum() / area_km2[core_list].sum()
    rest_density = (~in_core).sum() / area_km2[rest_list].sum()
    assert core_density > 2.5 * rest_density
    assert buildings.loc[in_core, "height_m"].median() > 1.4 * buildings.loc[~in_core, "height_m"].median()


# --- sensors and readings -------------------------------------------------------------------------------------------

def test_sensors_kinds_and_locations(layers, units):
    sensors = layers["sensors"]
    buildings = layers["buildings"].set_index("building_id")
    assert sensors["sensor_id"].is_unique
    assert sensors["kind"].nunique() >= 8
    assert sensors[["lon", "lat"]].notna().all().all()
    cells = units.geometry.reindex(sensors["grid_code"]).to_numpy()
    assert shapely.covers(cells, shapely.points(sensors["lon"], sensors["lat"])).all()

    in_building = sensors["kind"].isin(["smoke", "electrical_safety"])
    located = sensors[in_building]
    assert set(located["kind"]) == {"smoke", "electrical_safety"}
    assert located["building_id"].notna().all()
    assert located["building_id"].isin(buildings.index).all()
    assert (located["building_id"].map(buildings["grid_code"]) == located["grid_code"]).all()
    assert sensors.loc[~in_building, "building_id"].isna().all()
    # Smoke detectors are for high-rises (over 27 m).
    assert (sensors.loc[sensors["kind"] == "smoke", "building_id"].map(buildings["height_m"]) >= 27.0).all()


def test_sensor_status_matches_last_seen(layers):
    sensors = layers["sensors"]
    assert set(sensors["status"]) <= {"online", "offline", "fault"}
    assert (sensors["installed_at"] <= sensors["last_seen_at"]).all()
    recent = sensors["last_seen_at"] >= DEFAULT_END - ONLINE_GRACE
    assert (recent == (sensors["status"] == "online")).all()


def test_readings_on_the_hour_and_only_while_reporting(layers):
    readings = layers["readings"]
    sensors = layers["sensors"].set_index("sensor_id")
    assert readings["sensor_id"].isin(sensors.index).all()
    assert set(readings["sensor_id"].map(sensors["kind"])) == {"pm25", "noise", "water_level", "traffic_flow"}
    assert (readings["ts"] == readings["ts"].dt.floor("h")).all()
    assert (readings["ts"] <= readings["sensor_id"].map(sensors["last_seen_at"])).all()
    assert not readings.duplicated(["sensor_id", "ts"]).any()


def test_readings_have_a_daily_cycle(layers):
    kinds = layers["sensors"].set_index("sensor_id")["kind"]
    readings = layers["readings"].assign(kind=lambda r: r["sensor_id"].map(kinds), hour=lambda r: r["ts"].dt.hour)
    # Each sensor's site has its own level: compare hours on the deviation from the sensor's own mean.
    readings["deviation"] = readings["value"] - readings.groupby("sensor_id")["value"].transform("mean")
    for kind, group in readings.groupby("kind"):
        by_hour = group.groupby("hour")["deviation"]
        means = by_hour.mean()
        assert len(means) == 24, kind
        # The hour-of-day means differ by far more than their sampling error would allow.
        standard_error = (by_hour.std() / np.sqrt(by_hour.size())).max()
        assert means.max() - means.min() > 3 * standard_error, kind
    hourly = readings.groupby(["kind", "hour"])["deviation"].mean()
    rush, night, midday = [8, 9, 18, 19], [1, 2, 3, 4], [11, 12, 13, 14]
    traffic = readings[readings["kind"] == "traffic_flow"].groupby("hour")["value"].mean()
    assert traffic[rush].mean() > 3 * traffic[night].mean()
    assert hourly["pm25"][rush].mean() > hourly["pm25"][night].mean() + 4  # µg/m³
    assert hourly["noise"][midday].mean() > hourly["noise"][night].mean() + 4  # dB(A)


# --- work orders ----------------------------------------------------------------------------------------------------

def test_reference_lists(layers):
    event_types, channels, orders = layers["event_types"], layers["channels"], layers["orders"]
    assert event_types["code"].is_unique and len(event_types) >= 40
    assert channels["code"].is_unique and len(channels) >= 10
    assert (event_types["time_limit_hours"] > 0).all()
    assert orders["event_type"].isin(event_types["code"]).all()
    assert orders["channel"].isin(channels["code"]).all()
    assert orders["order_id"].is_unique
    limits = event_types.set_index("code")
    assert (orders["department"] == orders["event_type"].map(limits["department"])).all()
    deadline = orders["received_at"] + pd.to_timedelta(orders["event_type"].map(limits["time_limit_hours"]), unit="h")
    assert (orders["deadline_at"] == deadline).all()
    assert orders["grid_code"].isin(layers["units"]["code"]).all()


HANDLING_CHAIN = ["received_at", "dispatched_at", "accepted_at", "handled_at", "feedback_at"]


def test_order_stages_in_order_without_gaps(layers):
    orders = layers["orders"]
    chain = orders[HANDLING_CHAIN]
    present = chain.notna()
    assert present["received_at"].all()
    # Along the handling chain a later stage is never present when an earlier one is missing.
    assert (present.cummin(axis=1) == present).all().all()
    # Evaluation and closing come after the reply (evaluation may be skipped: nobody answered).
    for later in ("evaluated_at", "closed_at"):
        assert (orders.loc[orders[later].notna(), "feedback_at"].notna()).all(), later
    # Each present stage is no earlier than the one before it.
    ordered = HANDLING_CHAIN + ["evaluated_at", "closed_at"]
    for k, later in enumerate(ordered[1:], start=1):
        for earlier in ordered[:k]:
            both = orders[earlier].notna() & orders[later].notna()
            assert (orders.loc[both, earlier] <= orders.loc[both, later]).all(), f"{earlier} after {later}"
    # Nothing is known after the end of the data.
    for column in STAGE_COLUMNS + ["supervised_at"]:
        assert (orders[column].dropna() <= DEFAULT_END).all(), column


def test_order_status_matches_stages(layers):
    orders = layers["orders"]
    present = orders[HANDLING_CHAIN].notna().to_numpy()
    last_stage = np.array(["received", "dispatched", "accepted", "handled", "feedback"])[present.sum(axis=1) - 1]
    status = orders["status"].to_numpy()
    evaluated = orders["evaluated_at"].notna().to_numpy()
    closed = orders["closed_at"].notna().to_numpy()
    # Evaluated orders are closed (when evaluated); an unevaluated one closes three days after the reply at the
    # earliest; else the status is the last stage reached.
    assert (status[evaluated] == "closed").all()
    assert (orders.loc[evaluated, "closed_at"] == orders.loc[evaluated, "evaluated_at"]).all()
    assert ((status == "closed") == closed).all()
    closed_unevaluated = closed & ~evaluated
    assert (orders.loc[closed_unevaluated, "closed_at"]
            >= orders.loc[closed_unevaluated, "feedback_at"] + pd.Timedelta(hours=72)).all()
    still = ~closed
    mismatch = orders.loc[still & (status != last_stage), ["order_id", "status"] + STAGE_COLUMNS]
    assert mismatch.empty, f"status does not name the last stage reached:\n{mismatch.head()}"
    # The open orders (received, not yet handled) are exactly those whose status is received, dispatched or
    # accepted.
    assert ((orders["handled_at"].isna()).to_numpy() == np.isin(status, ["received", "dispatched", "accepted"])).all()


def test_sample_orders_carry_concurrency_and_list_versions(layers):
    orders = layers["orders"]
    assert (orders["version"] == 1).all()
    dispatched = orders["dispatched_at"].notna()
    assert (orders.loc[dispatched, "rules_version"] == 1).all()
    assert orders.loc[~dispatched, "rules_version"].isna().all()


def test_escalation_marks_the_overdue_only(layers):
    # supervised_at is the escalation to supervision: an hour past the deadline, of an order unhandled then.
    orders = layers["orders"]
    escalated = orders["supervised_at"].notna()
    assert escalated.any()
    assert (orders.loc[escalated, "supervised_at"] == orders.loc[escalated, "deadline_at"] + pd.Timedelta(hours=1)).all()
    handled_before = orders["handled_at"].notna() & (orders["handled_at"] <= orders["deadline_at"] + pd.Timedelta(hours=1))
    assert not (escalated & handled_before).any()
    due = (orders["deadline_at"] + pd.Timedelta(hours=1) <= DEFAULT_END) & ~handled_before
    assert (escalated == due).all()


def test_status_vocabulary_is_the_registry_s(layers):
    # The generator and the importer both spell statuses from layers.specs.STATUS_AFTER_STAGE; sample orders must
    # use nothing else, and every stage but the first must map to a distinct status.
    assert set(layers["orders"]["status"]) <= set(STATUS_AFTER_STAGE.values())
    assert len(set(STATUS_AFTER_STAGE.values())) == len(STATUS_AFTER_STAGE)


def test_order_outcome_columns(layers):
    orders = layers["orders"]
    evaluated = orders["evaluated_at"].notna()
    assert (orders["satisfied"].notna() == evaluated).all()
    assert (orders.loc[~evaluated, "reopen_count"] == 0).all()
    assert (orders.loc[evaluated & (orders["satisfied"] == False), "reopen_count"] >= 1).all()  # noqa: E712
    handled = orders["handled_at"].notna()
    on_time = orders["on_time"]
    assert (on_time[handled] == (orders.loc[handled, "handled_at"] <= orders.loc[handled, "deadline_at"])).all()
    overdue = ~handled & (orders["deadline_at"] < DEFAULT_END)
    assert (on_time[overdue] == False).all()  # noqa: E712
    assert on_time[~handled & ~overdue].isna().all()


def test_calibration_on_time_and_satisfaction(city_figures):
    # Shenzhen's platform reports about 99 % for both; the test city must be close.
    assert 97.0 <= city_figures["on_time_rate"] <= 100.0
    assert 97.0 <= city_figures["satisfaction_rate"] <= 100.0
    # Loose sanity bands for the other order figures.
    assert 0.2 <= city_figures["average_handling_days"] <= 2.5
    assert city_figures["response_24h_rate"] >= 95.0
    assert city_figures["order_volume"] == pytest.approx(7 * SCALES["test"].orders_per_day, rel=0.15)


def test_planted_hotspots_stand_out(layers, units):
    hotspots, orders = layers["planted_hotspots"], layers["orders"]
    grids = units.index[units["level"] == "grid"]
    assert len(hotspots) == SCALES["test"].hotspots
    assert hotspots["hotspot_id"].is_unique
    assert hotspots["event_type"].isin(layers["event_types"]["code"]).all()
    assert hotspots["grid_code"].isin(grids).all()
    hour = orders["received_at"].dt.hour
    for h in hotspots.itertuples():
        assert h.end_hour == (h.start_hour + 3) % 24
        of_type = orders["event_type"] == h.event_type
        in_cell = of_type & (orders["grid_code"] == h.grid_code)
        average_per_cell = of_type.sum() / len(grids)
        assert in_cell.sum() >= 5 * average_per_cell, (h.hotspot_id, in_cell.sum(), average_per_cell)
        # The planted orders are there, in the hotspot's hours (background orders may add a few).
        hours = [(h.start_hour + k) % 24 for k in range(3)]
        in_hours = in_cell & hour.isin(hours)
        assert in_hours.sum() >= h.orders, (h.hotspot_id, in_hours.sum(), h.orders)
        assert in_hours.sum() <= h.orders + 3, (h.hotspot_id, in_hours.sum(), h.orders)


# --- the build command ----------------------------------------------------------------------------------------------

def test_build_command(tmp_path, layers):
    db = tmp_path / "sample.sqlite"
    proc = subprocess.run([sys.executable, "-m", "sample_data", "build", "--scale", "test", "--db", str(db),
                           "--seed", str(SEED)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "built the test sample city" in proc.stdout
    counts = {name: int(number.replace(",", "")) for name, number in
              re.findall(r"(\w+) ([\d,]+)(?:,|$)", proc.stdout.splitlines()[0].split(": ", 1)[1])}
    assert counts == {name: len(frame) for name, frame in layers.items()}  # same seed → same city
    loaded = load_city(Store(f"sqlite:///{db}"))
    assert len(loaded["orders"]) == len(layers["orders"])
    assert len(loaded.hierarchy) == SCALES["test"].grids
