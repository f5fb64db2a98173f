"""City-scale benchmark: prints the figures quoted in the README.

    .venv/bin/python bench/run.py --scale city              # build (or reuse) data/bench-city.sqlite and measure
    .venv/bin/python bench/run.py --scale demo --rebuild    # any scale; --rebuild regenerates the database

Measures, on this machine: generation and write time of the sample city; load time per layer; time to compute
every indicator at every level for each window (with the previous window, as the dashboard does); and the server
time and payload bytes of the first screen and of a drill-down, through Dash's real HTTP endpoints (Flask's test
client, in process, so the time is the server's alone); then every map interaction and building tile against the
budgets of issue 4 (``bench/maps.py``, which also runs alone). Timings repeat ``--repeat`` times (the map's at least
5) and print the median.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# A bench never writes to the city it measures (the supervision sweep would, ten minutes after the start).
os.environ.setdefault("CITYTWIN_ESCALATION_MINUTES", "0")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from layers.city import load_city  # noqa: E402
from layers.store import Store  # noqa: E402
from metrics.early_warning import evaluate_forecast, forecast_orders  # noqa: E402
from metrics.engine import compare  # noqa: E402
from metrics.hotspots import detect_hotspots  # noqa: E402
from metrics.incremental import LiveTable  # noqa: E402
from metrics.registry import INDICATORS  # noqa: E402
from metrics.spec import WINDOWS, named_window  # noqa: E402
from sample_data.__main__ import build  # noqa: E402
from capture import captured_for, map_click, pages_request, summary as capture_summary  # noqa: E402,F401  (bench/ is on the path as the
from signin import signed_in_client  # noqa: E402
from timing import median_seconds  # noqa: E402                        script's folder; pages_request: orders.py)


def new_orders(city, count: int) -> "pd.DataFrame":
    """``count`` orders arriving in the last minutes: copies of random orders with new ids and intake times."""
    rng = np.random.default_rng(0)
    sample = city["orders"].sample(count, random_state=1).reset_index(drop=True)
    received = city.as_of - pd.to_timedelta(rng.uniform(0, 600, count), unit="s")
    shift = received - sample["received_at"]
    stamps = [c for c in sample.columns if c.endswith("_at")]
    arrived = sample.assign(**{c: sample[c] + shift for c in stamps})
    # Just received: no later stage yet.
    nothing = np.zeros(count, dtype=bool)
    arrived = arrived.assign(**{c: arrived[c].where(nothing) for c in stamps if c not in ("received_at", "deadline_at")})
    return arrived.assign(order_id=[f"NEW{i:06d}" for i in range(count)], status="received")


def _mae_text(evaluation: "pd.DataFrame") -> str:
    """"district mean 3.7 / 5.4, city 15.1 / 25.6" (ours / same hour yesterday, orders per hour)."""
    mae = evaluation.set_index(["scope", "method"])["mae"]
    return ", ".join(f"{label} {mae[(scope, 'seasonal_profile')]:.1f} / {mae[(scope, 'same_hour_yesterday')]:.1f}"
                     for scope, label in (("unit_mean", "district mean"), ("city", "city"))) + " orders/hour"


def post(client, body: dict, no_update_ok: bool = False) -> tuple[float, int, dict]:
    """Post a callback body; (seconds, bytes, answer). ``no_update_ok``: Dash's 204 (the callback changed nothing, as
    the map-click callback answers a click that landed on no unit) is an answer too, ``{}``."""
    started = time.perf_counter()
    response = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    elapsed = time.perf_counter() - started
    if response.status_code == 204 and no_update_ok:
        return elapsed, 0, {}
    if response.status_code != 200:
        raise RuntimeError(f"callback failed with {response.status_code}: {response.data[:300]!r}")
    return elapsed, len(response.data), response.get_json()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="city")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-profile", action="store_true", help="skip the profiles of map interactions over budget")
    parser.add_argument("--capture", type=Path, default=ROOT / "data" / "bench-capture.json",
                        help="where to save the browser's requests captured from the app (bench/orders.py and "
                             "bench/load.py replay them); written anew by every run")
    args = parser.parse_args(argv)
    url = args.database_url or f"sqlite:///{ROOT / 'data' / f'bench-{args.scale}.sqlite'}"
    store = Store(url)
    rows = []

    def report(name: str, value: str) -> None:
        rows.append((name, value))
        print(f"{name:<58} {value}", flush=True)

    print(f"citytwin bench — scale {args.scale}, {url}")
    if args.rebuild or not store.is_built():
        started = time.perf_counter()
        build(args.scale, url, progress=True)
        report("generate + write sample city", f"{time.perf_counter() - started:.1f} s")
    counts = {layer: store.count(layer) for layer in ("units", "buildings", "sensors", "readings", "alarms", "orders")}
    report("rows", ", ".join(f"{k} {v:,}" for k, v in counts.items()))

    load_times = []
    city = None
    for _ in range(args.repeat):
        city = None  # the previous load goes before the next one: one city in memory at a time
        gc.collect()
        city = load_city(store)
        load_times.append(city.load_seconds)
    for layer in load_times[0]:
        report(f"load {layer}", f"{statistics.median(t[layer] for t in load_times):.2f} s")
    report("load all layers", f"{statistics.median(sum(t.values()) for t in load_times):.2f} s")

    for window in WINDOWS:
        seconds, table = median_seconds(lambda: compare(city, named_window(window, city.as_of)), args.repeat)
        report(f"all {len(INDICATORS)} indicators × 5 levels, window {window} (+ previous)",
               f"{seconds:.2f} s ({len(table):,} values)")

    def full_recompute():
        city.memo.clear()  # from cold: no per-window facts kept from the runs above
        return [compare(city, named_window(window, city.as_of)) for window in WINDOWS]
    seconds, _ = median_seconds(full_recompute, args.repeat)
    report(f"full recompute: {len(INDICATORS)} indicators × 5 levels × 3 windows (+ previous)", f"{seconds:.2f} s")

    today = named_window("today", city.as_of)
    started = time.perf_counter()
    live = LiveTable(city, today)
    report("live table for today (start)", f"{time.perf_counter() - started:.2f} s")
    arrivals = new_orders(city, 1_000)
    seconds, table = median_seconds(lambda: (live.add_orders(arrivals), live.table())[1], args.repeat)
    report("take in 1,000 new orders (add + roll up every level)", f"{seconds * 1000:.0f} ms")

    seconds, found = median_seconds(lambda: detect_hotspots(city, named_window("30d", city.as_of)), args.repeat)
    report("recurring hotspots, 30 days", f"{seconds:.2f} s ({len(found)} found)")
    seconds, forecast = median_seconds(lambda: forecast_orders(city, city.as_of), args.repeat)
    report("24 h order forecast, every district", f"{seconds:.2f} s")
    evaluation = evaluate_forecast(city, holdout_days=7)
    report("forecast MAE on 7 held-out days (ours / same hour yesterday)", _mae_text(evaluation))

    # The dashboard through its HTTP endpoints. create_app warms the default window, as `make run` does. The
    # city loaded above goes first: two cities at once would double the memory (about 7 GB each at the city scale).
    del city, live, arrivals, table, found, forecast
    gc.collect()
    from app import create_app
    from dashboard import services
    started = time.perf_counter()
    app = create_app(url)
    report("app start (load + default window)", f"{time.perf_counter() - started:.1f} s")
    # The request bodies are the browser's own: Chromium walks the pages once and they are recorded.
    args.capture.unlink(missing_ok=True)
    args.capture.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    steps = captured_for(app, args.capture)
    report("capture: Chromium walks the pages once",
           f"{time.perf_counter() - started:.1f} s, {sum(len(s.requests) for s in steps)} requests → {args.capture}")
    print(capture_summary(steps), flush=True)
    city = services.get().city()
    client = signed_in_client(app)
    seconds, html = median_seconds(lambda: client.get("/"), args.repeat)
    report("first screen: GET / (page shell)", f"{seconds * 1000:.0f} ms, {len(html.data):,} B")
    timings = [post(client, pages_request("")) for _ in range(args.repeat)]
    report("first screen: page callback (city view)",
           f"{statistics.median(t[0] for t in timings) * 1000:.0f} ms, {timings[0][1]:,} B")
    timings = [post(client, map_click(steps), no_update_ok=True) for _ in range(args.repeat)]
    answered = (timings[0][2].get("response") or {}).get("url")
    # The capture's click may have missed Futian on a busy machine (it tries 4 times): then the drill goes on from
    # Futian's own URL, and the line says so.
    search = answered["search"] if answered else "?unit=440304"
    report("drill-down: map click callback (→ URL)",
           f"{statistics.median(t[0] for t in timings) * 1000:.0f} ms, {timings[0][1]:,} B"
           + ("" if answered else " (the captured click did not land on a unit: no URL)"))
    timings = [post(client, pages_request(search)) for _ in range(args.repeat)]
    report("drill-down: page callback (Futian view)",
           f"{statistics.median(t[0] for t in timings) * 1000:.0f} ms, {timings[0][1]:,} B")
    street = sorted(city.children("440304").index)[0]
    timings = [post(client, pages_request(f"?unit={street}")) for _ in range(args.repeat)]
    report("drill-down: page callback (a street's communities)",
           f"{statistics.median(t[0] for t in timings) * 1000:.0f} ms, {timings[0][1]:,} B")
    timings = [post(client, pages_request("?kiosk=1", "/wall")) for _ in range(args.repeat)]
    report("wall screen: page callback (/wall)",
           f"{statistics.median(t[0] for t in timings) * 1000:.0f} ms, {timings[0][1]:,} B")

    # Every map interaction and the building tiles, against issue 4's budgets (bench/maps.py; at least 5 runs).
    import maps
    print(f"\nmap interactions and tiles (budgets: {maps.INTERACTION_MS} ms and {maps.INTERACTION_BYTES:,} B per "
          f"interaction, {maps.TILE_MS} ms per tile)", flush=True)
    maps.run(app, args.repeat, profile=not args.no_profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
