"""The indicator engine on Dask distributed: the same registry, formulas and roll-up as :mod:`metrics.engine`, run
as Dask tasks over the monthly history files (:mod:`layers.history`), for windows longer than the city in memory
(a year, the same window last year) and for histories larger than one machine.

How a table is computed (``compute``, with the same columns as :func:`metrics.engine.compute`):

1. Indicators over a history layer (orders, readings, alarms: the first of their ``inputs``) are computed per
   monthly partition, each partition a Dask task that reads its file and runs :func:`metrics.engine.grid_matrices`
   on it, with the context layers (units, sensors, event types, buildings) beside it. Every such formula is a sum
   over the layer's rows (an order's contribution depends on that order and the window alone), so the grid sums
   of the partitions add up to the grid sums of the whole layer. A partition that cannot hold a contributing row
   is not read: rows are never counted after the window's end (every formula asks "before the end"), and the
   formulas of :data:`WINDOWED` count only rows whose time lies in the window; the others (open orders, overdue
   orders, active alarms: a snapshot at the window's end) read every month before the end.
2. A formula may add rows of a context layer too (the residents under "requests per 10,000 residents"): each task
   would add them once more, so they are counted once — the sums of the formula over the context alone (the
   history layer empty) are taken off ``n − 1`` times for ``n`` partitions. Coverage (which cells have a source)
   is the union over the partitions.
3. Indicators over the other layers (buildings, cameras, incidents, patrols, …) are not split by month: a layer
   such as the sensors or the patrols is a snapshot, and a figure like "cells patrolled in the last 24 hours" counts
   distinct cells, not rows. They are computed whole, on the city given (its layers other than the history's).
4. The grid sums are added across partitions on the cluster (a tree of sums), then rolled up and divided by
   :func:`metrics.engine.roll_up`, exactly as in memory.

The cluster: ``CITYTWIN_DASK_SCHEDULER`` (``tcp://host:8786``) names a running scheduler; without it
:func:`dask_client` starts a ``distributed.LocalCluster`` of worker processes on this machine.

>>> with dask_client(workers=2) as client:                                     # doctest: +SKIP
...     table = compute(History("data/history"), named_window("12m", as_of), city, client=client)
"""
from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from layers.city import City, build_hierarchy
from layers.history import HISTORY_LAYERS, History, HistoryError, Partition
from layers.load import empty_frame
from layers.specs import ALL_LEVELS
from metrics.engine import COLUMNS, grid_matrices, roll_up
from metrics.engine import compute as engine_compute
from metrics.registry import INDICATORS
from metrics.spec import Window

SCHEDULER_VARIABLE = "CITYTWIN_DASK_SCHEDULER"

# Base indicators whose formula counts only rows whose time column (layers.history.HISTORY_LAYERS) lies in the
# window: partitions outside the window are not read for them. An indicator not listed here reads every partition
# before the window's end, which is always right and only slower; listing a snapshot here would be wrong (the
# parity test of tests/test_distributed.py compares every indicator with the engine in memory).
WINDOWED = frozenset({
    "order_volume", "on_time_rate", "satisfaction_rate", "reopen_rate", "average_handling_days",
    "response_24h_rate", "orders_per_10k_residents",
    "pm25_exceedance_hours", "pm25_mean", "noise_mean", "night_noise_hours", "water_level_high_hours",
    "traffic_flow_mean",
})


def history_layer(indicator_id: str) -> str | None:
    """The history layer an indicator is computed over, partition by partition (None: computed whole)."""
    layer = INDICATORS[indicator_id].inputs[0]
    return layer if layer in HISTORY_LAYERS else None


def is_windowed(indicator_id: str) -> bool:
    indicator = INDICATORS[indicator_id]
    return (indicator.family.base if indicator.family else indicator.id) in WINDOWED


@dataclass
class PartialSums:
    """Grid sums of the partitioned indicators (rows: ``ids``), added over some partitions; ``runs`` counts for each
    indicator the partitions added."""

    numerator: np.ndarray
    denominator: np.ndarray
    covered: np.ndarray
    runs: np.ndarray
    bytes_read: int = 0
    rows_read: int = 0
    partitions: int = 0


def add(a: PartialSums, b: PartialSums) -> PartialSums:
    return PartialSums(a.numerator + b.numerator, a.denominator + b.denominator, np.maximum(a.covered, b.covered),
                       a.runs + b.runs, a.bytes_read + b.bytes_read, a.rows_read + b.rows_read,
                       a.partitions + b.partitions)


@functools.lru_cache(maxsize=4)
def _context(root: str, city: str, stamp: float) -> City:
    """The context layers as a city (hierarchy built, grid positions given), once per worker process and history
    version (``stamp``: the manifest's modification time)."""
    frames = History(root).context(city, shapes=False)
    units = frames.pop("units")
    return City(units=units, hierarchy=build_hierarchy(units), layers=frames)


def _with_layer(context: City, layer: str, frame: pd.DataFrame) -> City:
    """``context`` with ``layer`` added, derived as :class:`layers.city.City` derives it (grid cell, kind, …)."""
    scratch = {name: context.layers[name].copy(deep=False) for name in ("sensors", "event_types")}
    City(units=context.units, hierarchy=context.hierarchy, layers={**scratch, layer: frame})  # derives ``frame``
    # City gives the derived labels as Python strings; the formulas compare them with ``==`` millions of times per
    # partition (a reading's kind: 30 s of a month's 5.7 M readings), which categoricals do on integer codes.
    for column in ("kind", "category"):
        if column in frame:
            frame[column] = frame[column].astype("category")
    return City(units=context.units, hierarchy=context.hierarchy, layers={**context.layers, layer: frame},
                derived=True)


def partition_sums(root: str, stamp: float, partition: Partition, rows: list[int], ids: list[str],
                   window: Window) -> PartialSums:
    """One Dask task: the grid sums of the indicators ``ids[r] for r in rows`` over one partition's rows, in a
    result whose rows are all of ``ids`` (zero elsewhere), so that results of any partitions add up."""
    context = _context(root, partition.context or partition.city, stamp)
    size = len(context.hierarchy)
    wanted = [ids[r] for r in rows]
    columns = partition.metric_columns()
    frame = partition.read(columns, categorical=True)
    numerator, denominator, covered = grid_matrices(_with_layer(context, partition.layer, frame), window, wanted)
    result = _zeros(len(ids), size)
    result.numerator[rows], result.denominator[rows], result.covered[rows] = numerator, denominator, covered
    result.runs[rows] = 1
    result.bytes_read, result.rows_read, result.partitions = partition.bytes_of(columns), len(frame), 1
    return result


def _zeros(count: int, size: int) -> PartialSums:
    return PartialSums(np.zeros((count, size)), np.zeros((count, size)), np.zeros((count, size)),
                       np.zeros(count, dtype=np.int64))


def plan(history: History, window: Window, ids: list[str]) -> list[tuple[Partition, list[int]]]:
    """Which partitions to read, and for which indicators (row numbers in ``ids``) each."""
    jobs = []
    for layer in HISTORY_LAYERS:
        rows = [r for r, i in enumerate(ids) if history_layer(i) == layer]
        if not rows:
            continue
        partitions = [p for p in history.partitions(layer) if p.start < window.end]
        windowed = [r for r in rows if is_windowed(ids[r])]
        snapshot = [r for r in rows if not is_windowed(ids[r])]
        chosen = {}
        for p in partitions:
            wanted = snapshot + (windowed if p.overlaps(window.start, window.end) else [])
            if wanted:
                chosen[p] = sorted(wanted)
        # A formula run on rows that cannot contribute adds nothing but says that the layer has rows at all (an
        # order volume of 0, not "no data"): an indicator no partition is read for is run on one partition.
        unread = [r for r in rows if not any(r in wanted for wanted in chosen.values())]
        available = history.partitions(layer)
        if unread and available:
            first = available[0]
            chosen[first] = sorted(set(chosen.get(first, [])) | set(unread))
        jobs.extend(chosen.items())
    return jobs


@dataclass
class Run:
    """What one ``compute`` read: for the bench."""

    partitions: int = 0
    bytes_read: int = 0
    rows_read: int = 0


def compute(history: History, window: Window, city: City, indicator_ids: Iterable[str] | None = None,
            levels: Iterable[str] = ALL_LEVELS, client=None, run: Run | None = None) -> pd.DataFrame:
    """:func:`metrics.engine.compute` over the history files: the same tidy table, computed by Dask tasks.

    ``city`` gives the unit hierarchy and the layers that are not history (it may hold history layers too: they
    are not read; the files are). Its hierarchy must be the one the history was written with.
    """
    ids = list(indicator_ids or INDICATORS)
    levels = list(levels)
    if not ids:
        return pd.DataFrame(columns=COLUMNS)
    size = len(city.hierarchy)
    partitioned = [i for i in ids if history_layer(i) is not None]
    whole = [i for i in ids if history_layer(i) is None]
    matrices = {}
    static = _without_history(city)
    if whole:
        matrices.update(zip(whole, zip(*grid_matrices(static, window, whole))))
    if partitioned:
        context_units = history.context()["units"]
        if list(build_hierarchy(context_units)["grid"]) != list(city.hierarchy["grid"]):
            raise HistoryError(f"{history.root} was written for another unit hierarchy than the city's: "
                               f"write the history again (python -m layers.history {history.root})")
        # The formulas over the context alone (history layers empty): what each partition adds once too many.
        alone = grid_matrices(static, window, partitioned)
        total = _run_partitions(history, window, partitioned, size, client)
        if run is not None:
            run.partitions += total.partitions
            run.bytes_read += total.bytes_read
            run.rows_read += total.rows_read
        several = np.maximum(total.runs - 1, 0)[:, None]
        numerator = np.where(total.runs[:, None] > 0, total.numerator - several * alone[0], alone[0])
        denominator = np.where(total.runs[:, None] > 0, total.denominator - several * alone[1], alone[1])
        covered = np.where(total.runs[:, None] > 0, total.covered, alone[2])
        matrices.update({i: (numerator[k], denominator[k], covered[k]) for k, i in enumerate(partitioned)})
    stacked = tuple(np.vstack([matrices[i][part] for i in ids]).reshape(len(ids), size) for part in range(3))
    return roll_up(ids, *stacked, city.hierarchy, levels)


def _without_history(city: City) -> City:
    """The city with its history layers empty (with their columns), derived again on shallow copies."""
    layers = {name: frame.copy(deep=False) for name, frame in city.layers.items()}
    layers.update({name: empty_frame(name) for name in HISTORY_LAYERS})
    return City(units=city.units, hierarchy=city.hierarchy, layers=layers)


def _run_partitions(history: History, window: Window, ids: list[str], size: int, client) -> PartialSums:
    jobs = plan(history, window, ids)
    if not jobs:
        return _zeros(len(ids), size)
    root = str(history.root.resolve())
    stamp = (history.root / "manifest.json").stat().st_mtime
    if client is None:  # no cluster: the same tasks in this process (small histories, tests of the plan)
        total = _zeros(len(ids), size)
        for partition, rows in jobs:
            total = add(total, partition_sums(root, stamp, partition, rows, ids, window))
        return total
    futures = [client.submit(partition_sums, root, stamp, partition, rows, ids, window, pure=False,
                             key=f"partition_sums-{partition.layer}-{partition.month}-{os.urandom(4).hex()}")
               for partition, rows in jobs]
    # Add the partitions' sums pairwise on the workers: one result travels back, not one per month.
    while len(futures) > 1:
        pairs = [client.submit(add, a, b, pure=False) for a, b in zip(futures[::2], futures[1::2])]
        futures = pairs + ([futures[-1]] if len(futures) % 2 else [])
    return futures[0].result()


@contextlib.contextmanager
def dask_client(workers: int = 2, memory_limit: str = "4GiB", address: str | None = None):
    """A ``distributed.Client``: to the scheduler at ``address`` or ``$CITYTWIN_DASK_SCHEDULER``, else to a
    ``LocalCluster`` of ``workers`` single-threaded worker processes of ``memory_limit`` each, closed on exit."""
    from distributed import Client, LocalCluster
    address = address or os.environ.get(SCHEDULER_VARIABLE, "").strip() or None
    if address is not None:
        if "://" not in address:
            raise ValueError(f"{SCHEDULER_VARIABLE}={address!r} is not a scheduler address such as "
                             f"tcp://127.0.0.1:8786")
        with Client(address, timeout="30s") as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                      host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def compute_window(city: City, window: Window, history: History | None = None,
                   indicator_ids: Iterable[str] | None = None, levels: Iterable[str] = ALL_LEVELS) -> pd.DataFrame:
    """The engine for the window: in memory when the city holds it, else over ``history`` on the cluster of
    :func:`dask_client` (``$CITYTWIN_DASK_SCHEDULER``, or a LocalCluster started for the call)."""
    if history is None or not needs_history(window, city):
        return engine_compute(city, window, indicator_ids, levels)
    with dask_client() as client:
        return compute(history, window, city, indicator_ids, levels, client=client)


def needs_history(window: Window, city: City) -> bool:
    """True when ``window`` begins before the city in memory does: compute it here, over the history files."""
    starts_at = city.starts_at
    return starts_at is None or window.start < starts_at


