"""The importer (``python -m layers.importer``) loads another city's files in place of the sample city.

Input files are made here, by hand: two districts and a 4 × 2 grid of square cells in Lyon (far from the sample's
Shenzhen), one grid cell an invalid bow tie, buildings in Web Mercator with floors for some and nothing for others,
sensors in GeoParquet and work orders in CSV. Bad input must end with one ``error:`` line and exit code 2, and leave
what was stored exactly as it was.
"""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, Polygon, box

from layers.city import load_city
from layers.importer import (
    DEFAULT_FLOORS,
    DEFAULT_HEIGHT_M,
    METRES_PER_FLOOR,
    ImporterError,
    ImportSources,
    import_city,
)
from layers.load import load_layer
from layers.specs import LAYERS, LEVELS
from layers.store import Store
from sample_data.__main__ import build as build_sample

REPO_ROOT = Path(__file__).resolve().parent.parent
WEST, SOUTH = 4.80, 45.74  # Lyon
STEP = 0.01  # grid cell side in degrees, about 800 m × 1100 m here

# Building id → (grid cell, floors in the file); heights are never given.
BUILDINGS = {
    "b1": ("G10", 4),
    "b2": ("G20", None),
    "b3": ("G30", 40),
    "b4": ("G11", None),
    "b5": ("G21", 2),
    "b6": ("G31", 1),
}


def cell(i: int, j: int) -> Polygon:
    return box(WEST + i * STEP, SOUTH + j * STEP, WEST + (i + 1) * STEP, SOUTH + (j + 1) * STEP)


def cell_centre(code: str) -> Point:
    return cell(int(code[1]), int(code[2])).centroid


def footprint(centre: Point, half_side: float = 0.0002) -> Polygon:
    return box(centre.x - half_side, centre.y - half_side, centre.x + half_side, centre.y + half_side)


def districts_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["D1", "D2"], "name": ["Lyon West", "Lyon East"], "name_zh": ["里昂西", "里昂东"]},
        geometry=[box(WEST, SOUTH, WEST + 2 * STEP, SOUTH + 2 * STEP),
                  box(WEST + 2 * STEP, SOUTH, WEST + 4 * STEP, SOUTH + 2 * STEP)],
        crs="EPSG:4326")


def grid_frame() -> gpd.GeoDataFrame:
    codes = [f"G{i}{j}" for i in range(4) for j in range(2)]
    cells = [cell(int(code[1]), int(code[2])) for code in codes]
    # G00 is a bow tie: its ring crosses itself; make_valid turns it into two triangles.
    x, y = WEST, SOUTH
    cells[0] = Polygon([(x, y), (x + STEP, y + STEP), (x + STEP, y), (x, y + STEP)])
    return gpd.GeoDataFrame({"grid_id": codes}, geometry=cells, crs="EPSG:4326")


def buildings_frame() -> gpd.GeoDataFrame:
    ids = list(BUILDINGS)
    return gpd.GeoDataFrame(
        {"building_id": ids, "floors": pd.array([BUILDINGS[i][1] for i in ids], dtype="Int64")},
        geometry=[footprint(cell_centre(BUILDINGS[i][0])) for i in ids], crs="EPSG:4326")


def sensors_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "sensor_id": ["s1", "s2", "s3"],
        "kind": ["pm25", "noise", "smoke"],
        "installed_at": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        "last_seen_at": pd.to_datetime(["2024-05-01 10:00", "2024-05-01 10:00", "2024-04-30 22:00"]),
    }, geometry=[cell_centre("G10"), cell_centre("G21"), Point(WEST + 0.5, SOUTH)], crs="EPSG:4326")


def orders_table() -> pd.DataFrame:
    g11, g30 = cell_centre("G11"), cell_centre("G30")
    return pd.DataFrame({
        "order_id": ["o1", "o2"],
        "event_type": ["garbage_overflow", "pothole_in_lyon"],
        "received_at": ["2024-05-01 08:00", "2024-05-01 09:00+00:00"],
        "handled_at": ["2024-05-01 12:00", ""],
        "lon": [g11.x, g30.x],
        "lat": [g11.y, g30.y],
    })


@pytest.fixture
def city_files(tmp_path) -> dict[str, Path]:
    """Another city's files, each in its own CRS and format."""
    files = {
        "districts": tmp_path / "districts.gpkg",
        "grid": tmp_path / "grid.shp",
        "buildings": tmp_path / "buildings.geojson",
        "sensors": tmp_path / "sensors.parquet",
        "orders": tmp_path / "orders.csv",
    }
    districts_frame().to_file(files["districts"])
    grid_frame().to_crs("EPSG:32631").to_file(files["grid"])  # UTM zone 31N, Lyon's
    buildings_frame().to_crs("EPSG:3857").to_file(files["buildings"])
    sensors_frame().to_parquet(files["sensors"])
    orders_table().to_csv(files["orders"], index=False)
    return files


def documented_command(files: dict[str, Path]) -> list[str]:
    return [
        "--boundaries", f"district={files['districts']}",
        "--boundaries", f"grid={files['grid']}",
        "--code-column", "grid_id",
        "--city-name", "Lyon",
        "--buildings", str(files["buildings"]),
        "--sensors", str(files["sensors"]),
        "--orders", str(files["orders"]),
    ]


def run_importer(*args: str, database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "layers.importer", *args, "--database-url", database_url],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def stored_state(database_url: str) -> tuple[dict, dict]:
    """Layer versions and row counts: what a failed import must leave as it was."""
    store = Store(database_url)
    try:
        return store.layer_versions(), {layer_id: store.count(layer_id) for layer_id in LAYERS}
    finally:
        store.engine.dispose()


# --- the documented command on another city ---------------------------------------------------------------------

@pytest.mark.parametrize("database", ["sqlite_url", pytest.param("postgis_db_url", marks=pytest.mark.postgis)])
def test_another_city_imports_with_the_documented_command(request, database, city_files):
    database_url = request.getfixturevalue(database)
    build_sample("test", database_url, progress=False).engine.dispose()
    sample_event_types = stored_state(database_url)[1]["event_types"]

    result = run_importer(*documented_command(city_files), database_url=database_url)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert f"{city_files['buildings']}: 6 buildings, EPSG:3857" in out
    assert f"{city_files['grid']}: 8 grid boundaries, EPSG:32631" in out
    assert f"{city_files['grid']}: row 0 (code=G00): invalid (Self-intersection" in out  # every row message: its row
    assert "b3" not in out.split("refused:")[-1].split("filled by default:")[0]
    assert "readings: emptied" in out and "planted_hotspots: emptied" in out

    store = Store(database_url)
    try:
        city = load_city(store)
    finally:
        store.engine.dispose()

    units = city.units
    assert units["level"].value_counts().to_dict() == {"city": 1, "district": 2, "street": 2, "community": 2,
                                                       "grid": 8}
    assert units.loc["city", "name"] == "Lyon"
    assert city.hierarchy.loc["G31"].tolist() == ["city", "D2", "D200", "D20000", "G31"]
    assert city.hierarchy.loc["G00", "district"] == "D1"
    assert units.loc["D1", "name_zh"] == "里昂西" and units.loc["D100", "name"] == "Lyon West"
    assert units.geometry.is_valid.all()
    assert units.loc["G00"].geometry.geom_type == "MultiPolygon"  # the two halves of the bow tie

    buildings = city["buildings"].set_index("building_id")
    assert sorted(buildings.index) == sorted(BUILDINGS)
    for building_id, (grid_code, floors) in BUILDINGS.items():
        row = buildings.loc[building_id]
        assert row["grid_code"] == grid_code
        if floors is None:
            assert (row["height_m"], row["floors"]) == (DEFAULT_HEIGHT_M, DEFAULT_FLOORS) == (9.0, 3)
        else:
            assert (row["height_m"], row["floors"]) == (floors * METRES_PER_FLOOR, floors)
        assert row["high_rise_100m"] == (row["height_m"] >= 100)
        assert row["use"] == "unknown" and pd.isna(row["residents"]) and pd.isna(row["year_built"])
    assert buildings.loc["b3", "height_m"] == 120.0 and buildings.loc["b3", "high_rise_100m"]
    assert "height_m = floors × 3 m: 4 buildings" in out
    assert "no height nor floors: height_m 9 m and floors 3 (default): 2 buildings" in out
    # Reprojected from Web Mercator: the footprint is where it was drawn.
    assert buildings.loc["b1"].geometry.centroid.distance(cell_centre("G10")) < 1e-9

    sensors = city["sensors"].set_index("sensor_id")
    assert sensors["grid_code"].to_dict() == {"s1": "G10", "s2": "G21"}  # s3 is outside the grid
    assert f"{city_files['sensors']}: row 2 (sensor_id=s3): refused, outside every grid cell" in out
    assert sensors.loc["s1", "last_seen_at"] == pd.Timestamp("2024-05-01 10:00", tz="Asia/Shanghai")

    orders = city["orders"].set_index("order_id")
    assert orders.loc["o1", "received_at"] == pd.Timestamp("2024-05-01 08:00", tz="Asia/Shanghai")
    assert orders.loc["o2", "received_at"] == pd.Timestamp("2024-05-01 17:00", tz="Asia/Shanghai")
    assert orders.loc["o1", "department"] == "Urban Management Bureau"  # from the stored responsibility list
    assert orders.loc["o1", "deadline_at"] == pd.Timestamp("2024-05-02 08:00", tz="Asia/Shanghai")
    assert orders.loc["o1", "status"] == "handled" and orders.loc["o1", "on_time"]
    assert orders.loc["o2", "status"] == "received" and pd.isna(orders.loc["o2", "on_time"])
    assert orders.loc["o2", "deadline_at"] == orders.loc["o2", "received_at"] + pd.Timedelta(hours=72)
    assert orders["grid_code"].to_dict() == {"o1": "G11", "o2": "G30"}

    assert len(city["readings"]) == len(city["alarms"]) == len(city["planted_hotspots"]) == 0
    assert len(city["event_types"]) == sample_event_types  # not given, not dependent: kept


def test_dry_run_reports_and_writes_nothing(sqlite_url, city_files):
    build_sample("test", sqlite_url, progress=False).engine.dispose()
    before = stored_state(sqlite_url)

    result = run_importer(*documented_command(city_files), "--dry-run", database_url=sqlite_url)

    assert result.returncode == 0, result.stderr
    assert "would write (dry run, nothing written):" in result.stdout
    assert "buildings: 6 rows" in result.stdout
    assert stored_state(sqlite_url) == before


def test_a_dry_run_into_a_new_database_leaves_no_file(tmp_path, city_files):
    database = tmp_path / "new" / "city.sqlite"
    result = run_importer(*documented_command(city_files), "--dry-run", database_url=f"sqlite:///{database}")
    assert result.returncode == 0, result.stderr
    assert "would write (dry run, nothing written):" in result.stdout
    assert not database.exists()


# --- the hierarchy ----------------------------------------------------------------------------------------------

def test_districts_alone_make_a_complete_hierarchy(sqlite_url, tmp_path):
    districts = tmp_path / "districts.geojson"
    districts_frame().to_file(districts)
    store = Store(sqlite_url)

    report = import_city(ImportSources(boundaries={"district": districts}), store, city_name="Lyon")

    units = load_layer(store, "units").set_index("code")
    assert units["level"].value_counts().to_dict() == {level: (1 if level == "city" else 2) for level in LEVELS}
    assert units.loc["D1000000", "parent_code"] == "D10000"
    assert units.loc["D1000000"].geometry.equals(units.loc["D1"].geometry)
    city = units.loc["city"].geometry
    assert city.symmetric_difference(districts_frame().union_all()).area < 1e-12
    assert any(note.startswith("grid: no file given; filled with one grid per community (2)") for note in report.notes)
    assert any("is the union of the 2 district units" in note for note in report.notes)
    assert load_city(store).hierarchy.loc["D2000000", "district"] == "D2"


def test_parent_codes_come_from_a_column_when_there_is_one(sqlite_url, tmp_path):
    districts, streets = tmp_path / "districts.gpkg", tmp_path / "streets.gpkg"
    districts_frame().to_file(districts)
    # S1 lies in D1 but its file says D2: the column wins. S3 names a district that does not exist.
    gpd.GeoDataFrame({"code": ["S1", "S2", "S3"], "parent_code": ["D2", None, "D9"]},
                     geometry=[cell(0, 0), cell(3, 1), cell(1, 1)], crs="EPSG:4326").to_file(streets)

    report = import_city(ImportSources(boundaries={"district": districts, "street": streets}), Store(sqlite_url))

    units = load_layer(Store(sqlite_url), "units").set_index("code")
    assert units.loc["S1", "parent_code"] == "D2"
    assert units.loc["S2", "parent_code"] == "D2"  # empty in the file: from the district containing it
    assert "S3" not in units.index
    assert f"{streets}: row 2 (code=S3): refused, parent code 'D9' is not a district code" in report.refused
    assert any("empty parent code, taken from the district containing the unit: 1 units" in line
               for line in report.filled)


def test_parent_codes_of_a_level_not_imported_are_replaced_by_location(sqlite_url, tmp_path):
    districts, grid = tmp_path / "districts.gpkg", tmp_path / "grid.gpkg"
    districts_frame().to_file(districts)
    # The grid file names its communities, which are not imported: no parent code is a district code.
    gpd.GeoDataFrame({"code": ["G1", "G2"], "parent_code": ["C17", "C42"]},
                     geometry=[cell(0, 0), cell(3, 1)], crs="EPSG:4326").to_file(grid)

    report = import_city(ImportSources(boundaries={"district": districts, "grid": grid}), Store(sqlite_url))

    units = load_layer(Store(sqlite_url), "units").set_index("code")
    assert units.loc["G1", "parent_code"] == "D10000" and units.loc["G2", "parent_code"] == "D20000"
    assert any("the parent codes are not district codes (such as 'C17')" in note for note in report.notes)
    assert report.refused == []


def test_unrepairable_boundaries_are_refused_and_their_children_with_them(sqlite_url, tmp_path):
    districts, grid = tmp_path / "districts.gpkg", tmp_path / "grid.gpkg"
    frame = districts_frame()
    # A ring with no area: make_valid leaves a line, nothing polygonal.
    frame.loc[1, "geometry"] = Polygon([(WEST, SOUTH), (WEST + 0.01, SOUTH), (WEST + 0.02, SOUTH)])
    frame.to_file(districts)
    gpd.GeoDataFrame({"code": ["G1", "G2"], "parent_code": ["D1", "D2"]},
                     geometry=[cell(0, 0), cell(3, 0)], crs="EPSG:4326").to_file(grid)

    report = import_city(ImportSources(boundaries={"district": districts, "grid": grid}), Store(sqlite_url))

    assert any(line.startswith(f"{districts}: row 1 (code=D2): refused") for line in report.refused)
    assert f"{grid}: row 1 (code=G2): refused, its district 'D2' was refused" in report.refused
    assert report.written["units"] == 1 + 1 + 1 + 1 + 1


def test_buildings_alone_go_into_the_stored_grid_cells(sqlite_url, tmp_path):
    store = build_sample("test", sqlite_url, progress=False)
    grids = load_layer(store, "units", where=lambda t: t.c.level == "grid").head(3)
    path = tmp_path / "buildings.gpkg"
    gpd.GeoDataFrame(
        {"id": [10, 11, 12], "height": ["45", "12 m", None], "building:levels": [None, None, "7"],
         "use": ["office", None, "residential"]},
        geometry=[footprint(point, 0.00005) for point in grids.geometry.representative_point()],
        crs="EPSG:4326").to_file(path)
    units_version = store.layer_version("units")

    report = import_city(ImportSources(buildings=path), store)

    buildings = load_layer(store, "buildings").set_index("building_id")
    assert buildings["grid_code"].tolist() == grids["code"].tolist()
    assert buildings["height_m"].tolist() == [45.0, 12.0, 21.0]
    assert buildings["floors"].tolist() == [15, 4, 7]
    assert buildings["use"].tolist() == ["office", "unknown", "residential"]
    assert store.layer_version("units") == units_version
    assert store.count("orders") > 0  # orders do not depend on buildings: kept
    assert f"{path}: floors = height_m ÷ 3 m, rounded: 2 buildings" in report.filled
    store.engine.dispose()


# --- bad input --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_database(tmp_path_factory) -> str:
    """A database holding the test-scale sample city, which no failed import may change."""
    url = f"sqlite:///{tmp_path_factory.mktemp('stored')}/citytwin.sqlite"
    build_sample("test", url, progress=False).engine.dispose()
    return url


def write_points_as_buildings(tmp_path: Path) -> list[str]:
    path = tmp_path / "points.geojson"
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=[Point(WEST, SOUTH), Point(WEST, SOUTH + 0.001)],
                     crs="EPSG:4326").to_file(path)
    return ["--buildings", str(path)]


def write_table_without_geometry(tmp_path: Path) -> list[str]:
    path = tmp_path / "table.parquet"
    pd.DataFrame({"building_id": ["a"], "height": [3.0]}).to_parquet(path)
    return ["--buildings", str(path)]


def write_unreadable_file(tmp_path: Path) -> list[str]:
    path = tmp_path / "broken.geojson"
    path.write_text("{ this is not GeoJSON")
    return ["--buildings", str(path)]


def write_file_without_crs(tmp_path: Path) -> list[str]:
    path = tmp_path / "grid.shp"
    with warnings.catch_warnings():  # pyogrio warns that the file will have no CRS: that is the point
        warnings.simplefilter("ignore", UserWarning)
        grid_frame().set_crs(None, allow_override=True).to_file(path)
    return ["--boundaries", f"grid={path}", "--code-column", "grid_id"]


def write_duplicate_codes(tmp_path: Path) -> list[str]:
    path = tmp_path / "districts.gpkg"
    frame = districts_frame()
    frame.loc[1, "code"] = "D1"
    frame.to_file(path)
    return ["--boundaries", f"district={path}"]


def write_non_numeric_height(tmp_path: Path) -> list[str]:
    grid, buildings = tmp_path / "grid.gpkg", tmp_path / "buildings.gpkg"
    grid_frame().to_file(grid)
    frame = buildings_frame().drop(columns="floors")
    frame["height"] = ["12", "30.5", "tall", "9", None, "6"]
    frame.to_file(buildings)
    return ["--boundaries", f"grid={grid}", "--code-column", "grid_id", "--buildings", str(buildings)]


def write_buildings_outside_the_city(tmp_path: Path) -> list[str]:
    path = tmp_path / "buildings.gpkg"
    buildings_frame().to_file(path)  # in Lyon, while the stored grid cells are in Shenzhen
    return ["--buildings", str(path)]


def write_orders_without_received_time(tmp_path: Path) -> list[str]:
    grid, orders = tmp_path / "grid.gpkg", tmp_path / "orders.csv"
    grid_frame().to_file(grid)
    orders_table().drop(columns="received_at").to_csv(orders, index=False)
    return ["--boundaries", f"grid={grid}", "--code-column", "grid_id", "--orders", str(orders)]


def write_orders_with_a_bad_time(tmp_path: Path) -> list[str]:
    grid, orders = tmp_path / "grid.gpkg", tmp_path / "orders.csv"
    grid_frame().to_file(grid)
    table = orders_table()
    table.loc[1, "received_at"] = "yesterday"
    table.to_csv(orders, index=False)
    return ["--boundaries", f"grid={grid}", "--code-column", "grid_id", "--orders", str(orders)]


def write_unrepairable_buildings(tmp_path: Path) -> list[str]:
    grid, buildings = tmp_path / "grid.gpkg", tmp_path / "buildings.geojson"
    grid_frame().to_file(grid)
    flat = Polygon([(WEST, SOUTH), (WEST + 0.001, SOUTH), (WEST + 0.002, SOUTH)])
    gpd.GeoDataFrame({"building_id": ["x", "y"]}, geometry=[flat, LineString([(WEST, SOUTH), (WEST, SOUTH + 1)])],
                     crs="EPSG:4326").to_file(buildings)
    return ["--boundaries", f"grid={grid}", "--code-column", "grid_id", "--buildings", str(buildings)]


def write_utm_file_without_crs(tmp_path: Path) -> list[str]:
    path = tmp_path / "grid.shp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        grid_frame().to_crs("EPSG:32631").set_crs(None, allow_override=True).to_file(path)
    return ["--boundaries", f"grid={path}", "--code-column", "grid_id"]


def write_buildings_in_the_wrong_assumed_crs(tmp_path: Path) -> list[str]:
    """Lyon's buildings in UTM zone 31N, without a CRS, said to be in zone 32N: possible there, but 300 km east."""
    grid, buildings = tmp_path / "grid.gpkg", tmp_path / "buildings.shp"
    grid_frame().to_file(grid)
    with warnings.catch_warnings():  # no CRS, and Shapefile's 10-letter field names: both expected here
        warnings.simplefilter("ignore")
        buildings_frame().to_crs("EPSG:32631").set_crs(None, allow_override=True).to_file(buildings)
    return ["--boundaries", f"grid={grid}", "--code-column", "grid_id", "--buildings", str(buildings),
            "--assume-crs", "EPSG:32632"]


def write_city_geopackage(path: Path) -> Path:
    """One GeoPackage with four layers, as a city's GIS team keeps them: a tessellation first, then buildings,
    streets (lines) and districts."""
    tessellation = gpd.GeoDataFrame({"tess_id": range(8)}, geometry=[cell(i, j) for i in range(4) for j in range(2)],
                                    crs="EPSG:4326")
    tessellation.to_file(path, layer="tessellation")
    buildings_frame().to_file(path, layer="buildings")
    gpd.GeoDataFrame({"street": ["Rue A"]}, geometry=[LineString([(WEST, SOUTH), (WEST + 0.03, SOUTH + 0.01)])],
                     crs="EPSG:4326").to_file(path, layer="streets")
    districts_frame().to_file(path, layer="districts")
    return path


def write_multi_layer_buildings(tmp_path: Path) -> list[str]:
    grid = tmp_path / "grid.gpkg"
    grid_frame().to_file(grid)
    return ["--boundaries", f"grid={grid}", "--code-column", "grid_id",
            "--buildings", str(write_city_geopackage(tmp_path / "city.gpkg"))]


def write_unknown_layer(tmp_path: Path) -> list[str]:
    return [*write_multi_layer_buildings(tmp_path)[:-1], f"{tmp_path / 'city.gpkg'}:houses"]


BAD_INPUTS = {
    "missing file": (lambda tmp_path: ["--buildings", str(tmp_path / "nowhere.geojson")],
                     "nowhere.geojson: no such file"),
    "unreadable file": (write_unreadable_file, "broken.geojson: cannot read it ("),
    "no geometry column": (write_table_without_geometry, "table.parquet: no geometry column"),
    "points as buildings": (write_points_as_buildings,
                            "points.geojson: expected polygons for buildings, found Point geometries"),
    "no CRS": (write_file_without_crs, "grid.shp: the file has no CRS; say which it is with --assume-crs"),
    "unknown level": (lambda tmp_path: ["--boundaries", f"ward={tmp_path / 'wards.shp'}"],
                      "unknown boundary level 'ward'"),
    "malformed level": (lambda tmp_path: ["--boundaries", "districts.gpkg"], "expected LEVEL=FILE"),
    "duplicate codes": (write_duplicate_codes, "districts.gpkg: duplicate codes: 'D1' (rows 0, 1)"),
    "non-numeric height": (write_non_numeric_height,
                           "buildings.gpkg: row 2 (building_id=b3): height 'tall' is not a number"),
    "every building outside": (write_buildings_outside_the_city,
                               "buildings.gpkg: every row was refused (no building lies in a grid cell: they lie at "
                               "longitude 4.815 … 4.835, latitude 45.745 … 45.755, the grid cells at longitude 113."),
    "every building unrepairable": (write_unrepairable_buildings,
                                    "buildings.geojson: every row was refused (row 0 (building_id=x): invalid ("),
    "no received time": (write_orders_without_received_time, "orders.csv: no received_at column"),
    "bad time": (write_orders_with_a_bad_time, "orders.csv: row 1 (order_id=o2): received_at 'yesterday' is not "
                                               "a time"),
    "bad --assume-crs": (lambda tmp_path: ["--buildings", "b.gpkg", "--assume-crs", "EPSG:nope"],
                         "--assume-crs 'EPSG:nope' is not a CRS"),
    "nothing to import": (lambda tmp_path: [], "nothing to import"),
    "several layers, none named": (
        write_multi_layer_buildings,
        "city.gpkg: the file holds 4 layers, say which to read as city.gpkg:LAYER; its layers: tessellation (Polygon, "
        "8 rows), buildings (Polygon, 6 rows), streets (LineString, 1 row), districts (Polygon, 2 rows)"),
    "a layer that is not there": (write_unknown_layer, "city.gpkg:houses: no layer 'houses' in city.gpkg; its layers: "
                                                       "tessellation (Polygon, 8 rows), buildings"),
    "degrees assumed to be UTM metres": (
        lambda tmp_path: [*write_file_without_crs(tmp_path), "--assume-crs", "EPSG:32631"],
        "grid.shp: the coordinates (x 4.8 … 4.84, y 45.74 … 45.76) are impossible in EPSG:32631: there they would "
        "be at longitude"),
    "metres assumed to be degrees": (
        lambda tmp_path: [*write_utm_file_without_crs(tmp_path), "--assume-crs", "EPSG:4326"],
        "are impossible in EPSG:4326, whose coordinates are longitudes (±180) and latitudes (±90)"),
    "a plausible but wrong --assume-crs": (
        write_buildings_in_the_wrong_assumed_crs,
        "buildings.shp: every row was refused (no building lies in a grid cell: they lie at longitude "),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_error_line_and_changes_nothing(case, tmp_path, sample_database):
    write_input, expected = BAD_INPUTS[case]
    arguments = write_input(tmp_path)
    before = stored_state(sample_database)

    result = run_importer(*arguments, database_url=sample_database)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    assert expected in error_lines[0]
    assert stored_state(sample_database) == before


def test_one_layer_of_a_geopackage_is_named_with_file_colon_layer(sqlite_url, tmp_path):
    package = write_city_geopackage(tmp_path / "city.gpkg")
    listed = subprocess.run([sys.executable, "-m", "layers.importer", "--list-layers", str(package)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["tessellation (Polygon, 8 rows)", "buildings (Polygon, 6 rows)",
                                          "streets (LineString, 1 row)", "districts (Polygon, 2 rows)"]

    store = Store(sqlite_url)
    report = import_city(ImportSources(boundaries={"district": f"{package}:districts"},
                                       buildings=f"{package}:buildings"), store)

    buildings = load_layer(store, "buildings")
    assert sorted(buildings["building_id"]) == sorted(BUILDINGS)  # the buildings, not the 8 tessellation cells
    assert f"{package}:buildings: 6 buildings, EPSG:4326" in report.read
    assert sorted(load_layer(store, "units").query("level == 'district'")["code"]) == ["D1", "D2"]
    store.engine.dispose()


def test_a_file_without_crs_imports_with_assume_crs(sqlite_url, tmp_path):
    arguments = write_file_without_crs(tmp_path)
    result = run_importer(*arguments, "--assume-crs", "EPSG:4326", database_url=sqlite_url)
    assert result.returncode == 0, result.stderr
    assert "grid.shp: 8 grid boundaries, EPSG:4326" in result.stdout


def test_python_api_raises_importer_error(sqlite_url, tmp_path):
    with pytest.raises(ImporterError, match="no such file"):
        import_city(ImportSources(buildings=tmp_path / "nowhere.gpkg"), Store(sqlite_url))


# --- defaults are not measurements (issue 15 item 4) ------------------------------------------------------------

def test_a_city_without_measurements_has_no_score_not_a_good_one(sqlite_url, tmp_path):
    """Boundaries and low buildings without residents, no orders, no sensors: nothing was measured, so no indicator
    is judged and the score is "no data" (a default of 0 residents used to be judged a good population density)."""
    from metrics.engine import compare
    from metrics.score import vital_scores
    from metrics.spec import named_window

    districts, buildings = tmp_path / "districts.gpkg", tmp_path / "buildings.gpkg"
    districts_frame().to_file(districts)
    buildings_frame().assign(floors=pd.array([4, None, 8, None, 2, 1], dtype="Int64")).to_file(buildings)
    store = Store(sqlite_url)
    report = import_city(ImportSources(boundaries={"district": districts}, buildings=buildings), store)
    assert f"{buildings}: residents unknown, left empty (not judged): 6 buildings" in report.filled

    city = load_city(store)
    assert city["buildings"]["residents"].isna().all()
    table = compare(city, named_window("7d", city.as_of))
    scores = vital_scores(table).set_index("code")
    assert scores.loc["city", "indicators"] == 0 and pd.isna(scores.loc["city", "score"])
    judged = table[table["state"].isin(["good", "watch", "warning", "critical"])]
    assert judged.empty, judged[["code", "indicator", "state"]]
    density = table[(table["code"] == "city") & (table["indicator"] == "population_density")]
    assert density["value"].isna().all()
    store.engine.dispose()


def test_a_database_of_an_older_release_takes_buildings_without_residents(sqlite_url, tmp_path):
    """Before residents could be unknown the column was NOT NULL: the store relaxes it (rows and indexes kept)."""
    import sqlite3

    store = build_sample("test", sqlite_url, progress=False)
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        (ddl,) = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'buildings'").fetchone()
        indexes = [sql for (sql,) in connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'buildings' AND sql IS NOT NULL")]
        old_ddl = ddl.replace("residents BIGINT,", "residents BIGINT NOT NULL,")
        assert old_ddl != ddl
        connection.executescript(f"ALTER TABLE buildings RENAME TO b_old; {old_ddl};"
                                 f"INSERT INTO buildings SELECT * FROM b_old; DROP TABLE b_old;"
                                 + "".join(f"{sql};" for sql in indexes))
    rows_before = store.count("buildings")
    grids = load_layer(store, "units", where=lambda t: t.c.level == "grid").head(2)
    path_buildings = tmp_path / "buildings.gpkg"
    gpd.GeoDataFrame({"id": ["n1", "n2"]}, geometry=[footprint(p, 0.00005) for p in
                                                     grids.geometry.representative_point()],
                     crs="EPSG:4326").to_file(path_buildings)
    assert rows_before > 2

    import_city(ImportSources(buildings=path_buildings), store)

    buildings = load_layer(store, "buildings")
    assert sorted(buildings["building_id"]) == ["n1", "n2"] and buildings["residents"].isna().all()
    with sqlite3.connect(path) as connection:
        info = {row[1]: row[3] for row in connection.execute("PRAGMA table_info(buildings)")}
        kept_indexes = {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'buildings' AND sql IS NOT NULL")}
    assert info["residents"] == 0
    assert kept_indexes and all("__before_rebuild" not in name for name in kept_indexes)
    store.engine.dispose()


# --- buildings without boundaries (issue 15 item 2) -------------------------------------------------------------

def test_buildings_alone_make_a_city_with_a_derived_outline_and_grid(tmp_path):
    """A team with only footprints: the documented command derives the outline and a grid, and the city loads."""
    buildings = tmp_path / "buildings.geojson"
    buildings_frame().to_crs("EPSG:3857").to_file(buildings)
    database_url = f"sqlite:///{tmp_path / 'new-city.sqlite'}"

    refused = run_importer("--buildings", str(buildings), database_url=database_url)
    assert refused.returncode == 2 and "--grid-from-buildings METRES" in refused.stderr

    result = run_importer("--buildings", str(buildings), "--grid-from-buildings", "500", "--city-name", "Lyon",
                          database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "grid: " in result.stdout and "cells of 500 m × 500 m cut to it" in result.stdout

    store = Store(database_url)
    city = load_city(store)
    units = city.units
    grid = units[units["level"] == "grid"]
    assert units.loc["city", "name"] == "Lyon"
    assert units["level"].value_counts().to_dict() == {"city": 1, "district": 1, "street": 1, "community": 1,
                                                       "grid": len(grid)}
    assert sorted(city["buildings"]["building_id"]) == sorted(BUILDINGS)  # every building placed
    # The outline holds every footprint with room around it; the cells tile it without overlapping.
    outline = units.loc["city"].geometry
    assert all(outline.contains(shape) for shape in city["buildings"].geometry)
    metric = grid.to_crs(grid.estimate_utm_crs())
    assert abs(metric.area.sum() - gpd.GeoSeries([outline], crs="EPSG:4326").to_crs(metric.crs).area.iloc[0]) < 1.0
    assert metric.area.max() <= 500 * 500 + 1.0
    store.engine.dispose()


def test_a_given_outline_is_cut_into_the_derived_grid(sqlite_url, tmp_path):
    outline, buildings = tmp_path / "outline.gpkg", tmp_path / "buildings.gpkg"
    gpd.GeoDataFrame({"name": ["Lyon"]}, geometry=[box(WEST, SOUTH, WEST + 4 * STEP, SOUTH + 2 * STEP)],
                     crs="EPSG:4326").to_file(outline)
    buildings_frame().to_file(buildings)
    store = Store(sqlite_url)

    report = import_city(ImportSources(boundaries={"city": outline}, buildings=buildings), store,
                         grid_from_buildings=1000)

    units = load_layer(store, "units").set_index("code")
    city = units.loc["city"].geometry
    assert city.symmetric_difference(box(WEST, SOUTH, WEST + 4 * STEP, SOUTH + 2 * STEP)).area < 1e-12
    assert any(f"outline derived from the outline in {outline}" in note for note in report.notes)
    assert len(load_layer(store, "buildings")) == len(BUILDINGS)
    with pytest.raises(ImporterError, match="cells over the city's extent"):
        import_city(ImportSources(boundaries={"city": outline}, buildings=buildings), store, grid_from_buildings=1)
    store.engine.dispose()


# --- the city's own settings (issue 15 item 3) -----------------------------------------------------------------

def test_a_city_keeps_its_own_time_zone_calendar_and_name(tmp_path, city_files):
    """Lyon imported with its time zone and no Chinese holidays: naive times are Lyon's local time, the city loads
    in its zone, its windows start at its midnight and its working days skip no Chinese holiday."""
    from layers import city_settings
    from metrics.spec import named_window
    from metrics.workdays import working_days_between

    database_url = f"sqlite:///{tmp_path / 'lyon.sqlite'}"
    result = run_importer(*documented_command(city_files), "--timezone", "Europe/Paris", "--holidays", "none",
                          "--languages", "en", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "city settings: timezone Europe/Paris, holidays none, languages en, name Lyon" in result.stdout

    store = Store(database_url)
    assert store.city_settings() == {"name": "Lyon", "timezone": "Europe/Paris", "holidays": "none",
                                     "languages": "en"}
    try:
        city = load_city(store)
        orders = city["orders"].set_index("order_id")
        assert str(orders["received_at"].dt.tz) == "Europe/Paris"
        assert orders.loc["o1", "received_at"] == pd.Timestamp("2024-05-01 08:00", tz="Europe/Paris")  # naive: local
        assert orders.loc["o2", "received_at"] == pd.Timestamp("2024-05-01 09:00", tz="UTC")  # with an offset
        today = named_window("today", city.as_of)
        assert today.start == city.as_of.normalize() and str(today.start.tz) == "Europe/Paris"
        # 1 May 2026 is a Chinese holiday (and a French one, absent from the "none" calendar): counted as work here.
        may = pd.Series([pd.Timestamp("2026-04-30 12:00", tz="Europe/Paris")])
        assert working_days_between(may, may + pd.Timedelta(days=1)).tolist() == [1.0]
        # Buildings imported later into the same city keep its settings.
        rerun = run_importer("--buildings", str(city_files["buildings"]), database_url=database_url)
        assert rerun.returncode == 0, rerun.stderr
        assert Store(database_url).city_settings()["timezone"] == "Europe/Paris"
    finally:
        city_settings.activate(city_settings.DEFAULT)
        store.engine.dispose()


def test_a_bad_setting_is_one_error_line(tmp_path, city_files):
    result = run_importer(*documented_command(city_files), "--timezone", "Europe/Lyon",
                          database_url=f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("error: timezone 'Europe/Lyon' is not an IANA time zone (e.g. Asia/Shanghai, "
                                     "Europe/Paris, America/New_York)")
