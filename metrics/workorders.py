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


def _received_in(orders: pd.DataFrame, window: Window) -> pd.DataFrame:
    return orders[window.contains(orders["received_at"]).to_numpy()]


def _known_by(times: pd.Series, instant: pd.Timestamp) -> np.ndarray:
    """True where the event happened at or before ``instant`` (so it was known then)."""
    return (times.notna() & (times < instant)).to_numpy()


def order_volume(data, window: Window) -> Contributions:
    """Orders received in the window."""
    orders = _received_in(data["orders"], window)
    return Contributions(orders["grid_code"].to_numpy(), np.ones(len(orders)))


def on_time_rate(data, window: Window) -> Contributions:
    """Of the orders received in the window whose outcome is known at its end (handled, or past their deadline
    unhandled), the share handled by their deadline."""
    orders = _received_in(data["orders"], window)
    end = window.end
    handled = _known_by(orders["handled_at"], end)
    past_deadline = (orders["deadline_at"] < end).to_numpy()
    known = handled | past_deadline
    on_time = handled & (orders["handled_at"] <= orders["deadline_at"]).fillna(False).to_numpy()
    return Contributions(orders["grid_code"].to_numpy()[known], on_time[known].astype(float), np.ones(known.sum()))


def satisfaction_rate(data, window: Window) -> Contributions:
    """Of the orders received in the window and evaluated by the citizen before its end, the share satisfied."""
    orders = _received_in(data["orders"], window)
    evaluated = _known_by(orders["evaluated_at"], window.end) & orders["satisfied"].notna().to_numpy()
    orders = orders[evaluated]
    return Contributions(orders["grid_code"].to_numpy(), orders["satisfied"].astype(float).to_numpy(),
                         np.ones(len(orders)))


def reopen_rate(data, window: Window) -> Contributions:
    """Of the orders received in the window and evaluated before its end, the share reopened at least once."""
    orders = _received_in(data["orders"], window)
    orders = orders[_known_by(orders["evaluated_at"], window.end)]
    return Contributions(orders["grid_code"].to_numpy(), (orders["reopen_count"] > 0).astype(float).to_numpy(),
                         np.ones(len(orders)))


def average_handling_days(data, window: Window) -> Contributions:
    """Mean working days from intake to handling, over orders received in the window and handled before its end."""
    orders = _received_in(data["orders"], window)
    orders = orders[_known_by(orders["handled_at"], window.end)]
    days = working_days_between(orders["received_at"], orders["handled_at"])
    return Contributions(orders["grid_code"].to_numpy(), days, np.ones(len(orders)))


def response_24h_rate(data, window: Window) -> Contributions:
    """Of the orders received in the window that are either dispatched or 24 hours old at its end, the share
    dispatched (first response) within 24 hours of intake."""
    orders = _received_in(data["orders"], window)
    end = window.end
    limit = orders["received_at"] + pd.Timedelta(hours=RESPONSE_HOURS)
    dispatched = _known_by(orders["dispatched_at"], end)
    due = dispatched | (limit < end).to_numpy()
    in_time = dispatched & (orders["dispatched_at"] <= limit).fillna(False).to_numpy()
    return Contributions(orders["grid_code"].to_numpy()[due], in_time[due].astype(float), np.ones(due.sum()))


def _open_at(orders: pd.DataFrame, instant: pd.Timestamp) -> np.ndarray:
    received = _known_by(orders["received_at"], instant)
    handled = _known_by(orders["handled_at"], instant)
    return received & ~handled


def open_orders(data, window: Window) -> Contributions:
    """Orders received but not yet handled at the window's end."""
    orders = data["orders"]
    open_now = _open_at(orders, window.end)
    return Contributions(orders["grid_code"].to_numpy()[open_now], np.ones(open_now.sum()))


def overdue_orders(data, window: Window) -> Contributions:
    """Orders not yet handled at the window's end and past their deadline (red-card orders)."""
    orders = data["orders"]
    overdue = _open_at(orders, window.end) & (orders["deadline_at"] < window.end).to_numpy()
    return Contributions(orders["grid_code"].to_numpy()[overdue], np.ones(overdue.sum()))
