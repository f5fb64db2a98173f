"""History as partitioned columnar files: the event layers by month and city, as (Geo)Parquet, for a year and more.

The store stays the source of truth; :func:`write_history` copies it into files that pandas, pyarrow and Dask read
alike, so that a year of orders (37 million at Shenzhen's rate) can be computed partition by partition
(:mod:`metrics.distributed`) instead of as one frame in one process::

    ROOT/orders/city=440300/month=2026-11/part.parquet     GeoParquet (the orders' points)
    ROOT/readings/city=440300/month=2026-11/part.parquet   Parquet (hourly readings)
    ROOT/alarms/city=440300/month=2026-11/part.parquet     Parquet
    ROOT/context/city=440300/<layer>.parquet               the layers the partitions are computed against
    ROOT/manifest.json                                     what was written, when, from which store state

The directories are Hive-style (``key=value``): ``pd.read_parquet(ROOT / "orders")`` and
``dask.dataframe.read_parquet(ROOT / "orders")`` read every partition with ``city`` and ``month`` as columns;
``dask_geopandas.read_parquet`` reads the orders' geometry. Months are local (Asia/Shanghai) calendar months of the
layer's time column (orders by intake, readings by hour, alarms by when they were raised).

Written incrementally: a closed month (every month before the one the data end in) is written once; the open month
is written again at every run. A closed month is written again only when the store says it changed: its row count
differs from the one written, or orders received in it were acted on since (the order-transition log), or the
orders were replaced as a whole (the log started anew). ``rebuild=True`` writes every month again.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import func, select

from layers.load import load_layer, with_points
from layers.specs import CITY_TIMEZONE, LAYERS
from layers.store import METADATA, Store

# The event layers kept as history, each with the time column that places a row in a month.
HISTORY_LAYERS = {"orders": "received_at", "readings": "ts", "alarms": "raised_at"}
# What a partition's indicators are computed against (see metrics.distributed): the unit hierarchy, the sensors that
# place readings and alarms on the grid, the event types that give orders their category, and the buildings the
# per-resident figures divide by. Small next to the history, copied whole at every run.
CONTEXT_LAYERS = ("units", "sensors", "event_types", "buildings")
# Columns no indicator reads: left out when a partition is read for the metrics (the citizen's words, the point,
# the rows' unique ids: the costliest columns to read). A formula that needs one fails on its absence, loudly.
NOT_FOR_METRICS = ("geometry", "description", "address", "lon", "lat", "order_id", "alarm_id", "message")
# Columns of few distinct values, read as categoricals (dictionary-encoded in the files): a month's three million
# grid codes and event types are then integer codes, cheap to read and to split families by.
CATEGORICAL = ("event_type", "channel", "department", "grid_code", "status", "sensor_id", "kind", "severity")
MANIFEST = "manifest.json"
PART = "part.parquet"


class HistoryError(ValueError):
    """The history files are missing, unreadable or do not match what they are used with."""


@dataclass(frozen=True)
class Partition:
    """One month of one layer of one city."""

    layer: str
    city: str
    month: str  # "YYYY-MM", local time
    path: Path
    context: str = ""  # whose context it is computed against: the city's, or its province's ("" = the city's)

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(f"{self.month}-01").tz_localize(CITY_TIMEZONE)

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.DateOffset(months=1)

    def overlaps(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        return self.start < end and self.end > start

    def read(self, columns: list[str] | None = None, categorical: bool = False) -> pd.DataFrame:
        """The partition as a pandas frame (no geometry: see :meth:`History.read_geo` for the points); with
        ``categorical``, the :data:`CATEGORICAL` columns as pandas categoricals."""
        if not categorical:
            return pd.read_parquet(self.path, columns=columns)
        names = columns or pq.read_schema(self.path).names
        return pd.read_parquet(self.path, columns=columns, read_dictionary=[c for c in CATEGORICAL if c in names])

    def metric_columns(self) -> list[str]:
        names = pq.read_schema(self.path).names
        return [n for n in names if n not in NOT_FOR_METRICS]

    def bytes_of(self, columns: list[str]) -> int:
        """Compressed bytes of ``columns`` in the file: what reading them costs."""
        meta = pq.ParquetFile(self.path).metadata
        wanted = set(columns)
        return sum(meta.row_group(g).column(c).total_compressed_size
                   for g in range(meta.num_row_groups) for c in range(meta.num_columns)
                   if meta.row_group(g).column(c).path_in_schema in wanted)


def month_of(instant: pd.Timestamp) -> str:
    return instant.tz_convert(CITY_TIMEZONE).strftime("%Y-%m")


def months_between(first: pd.Timestamp, last: pd.Timestamp) -> list[str]:
    """Every month from the one of ``first`` to the one of ``last``, both included."""
    periods = pd.period_range(month_of(first), month_of(last), freq="M")
    return [str(p) for p in periods]


class History:
    """The history files under ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"History({str(self.root)!r})"

    @property
    def manifest(self) -> dict:
        path = self.root / MANIFEST
        if not path.exists():
            return {"layers": {}, "cities": []}
        return json.loads(path.read_text())

    @property
    def as_of(self) -> pd.Timestamp | None:
        """The latest instant the history holds (when it was written or generated)."""
        value = self.manifest.get("as_of")
        return None if value is None else pd.Timestamp(value).tz_convert(CITY_TIMEZONE)

    @property
    def cities(self) -> list[str]:
        return list(self.manifest.get("cities", []))

    @property
    def context_key(self) -> str:
        """Under which unit the context was written: the one city, or a province history's province."""
        return self.manifest.get("context") or self.city()

    def city(self) -> str:
        """The one city of this history (a province's history has several: name one)."""
        cities = self.cities
        if len(cities) != 1:
            raise HistoryError(f"{self.root}: expected the history of one city, found {cities or 'none'} "
                               f"(run write_history first)")
        return cities[0]

    def partitions(self, layer: str, city: str | None = None) -> list[Partition]:
        """The layer's monthly partitions (of ``city``, or of every city), oldest first."""
        if layer not in HISTORY_LAYERS:
            raise HistoryError(f"{layer!r} is not a history layer; they are {', '.join(HISTORY_LAYERS)}")
        manifest = self.manifest
        context = manifest.get("context", "")
        by_city = manifest["layers"].get(layer, {})
        chosen = [city] if city else sorted(by_city) if context else [self.city()]
        return sorted((Partition(layer, c, month, self.partition_path(layer, c, month), context)
                       for c in chosen for month in by_city.get(c, {})), key=lambda p: (p.month, p.city))

    def partition_path(self, layer: str, city: str, month: str) -> Path:
        return self.root / layer / f"city={city}" / f"month={month}" / PART

    def context_path(self, city: str, layer: str) -> Path:
        return self.root / "context" / f"city={city}" / f"{layer}.parquet"

    def read(self, layer: str, columns: list[str] | None = None, months: list[str] | None = None,
             city: str | None = None) -> pd.DataFrame:
        """The layer's rows of ``months`` (default: all) as one pandas frame (small histories and tests)."""
        parts = [p for p in self.partitions(layer, city) if months is None or p.month in months]
        frames = [p.read(columns) for p in parts]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def read_geo(self, layer: str, city: str | None = None) -> gpd.GeoDataFrame:
        """The orders with their points (GeoParquet), all months: for spatial work on a small history."""
        return pd.concat([gpd.read_parquet(p.path) for p in self.partitions(layer, city)], ignore_index=True)

    def dask_frame(self, layer: str, columns: list[str] | None = None):
        """The layer as a ``dask.dataframe`` (one partition per file, ``city`` and ``month`` as columns)."""
        import dask.dataframe as dd
        return dd.read_parquet(str(self.root / layer), columns=columns)

    def context(self, city: str | None = None, shapes: bool = True) -> dict[str, pd.DataFrame]:
        """The context layers of ``city`` (units, buildings and sensors as GeoDataFrames; without ``shapes`` only
        the units: decoding 640,000 building outlines no partition needs takes seconds)."""
        city = city or self.context_key
        frames = {}
        for layer in CONTEXT_LAYERS:
            path = self.context_path(city, layer)
            if not path.exists():
                raise HistoryError(f"{path} is missing (run write_history)")
            if LAYERS[layer].geometry == "none":
                frames[layer] = pd.read_parquet(path)
            elif shapes or layer == "units":
                frames[layer] = gpd.read_parquet(path)
            else:
                frames[layer] = pd.read_parquet(path, columns=[n for n in pq.read_schema(path).names
                                                               if n != "geometry"])
        frames["units"] = frames["units"].set_index("code", drop=False)
        return frames

    # --- writing --------------------------------------------------------------------------------------------------

    def write_partition(self, layer: str, city: str, month: str, frame: pd.DataFrame) -> int:
        """Write one month (replacing what was there) and record it in the manifest; returns its size in bytes.

        Written to a temporary file first and renamed, so a reader never sees half a partition."""
        path = self.partition_path(layer, city, month)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{PART}.{os.getpid()}.tmp")
        frame = frame.reset_index(drop=True)
        if LAYERS[layer].geometry == "point" and not isinstance(frame, gpd.GeoDataFrame):
            frame = with_points(frame)  # loaded without points (the orders): GeoParquet's readers want them
        if isinstance(frame, gpd.GeoDataFrame):
            frame.to_parquet(temporary, index=False)  # GeoParquet: geometry as WKB with its CRS in the metadata
        else:
            frame.to_parquet(temporary, index=False)
        os.replace(temporary, path)
        size = path.stat().st_size
        self._record(layer, city, month, {"rows": len(frame), "bytes": size, "written_at": time.time()})
        return size

    def remove_partition(self, layer: str, city: str, month: str) -> None:
        shutil.rmtree(self.partition_path(layer, city, month).parent, ignore_errors=True)
        manifest = self.manifest
        manifest["layers"].get(layer, {}).get(city, {}).pop(month, None)
        self._save(manifest)

    def write_context(self, city: str, frames: dict[str, pd.DataFrame]) -> None:
        for layer, frame in frames.items():
            path = self.context_path(city, layer)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            frame.reset_index(drop=True).to_parquet(temporary, index=False)
            os.replace(temporary, path)
        manifest = self.manifest
        if city not in manifest.setdefault("cities", []):
            manifest["cities"].append(city)
        self._save(manifest)

    def set(self, **values) -> None:
        """Record facts about the history in the manifest (the store's state it was written from)."""
        manifest = self.manifest
        manifest.update(values)
        self._save(manifest)

    def _record(self, layer: str, city: str, month: str, entry: dict) -> None:
        manifest = self.manifest
        manifest["layers"].setdefault(layer, {}).setdefault(city, {})[month] = entry
        if city not in manifest.setdefault("cities", []):
            manifest["cities"].append(city)
        self._save(manifest)

    def _save(self, manifest: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.root / f".{MANIFEST}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(temporary, self.root / MANIFEST)


# --- from the store ---------------------------------------------------------------------------------------------

@dataclass
class SyncReport:
    written: list[tuple[str, str]]   # (layer, month) written
    kept: list[tuple[str, str]]      # closed months already written and unchanged
    removed: list[tuple[str, str]]   # months no longer in the store
    open_month: str | None
    seconds: float

    def __str__(self) -> str:
        return (f"history: {len(self.written)} month(s) written, {len(self.kept)} kept, {len(self.removed)} removed "
                f"(open month {self.open_month}) in {self.seconds:.1f} s")


def _epoch(instant: pd.Timestamp) -> int:
    return int(instant.tz_convert("UTC").timestamp())


def _time_range(store: Store, layer: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    table = store.table(layer)
    column = table.c[HISTORY_LAYERS[layer]]
    with store.engine.connect() as conn:
        first, last = conn.execute(select(func.min(column), func.max(column))).one()
    if first is None:
        return None
    return tuple(pd.Timestamp(int(v), unit="s", tz="UTC").tz_convert(CITY_TIMEZONE) for v in (first, last))


def _count_in(store: Store, layer: str, start: pd.Timestamp, end: pd.Timestamp) -> int:
    table = store.table(layer)
    column = table.c[HISTORY_LAYERS[layer]]
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)
                            .where(column >= _epoch(start), column < _epoch(end))).scalar_one()


def _touched_order_months(store: Store, after_transition: int) -> tuple[set[str], int, bool]:
    """Months (of intake) of the orders acted on since transition ``after_transition``; the log's last id; and
    whether the log started anew (the orders were replaced, so every month must be written again)."""
    transitions = METADATA.tables["order_transitions"]
    orders = store.table("orders")
    with store.engine.connect() as conn:
        last = conn.execute(select(func.max(transitions.c.transition_id))).scalar_one_or_none() or 0
        if last < after_transition:
            return set(), last, True
        received = conn.execute(
            select(func.distinct(orders.c.received_at))
            .join(transitions, transitions.c.order_id == orders.c.order_id)
            .where(transitions.c.transition_id > after_transition)).scalars().all()
    months = {month_of(pd.Timestamp(int(v), unit="s", tz="UTC")) for v in received}
    return months, last, False


def write_history(store: Store, root: str | os.PathLike, rebuild: bool = False, progress: bool = False
                  ) -> SyncReport:
    """Write the store's event layers into monthly partitions under ``root`` (see the module's docstring for what
    is written again and what is kept)."""
    started = time.perf_counter()
    history = History(root)
    units = load_layer(store, "units")
    cities = sorted(units.loc[units["level"] == "city", "code"])
    if not cities:
        raise HistoryError("the store holds no city: nothing to write a history of")
    # The context is the whole hierarchy, written once under the top unit (the city, or a province store's
    # province): every partition of every city is computed against it, so that their grid sums add up.
    top = units.loc[units["parent_code"].isna(), "code"]
    context_key = top.iloc[0] if len(top) == 1 else cities[0]
    if rebuild and history.root.exists():
        for layer in HISTORY_LAYERS:
            shutil.rmtree(history.root / layer, ignore_errors=True)
        (history.root / MANIFEST).unlink(missing_ok=True)
    manifest = history.manifest
    ranges = {layer: _time_range(store, layer) for layer in HISTORY_LAYERS}
    ends = [r[1] for r in ranges.values() if r is not None]
    open_month = month_of(max(ends)) if ends else None

    touched, cursor, replaced = _touched_order_months(store, int(manifest.get("transition_cursor", 0)))
    written, kept, removed = [], [], []
    city_of_grid = _city_of_grid(units) if len(cities) > 1 else None
    sensor_grid = (load_layer(store, "sensors").set_index("sensor_id")["grid_code"]
                   if city_of_grid is not None else None)
    for layer, span in ranges.items():
        recorded = {city: manifest["layers"].get(layer, {}).get(city, {}) for city in cities}
        months = months_between(*span) if span is not None else []
        for city in cities:
            for month in sorted(set(recorded[city]) - set(months)):
                history.remove_partition(layer, city, month)
                removed.append((layer, month))
        for month in months:
            start = pd.Timestamp(f"{month}-01").tz_localize(CITY_TIMEZONE)
            end = start + pd.DateOffset(months=1)
            entries = [recorded[city].get(month) for city in cities]
            closed = month != open_month
            if closed and None not in entries and not (layer == "orders" and (replaced or month in touched)):
                if _count_in(store, layer, start, end) == sum(entry["rows"] for entry in entries):
                    kept.append((layer, month))
                    continue
            column = HISTORY_LAYERS[layer]
            frame = load_layer(store, layer, where=lambda table, c=column, s=_epoch(start), e=_epoch(end):
                               (table.c[c] >= s) & (table.c[c] < e))
            if city_of_grid is None:
                history.write_partition(layer, cities[0], month, frame)
            else:  # a province: each city's rows in a partition of their own (by their grid cell's city)
                grid = frame["grid_code"] if "grid_code" in frame else frame["sensor_id"].map(sensor_grid)
                city_of_row = grid.map(city_of_grid).to_numpy()
                for city in cities:
                    history.write_partition(layer, city, month, frame[city_of_row == city])
            written.append((layer, month))
            if progress:
                print(f"  {layer} {month}: {len(frame):,} rows")
    history.write_context(context_key, {layer: load_layer(store, layer) for layer in CONTEXT_LAYERS})
    history.set(context=context_key, transition_cursor=cursor, open_month=open_month, as_of=str(max(ends)) if ends else None,
                store_versions={k: v["version"] for k, v in store.layer_versions().items()})
    return SyncReport(written, kept, removed, open_month, time.perf_counter() - started)


def _city_of_grid(units: pd.DataFrame) -> pd.Series:
    """Grid code → the code of its city, by the units' parents."""
    parent = units.set_index("code")["parent_code"]
    level = units.set_index("code")["level"]
    grids = units.loc[units["level"] == "grid", "code"]
    current = pd.Series(grids.to_numpy(), index=grids.to_numpy())
    while (current.map(level) != "city").any():
        current = current.where(current.map(level) == "city", current.map(parent))
    return current


def main(argv: list[str] | None = None) -> int:
    """``python -m layers.history ROOT [--database-url URL] [--rebuild]``: write the store's history files."""
    import argparse

    from layers.store import default_database_url
    parser = argparse.ArgumentParser(prog="python -m layers.history", description=main.__doc__)
    parser.add_argument("root", help="directory of the history files")
    parser.add_argument("--database-url", default=None, help=f"SQLAlchemy URL (default: {default_database_url()})")
    parser.add_argument("--rebuild", action="store_true", help="write every month again")
    args = parser.parse_args(argv)
    print(write_history(Store(args.database_url), args.root, rebuild=args.rebuild, progress=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
