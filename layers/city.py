"""A loaded city: every layer as a checked frame, plus the unit hierarchy the metrics roll up along.

:func:`load_city` is what the metrics and the dashboard start from. It loads each layer once, and gives every
row of the event layers (orders, sensors, readings, alarms) its grid cell, from which every other level follows by
the hierarchy table: ``hierarchy`` has one row per grid cell and one column per level with that cell's unit there.
"""
from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass, field
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
from tqdm import tqdm

from layers.city_settings import activate, checked
from layers.city_settings import timezone as city_timezone
from layers.load import load_layer
from layers.retention import hourly_readings, hourly_readings_arrived
from layers.specs import ALL_LEVELS, LAYERS, LEVELS, ORDER_STAGES, PROVINCE
from layers.store import READINGS_BATCHES, Store


@dataclass
class City:
    units: gpd.GeoDataFrame
    hierarchy: pd.DataFrame
    layers: dict[str, pd.DataFrame]
    versions: dict[str, int] = field(default_factory=dict)
    load_seconds: dict[str, float] = field(default_factory=dict)
    written_at: pd.Timestamp | None = None  # when the store last wrote a layer
    # Facts the metrics derive from the layers, shared by indicators (see metrics.spec.memoised).
    memo: dict = field(default_factory=dict, repr=False, compare=False)
    # The layers already carry the derived columns below (a city patched from a loaded one, or read from a snapshot
    # that keeps them: layers.snapshot): do not redo them.
    derived: bool = field(default=False, repr=False, compare=False)
    # Live mode: "now" is the wall clock (set by whoever builds the generation), not the newest record.
    clock: pd.Timestamp | None = None
    # Made from the city before by reading some layers' newest rows again (with_sensor_layers_read_again): layer →
    # the instant from which its rows were read again; its rows before it are the previous city's, as they were.
    # What lets a refresh take in only those rows (metrics.incremental.WindowSums). Empty for a city loaded whole.
    read_again_since: dict = field(default_factory=dict, repr=False, compare=False)
    # Layer → the store's (version, last arrival number) read just before the layer was read (Store.arrival_mark):
    # from there on, only the rows numbered since need reading again. Empty when unknown (a snapshot): read whole.
    arrival_marks: dict = field(default_factory=dict, repr=False, compare=False)
    # Facts about one layer's frame (its newest and oldest instants, whether its rows are in time order), each kept
    # with the frame it is of (:meth:`layer_fact`): a city patched from this one shares most of its frames and takes
    # their facts along (:func:`facts_of_shared`) instead of scanning 3 million orders again at every refresh.
    layer_facts: dict = field(default_factory=dict, repr=False, compare=False)
    # A scratch city made from this one with some layers replaced (a few rows each): the facts about the frames it
    # shares with ``facts_from`` are that city's, computed once there for every scratch city.
    facts_from: "City | None" = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.derived:
            return
        # Readings and alarms reach the map through their sensor's grid cell; readings carry its kind too.
        if "sensors" in self.layers:
            by_sensor = self.layers["sensors"].set_index("sensor_id")
            for name in ("readings", "alarms"):
                if name in self.layers:
                    sensor = self.layers[name]["sensor_id"]
                    self.layers[name]["grid_code"] = looked_up(sensor, by_sensor["grid_code"])
            if "readings" in self.layers:
                readings = self.layers["readings"]
                readings["kind"] = looked_up(readings["sensor_id"], by_sensor["kind"])
        # Every row that has a grid cell also gets the cell's position in the hierarchy table: the metrics sum
        # millions of rows per cell with np.bincount on it instead of hashing codes for every indicator.
        grids = pd.Index(self.hierarchy["grid"])
        for frame in self.layers.values():
            if "grid_code" in frame:
                frame["grid_index"] = grids.get_indexer(frame["grid_code"])
        # Orders carry their event type's category (from the responsibility list) for the per-category figures.
        if "orders" in self.layers and "event_types" in self.layers:
            category = self.layers["event_types"].set_index("code")["category"]
            self.layers["orders"]["category"] = self.layers["orders"]["event_type"].map(category)

    def __getitem__(self, layer_id: str) -> pd.DataFrame:
        return self.layers[layer_id]

    @cached_property
    def as_of(self) -> pd.Timestamp:
        """The instant the city is shown at. In live mode the clock the generation was made at; otherwise the
        latest instant the data knows of: the last order (or step of one: an operator's dispatch, a citizen's
        evaluation), reading or alarm; for a city without any (an import of boundaries and buildings only), when
        its layers were written. Computed once per city (a max over millions of orders costs ~70 ms)."""
        if self.clock is not None:
            return self.clock
        order_times = [("orders", f"{stage}_at") for stage in ORDER_STAGES]
        return self._newest((*order_times, ("readings", "ts"), ("alarms", "raised_at")))

    @cached_property
    def sensors_as_of(self) -> pd.Timestamp:
        """The instant the sensor layers are judged at: the clock in live mode, else their own newest record (a
        reading, an alarm raised or cleared, a sensor's last report). Sensors keep their own freshness so that an
        operator acting on an order (which moves :attr:`as_of` in replay mode) changes no sensor indicator."""
        if self.clock is not None:
            return self.clock
        sources = (("readings", "ts"), ("alarms", "raised_at"), ("alarms", "cleared_at"), ("sensors", "last_seen_at"))
        if not any(name in self.layers and len(self.layers[name]) for name, _ in sources):
            return self.as_of
        return self._newest(sources)

    def layer_as_of(self, layer_ids) -> pd.Timestamp:
        """The instant an indicator reading ``layer_ids`` is computed at: the sensors' own when it reads only sensor
        layers (and no orders), the city's otherwise."""
        layer_ids = set(layer_ids)
        if layer_ids & set(SENSOR_LAYERS) and "orders" not in layer_ids:
            return self.sensors_as_of
        return self.as_of

    def _newest(self, sources) -> pd.Timestamp:
        candidates = [self.extreme(name, column, "max") for name, column in sources
                      if name in self.layers and len(self.layers[name]) and column in self.layers[name]]
        candidates = [c for c in candidates if pd.notna(c)]
        if candidates:
            return max(candidates)
        if self.written_at is not None:
            return self.written_at
        return pd.Timestamp.now(tz=city_timezone()).floor("s")

    @cached_property
    def starts_at(self) -> pd.Timestamp | None:
        """The earliest instant the event data cover (first order, reading or alarm); None without any. Computed
        once per city, like :attr:`as_of` (a min over millions of orders; a live refresh asks four times)."""
        candidates = [self.extreme(name, column, "min") for name, column in
                      (("orders", "received_at"), ("readings", "ts"), ("alarms", "raised_at"))
                      if name in self.layers and len(self.layers[name])]
        candidates = [c for c in candidates if pd.notna(c)]
        return min(candidates) if candidates else None

    def layer_fact(self, layer: str, key, compute):
        """``compute(frame)`` of the layer's frame, remembered with that frame: computed again only when the layer
        is another frame (facts about a frame never change: a generation's frames are not written to)."""
        frame = self.layers[layer]
        source = self.facts_from
        if source is not None and source.layers.get(layer) is frame:
            return source.layer_fact(layer, key, compute)
        known = self.layer_facts.get((layer, key))
        if known is not None and known[0] is frame:
            return known[1]
        value = compute(frame)
        self.layer_facts[(layer, key)] = (frame, value)
        return value

    def extreme(self, layer: str, column: str, how: str):
        """The layer's newest (``how="max"``) or oldest (``"min"``) value of a column, missing values skipped: the
        last or first row's when the rows are in the order of that column (:meth:`in_time_order`)."""
        def compute(frame):
            if self.in_time_order(layer) and column == LAYERS[layer].time_column and len(frame):
                return frame[column].iloc[-1 if how == "max" else 0]
            return getattr(frame[column], how)()
        return self.layer_fact(layer, (how, column), compute)

    def in_time_order(self, layer: str) -> bool:
        """Whether the layer's rows are sorted by its time column (no missing instant): then a time window's rows
        are a slice of the frame, found by a binary search (see :func:`time_slice`)."""
        column = LAYERS[layer].time_column if layer in LAYERS else None
        if not column:
            return False
        return self.layer_fact(layer, "in_time_order", lambda frame: column in frame and _sorted(frame[column]))

    @property
    def version_key(self) -> tuple:
        return tuple(sorted(self.versions.items()))

    def unit(self, code: str) -> pd.Series:
        return self.units.loc[code]

    def children(self, code: str) -> gpd.GeoDataFrame:
        return self.units[self.units["parent_code"] == code]

    def units_within(self, code: str) -> frozenset:
        """``code`` and every unit below it (its streets, communities and grid cells, for a district): what an
        account bound to ``code`` may see. Empty for an unknown code."""
        if code not in self.units.index:
            return frozenset()
        levels = list(self.hierarchy.columns)
        below = levels[levels.index(self.units.at[code, "level"]):]
        rows = self.hierarchy[(self.hierarchy[below[0]] == code).to_numpy()]
        return frozenset(code for level in below for code in rows[level].unique())

    def lineage(self, code: str) -> list[str]:
        """The codes from the city down to ``code``."""
        chain = []
        while code is not None and code in self.units.index:
            chain.append(code)
            code = self.units.at[code, "parent_code"]
        return chain[::-1]


def _sorted(times: pd.Series) -> bool:
    values = times.values  # naive UTC instants for a zoned column, without a copy
    return bool(len(values) == 0 or (not np.isnat(values).any() and (values[1:] >= values[:-1]).all()))


TIME_ORDERED = ("readings",)
"""The layers a city keeps sorted by their instant from the moment it is loaded (the store and a snapshot give them
by sensor): every time window a refresh looks at is then a slice found by a binary search (:func:`time_slice`). A
live refresh with only the clock moved compared 1.3 million readings' instants 200 times, 0.5 s of its 0.7 s."""


def in_time_order(layer: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (``layer``'s rows) sorted by its instant (stable: rows of one instant keep their order) when the
    layer is one of :data:`TIME_ORDERED` and it is not already; else ``frame`` itself."""
    column = LAYERS[layer].time_column if layer in TIME_ORDERED else None
    if column is None or column not in frame or _sorted(frame[column]):
        return frame
    return frame.sort_values(column, kind="stable", ignore_index=True)


def time_slice(city: City, layer: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> slice:
    """The rows of ``layer`` whose instant is in ``[start, end)`` (an open side when None), as a slice of positions:
    the layer must be in time order (:meth:`City.in_time_order`). Two binary searches instead of comparing every
    row's instant (a million readings, a dozen windows per live refresh)."""
    frame = city[layer]
    times = frame[LAYERS[layer].time_column].values
    first = 0 if start is None else int(np.searchsorted(times, as_utc(start, times.dtype), side="left"))
    last = len(times) if end is None else int(np.searchsorted(times, as_utc(end, times.dtype), side="left"))
    return slice(first, max(first, last))


def as_utc(instant: pd.Timestamp, dtype=None) -> np.datetime64:
    """A zoned instant as the naive UTC value numpy holds for a zoned column (of ``dtype``'s unit, rounded up so
    that ``times >= as_utc(t)`` keeps the instants at or after ``t``)."""
    return _as_utc(instant, None if dtype is None else np.dtype(dtype).str)


@functools.lru_cache(maxsize=4096)
def _as_utc(instant: pd.Timestamp, dtype: str | None) -> np.datetime64:
    # Remembered: a live refresh converts the same few dozen window bounds hundreds of times (15 µs each).
    naive = pd.Timestamp(instant).tz_convert("UTC").tz_localize(None)
    if dtype is None:
        return np.datetime64(naive)
    unit = np.datetime_data(np.dtype(dtype))[0]
    return np.datetime64((naive.ceil(unit) if unit in ("s", "ms", "us") else naive).to_datetime64(), unit)


def facts_of_shared(city: City, layers: dict) -> dict:
    """``city``'s layer facts about the frames that ``layers`` (a next city's) still holds."""
    return {key: known for key, known in city.layer_facts.items() if layers.get(key[0]) is known[0]}


def looked_up(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table``'s value for each key, NaN for a key it lacks, as an object column: ``keys.map(table)
    .astype(object)`` without making a string object per row (the values are ``table``'s own objects, shared by
    the rows: a million readings take a pointer each for their sensor's grid cell and kind)."""
    positions = table.index.get_indexer(keys)
    values = np.append(table.to_numpy(dtype=object), np.nan)  # position -1 (a key the table lacks) → NaN
    return pd.Series(values.take(positions), index=keys.index, dtype=object)


SENSOR_LAYERS = ("sensors", "readings", "alarms")
"""The layers whose indicators are judged at the sensors' own freshness (:attr:`City.sensors_as_of`)."""


def with_clock(city: City, clock: pd.Timestamp | None) -> City:
    """``city`` shown at ``clock`` (live mode), sharing its frames: a new generation when only time moved on."""
    return City(units=city.units, hierarchy=city.hierarchy, layers=city.layers, versions=city.versions,
                load_seconds=city.load_seconds, written_at=city.written_at, derived=True, clock=clock,
                read_again_since=city.read_again_since, arrival_marks=city.arrival_marks,
                layer_facts=city.layer_facts)


NOT_LOADED = ("alerts",)
"""Entries of ``layer_versions`` that count changes of something the city does not load (the alerts: read once per
generation by the dashboard's services). A city carries their versions, so that the generation's key changes with
them, but a change of only these reads nothing again (:func:`with_versions`)."""


def with_versions(city: City, versions: dict[str, int]) -> City:
    """``city`` with new ``versions`` and everything else shared, its memos and computed instants too: what a change
    of only :data:`NOT_LOADED` entries costs (a copy of a few references)."""
    changed = {k for k in versions.keys() | city.versions.keys() if versions.get(k) != city.versions.get(k)}
    if not changed <= set(NOT_LOADED):
        raise ValueError(f"layers {sorted(changed - set(NOT_LOADED))} changed: read them again, not only versions")
    moved = copy.copy(city)  # a dataclass's shallow copy keeps the cached as_of/sensors_as_of and shares the memo
    moved.versions = dict(versions)
    return moved


def build_hierarchy(units: pd.DataFrame) -> pd.DataFrame:
    """One row per grid cell, one column per level: the unit containing that cell on each level.

    Raises ``ValueError`` naming the unit when a parent is missing, so a broken hierarchy is caught at load time.
    """
    parent = units.set_index("code")["parent_code"]
    level = units.set_index("code")["level"]
    grids = units.loc[units["level"] == "grid", "code"].to_numpy()
    table = {"grid": grids}
    current = pd.Series(grids)
    for lvl in reversed(LEVELS[:-1]):
        current = current.map(parent)
        if current.isna().any():
            orphan = grids[current.isna().to_numpy()][0]
            raise ValueError(f"unit hierarchy: grid {orphan} has no {lvl} above it")
        wrong = current.map(level) != lvl
        if wrong.any():
            raise ValueError(f"unit hierarchy: {current[wrong].iloc[0]} is not a {lvl} but sits where one should")
        table[lvl] = current.to_numpy()
    # A province store: every city's parent is the province (the optional level above cities, see ALL_LEVELS).
    above = current.map(parent)
    if above.notna().any():
        if above.isna().any() or (above.map(level) != PROVINCE).any():
            odd = current[above.isna() | (above.map(level) != PROVINCE)].iloc[0]
            raise ValueError(f"unit hierarchy: city {odd} has no province above it while other cities have one")
        table[PROVINCE] = above.to_numpy()
    return pd.DataFrame(table, columns=[lvl for lvl in ALL_LEVELS if lvl in table]).set_index("grid", drop=False)


def levels_of(hierarchy: pd.DataFrame) -> tuple[str, ...]:
    """The levels a hierarchy table has, from the top: a province's six, a city's five."""
    return tuple(lvl for lvl in ALL_LEVELS if lvl in hierarchy.columns)


EVENT_LAYERS = ("sensors", "readings", "alarms", "orders", "buildings", "event_types", "channels", "planted_hotspots",
                "incidents", "enterprises", "grid_workers", "patrols", "cameras", "road_segments", "roads")


def load_city(store: Store, layer_ids=EVENT_LAYERS, progress: bool = False) -> City:
    """Load the units and ``layer_ids`` from the store (a progress bar on request: the city scale takes ~30 s)."""
    timings = {}
    # A database written before a layer was added to the registry lacks its table: create it (empty, so that
    # layer has no data) instead of failing on a city the user already has.
    store.create_schema()
    # The city's own settings (time zone, holiday calendar) are in force while it is served: its times load in
    # its zone, and its clocks and working days follow it.
    activate(checked(store.city_settings()))
    started = time.perf_counter()
    units = load_layer(store, "units").set_index("code", drop=False)
    timings["units"] = time.perf_counter() - started
    hierarchy = build_hierarchy(units)
    # Before the sensors are read: a batch committed meanwhile is then read again by the next refresh, not lost.
    marks = {"sensors": store.arrival_mark("sensors")} if "sensors" in layer_ids else {}
    layers = {}
    for layer_id in tqdm(layer_ids, desc="loading layers", unit="layer", disable=not progress):
        started = time.perf_counter()
        # Readings as the indicators count them: one per sensor and hour (a stream's hourly means; folded hours).
        layers[layer_id] = hourly_readings(store) if layer_id == "readings" else load_layer(store, layer_id)
        layers[layer_id] = in_time_order(layer_id, layers[layer_id])
        timings[layer_id] = time.perf_counter() - started
    stored = store.layer_versions()
    versions = {layer_id: info["version"] for layer_id, info in stored.items()}
    written_at = max((info["written_at"] for info in stored.values()), default=None)
    return City(units=units, hierarchy=hierarchy, layers=layers, versions=versions, load_seconds=timings,
                written_at=None if written_at is None else
                pd.Timestamp(written_at, unit="s", tz="UTC").tz_convert(city_timezone()), arrival_marks=marks)


def with_orders_read_again(city: City, store: Store, order_ids, versions: dict[str, int]) -> City:
    """``city`` with the orders ``order_ids`` read again from the store (acted on, or filed, since it was loaded)
    and every other layer as it is: what an action on an order costs the dashboard, instead of reading the city's
    millions of orders again. Orders read again go to the end of the orders layer (its row order means nothing)."""
    order_ids = sorted(set(order_ids))
    orders = city.layers["orders"]
    fresh = load_layer(store, "orders", where=lambda table: table.c.order_id.in_(order_ids))
    # The derived columns (see City.__post_init__) for the fresh rows alone, and the loaded frame's dtypes, so
    # that neither the concatenation nor the new City converts the millions of rows already there.
    fresh["grid_index"] = pd.Index(city.hierarchy["grid"]).get_indexer(fresh["grid_code"])
    if "category" in orders:
        fresh["category"] = fresh["event_type"].map(city.layers["event_types"].set_index("code")["category"])
    fresh = fresh[list(orders.columns)]
    for name in fresh.columns:
        if name != "geometry" and fresh[name].dtype != orders[name].dtype:
            fresh[name] = fresh[name].astype(orders[name].dtype)
    kept = orders[~orders["order_id"].isin(fresh["order_id"]).to_numpy()]
    patched = pd.concat([kept, fresh], ignore_index=True)
    layers = dict(city.layers, orders=patched)
    return City(units=city.units, hierarchy=city.hierarchy, layers=layers,
                versions=dict(versions), load_seconds=city.load_seconds, written_at=city.written_at, derived=True,
                clock=city.clock, arrival_marks=city.arrival_marks, layer_facts=facts_of_shared(city, layers))


READINGS_OVERLAP = pd.Timedelta(hours=2)
"""How far back a refresh reads readings again: a reading that arrives late (a gauge reporting its backlog after a
network outage) within this long of the newest one loaded is still taken in."""


@dataclass(frozen=True)
class SensorChanges:
    """What changed in the sensor layers, as read from the store once: the rows to take in and where the reading
    left off. :func:`with_sensor_changes` takes them into a city. Read by :func:`read_sensor_changes` for one city,
    or, for every process of a machine at once, by the stream's publisher (:mod:`layers.stream_spool`)."""

    fresh: dict                     # layer → its rows read again, as loaded (the readings: the hours read, whole)
    marks: dict                     # layer → the store's arrival mark the rows were read at (Store.arrival_mark)
    sensors_whole: bool = False     # the sensors were read whole (else only those the stream reported on)
    readings_arrived: bool = False  # the readings are the (sensor, hour) rows the stream touched, not a span's
    since: pd.Timestamp | None = None  # the readings from this instant on were read again (None: read whole)


def stream_marks(store: Store) -> dict:
    """The store's arrival marks of the sensors and readings, each read with its layer's version (one transaction
    each): from there on only the rows numbered since need reading again."""
    return {"sensors": store.arrival_mark("sensors"), "readings": store.arrival_mark("readings", READINGS_BATCHES)}


def came_from_the_stream(layer: str, known: tuple | None, mark: tuple) -> bool:
    """Whether every change of ``layer`` between the marks ``known`` and ``mark`` came numbered from the stream (one
    number — the sensors' report, the readings' batch — one version each): then the rows numbered since ``known``
    are all that changed."""
    if known is None:
        return False
    counter = 1 if layer == "sensors" else 2  # the readings count batches (READINGS_BATCHES), not single readings
    return mark[0] - known[0] == mark[counter] - known[counter]


def sensors_reported_since(store: Store, known: tuple) -> pd.DataFrame:
    """The sensors' rows the stream reported on since the mark ``known``."""
    return load_layer(store, "sensors", where=lambda table: table.c.seq > known[1])


def read_sensor_changes(city: City, store: Store, moved) -> SensorChanges:
    """What changed in the sensor layers ``moved`` since ``city`` read them: the sensors the stream reported on
    since the city's mark (all of them when something else wrote the sensors), the (sensor, hour) rows of the
    readings the stream stored since the city's mark (when something else wrote readings, or the city has no mark
    yet: the rows from :data:`READINGS_OVERLAP` before the newest one loaded), the alarms whole (thousands of rows)."""
    fresh, marks = {}, {}
    sensors_whole, arrived, since = False, False, None
    if "sensors" in moved:
        mark = store.arrival_mark("sensors")
        known = city.arrival_marks.get("sensors")
        if came_from_the_stream("sensors", known, mark):
            fresh["sensors"] = sensors_reported_since(store, known)
        else:
            fresh["sensors"], sensors_whole = load_layer(store, "sensors"), True
        marks["sensors"] = mark
    if "alarms" in moved or sensors_whole:  # alarms carry their sensor's cell
        fresh["alarms"] = load_layer(store, "alarms")
    readings = city.layers.get("readings")
    if "readings" in moved:
        mark = store.arrival_mark("readings", READINGS_BATCHES)
        known = city.arrival_marks.get("readings")
        if readings is not None and len(readings) and came_from_the_stream("readings", known, mark):
            # Every change since the mark came from the stream: read the hours of the sensors its readings fell in,
            # whole — late ones too, however late.
            fresh["readings"], arrived = hourly_readings_arrived(store, known[1]), True
            since = fresh["readings"]["ts"].min() if len(fresh["readings"]) else None
        elif readings is not None and len(readings):
            # The readings layer holds hourly means (layers.retention): the hours from the overlap on are read again.
            since = (city.extreme("readings", "ts", "max") - READINGS_OVERLAP).floor("h")
            fresh["readings"] = hourly_readings(store, since=int(since.timestamp()))
        else:
            fresh["readings"] = hourly_readings(store)
        marks["readings"] = mark
    return SensorChanges(fresh, marks, sensors_whole=sensors_whole, readings_arrived=arrived, since=since)


def with_sensor_layers_read_again(city: City, store: Store, versions: dict[str, int], moved=None) -> City:
    """``city`` after the stream wrote readings, alarms and sensor reports: only the layers whose version moved are
    read again, and of them only what can have changed (:func:`read_sensor_changes`); every other layer is shared
    as it is. What a batch of the live stream costs the dashboard, instead of reading the city's millions of orders
    again. ``moved``: the sensor layers that changed, when ``city`` already carries ``versions`` (default: those
    whose version differs)."""
    if moved is None:
        moved = {layer for layer in SENSOR_LAYERS if versions.get(layer) != city.versions.get(layer)}
    return with_sensor_changes(city, read_sensor_changes(city, store, moved), versions)


def with_sensor_changes(city: City, changes: SensorChanges, versions: dict[str, int]) -> City:
    """``city`` with ``changes`` taken in, at ``versions``: the sensors' rows replaced (or all of them), the readings'
    hours read replaced (or the span from ``changes.since`` on, or all of them), the alarms replaced."""
    fresh, since, arrived = changes.fresh, changes.since, changes.readings_arrived
    marks = {**city.arrival_marks, **changes.marks}
    readings = city.layers.get("readings")
    # The derived columns (grid cell, kind, grid_index) for the fresh rows alone, by cities of just these layers;
    # readings and alarms take their sensor's cell and kind from the sensors as they are now.
    layers = dict(city.layers)
    if "sensors" in fresh:
        rows = City(units=city.units, hierarchy=city.hierarchy, layers={"sensors": fresh["sensors"]})["sensors"]
        layers["sensors"] = rows if changes.sensors_whole else _rows_replaced(city["sensors"], rows, "sensor_id")
    events = {name: fresh[name] for name in ("readings", "alarms") if name in fresh}
    # A shallow copy: the derivation adds columns to the sensors it is given, which another generation may be reading.
    derived = City(units=city.units, hierarchy=city.hierarchy,
                   layers=dict(events, sensors=layers["sensors"].copy(deep=False))).layers if events else {}
    if "alarms" in fresh:
        layers["alarms"] = derived["alarms"]
    # The readings are kept in time order from here on (sorted once, when the city was loaded otherwise): the rows
    # before ``since`` are then the layer's first rows, and every time window a refresh looks at is a slice found by
    # a binary search (layers.city.time_slice), not a comparison of a million instants.
    if "readings" in fresh and since is not None:
        if not city.in_time_order("readings"):
            readings = readings.sort_values("ts", kind="stable", ignore_index=True)
        start = int(np.searchsorted(readings["ts"].values, as_utc(since, readings["ts"].values.dtype)))
        new = derived["readings"][list(readings.columns)]
        for name in new.columns:
            if new[name].dtype != readings[name].dtype:
                new[name] = new[name].astype(readings[name].dtype)
        if arrived:  # the rows of the hours read replace theirs; the other rows from ``since`` on stay
            tail = readings.iloc[start:]
            replaced = pd.MultiIndex.from_arrays([tail["sensor_id"], tail["ts"]]).isin(
                pd.MultiIndex.from_arrays([new["sensor_id"], new["ts"]]))
            new = pd.concat([tail[~replaced], new], ignore_index=True)
        layers["readings"] = pd.concat([readings.iloc[:start], new.sort_values("ts", kind="stable")],
                                       ignore_index=True)
    elif "readings" in fresh and not arrived:
        layers["readings"] = derived["readings"].sort_values("ts", kind="stable", ignore_index=True)
    facts = facts_of_shared(city, layers)
    if "readings" in fresh and layers["readings"] is not readings:
        facts[("readings", "in_time_order")] = (layers["readings"], True)
    return City(units=city.units, hierarchy=city.hierarchy, layers=layers, versions=dict(versions),
                load_seconds=city.load_seconds, written_at=city.written_at, derived=True, clock=city.clock,
                read_again_since={} if since is None else {"readings": since}, arrival_marks=marks,
                layer_facts=facts)


def _rows_replaced(frame: pd.DataFrame, fresh: pd.DataFrame, key: str) -> pd.DataFrame:
    """``frame`` with its rows of the keys in ``fresh`` replaced by ``fresh``'s, where they were (the other rows keep
    their positions too), and ``fresh``'s new keys at the end; ``fresh`` has ``frame``'s columns and dtypes."""
    if not len(fresh):
        return frame
    fresh = fresh[list(frame.columns)].copy()
    for name in fresh.columns:  # a column empty in the few rows read comes back as object
        if name != "geometry" and fresh[name].dtype != frame[name].dtype:
            fresh[name] = fresh[name].astype(frame[name].dtype)
    at = pd.Index(frame[key]).get_indexer(fresh[key])
    known = at >= 0
    order = np.arange(len(frame))
    order[at[known]] = len(frame) + np.flatnonzero(known)
    order = np.r_[order, len(frame) + np.flatnonzero(~known)]
    return pd.concat([frame, fresh], ignore_index=True).take(order).reset_index(drop=True)
