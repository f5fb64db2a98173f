"""The same city in SQLite and in PostgreSQL, side by side: the store-bound requests of the work-order screens
(issue 12, item 7), read-only.

    .venv/bin/python bench/stores.py --sqlite sqlite:////work/data/city.sqlite \\
        --postgresql postgresql+psycopg://user@host/city [--repeat 5]

Each row is a read the screens make on every request (the list's blocks as AG Grid asks for them, its counts, the
open orders the supervision board's clocks run on, one order and its timeline), timed on both stores: the first
call and the median of ``--repeat`` more, and the ratio PostgreSQL / SQLite of the medians (target: within 2×).
The map pages' figures need the whole city in memory (bench/maps.py with ``--database-url``); this bench does not.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from layers.specs import CITY_TIMEZONE  # noqa: E402
from layers.store import Store  # noqa: E402
from layers.workorders import OrderQuery, WorkOrders  # noqa: E402


def reads(service: WorkOrders, now: pd.Timestamp) -> dict:
    total = service.list_orders(OrderQuery(limit=1)).total
    deep = (total // 3) // 100 * 100
    sample = service.list_orders(OrderQuery(status=["dispatched"], limit=1)).orders[0].order_id
    busiest = service.list_orders(OrderQuery(limit=1)).orders[0].department
    return {
        "list: first block of 100, newest first": lambda: service.list_orders(OrderQuery(limit=100)),
        f"list: block at row {deep:,}": lambda: service.list_orders(OrderQuery(offset=deep, limit=100)),
        "list: by deadline": lambda: service.list_orders(OrderQuery(sort="deadline_at", descending=False)),
        f"list: open orders of {busiest} in Futian": lambda: service.list_orders(OrderQuery(
            department=[busiest], status=["received", "dispatched", "accepted"], unit="440304")),
        "list: closed, newest first": lambda: service.list_orders(OrderQuery(status=["closed"])),
        "list: overdue now": lambda: service.list_orders(OrderQuery(overdue_at=now)),
        "supervision: every open order (clocks' input)": lambda: service.open_orders_frame(),
        "one order and its timeline": lambda: (service.get(sample), service.timeline(sample)),
    }


def timed(call, repeat: int) -> tuple[float, float]:
    started = time.perf_counter()
    call()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", required=True)
    parser.add_argument("--postgresql", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    now = pd.Timestamp("2026-11-20 16:00", tz=CITY_TIMEZONE)
    results = {}
    for name, url in (("sqlite", args.sqlite), ("postgresql", args.postgresql)):
        service = WorkOrders(Store(url))
        service.warm()
        results[name] = {label: timed(call, args.repeat) for label, call in reads(service, now).items()}
        service.store.engine.dispose()
    print(f"\n| read | SQLite first / median | PostgreSQL first / median | PG / SQLite |")
    print("|---|---:|---:|---:|")
    for label in results["sqlite"]:
        (s_first, s_median), (p_first, p_median) = results["sqlite"][label], results["postgresql"][label]
        print(f"| {label} | {s_first * 1000:,.0f} / {s_median * 1000:,.0f} ms | {p_first * 1000:,.0f} / "
              f"{p_median * 1000:,.0f} ms | {p_median / s_median:.1f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
