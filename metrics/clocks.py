"""The clocks of work orders: time limits, the 24-hour first response, yellow and red cards, escalation to
supervision, and working-day arithmetic. Pure functions of (order rows, now, holiday calendar): no clock is read
here, so tests freeze time by passing ``now``.

Rules (../shared/CONTEXT.md: 24-hour quick response, red-card supervision of overdue orders):

- **First response**: an order must be dispatched within :data:`~metrics.workorders.RESPONSE_HOURS` (24 h) of
  intake, the same definition as the ``response_24h_rate`` indicator. Still undispatched after 80 % of that: a yellow
  card (``first_response_due``); after all of it: a red card (``no_first_response``).
- **Time limit**: an unhandled order (received, dispatched, accepted; a reopened order is accepted again) runs
  against its deadline, which is its event type's time limit after intake (after the reopen for a reopened order).
  Once :data:`YELLOW_SHARE` of the allowed time has passed: a yellow card (``near_deadline``); past the deadline: a
  red card (``overdue``). The deadline card outranks the response card.
- **Escalation**: a red-carded order that was never escalated (``supervised_at`` empty) should be escalated to
  supervision (督办); ``WorkOrders.escalate_overdue(now, actor=…, **ESCALATION)`` does it in one set-based write.
- **Working days**: ``working_days_open`` counts the working days (Monday–Friday less the calendar's public
  holidays, :mod:`metrics.workdays`) from intake to handling, or to ``now`` while unhandled.

>>> import pandas as pd
>>> now = pd.Timestamp("2026-11-20 12:00", tz="Asia/Shanghai")
>>> orders = pd.DataFrame({"order_id": ["A"], "status": ["accepted"], "department": ["Water Affairs Bureau"],
...     "received_at": [now - pd.Timedelta(hours=20)], "dispatched_at": [now - pd.Timedelta(hours=19)],
...     "handled_at": [pd.NaT], "evaluated_at": [pd.NaT], "supervised_at": [pd.NaT], "reopen_count": [0],
...     "deadline_at": [now + pd.Timedelta(hours=4)]})
>>> clock = order_clocks(orders, now).iloc[0]
>>> clock.card, clock.reason, float(clock.remaining_hours)
('yellow', 'near_deadline', 4.0)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from layers.city_settings import timezone as city_timezone
from layers.lifecycle import UNHANDLED_STATUSES
from metrics.workdays import working_days_between
from metrics.spec import Thresholds
from metrics.workorders import RESPONSE_HOURS

YELLOW_SHARE = 0.8
"""A yellow card once this share of the allowed time (or of the 24 response hours) has passed."""

CLOCK_STATES = Thresholds.of("good", (YELLOW_SHARE, "warning"), (1.0, "critical"))
"""The state of an order's clock by the share of its allowed time used (the same shape and words as an indicator's):
warning is a yellow card, critical (the time is up) a red one."""
CARD_OF_STATE = {"warning": "yellow", "critical": "red"}

CARDS = ("yellow", "red")
REASONS = {
    "overdue": ("red", "past its deadline, not handled"),
    "no_first_response": ("red", f"not dispatched within {RESPONSE_HOURS} hours of intake"),
    "near_deadline": ("yellow", f"{YELLOW_SHARE:.0%} of its time limit used, not handled"),
    "first_response_due": ("yellow", f"{YELLOW_SHARE:.0%} of the {RESPONSE_HOURS} response hours used, "
                                     "not dispatched"),
}
"""Why an order has a card: reason → (card, explanation)."""


def order_clocks(orders: pd.DataFrame, now: pd.Timestamp, holidays: np.ndarray | None = None) -> pd.DataFrame:
    """The clocks of each order at ``now``, on the orders' index.

    Columns: ``running`` (the deadline clock runs: unhandled), ``clock_started_at`` (intake, or the reopen),
    ``remaining_hours`` (negative when overdue; NaN when not running), ``share_used`` (of the allowed time),
    ``awaiting_response`` (not yet dispatched), ``response_due_at``, ``card`` (``yellow`` | ``red`` | None),
    ``reason`` (a key of :data:`REASONS` or None), ``escalate`` (red and never escalated),
    ``working_days_open`` (working days from intake to handling, or to ``now``).
    """
    now = pd.Timestamp(now)
    if now.tzinfo is None:
        now = now.tz_localize(city_timezone())
    orders = orders.assign(**{name: _instants(orders[name]) for name in
                              ("received_at", "handled_at", "evaluated_at", "supervised_at", "deadline_at")})
    status = orders["status"].astype(str)
    running = status.isin(list(UNHANDLED_STATUSES)).to_numpy()
    reopened = (orders["reopen_count"].to_numpy() > 0) & orders["evaluated_at"].notna().to_numpy()
    clock_start = orders["received_at"].where(~(reopened & running), orders["evaluated_at"])
    allowed = (orders["deadline_at"] - clock_start).dt.total_seconds().to_numpy()
    remaining = (orders["deadline_at"] - now).dt.total_seconds().to_numpy()
    used = np.divide(allowed - remaining, allowed, out=np.full(len(orders), np.inf), where=allowed > 0)
    awaiting = (status == "received").to_numpy()
    response_due = orders["received_at"] + pd.Timedelta(hours=RESPONSE_HOURS)
    response_used = ((now - orders["received_at"]).dt.total_seconds() / (RESPONSE_HOURS * 3600)).to_numpy()

    deadline_state = CLOCK_STATES.state_of(np.where(np.isfinite(used), used, np.nan))
    deadline_state = np.where(np.isinf(used), "critical", deadline_state)  # no allowed time at all: up at once
    response_state = CLOCK_STATES.state_of(response_used)
    reason = np.full(len(orders), None, dtype=object)
    # Lowest rank first, so the more serious reason overwrites it.
    reason[awaiting & (response_state == "warning")] = "first_response_due"
    reason[running & (deadline_state == "warning")] = "near_deadline"
    reason[awaiting & (response_state == "critical")] = "no_first_response"
    reason[running & (deadline_state == "critical")] = "overdue"
    card = np.array([REASONS[r][0] if r is not None else None for r in reason], dtype=object)
    end = orders["handled_at"].where(orders["handled_at"].notna(), now)
    return pd.DataFrame({
        "running": running,
        "clock_started_at": clock_start,
        "remaining_hours": np.where(running, remaining / 3600, np.nan),
        "share_used": np.where(running, used, np.nan),
        "awaiting_response": awaiting,
        "response_due_at": response_due,
        # object, not str: an order without a card has None (pandas would make it NaN in a str column)
        "card": pd.Series(card, index=orders.index, dtype=object),
        "reason": pd.Series(reason, index=orders.index, dtype=object),
        "escalate": (card == "red") & orders["supervised_at"].isna().to_numpy(),
        "working_days_open": working_days_between(orders["received_at"], end, holidays),
    }, index=orders.index)


def _instants(values: pd.Series) -> pd.Series:
    """Tz-aware instants in the city's time zone (an all-empty column may come as plain objects)."""
    return pd.to_datetime(values, utc=True).dt.tz_convert(city_timezone())


def carded_orders(orders: pd.DataFrame, now: pd.Timestamp, holidays: np.ndarray | None = None,
                  clocks: pd.DataFrame | None = None) -> pd.DataFrame:
    """The orders with a card at ``now`` (the supervision board's list), red first, most overdue first: the
    order's columns joined with its clocks (``clocks``: :func:`order_clocks` of the same orders and instant, when
    the caller has them already)."""
    clocks = order_clocks(orders, now, holidays) if clocks is None else clocks
    carded = orders.join(clocks)[clocks["card"].notna()]
    rank = carded["card"].map({"red": 0, "yellow": 1})
    return carded.assign(_rank=rank).sort_values(["_rank", "remaining_hours"]).drop(columns="_rank")


def card_counts(orders: pd.DataFrame, now: pd.Timestamp, by: str = "department",
                holidays: np.ndarray | None = None, clocks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Yellow and red cards per ``by`` (a column of the orders: department, grid_code, event_type, …), with the
    open orders and the escalated ones: columns ``open``, ``yellow``, ``red``, ``escalated``, ``to_escalate``,
    sorted by red then yellow cards (the supervision board). ``clocks`` as for :func:`carded_orders`."""
    clocks = order_clocks(orders, now, holidays) if clocks is None else clocks
    frame = pd.DataFrame({
        by: orders[by].to_numpy(),
        "open": clocks["running"].to_numpy() | clocks["awaiting_response"].to_numpy(),
        "yellow": (clocks["card"] == "yellow").to_numpy(),
        "red": (clocks["card"] == "red").to_numpy(),
        "escalated": orders["supervised_at"].notna().to_numpy() & clocks["running"].to_numpy(),
        "to_escalate": clocks["escalate"].to_numpy(),
    })
    counts = frame.groupby(by, sort=False).sum().astype(int)
    return counts.sort_values(["red", "yellow", "open"], ascending=False).reset_index()


ESCALATION = {
    "response_hours": RESPONSE_HOURS,
    "notes": {reason: f"red card: {REASONS[reason][1]}" for reason in ("overdue", "no_first_response")},
}
"""The red-card rule of :func:`order_clocks` as the supervision sweep applies it in one write:
``WorkOrders.escalate_overdue(now, actor=…, **ESCALATION)`` (metrics compute; the work-order service writes)."""
