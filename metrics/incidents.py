"""Emergency-response indicators: formulas over the ``incidents`` layer (fires, accidents, floods, gas leaks, …).

An incident is reported, dispatched, reached by the first responders (``arrived_at``) and resolved; what had not
happened by the end of the data is empty. A window sees what was known before its end: an incident resolved after
the window's end was still active then.

Arrival time is counted from the report, as the caller experiences it (the call-taking and dispatch minutes
included), not from the dispatch.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.buildings import resident_counts, with_known_residents
from metrics.optional import NO_DATA_COUNT, NO_DATA_SHARE, known_by, optional_layer
from metrics.spec import Contributions, Window

ARRIVAL_TARGET = pd.Timedelta(minutes=15)
PER_RESIDENTS = 100_000


def active_incidents(data, window: Window, where=None) -> Contributions:
    """Incidents reported before the window's end and not resolved by then."""
    incidents = optional_layer(data, "incidents")
    if incidents is None:
        return NO_DATA_COUNT
    active = known_by(incidents["reported_at"], window.end) & ~known_by(incidents["resolved_at"], window.end)
    return Contributions(incidents["grid_index"].to_numpy()[active], np.ones(int(active.sum())))


def _arrival_minutes(incidents: pd.DataFrame) -> np.ndarray:
    return ((incidents["arrived_at"] - incidents["reported_at"]).dt.total_seconds() / 60.0).to_numpy(
        dtype=float, na_value=np.nan)


def mean_arrival_minutes(data, window: Window, where=None) -> Contributions:
    """Mean minutes from report to the first responders' arrival, over the incidents reported in the window whose
    responders arrived before its end."""
    incidents = optional_layer(data, "incidents")
    if incidents is None:
        return NO_DATA_SHARE
    arrived = window.contains(incidents["reported_at"]).to_numpy() & known_by(incidents["arrived_at"], window.end)
    return Contributions(incidents["grid_index"].to_numpy()[arrived], _arrival_minutes(incidents)[arrived],
                         np.ones(int(arrived.sum())))


def arrival_within_15_min_rate(data, window: Window, where=None) -> Contributions:
    """Of the incidents reported in the window whose outcome is known at its end (responders arrived, or 15 minutes
    passed without them), the share reached within 15 minutes of the report (15:00 exactly is in time)."""
    incidents = optional_layer(data, "incidents")
    if incidents is None:
        return NO_DATA_SHARE
    end = window.end
    reported = window.contains(incidents["reported_at"]).to_numpy()
    arrived = known_by(incidents["arrived_at"], end)
    too_late_already = (incidents["reported_at"] + ARRIVAL_TARGET < end).to_numpy()
    among = reported & (arrived | too_late_already)
    in_time = arrived & (_arrival_minutes(incidents) <= ARRIVAL_TARGET.total_seconds() / 60.0)
    return Contributions(incidents["grid_index"].to_numpy()[among], in_time[among].astype(float),
                         np.ones(int(among.sum())))


def incidents_per_100k_residents(data, window: Window, where=None) -> Contributions:
    """Incidents reported in the window per 100,000 residents and per day (divided by the window's length in days,
    so that the thresholds hold for a day, a week or a month alike)."""
    incidents = optional_layer(data, "incidents")
    buildings = with_known_residents(optional_layer(data, "buildings"))
    if incidents is None or buildings is None or window.days <= 0:
        return NO_DATA_SHARE
    reported = np.flatnonzero(window.contains(incidents["reported_at"]).to_numpy())
    return Contributions(
        np.concatenate([incidents["grid_index"].to_numpy()[reported], buildings["grid_index"].to_numpy()]),
        np.concatenate([np.full(len(reported), PER_RESIDENTS / window.days), np.zeros(len(buildings))]),
        np.concatenate([np.zeros(len(reported)), resident_counts(buildings)]))
