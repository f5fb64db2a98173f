"""Columnar snapshots of a loaded city: a restart reads Arrow files instead of the database.

Reading 3 million orders row by row from SQLite takes over a minute; the same columns from an Arrow IPC (Feather)
file take a second. A snapshot holds every loaded layer as stored (:func:`layers.load.encode_frame`'s columns), a
manifest of the store's layer versions it was taken at, and the transition-log mark of its orders. Text that repeats
(grid cells, statuses, event types) is stored dictionary-encoded, so that reading it creates one Python string per
distinct value rather than per row (:func:`layers.load.shared_strings`). Arrow IPC rather than Parquet: LZ4 blocks
decompress several times faster than Parquet's pages decode (3 million orders: 0.25 s against 0.6–2.6 s), for files
about twice as large. It is only a cache: the store stays the
source of truth. A snapshot is used when its units are the store's units (same version, same write time: the same
city) and no layer in it is newer than the store's; the loaded city then carries the snapshot's versions, so the
next version check reads what changed since, by the same incremental paths as any change (orders acted on since,
readings arrived since) or by a full load.

Each layer's file also holds the columns the city derives from the layers (:class:`layers.city.City`: every row's
grid cell position, the orders' category, the readings' cell and kind): at the city scale deriving them again took
2.6–3.5 s of every start, reading them takes a fraction of that. They are used only when the snapshot's city was
read whole from it and they are the columns this code derives (else the city derives them again, as after a load).

Beside the layers, a snapshot folder may keep tables computed from its city (:func:`write_computed`): the window
tables and sparklines of the first page, so that a start of the same city does not compute them again. Each is
tagged with what it was made from, and read only by a reader that gives the same tag.

The folder is the store's ``snapshot_dir`` if it was given one (the server's settings: ``CITYTWIN_SNAPSHOT_DIR``), else
beside an SQLite file (``citytwin.snapshot/`` for
``citytwin.sqlite``), else ``data/snapshots/<hash of the URL>/``. A snapshot is written to a new folder and renamed
into place, so a reader never sees half of one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
from sqlalchemy.engine import make_url

from layers.city import City, build_hierarchy, in_time_order
from layers.load import decode_frame, encode_frame, load_layer, mostly_distinct
from layers.city_settings import timezone as city_timezone
from layers.specs import LAYERS
from layers.store import DEFAULT_DATABASE, Store

# 1: Parquet files; 2: Arrow IPC without the derived columns (either is read as a missing snapshot: the next start
# loads the store and writes a new one). A change of what a derived column holds (layers.city.City.__post_init__)
# must step it too: a snapshot keeps the columns as they were derived when it was written.
FORMAT = 3


def snapshot_folder(store: Store) -> Path:
    if store.snapshot_dir is not None:
        return store.snapshot_dir
    url = make_url(str(store.url))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).with_suffix(".snapshot")
    safe = url.render_as_string(hide_password=True)
    return DEFAULT_DATABASE.parent / "snapshots" / hashlib.sha1(safe.encode()).hexdigest()[:12]


def _stamps(store: Store) -> dict[str, list]:
    return {layer: [info["version"], info["written_at"]] for layer, info in store.layer_versions().items()}


def write_snapshot(city: City, store: Store, log_mark: int, stamps: dict | None = None) -> Path:
    """Write ``city`` (loaded at ``stamps``, the store's layer versions then; read now if not given) as a snapshot."""
    stamps = stamps if stamps is not None else {layer: list(stamp) for layer, stamp in _stamps(store).items()
                                                 if city.versions.get(layer) == stamp[0]}
    folder = snapshot_folder(store)
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = folder.with_name(f"{folder.name}.new-{os.getpid()}-{time.monotonic_ns()}")
    fresh.mkdir()
    try:
        layers = {"units": city.units, **city.layers}
        written, derived = {}, {}
        for layer_id, frame in layers.items():
            if layer_id not in stamps:
                continue  # a layer whose stored version the city does not match: read from the store next time
            stored, derived[layer_id] = with_derived(layer_id, frame)
            feather.write_feather(stored_table(stored), fresh / f"{layer_id}.arrow", compression="lz4")
            written[layer_id] = stamps[layer_id]
        (fresh / "manifest.json").write_text(json.dumps(
            {"format": FORMAT, "stamps": written, "log_mark": int(log_mark), "written_at": time.time(),
             "derived": derived}))
        _carry_computed(folder, fresh)
        old = folder.with_name(f"{folder.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        if folder.exists():
            folder.rename(old)
        fresh.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    return folder


def _carry_computed(folder: Path, fresh: Path) -> None:
    """Link the computed frames kept beside the snapshot being replaced into the new one: each is tagged with what
    it was made from, so one that no longer fits is not used, and one that does (the tile index of unchanged
    buildings, the tables of the generation being served) is not computed again by the next start."""
    for path in folder.glob("computed-*.arrow"):
        try:
            os.link(path, fresh / path.name)
        except OSError:  # another file system, or the old folder replaced meanwhile: computed again if needed
            pass


def read_snapshot(store: Store, layer_ids) -> tuple[City, int] | None:
    """The city as of the last snapshot of this store and its log mark, or None when there is none that fits."""
    folder = snapshot_folder(store)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    stamps, current = manifest.get("stamps", {}), _stamps(store)
    if manifest.get("format") != FORMAT or stamps.get("units") != current.get("units"):
        return None  # another city (or none) in the store now
    if any(layer not in current or stamp[0] > current[layer][0] for layer, stamp in stamps.items()):
        return None
    if any(layer not in stamps and layer in current for layer in layer_ids):
        return None  # a layer the snapshot lacks: simpler to load the whole city
    derived_dtypes = manifest.get("derived", {})
    try:
        frames = {layer: decoded_with_derived(LAYERS[layer], read_stored(folder / f"{layer}.arrow"),
                                              derived_dtypes.get(layer, {}))
                  for layer in ["units", *layer_ids] if layer in stamps}
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None
    whole = all(layer in frames for layer in layer_ids)
    for layer in layer_ids:
        if layer not in frames:  # never written: empty in the store too
            frames[layer] = load_layer(store, layer)
    units = frames.pop("units").set_index("code", drop=False)
    hierarchy = build_hierarchy(units)
    # A snapshot written before the readings were kept in time order has them by sensor.
    frames = {layer: in_time_order(layer, frame) for layer, frame in frames.items()}
    versions = {layer: stamp[0] for layer, stamp in stamps.items()}
    written_at = max((info[1] for info in current.values()), default=None)
    derived = whole and derives_the_same(frames, units, hierarchy)
    if not derived:  # derived again from the stored columns alone, as after a load from the store
        frames = {layer: frame[stored_columns(layer, frame)] for layer, frame in frames.items()}
    city = City(units=units, hierarchy=hierarchy, layers=frames, versions=versions,
                written_at=None if written_at is None else
                pd.Timestamp(written_at, unit="s", tz="UTC").tz_convert(city_timezone()), derived=derived)
    return city, int(manifest.get("log_mark", 0))


def with_derived(layer_id: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """A layer's stored columns (:func:`layers.load.encode_frame`) and after them the columns the city derived; and
    the derived columns' pandas dtypes (Arrow keeps text, not whether pandas held it as objects or as ``str``)."""
    stored = encode_frame(layer_id, frame)
    kept, dtypes = set(stored_columns(layer_id, frame)), {}
    for name in frame.columns:
        if name not in kept:
            stored[name] = frame[name].to_numpy()
            dtypes[name] = str(frame[name].dtype)
    return stored, dtypes


def decoded_with_derived(spec, raw: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """A layer's frame from its snapshot file (:func:`with_derived`): its stored columns decoded as a load from the
    store decodes them, then the derived ones in the dtypes ``dtypes`` names, as the city derived them (text with
    NaN where missing: what :func:`layers.city.looked_up` and ``Series.map`` give). A derived column without a dtype
    is left out (the city then derives them all again: :func:`derives_the_same`)."""
    frame = decode_frame(spec, raw)
    for name in raw.columns:
        if name not in frame and name not in spec.column_names and name in dtypes:
            frame[name] = as_dtype(raw[name], pd.api.types.pandas_dtype(dtypes[name]))
    return frame


def as_dtype(values: pd.Series, dtype) -> pd.Series:
    """``values`` in ``dtype``; a categorical (dictionary-encoded text) from its categories alone, missing as NaN.

    >>> as_dtype(pd.Series(["G1", None, "G1"], dtype="category"), object).tolist()
    ['G1', nan, 'G1']
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        categories = np.asarray(values.cat.categories, dtype=object)
        if dtype == object:  # one string object per distinct value, shared by its rows
            decoded = np.append(categories, np.nan).take(codes)  # code -1 (missing) → NaN
        else:
            decoded = pd.array(categories, dtype=dtype).take(codes, allow_fill=True)
        return pd.Series(decoded, index=values.index, dtype=dtype)
    if values.dtype == dtype:
        return values
    if dtype == object:
        return pd.Series(values.to_numpy(dtype=object, na_value=np.nan), index=values.index, dtype=object)
    return values.astype(dtype)


def stored_columns(layer_id: str, frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` a load from the store gives (the spec's and the geometry), in their order."""
    spec = set(LAYERS[layer_id].column_names) | {"geometry"}
    return [name for name in frame.columns if name in spec]


def derives_the_same(frames: dict[str, pd.DataFrame], units: pd.DataFrame, hierarchy: pd.DataFrame) -> bool:
    """Whether every frame read carries exactly the columns this code's :class:`City` would derive, in its order:
    found by deriving them on the frames' first row (a snapshot written by another release of the derivation, or
    missing a column, is derived again instead)."""
    sample = {layer: frame.iloc[:1][stored_columns(layer, frame)] for layer, frame in frames.items()}
    derived = City(units=units, hierarchy=hierarchy, layers={k: v.copy() for k, v in sample.items()}).layers
    return all(list(derived[layer].columns) == list(frame.columns) for layer, frame in frames.items())


def stored_table(stored: pd.DataFrame) -> pa.Table:
    """A layer's stored columns as an Arrow table, text of repeated values dictionary-encoded."""
    table = pa.Table.from_pandas(stored, preserve_index=False)
    for position, name in enumerate(table.column_names):
        column = table.column(position)
        if (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) \
                and not mostly_distinct(stored[name]):
            table = table.set_column(position, name, pc.dictionary_encode(column))
    return table


# Arrow's booleans as pandas' masked booleans: a column with missing values then converts without going through
# Python objects (True/False/None, then ``boolean`` again in layers.load.decode_frame: 0.3 s per million rows).
MASKED_TYPES = {pa.bool_(): pd.BooleanDtype()}


def read_stored(path: Path) -> pd.DataFrame:
    """A layer's stored columns from a snapshot file: dictionary-encoded text as categoricals."""
    table = feather.read_table(path)
    # self_destruct: each column's Arrow memory is released once converted (a lower peak at the city scale).
    return table.to_pandas(types_mapper=MASKED_TYPES.get, split_blocks=True, self_destruct=True)


MADE_FROM = b"citytwin.made_from"


def write_computed(store: Store, name: str, frame: pd.DataFrame, made_from: str) -> bool:
    """Keep ``frame``, computed from the snapshot's city, in the snapshot folder under ``name``, tagged
    ``made_from`` (whatever the reader must match: the generation, the code). Written to a new file and renamed,
    so a reader never sees half of one; False when there is no snapshot to keep it beside."""
    folder = snapshot_folder(store)
    if not (folder / "manifest.json").exists():
        return False
    if computed_tag(folder / f"computed-{name}.arrow") == made_from.encode():
        return True  # kept already (a start that read it)
    table = pa.Table.from_pandas(frame)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), MADE_FROM: made_from.encode()})
    fresh = folder / f".computed-{name}.new-{os.getpid()}-{time.monotonic_ns()}"
    try:
        feather.write_feather(table, fresh, compression="lz4")
        os.replace(fresh, folder / f"computed-{name}.arrow")
    except OSError:  # the folder was replaced by a newer snapshot meanwhile: nothing to keep this beside
        fresh.unlink(missing_ok=True)
        return False
    return True


def read_computed(store: Store, name: str, made_from: str) -> pd.DataFrame | None:
    """The frame :func:`write_computed` kept under ``name``, or None when there is none made from ``made_from``."""
    try:
        table = feather.read_table(snapshot_folder(store) / f"computed-{name}.arrow")
    except (OSError, pa.ArrowException):
        return None
    if (table.schema.metadata or {}).get(MADE_FROM) != made_from.encode():
        return None
    return table.to_pandas()


def computed_tag(path: Path) -> bytes | None:
    """The ``made_from`` tag of a kept frame, from the file's schema alone; None without a readable file."""
    try:
        with pa.memory_map(str(path)) as source:
            return (pa.ipc.open_file(source).schema.metadata or {}).get(MADE_FROM)
    except (OSError, pa.ArrowException):
        return None
