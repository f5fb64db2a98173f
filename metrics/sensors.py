"""Sensor indicators: formulas over the ``sensors``, ``readings`` and ``alarms`` layers.

``readings`` and ``alarms`` carry their sensor's ``grid_code`` (added by :func:`layers.city.load_city`) and
``readings`` its sensor's ``kind``; every layer with a ``grid_code`` has its ``grid_index`` (see ``layers.city``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.spec import Contributions, Window, earlier, layer_memoised, rows_where

# A sensor is online when it reported within this long before the instant asked about.
ONLINE_GRACE = pd.Timedelta(hours=1)
# China's ambient air quality standard (GB 3095-2012), grade II, 24-hour PM2.5 limit, applied per hourly reading.
PM25_LIMIT = 75.0


def sensor_online_rate(data, window: Window, where=None) -> Contributions:
    """Of the sensors installed by the window's end, the share that reported within the hour before it."""
    sensors = data["sensors"]
    end = window.end
    installed = earlier(sensors["installed_at"], end)
    installed = installed & _all_rows(rows_where(data, "sensors", where), len(sensors))
    online = ~earlier(sensors["last_seen_at"], end - ONLINE_GRACE, missing=True)
    # With the rows, a family of kinds is one run of this formula split by kind (metrics.engine.family_sums).
    return Contributions(sensors["grid_index"].to_numpy()[installed], online[installed].astype(float),
                         np.ones(installed.sum()), rows=np.flatnonzero(installed))


def active_alarms(data, window: Window, where=None) -> Contributions:
    """Alarms raised before the window's end and not cleared by then (where sensors of the kind exist)."""
    alarms = data["alarms"]
    end = window.end
    active = earlier(alarms["raised_at"], end) & ~earlier(alarms["cleared_at"], end)  # never cleared: not earlier
    active = active & _all_rows(rows_where(data, "alarms", where), len(alarms))
    sensors = data["sensors"]
    watched = _all_rows(rows_where(data, "sensors", where), len(sensors))
    return Contributions(alarms["grid_index"].to_numpy()[active], np.ones(active.sum()),
                         covered=sensors["grid_index"].to_numpy()[watched])


def _all_rows(mask: np.ndarray | None, length: int) -> np.ndarray:
    return np.ones(length, dtype=bool) if mask is None else mask


def pm25_exceedance_hours(data, window: Window) -> Contributions:
    """Hourly PM2.5 readings in the window above 75 µg/m³ (sensor-hours)."""
    readings = data["readings"]
    over = _of_kind(data, "pm25") & window.mask(readings["ts"]) & (readings["value"].to_numpy() > PM25_LIMIT)
    return Contributions(readings["grid_index"].to_numpy()[over], np.ones(over.sum()),
                         covered=_cells_with(data, "pm25"))


def pm25_mean(data, window: Window) -> Contributions:
    """Mean of the hourly PM2.5 readings in the window."""
    readings = data["readings"]
    mask = _of_kind(data, "pm25") & window.mask(readings["ts"])
    return Contributions(readings["grid_index"].to_numpy()[mask], readings["value"].to_numpy()[mask],
                         np.ones(mask.sum()))


def _of_kind(data, kind: str) -> np.ndarray:
    """Which readings are of sensors of ``kind``, compared in numpy (the column's strings are shared objects), once
    per readings frame: a sparkline asks at each of its steps (16 ms each over the city's 1.3 million)."""
    return layer_memoised(data, "readings", ("of_kind", kind), lambda: data["readings"]["kind"].to_numpy() == kind)


def _cells_with(data, kind: str) -> np.ndarray:
    """The cells (positions) with a sensor of ``kind``. Every kind's at once, once per sensors' frame: a live
    refresh runs the readings' formulas a hundred times over a few changed rows, each on a city of its own, and
    comparing the kind of every sensor each time cost more than the formulas."""
    def by_kind():
        sensors = data["sensors"]
        codes, kinds = pd.factorize(sensors["kind"])
        cells = sensors["grid_index"].to_numpy()
        return {kinds[k]: pd.unique(cells[codes == k]) for k in range(len(kinds))}
    return layer_memoised(data, "sensors", "cells_by_kind", by_kind).get(kind, np.array([], dtype=np.int64))


def reading_mean(kind: str):
    """A formula: the mean of the hourly readings of sensors of ``kind`` in the window."""
    def formula(data, window: Window, where=None) -> Contributions:
        readings = data["readings"]
        mask = _of_kind(data, kind) & window.mask(readings["ts"])
        return Contributions(readings["grid_index"].to_numpy()[mask], readings["value"].to_numpy()[mask],
                             np.ones(mask.sum()))
    formula.__doc__ = f"Mean of the hourly {kind} readings in the window."
    return formula


def hours_over(kind: str, limit: float, night_only: bool = False):
    """A formula: hourly readings of ``kind`` in the window above ``limit`` (only 22:00–06:00 if ``night_only``)."""
    def formula(data, window: Window, where=None) -> Contributions:
        readings = data["readings"]
        over = _of_kind(data, kind) & window.mask(readings["ts"]) & (readings["value"].to_numpy() > limit)
        if night_only:
            hour = pd.DatetimeIndex(readings["ts"]).hour.to_numpy()
            over &= (hour >= 22) | (hour < 6)
        return Contributions(readings["grid_index"].to_numpy()[over], np.ones(over.sum()),
                             covered=_cells_with(data, kind))
    formula.__doc__ = f"Hourly {kind} readings above {limit:g} in the window" + (" at night." if night_only else ".")
    return formula
