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
from metrics.spec import Contributions, Window, memoised, rows_where
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


def _known_by(times: pd.Series, instant: pd.Timestamp) -> np.ndarray:
    """True where the event happened before ``instant`` (so it was known then)."""
    return (times.notna() & (times < instant)).to_numpy()


def order_facts(data, window: Window) -> OrderFacts:
    return memoised(data, ("order_facts", window.start, window.end), lambda: _order_facts(data["orders"], window))


def _order_facts(orders: pd.DataFrame, window: Window) -> OrderFacts:
    end = window.end
    received = window.contains(orders["received_at"]).to_numpy()
    handled = _known_by(orders["handled_at"], end)
    # A cancelled order (a duplicate, an invalid request) is closed without being handled: it has no outcome and
    # is not open work. Frames without the column (older stores, hand-made fixtures) have no cancelled orders.
    closed = (_known_by(orders["closed_at"], end) if "closed_at" in orders
              else np.zeros(len(orders), dtype=bool))
    cancelled = closed & ~handled
    past_deadline = (orders["deadline_at"] < end).to_numpy() & ~cancelled
    on_time = handled & (orders["handled_at"] <= orders["deadline_at"]).fillna(False).to_numpy()
    evaluated_at_end = _known_by(orders["evaluated_at"], end)
    handled_in_window = received & handled
    handling_days = np.full(len(orders), np.nan)
    handling_days[handled_in_window] = working_days_between(orders["received_at"][handled_in_window],
                                                            orders["handled_at"][handled_in_window])
    limit = orders["received_at"] + pd.Timedelta(hours=RESPONSE_HOURS)
    dispatched = _known_by(orders["dispatched_at"], end)
    open_at_end = _known_by(orders["received_at"], end) & ~handled & ~cancelled
    return OrderFacts(
        grid=orders["grid_index"].to_numpy(),
        received=received,
        outcome_known=handled | past_deadline,
        on_time=on_time,
        evaluated_at_end=evaluated_at_end,
        evaluated=evaluated_at_end & orders["satisfied"].notna().to_numpy(),
        satisfied=orders["satisfied"].to_numpy(dtype=float, na_value=np.nan) == 1.0,
        reopened=orders["reopen_count"].to_numpy() > 0,
        handled=handled,
        handling_days=handling_days,
        response_due=dispatched | (limit < end).to_numpy(),
        responded_in_time=dispatched & (orders["dispatched_at"] <= limit).fillna(False).to_numpy(),
        open_at_end=open_at_end,
        overdue_at_end=open_at_end & past_deadline,
        # The supervision board's red card (metrics/clocks.py), judged at the window's end: an order at its deadline
        # or 24 hours after intake is out of time.
        red_card_at_end=open_at_end & (
            (orders["deadline_at"] <= end).to_numpy()
            | (~dispatched & (limit <= end).to_numpy())),
        has_orders=len(orders) > 0,
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
