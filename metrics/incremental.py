"""Taking in new data without recomputing the city: grid sums kept for a window and brought up to date by the rows
that changed.

Every formula's contributions are per input row, so the grid sums of a set of rows are the sums over its parts.
:class:`LiveTable` keeps the grid matrices of a window and adds the new orders' part to them (a city holding only
them, every other layer empty), then rolls up again, which costs a few milliseconds for hundreds of indicators
instead of a full recompute. The window stays fixed: this is for the orders that arrive during it; changed orders
(an order handled) call for :func:`metrics.engine.compute` again.

:class:`WindowSums` does the same for the live stream's readings, for the indicators declared
:attr:`~metrics.spec.Indicator.rows_add_up`, and follows the window as it slides: a refresh takes away the parts of
the rows read again and of those that left the window, and adds the parts of the rows read again and of those that
entered it (the dashboard's live refresh, dashboard/services.py).

>>> live = LiveTable(city, named_window("today", city.as_of))     # doctest: +SKIP
>>> live.add_orders(new_orders)                                    # doctest: +SKIP
>>> live.table(levels=("city", "district"))                        # doctest: +SKIP
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from layers.city import as_utc, time_slice
from layers.specs import ALL_LEVELS, LAYERS
from metrics.engine import (by_clock, city_level_groups, compared, grid_matrices, previous_covered, roll_up,
                            sparkline_steps, step_windows, stepped_unit_values, unit_values)
from metrics.registry import INDICATORS
from metrics.spec import Window, memoised, named_window


class LiveTable:
    def __init__(self, city, window: Window, indicator_ids=None):
        self.city = city
        self.window = window
        self.ids = list(indicator_ids or INDICATORS)
        self.numerator, self.denominator, self.covered = grid_matrices(city, window, self.ids)
        # Only indicators that read orders change when orders arrive.
        self.order_rows = [k for k, i in enumerate(self.ids) if "orders" in INDICATORS[i].inputs]
        self.added = 0

    def add_orders(self, orders: pd.DataFrame) -> None:
        """Add new orders (frames with the orders layer's columns) to the table's sums."""
        delta_city = self._city_of(orders)
        ids = [self.ids[k] for k in self.order_rows]
        numerator, denominator, covered = grid_matrices(delta_city, self.window, ids)
        self.numerator[self.order_rows] += numerator
        self.denominator[self.order_rows] += denominator
        self.covered[self.order_rows] = np.maximum(self.covered[self.order_rows], covered)
        self.added += len(orders)

    def table(self, levels=ALL_LEVELS) -> pd.DataFrame:
        return roll_up(self.ids, self.numerator, self.denominator, self.covered, self.city.hierarchy, levels)

    def _city_of(self, orders: pd.DataFrame):
        """A city with the same units, the new orders and every other event layer empty."""
        layers = {name: frame.iloc[0:0].copy() for name, frame in self.city.layers.items()}
        layers["orders"] = orders.reset_index(drop=True)
        if "event_types" in self.city.layers:
            layers["event_types"] = self.city["event_types"]
        # The new orders come as the store has them: their grid position and category are derived here, even when
        # the city they join was read with its derived columns (a snapshot) and so skipped deriving.
        return replace(self.city, layers=layers, memo={}, layer_facts={}, derived=False)


@dataclass(frozen=True)
class WindowSums:
    """The grid sums of the indicators over one layer whose rows add up (:attr:`Indicator.rows_add_up`: the
    readings' means and hours over a limit) for a named window and the one before it, at one city: what a live
    refresh brings up to date by the rows that changed instead of computing them over every row again.

    Going from a city to the next (:meth:`following`), the rows whose part can differ are the rows read again (from
    :attr:`layers.city.City.read_again_since` on: replaced, new or gone) and the rows whose time entered or left the
    window as it slid with the clock. The sums lose those rows' parts in the old city and window and gain their parts
    in the new city and window; every other row adds the same to both. Per window pair, a formula then runs over a
    few thousand rows instead of the city's million.

    >>> sums = WindowSums.of(city, "7d")                      # doctest: +SKIP
    >>> sums = sums.following(city, next_city)                # doctest: +SKIP
    >>> sums.table(next_city)                                 # doctest: +SKIP
    """

    name: str                 # the named window ("today", "7d", …)
    layer: str                # the one layer the indicators read
    ids: tuple[str, ...]
    window: Window            # the window the sums are for (it ends at the layer's as-of instant)
    current: tuple            # (numerator, denominator, covered): indicators × grid cells
    previous: tuple           # the same for window.previous()

    @staticmethod
    def indicators(layer: str = "readings") -> tuple[str, ...]:
        return tuple(i for i, ind in INDICATORS.items() if ind.rows_add_up and ind.inputs == (layer,))

    @classmethod
    def of(cls, city, name: str, layer: str = "readings") -> "WindowSums":
        """The sums computed over every row (what a first table of the window costs anyway)."""
        ids = cls.indicators(layer)
        window = named_window(name, city.layer_as_of((layer,)))
        return cls(name, layer, ids, window, grid_matrices(city, window, list(ids)),
                   grid_matrices(city, window.previous(), list(ids)))

    def following(self, old_city, city) -> "WindowSums":
        """The sums at ``city``, made from ``old_city`` (the city these sums are of) by a refresh: by the changed
        rows alone when ``city`` says which rows of the layer it read again, or shares the layer; computed over
        every row otherwise (a city loaded whole)."""
        whole, since = _read_again(self.layer, old_city, city)
        if whole:
            return WindowSums.of(city, self.name, self.layer)
        window = named_window(self.name, city.layer_as_of((self.layer,)))
        if window == self.window and since is None:
            return self
        ids = list(self.ids)
        return replace(self, window=window,
                       current=_moved(self.layer, ids, self.current, old_city, city, self.window, window, since),
                       previous=_moved(self.layer, ids, self.previous, old_city, city, self.window.previous(),
                                       window.previous(), since))

    def table(self, city, levels=ALL_LEVELS) -> pd.DataFrame:
        """The indicators' rows of :func:`metrics.engine.compare` for ``city`` (the city these sums are of)."""
        ids = list(self.ids)
        return compared(city, self.window, roll_up(ids, *self.current, city.hierarchy, levels),
                        roll_up(ids, *self.previous, city.hierarchy, levels))


@dataclass(frozen=True)
class StepSums:
    """The grid sums of indicators whose rows add up (over one layer) in each step of a named window's sparkline
    (:func:`metrics.engine.step_windows`), at one city: what :class:`WindowSums` is for a window's table, for its
    sparkline. When the clock moves, every step's bounds move with it (the hours of ``today`` stretch, the days of
    ``7d`` slide), so every step may gain or lose rows, not only the newest; a refresh takes away and adds the parts
    of the rows that crossed a step's bounds or were read again, step by step — in a layer kept in time order, a few
    binary searches per step.

    >>> steps = StepSums.of(city, "today", ["pm25_mean"])     # doctest: +SKIP
    >>> steps = steps.following(city, next_city)              # doctest: +SKIP
    >>> steps.values(next_city)                               # doctest: +SKIP
    """

    name: str
    layer: str
    ids: tuple[str, ...]
    window: Window                # the named window (it ends at the layer's as-of instant)
    windows: tuple[Window, ...]   # its steps, the oldest first
    sums: tuple[tuple, ...]       # per step: (numerator, denominator, covered), indicators × grid cells

    @classmethod
    def of(cls, city, name: str, indicator_ids, layer: str = "readings") -> "StepSums":
        """The sums computed over every row of each step."""
        ids = [i for i in indicator_ids if INDICATORS[i].rows_add_up and INDICATORS[i].inputs == (layer,)]
        window, windows = _sparkline_windows(city, name, layer)
        return cls(name, layer, tuple(ids), window, windows,
                   tuple(grid_matrices(_rows_within(city, layer, step), step, ids) for step in windows))

    def following(self, old_city, city) -> "StepSums":
        """The sums at ``city``, from ``old_city``'s (see :meth:`WindowSums.following`); computed over every row
        of each step when the number of steps changed (``today`` began an hour) or the city was loaded whole."""
        whole, since = _read_again(self.layer, old_city, city)
        window, windows = _sparkline_windows(city, self.name, self.layer)
        if whole or len(windows) != len(self.windows):
            return StepSums.of(city, self.name, self.ids, self.layer)
        if windows == self.windows and since is None:
            return self
        ids = list(self.ids)
        return replace(self, window=window, windows=windows, sums=tuple(
            _moved(self.layer, ids, sums, old_city, city, old_window, window, since)
            for sums, old_window, window in zip(self.sums, self.windows, windows)))

    def values(self, city) -> tuple[np.ndarray, np.ndarray]:
        """The units' codes (every level, :func:`metrics.engine.unit_values`' order) and the values, steps ×
        (indicators × units), each row laid out as the indicators' blocks of units."""
        return stepped_unit_values(list(self.ids), list(self.sums), city.hierarchy, groups=city_level_groups(city))


def _sparkline_windows(city, name: str, layer: str) -> tuple[Window, tuple[Window, ...]]:
    named = named_window(name, city.layer_as_of((layer,)))
    return named, tuple(step_windows(named, sparkline_steps(named)))


def _rows_within(city, layer: str, window: Window):
    """``city`` holding only the layer's rows within ``window`` when the layer is in time order (a slice), else
    ``city`` itself (the formulas keep the window's rows)."""
    if not city.in_time_order(layer):
        return city
    return _with_layer(city, layer, city[layer].iloc[time_slice(city, layer, window.start, window.end)])


def _read_again(layer: str, old_city, city) -> tuple[bool, pd.Timestamp | None]:
    """Whether ``city``'s rows of ``layer`` must be summed whole (a city loaded whole: no word of which rows were
    read again), and else from which instant on they were read again (None: the same rows as ``old_city``)."""
    if city[layer] is old_city[layer]:
        return False, None  # the same rows: only the windows may have moved
    since = city.read_again_since.get(layer)
    return since is None, since


def _moved(layer: str, ids: list[str], sums: tuple, old_city, city, old_window: Window, window: Window,
           since) -> tuple:
    """``sums`` (of ``ids`` over ``old_city``'s rows in ``old_window``) made the sums over ``city``'s rows in
    ``window``: less the parts of the rows that may differ between the two, plus their new parts."""
    old_rows = _changed_rows(layer, old_city, old_window, window, since)
    new_rows = _changed_rows(layer, city, old_window, window, since)
    # Coverage depends on which cells have a source, never on the layer's rows nor the window
    # (Indicator.rows_add_up): the new city's is the one, the same for every window. No row crossed the window's
    # bounds nor was read again within it (most steps of a sparkline as the clock moves on): the sums stay.
    if not len(old_rows) and not len(new_rows):
        return sums[0], sums[1], _coverage(city, layer, ids, window)
    came = grid_matrices(_with_layer(city, layer, city[layer].take(new_rows)), window, ids)
    if not len(old_rows):  # no rows of the old city to take away (the window before, mostly)
        return sums[0] + came[0], sums[1] + came[1], came[2]
    gone = grid_matrices(_with_layer(old_city, layer, old_city[layer].take(old_rows)), old_window, ids)
    return sums[0] - gone[0] + came[0], sums[1] - gone[1] + came[1], came[2]


def _coverage(city, layer: str, ids: list[str], window: Window) -> np.ndarray:
    """The coverage of indicators whose rows add up (the cells with a source), once per city."""
    return memoised(city, ("rows_add_up_coverage", layer, tuple(ids)),
                    lambda: grid_matrices(_with_layer(city, layer, city[layer].iloc[0:0]), window, ids)[2])


def _changed_rows(layer: str, city, old_window: Window, window: Window, since) -> np.ndarray:
    """The positions of the layer's rows whose part may differ between the two cities or windows."""
    frame = city[layer]
    if city.in_time_order(layer):
        return _touched_in_time_order(city, layer, old_window, window, since)
    # As UTC instants in numpy (a view, no copy): comparing a million zoned timestamps through pandas cost a
    # tenth of a second each, and a refresh makes a dozen such comparisons.
    times = frame[LAYERS[layer].time_column].values

    def within(w: Window) -> np.ndarray:
        return (times >= _utc(w.start)) & (times < _utc(w.end))

    before, after = within(old_window), within(window)
    touched = before != after  # entered or left the window
    if since is not None:
        # Read again, and in either window: a row outside both adds nothing to either (Indicator.rows_add_up),
        # so the window before, which the newest rows never reach, mostly has none to take away or add.
        touched |= (times >= _utc(since)) & (before | after)
    return np.flatnonzero(touched)


def _touched_in_time_order(city, layer: str, old_window: Window, window: Window, since) -> np.ndarray:
    """The positions of the rows that :func:`_changed_rows` finds, for a layer in time order: whether a row is
    kept depends on its instant only through comparisons with the two windows' bounds and ``since``, so it is the
    same for every instant between two neighbouring bounds, and those rows are a slice of the frame (a binary
    search each, instead of a dozen comparisons of a million instants per refresh)."""
    def kept(instant) -> bool:
        before = old_window.start <= instant < old_window.end
        after = window.start <= instant < window.end
        return before != after or (since is not None and instant >= since and (before or after))

    bounds = sorted({old_window.start, old_window.end, window.start, window.end} | ({since} - {None}))
    # Before the first bound and from the last on, a row is in neither window: never kept.
    pieces = [time_slice(city, layer, low, high) for low, high in zip(bounds, bounds[1:]) if kept(low)]
    return np.concatenate([np.arange(piece.start, piece.stop) for piece in pieces] or [np.array([], dtype=np.int64)])


def _utc(instant: pd.Timestamp) -> np.datetime64:
    """A zoned instant as the naive UTC value numpy holds for a zoned column."""
    return as_utc(instant)


def _with_layer(city, layer: str, frame: pd.DataFrame):
    """``city`` with ``frame`` as ``layer`` (its derived columns already there) and a memo of its own."""
    moved = copy.copy(city)
    moved.layers = dict(city.layers, **{layer: frame.reset_index(drop=True)})
    moved.memo = {}
    moved.layer_facts, moved.facts_from = {}, city  # the facts of the frames it shares are city's
    return moved


@dataclass(frozen=True)
class UnitFigures:
    """The numbers of :func:`metrics.engine.compare_named`'s rows for some indicators, as matrices indicators ×
    units (every unit of every level, in :func:`metrics.engine.unit_values`'s order, whatever an indicator's levels):
    what a live refresh compares with the table it has, to write only the rows whose figures changed."""

    ids: tuple[str, ...]
    codes: np.ndarray         # the units' codes
    levels: np.ndarray        # and their levels
    value: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray
    previous: np.ndarray      # the value in the window before (NaN where the data do not cover it)
    windows: dict             # indicator id → the window it is computed for (each indicator's own clock)


def unit_figures(city, name: str, indicator_ids, sums: WindowSums | None = None) -> UnitFigures:
    """:class:`UnitFigures` of ``indicator_ids`` for the named window at ``city``; those that ``sums`` holds (the
    window's sums at ``city``) from its sums, the others from their formulas. No table is built: at the city scale
    building and ranking the tidy rows cost far more than the sums themselves."""
    order, windows, parts = [], {}, []
    for as_of, ids in by_clock(city, list(indicator_ids)).items():
        window = named_window(name, as_of)
        held = [i for i in ids if sums is not None and i in sums.ids and sums.window == window]
        computed = [i for i in ids if i not in held]
        for w, kept in ((window, None if sums is None else sums.current),
                        (window.previous(), None if sums is None else sums.previous)):
            blocks = []
            if computed:
                blocks.append(grid_matrices(city, w, computed))
            if held:
                rows = [sums.ids.index(i) for i in held]
                blocks.append(tuple(matrix[rows] for matrix in kept))
            parts.append(tuple(np.vstack([block[k] for block in blocks]) for k in range(3)))
        order += computed + held
        windows.update({i: window for i in computed + held})
    current = tuple(np.vstack([part[k] for part in parts[0::2]]) for k in range(3))
    before = tuple(np.vstack([part[k] for part in parts[1::2]]) for k in range(3))
    groups = city_level_groups(city)
    now, then = (unit_values(order, *current, city.hierarchy, groups=groups),
                 unit_values(order, *before, city.hierarchy, groups=groups))
    previous = np.hstack([value for _level, _codes, value, _num, _den in then])
    known = {window: previous_covered(city, window) for window in set(windows.values())}  # a min over millions
    covered = np.array([known[windows[i]] for i in order])
    return UnitFigures(
        ids=tuple(order), codes=np.concatenate([codes for _level, codes, *_ in now]),
        levels=np.concatenate([np.full(len(codes), level, dtype=object) for level, codes, *_ in now]),
        value=np.hstack([value for _l, _c, value, _n, _d in now]),
        numerator=np.hstack([num for _l, _c, _v, num, _d in now]),
        denominator=np.hstack([den for _l, _c, _v, _n, den in now]),
        previous=np.where(covered[:, None], previous, np.nan), windows=windows)


def rows_from(city, start: pd.Timestamp, indicator_ids):
    """``city`` for computing ``indicator_ids`` over windows that begin at ``start`` or later: each layer that only
    indicators whose rows add up read among them holds only its rows from ``start`` on (the others add nothing to
    such a window), so that a sparkline's newest steps cost the rows of their own hours, not the city's."""
    readers: dict[str, list] = {}
    for indicator_id in indicator_ids:
        for layer in INDICATORS[indicator_id].inputs:
            readers.setdefault(layer, []).append(INDICATORS[indicator_id])
    shortened = copy.copy(city)
    shortened.layers = dict(city.layers)
    shortened.memo = {}
    for layer, indicators in readers.items():
        if layer in city.layers and LAYERS[layer].time_column and all(i.rows_add_up for i in indicators):
            frame = city[layer]
            if city.in_time_order(layer):  # the newest rows are the last ones: a slice, not a copy
                shortened.layers[layer] = frame.iloc[time_slice(city, layer, start)].reset_index(drop=True)
            else:
                recent = frame[LAYERS[layer].time_column].values >= _utc(start)
                shortened.layers[layer] = frame[recent].reset_index(drop=True)
    shortened.layer_facts, shortened.facts_from = {}, city  # the facts of the frames it shares are city's
    return shortened
