"""Loading layers: stored rows → checked GeoDataFrames in EPSG:4326, and back.

:func:`load_layer` returns a frame whose columns, dtypes and CRS match the layer's spec, or raises
:class:`LayerSchemaError` naming the layer and column. :func:`encode_frame` is its inverse, used by every writer
(the sample generator and the importer), so both agree on one encoding.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers.city_settings import timezone as city_timezone
from layers.specs import CRS, LAYERS, LayerSpec
from layers.store import Store


class LayerSchemaError(ValueError):
    """A frame does not match its layer's declared schema."""


SHAPE_KINDS = ("polygon", "line")
"""Geometries stored as a geometry column (PostGIS) or WKB (SQLite); points are lon/lat columns instead."""


def encode_frame(layer_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as stored: polygons to WKB, instants to UTC epoch seconds, only the spec's columns.

    Point layers are given ``lon``/``lat``; if they are missing and the frame has a point geometry, they are taken
    from it.
    """
    spec = LAYERS[layer_id]
    frame = frame.copy()
    if spec.geometry == "point" and ("lon" not in frame or "lat" not in frame) and "geometry" in frame:
        points = gpd.GeoSeries(frame["geometry"], crs=getattr(frame, "crs", None))
        if points.crs is not None and points.crs != CRS:
            points = points.to_crs(CRS)
        frame["lon"], frame["lat"] = points.x.to_numpy(), points.y.to_numpy()
    missing = [c.name for c in spec.columns if c.name not in frame]
    if missing:
        raise LayerSchemaError(f"layer {layer_id!r}: missing column(s) {', '.join(missing)}")
    out = {}
    for column in spec.columns:
        values = frame[column.name]
        if column.kind in SHAPE_KINDS:
            geoms = gpd.GeoSeries(values, crs=getattr(frame, "crs", None))
            if geoms.crs is not None and geoms.crs != CRS:
                raise LayerSchemaError(f"layer {layer_id!r}: geometry must be in {CRS}, got {geoms.crs}")
            out[column.name] = shapely.to_wkb(geoms.to_numpy(), output_dimension=2)
        elif column.kind == "time":
            out[column.name] = _to_epoch_seconds(values)
        else:
            out[column.name] = values.to_numpy()
    return pd.DataFrame(out, index=frame.index)


def _to_epoch_seconds(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.dt.tz is None:
            values = values.dt.tz_localize(city_timezone())
        seconds = values.dt.tz_convert("UTC").astype("datetime64[s, UTC]").astype("int64")
        return pd.Series(seconds.where(values.notna()), index=values.index).astype("Int64")
    return pd.to_numeric(values).astype("Int64")


def decode_frame(spec: LayerSpec, raw: pd.DataFrame) -> pd.DataFrame:
    """Stored rows → typed frame (GeoDataFrame for layers with geometry, see :attr:`LayerSpec.has_geometry`).

    Each column is converted whole, with no Python loop over rows: at the city scale (3 million orders) this runs
    at every start. Text becomes an object column (None where missing), instants tz-aware timestamps in the city's
    zone (microseconds), nullable integers and booleans pandas' masked ``Int64``/``boolean``.
    """
    out = {}
    for column in spec.columns:
        if column.name not in raw:
            continue
        values = raw[column.name]
        if column.kind in SHAPE_KINDS:
            continue
        if column.kind == "time":
            out[column.name] = instants(values)
        elif column.kind == "int":
            out[column.name] = values.astype("Int64" if column.nullable else "int64")
        elif column.kind == "float":
            out[column.name] = values.astype("float64")
        elif column.kind == "bool":
            out[column.name] = values.astype("boolean" if column.nullable else "bool")
        else:
            out[column.name] = pd.Series(shared_strings(values), index=values.index, dtype=object)
    if spec.geometry in SHAPE_KINDS:
        out["geometry"] = gpd.GeoSeries(shapely.from_wkb(raw["geometry"].to_numpy()), index=raw.index, crs=CRS)
    elif spec.geometry == "point" and spec.point_geometry:
        out["geometry"] = gpd.GeoSeries(gpd.points_from_xy(out["lon"], out["lat"]), index=raw.index, crs=CRS)
    # Not copied (every column above is new) and not consolidated into 2-D blocks: at the city scale copying the
    # orders' columns into blocks took seconds of every start; a frame of 1-D columns also filters rows faster.
    frame = pd.DataFrame(out, index=raw.index, copy=False)
    if "geometry" in out:
        return gpd.GeoDataFrame(frame, geometry="geometry", crs=CRS, copy=False)
    return frame


def instants(seconds: pd.Series) -> pd.Series:
    """UTC epoch seconds (missing: NaT) → timestamps in the city's zone, at microsecond resolution.

    >>> instants(pd.Series([1763625600, None])).tolist()
    [Timestamp('2025-11-20 16:00:00+0800', tz='Asia/Shanghai'), NaT]
    """
    numbers = pd.to_numeric(seconds)  # integers, floats with NaN, Int64, or Python ints and None (SQLite)
    missing = numbers.isna().to_numpy()
    micros = numbers.to_numpy(dtype="int64", na_value=0) * 1_000_000
    stamps = micros.view("datetime64[us]")
    stamps[missing] = np.datetime64("NaT")
    local = pd.DatetimeIndex(stamps).tz_localize("UTC").tz_convert(city_timezone())
    return pd.Series(local, index=seconds.index)


DISTINCT_SAMPLE = 10_000
"""How many leading values :func:`shared_strings` looks at to tell a column of repeated values from a column of
distinct ones."""


def shared_strings(values: pd.Series) -> np.ndarray:
    """Text as an object array in which equal values are one Python string (None where a value is missing).

    A column that repeats a few thousand values over millions of rows (a grid cell, a status, an event type) then
    takes a pointer per row instead of a string object per row (8 bytes instead of about 60), and hashing it (maps,
    joins, ``isin``) reuses each string's cached hash. A column of distinct values (an id) is converted as it is:
    there is nothing to share. A categorical column (a snapshot's dictionary-encoded text) is decoded from its
    categories alone.

    >>> values = shared_strings(pd.Series(["440304", None, "440304"]))
    >>> values.tolist(), values[0] is values[2]
    (['440304', None, '440304'], True)
    """
    if not isinstance(values.dtype, pd.CategoricalDtype):
        if mostly_distinct(values):
            return values.to_numpy(dtype=object, na_value=None)
        values = values.astype("category")
    categories = np.append(np.asarray(values.cat.categories, dtype=object), None)  # code -1 (missing) → None
    return categories.take(values.cat.codes.to_numpy())


def mostly_distinct(values: pd.Series) -> bool:
    """Whether the column's first :data:`DISTINCT_SAMPLE` values are mostly different from each other (an id, free
    text) rather than repeated (a code, a class): only a sample, so that deciding costs nothing next to converting.
    A wrong guess costs memory or time, never a value."""
    sample = values.iloc[:DISTINCT_SAMPLE].dropna()
    return len(sample) > 0 and sample.nunique() > len(sample) // 2


def check_frame(spec: LayerSpec, frame: pd.DataFrame) -> None:
    """Raise :class:`LayerSchemaError` if a column is missing, null where it may not be, or the CRS is wrong."""
    for column in spec.columns:
        if column.name not in frame:
            raise LayerSchemaError(f"layer {spec.id!r}: column {column.name!r} is missing")
        if not column.nullable and column.kind not in SHAPE_KINDS and frame[column.name].isna().any():
            rows = frame.index[frame[column.name].isna()][:5].tolist()
            raise LayerSchemaError(f"layer {spec.id!r}: column {column.name!r} is empty in rows {rows}")
    if spec.has_geometry:
        if not isinstance(frame, gpd.GeoDataFrame) or frame.crs is None or frame.crs.to_string() != CRS:
            raise LayerSchemaError(f"layer {spec.id!r}: expected a GeoDataFrame in {CRS}")


def with_points(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """A point layer's frame with a shapely point per row made from its lon/lat (EPSG:4326): for what needs the
    points of a layer loaded without them (:attr:`LayerSpec.point_geometry`), such as the history's GeoParquet.

    >>> with_points(pd.DataFrame({"lon": [114.05], "lat": [22.54]})).geometry.iloc[0].wkt
    'POINT (114.05 22.54)'
    """
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=CRS)


def load_layer(store: Store, layer_id: str, columns: list[str] | None = None, where=None) -> pd.DataFrame:
    """Load one layer as a checked (Geo)DataFrame in EPSG:4326.

    ``columns`` selects a subset (the key and, for point layers, lon/lat are always included); ``where`` is a
    callable ``table -> SQLAlchemy condition``.
    """
    spec = LAYERS[layer_id]
    wanted = spec.column_names if columns is None else _with_required(spec, columns)
    raw = store.read_frame(layer_id, wanted, where=where)
    frame = decode_frame(spec, raw)
    if columns is None:
        check_frame(spec, frame)
    return frame


def _with_required(spec: LayerSpec, columns: list[str]) -> list[str]:
    required = [spec.key] + (["lon", "lat"] if spec.geometry == "point" else [])
    required += ["geometry"] if spec.geometry in SHAPE_KINDS and "geometry" in columns else []
    return list(dict.fromkeys(required + list(columns)))


def empty_frame(layer_id: str) -> pd.DataFrame:
    """A zero-row frame with the layer's columns (for tests and for layers a city does not have)."""
    spec = LAYERS[layer_id]
    raw = pd.DataFrame({c.name: pd.Series([], dtype=object) for c in spec.columns})
    if spec.geometry in SHAPE_KINDS:
        raw["geometry"] = np.array([], dtype=object)
    return decode_frame(spec, raw)
