"""Import a user's own city into the store, in place of the sample city.

    python -m layers.importer \\
        --boundaries district=districts.gpkg --boundaries grid=grid.shp \\
        --buildings buildings.geojson --sensors sensors.parquet --orders orders.csv \\
        [--city-name NAME] [--code-column COLUMN] [--assume-crs EPSG:xxxx] \\
        [--database-url URL] [--dry-run]

Every file is read (GeoJSON, GeoPackage, Shapefile, GeoParquet; sensors and orders also CSV or plain Parquet with
lon/lat columns), reprojected to EPSG:4326, checked and cleaned, and only then is anything written: the layers the
import replaces are written in one :meth:`~layers.store.Store.replace_layers` transaction, so a failed import leaves
what was stored untouched. What was read, repaired, refused and filled by default is reported. docs/importing.md is
the user's guide: the column names recognised and the defaults are listed there and defined here.

The administrative hierarchy city → district → street → community → grid always comes out complete, because the
dashboard and :func:`layers.city.build_hierarchy` roll every figure up along it: a level without a file is filled
with one copy of each unit of the level above (code: the parent's code + ``00``), and a missing city is the union of
the top level given.

:func:`import_city` is the Python entry point; the command line above is a thin wrapper round it.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet
import pyogrio
import pyproj
import shapely

from layers.city import build_hierarchy
from layers import city_settings
from layers.city_settings import timezone as city_timezone
from layers.geometry import normalise_polygonal, polygonal_parts, repair_polygons
from layers.load import empty_frame, encode_frame, load_layer
from layers.specs import CRS, LEVELS, ORDER_STAGES, STATUS_AFTER_STAGE
from layers.store import Store, default_database_url

# --- documented defaults (docs/importing.md) ---------------------------------------------------------------------

METRES_PER_FLOOR = 3.0
DEFAULT_FLOORS = 3
DEFAULT_HEIGHT_M = DEFAULT_FLOORS * METRES_PER_FLOOR
HIGH_RISE_M = 100.0
DEFAULT_CITY_CODE = "city"
DEFAULT_CITY_NAME = "City"
# Code of a unit made to fill a level that has no file: its parent's code followed by this.
FILLER_CODE_SUFFIX = "00"
UNKNOWN = "unknown"
# Time limit of an order whose event type is not in the stored responsibility list and that has no deadline.
DEFAULT_TIME_LIMIT_HOURS = 72
# How many lines of each report section are printed; the Python report keeps them all.
REPORT_LINES_SHOWN = 20

# Column names recognised in the input files, most specific first, matched without regard to case. An explicit
# --code-column / --name-column / --parent-column is tried before these.
UNIT_COLUMNS = {
    "code": ("code", "unit_code", "adcode", "id"),
    "name": ("name", "name_en"),
    "name_zh": ("name_zh", "name_cn", "name_local"),
    "parent_code": ("parent_code", "parent", "parent_id", "parent_adcode"),
}
BUILDING_COLUMNS = {
    "building_id": ("building_id", "id", "osm_id"),
    "height_m": ("height_m", "height", "building:height", "bldg_height"),
    "floors": ("floors", "building:levels", "levels", "num_floors", "storeys", "stories"),
    "use": ("use", "building_use", "usage"),
    "year_built": ("year_built", "construction_year", "year"),
    "residents": ("residents", "population"),
}
SENSOR_COLUMNS = {
    "sensor_id": ("sensor_id", "device_id", "id"),
    "kind": ("kind", "sensor_type", "type"),
    "building_id": ("building_id",),
    "status": ("status",),
    "installed_at": ("installed_at", "installed"),
    "last_seen_at": ("last_seen_at", "last_seen"),
}
ORDER_COLUMNS = {
    "order_id": ("order_id", "id"),
    "event_type": ("event_type", "type"),
    "channel": ("channel",),
    "department": ("department",),
    "status": ("status",),
    **{f"{stage}_at": (f"{stage}_at",) for stage in ORDER_STAGES},
    "supervised_at": ("supervised_at", "escalated_at"),
    "deadline_at": ("deadline_at", "deadline"),
    "description": ("description", "text"),
    "address": ("address", "address_string"),
    "satisfied": ("satisfied",),
    "reopen_count": ("reopen_count",),
    "on_time": ("on_time",),
}
LONGITUDE_COLUMNS = ("lon", "lng", "longitude")
LATITUDE_COLUMNS = ("lat", "latitude")
TRUE_WORDS = {"true", "t", "yes", "y", "1", "1.0"}
FALSE_WORDS = {"false", "f", "no", "n", "0", "0.0"}

POLYGON_TYPES = {"Polygon", "MultiPolygon", "GeometryCollection"}


class ImporterError(ValueError):
    """Bad input: the message is one line naming the file, the row and the problem."""


# --- what to import, and the report -----------------------------------------------------------------------------

@dataclass
class ImportSources:
    """The files to import. ``boundaries`` maps a level (city, district, street, community, grid) to its file."""

    boundaries: Mapping[str, str | Path] = field(default_factory=dict)
    buildings: str | Path | None = None
    sensors: str | Path | None = None
    orders: str | Path | None = None

    def describe(self) -> str:
        parts = [f"{level}={path}" for level, path in self.boundaries.items()]
        parts += [f"{name}={path}" for name, path in
                  (("buildings", self.buildings), ("sensors", self.sensors), ("orders", self.orders)) if path]
        return " ".join(parts)


@dataclass
class ImportReport:
    """What an import read, repaired, refused, filled by default and wrote (or would write, on a dry run)."""

    dry_run: bool = False
    read: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)

    def render(self, lines_shown: int = REPORT_LINES_SHOWN) -> str:
        out = []
        written_title = "would write (dry run, nothing written)" if self.dry_run else "written"
        sections = [
            ("read", self.read),
            ("repaired", self.repaired),
            ("refused", self.refused),
            ("filled by default", self.filled),
            ("notes", self.notes),
            (written_title, [f"{layer_id}: {rows:,} rows" for layer_id, rows in self.written.items()]),
        ]
        for title, lines in sections:
            if not lines:
                continue
            out.append(f"{title}:")
            out += [f"  {line}" for line in lines[:lines_shown]]
            if len(lines) > lines_shown:
                out.append(f"  ... and {len(lines) - lines_shown:,} more")
        return "\n".join(out)


# --- reading files ----------------------------------------------------------------------------------------------

@dataclass
class _Input:
    """One input file, read and reprojected to EPSG:4326, and how to name its rows in messages."""

    path: str
    frame: gpd.GeoDataFrame
    id_column: str | None = None
    assumed_crs: str | None = None  # the CRS given by --assume-crs, when the file said none

    def where(self, label) -> str:
        """'row 3' or 'row 3 (building_id=b-17)': rows are the features in file order, counted from 0."""
        if self.id_column is not None:
            value = self.frame.at[label, self.id_column]
            if not _is_missing(value):
                return f"row {label} ({self.id_column}={value})"
        return f"row {label}"

    def error(self, message: str, label=None) -> ImporterError:
        where = "" if label is None else f" {self.where(label)}:"
        return ImporterError(f"{self.path}:{where} {message}")

    def find_column(self, candidates: tuple[str, ...], explicit: str | None = None) -> str | None:
        """The file's column matching ``explicit`` or else the first candidate, ignoring case."""
        by_lower = {str(name).lower(): name for name in self.frame.columns if name != self.frame.geometry.name}
        for wanted in ((explicit,) if explicit else ()) + candidates:
            if wanted.lower() in by_lower:
                return by_lower[wanted.lower()]
        return None


def _read_input(path: str | Path, what: str, assume_crs: str | None, report: ImportReport) -> _Input:
    """Read one file into EPSG:4326; refuse it (ImporterError) if unreadable, without geometry or CRS."""
    shown = str(path)
    path, layer = split_layer(path)
    layer = _chosen_layer(shown, path, layer)
    try:
        frame = _read_any(path, layer)
    except Exception as exc:  # GDAL, Arrow and pandas each raise their own kinds for an unreadable file
        raise ImporterError(f"{shown}: cannot read it ({_first_line(exc)})") from exc
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
        frame = _points_from_lon_lat(shown, frame)
    if len(frame) == 0:
        raise ImporterError(f"{shown}: the file has no rows")
    assumed = frame.crs is None
    if assumed:
        if assume_crs is None:
            raise ImporterError(f"{shown}: the file has no CRS; say which it is with --assume-crs EPSG:xxxx")
        frame = frame.set_crs(assume_crs)
        _check_possible_in(shown, frame)
    source_crs = _crs_name(frame.crs)
    if frame.crs != pyproj.CRS(CRS):
        frame = frame.to_crs(CRS)
    # Rows are named by their position in the file in every message.
    frame = frame.reset_index(drop=True)
    report.read.append(f"{shown}: {len(frame):,} {what}, {source_crs}" + (" (assumed)" if assumed else ""))
    return _Input(shown, frame, assumed_crs=source_crs if assumed else None)


# How far (degrees) data may reach past the area of use its CRS declares before the CRS is called impossible for them:
# a city on the edge of a UTM zone is often drawn in that zone.
AREA_OF_USE_MARGIN_DEG = 1.0


def _check_possible_in(shown: str, frame: gpd.GeoDataFrame) -> None:
    """Refuse coordinates that cannot be in the CRS the user assumed for them (--assume-crs), saying why: degrees
    outside ±180/±90, or a place outside the area where the CRS is used (often: degrees read as metres)."""
    crs = frame.crs
    bounds = frame.geometry.dropna().total_bounds
    if not np.isfinite(bounds).all():
        return
    minx, miny, maxx, maxy = (float(value) for value in bounds)
    name = _crs_name(crs)
    extent = f"x {minx:,.6g} … {maxx:,.6g}, y {miny:,.6g} … {maxy:,.6g}"
    if crs.is_geographic:
        if not (-180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90):
            raise ImporterError(f"{shown}: the coordinates ({extent}) are impossible in {name}, whose coordinates "
                                f"are longitudes (±180) and latitudes (±90): the file is in another CRS; check "
                                f"--assume-crs")
        return
    area = crs.area_of_use
    lon_lat = pyproj.Transformer.from_crs(crs, CRS, always_xy=True).transform_bounds(minx, miny, maxx, maxy)
    west, south, east, north = lon_lat
    if not np.isfinite(lon_lat).all():
        raise ImporterError(f"{shown}: the coordinates ({extent}) are impossible in {name}: they lie on no place on "
                            f"Earth in it; check --assume-crs")
    if area is not None and (west < area.west - AREA_OF_USE_MARGIN_DEG or east > area.east + AREA_OF_USE_MARGIN_DEG
                             or south < area.south - AREA_OF_USE_MARGIN_DEG
                             or north > area.north + AREA_OF_USE_MARGIN_DEG):
        hint = (" (they look like longitudes and latitudes: try --assume-crs EPSG:4326)"
                if -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90 else "")
        raise ImporterError(
            f"{shown}: the coordinates ({extent}) are impossible in {name}: there they would be at longitude "
            f"{west:.3f} … {east:.3f}, latitude {south:.3f} … {north:.3f}, outside the area {name} is made for "
            f"({area.name}: longitude {area.west:g} … {area.east:g}, latitude {area.south:g} … {area.north:g})"
            f"{hint}; check --assume-crs")


def split_layer(path: str | Path) -> tuple[Path, str | None]:
    """``"city.gpkg:buildings"`` → ``(Path("city.gpkg"), "buildings")``; a path that names a file as it is (even
    with a colon in it) has no layer.

    >>> split_layer("city.gpkg:buildings")
    (PosixPath('city.gpkg'), 'buildings')
    """
    text = str(path)
    base, separator, layer = text.rpartition(":")
    if Path(text).exists() or not separator or not base or not layer or "/" in layer:
        return Path(text), None
    return Path(base), layer


def _layers_of(path: Path) -> list[tuple[str, str | None]] | None:
    """The (name, geometry type) of each layer of a multi-layer format, or None for a table format or a file GDAL
    cannot list (reading it then says why)."""
    if path.suffix.lower() in TABLE_SUFFIXES:
        return None
    try:
        return [(str(name), None if kind is None else str(kind)) for name, kind in pyogrio.list_layers(path)]
    except Exception:  # an unreadable file: _read_any names the problem
        return None


def _chosen_layer(shown: str, path: Path, layer: str | None) -> str | None:
    """The layer to read: the one named (``file.gpkg:layer``), else the file's only layer with geometry (or only
    layer). A file with several, none named, is refused with the list: reading the first silently once imported a
    tessellation as buildings."""
    layers = _layers_of(path)
    if layers is None:
        if layer is not None:
            raise ImporterError(f"{shown}: {path.name} has no layers to choose from; give the file without ':{layer}'")
        return None
    names = [name for name, _kind in layers]
    if layer is not None:
        if layer not in names:
            raise ImporterError(f"{shown}: no layer {layer!r} in {path.name}; its layers: "
                                f"{', '.join(_describe_layers(path, layers))}")
        return layer
    spatial = [name for name, kind in layers if kind is not None] or names
    if len(spatial) > 1:
        raise ImporterError(f"{shown}: the file holds {len(spatial)} layers, say which to read as "
                            f"{path.name}:LAYER; its layers: {', '.join(_describe_layers(path, layers))}")
    return spatial[0] if spatial and len(names) > 1 else None


def _describe_layers(path: Path, layers: list[tuple[str, str | None]]) -> list[str]:
    """['buildings (Polygon, 6 rows)', 'streets (LineString, 3 rows)']."""
    described = []
    for name, kind in layers:
        try:
            count = pyogrio.read_info(path, layer=name)["features"]
            rows = f", {count:,} row{'' if count == 1 else 's'}"
        except Exception:  # the count is a courtesy; the name is what the user needs
            rows = ""
        described.append(f"{name} ({kind or 'no geometry'}{rows})")
    return described


TABLE_SUFFIXES = (".parquet", ".geoparquet", ".csv", ".tsv")


def _read_any(path: Path, layer: str | None = None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".geoparquet"):
        # GeoParquet carries its geometry and CRS in the "geo" metadata; a plain Parquet table may have lon/lat.
        metadata = pyarrow.parquet.read_schema(path).metadata or {}
        return gpd.read_parquet(path) if b"geo" in metadata else pd.read_parquet(path)
    if suffix in (".csv", ".tsv"):
        # As text, so that codes and ids keep their leading zeros; every column is parsed for its kind later.
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str)
    return gpd.read_file(path, engine="pyogrio", layer=layer)


def _points_from_lon_lat(shown: str, table: pd.DataFrame) -> gpd.GeoDataFrame:
    """A table without geometry: points from its lon/lat columns (EPSG:4326), else refuse it."""
    columns = {str(name).lower(): name for name in table.columns}
    lon = next((columns[c] for c in LONGITUDE_COLUMNS if c in columns), None)
    lat = next((columns[c] for c in LATITUDE_COLUMNS if c in columns), None)
    if lon is None or lat is None:
        raise ImporterError(f"{shown}: no geometry column (and no lon/lat columns)")
    table = table.reset_index(drop=True)
    coordinates = {}
    for name in (lon, lat):
        values = pd.to_numeric(table[name], errors="coerce")
        bad = values.isna() & table[name].notna()
        if bad.any():
            label = bad.idxmax()
            raise ImporterError(f"{shown}: row {label}: {name} {table.at[label, name]!r} is not a number")
        coordinates[name] = values
    located = coordinates[lon].notna() & coordinates[lat].notna()
    geometry = np.where(located, gpd.points_from_xy(coordinates[lon], coordinates[lat]), None)
    return gpd.GeoDataFrame(table.drop(columns=[lon, lat]), geometry=list(geometry), crs=CRS)


def _crs_name(crs: pyproj.CRS) -> str:
    authority = crs.to_authority()
    return ":".join(authority) if authority else crs.name


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- values -----------------------------------------------------------------------------------------------------

def _is_missing(value) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _as_text(values: pd.Series) -> pd.Series:
    """Text values with None for missing; whole numbers stored as floats (Shapefile, CSV) lose their '.0'."""
    if pd.api.types.is_float_dtype(values):
        present = values.dropna()
        if (present == np.floor(present)).all():
            values = values.astype("Int64")
    text = [None if _is_missing(value) else str(value).strip() or None for value in values.to_numpy(dtype=object)]
    return pd.Series(text, index=values.index, dtype=object)


def _parse_numbers(source: _Input, column: str, name: str, metres: bool = False) -> pd.Series:
    """Floats, NaN where empty; a value that is not a number is an error naming its row."""
    values = source.frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    text = _as_text(values)
    if metres:  # OpenStreetMap writes heights as "12 m"
        text = pd.Series([v if v is None else v.removesuffix("m").strip() for v in text], index=text.index,
                         dtype=object)
    parsed = pd.to_numeric(text, errors="coerce").astype(float)
    bad = text.notna() & parsed.isna()
    if bad.any():
        label = bad.idxmax()
        raise source.error(f"{name} {values[label]!r} is not a number", label)
    return parsed


def _parse_times(source: _Input, column: str, name: str) -> pd.Series:
    """Instants in the city's time zone; naive times are taken as local time, numbers as UTC epoch seconds."""
    values = source.frame[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        parsed = pd.to_datetime(values, unit="s", utc=True)
    else:
        text = _as_text(values)
        try:
            parsed = pd.to_datetime(text)
        except (ValueError, TypeError, OverflowError):
            # Mixed formats or offsets, or a bad value: go row by row, which names the bad row.
            parsed = _parse_times_one_by_one(source, text, name)
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize(city_timezone())
    return parsed.dt.tz_convert(city_timezone())


def _parse_times_one_by_one(source: _Input, text: pd.Series, name: str) -> pd.Series:
    stamps = []
    for label, value in text.items():
        if value is None:
            stamps.append(pd.NaT)
            continue
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):
            raise source.error(f"{name} {value!r} is not a time", label) from None
        zone = city_timezone()
        stamps.append(stamp.tz_localize(zone) if stamp.tzinfo is None else stamp.tz_convert(zone))
    return pd.Series(stamps, index=text.index, dtype=f"datetime64[ns, {city_timezone()}]")


def _parse_bools(source: _Input, column: str, name: str) -> pd.Series:
    values = source.frame[column]
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean")
    parsed = []
    for label, value in _as_text(values).items():
        word = None if value is None else value.lower()
        if word is None:
            parsed.append(pd.NA)
        elif word in TRUE_WORDS or word in FALSE_WORDS:
            parsed.append(word in TRUE_WORDS)
        else:
            raise source.error(f"{name} {value!r} is not true or false", label)
    return pd.Series(parsed, index=values.index, dtype="boolean")


def _whole_numbers(values: pd.Series) -> pd.Series:
    return np.rint(values).astype("Int64")


# --- geometry checks and spatial joins --------------------------------------------------------------------------

def _repaired_polygons(source: _Input, what: str, report: ImportReport) -> gpd.GeoDataFrame:
    """The file's rows with valid polygons; repairs and refusals reported; an error if none is left."""
    kinds = set(source.frame.geometry.dropna().geom_type)
    if kinds and not kinds & POLYGON_TYPES:
        raise source.error(f"expected polygons for {what}, found {', '.join(sorted(kinds))} geometries")
    result = repair_polygons(source.frame, id_column=source.id_column, source=source.path)
    report.repaired += result.repaired
    report.refused += result.refused
    if result.gdf.empty:
        first = result.refused[0].removeprefix(f"{source.path}: ").replace(": refused, ", ": ", 1)
        raise source.error(f"every row was refused ({first})")
    return result.gdf


def _located_points(source: _Input, what: str, report: ImportReport) -> gpd.GeoDataFrame:
    """The file's rows located by a point; other rows refused and reported; an error if none is left."""
    geometry = source.frame.geometry
    kinds = set(geometry.dropna().geom_type)
    if kinds and "Point" not in kinds:
        raise source.error(f"expected points for {what}, found {', '.join(sorted(kinds))} geometries")
    is_point = (geometry.geom_type == "Point") & ~geometry.is_empty
    for label in source.frame.index[~is_point.to_numpy()]:
        shape = geometry[label]
        reason = "no location" if shape is None or shape.is_empty else f"a {shape.geom_type} is not a point"
        report.refused.append(f"{source.path}: {source.where(label)}: refused, {reason}")
    if not is_point.any():
        raise source.error(f"every row was refused (no {what} has a point location)")
    return source.frame[is_point.to_numpy()]


def _containing_codes(shapes: gpd.GeoSeries, areas: gpd.GeoDataFrame) -> pd.Series:
    """For each shape, the code of the first area (in ``areas``' order) it touches, else None."""
    tree = shapely.STRtree(areas.geometry.to_numpy())
    shape_positions, area_positions = tree.query(shapes.to_numpy(), predicate="intersects")
    first_area = pd.Series(area_positions).groupby(shape_positions).min()
    codes = np.full(len(shapes), None, dtype=object)
    codes[first_area.index.to_numpy()] = areas["code"].to_numpy()[first_area.to_numpy()]
    return pd.Series(codes, index=shapes.index)


def _place_in_cells(source: _Input, anchors: gpd.GeoSeries, cells: gpd.GeoDataFrame, what: str,
                    report: ImportReport) -> gpd.GeoDataFrame:
    """``source``'s rows with the grid cell their anchor point lies in; rows outside every cell are refused."""
    grid_codes = _containing_codes(anchors, cells)
    outside = grid_codes.isna().to_numpy()
    for label in source.frame.index[outside]:
        report.refused.append(f"{source.path}: {source.where(label)}: refused, outside every grid cell")
    if outside.all():
        raise source.error(f"every row was refused (no {what} lies in a grid cell: they lie at "
                           f"{_lon_lat_extent(anchors)}, the grid cells at {_lon_lat_extent(cells.geometry)}"
                           + (f"; is --assume-crs {source.assumed_crs} right?)" if source.assumed_crs else ")"))
    return source.frame[~outside].assign(grid_code=grid_codes[~outside])


def _lon_lat_extent(shapes: gpd.GeoSeries) -> str:
    west, south, east, north = shapes.total_bounds
    return f"longitude {west:.3f} … {east:.3f}, latitude {south:.3f} … {north:.3f}"


# --- boundaries → units -----------------------------------------------------------------------------------------

@dataclass
class _BoundaryFile:
    """One level's file read as units, before their parents are known."""

    source: _Input
    units: gpd.GeoDataFrame  # code, level, parent_code (as written in the file, or None), name, name_zh, geometry
    has_parent_column: bool
    codes_in_file: set[str]  # including the rows refused since, to explain why their children are refused


def _read_boundaries(source: _Input, level: str, columns: Mapping[str, str | None],
                     report: ImportReport) -> _BoundaryFile:
    """One level's file as units, codes checked, names filled and geometries repaired."""
    code_column = source.find_column(UNIT_COLUMNS["code"], columns.get("code"))
    if code_column is None:
        looked = ", ".join(((columns["code"],) if columns.get("code") else ()) + UNIT_COLUMNS["code"])
        raise source.error(f"no code column (looked for {looked}); name it with --code-column")
    source.id_column = code_column
    codes = _as_text(source.frame[code_column])
    if codes.isna().any():
        raise source.error("the code is empty", codes.index[codes.isna()][0])
    duplicated = codes[codes.duplicated(keep=False)]
    if len(duplicated):
        listed = ", ".join(f"{code!r} (rows {', '.join(map(str, labels))})"
                           for code, labels in list(duplicated.groupby(duplicated).groups.items())[:3])
        raise source.error(f"duplicate codes: {listed}")

    name_column = source.find_column(UNIT_COLUMNS["name"], columns.get("name"))
    names = codes if name_column is None else _as_text(source.frame[name_column])
    if name_column is None:
        report.filled.append(f"{source.path}: no name column, names are the codes: {len(codes):,} units")
    elif names.isna().any():
        report.filled.append(f"{source.path}: empty names are the codes: {int(names.isna().sum()):,} units")
        names = names.fillna(codes)
    name_zh_column = source.find_column(UNIT_COLUMNS["name_zh"])
    names_zh = names if name_zh_column is None else _as_text(source.frame[name_zh_column]).fillna(names)
    parent_column = source.find_column(UNIT_COLUMNS["parent_code"], columns.get("parent_code"))
    parents = (pd.Series(None, index=codes.index, dtype=object) if parent_column is None
               else _as_text(source.frame[parent_column]))

    units = gpd.GeoDataFrame({"code": codes, "level": level, "parent_code": parents, "name": names,
                              "name_zh": names_zh}, geometry=source.frame.geometry, crs=CRS)
    source.frame = units
    source.id_column = "code"
    return _BoundaryFile(source, _repaired_polygons(source, f"{level} boundaries", report),
                         has_parent_column=parent_column is not None, codes_in_file=set(codes))


def _assign_parents(units: gpd.GeoDataFrame, has_parent_column: bool, source: _Input, anchor_level: str,
                    anchor: gpd.GeoDataFrame, refused_anchor_codes: set[str],
                    report: ImportReport) -> pd.Series:
    """The code of each unit's unit on ``anchor_level`` (the nearest level above that has units of its own).

    From the parent-code column where there is one, else from the anchor unit that contains the unit's
    representative point. Units left without a parent are refused and reported (None in the result).
    """
    if anchor_level == "city":
        # There is one city and everything belongs to it, whatever a parent-code column says: files often name a
        # parent (a province, the city's official code) that is not imported.
        return pd.Series(anchor["code"].iloc[0], index=units.index, dtype=object)
    written = units["parent_code"].dropna()
    if not has_parent_column:
        report.notes.append(f"{source.path}: no parent-code column; each unit is placed in the {anchor_level} "
                            f"that contains its representative point")
    elif len(written) and not written.isin(set(anchor["code"]) | refused_anchor_codes).any():
        # The column names units of another level (communities, when only districts are imported, say).
        report.notes.append(f"{source.path}: the parent codes are not {anchor_level} codes (such as "
                            f"{written.iloc[0]!r}); each unit is placed in the {anchor_level} that contains its "
                            f"representative point")
        has_parent_column = False
    parents = units["parent_code"] if has_parent_column else pd.Series(None, index=units.index, dtype=object)
    unknown = parents.notna() & ~parents.isin(anchor["code"])
    for label in units.index[unknown.to_numpy()]:
        parent = parents[label]
        reason = (f"its {anchor_level} {parent!r} was refused" if parent in refused_anchor_codes
                  else f"parent code {parent!r} is not a {anchor_level} code")
        report.refused.append(f"{source.path}: {source.where(label)}: refused, {reason}")
    parents = parents.where(~unknown, None)

    to_locate = parents.isna() & ~unknown
    if to_locate.any():
        points = units.geometry[to_locate].representative_point()
        found = _containing_codes(points, anchor)
        if has_parent_column:
            report.filled.append(f"{source.path}: empty parent code, taken from the {anchor_level} containing the "
                                 f"unit: {int(found.notna().sum()):,} units")
        for label in found.index[found.isna().to_numpy()]:
            report.refused.append(f"{source.path}: {source.where(label)}: refused, it lies in no {anchor_level}")
        parents = parents.where(~to_locate, found.reindex(parents.index))
    if parents.isna().all():
        raise source.error(f"every row was refused (no unit has a {anchor_level} above it)")
    return parents


def _union_city(top: gpd.GeoDataFrame, top_level: str, code: str, name: str,
                report: ImportReport) -> gpd.GeoDataFrame:
    geometry = normalise_polygonal(polygonal_parts(shapely.union_all(top.geometry.to_numpy())))
    report.notes.append(f"city: no city boundary given; {code!r} ({name}) is the union of the {len(top):,} "
                        f"{top_level} units")
    return gpd.GeoDataFrame({"code": [code], "level": ["city"], "parent_code": [None], "name": [name],
                             "name_zh": [name]}, geometry=[geometry], crs=CRS)


def _filler_level(parents: gpd.GeoDataFrame, level: str, report: ImportReport) -> gpd.GeoDataFrame:
    above = parents["level"].iloc[0]
    filler = parents.copy()
    filler["parent_code"] = parents["code"]
    filler["code"] = parents["code"] + FILLER_CODE_SUFFIX
    filler["level"] = level
    report.notes.append(f"{level}: no file given; filled with one {level} per {above} ({len(filler):,}), "
                        f"each a copy of its {above} with code <{above} code>{FILLER_CODE_SUFFIX}")
    return filler.reset_index(drop=True)


def build_units(boundaries: Mapping[str, str | Path], *, city_name: str, city_code: str,
                columns: Mapping[str, str | None], assume_crs: str | None, report: ImportReport,
                derived: Mapping[str, gpd.GeoDataFrame] | None = None) -> gpd.GeoDataFrame:
    """The ``units`` layer from one boundary file per level, with every level of the hierarchy present.
    ``derived`` gives levels made here rather than read (:func:`derive_boundaries`), with a ``code`` column."""
    files: dict[str, _BoundaryFile] = {}
    for level in LEVELS:
        if derived and level in derived:
            source = _Input(f"{level} derived from the buildings", derived[level].reset_index(drop=True))
            files[level] = _read_boundaries(source, level, {}, report)
        elif level in boundaries:
            source = _read_input(boundaries[level], f"{level} boundaries", assume_crs, report)
            files[level] = _read_boundaries(source, level, columns, report)

    levels: dict[str, gpd.GeoDataFrame] = {}
    if "city" in files:
        city = files["city"].units
        if len(city) != 1:
            raise files["city"].source.error(f"a city boundary file must hold one unit, this one has {len(city):,}")
        levels["city"] = city.assign(parent_code=None)
    else:
        top_level = next(level for level in LEVELS if level in files)
        levels["city"] = _union_city(files[top_level].units, top_level, city_code, city_name, report)

    anchor_level = "city"
    for position, level in enumerate(LEVELS[1:], start=1):
        above = LEVELS[position - 1]
        if level not in files:
            levels[level] = _filler_level(levels[above], level, report)
            continue
        file = files[level]
        anchor = levels[anchor_level]
        refused_above = files[anchor_level].codes_in_file - set(anchor["code"]) if anchor_level in files else set()
        anchor_codes = _assign_parents(file.units, file.has_parent_column, file.source, anchor_level, anchor,
                                       refused_above, report)
        placed = anchor_codes.notna()
        # The parent is the anchor unit itself, or its copy on each filled level in between.
        depth = LEVELS.index(above) - LEVELS.index(anchor_level)
        levels[level] = file.units[placed.to_numpy()].assign(
            parent_code=anchor_codes[placed] + FILLER_CODE_SUFFIX * depth)
        anchor_level = level

    frame = pd.concat([levels[level] for level in LEVELS], ignore_index=True)
    _check_codes_unique(frame, files)
    _note_childless_units(frame, report)
    units = gpd.GeoDataFrame(frame[["code", "level", "parent_code", "name", "name_zh", "geometry"]],
                             geometry="geometry", crs=CRS)
    build_hierarchy(units)  # the guarantee this module gives; a failure here is a bug, not bad input
    return units


def _check_codes_unique(units: pd.DataFrame, files: Mapping[str, _BoundaryFile]) -> None:
    duplicated = units[units["code"].duplicated(keep=False)]
    if duplicated.empty:
        return
    code = duplicated["code"].iloc[0]
    places = [f"{level} ({files[level].source.path})" if level in files else f"{level} (filled)"
              for level in duplicated.loc[duplicated["code"] == code, "level"]]
    raise ImporterError(f"unit code {code!r} is used on two levels: {' and '.join(places)}")


def _note_childless_units(units: pd.DataFrame, report: ImportReport) -> None:
    with_children = set(units["parent_code"].dropna())
    for level, child_level in zip(LEVELS[:-1], LEVELS[1:]):
        childless = units[(units["level"] == level) & ~units["code"].isin(with_children)]
        if len(childless):
            listed = ", ".join(childless["code"].head(5)) + (", ..." if len(childless) > 5 else "")
            report.notes.append(f"{len(childless):,} {level} units have no {child_level} inside them and so no "
                                f"grid cell: nothing can be placed in them ({listed})")


# --- boundaries derived from the buildings -----------------------------------------------------------------------

# How far around the buildings the derived city outline reaches, and how much of its outline's detail is kept.
OUTLINE_BUFFER_M = 250.0
OUTLINE_SIMPLIFY_M = 25.0


def derive_boundaries(buildings: str | Path, cell_m: float, *, outline: str | Path | None, city_code: str,
                      city_name: str, assume_crs: str | None,
                      report: ImportReport) -> dict[str, gpd.GeoDataFrame]:
    """A city outline and a grid of square cells for a city that has building footprints but no boundaries.

    The outline is the file ``outline`` (one polygon layer, its parts united) or else the footprints, each widened
    by :data:`OUTLINE_BUFFER_M`, united and simplified. The grid is the squares of ``cell_m`` metres (in the
    city's UTM zone, aligned on whole multiples of ``cell_m``) that meet the outline, each cut to the outline;
    codes ``G<row>_<column>`` from the south-west. Every building's representative point lies in one cell.
    """
    if not cell_m > 0:
        raise ImporterError(f"--grid-from-buildings {cell_m!r}: the cell side must be a positive number of metres")
    footprints = _read_input(buildings, "buildings", assume_crs, report).frame
    footprints = footprints[footprints.geometry.notna() & ~footprints.geometry.is_empty]
    metric = footprints.estimate_utm_crs()
    if outline is not None:
        given = _read_input(outline, "city outline", assume_crs, report).frame.to_crs(metric)
        area = shapely.union_all(shapely.make_valid(given.geometry.to_numpy()))
        how = f"the outline in {outline}"
    else:
        widened = shapely.buffer(footprints.to_crs(metric).geometry.to_numpy(), OUTLINE_BUFFER_M)
        area = shapely.union_all(widened).simplify(OUTLINE_SIMPLIFY_M)
        how = f"its {len(footprints):,} buildings, each widened by {OUTLINE_BUFFER_M:g} m"
    area = normalise_polygonal(polygonal_parts(area))
    if area.is_empty:
        raise ImporterError(f"{outline or buildings}: no area to make a city outline of")
    west, south, east, north = area.bounds
    columns = np.arange(np.floor(west / cell_m), np.ceil(east / cell_m))
    rows = np.arange(np.floor(south / cell_m), np.ceil(north / cell_m))
    if len(columns) * len(rows) > MAX_DERIVED_CELLS:
        raise ImporterError(f"--grid-from-buildings {cell_m:g}: {len(columns) * len(rows):,} cells over the city's "
                            f"extent; at most {MAX_DERIVED_CELLS:,}: choose larger cells")
    column_grid, row_grid = np.meshgrid(columns, rows)
    squares = shapely.box(column_grid.ravel() * cell_m, row_grid.ravel() * cell_m,
                          (column_grid.ravel() + 1) * cell_m, (row_grid.ravel() + 1) * cell_m)
    cells = shapely.intersection(squares, area)
    kept = ~shapely.is_empty(cells) & (shapely.area(cells) > 0)
    kept_rows, kept_columns = (row_grid.ravel()[kept] - rows[0]).astype(int), \
        (column_grid.ravel()[kept] - columns[0]).astype(int)
    grid = gpd.GeoDataFrame(
        {"code": [f"G{row:04d}_{column:04d}" for row, column in zip(kept_rows, kept_columns)]},
        geometry=[normalise_polygonal(polygonal_parts(cell)) for cell in cells[kept]], crs=metric).to_crs(CRS)
    city = gpd.GeoDataFrame({"code": [city_code], "name": [city_name]}, geometry=[area], crs=metric).to_crs(CRS)
    report.notes.append(f"city: outline derived from {how}; grid: {len(grid):,} cells of {cell_m:g} m × "
                        f"{cell_m:g} m cut to it (--grid-from-buildings)")
    return {"city": city, "grid": grid}


# A derived grid larger than this is refused: it would be a mistake in the cell size (metres, not kilometres).
MAX_DERIVED_CELLS = 200_000


# --- buildings --------------------------------------------------------------------------------------------------

def build_buildings(path: str | Path, cells: gpd.GeoDataFrame, *, assume_crs: str | None,
                    report: ImportReport) -> gpd.GeoDataFrame:
    """The ``buildings`` layer: footprints with height, floors, use, age and residents, placed in grid cells.

    Rows are refused (repair, placement) before their values are read, so the defaults are counted over the
    buildings that are written.
    """
    source = _read_input(path, "buildings", assume_crs, report)
    columns = {name: source.find_column(candidates) for name, candidates in BUILDING_COLUMNS.items()}
    source.frame = source.frame.assign(building_id=_ids(source, columns["building_id"], "B", "buildings", report))
    source.frame = _repaired_polygons(source, "buildings", report)
    source.frame = _place_in_cells(source, source.frame.geometry.representative_point(), cells, "building", report)
    frame = source.frame

    missing = pd.Series(np.nan, index=frame.index)
    # Zero and negative values mean "unknown" in several public footprint data sets.
    height = _parse_numbers(source, columns["height_m"], "height", metres=True) if columns["height_m"] else missing
    height = height.where(height > 0)
    floors = _parse_numbers(source, columns["floors"], "floors") if columns["floors"] else missing
    floors = np.rint(floors).where(floors >= 0.5)

    from_floors = height.isna() & floors.notna()
    neither = height.isna() & floors.isna()
    floors_from_height = floors.isna() & height.notna()
    height = height.where(~from_floors, floors * METRES_PER_FLOOR).where(~neither, DEFAULT_HEIGHT_M)
    floors = floors.where(~floors_from_height, np.maximum(1.0, np.rint(height / METRES_PER_FLOOR)))
    floors = floors.where(~neither, DEFAULT_FLOORS)
    for count, what in ((from_floors.sum(), f"height_m = floors × {METRES_PER_FLOOR:g} m"),
                        (neither.sum(), f"no height nor floors: height_m {DEFAULT_HEIGHT_M:g} m and "
                                        f"floors {DEFAULT_FLOORS} (default)"),
                        (floors_from_height.sum(), f"floors = height_m ÷ {METRES_PER_FLOOR:g} m, rounded")):
        if count:
            report.filled.append(f"{source.path}: {what}: {int(count):,} buildings")

    year_built = (_whole_numbers(_parse_numbers(source, columns["year_built"], "year_built"))
                  if columns["year_built"] else pd.Series(pd.NA, index=frame.index, dtype="Int64"))
    if year_built.isna().any():
        report.filled.append(f"{source.path}: year_built unknown, left empty: "
                             f"{int(year_built.isna().sum()):,} buildings")
    return gpd.GeoDataFrame({
        "building_id": frame["building_id"],
        "grid_code": frame["grid_code"],
        "height_m": height,
        "floors": floors.astype("int64"),
        "use": _text_or_default(source, columns["use"], "use", UNKNOWN, report),
        "year_built": year_built,
        "residents": _whole_or_unknown(source, columns["residents"], "residents", "buildings", report),
        "high_rise_100m": height >= HIGH_RISE_M,
    }, geometry=frame.geometry, crs=CRS)


# --- sensors and orders -----------------------------------------------------------------------------------------

def _point_columns(source: _Input, recognised: Mapping[str, tuple[str, ...]], required: tuple[str, ...],
                   what: str) -> dict[str, str | None]:
    columns = {name: source.find_column(candidates) for name, candidates in recognised.items()}
    for name in required:
        if columns[name] is None:
            raise source.error(f"no {name} column (looked for {', '.join(recognised[name])}); {what} need one")
    return columns


def _required_values(source: _Input, columns: Mapping[str, str], what: str, report: ImportReport) -> pd.DataFrame:
    """The required columns parsed (times as times, the rest as text); rows with an empty one are refused.

    ``source.frame`` is narrowed to the rows kept; an error if none is left.
    """
    values = pd.DataFrame({
        name: _parse_times(source, column, name) if name.endswith("_at") else _as_text(source.frame[column])
        for name, column in columns.items()
    }, index=source.frame.index)
    empty = values.isna()
    for label in values.index[empty.any(axis=1).to_numpy()]:
        names = ", ".join(empty.columns[empty.loc[label].to_numpy()])
        report.refused.append(f"{source.path}: {source.where(label)}: refused, empty {names}")
    kept = ~empty.any(axis=1).to_numpy()
    if not kept.any():
        raise source.error(f"every row was refused (no {what} has all of {', '.join(columns)})")
    source.frame = source.frame[kept]
    return values[kept]


def build_sensors(path: str | Path, cells: gpd.GeoDataFrame, *, assume_crs: str | None,
                  report: ImportReport) -> gpd.GeoDataFrame:
    """The ``sensors`` layer: kind, times and status of point sensors, placed in grid cells."""
    source = _read_input(path, "sensors", assume_crs, report)
    columns = _point_columns(source, SENSOR_COLUMNS, ("kind", "installed_at", "last_seen_at"), "sensors")
    source.frame = source.frame.assign(sensor_id=_ids(source, columns["sensor_id"], "S", "sensors", report))
    source.frame = _located_points(source, "sensor", report)
    required = _required_values(source, {name: columns[name] for name in ("kind", "installed_at", "last_seen_at")},
                                "sensor", report)
    source.frame = _place_in_cells(source, source.frame.geometry, cells, "sensor", report)
    frame = source.frame
    return gpd.GeoDataFrame({
        "sensor_id": frame["sensor_id"],
        "kind": required["kind"].reindex(frame.index),
        "grid_code": frame["grid_code"],
        "building_id": (_as_text(frame[columns["building_id"]]) if columns["building_id"]
                        else pd.Series(None, index=frame.index, dtype=object)),
        "status": _text_or_default(source, columns["status"], "status", UNKNOWN, report),
        "installed_at": required["installed_at"].reindex(frame.index),
        "last_seen_at": required["last_seen_at"].reindex(frame.index),
    }, geometry=frame.geometry, crs=CRS)


def build_orders(path: str | Path, cells: gpd.GeoDataFrame, event_types: pd.DataFrame, *,
                 assume_crs: str | None, report: ImportReport) -> gpd.GeoDataFrame:
    """The ``orders`` layer: work orders with their stage times, placed in grid cells.

    The responsibility list already stored (``event_types``) gives an order its department and deadline when the
    file does not.
    """
    source = _read_input(path, "orders", assume_crs, report)
    columns = _point_columns(source, ORDER_COLUMNS, ("event_type", "received_at"), "orders")
    source.frame = source.frame.assign(order_id=_ids(source, columns["order_id"], "O", "orders", report))
    source.frame = _located_points(source, "order", report)
    required = _required_values(source, {name: columns[name] for name in ("event_type", "received_at")},
                                "order", report)
    source.frame = _place_in_cells(source, source.frame.geometry, cells, "order", report)
    frame = source.frame
    index = frame.index

    orders = pd.DataFrame({"order_id": frame["order_id"], "event_type": required["event_type"].reindex(index)})
    orders["channel"] = _text_or_default(source, columns["channel"], "channel", UNKNOWN, report)
    orders["grid_code"] = frame["grid_code"]
    orders["received_at"] = required["received_at"].reindex(index)
    for name in [f"{stage}_at" for stage in ORDER_STAGES[1:]] + ["supervised_at"]:
        column = columns[name]
        orders[name] = (_parse_times(source, column, name) if column
                        else pd.Series(pd.NaT, index=index, dtype=orders["received_at"].dtype))
    for name in ("description", "address"):
        orders[name] = (_as_text(frame[columns[name]]) if columns[name]
                        else pd.Series(None, index=index, dtype=object))
    # Imported orders start their concurrency version at 1; the list version they were dispatched under is unknown.
    orders["version"] = 1
    orders["rules_version"] = pd.Series(pd.NA, index=index, dtype="Int64")

    known = event_types.set_index("code")
    unknown_types = ~orders["event_type"].isin(known.index)
    if unknown_types.any():
        listed = ", ".join(map(repr, orders.loc[unknown_types, "event_type"].unique()[:5]))
        report.notes.append(f"{source.path}: {int(unknown_types.sum()):,} orders have an event type that is not in "
                            f"the stored responsibility list (event_types): {listed}")

    department = (_as_text(frame[columns["department"]]) if columns["department"]
                  else pd.Series(None, index=index, dtype=object))
    from_list = department.isna() & ~unknown_types
    department = department.fillna(orders["event_type"].map(known["department"]))
    if from_list.any():
        report.filled.append(f"{source.path}: department from the responsibility list: "
                             f"{int(from_list.sum()):,} orders")
    orders["department"] = _default_text(department, source, "department", UNKNOWN, report)

    deadline = (_parse_times(source, columns["deadline_at"], "deadline_at") if columns["deadline_at"]
                else pd.Series(pd.NaT, index=index, dtype=orders["received_at"].dtype))
    limit_hours = orders["event_type"].map(known["time_limit_hours"]).astype(float)
    by_list = deadline.isna() & limit_hours.notna()
    by_default = deadline.isna() & limit_hours.isna()
    allowed = pd.to_timedelta(limit_hours.fillna(DEFAULT_TIME_LIMIT_HOURS), unit="h")
    orders["deadline_at"] = deadline.where(deadline.notna(), orders["received_at"] + allowed)
    for count, what in ((by_list.sum(), "deadline_at = received_at + the event type's time limit"),
                        (by_default.sum(), f"deadline_at = received_at + {DEFAULT_TIME_LIMIT_HOURS} h (event type "
                                           "not in the responsibility list)")):
        if count:
            report.filled.append(f"{source.path}: {what}: {int(count):,} orders")

    status = (_as_text(frame[columns["status"]]) if columns["status"]
              else pd.Series(None, index=index, dtype=object))
    if status.isna().any():
        reached = pd.DataFrame({stage: orders[f"{stage}_at"].notna() for stage in ORDER_STAGES})
        last_stage = reached.iloc[:, ::-1].idxmax(axis=1)
        report.filled.append(f"{source.path}: status from the last stage with a time: "
                             f"{int(status.isna().sum()):,} orders")
        status = status.fillna(last_stage.map(STATUS_AFTER_STAGE))
    orders["status"] = status

    orders["satisfied"] = (_parse_bools(source, columns["satisfied"], "satisfied") if columns["satisfied"]
                           else pd.Series(pd.NA, index=index, dtype="boolean"))
    orders["reopen_count"] = _whole_or_default(source, columns["reopen_count"], "reopen_count", 0, report)
    on_time = (_parse_bools(source, columns["on_time"], "on_time") if columns["on_time"]
               else pd.Series(pd.NA, index=index, dtype="boolean"))
    handled = orders["handled_at"]
    # Known once handled: whether it was by the deadline. Unhandled orders have no outcome yet.
    by_deadline = pd.Series(pd.array(np.where(handled.notna(), handled <= orders["deadline_at"], None),
                                     dtype="boolean"), index=index)
    orders["on_time"] = on_time.fillna(by_deadline)
    return gpd.GeoDataFrame(orders, geometry=frame.geometry, crs=CRS)


# --- filling values ---------------------------------------------------------------------------------------------

def _ids(source: _Input, column: str | None, prefix: str, what: str, report: ImportReport) -> pd.Series:
    """Ids from the file's id column (which then names rows in messages), else generated ones."""
    if column is None:
        report.filled.append(f"{source.path}: no id column, ids generated ({prefix}0000001, ...): "
                             f"{len(source.frame):,} {what}")
        return pd.Series([f"{prefix}{position + 1:07d}" for position in range(len(source.frame))],
                         index=source.frame.index)
    source.id_column = column
    ids = _as_text(source.frame[column])
    if ids.isna().any():
        raise source.error(f"the id ({column}) is empty", ids.index[ids.isna()][0])
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise source.error(f"duplicate id {duplicated.iloc[0]!r}", duplicated.index[0])
    return ids


def _default_text(values: pd.Series, source: _Input, name: str, default: str, report: ImportReport) -> pd.Series:
    if values.isna().any():
        report.filled.append(f"{source.path}: {name} {default!r} (default): {int(values.isna().sum()):,} rows")
    return values.fillna(default)


def _text_or_default(source: _Input, column: str | None, name: str, default: str,
                     report: ImportReport) -> pd.Series:
    values = (_as_text(source.frame[column]) if column is not None
              else pd.Series(None, index=source.frame.index, dtype=object))
    return _default_text(values, source, name, default, report)


def _whole_or_unknown(source: _Input, column: str | None, name: str, what: str, report: ImportReport) -> pd.Series:
    """Whole numbers, empty where the file has none: a figure nobody measured is unknown, not a default (a 0 for
    residents was judged as a measured, "good" population density)."""
    values = (_parse_numbers(source, column, name) if column is not None
              else pd.Series(np.nan, index=source.frame.index))
    if values.isna().any():
        report.filled.append(f"{source.path}: {name} unknown, left empty (not judged): "
                             f"{int(values.isna().sum()):,} {what}")
    return _whole_numbers(values)


def _whole_or_default(source: _Input, column: str | None, name: str, default: int,
                      report: ImportReport) -> pd.Series:
    values = (_parse_numbers(source, column, name) if column is not None
              else pd.Series(np.nan, index=source.frame.index))
    if values.isna().any():
        report.filled.append(f"{source.path}: {name} {default} (default): {int(values.isna().sum()):,} rows")
    return _whole_numbers(values.fillna(default)).astype("int64")


# --- the import -------------------------------------------------------------------------------------------------

# Layers whose rows refer to another layer's rows, and so cannot outlive a replacement of it.
DEPENDENT_LAYERS = {
    "units": ("buildings", "sensors", "orders", "readings", "alarms", "planted_hotspots", "incidents", "enterprises",
              "grid_workers", "patrols", "cameras", "road_segments"),
    "sensors": ("readings", "alarms"),
    "orders": ("planted_hotspots",),
    "grid_workers": ("patrols",),
}


def import_city(sources: ImportSources, store: Store, *, city_name: str = DEFAULT_CITY_NAME,
                city_code: str = DEFAULT_CITY_CODE, code_column: str | None = None, name_column: str | None = None,
                parent_column: str | None = None, assume_crs: str | None = None,
                grid_from_buildings: float | None = None, settings: Mapping[str, str] | None = None,
                dry_run: bool = False) -> ImportReport:
    """Read, check and clean the files of ``sources``, then replace the layers they give in ``store``.

    Nothing is written unless every file passed its checks; the write is one transaction. Layers that depend on a
    replaced layer (buildings, sensors and orders on the units; readings and alarms on the sensors) and that the
    import does not give are emptied, since their rows would refer to units or sensors that no longer exist.
    Raises :class:`ImporterError` with a one-line message on bad input.
    """
    report = ImportReport(dry_run=dry_run)
    _check_arguments(sources, assume_crs)
    # Asking an SQLite store whether it holds a city creates its file: a dry run into a new file must leave none.
    database_exists = _database_exists(store)
    # The city's settings: those stored, with the ones given here; a new city (its boundaries imported) is named.
    given = {key: value for key, value in (settings or {}).items() if value is not None}
    if sources.boundaries or grid_from_buildings is not None:
        given.setdefault("name", city_name)
    try:
        city = city_settings.checked(given, city_settings.checked(store.city_settings() if database_exists else {}))
    except ValueError as error:
        raise ImporterError(str(error)) from None
    with city_settings.activated(city):  # naive times in the files are the city's local time
        return _import(sources, store, report, database_exists, given, city_name=city_name, city_code=city_code,
                       code_column=code_column, name_column=name_column, parent_column=parent_column,
                       assume_crs=assume_crs, grid_from_buildings=grid_from_buildings, dry_run=dry_run)


def _import(sources: ImportSources, store: Store, report: ImportReport, database_exists: bool,
            settings: Mapping[str, str], *, city_name: str, city_code: str, code_column: str | None,
            name_column: str | None, parent_column: str | None, assume_crs: str | None,
            grid_from_buildings: float | None, dry_run: bool) -> ImportReport:
    layers: dict[str, gpd.GeoDataFrame] = {}
    derived = None
    if grid_from_buildings is not None:
        if not sources.buildings:
            raise ImporterError("--grid-from-buildings needs --buildings: the grid is derived from them")
        if set(sources.boundaries) - {"city"}:
            raise ImporterError("--grid-from-buildings makes the grid: give no --boundaries but city=OUTLINE")
        derived = derive_boundaries(sources.buildings, grid_from_buildings, outline=sources.boundaries.get("city"),
                                    city_code=city_code, city_name=city_name, assume_crs=assume_crs, report=report)
    if sources.boundaries or derived:
        layers["units"] = build_units(
            {} if derived else sources.boundaries, city_name=city_name, city_code=city_code, assume_crs=assume_crs,
            report=report, columns={"code": code_column, "name": name_column, "parent_code": parent_column},
            derived=derived)
    stored = database_exists and store.is_built()
    if sources.buildings or sources.sensors or sources.orders:
        cells = (layers["units"] if "units" in layers
                 else load_layer(store, "units", where=lambda t: t.c.level == "grid") if stored else None)
        if cells is None or not (cells["level"] == "grid").any():
            raise ImporterError("there are no grid cells to place buildings, sensors or orders in: give "
                                "--boundaries too, or --grid-from-buildings METRES to derive a city outline and "
                                "grid from the buildings, or import into a database that has them")
        cells = cells[cells["level"] == "grid"]
        if sources.buildings:
            layers["buildings"] = build_buildings(sources.buildings, cells, assume_crs=assume_crs, report=report)
        if sources.sensors:
            layers["sensors"] = build_sensors(sources.sensors, cells, assume_crs=assume_crs, report=report)
        if sources.orders:
            event_types = load_layer(store, "event_types") if stored else empty_frame("event_types")
            layers["orders"] = build_orders(sources.orders, cells, event_types, assume_crs=assume_crs,
                                            report=report)

    frames = {layer_id: encode_frame(layer_id, frame) for layer_id, frame in layers.items()}
    for replaced in list(layers):
        for dependent in DEPENDENT_LAYERS.get(replaced, ()):
            if dependent not in frames:
                frames[dependent] = encode_frame(dependent, empty_frame(dependent))
                stored_rows = store.count(dependent) if stored else 0
                if stored_rows:
                    report.notes.append(f"{dependent}: emptied ({stored_rows:,} stored rows), its rows refer to "
                                        f"the {replaced} this import replaces and it was not given")
    report.written = {layer_id: len(frame) for layer_id, frame in frames.items()}
    if settings:
        stored = city_settings.active().as_rows()
        report.notes.append("city settings: " + ", ".join(f"{key} {stored[key]}" for key in settings))
    if not dry_run:
        stored = city_settings.active().as_rows()
        store.replace_layers(frames, source=f"layers.importer {sources.describe()}",
                             settings={key: stored[key] for key in settings})
    return report


def _database_exists(store: Store) -> bool:
    """False for an SQLite file that is not there (checked without connecting, which would create it)."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database).is_file()
    return True


def _check_arguments(sources: ImportSources, assume_crs: str | None) -> None:
    if not (sources.boundaries or sources.buildings or sources.sensors or sources.orders):
        raise ImporterError("nothing to import: give --boundaries LEVEL=FILE, --buildings, --sensors or --orders")
    for level, path in sources.boundaries.items():
        if level not in LEVELS:
            raise ImporterError(f"unknown boundary level {level!r} (for {path}); the levels are {', '.join(LEVELS)}")
    if assume_crs is not None:
        try:
            pyproj.CRS.from_user_input(assume_crs)
        except pyproj.exceptions.CRSError:
            raise ImporterError(f"--assume-crs {assume_crs!r} is not a CRS (try EPSG:4326 or EPSG:32650)") from None
    for path in (*sources.boundaries.values(), sources.buildings, sources.sensors, sources.orders):
        if path is not None and not split_layer(path)[0].exists():
            raise ImporterError(f"{path}: no such file")


# --- command line -----------------------------------------------------------------------------------------------

def parse_boundary_arguments(values: list[str]) -> dict[str, str]:
    """``["district=districts.gpkg", ...]`` → ``{"district": "districts.gpkg", ...}``."""
    boundaries: dict[str, str] = {}
    for value in values:
        level, separator, path = value.partition("=")
        level = level.strip().lower()
        if not separator or not level or not path:
            raise ImporterError(f"--boundaries {value!r}: expected LEVEL=FILE, e.g. district=districts.gpkg")
        if level in boundaries:
            raise ImporterError(f"--boundaries: level {level!r} given twice ({boundaries[level]} and {path})")
        boundaries[level] = path
    return boundaries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m layers.importer",
        description="Import your own city (boundaries, buildings, sensors, work orders) in place of the sample "
                    "city. See docs/importing.md.")
    parser.add_argument("--boundaries", action="append", default=[], metavar="LEVEL=FILE",
                        help=f"boundaries of one level ({', '.join(LEVELS)}); repeat for each level you have")
    parser.add_argument("--buildings", metavar="FILE", help="building footprints (polygons); FILE:LAYER reads one "
                                                             "layer of a multi-layer file (GeoPackage)")
    parser.add_argument("--sensors", metavar="FILE", help="IoT sensors (points, or a table with lon/lat)")
    parser.add_argument("--orders", metavar="FILE", help="work orders (points, or a table with lon/lat)")
    parser.add_argument("--city-name", default=DEFAULT_CITY_NAME,
                        help="name of the city when no city boundary is given (default: %(default)s)")
    parser.add_argument("--city-code", default=DEFAULT_CITY_CODE,
                        help="code of the city when no city boundary is given (default: %(default)s)")
    parser.add_argument("--code-column", help="column holding the unit codes in the boundary files")
    parser.add_argument("--name-column", help="column holding the unit names in the boundary files")
    parser.add_argument("--parent-column", help="column holding the parent unit's code in the boundary files")
    parser.add_argument("--grid-from-buildings", metavar="METRES", type=float,
                        help="no boundaries? derive the city's outline from the buildings (or from "
                             "--boundaries city=OUTLINE) and a grid of square cells of this side over it")
    parser.add_argument("--assume-crs", metavar="CRS",
                        help="CRS of files that do not say theirs, e.g. EPSG:4547 (files that do are reprojected)")
    parser.add_argument("--timezone", metavar="ZONE", help="the city's IANA time zone, e.g. Europe/Paris (stored with "
                                                           "the city; default for a new one: Asia/Shanghai)")
    parser.add_argument("--holidays", choices=city_settings.HOLIDAY_CALENDARS,
                        help="the city's public-holiday calendar for working days (CN, or none: weekends only)")
    parser.add_argument("--languages", metavar="LIST", help="the city's languages, a comma list of en, zh")
    parser.add_argument("--database-url", default=None, help=f"SQLAlchemy URL (default: {default_database_url()})")
    parser.add_argument("--dry-run", action="store_true", help="read and check everything, report, write nothing")
    parser.add_argument("--list-layers", metavar="FILE", help="list the layers of FILE (a GeoPackage, say) and stop; "
                                                               "name one as FILE:LAYER in the options above")
    args = parser.parse_args(argv)
    if args.list_layers:
        return _print_layers(args.list_layers)
    try:
        sources = ImportSources(boundaries=parse_boundary_arguments(args.boundaries), buildings=args.buildings,
                                sensors=args.sensors, orders=args.orders)
        store = Store(args.database_url)
        report = import_city(sources, store, city_name=args.city_name, city_code=args.city_code,
                             code_column=args.code_column, name_column=args.name_column,
                             parent_column=args.parent_column, assume_crs=args.assume_crs,
                             grid_from_buildings=args.grid_from_buildings, dry_run=args.dry_run,
                             settings={"timezone": args.timezone, "holidays": args.holidays,
                                       "languages": args.languages})
    except ImporterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a command run by a user ends with a message, never a traceback
        print(f"error: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return 2
    print(report.render())
    if not args.dry_run:
        print(f"imported into {store.engine.url}")  # a URL object prints its password as ***
    return 0


def _print_layers(path: str) -> int:
    layers = _layers_of(Path(path)) if Path(path).exists() else None
    if not layers:
        print(f"error: {path}: {'no such file' if not Path(path).exists() else 'no layers GDAL can list'}",
              file=sys.stderr)
        return 2
    for description in _describe_layers(Path(path), layers):
        print(description)
    return 0


if __name__ == "__main__":
    sys.exit(main())
