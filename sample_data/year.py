"""A year of the sample city as history files: 37 million orders at Shenzhen's rate, with seasons and weekdays.

Shenzhen's platform takes about 37 million requests a year (../shared/CONTEXT.md). A year does not fit one frame,
so it is generated month by month (one month's orders, readings and alarms in memory at a time, about 3 million
orders) and each month is written as a partition of :mod:`layers.history` as soon as it is made. The city itself
(units, buildings, sensors, the safety layers) is the ``city`` scale's, generated once; it goes to the store and to
the history's context.

Seasons (an assumption; the hotline's monthly counts are not published): the Spring Festival empties the city in
February (0.75), October's Golden Week lowers it (0.95), and the rainy, typhoon-prone summer raises it (up to 1.12
in July and August); build_orders adds the weekly pattern (weekdays 1.07, weekends 0.8) and day-to-day noise.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
from tqdm import tqdm

from layers.history import History, months_between
from layers.specs import CITY_TIMEZONE, CRS
from sample_data import generator as g

ORDERS_PER_YEAR = 37_000_000
SEASON = {1: 0.95, 2: 0.75, 3: 1.00, 4: 1.00, 5: 1.05, 6: 1.10, 7: 1.12, 8: 1.12, 9: 1.08, 10: 0.95, 11: 0.98,
          12: 0.97}
YEAR = dataclasses.replace(g.SCALES["city"], name="year")
_MONTH_STREAM = 100  # each month draws from its own stream (seed, 100 + month number), so a month can be redone


def year_segments(end: pd.Timestamp) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """The year before ``end`` cut at month boundaries: (month, start, end) — the first and last months partial."""
    start = end - pd.DateOffset(years=1)
    segments = []
    for month in months_between(start, end):
        month_start = pd.Timestamp(f"{month}-01").tz_localize(CITY_TIMEZONE)
        month_end = month_start + pd.DateOffset(months=1)
        segments.append((month, max(month_start, start), min(month_end, end)))
    return segments


def orders_per_day(end: pd.Timestamp, fraction: float = 1.0) -> dict[str, float]:
    """Mean orders a day in each month of the year, by season, adding up to 37 million (× ``fraction``)."""
    segments = year_segments(end)
    days = np.array([(e - s) / pd.Timedelta(days=1) for _m, s, e in segments])
    weight = np.array([SEASON[int(m[5:])] for m, _s, _e in segments])
    base = ORDERS_PER_YEAR * fraction / float((days * weight).sum())
    return {m: base * w for (m, _s, _e), w in zip(segments, weight)}


def static_layers(seed: int, end: pd.Timestamp, progress: bool = False) -> dict[str, pd.DataFrame]:
    """The city the year happens in: the ``city`` scale's units, buildings, sensors, reference and safety layers,
    drawn as :func:`sample_data.generator.generate` draws them (so the same seed gives the same city)."""
    rng = np.random.default_rng(seed)
    units = g.build_units(YEAR, rng)
    buildings = g.build_buildings(units, YEAR, rng)
    sensors = g.build_sensors(units, buildings, YEAR, rng, end)
    event_types, channels = g.build_reference()
    safety = g.build_safety_layers(units, buildings, YEAR, seed, end)
    if progress:
        print(f"city: {len(units):,} units, {len(buildings):,} buildings, {len(sensors):,} sensors")
    return {"units": units, "buildings": buildings, "sensors": sensors, "event_types": event_types,
            "channels": channels, **safety}


def write_year(history: History, static: dict[str, pd.DataFrame], seed: int, end: pd.Timestamp,
               fraction: float = 1.0, months: int | None = None, readings: bool = True,
               progress: bool = False) -> dict[str, dict]:
    """Generate the year month by month into ``history`` (the last ``months`` months only, if given); returns per
    month the rows written and seconds taken."""
    units, buildings, sensors = static["units"], static["buildings"], static["sensors"]
    city = units.loc[units["level"] == "city", "code"].iloc[0]
    history.write_context(city, {k: static[k] for k in ("units", "sensors", "event_types", "buildings")})
    rates = orders_per_day(end, fraction)
    segments = year_segments(end)[-months:] if months else year_segments(end)
    figures = {}
    for month, start, stop in tqdm(segments, desc="year", unit="month", disable=not progress):
        began = time.perf_counter()
        rng = np.random.default_rng([seed, _MONTH_STREAM + int(month[:4]) * 12 + int(month[5:])])
        days = int(np.ceil((stop - start) / pd.Timedelta(days=1)))
        scale = dataclasses.replace(YEAR, order_days=days, orders_per_day=int(round(rates[month])),
                                    reading_days=days)
        last = stop - pd.Timedelta(seconds=1)  # the month's last instant: orders of the next month are not drawn
        orders, hotspots = g.build_orders(units, buildings, static["event_types"], scale, rng, last,
                                           known_until=end)
        orders = orders[(orders["received_at"] >= start).to_numpy()]
        history.write_partition("orders", city, month, _points(orders))
        # Recurring hotspots are planted on top of the month's rate (about 0.7 % more at Shenzhen's rate).
        row = {"orders": len(orders), "planted": int(hotspots["orders"].sum())}
        del orders
        if readings:
            hourly = g.build_readings(sensors, scale, rng, last)
            hourly = hourly[(hourly["ts"] >= start).to_numpy()].reset_index(drop=True)
            alarms = g.build_alarms(sensors, hourly, scale, rng, last)
            alarms = alarms[(alarms["raised_at"] >= start).to_numpy()].reset_index(drop=True)
            if stop < end:  # a past month's alarms were cleared by the year's end: when the month closed, at most
                alarms["cleared_at"] = alarms["cleared_at"].fillna(stop)
            alarms["alarm_id"] = [f"A{month.replace('-', '')}{i:07d}" for i in range(1, len(alarms) + 1)]
            history.write_partition("readings", city, month, hourly)
            history.write_partition("alarms", city, month, alarms)
            row.update(readings=len(hourly), alarms=len(alarms))
        row["seconds"] = round(time.perf_counter() - began, 1)
        figures[month] = row
        if progress:
            tqdm.write(f"  {month}: " + ", ".join(f"{k} {v:,}" for k, v in row.items()))
    history.set(open_month=segments[-1][0], as_of=str(end), generated=f"sample_data year seed={seed} "
                f"fraction={fraction}")
    return figures


def _points(orders: pd.DataFrame):
    """The orders as a GeoDataFrame of their points (GeoParquet), as the loader gives them."""
    import geopandas as gpd
    return gpd.GeoDataFrame(orders, geometry=gpd.points_from_xy(orders["lon"], orders["lat"]), crs=CRS)
