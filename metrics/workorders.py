"""Work-order indicators: formulas over the ``orders`` layer.

Each function is pure: ``(data, window) -> Contributions`` where ``data["orders"]`` holds the orders (any frame
with the ``orders`` layer's columns) and the window is local time. "Received in the window" selects orders by their
intake time; the snapshot indicators (open, overdue) look at the state of every order at the window's end.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.spec import Contributions, Window
from metrics.workdays import working_days_between

RESPONSE_HOURS = 24


def _received_in(orders: pd.DataFrame, window: Window) -> np.ndarray:
    """Mask of the orders received in the window (masks, not filtered copies: the orders layer has millions)."""
    return window.contains(orders["received_at"]).to_numpy()


def _known_by(times: pd.Series, instant: pd.Timestamp) -> np.ndarray:
    """True where the event happened before ``instant`` (so it was known then)."""
    return (times.notna() & (times < instant)).to_numpy()


def _rows(orders: pd.DataFrame, mask: np.ndarray, numerator, rate: bool = True) -> Contributions:
    """Contributions of the masked orders: ``numerator`` is given for those rows only; rates count each row once
    in the denominator."""
    grid = orders["grid_index"].to_numpy()[mask]
    numerator = np.asarray(numerator, dtype=float)
    # A city without any orders (boundaries and buildings imported only) has no data here, not zero orders.
    covered = None if len(orders) else np.array([], dtype=np.int64)
    return Contributions(grid, numerator, np.ones(len(grid)) if rate else None, covered=covered)


def order_volume(data, window: Window) -> Contributions:
    """Orders received in the window."""
    orders = data["orders"]
    received = _received_in(orders, window)
    return _rows(orders, received, np.ones(received.sum()), rate=False)


def on_time_rate(data, window: Window) -> Contributions:
    """Of the orders received in the window whose outcome is known at its end (handled, or past their deadline
    unhandled), the share handled by their deadline."""
    orders = data["orders"]
    end = window.end
    handled = _known_by(orders["handled_at"], end)
    past_deadline = (orders["deadline_at"] < end).to_numpy()
    known = _received_in(orders, window) & (handled | past_deadline)
    on_time = handled & (orders["handled_at"] <= orders["deadline_at"]).fillna(False).to_numpy()
    return _rows(orders, known, on_time[known])


def satisfaction_rate(data, window: Window) -> Contributions:
    """Of the orders received in the window and evaluated by the citizen before its end, the share satisfied."""
    orders = data["orders"]
    evaluated = (_received_in(orders, window) & _known_by(orders["evaluated_at"], window.end)
                 & orders["satisfied"].notna().to_numpy())
    return _rows(orders, evaluated, orders["satisfied"].to_numpy(dtype=float, na_value=np.nan)[evaluated])


def reopen_rate(data, window: Window) -> Contributions:
    """Of the orders received in the window and evaluated before its end, the share reopened at least once."""
    orders = data["orders"]
    evaluated = _received_in(orders, window) & _known_by(orders["evaluated_at"], window.end)
    return _rows(orders, evaluated, (orders["reopen_count"].to_numpy() > 0)[evaluated])


def average_handling_days(data, window: Window) -> Contributions:
    """Mean working days from intake to handling, over orders received in the window and handled before its end."""
    orders = data["orders"]
    handled = _received_in(orders, window) & _known_by(orders["handled_at"], window.end)
    days = working_days_between(orders["received_at"][handled], orders["handled_at"][handled])
    return _rows(orders, handled, days)


def response_24h_rate(data, window: Window) -> Contributions:
    """Of the orders received in the window that are either dispatched or 24 hours old at its end, the share
    dispatched (first response) within 24 hours of intake."""
    orders = data["orders"]
    end = window.end
    limit = orders["received_at"] + pd.Timedelta(hours=RESPONSE_HOURS)
    dispatched = _known_by(orders["dispatched_at"], end)
    due = _received_in(orders, window) & (dispatched | (limit < end).to_numpy())
    in_time = dispatched & (orders["dispatched_at"] <= limit).fillna(False).to_numpy()
    return _rows(orders, due, in_time[due])


def _open_at(orders: pd.DataFrame, instant: pd.Timestamp) -> np.ndarray:
    received = _known_by(orders["received_at"], instant)
    handled = _known_by(orders["handled_at"], instant)
    return received & ~handled


def open_orders(data, window: Window) -> Contributions:
    """Orders received but not yet handled at the window's end."""
    orders = data["orders"]
    open_now = _open_at(orders, window.end)
    return _rows(orders, open_now, np.ones(open_now.sum()), rate=False)


def overdue_orders(data, window: Window) -> Contributions:
    """Orders not yet handled at the window's end and past their deadline (red-card orders)."""
    orders = data["orders"]
    overdue = _open_at(orders, window.end) & (orders["deadline_at"] < window.end).to_numpy()
    return _rows(orders, overdue, np.ones(overdue.sum()), rate=False)
