"""What an indicator is: its declaration, its thresholds and the time window it is computed for.

Thresholds have one shape everywhere (as in Grafana): sorted steps, the first from −∞, each naming a state. A value
takes the state of the last step whose value it reaches. A missing value (NaN) is ``no_data``, never a state.

A formula is a pure function ``formula(city, window) -> Contributions``: per input row, the grid cell it belongs to
and what it adds to the numerator (and, for rates and means, to the denominator). The engine sums contributions per
grid cell and up the hierarchy, then divides, so a rate at any level is recomputed from its own numerator and
denominator, never averaged from its children's rates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

STATES = ("good", "watch", "warning", "critical")
"""The one state vocabulary of everything citytwin judges — indicators, the vital-sign score, the freshness of data,
the clocks of work orders, alerts' severities — from best to worst."""
NO_DATA = "no_data"
NEUTRAL = "neutral"  # an indicator without thresholds (a volume to know, not to judge)
STATE_RANK = {NO_DATA: 0, NEUTRAL: 0, **{state: rank for rank, state in enumerate(STATES, start=1)}}
"""How bad a state is (0 for a state that is not a judgement): the worst of several is the one of highest rank."""
SEVERITIES = ("watch", "warning", "critical")
"""An alert's severity: a state worse than good (the same words, so an alert and the state it reports agree)."""


def worst_state(states) -> str:
    """The worst of ``states`` (``no_data`` when none is a judgement).

    >>> worst_state(["good", "critical", "watch"])
    'critical'
    """
    ranked = [s for s in states if STATE_RANK.get(s, 0) > 0]
    return max(ranked, key=STATE_RANK.__getitem__) if ranked else NO_DATA


@dataclass(frozen=True)
class Step:
    value: float
    state: str


@dataclass(frozen=True)
class Thresholds:
    steps: tuple[Step, ...]

    def __post_init__(self):
        if not self.steps or self.steps[0].value != -math.inf:
            raise ValueError("the first threshold step must start at -inf")
        values = [s.value for s in self.steps]
        if values != sorted(values):
            raise ValueError(f"threshold steps must be sorted, got {values}")
        for s in self.steps:
            if s.state not in STATES:
                raise ValueError(f"unknown state {s.state!r}; states are {STATES}")

    @classmethod
    def of(cls, first_state: str, *rest: tuple[float, str]) -> "Thresholds":
        """``Thresholds.of("critical", (95, "warning"), (99, "good"))``: below 95 critical, 95–99 warning, …"""
        return cls((Step(-math.inf, first_state),) + tuple(Step(float(v), s) for v, s in rest))

    def describe(self, number_format: str = "{:g}") -> str:
        """The steps in words, e.g. ``below 95 critical · 95 to 98 warning · from 99 good``."""
        parts = []
        for i, step in enumerate(self.steps):
            upper = self.steps[i + 1].value if i + 1 < len(self.steps) else None
            if i == 0:
                parts.append(f"below {number_format.format(upper)} {step.state}" if upper is not None else step.state)
            elif upper is None:
                parts.append(f"from {number_format.format(step.value)} {step.state}")
            else:
                parts.append(f"{number_format.format(step.value)} to {number_format.format(upper)} {step.state}")
        return " · ".join(parts)

    def state(self, value) -> str:
        """The state of one value (``no_data`` for None or NaN)."""
        if value is None:
            return NO_DATA
        return str(self.state_of([value])[0])

    def as_json(self) -> list[list]:
        """The steps as ``[[value, state], …]`` for the browser (the first value, −∞, as null): a page's script
        judges with the same steps as the server (see :data:`FRESHNESS_MINUTES` and the wall's clock)."""
        return [[None if step.value == -math.inf else step.value, step.state] for step in self.steps]

    def state_of(self, values) -> np.ndarray:
        """The state of each value (``no_data`` for NaN)."""
        values = np.asarray(values, dtype=float)
        bounds = np.array([s.value for s in self.steps[1:]])
        names = np.array([s.state for s in self.steps] + [NO_DATA], dtype=object)
        index = np.searchsorted(bounds, values, side="right")
        index = np.where(np.isnan(values), len(self.steps), index)
        return names[index]


def memoised(data, key, compute):
    """``compute()``, remembered on ``data`` (a :class:`layers.city.City`) under ``key``: facts that several
    indicators of one window share are computed once per loaded city. Data without a memo compute every time."""
    memo = getattr(data, "memo", None)
    if memo is None:
        return compute()
    value = memo.get(key, _MISSING)
    if value is _MISSING:
        value = compute()
        # Without a lock: another request may fill or empty the memo meanwhile (Services.drop_shared_facts); a lost
        # entry is computed again, a wrong one is never returned.
        if len(memo) >= MEMO_ENTRIES:
            try:
                memo.pop(next(iter(memo)))  # the oldest: windows come and go, masks per window are large
            except (StopIteration, KeyError, RuntimeError):
                pass
        memo[key] = value
    return value


MEMO_ENTRIES = 24
_MISSING = object()


def layer_memoised(data, layer: str, key, compute):
    """``compute()``, a fact about one layer's frame alone, remembered with that frame
    (:meth:`layers.city.City.layer_fact`): unlike :func:`memoised`, it holds in every copy of the city that shares
    the frame — a live refresh's scratch cities of a few rows each, and the next generation when the layer did not
    change. Data without layer facts compute every time."""
    if not hasattr(data, "layer_fact"):
        return compute()
    return data.layer_fact(layer, key, lambda _frame: compute())


def column_codes(data, layer: str, column: str) -> tuple[np.ndarray, dict]:
    """The column as integer codes, and the code of each value (memoised: families split rows by it)."""
    def factorize():
        frame = data[layer]
        if column not in frame:  # e.g. an imported city without a responsibility list has no categories
            return np.full(len(frame), -1), {}
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        return codes, {value: code for code, value in enumerate(uniques)}
    return layer_memoised(data, layer, ("codes", column), factorize)


def rows_where(data, layer: str, where: dict | None) -> np.ndarray | None:
    """Mask of the rows of ``layer`` whose columns equal the values in ``where`` (None for no restriction)."""
    if not where:
        return None
    mask = np.ones(len(data[layer]), dtype=bool)
    for column, value in where.items():
        codes, code_of = column_codes(data, layer, column)
        mask &= codes == code_of.get(value, -2)  # a value the data never have: no row
    return mask


FRESHNESS_MINUTES = Thresholds.of("good", (15, "watch"), (24 * 60, "warning"), (7 * 24 * 60, "critical"))
"""The state of data by their age in minutes — for a command center a quarter of an hour is live (sensors report
every few minutes: data an hour old are delayed, not live), a day is stale, a week is dead:
the map's layer badges and the wall's clock (which gets these steps as data, :meth:`Thresholds.as_json`)."""


SURGE = Thresholds.of("good", (2.0, "watch"), (3.0, "warning"), (5.0, "critical"))
"""States of a volume by its rise against the previous window, as a z-score (see :func:`surge_scores`): the same
rise of 10 is a surge for a grid cell that had 4 and noise for a district that had 4,000. A fall is good."""

# Volumes vary from one window to the next by about a tenth beyond counting noise (weekdays, weather, campaigns):
# without it, a 2% rise of a city's 28,000 weekly requests would already read as a surge.
SURGE_SPREAD = 0.10


def surge_scores(value, previous) -> np.ndarray:
    """``(now − before) / √(before + (0.1 · before)²)``: Poisson noise plus a tenth of natural variation
    (NaN where either figure is missing)."""
    value, previous = np.asarray(value, dtype=float), np.asarray(previous, dtype=float)
    before = np.maximum(previous, 1.0)
    return (value - previous) / np.sqrt(before + (SURGE_SPREAD * before) ** 2)


@dataclass(frozen=True)
class Window:
    """A half-open time interval ``[start, end)`` of local time."""

    start: pd.Timestamp
    end: pd.Timestamp
    name: str = ""

    @property
    def days(self) -> float:
        return (self.end - self.start) / pd.Timedelta(days=1)

    def previous(self) -> "Window":
        length = self.end - self.start
        return Window(self.start - length, self.start, f"before {self.name}".strip())

    def a_year_before(self) -> "Window":
        """The same calendar window one year earlier (29 February falls on the 28th): year-on-year comparison."""
        year = pd.DateOffset(years=1)
        return Window(self.start - year, self.end - year, f"{self.name} last year".strip())

    def contains(self, times: pd.Series) -> pd.Series:
        return (times >= self.start) & (times < self.end)

    def mask(self, times: pd.Series) -> np.ndarray:
        """:meth:`contains` as a boolean array, compared in numpy (see :func:`earlier`)."""
        return ~earlier(times, self.start, missing=True) & earlier(times, self.end)


def earlier(times: pd.Series, instant: pd.Timestamp, missing: bool = False) -> np.ndarray:
    """``times < instant`` as a boolean array, ``missing`` where a time is missing. A zoned column is compared in
    numpy (its values are naive UTC instants, read without a copy): a live refresh runs the sensors' formulas some
    hundred times, many over a few rows, where pandas' own work per comparison cost more than the comparison."""
    if not isinstance(getattr(times, "dtype", None), pd.DatetimeTZDtype):
        result = np.asarray(times < instant, dtype=bool)
        return result | np.asarray(times.isna()) if missing else result
    from layers.city import as_utc  # layers never import metrics: no cycle, but not when this module is imported

    values = times.values
    result = values < as_utc(instant, values.dtype)  # NaT compares False
    return result | np.isnat(values) if missing else result


WINDOWS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days"}
DEFAULT_WINDOW = "7d"  # what a page, the wall and an export show unless asked otherwise: always kept warm
WINDOWS_ZH = {"today": "今日", "7d": "近7天", "30d": "近30天"}
# Windows over the history files (layers.history), computed by metrics.distributed: a year, and year-on-year. Kept
# apart from WINDOWS, the dashboard's picker, whose city in memory holds 30 days.
HISTORY_WINDOWS = {"12m": "Last 12 months", "today_last_year": "Same day last year",
                   "7d_last_year": "Same 7 days last year", "30d_last_year": "Same 30 days last year"}
HISTORY_WINDOWS_ZH = {"12m": "近12个月", "today_last_year": "去年同日", "7d_last_year": "去年同期7天",
                      "30d_last_year": "去年同期30天"}
LAST_YEAR = "_last_year"


def named_window(name: str, as_of: pd.Timestamp) -> Window:
    """``today`` runs from local midnight to the data's as-of instant; ``7d``, ``30d`` and ``12m`` end there;
    ``<window>_last_year`` is that window a year earlier (:meth:`Window.a_year_before`)."""
    end = as_of + pd.Timedelta(microseconds=1)  # include the as-of instant itself
    if name == "today":
        return Window(as_of.normalize(), end, name)
    if name in ("7d", "30d"):
        return Window(end - pd.Timedelta(days=int(name[:-1])), end, name)
    if name == "12m":
        return Window(end - pd.DateOffset(years=1), end, name)
    if name.endswith(LAST_YEAR) and name[:-len(LAST_YEAR)] in ("today", "7d", "30d", "12m"):
        shifted = named_window(name[:-len(LAST_YEAR)], as_of).a_year_before()
        return Window(shifted.start, shifted.end, name)
    raise ValueError(f"unknown window {name!r}; windows are {', '.join([*WINDOWS, *HISTORY_WINDOWS])}")


@dataclass(frozen=True)
class Contributions:
    """Per input row: its grid cell, its numerator and (for rates/means) its denominator.

    ``grid`` holds positions in the city's hierarchy table (the ``grid_index`` column that
    :class:`layers.city.City` gives every layer with a ``grid_code``; -1 for a row in no known cell).
    ``covered`` lists the cells (positions) that have a source for this indicator at all (e.g. cells with a PM2.5
    monitor); a unit covering none of them has no data, not zero. ``None`` means every cell is covered.
    """

    grid: np.ndarray
    numerator: np.ndarray
    denominator: np.ndarray | None = None
    covered: np.ndarray | None = None
    # Positions of the contributing rows in the formula's input layer (``inputs[0]``): with them the engine
    # splits one run of a formula among all members of a family (per category, department, …) at once.
    rows: np.ndarray | None = None


@dataclass(frozen=True)
class Family:
    """An indicator that is ``base`` restricted to the rows of its input layer whose ``column`` equals ``key``."""

    base: str
    column: str
    key: str


@dataclass(frozen=True)
class Indicator:
    id: str
    name: str
    name_zh: str
    topic: str
    unit: str
    aggregation: str  # "count" (sum of numerators), "rate" (100 · Σnum / Σden), "mean" (Σnum / Σden)
    formula: Callable[..., Contributions]
    description: str  # what it measures, with its formula in words (the catalogue's formula column, the cards' tooltip)
    inputs: tuple[str, ...]
    thresholds: Thresholds | None
    good_direction: str  # "up" | "down" | "none"
    owner: str
    frequency: str
    levels: tuple[str, ...] = ("province", "city", "district", "street", "community", "grid")
    format: str = "{:,.0f}"
    weight: float = 1.0  # in the composite vital-sign score (metrics/score.py)
    headline: bool = True  # shown on the KPI cards (the catalogue lists every indicator)
    # "value": the state comes from the value and ``thresholds``. "surge": a volume, whose right size depends on the
    # unit and the window; its state comes from its rise against the previous window (see SURGE).
    judged_by: str = "value"
    family: Family | None = None
    # True when the formula is a sum over the rows of its one input layer in which each row's part depends only on
    # that row and on whether the layer's time column falls in the window (and ``covered`` on neither those rows
    # nor the window: it says which cells have a source at all): a
    # live refresh then adds the parts of new rows and takes away those of changed or expired ones instead of
    # reading every row again (metrics.incremental.WindowSums; tests/test_incremental.py checks it is the same).
    rows_add_up: bool = False
    description_zh: str = ""  # the same in Chinese (empty: the English one is shown)

    def __post_init__(self):
        if self.aggregation not in ("count", "rate", "mean"):
            raise ValueError(f"{self.id}: unknown aggregation {self.aggregation!r}")
        if self.good_direction not in ("up", "down", "none"):
            raise ValueError(f"{self.id}: good_direction must be up, down or none")
        if self.judged_by not in ("value", "surge"):
            raise ValueError(f"{self.id}: judged_by must be value or surge")
        if self.judged_by == "surge" and (self.aggregation != "count" or self.thresholds is not None):
            raise ValueError(f"{self.id}: only counts without thresholds of their own are judged by surge")
        if self.rows_add_up and len(self.inputs) != 1:
            raise ValueError(f"{self.id}: rows_add_up is for a formula over the rows of one layer")

    def state_of(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if self.thresholds is None:
            return np.where(np.isnan(values), NO_DATA, NEUTRAL).astype(object)
        return self.thresholds.state_of(values)

    def format_value(self, value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        return self.format.format(value)
