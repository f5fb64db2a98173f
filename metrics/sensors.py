"""Sensor indicators: formulas over the ``sensors``, ``readings`` and ``alarms`` layers.

``readings`` and ``alarms`` carry their sensor's ``grid_code`` (added by :func:`layers.city.load_city`) and
``readings`` its sensor's ``kind``; every layer with a ``grid_code`` has its ``grid_index`` (see ``layers.city``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from metrics.spec import Contributions, Window

# A sensor is online when it reported within this long before the instant asked about.
ONLINE_GRACE = pd.Timedelta(hours=1)
# China's ambient air quality standard (GB 3095-2012), grade II, 24-hour PM2.5 limit, applied per hourly reading.
PM25_LIMIT = 75.0


def sensor_online_rate(data, window: Window) -> Contributions:
    """Of the sensors installed by the window's end, the share that reported within the hour before it."""
    sensors = data["sensors"]
    end = window.end
    installed = (sensors["installed_at"] < end).to_numpy()
    sensors = sensors[installed]
    online = (sensors["last_seen_at"] >= end - ONLINE_GRACE).to_numpy()
    return Contributions(sensors["grid_index"].to_numpy(), online.astype(float), np.ones(len(sensors)))


def active_alarms(data, window: Window) -> Contributions:
    """Alarms raised before the window's end and not cleared by then."""
    alarms = data["alarms"]
    end = window.end
    active = ((alarms["raised_at"] < end) & (alarms["cleared_at"].isna() | (alarms["cleared_at"] >= end))).to_numpy()
    return Contributions(alarms["grid_index"].to_numpy()[active], np.ones(active.sum()),
                         covered=data["sensors"]["grid_index"].unique())


def pm25_exceedance_hours(data, window: Window) -> Contributions:
    """Hourly PM2.5 readings in the window above 75 µg/m³ (sensor-hours)."""
    readings = data["readings"]
    over = ((readings["kind"] == "pm25") & window.contains(readings["ts"]) & (readings["value"] > PM25_LIMIT))
    over = over.to_numpy()
    return Contributions(readings["grid_index"].to_numpy()[over], np.ones(over.sum()),
                         covered=_cells_with(data["sensors"], "pm25"))


def pm25_mean(data, window: Window) -> Contributions:
    """Mean of the hourly PM2.5 readings in the window."""
    readings = data["readings"]
    mask = ((readings["kind"] == "pm25") & window.contains(readings["ts"])).to_numpy()
    return Contributions(readings["grid_index"].to_numpy()[mask], readings["value"].to_numpy()[mask],
                         np.ones(mask.sum()))


def _cells_with(sensors: pd.DataFrame, kind: str) -> np.ndarray:
    return sensors.loc[sensors["kind"] == kind, "grid_index"].unique()
