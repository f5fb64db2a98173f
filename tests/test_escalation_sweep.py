"""The supervision sweep that the server runs on its own: every red card not yet escalated gets escalated."""
from __future__ import annotations

import pandas as pd
import pytest

import app
from dashboard import services
from dashboard.services import Services
from layers.specs import CITY_TIMEZONE
from metrics.clocks import order_clocks
from sample_data.__main__ import build


class Stop(Exception):
    pass


def test_the_sweep_escalates_every_red_card_on_its_own(tmp_path, monkeypatch):
    # A city whose history ended two days ago: its unhandled orders are overdue now.
    end = pd.Timestamp.now(tz=CITY_TIMEZONE).floor("h") - pd.Timedelta(days=2)
    service = Services(build("test", f"sqlite:///{tmp_path / 'city.sqlite'}", progress=False, end=end))
    work_orders = service.work_orders()
    before = work_orders.open_orders_frame()
    waiting = before["order_id"][order_clocks(before, pd.Timestamp.now(tz=CITY_TIMEZONE))["escalate"]].tolist()
    assert waiting
    naps = []

    def nap(seconds):
        naps.append(seconds)
        if len(naps) == 3:
            raise Stop  # the thread's loop never ends by itself

    monkeypatch.setattr(app.time, "sleep", nap)
    with pytest.raises(Stop):
        app.escalate_every(service, 0.5)
    assert naps == [30, 30, 30]
    orders = work_orders.open_orders_frame()
    assert not order_clocks(orders, pd.Timestamp.now(tz=CITY_TIMEZONE))["escalate"].any()
    # Each order that was waiting has one escalation in its log, by the sweep (the sample's own escalations of other
    # orders came before and have other actors).
    for order_id in waiting[:20]:
        assert [e.actor for e in work_orders.timeline(order_id) if e.action == "escalate"] == ["supervision sweep"]


@pytest.mark.parametrize("text, minutes", [(None, 10), ("0", 0), ("2.5", 2.5)])
def test_the_sweep_interval_comes_from_the_environment(text, minutes):
    assert services.escalation_minutes({} if text is None else {"CITYTWIN_ESCALATION_MINUTES": text}) == minutes


@pytest.mark.parametrize("text", ["often", "-1"])
def test_a_bad_interval_is_refused_with_its_name(text):
    with pytest.raises(SystemExit, match="CITYTWIN_ESCALATION_MINUTES"):
        services.escalation_minutes({"CITYTWIN_ESCALATION_MINUTES": text})
