"""The one bridge from the dashboard to ``layers`` and ``metrics``, memoised on the layer versions.

Pages call :func:`get` for the configured :class:`Services`. Everything a page shows comes from here as plain data
(tables, GeoJSON of a handful of admin units); no city-scale geometry ever goes to the browser from here: a view
shows the children of one unit, simplified as a coverage so that shared edges stay shared.
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import functools
import hashlib
import itertools
import os
import sys
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pandas.arrays import ArrowStringArray

from dashboard.settings import Settings
from layers.city import (EVENT_LAYERS, NOT_LOADED, SENSOR_LAYERS, City, load_city, with_clock,
                         with_orders_read_again, with_sensor_changes, with_sensor_layers_read_again, with_versions)
from dashboard.maps.sources import order_cells, sensor_states
from layers import city_settings
from layers.city_settings import timezone as city_timezone
from layers.specs import ALL_LEVELS, LAYERS, METRIC_CRS
from layers.snapshot import read_computed, read_snapshot, write_computed, write_snapshot
from layers.store import Store
from layers.store_health import LastRead, is_unavailability
from layers.stream_spool import NOTHING_NEW, StreamSpool
from layers.workorders import WorkOrders
from metrics.engine import (by_clock, city_level_groups, compare, compare_named, compared, grid_matrices,
                            rank_among_siblings, series, sparkline_steps, step_windows, stepped_unit_values)
from metrics.hotspots import detect_hotspots
from metrics.incremental import StepSums, WindowSums, rows_from, unit_figures
from metrics.score import unit_score
from metrics.registry import INDICATORS
from metrics.spec import DEFAULT_WINDOW, WINDOWS, Window, named_window

# Simplification tolerance (degrees) by the level of the units drawn: about 80 m for districts down to 5 m for grids.
SIMPLIFY = {"province": 0.003, "city": 0.001, "district": 0.0008, "street": 0.0003, "community": 0.00012, "grid": 0.00005}
MEMO_LAYERS = {
    "order_cells": ("orders",),
    "buildings_by_grid": ("buildings",),
    "building_tiles": ("buildings",),
    "base_roads": ("roads",),
    "enterprises": ("enterprises",),   # the map's marks of these static layers (registry._mark_layer)
    "cameras": ("cameras",),
    "building_properties:use": ("buildings",),
    "building_colouring_version:use": ("buildings",),
    "open_alerts": ("alerts",),
    "open_alert_units": ("alerts", "units"),
    "building_alerts": ("alerts",),
    "table_layout": ("units",),  # where each unit's row of each indicator sits in a window's table
    "building_places": ("buildings", "orders", "units"),  # building cards' rows, lineages and open orders near them
    **{f"newest:{layer_id}": (layer_id,) for layer_id in LAYERS},  # a layer's newest record (layer_freshness)
    "sensor_cells": (),  # carried always: the sensors' H3 cells, checked against their positions where used
    # Per unit (maps.routes, bounded: Kept): its buildings, their outlines (a small unit's map), their tile index and
    # their colours by use.
    "building_scope_rows": ("buildings", "units"),
    "unit_footprints": ("buildings", "units"),
    "scoped_building_tiles": ("buildings", "units"),
    "scoped_building_properties:use": ("buildings", "units"),
    "grid_points": ("units",),                      # a point inside each grid cell (the patrols' marks)
    "scope_codes": ("units",),                      # the units inside an account's scope (dashboard.auth)
    # The early warning of the orders, keyed on the hours of the clock it reads (components.wall_alerts).
    "wall_early_warning": ("orders", "units"),
    "district_forecast": ("orders", "units"),
    # Whole answers (Services.shared_answer) draw the alerts too: carried only to a generation with nothing new.
    "shared_answers": ("*", "alerts"),
}
"""The layers each generation memo is computed from alone (not the clock): it carries over to the next generation
while they are unchanged. Memos not named here are computed from the city at its clock: they carry over only when
nothing but the alerts changed (:data:`layers.city.NOT_LOADED`), and must not read the alerts."""


@dataclass
class Generation:
    """One loaded city and everything computed from it. A refresh builds a new one and swaps it in whole; a view
    (``unit_view``) takes one generation for all it shows, and results are written into the generation they were
    computed from, so a swap never leaves an old figure in the new generation's memos."""

    city: City
    number: int = 0              # counts the generations this process made (for logs; workers differ)
    tables: dict = field(default_factory=dict)
    geojson: dict = field(default_factory=dict)
    hotspots: dict = field(default_factory=dict)
    series: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict)
    # Per window: the grid sums of the indicators whose rows add up (metrics.incremental.WindowSums), which a
    # refresh brings up to date by the rows that changed; the window's table takes those indicators' rows from them.
    sums: dict = field(default_factory=dict)
    # Per window: the same for each step of its sparkline (metrics.incremental.StepSums), made by the first refresh.
    step_sums: dict = field(default_factory=dict)
    # Per window: what a refresh last wrote into its sparklines' points (dashboard.services._points_written).
    points_written: dict = field(default_factory=dict)
    # Per window: when (time.monotonic) something last asked for its table or sparklines; one dict shared by the
    # generations of a process. The refresh stops bringing up to date a window not asked for in
    # ``Settings.window_idle_minutes``, and computes one asked for that is missing.
    window_asked: dict = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)  # when it was swapped in (GET /health reports its age)

    @property
    def key(self) -> str:
        """What every worker on every machine calls this generation: the store's layer versions and the instant
        the city is shown at. Two workers that loaded the same store at the same clock step share the key, and a
        cached answer is keyed on it, so an answer made for one generation is never served for another."""
        versions = ".".join(f"{layer}{version}" for layer, version in self.city.version_key)
        return f"{self.city.as_of:%Y%m%dT%H%M%S}-{zlib.crc32(versions.encode()):08x}"


def escalation_minutes(environ=None) -> float:
    """How often the supervision sweep runs: ``CITYTWIN_ESCALATION_MINUTES`` (default 10; 0 turns it off)."""
    return Settings.from_environ(environ).escalation_minutes


def alert_seconds(environ=None) -> float:
    """How often the alert rules are evaluated: ``CITYTWIN_ALERT_SECONDS`` (default 15; 0 turns it off)."""
    return Settings.from_environ(environ).alert_seconds


@dataclass(frozen=True)
class UnitDirectory:
    """Every administrative unit's code, level, names and parent (no geometry)."""

    version: int
    units: pd.DataFrame  # indexed by code

    @property
    def city(self) -> dict:
        """The top unit: the city, or the province of a province store (what a page's top bar starts from)."""
        return self.units.loc[top_unit(self.units)].to_dict()

    def ancestor(self, codes: pd.Series, level: str) -> pd.Series:
        """The unit at ``level`` above (or at) each code; None where there is none."""
        found = pd.Series(np.where(self.units.reindex(codes)["level"].to_numpy() == level, codes, None),
                          index=codes.index, dtype=object)
        current = codes.astype(object)
        for _ in range(len(ALL_LEVELS)):
            current = self.units["parent_code"].reindex(current).set_axis(codes.index)
            at_level = self.units["level"].reindex(current).set_axis(codes.index).to_numpy() == level
            found = found.where(~at_level, current)
        return found

    def lineage(self, code: str | None) -> list[dict]:
        """The units from the city down to ``code`` (code, level, name, name_zh); empty for an unknown code."""
        chain = []
        while code is not None and code in self.units.index and len(chain) <= len(ALL_LEVELS):
            unit = self.units.loc[code]
            chain.append({k: unit[k] for k in ("code", "level", "name", "name_zh")})
            code = unit["parent_code"]
        return chain[::-1]

    def of_level(self, level: str) -> pd.DataFrame:
        return self.units[self.units["level"] == level].sort_values("code")


@dataclass(frozen=True)
class UnitView:
    code: str
    level: str
    name: str
    name_zh: str
    lineage: list[dict]          # [{code, level, name, name_zh}] from the city down to this unit
    child_level: str | None
    kpis: pd.DataFrame           # one row per indicator for this unit: value, previous, change, state, …
    children: pd.DataFrame       # one row per child unit for the selected indicator: code, name, value, state
    children_geojson: dict       # FeatureCollection of the children (simplified), properties: code, name, …
    bounds: tuple[float, float, float, float]
    as_of: pd.Timestamp
    score: float                 # composite vital-sign score, 0–100 (NaN without any judged indicator)
    score_explanation: pd.DataFrame  # what pulls the score down, costliest first (metrics.score.explain_score)
    sparklines: dict             # headline indicator id → its values over the window's steps, oldest first
    score_count: int = 0         # how many judged indicators the score rests on (0: no data, no score)


class Services:
    """The owner of this process's view of the city: the current :class:`Generation` and everything remembered
    about it, the work-order service and the settings. Thread-safe: one lock guards the swap."""

    def __init__(self, store: Store, progress: bool = False, settings: Settings | None = None):
        self.store = store
        self.progress = progress
        self.settings = settings or Settings()
        self._made = 0
        self._gen: Generation | None = None
        self._checked_at = 0.0
        # In live mode a refresh waits at least as long as the last one took: with a stream changing the store
        # every second, the background work then takes at most about half of a core, never all of it.
        self._last_refresh_seconds = 0.0
        self._refreshing: threading.Thread | None = None
        self._lock = threading.Lock()
        self._work_orders: WorkOrders | None = None
        self._directory: UnitDirectory | None = None
        self._open_orders: tuple | None = None
        self._log_mark = 0  # the newest transition-log row the loaded city has seen
        self._snapshotting: threading.Thread | None = None
        self.simulator = None  # the built-in simulator, when this process runs it (app.simulate_every_second)
        self._versions_read: dict | None = None
        self.last_refresh_phases: dict[str, float] = {}  # seconds of the last background refresh (bench/refresh.py)
        self._basemap = None  # the city's own PMTiles base map, opened when first asked for (settings.basemap_pmtiles)
        self.last_read = LastRead()  # what each read of the store last answered, for while it does not answer
        # Beside a publisher of the stream's changes (the jobs process of several workers, layers.stream_spool): the
        # spool this process takes them from instead of reading the store; None: it reads the store itself.
        self.stream_spool: StreamSpool | None = None

    def reset_after_fork(self) -> None:
        """In a forked worker process: new locks, and no refresh thread (it stayed in the parent)."""
        self._lock = threading.Lock()
        self._refreshing = None
        self._checked_at = time.monotonic()

    # --- data ---------------------------------------------------------------------------------------------------

    def city(self) -> City:
        """The loaded city. Every ``version_check_seconds`` the store's layer versions are compared with it; a
        change is read in the background (or at once when the interval is 0) and swapped in when ready. In live
        mode a new generation is also made when the clock moved a step on, with nothing new in the store."""
        return self._current().city

    def generation(self) -> Generation:
        """The generation requests are answered from now (see :meth:`city`)."""
        return self._current()

    def _now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz=city_timezone()).floor("s")

    def _current(self) -> Generation:
        interval = self.settings.version_check_seconds
        # Most calls, without the lock: the generation and when it was last checked are read as they are (each
        # read is atomic; a check due is decided again under the lock below). A page asks for the generation a
        # dozen times; with 24 threads a worker, a thread that held the lock and lost the interpreter to another
        # made every request wait behind it (py-spy under 50 users: a request thread in 10 of its samples was here).
        gen, checked_at = self._gen, self._checked_at
        if gen is not None and (self._refreshing is not None or time.monotonic() - checked_at < (
                max(interval, self._last_refresh_seconds) if self.settings.live else interval)):
            return gen
        with self._lock:
            now = time.monotonic()
            if self._gen is None:
                self._gen = self._generation(self._clocked(self._first_city()))
                self._checked_at = now
                return self._gen
            # Live mode: a refresh waits as long as the last one took (a stream changes the store every second).
            wait = max(interval, self._last_refresh_seconds) if self.settings.live else interval
            due = now - self._checked_at >= wait and self._refreshing is None
            if due:
                self._checked_at = now
            gen = self._gen
        if not due:
            return gen
        # Outside the lock: a store that does not answer holds this request (up to its budget), not every page.
        try:
            versions = {k: v["version"] for k, v in self.stored_versions().items()}
        except Exception as error:
            if is_unavailability(error):
                return gen  # the city as last loaded; the top bar says the store is unavailable
            raise
        if versions == gen.city.versions and not self._clock_stale(gen):
            return gen
        with self._lock:
            if self._gen is not gen or self._refreshing is not None:
                return self._gen
            if interval > 0:
                self._refreshing = threading.Thread(target=self._refresh, args=(gen, versions),
                                                    daemon=True, name="refresh-city")
                self._refreshing.start()
            else:
                try:
                    self._gen = self._next_generation(gen, self._reloaded(gen.city, versions))
                except Exception as error:
                    if not is_unavailability(error):
                        raise
            return self._gen

    def _clock_stale(self, gen: Generation) -> bool:
        """Live mode: the generation's clock is a step or more behind the wall clock."""
        return self.settings.live and (self._now() - gen.city.as_of).total_seconds() >= self.settings.clock_step_seconds

    def stored_versions(self) -> dict[str, dict]:
        """The store's ``layer_versions``; while the store is unavailable, the last ones read (the pages go on
        with the city as last loaded)."""
        return self.last_read("layer_versions", self.store.layer_versions)

    def loaded_generation(self) -> Generation | None:
        """The generation being served, without loading or checking anything (GET /health)."""
        return self._gen

    def _first_city(self) -> City:
        """The city at start: from the last columnar snapshot when there is one for this store (seconds instead
        of a minute at the city scale; what changed since is read before the first answer), else from the store;
        either way, when the snapshot was missing or behind, a new one is written in the background for the next
        start."""
        if self.settings.snapshots:
            started = time.perf_counter()
            found = read_snapshot(self.store, EVENT_LAYERS)
            if found is not None:
                city, self._log_mark = found
                # What changed since the snapshot is read now, before the first answer (incrementally where it can).
                versions = {k: v["version"] for k, v in self.store.layer_versions().items()}
                if versions != city.versions:
                    behind = {k for k in versions.keys() | city.versions.keys()
                              if versions.get(k) != city.versions.get(k)} - set(NOT_LOADED)
                    city = self._reloaded(city, versions)
                    # The snapshot is behind the store in layers it holds: the next start would read the same
                    # changes again (every order acted on since it was written: 7 s at the city scale after a day's
                    # sweeps), so a new one is written in the background (unless a full load above started one).
                    if behind and self._snapshotting is None:
                        self._snapshot_later(city, self._log_mark, self.store.layer_versions())
                if self.progress:
                    print(f"citytwin: read the city's snapshot in {time.perf_counter() - started:.1f} s",
                          flush=True)
                return city
        self._log_mark = self._work_orders_unlocked().last_transition()
        stamps = self.store.layer_versions()
        city = load_city(self.store, progress=self.progress)
        self._snapshot_later(city, self._log_mark, stamps)
        return city

    def _snapshot_later(self, city: City, log_mark: int, stamps: dict) -> None:
        """Write a snapshot of a city just loaded whole, in a background thread (its layers are only read)."""
        if not self.settings.snapshots:
            return
        fitting = {layer: [info["version"], info["written_at"]] for layer, info in stamps.items()
                   if city.versions.get(layer) == info["version"]}

        def write():
            try:
                write_snapshot(city, self.store, log_mark, fitting)
            except Exception as error:  # noqa: BLE001 — a cache: the next start reads the store instead
                print(f"citytwin: could not write the city's snapshot: {error!r}", file=sys.stderr, flush=True)

        self._snapshotting = threading.Thread(target=write, daemon=True, name="snapshot")
        self._snapshotting.start()

    def _clocked(self, city: City, clock: pd.Timestamp | None = None) -> City:
        """In live mode the city is shown at the wall clock (or at ``clock``: when the stream's changes were read,
        for the same generation in every process that took them in); in replay mode at its newest record."""
        return with_clock(city, clock if clock is not None else self._now()) if self.settings.live else city

    def _generation(self, city: City, **parts) -> Generation:
        self._made += 1
        return Generation(city, number=self._made, **parts)

    def _refresh(self, old: Generation, versions: dict[str, int]) -> None:
        """The background refresh: the new city, then the windows' tables and sparklines that were in use, so the
        first request after the swap does not compute them either. When only the sensor layers changed (the live
        stream), only the indicators that read them are computed again; the others keep their rows."""
        started = time.monotonic()
        phases = {}
        try:
            city = self._reloaded(old.city, versions)
            if city.versions == old.city.versions and not self._clock_stale(old):
                return  # the stream's publisher has nothing newer yet (layers.stream_spool): no new generation
            versions = city.versions  # what was read (behind the store's when the spool lags it by a step)
            new = self._next_generation(old, city)
            phases["read"] = time.monotonic() - started
            changed = {k for k in versions.keys() | old.city.versions.keys()
                       if versions.get(k) != old.city.versions.get(k)} - set(NOT_LOADED)
            affected = None  # every indicator computed again
            # In replay mode the city's clock is its newest record: when the stream moves it (readings of a new
            # hour), the windows of every indicator judged at it moved, and they are all computed again. In live
            # mode the clock moves at every refresh, and the indicators of the other layers keep their rows until
            # those layers change (they then lag the clock by up to that long: not a full recompute's figures).
            city_clock_moved = new.city.as_of != old.city.as_of and not self.settings.live
            if changed <= set(SENSOR_LAYERS) and not city_clock_moved:  # the stream, or only the alerts
                sensors_clock_moved = new.city.sensors_as_of != old.city.sensors_as_of
                affected = [i for i, ind in INDICATORS.items() if set(ind.inputs) & changed
                            # the sensors' clock moved: the windows of every indicator judged at it slid
                            or (sensors_clock_moved and set(ind.inputs) & set(SENSOR_LAYERS)
                                and "orders" not in ind.inputs)]
            # Twice: a window a request computed in the old generation while this one was being made (the first
            # look at "30 days" during a refresh) is followed too, rather than computed whole again at its next ask.
            for _ in range(2):
                in_use = self._windows_in_use(old)
                for window in [w for w in list(old.tables) if w in in_use and w not in new.tables]:
                    self._follow_table(old, new, window, affected)
                phases["tables"] = phases.get("tables", 0) + time.monotonic() - started - sum(phases.values())
                for window in [w for w in list(old.series) if w in in_use and w not in new.series]:
                    self._follow_series(old, new, window, affected)
                phases["series"] = phases.get("series", 0) + time.monotonic() - started - sum(phases.values())
            # A window asked for whose computation outlasted this refresh (seconds at the city scale; the stream
            # makes a generation every 2 s) would never reach a generation: computed whole here, in the background,
            # and followed from the next refresh on.
            for window in sorted(self._windows_in_use(old) - set(new.tables)):
                remembered(new.tables, window, lambda: window_table(new.city, window, Services.sums_of(new, window)))
                remembered(new.series, window, lambda: window_series(new.city, window))
            phases["asked"] = time.monotonic() - started - sum(phases.values())
            if "sensor_states" in old.memo and "sensor_states" not in new.memo:
                # Every map page's sensors, made here rather than by the first requests after the swap (their
                # threads waited on it: py-spy under 50 users).
                self.sensor_states_of(new)
            with self._lock:
                self._carry_late_memos(old, new)
                self._gen = new
                self.last_refresh_phases = phases
            # Each generation frees the columns and memos the one before it held; glibc kept those pages for the
            # process: with the stream and 50 users, 5.39 GB in all 2.5 minutes in, 4.39 GB handing them back at
            # every swap (one run each, README).
            give_back_free_memory()
        except Exception as error:  # noqa: BLE001 — the old city goes on being served; the next check tries again
            print(f"citytwin: reading the store's changes failed, still serving the city as of "
                  f"{old.city.as_of}: {error!r}", file=sys.stderr, flush=True)
        finally:
            with self._lock:
                self._refreshing = None
                self._last_refresh_seconds = time.monotonic() - started

    def _windows_in_use(self, gen: Generation) -> set[str]:
        """The windows a refresh brings up to date: the default one always, the others while something asked for
        them within ``window_idle_minutes`` (a window someone looked at once is not followed by every worker for
        good: at the city scale each costs a refresh 0.1–0.3 s of work and its table a few hundred MB)."""
        now, idle = time.monotonic(), self.settings.window_idle_minutes * 60
        return {w for w in set(gen.tables) | set(gen.series) | set(gen.window_asked)
                if w == DEFAULT_WINDOW or now - gen.window_asked.get(w, now) <= idle}

    @staticmethod
    def _follow_table(old: Generation, new: Generation, window: str, affected: list[str] | None) -> None:
        """``new``'s table of ``window`` from ``old``'s: the readings' sums follow by the rows that changed (a few
        thousand, not the city's million); only the ``affected`` indicators' rows are computed again (all of them
        when None)."""
        new.sums[window] = (old.sums[window].following(old.city, new.city) if window in old.sums else
                            WindowSums.of(new.city, window))
        new.tables[window] = (window_table(new.city, window, new.sums[window]) if affected is None else
                              with_rows_updated(old.tables[window], new.city, window, affected,
                                                new.sums[window], new.memo))

    @staticmethod
    def _follow_series(old: Generation, new: Generation, window: str, affected: list[str] | None) -> None:
        """``new``'s sparklines of ``window`` from ``old``'s, as :meth:`_follow_table` does a table."""
        if affected is None:
            new.series[window] = window_series(new.city, window)
            return
        new.step_sums[window] = (old.step_sums[window].following(old.city, new.city)
                                 if window in old.step_sums else
                                 StepSums.of(new.city, window, [i for i, ind in INDICATORS.items()
                                                                if ind.headline and ind.rows_add_up]))
        new.points_written[window] = dict(old.points_written.get(window, {}))
        new.series[window] = with_series_recomputed(old.series[window], new.city, window, affected,
                                                    new.step_sums[window], new.points_written[window])

    def _next_generation(self, old: Generation, city: City) -> Generation:
        """A generation for ``city``. What depends only on layers that did not change carries over: the units'
        simplified GeoJSON, and the memos declared in :data:`MEMO_LAYERS` (a live stream changes the sensor layers
        every second; the buildings' tile index or the orders' H3 cells must not be rebuilt for that)."""
        same = same_layers(old.city, city)
        if "*" in same:
            # Only the alerts changed (layers.city.with_versions): everything not computed from them carries over.
            parts = dict(tables=dict(old.tables), series=dict(old.series), hotspots=dict(old.hotspots),
                         sums=dict(old.sums), step_sums=dict(old.step_sums), points_written=dict(old.points_written))
        else:
            parts = {}
        memo = {key: value for key, value in old.memo.items() if carries_over(key, same)}
        # The same dict in every generation: an ask on a generation already swapped out still counts.
        return self._generation(city, geojson=old.geojson if "units" in same else {}, memo=memo,
                                window_asked=old.window_asked, **parts)

    @staticmethod
    def _carry_late_memos(old: Generation, new: Generation) -> None:
        """What requests remembered in ``old`` while ``new`` was being made, carried like the rest: a memo that
        takes longer than the time between a generation's swap and the next refresh's start (the district's
        forecast under load) was otherwise made again in every generation, never carried."""
        same = same_layers(old.city, new.city)
        for key, value in list(old.memo.items()):
            if key not in new.memo and carries_over(key, same):
                new.memo[key] = value

    def wait_for_refresh(self, timeout: float | None = None) -> None:
        """Block until a background refresh under way has been swapped in (benchmarks, tests)."""
        thread = self._refreshing
        if thread is not None:
            thread.join(timeout)

    def _reloaded(self, city: City, versions: dict[str, int]) -> City:
        """``city`` after the store changed. When only work-order actions changed it (the orders' version moved
        by exactly the number of new rows in the transition log), only the orders they touched are read again:
        about a second at the city scale instead of 50 (every order read again). One refresh runs at a time."""
        changed = {k for k in versions.keys() | city.versions.keys() if versions.get(k) != city.versions.get(k)}
        if not changed:  # only the clock moved on (live mode)
            return self._clocked(city)
        if changed <= set(NOT_LOADED):  # only the alerts: nothing of the city to read again
            return self._clocked(with_versions(city, versions))
        patched = self._patched(city, changed, versions)
        if patched is not None:
            return self._clocked(*patched)
        self._log_mark = self._work_orders_unlocked().last_transition()
        stamps = self.store.layer_versions()
        city = load_city(self.store)
        self._snapshot_later(city, self._log_mark, stamps)
        return self._clocked(city)

    def _patched(self, city: City, changed: set[str],
                 versions: dict[str, int]) -> tuple[City, pd.Timestamp | None] | None:
        """``city`` brought up to ``versions`` by reading only what changed: the orders that actions touched or
        citizens filed (the transition log says which), the sensor layers' new reports (from the stream's spool when
        this process follows one: then up to where the publisher read, at its clock, returned beside the city);
        None when something else changed, or the log does not account for every change of the orders (a bulk
        import), so the city must be loaded whole."""
        changed = changed - set(NOT_LOADED)  # their versions come with ``versions``; nothing of theirs is loaded
        if not changed <= {"orders", *SENSOR_LAYERS} or not all(layer in city.layers for layer in changed):
            return None
        own_versions = {layer: city.versions.get(layer) for layer in SENSOR_LAYERS}  # the orders' patch moves them
        if "orders" in changed:
            order_ids, mark, steps = self._work_orders_unlocked().changed_since(self._log_mark)
            if steps != versions["orders"] - city.versions.get("orders", 0):
                return None
            city = with_orders_read_again(city, self.store, order_ids, versions)
            self._log_mark = mark
        clock = None
        if changed & set(SENSOR_LAYERS):
            if not all(layer in city.layers for layer in SENSOR_LAYERS):
                return None
            step = self.stream_spool.changes_for(city, own_versions) if self.stream_spool is not None else None
            if step == NOTHING_NEW:  # the publisher has not read past this city yet: its sensor layers stay
                city = copy.copy(city)
                city.versions = {**versions, **{k: v for k, v in own_versions.items() if v is not None}}
            elif step is not None:
                # At the publisher's clock (every follower then makes the same generation), unless this city is
                # already shown later (its clock moved on while the publisher had nothing new): never backwards.
                clock = step.clock if city.clock is None or step.clock >= city.clock else None
                city = with_sensor_changes(city, step.changes, {**versions, **step.versions})
                self.stream_spool.read_from = "spool"
            else:
                if self.stream_spool is not None:
                    self.stream_spool.read_from = "store"
                # The orders' patch above already carries the new versions: say which sensor layers moved.
                city = with_sensor_layers_read_again(city, self.store, versions, moved=changed & set(SENSOR_LAYERS))
        return city, clock

    def work_orders(self) -> WorkOrders:
        """The work-order service over this store (reads and writes go straight to the store, not the cache)."""
        with self._lock:
            return self._work_orders_unlocked()

    def _work_orders_unlocked(self) -> WorkOrders:
        if self._work_orders is None:
            self._work_orders = WorkOrders(self.store)
        return self._work_orders

    def alerts(self):
        """The alert book over this store (layers.alerts.AlertBook), filing its work orders through the same
        work-order service as the screens."""
        from layers.alerts import AlertBook
        with self._lock:
            if getattr(self, "_alerts", None) is None:
                self._alerts = AlertBook(self.store, self._work_orders_unlocked())
            return self._alerts

    def open_alerts(self) -> pd.DataFrame:
        """The open alerts, read once per generation (its key counts the alerts' version, so a change of an alert
        makes a new generation and every screen that follows the city redraws them); while the store does not
        answer, the last read (not remembered in the generation: the next one after the store's return reads)."""
        from layers.alerts import OPEN_STATUSES
        gen = self._current()
        if "open_alerts" not in gen.memo:
            frame, fresh = self.last_read.read("open_alerts", lambda: self.alerts().frame(OPEN_STATUSES))
            if not fresh:
                return frame
            gen.memo["open_alerts"] = frame
        return gen.memo["open_alerts"]

    def open_alert_units(self, level: str) -> np.ndarray:
        """The unit at ``level`` above each of :meth:`open_alerts`' rows (above its unit, else its grid cell; None
        where there is none), row for row, computed once per generation and level: the walk up the unit tree took
        0.1-0.4 s of every map page below the city at the city scale."""
        alerts = self.open_alerts()
        gen = self._current()

        def walk() -> np.ndarray:
            places = alerts["unit_code"].where(alerts["unit_code"].notna(), alerts["grid_code"])
            return self.directory().ancestor(places, level).to_numpy()

        if gen.memo.get("open_alerts") is not alerts:  # the last read while the store does not answer
            return walk()
        return remembered(gen.memo, ("open_alert_units", level), walk)

    def building_alerts(self, building_id: str, sensor_ids=()) -> pd.DataFrame:
        """The alerts of a building and its sensors (the building card), read once per generation like
        :meth:`open_alerts`, and as last read while the store does not answer."""
        gen = self._current()
        key = ("building_alerts", building_id)
        if key not in gen.memo:
            frame, fresh = self.last_read.read(key, lambda: self.alerts().for_building(building_id, sensor_ids))
            if not fresh:
                return frame
            gen.memo[key] = frame
        return gen.memo[key]

    def read_alerts(self, method: str, *args):
        """``self.alerts().<method>(*args)`` (a read: ``mark``, ``frame``, ``get``, ``timeline``, ``rule_bodies``,
        ``for_order``) straight from the store, for the screens that follow alerts by the second (the alerts page,
        the wall's cue); while the store does not answer, the last answer to the same read."""
        if method not in ALERT_READS:
            raise ValueError(f"not a read of the alert book: {method!r}")
        return self.last_read(("alerts", method, args), lambda: getattr(self.alerts(), method)(*args))

    def evaluate_alerts(self, now: pd.Timestamp | None = None) -> list:
        """One evaluation of the alert rules against the store and the loaded city (metrics.alert_runner)."""
        from metrics.alert_runner import evaluate
        return evaluate(self.store, now, city=self.city(), table_of=self.table, book=self.alerts())

    def directory(self) -> UnitDirectory:
        """Names and parents of every unit, read again only when the units layer changes. The work-order screens
        name places with it: an action on an order bumps the orders' version, which makes :meth:`city` reload the
        whole city (seconds at the city scale), and those screens must not wait for that."""
        try:
            version = self.store.layer_version("units")
        except Exception as error:
            if self._directory is None or not is_unavailability(error):
                raise
            return self._directory  # the store is unavailable: the names as last read
        with self._lock:
            if self._directory is None or self._directory.version != version:
                units = self.store.read_frame("units", ["code", "level", "name", "name_zh", "parent_code"])
                self._directory = UnitDirectory(version, units.set_index("code", drop=False).rename_axis(None))
            return self._directory

    def open_orders(self, fresh: bool = False) -> tuple[pd.DataFrame, pd.Timestamp]:
        """Every open order (the supervision board's clocks run on them) with its district, and when they were read.

        At the city scale that is some 330,000 rows and 2-6 s of reading (none when the city being served holds the
        orders at the store's version: they are taken from it), so they are read again only when the orders
        changed and the last read is older than the version check interval (30 s; 0 in tests), or when ``fresh``
        (right after the escalation sweep). The cards themselves are computed at the moment of each request.
        """
        with self._lock:
            cached = self._open_orders
        try:
            version = self.store.layer_version("orders")
        except Exception as error:
            if cached is None or not is_unavailability(error):
                raise
            return cached[2], cached[3]  # the store is unavailable: the open orders as last read
        now = time.monotonic()
        if cached is not None and not fresh and (cached[0] == version
                                                 or now - cached[1] < self.settings.version_check_seconds):
            return cached[2], cached[3]
        read_at = pd.Timestamp.now(tz=city_timezone())
        # The city being served holds every order; at the store's version its open ones are what the store would
        # give, without reading some 330,000 rows again (3.4-6.1 s of a start at the city scale).
        gen = self._gen
        orders = WorkOrders.open_orders_in(gen.city["orders"]) if gen is not None and "orders" in gen.city.layers \
            and gen.city.versions.get("orders") == version else None
        if orders is None:
            orders = self.work_orders().open_orders_frame()
        orders = orders.assign(district=self.directory().ancestor(orders["grid_code"], "district").to_numpy())
        with self._lock:
            self._open_orders = (version, now, orders, read_at)
        return orders, read_at

    def table(self, window: str) -> pd.DataFrame:
        """Every indicator, every unit, for a named window and the one before it."""
        return self._table(self._current(), window)

    @staticmethod
    def table_of(gen: Generation, window: str) -> pd.DataFrame:
        """:meth:`table` of a given generation (an answer that must not mix two). A window not in the generation
        (not warmed, or idle for a while: :meth:`_windows_in_use`) is computed by the first request that asks, once
        however many ask at the same time."""
        gen.window_asked[window] = time.monotonic()
        return remembered(gen.tables, window, lambda: window_table(gen.city, window, Services.sums_of(gen, window)))

    @staticmethod
    def sums_of(gen: Generation, window: str) -> WindowSums:
        """The window's grid sums of the indicators whose rows add up (see :attr:`Generation.sums`)."""
        return remembered(gen.sums, window, lambda: WindowSums.of(gen.city, window))

    _table = table_of

    def hotspots(self, window: str) -> pd.DataFrame:
        """Recurring hotspots of the window (metrics.hotspots), with the names of their type and place."""
        gen = self._current()
        city = gen.city
        if window not in gen.hotspots:
            found = detect_hotspots(city, named_window(window, city.as_of))
            event_types = city["event_types"].set_index("code") if "event_types" in city.layers else None
            names = event_types["name"] if event_types is not None else pd.Series(dtype=object)
            found = found.assign(
                event_name=found["event_type"].map(names).fillna(found["event_type"]),
                place=found["grid_code"].map(city.units["name"]),
                district=found["grid_code"].map(city.hierarchy["district"]).map(city.units["name"]))
            gen.hotspots[window] = found
        return gen.hotspots[window]

    def series(self, window: str) -> pd.DataFrame:
        """The headline indicators over the window's steps (hours of today, days of 7 and 30 days), every unit,
        indexed by (code, indicator) with the values in step order."""
        return self._series(self._current(), window)

    @staticmethod
    def _series(gen: Generation, window: str) -> pd.DataFrame:
        gen.window_asked[window] = time.monotonic()
        return remembered(gen.series, window, lambda: window_series(gen.city, window))

    def memo(self, key, compute):
        """``compute()``, remembered under ``key`` until the city is reloaded (map sources, tile indexes, …)."""
        # A new generation, with an empty memo, once the store changed.
        return remembered(self._current().memo, key, compute)

    def warm(self, windows=("7d",)) -> None:
        for window in windows:
            self._restore_computed(window)
            self.table(window)  # and its sums
            self.series(window)

    def _restore_computed(self, window: str, gen: Generation | None = None) -> None:
        """The window's table and sparklines as a start before computed them for this same generation, kept beside
        the snapshot (:meth:`keep_computed`), instead of computing them again: at the city scale they are most of
        what the first page waits for once the city is read (about 7 s and 5 s here). Not in live mode: there the
        generation is the clock's, never a start's before."""
        if not self.settings.snapshots or self.settings.live:
            return
        gen = gen or self._current()
        self._restored(gen.tables, window, f"table-{window}", computed_key(gen, window))
        self._restored(gen.series, window, f"series-{window}", computed_key(gen, window), series_from_frame)

    def _restored(self, memo: dict, key, name: str, made_from: str, decode=lambda frame: frame) -> None:
        """``memo[key]`` from the frame kept beside the snapshot under ``name``, if it was made from ``made_from``."""
        if key not in memo:
            frame = read_computed(self.store, name, made_from)
            if frame is not None:
                remembered(memo, key, lambda: decode(frame))

    def drop_shared_facts(self) -> None:
        """Forget the facts the indicators of each window shared while the windows were computed (the city's
        memo, :func:`metrics.spec.memoised`): above all the orders' facts of each window and sparkline step, 66 MB
        each at the city scale, 0.5 GB after a warm-up. Kept, they stayed in memory as long as the generation — in
        the master of several workers, for good, and counted in every worker it forked. Whatever asks again
        computes them again (a tenth of a second a window now, metrics.workorders.OrderColumns)."""
        gen = self._gen
        if gen is not None:
            gen.city.memo.clear()

    def keep_computed(self) -> None:
        """Keep the current generation's window tables and sparklines beside the city's snapshot for the next start
        (see :meth:`_restore_computed`); after the warm-up, in its thread."""
        if not self.settings.snapshots or self.settings.live:
            return
        if self._snapshotting is not None:
            self._snapshotting.join()  # a city just loaded from the store: they go beside its snapshot
        gen = self._current()
        for window, table in list(gen.tables.items()):
            write_computed(self.store, f"table-{window}", table, computed_key(gen, window))
        for window, points in list(gen.series.items()):
            write_computed(self.store, f"series-{window}", points.rename("value").reset_index(),
                           computed_key(gen, window))
        for key, table in list(gen.memo.items()):
            if isinstance(key, tuple) and key[0] == "playback":
                _, hour, ids = key
                write_computed(self.store, f"playback-{hour}", table, computed_key(gen, playback_name(hour, ids)))

    # --- views --------------------------------------------------------------------------------------------------

    def resolve_unit(self, code: str | None) -> str:
        """The unit asked for, or the city when the code is missing or unknown."""
        return resolved_unit(self.city(), code)

    def unit_view(self, code: str | None, indicator_id: str, window: str) -> UnitView:
        """What a page shows of one unit for one indicator and window, made once per generation (it depends on
        nothing else) for the first :data:`MAX_UNIT_VIEWS` asked: it was half of a map page's server time. The view
        is shared by every request of the generation: read it, never change it."""
        gen = self._current()  # one generation for the whole view, even if a refresh swaps in meanwhile
        return self._kept(gen, "unit_views", (code, indicator_id, window),
                          lambda: self._unit_view(gen, code, indicator_id, window))

    def shared_answer(self, key, compute):
        """``compute()`` — a callback's whole answer, made from the current generation and ``key`` alone (its
        inputs, normalised, and whatever else of the request it depends on) — made once per generation for the
        first :data:`MAX_UNIT_VIEWS` keys and shared by every request that asks the same: in live mode every
        screen on the same view redraws for each new generation, and all but the first get the answer made for
        it. Never carried to a generation with anything new (:data:`MEMO_LAYERS`): an answer made for one
        generation is not served for another. Shared: read it, never change it."""
        return self._kept(self._current(), "shared_answers", key, compute)

    @staticmethod
    def _kept(gen: Generation, name: str, key, compute):
        return kept(gen.memo, name, key, compute)

    def _unit_view(self, gen: Generation, code: str | None, indicator_id: str, window: str) -> UnitView:
        city = gen.city
        code = resolved_unit(city, code)
        unit = city.units.loc[code]
        if window not in gen.tables:  # a window the workers were not forked with: kept by a start before?
            self._restore_computed(window, gen)
        table = self._table(gen, window)
        rows = table.loc[code].reset_index(drop=True)
        kpis = rows.set_index("indicator").reindex(list(INDICATORS))
        level_index = ALL_LEVELS.index(unit["level"])
        child_level = ALL_LEVELS[level_index + 1] if level_index + 1 < len(ALL_LEVELS) else None
        children_units = city.children(code)
        keys = [(child, indicator_id) for child in children_units.index]
        values = table.reindex(keys).reset_index(drop=True).assign(code=pd.Series(children_units.index,
                                                                                    dtype=object))
        children = (children_units[["code", "name", "name_zh"]].reset_index(drop=True)
                    .merge(values[["code", "value", "previous", "change", "state"]], on="code", how="left"))
        children["state"] = children["state"].fillna("no_data")
        lineage = [dict(code=c, level=city.units.at[c, "level"], name=city.units.at[c, "name"],
                        name_zh=city.units.at[c, "name_zh"]) for c in city.lineage(code)]
        shown = children_units if len(children_units) else city.units.loc[[code]]
        score, score_count, score_explanation = unit_score(rows)
        return UnitView(
            code=code, level=unit["level"], name=unit["name"], name_zh=unit["name_zh"], lineage=lineage,
            child_level=child_level, kpis=kpis, children=children,
            children_geojson=self._geojson_of(gen, code),
            bounds=tuple(shown.total_bounds), as_of=city.as_of,
            score=score, score_count=score_count, score_explanation=score_explanation,
            sparklines=self._series(gen, window).loc[code].to_dict())


    def base_geojson(self) -> dict:
        """The base map's land: the city's top-level units (its districts), simplified."""
        return self._children_geojson(self.resolve_unit(None))

    def sensor_states(self) -> pd.DataFrame:
        """Every sensor with its state at the data's now (dashboard.maps.sources.sensor_states)."""
        return self.sensor_states_of(self._current())

    @staticmethod
    def sensor_states_of(gen: Generation) -> pd.DataFrame:
        return remembered(gen.memo, "sensor_states", lambda: sensor_states(gen.city))

    def order_cells(self) -> np.ndarray:
        """The H3 cell of every order (dashboard.maps.sources.order_cells): 2.4 s at the city scale, once."""
        return self.memo("order_cells", lambda: order_cells(self.city()))

    def building_card(self, building_id: str | None) -> BuildingCard | None:
        if not building_id or "buildings" not in self.city().layers:
            return None
        gen = self._current()
        states = self.sensor_states_of(gen)
        # Where the building is and the open orders around it (~70 ms at the city scale) carry over the stream's
        # generations (MEMO_LAYERS); only its sensors' states and readings are read again in each. Both memos are
        # bounded: the ids come from the network.
        place = self._kept(gen, "building_places", building_id, lambda: building_place(gen.city, building_id))
        return self._kept(gen, "building_cards", building_id,
                          lambda: building_card(gen.city, building_id, states, place))

    def grid_buildings(self, code: str) -> pd.DataFrame:
        """The buildings of a grid cell, those with open alarms first, then the tallest."""
        city = self.city()
        buildings = city["buildings"]
        by_cell = self.memo("buildings_by_grid", lambda: buildings.groupby("grid_code", sort=False).indices)
        rows = buildings.iloc[by_cell.get(code, [])].drop(columns="geometry")
        states = self.sensor_states()
        alarmed = states[states["state"].isin(["warning", "critical"])]["building_id"]
        rows = rows.assign(alarm=rows["building_id"].isin(set(alarmed)))
        return rows.sort_values(["alarm", "height_m"], ascending=[False, False])

    def playback_period(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The day that playback replays: the 24 hours up to the data's now."""
        end = self.city().as_of + pd.Timedelta(microseconds=1)
        return end - pd.Timedelta(hours=PLAYBACK_HOURS), end

    def playback_kpis(self, code: str | None, indicator_id: str, hour: int) -> pd.DataFrame:
        """The unit's headline KPIs (and the selected indicator) for the replayed day up to ``hour`` hours in,
        each against the same length of time before; one row per indicator like :attr:`UnitView.kpis`."""
        code = self.resolve_unit(code)
        table = self.playback_table(int(min(max(hour, 1), PLAYBACK_HOURS)), indicator_id)
        return table.loc[code].reset_index(drop=True).set_index("indicator").reindex(list(INDICATORS))

    def playback_table(self, hour: int, indicator_id: str | None = None) -> pd.DataFrame:
        """The headline indicators (and one more) of every unit for the replayed day's first ``hour`` hours. Every
        level at once: the grid sums cost the same for one level or five, so an hour is computed once for all."""
        ids = playback_indicators(indicator_id)

        def compute():
            start, _ = self.playback_period()
            window = Window(start, start + pd.Timedelta(hours=hour), f"first {hour} h")
            table = rank_among_siblings(compare(self.city(), window, list(ids)), self.city().units)
            return table.set_index(["code", "indicator"], drop=False).sort_index()

        return self.memo(("playback", hour, ids), compute)

    def warm_playback(self) -> None:
        """The replayed day's 24 hours of headline figures, ahead of anyone pressing play (about 20 s of
        background work at the city scale, 1 s a hour; an indicator off the headline is computed when asked),
        read from beside the snapshot when a start before computed them for this generation (see
        :meth:`keep_computed`). Not in live mode: there the day moves with the clock and a playback hour is a memo of
        one generation, dropped at the next (seconds later, with a stream): warming them made the start wait 20 s at
        the city scale for tables never read. Playback computes the hours it shows when it is pressed."""
        if self.settings.live:
            return
        gen = self._current()
        for hour in range(1, PLAYBACK_HOURS + 1):
            if self.settings.snapshots:
                ids = playback_indicators()
                self._restored(gen.memo, ("playback", hour, ids), f"playback-{hour}",
                               computed_key(gen, playback_name(hour, ids)))
            self.playback_table(hour)

    def basemap(self):
        """The vector base map of ``CITYTWIN_BASEMAP_PMTILES`` (a :class:`dashboard.maps.basemap.PMTilesBaseMap`,
        memory-mapped, shared by every thread), or None when the deployment has none."""
        if self._basemap is None and self.settings.basemap_pmtiles:
            from dashboard.maps.basemap import PMTilesBaseMap

            self._basemap = PMTilesBaseMap.open(self.settings.basemap_pmtiles)
        return self._basemap

    def layer_freshness(self) -> dict[str, pd.Timestamp]:
        """The newest record of each stored layer (its time column's latest value, else when it was written)."""
        gen = self._current()

        def compute():
            versions = self.stored_versions()
            # Each layer's newest record is kept while that layer is unchanged (MEMO_LAYERS "newest:…"): the stream
            # moves the sensor layers every second, and the max over 3 M orders' times was taken again each time.
            newest = {layer_id: remembered(gen.memo, f"newest:{layer_id}",
                                           lambda layer_id=layer_id: newest_record(gen.city, layer_id))
                      for layer_id in versions}
            return layer_freshness(gen.city, versions, newest)

        return remembered(gen.memo, "freshness", compute)

    def _children_geojson(self, code: str) -> dict:
        return self._geojson_of(self._current(), code)

    @staticmethod
    def _geojson_of(gen: Generation, code: str) -> dict:
        return remembered(gen.geojson, code, lambda: children_geojson(gen.city, code))


ALERT_READS = frozenset({"mark", "frame", "get", "timeline", "rule_bodies", "for_order"})


MAX_UNIT_VIEWS = 200
"""Unit views remembered per generation (a few hundred kB each at most: 221 indicators' rows, a unit's children)."""


@functools.cache
def code_fingerprint() -> str:
    """A digest of the code that computes the window tables (metrics/, layers/ and this module): a table kept by
    another release of it is not used."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("metrics/**/*.py"), *root.glob("layers/**/*.py"), Path(__file__).resolve()]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def computed_key(gen: Generation, window: str) -> str:
    """What a window's table and sparklines are computed from: the layers' versions, the instant the city is shown
    at, the city's settings (time zone, holidays), the window and the code."""
    return " ".join((repr(gen.city.version_key), gen.city.as_of.isoformat(), repr(city_settings.active()), window,
                     code_fingerprint()))


def playback_indicators(indicator_id: str | None = None) -> tuple[str, ...]:
    """The indicators of a playback table: the headline ones and ``indicator_id``."""
    headline = {i for i, ind in INDICATORS.items() if ind.headline}
    return tuple(sorted(headline | ({indicator_id} - {None})))


def playback_name(hour: int, ids: tuple[str, ...]) -> str:
    """What a playback table is of, in :func:`computed_key`'s place of a window."""
    return f"playback {hour} h {','.join(ids)}"


def series_from_frame(frame: pd.DataFrame) -> pd.Series:
    """A :func:`window_series` from its frame (``code``, ``indicator``, ``value``: a list of floats per row)."""
    lists = [np.asarray(values, dtype=float).tolist() for values in frame["value"]]
    return pd.Series(lists, index=pd.MultiIndex.from_frame(frame[["code", "indicator"]]), name="value", dtype=object)


def same_layers(old: City, city: City) -> set[str]:
    """The layers ``city`` has at the same version as ``old``, with "*" when nothing but the alerts changed (the
    same frames at the same clock: layers.city.with_versions)."""
    same = {layer for layer in city.versions.keys() | old.versions.keys()
            if city.versions.get(layer) == old.versions.get(layer)}
    if city.layers is old.layers and city.as_of == old.as_of:
        same |= {"*"}
    return same


def carries_over(key, same: set[str]) -> bool:
    """Whether a generation memo under ``key`` holds in a generation whose unchanged layers are ``same``
    (:data:`MEMO_LAYERS`)."""
    return set(MEMO_LAYERS.get(key[0] if isinstance(key, tuple) else key, ("*",))) <= same


class Kept:
    """A memo for keys that come from the network (a unit, a building, a request's inputs): at most ``limit``
    values, the least recently asked dropped first, so that however many keys a client invents it stays bounded and
    what screens keep asking for stays. Nothing is kept for a None (an unknown id). Thread-safe."""

    def __init__(self, limit: int | None = None):
        self.limit = limit  # None: MAX_UNIT_VIEWS, as it is when a value is kept
        self._values: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, compute):
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = compute()  # outside the lock: two threads may make the same value once each, never wait on one
        if value is not None:
            with self._lock:
                self._values[key] = value
                self._values.move_to_end(key)
                while len(self._values) > (self.limit if self.limit is not None else MAX_UNIT_VIEWS):
                    self._values.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key) -> bool:
        return key in self._values

    def __getitem__(self, key):
        return self._values[key]


def kept(memo: dict, name: str, key, compute):
    """``compute()`` kept under ``key`` in the bounded memo ``memo[name]`` (:class:`Kept`); it carries over
    generations as :data:`MEMO_LAYERS` says of ``name``."""
    return memo.setdefault(name, Kept()).get(key, compute)


def give_back_free_memory() -> None:
    """Hand the heap pages freed since back to the system (``malloc_trim``). glibc keeps freed pages for the
    process's next allocations; after the warm-up those are 0.4 GB at the city scale (the shared facts, the windows'
    temporaries), which the master kept for good and several workers forked from it each counted, and every live
    generation frees the last one's. Linux with glibc only (elsewhere nothing is done)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def remembered(memo: dict, key, compute):
    """``memo[key]``, computed by ``compute()`` the first time — once, however many threads ask at the same time
    (the others wait for it): a window's table is seconds of work at the city scale, and eight requests for a
    window nobody had looked at would each have made it."""
    value = memo.get(key, _MISSING)
    if value is not _MISSING:
        return value
    with _computing(memo, key):
        value = memo.get(key, _MISSING)
        if value is _MISSING:
            value = memo[key] = compute()
    return value


_MISSING = object()
_FLIGHTS: dict = {}  # (id(memo), key) → [lock, threads waiting or computing]
_FLIGHTS_LOCK = threading.Lock()


@contextlib.contextmanager
def _computing(memo: dict, key):
    """Holds the lock of ``memo[key]``'s computation (one per memo and key, gone when nobody holds or waits)."""
    flight_key = (id(memo), key)
    with _FLIGHTS_LOCK:
        flight = _FLIGHTS.setdefault(flight_key, [threading.RLock(), 0])
        flight[1] += 1
    try:
        with flight[0]:
            yield
    finally:
        with _FLIGHTS_LOCK:
            flight[1] -= 1
            if not flight[1]:
                _FLIGHTS.pop(flight_key, None)


def resolved_unit(city: City, code: str | None) -> str:
    """``code`` if the city has that unit, else the top unit's code (the city's, or its province's)."""
    units = city.units
    if code and code in units.index:
        return code
    return top_unit(units)


def top_unit(units: pd.DataFrame) -> str:
    """The code of the unit at the top of the hierarchy: the province of a province store, else the city."""
    for level in ALL_LEVELS:
        codes = units.loc[units["level"] == level, "code"]
        if len(codes):
            return codes.iloc[0]
    raise ValueError("the store holds no administrative units")


def window_table(city: City, window: str, sums: WindowSums | None = None) -> pd.DataFrame:
    """Every indicator of every unit for a named window and the one before it, indexed by (code, indicator): a view
    reads one unit's rows, not a scan of 800,000. The indicators of ``sums`` (the window's, at ``city``) take their
    rows from it."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}")
    table = compared_rows(city, window, list(INDICATORS), sums)
    return rank_among_siblings(table, city.units).set_index(["code", "indicator"], drop=False).sort_index()


def compared_rows(city: City, window: str, indicator_ids: list[str], sums: WindowSums | None) -> pd.DataFrame:
    """:func:`metrics.engine.compare_named` of ``indicator_ids``, those that ``sums`` holds from its sums."""
    from_sums = [i for i in indicator_ids if sums is not None and i in sums.ids]
    others = [i for i in indicator_ids if i not in set(from_sums)]
    frames = [compare_named(city, window, others)] if others else []
    if from_sums:
        rows = sums.table(city)
        frames.append(rows if len(from_sums) == len(sums.ids) else rows[rows["indicator"].isin(from_sums)])
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def with_rows_updated(table: pd.DataFrame, city: City, window: str, indicator_ids: list[str],
                      sums: WindowSums | None = None, memo: dict | None = None) -> pd.DataFrame:
    """``table`` (a :func:`window_table`) with the rows of ``indicator_ids`` brought up to date on ``city`` (those
    that ``sums`` holds from it): the same as computing them again, but only the rows whose figures changed are
    judged again, and only their siblings ranked again, written into a copy by position. A batch of the stream
    changes a few thousand of the city's 870,000 rows; building, judging and ranking them all was most of a
    refresh. ``memo`` (the generation's) keeps where each unit's row of each indicator sits in the table."""
    if not indicator_ids:
        return table
    figures = unit_figures(city, window, indicator_ids, sums)
    key = ("table_layout", window)
    layout = None if memo is None else memo.get(key)
    if layout is None or layout[0] is not table.index or layout[1] != figures.ids:
        pairs = pd.MultiIndex.from_arrays([np.tile(figures.codes, len(figures.ids)),
                                           np.repeat(np.array(figures.ids, dtype=object), len(figures.codes))])
        positions = table.index.get_indexer(pairs).reshape(len(figures.ids), -1)
        # Every unit has a row for each indicator on the indicator's own levels, and no other: else the table is
        # not of these units (it is then computed again whole, below).
        expected = np.vstack([np.isin(figures.levels, INDICATORS[i].levels) for i in figures.ids])
        layout = (table.index, figures.ids, positions, bool(((positions >= 0) == expected).all()))
        if memo is not None:
            memo[key] = layout
    if not layout[3]:
        return window_table(city, window, sums)
    positions = layout[2]
    shown = positions >= 0  # an indicator has rows on its own levels only
    at = positions[shown]
    new = {name: getattr(figures, name)[shown] for name in ("value", "numerator", "denominator", "previous")}
    changed = np.zeros(len(at), dtype=bool)
    for name, values in new.items():
        old = table[name].to_numpy(dtype=float)[at]
        changed |= ~((values == old) | (np.isnan(values) & np.isnan(old)))
    if not changed.any():
        return table
    indicator_of = np.repeat(np.arange(len(figures.ids)), len(figures.codes)).reshape(positions.shape)[shown]
    unit_of = np.tile(np.arange(len(figures.codes)), len(figures.ids)).reshape(positions.shape)[shown]
    ids = np.array(figures.ids, dtype=object)
    # The changed rows judged as compare_named judges them: by value, volumes by their rise (one clock at a time).
    judged = []
    for clock_window in set(figures.windows.values()):
        rows = changed & np.isin(indicator_of, [k for k, i in enumerate(figures.ids)
                                                if figures.windows[i] == clock_window])
        if not rows.any():
            continue
        current = pd.DataFrame({
            "code": figures.codes[unit_of[rows]], "level": figures.levels[unit_of[rows]],
            "indicator": ids[indicator_of[rows]], "value": new["value"][rows],
            "numerator": new["numerator"][rows], "denominator": new["denominator"][rows]})
        state = np.empty(int(rows.sum()), dtype=object)
        for k in np.unique(indicator_of[rows]):
            mine = indicator_of[rows] == k
            state[mine] = INDICATORS[ids[k]].state_of(new["value"][rows][mine])
        current["state"] = state
        before = current[["code", "level", "indicator"]].assign(value=new["previous"][rows])
        judged.append((at[rows], compared(city, clock_window, current, before)))
    # The siblings of a unit whose value changed are ranked again, each group whole.
    parents = city.units["parent_code"].reindex(figures.codes).to_numpy(dtype=object)
    parent_of, _ = pd.factorize(parents[unit_of])  # -1: the top unit, ranked among none
    group = indicator_of.astype(np.int64) * (parent_of.max(initial=0) + 2) + parent_of
    value_changed = changed & ~((new["value"] == table["value"].to_numpy(dtype=float)[at])
                                | (np.isnan(new["value"]) & np.isnan(table["value"].to_numpy(dtype=float)[at])))
    members = np.isin(group, np.unique(group[value_changed & (parent_of >= 0)]))
    ranked = rank_among_siblings(pd.DataFrame({"code": figures.codes[unit_of[members]],
                                               "indicator": ids[indicator_of[members]],
                                               "value": new["value"][members]}), city.units)
    columns = {name: table[name] for name in table.columns}
    writes = {name: [] for name in ("value", "numerator", "denominator", "previous", "change", "rank", "siblings")}
    states_at, states = [], []
    for rows_at, rows in judged:
        for name in ("value", "numerator", "denominator", "previous", "change"):
            writes[name].append((rows_at, rows[name].to_numpy(dtype=float)))
        states_at.append(rows_at)
        states.append(rows["state"])
    writes["rank"].append((at[members], ranked["rank"].to_numpy(dtype=float)))
    writes["siblings"].append((at[members], ranked["siblings"].to_numpy(dtype=float)))
    # A column is copied (870,000 rows) only when one of its figures changed: a minute's step of the clock moves
    # the values and their ranks, seldom the window before's figures.
    for name, parts in writes.items():
        old = table[name].to_numpy(dtype=float)
        if any(not _same_floats(old[rows_at], new_values) for rows_at, new_values in parts):
            columns[name] = old.copy()
            for rows_at, new_values in parts:
                columns[name][rows_at] = new_values
    # Most changed figures keep their state: the column of 870,000 strings is written again only when one moved.
    states_at, states = np.concatenate(states_at), pd.concat(states, ignore_index=True).to_numpy(dtype=object)
    was = table["state"].array._pa_array.take(pa.array(states_at)).to_numpy(zero_copy_only=False)
    moved = states != was
    if moved.any():
        columns["state"] = _strings_replaced(table["state"], states_at[moved], pd.Series(states[moved]))
    return pd.DataFrame(columns, index=table.index, copy=False)


def _same_floats(one: np.ndarray, other: np.ndarray) -> bool:
    return bool(((one == other) | (np.isnan(one) & np.isnan(other))).all())


def _strings_replaced(column: pd.Series, positions: np.ndarray, values: pd.Series) -> pd.Series:
    """``column`` with ``values`` at ``positions``, in Arrow (a round trip through Python strings costs ~1 s per
    million rows: most of a partial recompute's time)."""
    order = np.argsort(positions)
    mask = np.zeros(len(column), dtype=bool)
    mask[positions] = True
    arrow = column.array._pa_array.combine_chunks()
    if isinstance(values.array, ArrowStringArray):
        replacements = values.array._pa_array.combine_chunks().take(pa.array(order)).cast(arrow.type)
    else:
        replacements = pa.array(values.to_numpy(dtype=object)[order], type=arrow.type, from_pandas=True)
    replaced = pc.replace_with_mask(arrow, pa.array(mask), replacements)
    return pd.Series(ArrowStringArray(replaced, dtype=column.dtype), index=column.index, copy=False)


def with_series_recomputed(points: pd.Series, city: City, window: str, indicator_ids: list[str],
                           steps: StepSums | None = None, known: dict | None = None) -> pd.Series:
    """``points`` (a :func:`window_series`) with the headline indicators among ``indicator_ids`` computed again on
    ``city``: those that ``steps`` holds (the window's step sums at ``city``) from its sums, the others in every
    step. The same as computing the window's series again: the steps' bounds move with the clock, and an
    indicator judged at each step's end (online rates, active alarms) changes in every step when a sensor is heard
    from (it was last seen after every earlier step). When the number of steps changed (``today`` began an hour),
    the series is computed again whole. ``known``: what the last call for these points wrote (see
    :func:`_points_written`), brought up to date."""
    wanted = [i for i in indicator_ids if INDICATORS[i].headline]
    if not wanted:
        return points
    values = points.to_numpy(copy=True)
    for as_of, ids in by_clock(city, wanted).items():
        named = named_window(window, as_of)
        count = sparkline_steps(named)
        summed = [i for i in ids if steps is not None and i in steps.ids and steps.window == named]
        if summed:
            codes, fresh = steps.values(city)
            if not _points_written(values, points.index, list(steps.ids), codes, fresh, count, known):
                return window_series(city, window)
        others = [i for i in ids if i not in summed]
        if others:
            codes, fresh = _step_values(city, named, count, others)
            if not _points_written(values, points.index, others, codes, fresh, count, known):
                return window_series(city, window)
    return pd.Series(values, index=points.index, name=points.name)


def _step_values(city: City, named: Window, count: int, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The units' codes and the values of ``ids`` in each of the window's ``count`` steps, steps × (ids × units)."""
    recent = rows_from(city, named.start, ids)  # the rows of the window's own hours, for those whose rows add up
    sums = []
    for sub in step_windows(named, count):
        scratch = copy.copy(recent)
        scratch.memo = {}
        sums.append(grid_matrices(scratch, sub, ids))
    # compute()'s values without its table: building and judging the tidy rows of every step cost more than the
    # sums (the points keep values only).
    return stepped_unit_values(ids, sums, city.hierarchy, groups=city_level_groups(city))


def _points_written(values: np.ndarray, index: pd.MultiIndex, ids: list[str], codes: np.ndarray,
                    fresh: np.ndarray, count: int, known: dict | None = None) -> bool:
    """``fresh`` (steps × (ids × units), each row the ids' blocks of ``codes``) written into ``values`` (the points'
    lists, by ``index``) where they changed; False, with nothing written, when the points have another number of
    steps than ``fresh``. ``known``: what the last write of these ids left (their positions and the values they
    were given), which spares reading the lists back; brought up to date."""
    key = tuple(ids)
    last = None if known is None else known.get(key)
    if last is not None and last[0] is index and last[1].shape == fresh.shape and np.array_equal(last[2], codes):
        # The lists hold what the last write gave them (the same points, written from these positions).
        _index, was_fresh, _codes, positions, rows = last
        was = was_fresh[:, rows]
    else:
        positions = index.get_indexer(pd.MultiIndex.from_arrays(
            [np.tile(codes, len(ids)), np.repeat(np.array(ids, dtype=object), len(codes))]))
        rows = np.flatnonzero(positions >= 0)
        if len(fresh) != count or any(len(values[p]) != count for p in positions[rows]):
            return False
        # One pass over the floats of every list (an array made of the lists themselves took four times as long).
        was = np.fromiter(itertools.chain.from_iterable(values[p] for p in positions[rows]), dtype=float,
                          count=len(rows) * count).reshape(len(rows), count).T
    # Only the points that changed are written (a new list each: the old generation keeps its own); most
    # units' steps stay as they were, and rewriting tens of thousands of lists cost more than the sums.
    now = fresh[:, rows]
    changed = ~((now == was) | (np.isnan(now) & np.isnan(was))).all(axis=0)
    for row, position in zip(np.flatnonzero(changed), positions[rows][changed]):
        values[position] = now[:, row].tolist()
    if known is not None:
        known[key] = (index, fresh, codes, positions, rows)
    return True


def window_series(city: City, window: str, indicator_ids: list[str] | None = None) -> pd.DataFrame:
    """The headline indicators over a named window's steps (hours of today, days of 7 and 30 days), every unit,
    indexed by (code, indicator) with the values in step order."""
    headline = indicator_ids or [i for i, ind in INDICATORS.items() if ind.headline]
    frames = []
    for as_of, ids in by_clock(city, headline).items():  # sensor sparklines end at the sensors' newest record
        named = named_window(window, as_of)
        frames.append(series(city, named, ids, sparkline_steps(named)))
    points = pd.concat(frames, ignore_index=True)
    return lists_by_unit_and_indicator(points)


def lists_by_unit_and_indicator(points: pd.DataFrame) -> pd.Series:
    """Each (code, indicator)'s values in step order, as a list, indexed by (code, indicator) in sorted order: what
    ``groupby(["code", "indicator"])["value"].agg(list)`` gives, cut from one array sorted on integer keys instead
    of a Python call per group (tens of thousands of groups: seconds of every start)."""
    code_ids, codes = pd.factorize(points["code"], sort=True)
    indicator_ids, indicators = pd.factorize(points["indicator"], sort=True)
    steps = points["step"].to_numpy(dtype="int64")
    group = code_ids.astype("int64") * len(indicators) + indicator_ids
    # One integer key (a lexsort of the three columns took four times as long)
    order = np.argsort(group * (int(steps.max(initial=0)) + 1) + steps, kind="stable")
    code_ids, indicator_ids, group = code_ids[order], indicator_ids[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.array([], dtype=int)
    values = points["value"].to_numpy(dtype=float)[order]
    lists = [part.tolist() for part in np.split(values, starts[1:])] if len(starts) else []
    index = pd.MultiIndex.from_arrays([codes.take(code_ids[starts]), indicators.take(indicator_ids[starts])],
                                      names=["code", "indicator"])
    return pd.Series(lists, index=index, name="value", dtype=object)


def newest_record(city: City, layer_id: str) -> pd.Timestamp | None:
    """The latest value of a loaded layer's time column; None when it has none or no rows."""
    spec = LAYERS.get(layer_id)
    frame = city.layers.get(layer_id)
    if spec is not None and spec.time_column and frame is not None and len(frame):
        return frame[spec.time_column].max()
    return None


def layer_freshness(city: City, versions: dict[str, dict], newest: dict | None = None) -> dict[str, pd.Timestamp]:
    """Each stored layer's newest record (``newest``, made by :func:`newest_record` when not given), else when it
    was written."""
    freshness = {}
    for layer_id, version in versions.items():
        found = newest[layer_id] if newest is not None and layer_id in newest else newest_record(city, layer_id)
        freshness[layer_id] = (found if found is not None and not pd.isna(found) else
                               pd.Timestamp(version["written_at"], unit="s", tz="UTC").tz_convert(city_timezone()))
    return freshness


SIMPLIFY_SPAN_DIVISOR = 1500
"""Units are never drawn finer than about half a pixel of the map that shows them whole (their span over ~800
free pixels): Guangdong's 21 cities at the per-level tolerance for cities were 35,000 points, 800 kB, and the
map took 0.3-2 s to pick one under a click on a loaded machine; at half a pixel they are 10,000 and look the same."""


def simplify_tolerance(level: str, bounds) -> float:
    """The tolerance (degrees) for units of ``level`` spanning ``bounds``: the level's, or half a pixel of the map
    that shows them whole if coarser.

    >>> simplify_tolerance("district", (113.75, 22.40, 114.63, 22.86))  # Shenzhen's districts: the level's
    0.0008
    >>> round(simplify_tolerance("city", (109.66, 20.21, 117.32, 25.52)), 4)  # Guangdong's cities: half a pixel
    0.0051
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    span = max(maxx - minx, maxy - miny)
    return max(SIMPLIFY[level], span / SIMPLIFY_SPAN_DIVISOR if span == span else 0.0)


def children_geojson(city: City, code: str) -> dict:
    """The children of a unit (or the unit itself, for a grid cell) as simplified GeoJSON."""
    children = city.children(code)
    if not len(children):
        children = city.units.loc[[code]]
    level = children["level"].iloc[0]
    geometries = children.geometry.to_numpy()
    tolerance = simplify_tolerance(level, children.total_bounds)
    try:
        # Simplify siblings together so that their shared edges stay shared (no slivers, no overlaps).
        simplified = shapely.coverage_simplify(geometries, tolerance)
    except Exception:  # an invalid coverage (e.g. imported boundaries that overlap): simplify one by one
        simplified = shapely.simplify(geometries, tolerance, preserve_topology=True)
    simplified = shapely.set_precision(simplified, 1e-5)
    # Each name's parent, so that a label can drop what the breadcrumb already says ("1号网格", not
    # "罗湖第1街道1号社区1号网格": deck.gl draws a long Chinese label over its neighbours).
    parents = city.units.reindex(children["parent_code"].astype(object))
    features = []
    for row, geometry, parent_name, parent_name_zh in zip(children.itertuples(), simplified,
                                                          parents["name"].to_numpy(), parents["name_zh"].to_numpy()):
        point = geometry.representative_point() if not geometry.is_empty else None
        features.append({
            "type": "Feature",
            "geometry": shapely.geometry.mapping(geometry),
            "properties": {"code": row.code, "name": row.name, "name_zh": row.name_zh, "level": row.level,
                           "parent_name": None if pd.isna(parent_name) else parent_name,
                           "parent_name_zh": None if pd.isna(parent_name_zh) else parent_name_zh,
                           "label_point": [round(point.x, 5), round(point.y, 5)] if point else None},
        })
    return {"type": "FeatureCollection", "features": features}


@dataclass(frozen=True)
class BuildingCard:
    building: dict               # the building's row: id, use, height, floors, year, residents, high-rise flag
    grid_code: str
    lineage: list[dict]          # the grid cell's lineage, city first
    bounds: tuple[float, float, float, float]
    sensors: pd.DataFrame        # its sensors: kind, status, state, open alarm, last reading and its time
    fire: dict                   # fire-IoT status: detectors, online, in alarm, state (high-rises have detectors)
    open_orders: pd.DataFrame    # open orders within ORDER_RADIUS_M of the footprint, newest first
    as_of: pd.Timestamp


ORDER_RADIUS_M = 50.0
PLAYBACK_HOURS = 24


def latest_readings(city: City, sensor_ids=None) -> pd.DataFrame:
    """Each sensor's last reading (value, ts), indexed by sensor id; only ``sensor_ids``' when given (a building's
    few sensors: picked out before grouping, not after grouping the city's million readings, 0.17 s a live
    generation at the city scale)."""
    if "readings" not in city.layers or not len(city["readings"]):
        return pd.DataFrame({"value": pd.Series(dtype=float), "ts": pd.Series(dtype="datetime64[ns, UTC]")})
    readings = city["readings"]
    if sensor_ids is not None:
        readings = readings[readings["sensor_id"].isin(sensor_ids).to_numpy()]
    last = readings["ts"].groupby(readings["sensor_id"]).idxmax()
    return readings.loc[last.to_numpy(), ["sensor_id", "value", "ts"]].set_index("sensor_id")


@dataclass(frozen=True)
class BuildingPlace:
    """The part of a building card that the buildings, orders and units alone decide (not the sensors)."""
    building: dict
    grid_code: str
    lineage: list[dict]
    bounds: tuple[float, float, float, float]
    open_orders: pd.DataFrame
    high_rise: bool


def building_place(city: City, building_id: str) -> BuildingPlace | None:
    """A building's row, its grid cell's lineage and the open orders within ORDER_RADIUS_M of its footprint, or
    None for an unknown building."""
    buildings = city["buildings"]
    match = np.flatnonzero(buildings["building_id"].to_numpy() == building_id)
    if not len(match):
        return None
    row = buildings.iloc[match[0]]
    open_orders = pd.DataFrame(columns=["order_id", "event_type", "status", "received_at", "deadline_at"])
    if "orders" in city.layers:
        orders = city["orders"]
        cell = row["grid_index"] if "grid_index" in row else city.hierarchy.index.get_loc(row["grid_code"])
        in_cell = orders["grid_index"].to_numpy() == cell  # integers: a string compare of 3 M orders is 0.3 s
        near = orders[in_cell]
        near = near[near["status"] != "closed"]
        if len(near):
            footprint = gpd.GeoSeries([row.geometry], crs="EPSG:4326").to_crs(METRIC_CRS).iloc[0]
            points = gpd.GeoSeries(gpd.points_from_xy(near["lon"], near["lat"]), crs="EPSG:4326").to_crs(METRIC_CRS)
            distance = points.distance(footprint).to_numpy()
            open_orders = (near[distance <= ORDER_RADIUS_M].assign(distance_m=distance[distance <= ORDER_RADIUS_M])
                           .sort_values("received_at", ascending=False))
    lineage = [dict(code=c, level=city.units.at[c, "level"], name=city.units.at[c, "name"],
                    name_zh=city.units.at[c, "name_zh"]) for c in city.lineage(row["grid_code"])]
    building = {k: row[k] for k in ("building_id", "use", "height_m", "floors", "year_built", "residents",
                                    "high_rise_100m")}
    return BuildingPlace(building=building, grid_code=row["grid_code"], lineage=lineage,
                         bounds=tuple(row.geometry.bounds), open_orders=open_orders,
                         high_rise=bool(row["high_rise_100m"]))


def building_card(city: City, building_id: str, sensor_states: pd.DataFrame,
                  place: BuildingPlace | None = None) -> BuildingCard | None:
    """What the building card shows, or None for an unknown building; ``place`` is ``building_place(city,
    building_id)`` when the caller kept it from an earlier generation with the same buildings, orders and units."""
    place = place if place is not None else building_place(city, building_id)
    if place is None:
        return None
    sensors = sensor_states[sensor_states["building_id"] == building_id].copy()
    latest = latest_readings(city, sensors["sensor_id"])
    if len(latest):  # alarm-only kinds (smoke, …) have sensors but no readings
        sensors["last_value"] = sensors["sensor_id"].map(latest["value"])
        sensors["last_at"] = sensors["sensor_id"].map(latest["ts"])
    else:
        sensors["last_value"] = np.nan
        sensors["last_at"] = pd.NaT
    smoke = sensors[sensors["kind"] == "smoke"]
    in_alarm = int(smoke["state"].isin(["warning", "critical"]).sum())
    offline = int(smoke["status"].isin(["offline", "fault"]).sum())
    fire_state = ("no_data" if not len(smoke) else "critical" if in_alarm else "watch" if offline else "good")
    fire = {"detectors": int(len(smoke)), "online": int(len(smoke) - offline), "in_alarm": in_alarm,
            "state": fire_state, "high_rise": place.high_rise}
    return BuildingCard(building=place.building, grid_code=place.grid_code, lineage=place.lineage,
                        bounds=place.bounds, sensors=sensors, fire=fire, open_orders=place.open_orders,
                        as_of=city.as_of)


_services: Services | None = None


def configure(database_url: str | None = None, progress: bool = False,
              settings: Settings | None = None) -> Services:
    global _services
    settings = settings or Settings.from_environ()
    store = Store(database_url or settings.database_url, timeouts=settings.store_timeouts,
                  snapshot_dir=settings.snapshot_dir)
    try:  # the city's time zone and calendar are in force before any page asks for a clock
        city_settings.activate(city_settings.checked(store.city_settings()))
    except ValueError as error:
        raise SystemExit(f"error: the city's stored settings: {error}") from None
    _services = Services(store, progress=progress, settings=settings)
    return _services


def get() -> Services:
    if _services is None:
        return configure()
    return _services
