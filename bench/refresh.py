"""A batch of the live stream, taken in by a loaded city: the ms per batch of N readings at the city scale.

    python bench/refresh.py --database-url sqlite:///data/bench-city.sqlite [--events 1000] [--batches 5]
                            [--windows 7d,today] [--profile] [--spool]

Copies the database (the bench writes readings into it), loads the city through :class:`Services` as the server
does, warms the windows a screen shows (every indicator's table and the headline sparklines), then for each batch
writes ``--events`` readings at the newest hour through the ingest's own :class:`BatchWriter` and times the
background refresh that makes the next generation (read what changed, recompute the indicators that read sensors,
roll up every level, the sparklines' newest steps), split into its phases. ``--profile`` prints the top of a
cProfile of one refresh. ``--spool``: as a web worker beside the jobs process does, the city takes the batch in from
the stream's spool (layers.stream_spool), which a publisher wrote first (its read is timed apart: once per machine);
the first batch is read from the store either way (a city loaded whole has no mark of the readings yet).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"sqlite:///{ROOT / 'data' / 'bench-city.sqlite'}")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--windows", default="7d,today")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--spool", action="store_true", help="take the batches in from the stream's spool")
    args = parser.parse_args(argv)

    import numpy as np

    from dashboard.services import Services
    from dashboard.settings import Settings
    from layers.ingest import MEASURING_KINDS, Batch, BatchWriter
    from layers.store import Store
    from layers.stream_spool import StreamSpool, read_step

    source = args.database_url.removeprefix("sqlite:///")
    work = Path(tempfile.mkdtemp(prefix="citytwin-refresh-bench-"))
    copy = work / "city.sqlite"
    started = time.perf_counter()
    shutil.copy(source, copy)
    print(f"copied the city in {time.perf_counter() - started:.1f} s")
    store = Store(f"sqlite:///{copy}", snapshot_dir=work / "snapshot")
    # Replay mode: the clock stays at the newest record, so every refresh is the stream's, not the clock's.
    services = Services(store, settings=Settings(mode="replay", version_check_seconds=0.001, snapshots=False))
    started = time.perf_counter()
    city = services.city()
    print(f"loaded {len(city['orders']):,} orders, {len(city['sensors']):,} sensors, "
          f"{len(city['readings']):,} hourly readings in {time.perf_counter() - started:.1f} s")
    windows = [w for w in args.windows.split(",") if w]
    started = time.perf_counter()
    services.warm(windows)
    print(f"warmed {windows} in {time.perf_counter() - started:.1f} s")
    spool, position = None, None
    if args.spool:
        spool = services.stream_spool = StreamSpool.of(store)
        _, position = read_step(store, None)
        spool.beat()

    sensors = city["sensors"]
    measuring = sensors[sensors["kind"].isin(MEASURING_KINDS)]["sensor_id"].to_numpy()
    rng = np.random.default_rng(0)
    writer = BatchWriter(store, source="bench")
    newest = int(city["readings"]["ts"].max().timestamp())
    timings, phases = [], []
    for number in range(args.batches):
        ids = rng.choice(measuring, size=args.events, replace=len(measuring) < args.events)
        ts = newest + 60 * (number + 1)  # a minute after the last batch, in the newest hour or the next
        batch = Batch(readings=[(str(s), ts, float(v)) for s, v in zip(ids, rng.uniform(5, 80, args.events))],
                      received=args.events)
        writer.write(batch)
        published = ""
        if spool is not None:  # the jobs process's publisher: its read, once for every process of the machine
            started = time.perf_counter()
            step, position = read_step(store, position)
            spool.publish(step)
            spool.beat()
            published = f"; published in {(time.perf_counter() - started) * 1000:.0f} ms"
        old = services.loaded_generation()
        time.sleep(0.01)  # the version check's interval (1 ms) has passed: the next look at the city refreshes
        profiler = cProfile.Profile() if args.profile and number == args.batches - 1 else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        if profiler:  # the refresh itself, in this thread (a profile sees only its own thread)
            services._refresh(old, {k: v["version"] for k, v in store.layer_versions().items()})
        else:
            services.generation()
            services.wait_for_refresh()
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
        new = services.loaded_generation()
        if new is old:
            raise SystemExit("error: the refresh made no new generation (did the batch reach the store?)")
        timings.append(seconds)
        phases.append(dict(services.last_refresh_phases))
        print(f"batch {number + 1}: {args.events:,} readings → new generation in {seconds * 1000:.0f} ms "
              f"({', '.join(f'{k} {v * 1000:.0f} ms' for k, v in services.last_refresh_phases.items())}"
              f"{'; from the ' + spool.read_from if spool else ''}{published})")
    print(f"median {statistics.median(timings) * 1000:.0f} ms per batch of {args.events:,} readings "
          f"({len(windows)} windows warm)")
    if args.profile:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
