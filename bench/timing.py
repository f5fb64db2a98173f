"""Timing helper shared by the benchmark scripts."""
from __future__ import annotations

import statistics
import time


def median_seconds(func, repeat: int) -> tuple[float, object]:
    """Run ``func`` ``repeat`` times; the median wall time and the last result (the machine is shared and noisy)."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result
