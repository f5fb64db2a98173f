"""How screens follow the city for now: a timer per screen. The lead is building a shared mechanism ("screens follow
the city"); the alerts page and the wall's alert cue take their refresh from here only, so that swapping it is one
edit."""
from __future__ import annotations

from dash import dcc

ALERT_REFRESH_SECONDS = 5
"""How often a screen looks for changed alerts (a cheap query: the newest entry of the alerts' log)."""


def screen_refresh(component_id: str, seconds: float = ALERT_REFRESH_SECONDS) -> dcc.Interval:
    """The component whose ``n_intervals`` a screen's refresh callbacks take as their Input."""
    return dcc.Interval(id=component_id, interval=int(seconds * 1000))
