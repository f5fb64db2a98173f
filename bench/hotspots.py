"""City-scale benchmark of recurring-hotspot detection: detection time, and precision/recall against the
generator's planted hotspots.

    .venv/bin/python bench/hotspots.py                                  # data/bench-city.sqlite (city scale)
    .venv/bin/python bench/hotspots.py --database-url sqlite:///data/citytwin.sqlite --repeat 5

Loads the orders and planted_hotspots layers (about 25 s at city scale; not part of the timing), then runs
:func:`metrics.hotspots.detect_hotspots` over all the orders ``--repeat`` times and prints the median time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from layers.city import load_city  # noqa: E402
from layers.store import Store  # noqa: E402
from metrics.hotspots import compare_with_planted, detect_hotspots  # noqa: E402

DEFAULT_DATABASE = ROOT / "data" / "bench-city.sqlite"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"sqlite:///{DEFAULT_DATABASE}")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    city = load_city(Store(args.database_url), layer_ids=("orders", "planted_hotspots"))
    orders = city["orders"]
    print(f"loaded {len(orders):,} orders from {args.database_url} in {time.perf_counter() - started:.1f} s "
          f"({orders['received_at'].min():%Y-%m-%d} to {orders['received_at'].max():%Y-%m-%d})")

    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        found = detect_hotspots(city, None)
        times.append(time.perf_counter() - started)
    print(f"detect_hotspots: median {statistics.median(times):.2f} s over {args.repeat} runs "
          f"({', '.join(f'{t:.2f}' for t in times)})")

    score = compare_with_planted(found, city["planted_hotspots"])
    print(f"planted {score['planted']}, found {score['found']}: recall {score['recall']:.2f} "
          f"({score['planted_found']}/{score['planted']}), precision {score['precision']:.2f} "
          f"({score['found_matching']}/{score['found']})")
    for evidence in found["evidence"]:
        print(f"  {evidence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
