"""Work-order indicators: formulas over the ``orders`` layer.

Each formula is pure: ``(data, window, where=None) -> Contributions``, where ``data["orders"]`` holds the orders
and the window is local time; ``where`` optionally restricts the formula to the orders whose columns equal the given
values (``{"category": "traffic"}``), which is how the families of :mod:`metrics.families` (per event category,
department, channel, event type) are built.
"Received in the window" selects orders by their intake time; the snapshot indicators (open, overdue) look at the
state of every order at the window's end.

The per-order facts a window needs (received in it? handled by its end? on time? …) are computed once per window
and shared by every indicator and family member (:func:`order_facts`): the orders layer has millions of rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from layers.lifecycle import RESPONSE_HOURS  # the lifecycle's rule; metrics.clocks and the formulas use it here
from metrics.spec import Contributions, Window, layer_memoised, memoised, rows_where
from metrics.workdays import working_days_between



@dataclass(frozen=True)
class OrderFacts:
    """Boolean facts per order (arrays over all orders) for one window."""

    grid: np.ndarray
    received: np.ndarray          # received in the window
    outcome_known: np.ndarray     # handled by the end, or past its deadline unhandled
    on_time: np.ndarray           # handled by the end, by its deadline
    evaluated_at_end: np.ndarray  # evaluated by the end
    evaluated: np.ndarray         # evaluated by the end, with a satisfaction answer
    satisfied: np.ndarray
    reopened: np.ndarray
    handled: np.ndarray           # handled by the end
    handling_days: np.ndarray     # working days from intake to handling (NaN where not handled in the window)
    response_due: np.ndarray      # dispatched by the end, or 24 hours old then
    responded_in_time: np.ndarray # dispatched within 24 hours of intake
    open_at_end: np.ndarray       # received and not handled at the end
    overdue_at_end: np.ndarray    # open at the end and past its deadline
    red_card_at_end: np.ndarray   # a red card at the end: overdue, or not dispatched 24 hours after intake
    has_orders: bool


def _utc_values(times: pd.Series) -> np.ndarray:
    """A time column as naive UTC instants: a zoned column's own values (no copy), else converted."""
    if isinstance(getattr(times, "dtype", None), pd.DatetimeTZDtype):
        return times.values
    return pd.to_datetime(times, utc=True).dt.tz_localize(None).values


def _before(values: np.ndarray, instant: pd.Timestamp) -> np.ndarray:
    """``values < instant`` (False where missing: NaT compares False)."""
    from layers.city import as_utc  # layers never import metrics: no cycle, but not when this module is imported

    return values < as_utc(instant, values.dtype)


def _at_or_before(values: np.ndarray, instant: pd.Timestamp) -> np.ndarray:
    """``values <= instant`` (False where missing). ``as_utc`` rounds an instant finer than the column's unit up:
    then no value equals it, and ``<`` the rounded one is ``<=`` the instant."""
    from layers.city import as_utc

    bound = as_utc(instant, values.dtype)
    exact = pd.Timestamp(bound).tz_localize("UTC") == instant
    return values <= bound if exact else values < bound


@dataclass(frozen=True)
class OrderColumns:
    """What every window's facts read of the orders, the same in all of them: the instants as naive UTC values and
    the facts that do not depend on the window. Made once per orders frame (a layer fact: it holds across live
    generations while the orders do not change), not at each of a sparkline's 30 steps."""

    grid: np.ndarray
    received_at: np.ndarray
    handled_at: np.ndarray
    deadline_at: np.ndarray
    dispatched_at: np.ndarray
    closed_at: np.ndarray | None   # None: a frame without the column (older stores, hand-made fixtures)
    evaluated_at: np.ndarray
    response_limit: np.ndarray     # 24 hours after intake (NaT where not received)
    handled_by_deadline: np.ndarray
    dispatched_by_limit: np.ndarray
    answered: np.ndarray           # a satisfaction answer was given
    satisfied: np.ndarray
    reopened: np.ndarray


def order_columns(data) -> OrderColumns:
    return layer_memoised(data, "orders", ("order_columns",), lambda: _order_columns(data["orders"]))


def _order_columns(orders: pd.DataFrame) -> OrderColumns:
    received_at, handled_at = _utc_values(orders["received_at"]), _utc_values(orders["handled_at"])
    deadline_at, dispatched_at = _utc_values(orders["deadline_at"]), _utc_values(orders["dispatched_at"])
    limit = received_at + np.timedelta64(RESPONSE_HOURS, "h")  # NaT stays NaT
    return OrderColumns(
        grid=orders["grid_index"].to_numpy(), received_at=received_at, handled_at=handled_at,
        deadline_at=deadline_at, dispatched_at=dispatched_at,
        closed_at=_utc_values(orders["closed_at"]) if "closed_at" in orders else None,
        evaluated_at=_utc_values(orders["evaluated_at"]), response_limit=limit,
        handled_by_deadline=handled_at <= deadline_at,  # NaT compares False
        dispatched_by_limit=dispatched_at <= limit,
        answered=orders["satisfied"].notna().to_numpy(),
        satisfied=orders["satisfied"].to_numpy(dtype=float, na_value=np.nan) == 1.0,
        reopened=orders["reopen_count"].to_numpy() > 0)


def order_facts(data, window: Window) -> OrderFacts:
    return memoised(data, ("order_facts", window.start, window.end),
                    lambda: _order_facts(order_columns(data), data["orders"], window))


def _order_facts(columns: OrderColumns, orders: pd.DataFrame, window: Window) -> OrderFacts:
    # Compared in numpy over the columns' naive UTC values: a 30-day sparkline takes these facts at each of its 30
    # steps over 3 million orders, and pandas' zoned comparisons (NaT handling, boxing) were most of its 9 s.
    end, c = window.end, columns
    received = ~_before(c.received_at, window.start) & _before(c.received_at, end)  # NaT: neither
    handled = _before(c.handled_at, end)
    # A cancelled order (a duplicate, an invalid request) is closed without being handled: it has no outcome and
    # is not open work. Frames without the column (older stores, hand-made fixtures) have no cancelled orders.
    closed = _before(c.closed_at, end) if c.closed_at is not None else np.zeros(len(c.grid), dtype=bool)
    cancelled = closed & ~handled
    past_deadline = _before(c.deadline_at, end) & ~cancelled
    evaluated_at_end = _before(c.evaluated_at, end)
    handled_in_window = received & handled
    handling_days = np.full(len(c.grid), np.nan)
    handling_days[handled_in_window] = working_days_between(orders["received_at"][handled_in_window],
                                                            orders["handled_at"][handled_in_window])
    dispatched = _before(c.dispatched_at, end)
    open_at_end = _before(c.received_at, end) & ~handled & ~cancelled
    return OrderFacts(
        grid=c.grid,
        received=received,
        outcome_known=handled | past_deadline,
        on_time=handled & c.handled_by_deadline,
        evaluated_at_end=evaluated_at_end,
        evaluated=evaluated_at_end & c.answered,
        satisfied=c.satisfied,
        reopened=c.reopened,
        handled=handled,
        handling_days=handling_days,
        response_due=dispatched | _before(c.response_limit, end),
        responded_in_time=dispatched & c.dispatched_by_limit,
        open_at_end=open_at_end,
        overdue_at_end=open_at_end & past_deadline,
        # The supervision board's red card (metrics/clocks.py), judged at the window's end: an order at its deadline
        # or 24 hours after intake is out of time.
        red_card_at_end=open_at_end & (_at_or_before(c.deadline_at, end)
                                       | (~dispatched & _at_or_before(c.response_limit, end))),
        has_orders=len(c.grid) > 0,
    )


def _count(facts: OrderFacts, mask: np.ndarray, rows) -> Contributions:
    mask = mask if rows is None else mask & rows
    # A city without any orders (boundaries and buildings imported only) has no data here, not zero orders.
    covered = None if facts.has_orders else np.array([], dtype=np.int64)
    index = np.flatnonzero(mask)
    return Contributions(facts.grid[index], np.ones(len(index)), covered=covered, rows=index)


def _share(facts: OrderFacts, among: np.ndarray, hits: np.ndarray, rows) -> Contributions:
    """The rows of ``among`` each count once in the denominator and, where ``hits``, in the numerator."""
    among = among if rows is None else among & rows
    index = np.flatnonzero(among)
    return Contributions(facts.grid[index], hits[index].astype(float), np.ones(len(index)), rows=index)


def order_volume(data, window: Window, where=None) -> Contributions:
    """Orders received in the window."""
    facts = order_facts(data, window)
    rows = rows_where(data, "orders", where)
    return _count(facts, facts.received, rows)


def on_time_rate(data, window: Window, where=None) -> Contributions:
    """Of the orders received in the window whose outcome is known at its end (handled, or past their deadline
    unhandled), the share handled by their deadline."""
    facts = order_facts(data, window)
    rows = rows_where(data, "orders", where)
    return _share(facts, facts.received & facts.outcome_known, facts.on_time, rows)


def satisfaction_rate(data, window: Window, where=None) -> Contributions:
    """Of the orders received in the window and evaluated by the citizen before its end, the share satisfied."""
    facts = order_facts(data, window)
    rows = rows_where(data, "orders", where)
    return _share(facts, facts.received & facts.evaluated, facts.satisfied, rows)


def reopen_rate(data, window: Window, where=None) -> Contributions:
    """Of the orders received in the window and evaluated before its end, the share reopened at least once."""
    facts = order_facts(data, window)
    rows = rows_where(data, "orders", where)
    return _share(facts, facts.received & facts.evaluated_at_end, facts.reopened, rows)


def average_handling_days(data, window: Window, where=None) -> Contributions:
    """Mean working days from intake to handling, over orders received in the window and handled before its end."""
    facts = order_facts(data, window)
    rows = rows_where(data, "orders", where)
    handled = facts.received & facts.handled
    handled = handled if rows is None else handled & rows
    index = np.flatnonzero(handled)
    return Contributions(facts.grid[index], facts.handling_days[index], np.ones(len(index)), rows=index)


def response_24h_rate(data, window: Window, where=None) -> Contributions:
    """Of the orders received in the window that are either dispatched or 24 hours old at its end, the share
    dispatched (first response) within 24 hours of intake."""
    facts = order_facts(data, window)
    rows = rows_where(data, "orders", where)
    return _share(facts, facts.received & facts.response_due, facts.responded_in_time, rows)


def open_orders(data, window: Window, where=None) -> Contributions:
    """Orders received but not yet handled at the window's end."""
    facts = order_facts(data, window)
    rows = rows_where(data, "orders", where)
    return _count(facts, facts.open_at_end, rows)


def overdue_orders(data, window: Window, where=None) -> Contributions:
    """Red-card orders at the window's end: not yet handled and at or past their deadline, or not dispatched 24
    hours after intake — the supervision board's red cards (:mod:`metrics.clocks`), one definition on the map, the
    wall and the board."""
    facts = order_facts(data, window)
    rows = rows_where(data, "orders", where)
    return _count(facts, facts.red_card_at_end, rows)
