"""Early-warning benchmark: anomaly flags and order forecasts for every unit of a level, on the city-scale database.

    .venv/bin/python bench/early_warning.py                      # data/bench-city.sqlite (build: bench/run.py)
    .venv/bin/python bench/early_warning.py --level street --repeat 1

Prints the load time; the time to build the hourly series, flag anomalies (orders and each measuring sensor kind)
and forecast the next 24 hours of orders, for all units of the level (median of ``--repeat`` runs); how many
unit-hours were flagged, the share of the sample city's planted incidents found and the false-alarm rate
elsewhere; and the held-out error of our forecast against the naive one.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from layers.city import load_city  # noqa: E402
from layers.store import Store  # noqa: E402
from metrics.early_warning import (  # noqa: E402
    evaluate_forecast, forecast_orders, hourly_orders, hourly_sensor_mean, order_anomalies, sensor_anomalies)
from timing import median_seconds  # noqa: E402  (bench/ is on the path as the script's folder)

DEFAULT_DATABASE = ROOT / "data" / "bench-city.sqlite"
SENSOR_KINDS = ("pm25", "water_level", "noise", "traffic_flow")

# The incidents sample_data.generator.build_readings plants, in hours before the last reading (both ends included):
# PM2.5 over Bao'an from 38 to 15 hours before, then the storm's water levels in Longgang and Pingshan 14 to 8.
PLANTED = {"pm25": (("440306",), 38, 15), "water_level": (("440307", "440310"), 14, 8)}


def planted_mask(flags: pd.DataFrame, kind: str, last_reading: pd.Timestamp) -> pd.Series:
    units, first_before, last_before = PLANTED.get(kind, ((), 0, 0))
    # Unit codes start with their district's (sample_data.generator), so this holds on every level below it.
    return (flags["unit_code"].str[:6].isin(units) & (flags["ts"] >= last_reading - pd.Timedelta(hours=first_before))
            & (flags["ts"] <= last_reading - pd.Timedelta(hours=last_before)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"sqlite:///{DEFAULT_DATABASE}")
    parser.add_argument("--level", default="district")
    parser.add_argument("--holdout-days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if args.database_url == f"sqlite:///{DEFAULT_DATABASE}" and not DEFAULT_DATABASE.exists():
        print(f"no database at {DEFAULT_DATABASE}; build it with: .venv/bin/python bench/run.py --scale city")
        return 2

    def report(name: str, value: str) -> None:
        print(f"{name:<60} {value}", flush=True)

    print(f"citytwin early-warning bench — {args.database_url}, level {args.level}")
    started = time.perf_counter()
    city = load_city(Store(args.database_url), layer_ids=("sensors", "readings", "orders"))
    report("load sensors, readings, orders", f"{time.perf_counter() - started:.1f} s "
           f"({len(city['orders']):,} orders, {len(city['readings']):,} readings)")
    level, repeat = args.level, args.repeat

    seconds, orders = median_seconds(lambda: hourly_orders(city, level), repeat)
    report("hourly order counts", f"{seconds:.2f} s ({len(orders):,} unit-hours)")
    seconds, flags = median_seconds(lambda: order_anomalies(city, level), repeat)
    judged = flags["score"].notna()
    report("order anomalies (series + flags)", f"{seconds:.2f} s; {int(flags['anomaly'].sum())} of "
           f"{int(judged.sum()):,} judged unit-hours flagged ({flags['anomaly'].sum() / judged.sum():.2%})")

    last_reading = city["readings"]["ts"].max()
    for kind in SENSOR_KINDS:
        seconds, series = median_seconds(lambda: hourly_sensor_mean(city, kind, level), repeat)
        seconds_flags, flags = median_seconds(lambda: sensor_anomalies(city, kind, level), repeat)
        planted = planted_mask(flags, kind, last_reading)
        normal = ~planted & flags["score"].notna()
        found = f"planted {int(flags.loc[planted, 'anomaly'].sum())}/{int(planted.sum())}, " if planted.any() else ""
        report(f"{kind} anomalies (series {seconds:.2f} s; series + flags)",
               f"{seconds_flags:.2f} s; {found}false alarms {int(flags.loc[normal, 'anomaly'].sum())}/"
               f"{int(normal.sum())} ({flags.loc[normal, 'anomaly'].mean():.2%})")

    seconds, forecast = median_seconds(lambda: forecast_orders(city, city.as_of, level=level), repeat)
    report("forecast next 24 h of orders (series + forecast)",
           f"{seconds:.2f} s ({forecast['unit_code'].nunique()} units from {forecast['ts'].min():%Y-%m-%d %H:%M})")
    seconds, evaluation = median_seconds(lambda: evaluate_forecast(city, args.holdout_days, level), repeat)
    report(f"evaluate forecast, {args.holdout_days} held-out days", f"{seconds:.2f} s")
    print(evaluation.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
