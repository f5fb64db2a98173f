"""Build the sample city into the store.

    python -m sample_data build --scale demo                       # data/citytwin.sqlite
    python -m sample_data build --scale city --database-url sqlite:///data/city.sqlite
    python -m sample_data build --scale test --database-url postgresql+psycopg://user@host/db
    python -m sample_data build --scale year --db data/year.sqlite      # + data/year-history/ (sample_data.year)
    python -m sample_data build --scale province --db data/province.sqlite   # Guangdong (sample_data.province)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from layers.load import encode_frame
from layers.specs import CITY_TIMEZONE
from layers.store import Store, default_database_url
from layers.workorders import WorkOrders
from sample_data.generator import DEFAULT_END, SCALES, generate


def build(scale: str, database_url: str | None = None, seed: int = 20231, progress: bool = True,
          end: pd.Timestamp = DEFAULT_END) -> Store:
    """Generate the sample city at ``scale`` and replace what the store holds with it (one transaction). The data
    end at ``end`` (tests that act on orders "now" build a city ending now)."""
    started = time.perf_counter()
    if scale == "province":  # Guangdong's 21 cities under one province unit (sample_data.province)
        from sample_data import province
        layers = province.generate(seed=seed, end=end, progress=progress)
    else:
        layers = generate(scale, seed=seed, end=end, progress=progress)
    generated = time.perf_counter()
    frames = {layer_id: encode_frame(layer_id, frame) for layer_id, frame in layers.items()}
    store = Store(database_url)
    total = sum(len(f) for f in frames.values())
    with tqdm(total=total, desc="writing", unit="row", unit_scale=True, disable=not progress) as bar:
        store.replace_layers(frames, source=f"sample_data {scale} seed={seed}",
                             progress=lambda _layer, rows: bar.update(rows))
    # The sample orders were dispatched by version 1 of the responsibility list: the event types just written.
    WorkOrders(store).reset_responsibility_list(decided_by="sample_data",
                                                note=f"version 1: the sample city's list ({scale}, seed {seed})")
    if progress:
        counts = ", ".join(f"{k} {len(v):,}" for k, v in layers.items())
        print(f"built the {scale} sample city in {store.url}: {counts}")
        print(f"generate {generated - started:.1f} s, write {time.perf_counter() - generated:.1f} s")
    return store


def build_year(database_url: str | None, history_root, seed: int = 20231, progress: bool = True,
               end: pd.Timestamp = DEFAULT_END, fraction: float = 1.0, months: int | None = None) -> Store:
    """The ``year`` scale: the city scale's city in the store, and a year of its orders, readings and alarms (37
    million orders × ``fraction``) written month by month as history files under ``history_root``."""
    from layers.history import History
    from sample_data.year import static_layers, write_year
    started = time.perf_counter()
    static = static_layers(seed, end, progress=progress)
    store = Store(database_url)
    store.replace_layers({layer_id: encode_frame(layer_id, frame) for layer_id, frame in static.items()},
                         source=f"sample_data year seed={seed}")
    WorkOrders(store).reset_responsibility_list(decided_by="sample_data",
                                                note=f"version 1: the sample city's list (year, seed {seed})")
    written = time.perf_counter()
    figures = write_year(History(history_root), static, seed, end, fraction=fraction, months=months,
                         progress=progress)
    if progress:
        orders = sum(f["orders"] for f in figures.values())
        print(f"built the year sample: the city in {store.url} ({written - started:.0f} s), {orders:,} orders of "
              f"{len(figures)} months in {history_root} ({time.perf_counter() - written:.0f} s)")
    return store


def history_beside(database: str) -> str:
    """Where ``--scale year`` writes its history by default: ``data/year.sqlite`` → ``data/year-history``."""
    path = Path(database)
    return str(path.with_name(f"{path.stem}-history"))


def parse_end(text: str | None) -> pd.Timestamp:
    """``--end``: None → the fixed default, ``now`` → the current hour, else a local time (``2026-11-20 16:00``)."""
    if text is None:
        return DEFAULT_END
    if text.strip().lower() == "now":
        return pd.Timestamp.now(tz=CITY_TIMEZONE).floor("h")
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise SystemExit(f"error: --end {text!r} is neither 'now' nor a time such as '2026-11-20 16:00'") from None
    return stamp.tz_localize(CITY_TIMEZONE) if stamp.tzinfo is None else stamp.tz_convert(CITY_TIMEZONE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="generate the sample city and store it")
    b.add_argument("--scale", choices=sorted([*SCALES, "year", "province"]), default="demo",
                   help="year: the city scale's city and a year of 37 million orders as history files; "
                   "province: Guangdong's 21 cities on their district boundaries (sample_data.province)")
    b.add_argument("--database-url", default=None, help=f"SQLAlchemy URL (default: {default_database_url()})")
    b.add_argument("--db", default=None, help="path of an SQLite file (shorthand for --database-url sqlite:///PATH)")
    b.add_argument("--seed", type=int, default=20231)
    b.add_argument("--end", default=None, help=f"the last hour of the city's history: 'now' (the current hour: "
                   f"the demo's work orders then run on today's clocks) or a local time; default "
                   f"{DEFAULT_END.strftime('%Y-%m-%d %H:%M')} (reproducible)")
    b.add_argument("--history", default=None, help="year: the history directory (default: beside --db, "
                   "data/year.sqlite → data/year-history)")
    b.add_argument("--fraction", type=float, default=1.0, help="year: this share of the 37 million orders")
    b.add_argument("--months", type=int, default=None, help="year: only the last N months")
    args = parser.parse_args(argv)
    url = args.database_url or (f"sqlite:///{args.db}" if args.db else None)
    if args.scale == "year":
        if not 0 < args.fraction <= 1:
            raise SystemExit(f"error: --fraction {args.fraction} must be in (0, 1]")
        if args.history is None and args.db is None:
            raise SystemExit("error: --scale year needs --history DIR (or --db PATH, beside which it goes)")
        build_year(url, args.history or history_beside(args.db), seed=args.seed, end=parse_end(args.end),
                   fraction=args.fraction, months=args.months)
        return 0
    build(args.scale, url, seed=args.seed, end=parse_end(args.end))
    return 0


if __name__ == "__main__":
    sys.exit(main())
