"""Start at the city scale: the city read from the store against the same city read from its columnar snapshot.

    python bench/start.py [--database-url sqlite:///data/big.sqlite] [--snapshot-dir /tmp/citysnap]

Prints the seconds of each step and the process's resident memory after it. The snapshot is written first (as the
server does in the background after a load from the store), then read back as a restart would, with the store's
changes since read before the first answer (none here).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_gb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e6
    return float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="sqlite:///data/big.sqlite")
    parser.add_argument("--snapshot-dir", default="/tmp/citytwin-bench-snapshot")
    args = parser.parse_args(argv)

    from layers.city import EVENT_LAYERS, load_city
    from layers.snapshot import read_snapshot, snapshot_folder, write_snapshot
    from layers.store import Store
    from layers.workorders import WorkOrders

    store = Store(args.database_url, snapshot_dir=args.snapshot_dir)
    started = time.perf_counter()
    city = load_city(store)
    from_store = time.perf_counter() - started
    print(f"load from the store:      {from_store:6.1f} s   RSS {rss_gb():.2f} GB   "
          f"({len(city['orders']):,} orders, {len(city['buildings']):,} buildings)", flush=True)
    started = time.perf_counter()
    write_snapshot(city, store, WorkOrders(store).last_transition())
    wrote = time.perf_counter() - started
    size = sum(f.stat().st_size for f in snapshot_folder(store).iterdir()) / 1e6
    print(f"write the snapshot:       {wrote:6.1f} s   {size:,.0f} MB", flush=True)
    del city
    started = time.perf_counter()
    snapshot, _mark = read_snapshot(store, EVENT_LAYERS)
    from_snapshot = time.perf_counter() - started
    print(f"load from the snapshot:   {from_snapshot:6.1f} s   ({from_store / from_snapshot:.1f}× faster; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
