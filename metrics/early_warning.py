"""Early warning: hourly series per unit, seasonal anomaly flags and a next-24-hours forecast of work orders.

Every function here is pure: a :class:`layers.city.City` (or a tidy hourly series) in, a tidy frame out. A *series*
is a frame with one row per unit and hour: ``unit_code``, ``ts`` (the start of the hour, tz-aware local time) and
``value``.

Methods
-------
Hourly series
    :func:`hourly_orders` counts work orders per unit and hour of ``received_at`` (0 where a unit received none);
    only hours that ended by ``end`` are counted, so a partly elapsed hour never reads as a quiet one.
    :func:`hourly_sensor_mean` averages one sensor kind's readings per unit and hour; a unit without a reading in an
    hour has no row (no data, not 0).

Seasonal baseline and anomaly score (:func:`seasonal_anomalies`)
    Each hour is compared with the same hour of day on the previous ``history_days`` days of the same *day type*
    (a working day, or a rest day: a weekend or a public holiday of :data:`metrics.workdays.HOLIDAYS`). With
    :math:`x_1 \\dots x_n` those earlier values,

    .. math::

        b = \\operatorname{median}(x_i), \\qquad
        s = \\max\\bigl(1.4826 \\cdot \\operatorname{median}|x_i - b|,\\ s_{\\min},\\ \\sqrt{\\max(b, 1)}\\,[\\text{counts}]\\bigr),
        \\qquad z = (x - b) / s

    and the hour is an anomaly when :math:`|z| > k`. The median and the MAD (scaled by 1.4826 to estimate a
    standard deviation under normal noise) ignore a few abnormal days in the history, so an episode does not hide
    the next one. For counts the Poisson standard deviation :math:`\\sqrt{b}` is a floor: with a handful of
    history days the MAD of small counts is often 0. When fewer than ``min_history`` same-type days have a value,
    all previous days within ``history_days`` are used instead; with fewer still, there is no baseline and the
    hour is not judged (``baseline``, ``scale`` and ``score`` are NaN, ``anomaly`` is False).

Forecast (:func:`forecast_hourly`, :func:`forecast_orders`)
    A seasonal profile scaled by the recent level. For an hour :math:`t` of day type :math:`d`,

    .. math::

        P(t) = \\text{mean of the last } K \\text{ values at } t\\text{'s hour of day on days of type } d,
        \\qquad \\hat y(t) = P(t) \\cdot \\bigl(1 + w\\,(L - 1)\\bigr),
        \\qquad L = \\frac{\\sum_{24\\,h} y}{\\sum_{24\\,h} P}

    where :math:`L` compares the last 24 observed hours with their own profiles (each from the days before it), and
    :math:`w` (``level_weight``) says how much of that recent departure is expected to persist. The interval is
    :math:`\\hat y \\pm z_{(1+c)/2} \\cdot \\sigma \\sqrt{1 + 1/K}` (clipped at 0), with :math:`\\sigma` the standard
    deviation of the :math:`K` profile values scaled by the same level: a normal prediction interval for a mean of
    :math:`K` draws. The naive benchmark, :func:`naive_forecast`, repeats the same hour yesterday.

Evaluation (:func:`evaluate_forecast`)
    Rolling origin over the last ``holdout_days`` complete days: each day is forecast from the data before its
    midnight and compared with what happened. MAE and sMAPE are reported per method, city-wide (the sum of the
    unit forecasts against the city's hourly total) and as the mean over units, with the interval's coverage.

Parameters
----------
history_days : int, default 28
    Calendar days of history behind each anomaly baseline (4 weeks: 20 working days, 8 rest days).
threshold : float, default 4.0
    :math:`k`, robust standard deviations beyond which an hour is flagged. Chosen on the demo city (seed 20231):
    at 4.0 about 1 % of the judged district-hours of an undisturbed series are flagged, against 3 % at 3.0 —
    a baseline from a few days has heavier tails than a normal one — while planted episodes score far above 10.
min_history : int, default 3
    Fewest earlier values for a baseline (a median of fewer is an anecdote).
profile_days : int, default 7
    :math:`K`, same-type days in the forecast profile (a week and a half of working days, about a month of
    rest days).
level_weight : float, default 0.5
    :math:`w`. At 1 the forecast follows yesterday's level fully, at 0 it ignores it. The sample city's daily level
    is drawn anew each day, so following it fully adds its noise; real request volumes drift (weather, campaigns,
    holidays) and 0.5 keeps half of a departure. The rolling-origin evaluation shows its effect.
interval : float, default 0.9
    Nominal coverage :math:`c` of the ``lower``–``upper`` band.

Assumptions
-----------
Timestamps are tz-aware in a zone without daylight saving time (Asia/Shanghai): every day has 24 hours. Orders are
events within an hour; readings are stamped on the hour they describe. Units come from ``city.hierarchy`` (any
level); rows outside every grid cell are left out. Make-up working weekends are counted as rest days, as in
:mod:`metrics.workdays`.

Examples
--------
Six Mondays-to-Wednesdays of a value near 10 at 09:00, then 25:

>>> days = pd.date_range("2026-11-02 09:00", periods=10, freq="D", tz="Asia/Shanghai")
>>> working = days[days.dayofweek < 5]
>>> series = pd.DataFrame({"unit_code": "D1", "ts": working, "value": [10, 11, 9, 10, 12, 10, 25, 10]})
>>> flags = seasonal_anomalies(series)
>>> flags[["ts", "baseline", "score", "anomaly"]].tail(2).round(2).to_string(index=False)
'                       ts  baseline  score  anomaly\\n2026-11-11 09:00:00+08:00      10.0  10.12     True\\n2026-11-12 09:00:00+08:00      10.0  -0.00    False'

On a city (``bench/early_warning.py`` runs these at the city scale):

>>> pm25 = sensor_anomalies(city, "pm25")                    # doctest: +SKIP
>>> pm25[pm25["anomaly"]].groupby("unit_code").size()        # doctest: +SKIP
>>> forecast_orders(city, city.as_of).head()                 # doctest: +SKIP
>>> evaluate_forecast(city, holdout_days=7)                  # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from metrics.workdays import HOLIDAYS

SERIES_COLUMNS = ["unit_code", "ts", "value"]
ANOMALY_COLUMNS = ["unit_code", "ts", "value", "baseline", "scale", "score", "anomaly"]
FORECAST_COLUMNS = ["unit_code", "ts", "forecast", "lower", "upper"]
EVALUATION_COLUMNS = ["method", "scope", "mae", "smape", "interval_coverage", "hours"]

# 1 / Φ⁻¹(0.75): the MAD of normal noise times this is its standard deviation.
MAD_TO_SD = 1.4826
# Fewest earlier errors (one day of hours) from which a unit's typical baseline error is taken.
MIN_PAST_ERRORS = 24
HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)

OURS = "seasonal_profile"
NAIVE = "same_hour_yesterday"


# --- hourly series ----------------------------------------------------------------------------------------------

def hourly_orders(city, level: str = "district", end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Work orders received per unit of ``level`` and hour, for every hour that ended by ``end`` (default: the
    city's as-of instant), from the first order's hour on; 0 where a unit received none."""
    orders = city["orders"]
    if orders.empty:
        return _empty(SERIES_COLUMNS)
    end = city.as_of if end is None else end
    last_hour_end = end.floor("h")
    # Hours as integers of local wall time: bincount on millions of orders instead of grouping timestamps.
    hour_number = _local_hour_numbers(orders["received_at"])
    grid = orders["grid_index"].to_numpy()
    keep = (grid >= 0) & (hour_number < _hour_number(last_hour_end))
    if not keep.any():
        return _empty(SERIES_COLUMNS)
    first = hour_number[keep].min()
    hours = _hour_number(last_hour_end) - first
    units, unit_of_grid = _units_of(city, level)
    unit_index = unit_of_grid[grid[keep]]
    counts = np.bincount(unit_index * hours + (hour_number[keep] - first),
                         minlength=len(units) * hours).reshape(len(units), hours)
    stamps = pd.date_range(last_hour_end - hours * HOUR, periods=hours, freq="h")
    return pd.DataFrame({"unit_code": np.repeat(units, hours), "ts": np.tile(stamps, len(units)),
                         "value": counts.ravel().astype(float)})


def hourly_sensor_mean(city, kind: str, level: str = "district", end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Mean of the ``kind`` readings per unit of ``level`` and hour, up to ``end`` (default: the city's as-of
    instant); a unit-hour without a reading has no row."""
    readings = city["readings"]
    end = city.as_of if end is None else end
    grid = readings["grid_index"].to_numpy()
    keep = ((readings["kind"] == kind) & (readings["ts"] <= end)).to_numpy() & (grid >= 0)
    if not keep.any():
        return _empty(SERIES_COLUMNS)
    units, unit_of_grid = _units_of(city, level)
    frame = pd.DataFrame({"unit": unit_of_grid[grid[keep]],
                          "hour": _local_hour_numbers(readings["ts"])[keep],
                          "value": readings["value"].to_numpy()[keep]})
    means = frame.groupby(["unit", "hour"], sort=True)["value"].mean().reset_index()
    tz = readings["ts"].dt.tz
    stamps = pd.to_datetime(means["hour"].to_numpy() * 3600, unit="s").tz_localize(tz)
    return pd.DataFrame({"unit_code": units[means["unit"].to_numpy()], "ts": stamps,
                         "value": means["value"].to_numpy()})


# --- anomalies --------------------------------------------------------------------------------------------------

def seasonal_anomalies(series: pd.DataFrame, history_days: int = 28, threshold: float = 4.0,
                       min_history: int = 3, min_scale: float = 0.0, counts: bool = False) -> pd.DataFrame:
    """Baseline, robust scale, score and anomaly flag of every hour of ``series`` (see the module docstring).

    ``counts`` treats values as counts (Poisson noise unit √max(baseline, 1)); ``min_scale`` floors the scale (in
    the series' unit) for series that can be flat. Returns ``ANOMALY_COLUMNS``, one row per row of ``series``.
    """
    if series.empty:
        return _empty(ANOMALY_COLUMNS)
    cube = DayHourCube.of(series)
    value = cube.values
    units = len(cube.units)
    baseline = np.full(value.shape, np.nan)
    hour_spread = np.full(value.shape, np.nan)
    typical_error = np.full((units, cube.days, 1), np.nan)
    for day in range(cube.days):
        in_window = np.arange(max(0, day - history_days), day)
        same_type = in_window[cube.rest[in_window] == cube.rest[day]]
        median_same, mad_same, n_same = _median_and_mad(value[:, same_type, :])
        median_all, mad_all, n_all = _median_and_mad(value[:, in_window, :])
        use_same = n_same >= min_history
        enough = use_same | (n_all >= min_history)
        baseline[:, day, :] = np.where(use_same, median_same, np.where(enough, median_all, np.nan))
        hour_spread[:, day, :] = np.where(use_same, mad_same, np.where(enough, mad_all, np.nan))
        # How far the earlier days fell from their own baselines, over all hours: a slow drift (weather) moves a
        # whole day away from the days before it, which the spread of three or four values at one hour understates.
        past_errors = np.abs(value[:, in_window, :] - baseline[:, in_window, :]) / _noise_unit(
            baseline[:, in_window, :], counts)
        typical_error[:, day, 0] = _median_of_enough(past_errors.reshape(units, -1), MIN_PAST_ERRORS)
    noise_unit = _noise_unit(baseline, counts)
    # np.maximum propagates NaN: an hour without a baseline or without past errors to judge it by is not judged.
    scale = np.maximum(MAD_TO_SD * hour_spread, MAD_TO_SD * typical_error * noise_unit)
    scale = np.maximum(scale, min_scale)
    if counts:
        scale = np.maximum(scale, noise_unit)  # never tighter than Poisson noise
    judged = ~np.isnan(scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A flat history (scale 0) makes any departure infinitely unusual and no departure unremarkable.
        score = np.where(scale > 0, (value - baseline) / scale,
                         np.where(value == baseline, 0.0, np.sign(value - baseline) * np.inf))
    rows = cube.row_positions
    out = series[["unit_code", "ts", "value"]].reset_index(drop=True).copy()
    out["baseline"] = np.where(judged, baseline, np.nan)[rows]
    out["scale"] = scale[rows]
    out["score"] = np.where(judged, score, np.nan)[rows]
    out["anomaly"] = np.abs(out["score"].to_numpy()) > threshold  # NaN compares False: not judged
    return out[ANOMALY_COLUMNS]


def order_anomalies(city, level: str = "district", end: pd.Timestamp | None = None, **options) -> pd.DataFrame:
    """:func:`seasonal_anomalies` of :func:`hourly_orders` (as counts)."""
    return seasonal_anomalies(hourly_orders(city, level, end), counts=True, **options)


def sensor_anomalies(city, kind: str, level: str = "district", end: pd.Timestamp | None = None,
                     **options) -> pd.DataFrame:
    """:func:`seasonal_anomalies` of :func:`hourly_sensor_mean` for one sensor kind."""
    return seasonal_anomalies(hourly_sensor_mean(city, kind, level, end), **options)


# --- forecast ---------------------------------------------------------------------------------------------------

def forecast_hourly(series: pd.DataFrame, start: pd.Timestamp, horizon_hours: int = 24, profile_days: int = 7,
                    level_weight: float = 0.5, interval: float = 0.9) -> pd.DataFrame:
    """Forecast each unit's hours ``[start, start + horizon_hours)`` from the rows of ``series`` before ``start``
    (on the hour): seasonal profile × damped recent level (see the module docstring). Returns ``FORECAST_COLUMNS``;
    empty when there is no history."""
    history = series[series["ts"] < start]
    if history.empty or horizon_hours <= 0:
        return _empty(FORECAST_COLUMNS)
    targets = pd.date_range(start, periods=horizon_hours, freq="h")
    # One cube over history and horizon, so the profile of any hour is read the same way, past or future.
    cube = DayHourCube.of(history, until=targets[-1])
    profile_mean = np.full(cube.values.shape, np.nan)
    profile_sd = np.full(cube.values.shape, np.nan)
    level_hours = pd.date_range(start - DAY, periods=24, freq="h")
    level_hours = level_hours[cube.day_of(level_hours) >= 0]
    level_days, target_days = cube.day_of(level_hours), cube.day_of(targets)
    for day in np.unique(np.r_[level_days, target_days]):
        profile_mean[:, day, :], profile_sd[:, day, :] = _last_same_type(cube, day, profile_days)

    recent = cube.values[:, level_days, level_hours.hour.to_numpy()]
    expected = profile_mean[:, level_days, level_hours.hour.to_numpy()]
    both = ~np.isnan(recent) & ~np.isnan(expected)
    recent_sum = np.where(both, recent, 0.0).sum(axis=1)
    expected_sum = np.where(both, expected, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected_sum > 0, recent_sum / expected_sum, 1.0)
    level = 1.0 + level_weight * (ratio - 1.0)

    target_hour = targets.hour.to_numpy()
    mean = profile_mean[:, target_days, target_hour] * level[:, None]
    spread = profile_sd[:, target_days, target_hour] * level[:, None] * np.sqrt(1.0 + 1.0 / profile_days)
    z = NormalDist().inv_cdf(0.5 + interval / 2)
    units = len(cube.units)
    return pd.DataFrame({
        "unit_code": np.repeat(cube.units.to_numpy(), horizon_hours),
        "ts": np.tile(targets, units),
        "forecast": mean.ravel(),
        "lower": np.maximum(mean - z * spread, 0.0).ravel(),
        "upper": (mean + z * spread).ravel(),
    })


def naive_forecast(series: pd.DataFrame, start: pd.Timestamp, horizon_hours: int = 24) -> pd.DataFrame:
    """The benchmark: each hour repeats the same hour of the last day before ``start`` (yesterday's, for a 24-hour
    horizon). Returns ``FORECAST_COLUMNS`` with no interval (``lower``/``upper`` NaN)."""
    history = series[series["ts"] < start]
    if history.empty or horizon_hours <= 0:
        return _empty(FORECAST_COLUMNS)
    targets = pd.date_range(start, periods=horizon_hours, freq="h")
    days_back = np.arange(horizon_hours) // 24 + 1
    source = targets - pd.to_timedelta(days_back, unit="D")
    by_unit_hour = history.set_index(["unit_code", "ts"])["value"]
    units = history["unit_code"].unique()
    index = pd.MultiIndex.from_arrays([np.repeat(units, horizon_hours), np.tile(source, len(units))])
    return pd.DataFrame({"unit_code": np.repeat(units, horizon_hours), "ts": np.tile(targets, len(units)),
                         "forecast": by_unit_hour.reindex(index).to_numpy(), "lower": np.nan, "upper": np.nan})


def forecast_orders(city, as_of: pd.Timestamp | None = None, horizon_hours: int = 24, level: str = "district",
                    **options) -> pd.DataFrame:
    """Orders per unit for the ``horizon_hours`` hours from the first whole hour after ``as_of`` (default: the
    city's as-of instant), from the hours that ended by then. ``options`` go to :func:`forecast_hourly`."""
    as_of = city.as_of if as_of is None else as_of
    return forecast_hourly(hourly_orders(city, level, end=as_of), as_of.ceil("h"), horizon_hours, **options)


def evaluate_forecast(city, holdout_days: int = 7, level: str = "district", city_code: str | None = None,
                      **options) -> pd.DataFrame:
    """Rolling-origin evaluation of :func:`forecast_hourly` against :func:`naive_forecast` on order volumes.

    Each of the last ``holdout_days`` complete days is forecast from the data before its midnight. Returns
    ``EVALUATION_COLUMNS``: per method, ``scope`` ``"city"`` (the units' forecasts summed against the hourly total
    of all units, labelled ``city_code``) and ``"unit_mean"`` (the mean over units of each unit's figures); MAE in
    orders per hour, sMAPE in percent (an hour with 0 forecast and 0 actual counts as 0 %), and the share of
    actual hours inside our interval.
    """
    series = hourly_orders(city, level)
    if series.empty:
        return _empty(EVALUATION_COLUMNS)
    last_midnight = (series["ts"].max() + HOUR).normalize()
    starts = [last_midnight - k * DAY for k in range(holdout_days, 0, -1)]
    starts = [s for s in starts if (series["ts"] < s).any()]
    if not starts:
        return _empty(EVALUATION_COLUMNS)
    actual = series.set_index(["unit_code", "ts"])["value"]
    frames = []
    for method, forecaster in ((OURS, lambda s: forecast_hourly(series, s, 24, **options)),
                               (NAIVE, lambda s: naive_forecast(series, s, 24))):
        predicted = pd.concat([forecaster(s) for s in starts], ignore_index=True)
        predicted["actual"] = actual.reindex(pd.MultiIndex.from_frame(predicted[["unit_code", "ts"]])).to_numpy()
        predicted = predicted.dropna(subset=["actual", "forecast"])
        per_unit = predicted.groupby("unit_code").apply(_accuracy, include_groups=False)
        # The units' bands do not add up to a band for the total (their errors are not perfectly correlated).
        city_wide = predicted.groupby("ts")[["forecast", "actual"]].sum().assign(lower=np.nan, upper=np.nan)
        frames.append(pd.DataFrame([
            {"method": method, "scope": "city", **_accuracy(city_wide.reset_index())},
            {"method": method, "scope": "unit_mean", **per_unit.mean().to_dict(),
             "hours": int(per_unit["hours"].sum())},
        ]))
    return pd.concat(frames, ignore_index=True)[EVALUATION_COLUMNS]


def _accuracy(frame: pd.DataFrame) -> pd.Series:
    forecast, actual = frame["forecast"].to_numpy(float), frame["actual"].to_numpy(float)
    error = np.abs(forecast - actual)
    total = np.abs(forecast) + np.abs(actual)
    with np.errstate(divide="ignore", invalid="ignore"):
        smape = np.where(total > 0, 2 * error / total, 0.0)
    inside = (actual >= frame["lower"].to_numpy(float)) & (actual <= frame["upper"].to_numpy(float))
    has_interval = frame["lower"].notna().to_numpy()
    return pd.Series({"mae": error.mean(), "smape": 100 * smape.mean(),
                      "interval_coverage": inside[has_interval].mean() if has_interval.any() else np.nan,
                      "hours": len(frame)})


# --- the day × hour cube ----------------------------------------------------------------------------------------

@dataclass
class DayHourCube:
    """A series as an array ``values[unit, day, hour of day]`` (NaN where there is no row), with each day's type.

    Seasonal statistics are then slices along the day axis: "the same hour on earlier days of the same type".
    """

    units: pd.Index
    first_day: np.datetime64
    values: np.ndarray
    rest: np.ndarray  # per day: a weekend or a public holiday
    row_positions: tuple[np.ndarray, np.ndarray, np.ndarray]  # where each input row sits in ``values``

    @classmethod
    def of(cls, series: pd.DataFrame, until: pd.Timestamp | None = None) -> "DayHourCube":
        """The cube of ``series``, its days extended to ``until`` (rows there are NaN) when given."""
        wall = _wall_time(series["ts"])
        day = wall.astype("datetime64[D]")
        first_day = day.min()
        last_day = day.max() if until is None else max(day.max(), _wall_time(pd.Series([until]))[0]
                                                        .astype("datetime64[D]"))
        days = int((last_day - first_day).astype(int)) + 1
        units = pd.Index(pd.unique(series["unit_code"]))
        unit_position = units.get_indexer(series["unit_code"])
        day_position = (day - first_day).astype(int)
        hour_position = ((wall - day).astype("timedelta64[h]")).astype(int)
        values = np.full((len(units), days, 24), np.nan)
        values[unit_position, day_position, hour_position] = series["value"].to_numpy(float)
        calendar = first_day + np.arange(days)
        rest = ~np.is_busday(calendar, holidays=HOLIDAYS)
        return cls(units, first_day, values, rest, (unit_position, day_position, hour_position))

    @property
    def days(self) -> int:
        return self.values.shape[1]

    def day_of(self, stamps: pd.DatetimeIndex) -> np.ndarray:
        """Day positions of ``stamps`` in the cube (-1 where before its first day)."""
        wall = _wall_time(pd.Series(stamps)).astype("datetime64[D]")
        position = (wall - self.first_day).astype(int)
        return np.where(position >= 0, position, -1)


def _last_same_type(cube: DayHourCube, day: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation, per unit and hour, of the last ``count`` values at that hour on days
    before ``day`` of the same type (NaN where there are none; sd NaN where there is one)."""
    same_type = np.flatnonzero(cube.rest[:day] == cube.rest[day])
    earlier = cube.values[:, same_type, :]
    present = ~np.isnan(earlier)
    # Count present values from the most recent day backwards and keep the first ``count`` of them.
    rank_from_latest = np.cumsum(present[:, ::-1, :], axis=1)[:, ::-1, :]
    kept = present & (rank_from_latest <= count)
    n = kept.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(kept, earlier, 0.0).sum(axis=1) / n
        squares = np.where(kept, (earlier - mean[:, None, :]) ** 2, 0.0).sum(axis=1)
        sd = np.sqrt(squares / (n - 1))
    return np.where(n > 0, mean, np.nan), np.where(n > 1, sd, np.nan)


def _noise_unit(baseline: np.ndarray, counts: bool) -> np.ndarray | float:
    """What one unit of noise is: √baseline for counts (Poisson), the series' own unit otherwise."""
    return np.sqrt(np.maximum(baseline, 1.0)) if counts else 1.0


def _median_of_enough(values: np.ndarray, min_count: int) -> np.ndarray:
    """Median of the present values of each row, NaN for a row with fewer than ``min_count`` of them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(values, axis=1) if values.shape[1] else np.full(len(values), np.nan)
    return np.where((~np.isnan(values)).sum(axis=1) >= min_count, median, np.nan)


def _median_and_mad(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, median absolute deviation and count of present values along axis 1 of ``values[unit, day, hour]``."""
    count = (~np.isnan(values)).sum(axis=1)
    if values.shape[1] == 0:
        empty = np.full((values.shape[0], values.shape[2]), np.nan)
        return empty, empty, count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN slice is a unit-hour with no history
        median = np.nanmedian(values, axis=1)
        mad = np.nanmedian(np.abs(values - median[:, None, :]), axis=1)
    return median, mad, count


# --- small helpers ----------------------------------------------------------------------------------------------

def _units_of(city, level: str) -> tuple[np.ndarray, np.ndarray]:
    """The unit codes of ``level`` (sorted) and, per grid position of the hierarchy, its unit's position."""
    codes = city.hierarchy[level].to_numpy()
    units, unit_of_grid = np.unique(codes, return_inverse=True)
    return units, unit_of_grid


def _wall_time(times: pd.Series) -> np.ndarray:
    """Local wall-clock times as naive ``datetime64[s]`` (the hour of day and the date as a person there reads
    them)."""
    times = pd.Series(times)
    if times.dt.tz is not None:
        times = times.dt.tz_localize(None)
    return times.to_numpy().astype("datetime64[s]")


def _local_hour_numbers(times: pd.Series) -> np.ndarray:
    return _wall_time(times).astype("datetime64[h]").astype(np.int64)


def _hour_number(stamp: pd.Timestamp) -> int:
    return int(_local_hour_numbers(pd.Series([stamp]))[0])


_EMPTY_DTYPES = {"unit_code": object, "method": object, "scope": object, "ts": "datetime64[ns]", "anomaly": bool,
                 "hours": int}


def _empty(columns: list[str]) -> pd.DataFrame:
    """A frame with ``columns`` and no rows: what every function returns when there is no data."""
    return pd.DataFrame({column: pd.Series(dtype=_EMPTY_DTYPES.get(column, float)) for column in columns})
