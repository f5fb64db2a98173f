"""Clocks and cards of work orders (metrics.clocks) with a frozen clock: every case written out by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metrics.clocks import YELLOW_SHARE, card_counts, carded_orders, order_clocks

TZ = "Asia/Shanghai"
NOW = pd.Timestamp("2026-11-20 12:00", tz=TZ)  # a Friday


def _at(hours_before_now: float | None):
    return pd.NaT if hours_before_now is None else NOW - pd.Timedelta(hours=hours_before_now)


# id, status, received (h before now), dispatched, handled, deadline (h before now; negative: in the future),
# evaluated (reopen time), reopen_count, escalated, department, expected card, expected reason, expected escalate
CASES = [
    ("fresh", "received", 1, None, None, -23, None, 0, None, "A", None, None, False),
    ("response_due", "received", 20, None, None, -4, None, 0, None, "A", "yellow", "near_deadline", False),
    ("response_due_long_limit", "received", 20, None, None, -76, None, 0, None, "A", "yellow",
     "first_response_due", False),
    ("no_response", "received", 25, None, None, -71, None, 0, None, "B", "red", "no_first_response", True),
    ("on_track", "accepted", 10, 9, None, -86, None, 0, None, "A", None, None, False),
    ("near", "accepted", 20, 19, None, -4, None, 0, None, "B", "yellow", "near_deadline", False),
    ("exactly_at_share", "dispatched", 24 * YELLOW_SHARE, 19, None, -24 * (1 - YELLOW_SHARE), None, 0, None, "B",
     "yellow", "near_deadline", False),
    ("overdue", "dispatched", 30, 29, None, 6, None, 0, None, "B", "red", "overdue", True),
    ("overdue_escalated", "accepted", 30, 29, None, 6, None, 0, 5, "B", "red", "overdue", False),
    ("handled_late", "handled", 30, 29, 1, 6, None, 0, None, "A", None, None, False),
    ("closed", "closed", 60, 59, 40, 36, None, 0, None, "A", None, None, False),
    ("cancelled", "cancelled", 60, None, None, 36, None, 0, None, "A", None, None, False),
    # Reopened 2 h ago with a fresh 24 h limit: its clock starts at the reopen, 2/24 used: no card.
    ("reopened", "accepted", 50, 49, None, -22, 2, 1, None, "A", None, None, False),
]
FRAME = pd.DataFrame({
    "order_id": [c[0] for c in CASES],
    "status": [c[1] for c in CASES],
    "received_at": pd.DatetimeIndex([_at(c[2]) for c in CASES]),
    "dispatched_at": pd.DatetimeIndex([_at(c[3]) for c in CASES]),
    "handled_at": pd.DatetimeIndex([_at(c[4]) for c in CASES]),
    "deadline_at": pd.DatetimeIndex([_at(c[5]) for c in CASES]),
    "evaluated_at": pd.DatetimeIndex([_at(c[6]) for c in CASES]),
    "reopen_count": [c[7] for c in CASES],
    "supervised_at": pd.DatetimeIndex([_at(c[8]) for c in CASES]),
    "department": [c[9] for c in CASES],
}).set_index("order_id", drop=False)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_card_of_each_case(case):
    clocks = order_clocks(FRAME, NOW)
    order = case[0]
    assert (clocks.at[order, "card"], clocks.at[order, "reason"], bool(clocks.at[order, "escalate"])) == case[10:]


def test_remaining_time_and_share():
    clocks = order_clocks(FRAME, NOW)
    assert clocks.loc["near", "remaining_hours"] == pytest.approx(4.0)
    assert clocks.loc["near", "share_used"] == pytest.approx(20 / 24)
    assert clocks.loc["overdue", "remaining_hours"] == pytest.approx(-6.0)
    assert clocks.loc["reopened", "clock_started_at"] == NOW - pd.Timedelta(hours=2)
    assert clocks.loc["reopened", "share_used"] == pytest.approx(2 / 24)
    assert np.isnan(clocks.loc["handled_late", "remaining_hours"])
    assert not clocks.loc["closed", "running"]


def test_the_same_orders_later_turn_red():
    later = order_clocks(FRAME, NOW + pd.Timedelta(hours=5))
    assert later.at["near", "card"] == "red"
    assert later.at["response_due_long_limit", "reason"] == "no_first_response"
    assert later.at["response_due", "reason"] == "overdue"  # the deadline outranks the response


def test_working_days_skip_the_weekend():
    # Received Friday 12:00 (now), looked at on Monday 12:00: one working day open, not three.
    frame = FRAME.loc[["fresh"]].assign(received_at=NOW, deadline_at=NOW + pd.Timedelta(hours=96))
    monday = NOW + pd.Timedelta(days=3)
    assert order_clocks(frame, monday).loc["fresh", "working_days_open"] == pytest.approx(1.0)
    handled = frame.assign(status="handled", handled_at=NOW + pd.Timedelta(days=3, hours=6))
    assert order_clocks(handled, monday + pd.Timedelta(days=2)).loc["fresh", "working_days_open"] == \
        pytest.approx(1.25)


def test_supervision_board_counts_by_department():
    board = card_counts(FRAME, NOW, by="department").set_index("department")
    # Hand count. A: response_due (yellow), response_due_long_limit (yellow); open: fresh, response_due,
    # response_due_long_limit, on_track, reopened. B: no_response, overdue, overdue_escalated (red), near,
    # exactly_at_share (yellow); open: all five.
    assert board.loc["A"].to_dict() == {"open": 5, "yellow": 2, "red": 0, "escalated": 0, "to_escalate": 0}
    assert board.loc["B"].to_dict() == {"open": 5, "yellow": 2, "red": 3, "escalated": 1, "to_escalate": 2}
    assert list(board.index) == ["B", "A"]  # most red cards first


def test_carded_orders_red_first_most_overdue_first():
    carded = carded_orders(FRAME, NOW)
    assert carded["order_id"].tolist()[:3] in (["overdue", "overdue_escalated", "no_response"],
                                               ["overdue_escalated", "overdue", "no_response"])
    assert set(carded["card"]) == {"red", "yellow"}
    assert len(carded) == sum(1 for c in CASES if c[10] is not None)
