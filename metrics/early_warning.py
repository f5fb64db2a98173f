r"""Early warning: hourly series per unit, seasonal anomaly flags and a next-24-hours forecast of work orders.

Every function here is pure: a :class:`layers.city.City` (or a tidy hourly series) in, a tidy frame out. A *series*
is a frame with one row per unit and hour: ``unit_code``, ``ts`` (the start of the hour, tz-aware local time) and
``value``. Units are those of any level of ``city.hierarchy`` (districts by default).

Methods
-------
Hourly series
    :func:`hourly_orders` counts work orders per unit and hour of ``received_at``, 0 where a unit received none;
    only hours that ended by ``end`` count, so a partly elapsed hour never reads as a quiet one.
    :func:`hourly_sensor_mean` averages one sensor kind's readings per unit and hour; a unit-hour without a reading
    has no row (no data, not 0).

Seasonal baseline and anomaly score (:func:`seasonal_anomalies`)
    Each hour is compared with the same hour of day on the previous ``history_days`` days of the same *day type*
    (a working day, or a rest day: a weekend or a public holiday of :data:`metrics.workdays.HOLIDAYS`). With
    :math:`x_1, \dots, x_n` those earlier values and :math:`x` the hour's value:

    .. math::

        b = \operatorname{median}_i x_i, \qquad
        s = \max\bigl(1.4826 \operatorname{median}_i |x_i - b|,\; 1.4826\, e\, u,\; s_{\min},\;
        u\,[\text{counts}]\bigr), \qquad z = \frac{x - b}{s}, \qquad \text{anomaly} \iff |z| > k

    The median and the MAD (times 1.4826, a standard deviation under normal noise) ignore a few abnormal days in
    the history, so one episode does not hide the next. Two floors keep a scale from a few values honest:

    - :math:`e`, the unit's *typical baseline error*: the median of :math:`|x - b| / u` over every hour of the
      history window (each hour against its own baseline). A slow drift (weather) moves a whole day away from the
      days before it, which the spread of three or four values at one hour understates; on the demo city, without
      it, a third of the undisturbed PM2.5 district-hours were flagged.
    - for counts, Poisson noise: :math:`u = \sqrt{\max(b, 1)}` (otherwise :math:`u = 1`), so a night hour whose
      history is 2, 2, 2 is not alarmed by a 5.

    With fewer than ``min_history`` same-type values, all previous days within ``history_days`` are used. An hour
    with fewer earlier values still, or whose unit has fewer than a day (24) of earlier errors, is not judged:
    ``baseline``, ``scale`` and ``score`` are NaN and ``anomaly`` is False.

Forecast (:func:`forecast_hourly`, :func:`forecast_orders`)
    A seasonal profile scaled by the recent level. For an hour :math:`t`,

    .. math::

        P(t) = \text{mean of the last } K \text{ values at } t\text{'s hour of day on earlier days of } t
        \text{'s type}, \qquad \hat y(t) = P(t)\,\bigl(1 + w\,(L - 1)\bigr), \qquad
        L = \frac{\sum_{\text{last 24 h}} y}{\sum_{\text{last 24 h}} P}

    :math:`L` compares the last 24 hours with their own profiles (each from the days before it). :math:`w` says
    how much of that departure lasts: unless given, it is the least-squares slope through the origin of
    :math:`L_{j+1} - 1` on :math:`L_j - 1` over the consecutive 24-hour blocks of the history, pooled over units and
    clipped to [0, 1]. A level that drifts (a trend, a wet week) gives :math:`w` near 1; day-to-day noise gives
    :math:`w` near 0 (the sample city, whose daily level is drawn anew each day: :math:`w` from 0 to 0.1). The
    interval is the prediction interval of one more draw from the :math:`K` profile values (fewer early on),
    :math:`\hat y \pm t_{K-1,(1+c)/2}\,\sigma \sqrt{1 + 1/K}`, with :math:`\sigma` their standard deviation scaled
    by the level, clipped at 0. The benchmark, :func:`naive_forecast`, repeats the same hour yesterday.

Evaluation (:func:`evaluate_forecast`)
    Rolling origin over the last ``holdout_days`` complete days: each is forecast from the data before its
    midnight and compared with what happened. MAE and sMAPE per method, city-wide (the units' forecasts summed
    against the hourly total) and as the mean over units, and the share of unit-hours inside our interval.
    Measured over 7 held-out days (MAE in orders per district-hour, ours against naive):

    - demo city (seed 20231): 3.71 against 5.35 (sMAPE 33 % against 42 %); city-wide 15.1 against 25.6 per hour;
      90 % of the held-out district-hours inside the 90 % band.
    - city scale (``data/bench-city.sqlite``, 100,000 orders a day): 34.2 against 57.1 (sMAPE 8.6 % against
      13.6 %); city-wide 233 against 421; 86 % inside the band.

Parameters
----------
history_days : int, default 28
    Calendar days behind each anomaly baseline (4 weeks: 20 working days, 8 rest days).
threshold : float, default 4.0
    :math:`k`. Planted episodes score over 10; on the demo city (seeds 20231, 1, 2, 3) at 4.0 at most 0.6 % of
    the undisturbed sensor district-hours and 0.08 % of the order district-hours are flagged, against up to 0.5 %
    of the order district-hours at 3.0.
min_history : int, default 3
    Fewest earlier values for a baseline.
min_scale : float, default 0
    :math:`s_{\min}`, in the series' unit: a floor for series that can be flat. At 0 a flat history flags any
    change (score ±inf) and no change scores 0.
profile_days : int, default 7
    :math:`K`, same-type days in the forecast profile (a week and a half of working days, a month of rest days).
level_weight : float or None, default None
    :math:`w`; None estimates it as above.
interval : float, default 0.9
    Nominal coverage :math:`c` of the ``lower``–``upper`` band.

Assumptions
-----------
Timestamps are tz-aware in a zone without daylight saving time (Asia/Shanghai): every day has 24 hours. Orders are
events within an hour; readings are stamped with the hour they describe. Rows outside every grid cell are left out.
Make-up working weekends count as rest days, as in :mod:`metrics.workdays`.

Examples
--------
Working days of one unit, every hour at the day's level (10, 12, 9, 11, 10, then 10), except 25 at 09:00 on the
last day. Its baseline is the median of 10, 12, 9, 11, 10; the MAD is 1, the typical error of the two days before
that had a baseline (|11 − 10| and |10 − 10.5|) 0.75, so the scale is 1.4826 and the score (25 − 10) / 1.4826:

>>> hours = pd.date_range("2026-11-02", "2026-11-10", freq="h", inclusive="left", tz="Asia/Shanghai")
>>> hours = hours[hours.day_of_week < 5]
>>> value = hours.day.map({2: 10, 3: 12, 4: 9, 5: 11, 6: 10, 9: 10}).to_numpy(float)
>>> value[hours == pd.Timestamp("2026-11-09 09:00", tz="Asia/Shanghai")] = 25
>>> flags = seasonal_anomalies(pd.DataFrame({"unit_code": "D1", "ts": hours, "value": value}))
>>> flags[flags["anomaly"]].round({"scale": 2, "score": 2})
    unit_code                        ts  value  baseline  scale  score  anomaly
129        D1 2026-11-09 09:00:00+08:00   25.0      10.0   1.48  10.12     True

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

from metrics.workdays import active_holidays

SERIES_COLUMNS = ["unit_code", "ts", "value"]
ANOMALY_COLUMNS = ["unit_code", "ts", "value", "baseline", "scale", "score", "anomaly"]
FORECAST_COLUMNS = ["unit_code", "ts", "forecast", "lower", "upper"]
EVALUATION_COLUMNS = ["method", "scope", "mae", "smape", "interval_coverage", "hours"]

# 1 / Φ⁻¹(0.75): the MAD of normal noise times this is its standard deviation.
MAD_TO_SD = 1.4826
# Fewest earlier errors (one day of hours) from which a unit's typical baseline error is taken.
MIN_PAST_ERRORS = 24
# Fewest pairs of consecutive 24-hour blocks from which the persistence of the level is estimated.
MIN_LEVEL_PAIRS = 7
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
    return pd.DataFrame({"unit_code": np.repeat(units, hours), "ts": _tile(stamps, len(units)),
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
                    level_weight: float | None = None, interval: float = 0.9) -> pd.DataFrame:
    """Forecast each unit's hours ``[start, start + horizon_hours)`` from the rows of ``series`` before ``start``
    (on the hour): seasonal profile × damped recent level (see the module docstring). ``level_weight`` None
    estimates it from the history. Returns ``FORECAST_COLUMNS``; empty when there is no history."""
    if series.empty or horizon_hours <= 0:
        return _empty(FORECAST_COLUMNS)
    history = series[series["ts"] < start]
    if history.empty:
        return _empty(FORECAST_COLUMNS)
    targets = pd.date_range(start, periods=horizon_hours, freq="h")
    # One cube over history and horizon, so the profile of any hour is read the same way, past or future.
    cube = DayHourCube.of(history, until=targets[-1])
    profile_mean, profile_sd, profile_count = cube.profiles(profile_days)

    ratios = _level_ratios(cube, profile_mean, start)
    latest = ratios[:, -1] if ratios.shape[1] else np.full(len(cube.units), np.nan)
    weight = _level_persistence(ratios) if level_weight is None else level_weight
    level = np.where(np.isnan(latest), 1.0, 1.0 + weight * (latest - 1.0))[:, None]

    target_days, target_hours = cube.day_of(targets), targets.hour.to_numpy()
    mean = profile_mean[:, target_days, target_hours] * level
    count = profile_count[:, target_days, target_hours]
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = profile_sd[:, target_days, target_hours] * level * np.sqrt(1.0 + 1.0 / count)
        half_width = _student_t_quantile(0.5 + interval / 2, count - 1) * spread
    units = len(cube.units)
    return pd.DataFrame({
        "unit_code": np.repeat(cube.units.to_numpy(), horizon_hours),
        "ts": _tile(targets, units),
        "forecast": mean.ravel(),
        "lower": np.maximum(mean - half_width, 0.0).ravel(),
        "upper": (mean + half_width).ravel(),
    })


def _level_ratios(cube: DayHourCube, profile_mean: np.ndarray, start: pd.Timestamp) -> np.ndarray:
    """Per unit, the ratio of observed to profile totals in each 24-hour block before ``start``, oldest first
    (``[unit, block]``; NaN where a block has no profile)."""
    hours_before = int(cube.day_of([start])[0]) * 24 + start.hour
    blocks = hours_before // 24
    first = hours_before - blocks * 24
    units = len(cube.units)
    observed = cube.values.reshape(units, -1)[:, first:hours_before].reshape(units, blocks, 24)
    expected = profile_mean.reshape(units, -1)[:, first:hours_before].reshape(units, blocks, 24)
    both = ~np.isnan(observed) & ~np.isnan(expected)
    observed_total = np.where(both, observed, 0.0).sum(axis=2)
    expected_total = np.where(both, expected, 0.0).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected_total > 0, observed_total / expected_total, np.nan)


def _level_persistence(ratios: np.ndarray) -> float:
    """How much of a 24-hour block's departure from its profile carried into the next block: the least-squares
    slope through the origin of (next ratio − 1) on (ratio − 1), pooled over units, clipped to [0, 1]; 0 without
    enough pairs to tell."""
    before, after = ratios[:, :-1].ravel() - 1.0, ratios[:, 1:].ravel() - 1.0
    pairs = ~np.isnan(before) & ~np.isnan(after)
    if pairs.sum() < MIN_LEVEL_PAIRS or not np.any(before[pairs]):
        return 0.0
    slope = (before[pairs] * after[pairs]).sum() / (before[pairs] ** 2).sum()
    return float(np.clip(slope, 0.0, 1.0))


def _student_t_quantile(probability: float, dof: np.ndarray) -> np.ndarray:
    """Student's t quantile by its Cornish–Fisher expansion around the normal one (Abramowitz & Stegun 26.7.5;
    within 0.3 % of the exact value from 2 degrees of freedom, 5 % at 1; NaN below 1)."""
    z = NormalDist().inv_cdf(probability)
    dof = np.where(np.asarray(dof, float) >= 1, dof, np.nan)
    terms = [(z ** 3 + z) / 4,
             (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96,
             (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384,
             (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160]
    return z + sum(term / dof ** (power + 1) for power, term in enumerate(terms))


def naive_forecast(series: pd.DataFrame, start: pd.Timestamp, horizon_hours: int = 24) -> pd.DataFrame:
    """The benchmark: each hour repeats the same hour of the last day before ``start`` (yesterday's, for a 24-hour
    horizon). Returns ``FORECAST_COLUMNS`` with no interval (``lower``/``upper`` NaN)."""
    if series.empty or horizon_hours <= 0:
        return _empty(FORECAST_COLUMNS)
    history = series[series["ts"] < start]
    if history.empty:
        return _empty(FORECAST_COLUMNS)
    targets = pd.date_range(start, periods=horizon_hours, freq="h")
    days_back = np.arange(horizon_hours) // 24 + 1
    source = targets - pd.to_timedelta(days_back, unit="D")
    by_unit_hour = history.set_index(["unit_code", "ts"])["value"]
    units = history["unit_code"].unique()
    index = pd.MultiIndex.from_arrays([np.repeat(units, horizon_hours), _tile(source, len(units))])
    return pd.DataFrame({"unit_code": np.repeat(units, horizon_hours), "ts": _tile(targets, len(units)),
                         "forecast": by_unit_hour.reindex(index).to_numpy(), "lower": np.nan, "upper": np.nan})


def forecast_orders(city, as_of: pd.Timestamp | None = None, horizon_hours: int = 24, level: str = "district",
                    **options) -> pd.DataFrame:
    """Orders per unit for the ``horizon_hours`` hours from the first whole hour after ``as_of`` (default: the
    city's as-of instant), from the hours that ended by then. ``options`` go to :func:`forecast_hourly`."""
    as_of = city.as_of if as_of is None else as_of
    return forecast_hourly(hourly_orders(city, level, end=as_of), as_of.ceil("h"), horizon_hours, **options)


def evaluate_forecast(city, holdout_days: int = 7, level: str = "district", **options) -> pd.DataFrame:
    """Rolling-origin evaluation of :func:`forecast_hourly` against :func:`naive_forecast` on order volumes.

    Each of the last ``holdout_days`` complete days is forecast from the data before its midnight. Returns
    ``EVALUATION_COLUMNS``: per method, ``scope`` ``"city"`` (the units' forecasts summed against the hourly total
    of all units) and ``"unit_mean"`` (the mean over units of each unit's figures); MAE in orders per hour, sMAPE
    in percent (an hour with 0 forecast and 0 actual counts as 0 %), the share of unit-hours inside our interval
    and the number of hours compared. ``options`` go to :func:`forecast_hourly`.
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
    return pd.concat(frames, ignore_index=True)[EVALUATION_COLUMNS].astype({"hours": int})


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
        first_day, last_day = day.min(), day.max()
        if until is not None:
            last_day = max(last_day, _wall_time([until])[0].astype("datetime64[D]"))
        days = int((last_day - first_day).astype(int)) + 1
        units = pd.Index(pd.unique(series["unit_code"]))
        unit_position = units.get_indexer(series["unit_code"])
        day_position = (day - first_day).astype(int)
        hour_position = ((wall - day).astype("timedelta64[h]")).astype(int)
        values = np.full((len(units), days, 24), np.nan)
        values[unit_position, day_position, hour_position] = series["value"].to_numpy(float)
        calendar = first_day + np.arange(days)
        rest = ~np.is_busday(calendar, holidays=active_holidays())
        return cls(units, first_day, values, rest, (unit_position, day_position, hour_position))

    @property
    def days(self) -> int:
        return self.values.shape[1]

    def profiles(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every unit, day and hour: mean, sample standard deviation and number of the last ``count`` values at
        that hour on earlier days of the same type (NaN where there are none; the deviation needs two)."""
        mean, sd, number = (np.full(self.values.shape, np.nan) for _ in range(3))
        for day in range(self.days):
            mean[:, day, :], sd[:, day, :], number[:, day, :] = _last_same_type(self, day, count)
        return mean, sd, number

    def day_of(self, stamps: pd.DatetimeIndex) -> np.ndarray:
        """Day positions of ``stamps`` in the cube (-1 where before its first day)."""
        wall = _wall_time(stamps).astype("datetime64[D]")
        position = (wall - self.first_day).astype(int)
        return np.where(position >= 0, position, -1)


def _last_same_type(cube: DayHourCube, day: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sample standard deviation and number, per unit and hour, of the last ``count`` values at that hour on
    days before ``day`` of the same type (see :meth:`DayHourCube.profiles`)."""
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
    return np.where(n > 0, mean, np.nan), np.where(n > 1, sd, np.nan), n


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


def _wall_time(times) -> np.ndarray:
    """Local wall-clock times as naive ``datetime64[s]`` (the hour of day and the date as a person there reads
    them)."""
    times = pd.Series(times)
    if times.dt.tz is not None:
        times = times.dt.tz_localize(None)
    return times.to_numpy().astype("datetime64[s]")


def _local_hour_numbers(times) -> np.ndarray:
    """Hours since the epoch, of local wall time."""
    return _wall_time(times).astype("datetime64[h]").astype(np.int64)


def _hour_number(stamp: pd.Timestamp) -> int:
    return int(_local_hour_numbers([stamp])[0])


_EMPTY_DTYPES = {"unit_code": object, "method": object, "scope": object, "ts": "datetime64[ns]", "anomaly": bool,
                 "hours": int}


def _tile(stamps: pd.DatetimeIndex, times: int) -> pd.DatetimeIndex:
    """``stamps`` repeated end to end ``times`` times, kept a DatetimeIndex (np.tile would make Timestamp objects)."""
    return stamps[np.tile(np.arange(len(stamps)), times)]


def _empty(columns: list[str]) -> pd.DataFrame:
    """A frame with ``columns`` and no rows: what every function returns when there is no data."""
    return pd.DataFrame({column: pd.Series(dtype=_EMPTY_DTYPES.get(column, float)) for column in columns})
