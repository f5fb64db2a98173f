"""Numbers that agree (issue 15 item 10): a red card has one definition — the supervision board's clocks
(metrics/clocks.py) — and the map's and the wall's red-card count (the ``overdue_orders`` indicator), the order
list's red-card filter and the escalation sweep count the same orders at the same instant. The map counted only
orders past their deadline (21), the board also those not dispatched 24 hours after intake (27)."""
from __future__ import annotations

import pandas as pd
import pytest

from metrics.clocks import order_clocks
from metrics.spec import Window
from metrics.workorders import overdue_orders

T0 = pd.Timestamp("2026-11-20 12:00", tz="Asia/Shanghai")


def _order(order_id, status, received_h, deadline_h, dispatched_h=None, handled_h=None):
    """Times in hours relative to T0."""
    at = lambda h: pd.NaT if h is None else T0 + pd.Timedelta(hours=h)  # noqa: E731
    return dict(order_id=order_id, status=status, department="Water Affairs Bureau", grid_index=0,
                received_at=at(received_h), dispatched_at=at(dispatched_h), handled_at=at(handled_h),
                evaluated_at=pd.NaT, supervised_at=pd.NaT, closed_at=pd.NaT, satisfied=None, reopen_count=0,
                deadline_at=at(deadline_h))


ORDERS = pd.DataFrame([
    _order("past-deadline", "accepted", -50, -2, dispatched_h=-49),
    _order("at-deadline", "dispatched", -30, 0, dispatched_h=-29),
    _order("no-first-response", "received", -30, 40),             # undispatched 30 h after intake, deadline ahead
    _order("response-due-now", "received", -24, 40),              # exactly 24 h: out of time
    _order("young", "received", -10, 40),
    _order("dispatched-in-time", "dispatched", -30, 40, dispatched_h=-29),
    _order("handled", "handled", -50, -2, dispatched_h=-49, handled_h=-3),
])
for _column in ("received_at", "dispatched_at", "handled_at", "evaluated_at", "supervised_at", "closed_at",
                "deadline_at"):
    ORDERS[_column] = pd.to_datetime(ORDERS[_column], utc=True).dt.tz_convert("Asia/Shanghai")


@pytest.mark.parametrize("hours_after", [0, 1, 6, 30, 45])
def test_the_maps_red_cards_are_the_boards(hours_after):
    now = T0 + pd.Timedelta(hours=hours_after)
    on_the_board = int((order_clocks(ORDERS, now)["card"] == "red").sum())
    on_the_map = len(overdue_orders({"orders": ORDERS}, Window(now - pd.Timedelta(days=7), now, "7d")).rows)
    assert on_the_map == on_the_board
    if hours_after == 0:
        assert on_the_board == 4  # past deadline, at deadline, no first response, response due now


def test_the_order_lists_red_card_filter_and_the_sweep_take_the_same_orders(tmp_path):
    """The board's red count links to /orders?overdue=1: that list holds the same orders."""
    from layers.workorders import OrderQuery
    from sample_data.__main__ import build
    from metrics.clocks import ESCALATION

    store = build("test", f"sqlite:///{tmp_path / 'city.sqlite'}", progress=False)
    from layers.workorders import WorkOrders
    work_orders = WorkOrders(store)
    orders = work_orders.open_orders_frame()
    for now in (orders["received_at"].max() + pd.Timedelta(hours=h) for h in (0, 12, 30)):
        red = order_clocks(orders, now)["card"] == "red"
        listed, offset = [], 0
        while True:
            page = work_orders.list_orders(OrderQuery(overdue_at=now, limit=1000, offset=offset))
            listed += [o.order_id for o in page.orders]
            offset += 1000
            if offset >= page.total:
                break
        assert sorted(listed) == sorted(orders.loc[red, "order_id"])
    escalated = work_orders.escalate_overdue(now, actor="test", **ESCALATION)
    assert escalated == int((red & orders["supervised_at"].isna()).sum())
    store.engine.dispose()
