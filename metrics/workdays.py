"""Working-day arithmetic: how long something took, counting only working days (Monday–Friday less holidays)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from layers.city_settings import holiday_calendar

# Public holidays of the configured calendar that fall on weekdays (mainland China, 2026, as published by the
# State Council). Make-up working Saturdays/Sundays are left out: they are rare and never change a figure by much.
HOLIDAYS = np.array([
    "2026-01-01", "2026-01-02",
    "2026-02-16", "2026-02-17", "2026-02-18", "2026-02-19", "2026-02-20", "2026-02-23",
    "2026-04-06",
    "2026-05-01", "2026-05-04", "2026-05-05",
    "2026-06-19",
    "2026-09-25",
    "2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07",
], dtype="datetime64[D]")


# The calendars a city can choose (layers.city_settings.HOLIDAY_CALENDARS): its setting picks one.
CALENDARS = {"CN": HOLIDAYS, "none": np.array([], dtype="datetime64[D]")}


def active_holidays() -> np.ndarray:
    """The public holidays of the city in force (its ``holidays`` setting)."""
    return CALENDARS[holiday_calendar()]


def working_days_between(start: pd.Series, end: pd.Series, holidays: np.ndarray | None = None) -> np.ndarray:
    """Working days elapsed from ``start`` to ``end`` (fractional; NaN where either is missing); ``holidays``
    defaults to the city's calendar.

    A working day counts as a whole 24 hours; time on weekends and holidays does not count.

    >>> s = pd.Series(pd.to_datetime(["2026-11-20 12:00"]))  # a Friday noon
    >>> e = pd.Series(pd.to_datetime(["2026-11-23 12:00"]))  # the next Monday noon
    >>> working_days_between(s, e).tolist()
    [1.0]
    """
    holidays = active_holidays() if holidays is None else holidays
    start = _local_naive(start)
    end = _local_naive(end)
    valid = (start.notna() & end.notna()).to_numpy()
    out = np.full(len(start), np.nan)
    if not valid.any():
        return out
    s = start[valid].to_numpy().astype("datetime64[s]")
    e = end[valid].to_numpy().astype("datetime64[s]")
    s_day, e_day = s.astype("datetime64[D]"), e.astype("datetime64[D]")
    whole = np.busday_count(s_day, e_day, holidays=holidays).astype(float)
    s_frac = (s - s_day).astype("timedelta64[s]").astype(float) / 86400
    e_frac = (e - e_day).astype("timedelta64[s]").astype(float) / 86400
    out[valid] = (whole - s_frac * np.is_busday(s_day, holidays=holidays)
                  + e_frac * np.is_busday(e_day, holidays=holidays))
    return out


def _local_naive(times: pd.Series) -> pd.Series:
    times = pd.Series(times)
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_localize(None)
    return times
