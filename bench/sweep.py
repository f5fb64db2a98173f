"""City-scale benchmark of the supervision sweep as one set-based write (issue 12, item 6).

    .venv/bin/python bench/sweep.py --database-url sqlite:////work/data/city.sqlite --days-after 3
    .venv/bin/python bench/sweep.py --database-url postgresql+psycopg://user@host/city --days-after 3

It writes, so it works on a copy: an SQLite file is copied to the system's temp folder; a PostgreSQL database is
copied with ``CREATE DATABASE … TEMPLATE`` (nobody may be connected to it meanwhile) and dropped afterwards. The
city's clock is moved on: "now" is ``--days-after`` days after its newest order, so that a city's worth of unhandled
orders are past their deadline, as on the first sweep of a server started on an older city. Reported: the orders
escalated, the time of the one write, the process's peak RSS before and after it (the write runs in the database:
the process should not grow), the SQLite write-ahead log's size, and a check that every escalation is logged.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from layers.specs import CITY_TIMEZONE  # noqa: E402
from layers.store import METADATA, Store  # noqa: E402
from layers.workorders import WorkOrders  # noqa: E402
from metrics.clocks import ESCALATION  # noqa: E402

ACTOR = "supervision sweep (bench)"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def copy_database(url: str, workdir: Path) -> tuple[str, callable]:
    """A writable copy of the city and how to remove it."""
    if url.startswith("sqlite:///"):
        source = Path(url.removeprefix("sqlite:///"))
        target = workdir / "sweep-city.sqlite"
        started = time.perf_counter()
        shutil.copyfile(source, target)
        print(f"copied {source} ({source.stat().st_size / 1e9:.1f} GB) in {time.perf_counter() - started:.0f} s")
        return f"sqlite:///{target}", lambda: None
    source = make_url(url)
    copy = f"{source.database}_sweep_bench"
    admin = create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{copy}"'))
        conn.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{source.database}"'))
    print(f"copied database {source.database} in {time.perf_counter() - started:.0f} s")

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
        admin.dispose()

    return source.set(database=copy).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--days-after", type=float, default=3.0, help="'now' this many days after the newest order")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="citytwin-sweep-") as workdir:
        url, drop = copy_database(args.database_url, Path(workdir))
        try:
            store = Store(url)
            orders, log = METADATA.tables["orders"], METADATA.tables["order_transitions"]
            with store.engine.connect() as conn:
                newest = conn.execute(select(func.max(orders.c.received_at))).scalar_one()
                total = conn.execute(select(func.count()).select_from(orders)).scalar_one()
            now = pd.Timestamp(newest, unit="s", tz="UTC").tz_convert(CITY_TIMEZONE) + pd.Timedelta(days=args.days_after)
            service = WorkOrders(store)
            rss_before = peak_rss_mb()
            started = time.perf_counter()
            escalated = service.escalate_overdue(now, actor=ACTOR, **ESCALATION)
            seconds = time.perf_counter() - started
            rss_after = peak_rss_mb()
            with store.engine.connect() as conn:
                logged = conn.execute(select(func.count()).select_from(log).where(log.c.actor == ACTOR)).scalar_one()
            wal = Path(url.removeprefix("sqlite:///") + "-wal") if url.startswith("sqlite") else None
            print(f"\nsupervision sweep — {store.dialect}, {total:,} orders, now = {now:%Y-%m-%d %H:%M} "
                  f"({args.days_after:g} days after the newest order)")
            print("| escalated | one write | per order | peak RSS before → after | log rows | WAL |")
            print("|---:|---:|---:|---:|---:|---:|")
            print(f"| {escalated:,} | {seconds:.1f} s | {seconds / max(escalated, 1) * 1e6:.0f} µs | "
                  f"{rss_before:,.0f} → {rss_after:,.0f} MB | {logged:,} | "
                  f"{(wal.stat().st_size / 1e6 if wal and wal.exists() else 0):,.0f} MB |")
            assert logged == escalated, "every escalation is logged"
            store.engine.dispose()
        finally:
            drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
