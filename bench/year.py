"""The year's full recompute on Dask: every indicator × every level × the history windows, over the year sample's
history files (``make sample SCALE=year DB=data/year.sqlite`` → data/year.sqlite + data/year-history/).

    .venv/bin/python bench/year.py                                   # 1 then 2 workers (LocalCluster), then the
                                                                     # scheduler and 2 workers as processes
    .venv/bin/python bench/year.py --workers 2 --windows 12m --no-separate

For each cluster: the wall time of each window, the peak memory (RSS) of each worker process against its limit
(sampled every 0.2 s from this process), the bytes of Parquet column chunks read, and per partition task its rows
and compute time (the figures docs/scale.md projects from).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from dask.utils import parse_bytes  # noqa: E402
from distributed import Client, LocalCluster, get_task_stream  # noqa: E402

from layers.city import load_city  # noqa: E402
from layers.history import History  # noqa: E402
from layers.specs import LEVELS  # noqa: E402
from layers.store import Store  # noqa: E402
from metrics import distributed  # noqa: E402
from metrics.registry import INDICATORS  # noqa: E402
from metrics.spec import named_window  # noqa: E402

DASK = Path(sys.executable).parent / "dask"


class PeakMemory:
    """The largest RSS seen of each worker process while the block runs."""

    def __init__(self, pids: dict[str, int]):
        self.pids, self.peak, self._stop = pids, {name: 0 for name in pids}, threading.Event()

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        processes = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        while not self._stop.is_set():
            for name, process in processes.items():
                with contextlib.suppress(psutil.Error):
                    self.peak[name] = max(self.peak[name], process.memory_info().rss)
            self._stop.wait(0.2)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def recompute(client: Client, history: History, city, windows: list[str], memory_limit: str) -> dict:
    pids = client.run(os.getpid)
    figures = {"workers": len(pids), "memory_limit": memory_limit, "windows": {}}
    for name in windows:
        window = named_window(name, history.as_of)
        run = distributed.Run()
        with PeakMemory(pids) as memory, get_task_stream(client) as stream:
            started = time.perf_counter()
            table = distributed.compute(history, window, city, levels=LEVELS, client=client, run=run)
            seconds = time.perf_counter() - started
        tasks = [t for t in stream.data if str(t["key"]).startswith("partition_sums")]
        compute = [sum(s["stop"] - s["start"] for s in t["startstops"] if s["action"] == "compute") for t in tasks]
        figures["windows"][name] = {
            "seconds": round(seconds, 1), "rows": len(table), "partitions": run.partitions,
            "rows_read": run.rows_read, "bytes_read": run.bytes_read,
            "peak_rss": {w: memory.peak[a] for a, w in zip(pids, _names(client, pids))},
            "task_seconds": round(sum(compute), 1), "task_seconds_max": round(max(compute, default=0), 1)}
        print(f"  {name:>16}: {seconds:6.1f} s, {run.partitions} partitions, {run.rows_read:,} rows, "
              f"{run.bytes_read / 1e6:,.0f} MB read, tasks {sum(compute):.0f} s (longest {max(compute, default=0):.1f}"
              f" s), peak RSS " + ", ".join(f"{v / 2**30:.2f}" for v in memory.peak.values())
              + f" GiB (limit {memory_limit})", flush=True)
        limit = parse_bytes(memory_limit)
        over = [a for a, v in memory.peak.items() if v > limit]
        if over:
            print(f"  !! workers over their {memory_limit} limit: {over}")
    return figures


def _names(client: Client, pids: dict) -> list[str]:
    info = client.scheduler_info()["workers"]
    return [str(info[a]["name"]) if a in info else a for a in pids]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def separate_processes(workers: int, memory_limit: str):
    """A ``dask scheduler`` and ``workers`` ``dask worker`` processes on loopback, as one would start on machines."""
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    quiet = dict(cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], **quiet)]
    try:
        for k in range(workers):
            processes.append(subprocess.Popen([str(DASK), "worker", f"tcp://127.0.0.1:{port}", "--name", f"w{k}",
                                               "--nthreads", "1", "--no-nanny", "--memory-limit", memory_limit,
                                               "--no-dashboard", "--host", "127.0.0.1"], **quiet))
        with Client(f"tcp://127.0.0.1:{port}", timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
            yield client
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"sqlite:///{ROOT / 'data' / 'year.sqlite'}")
    parser.add_argument("--history", default=str(ROOT / "data" / "year-history"))
    parser.add_argument("--workers", default="1,2", help="worker counts of the LocalClusters, e.g. 1,2")
    parser.add_argument("--memory-limit", default="6GiB", help="per worker")
    parser.add_argument("--windows", default="12m,30d_last_year,30d")
    parser.add_argument("--no-separate", action="store_true", help="skip the scheduler + workers as processes")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it comes when the output goes to a file

    history = History(args.history)
    if history.as_of is None:
        raise SystemExit(f"error: {args.history} has no history (make sample SCALE=year DB=data/year.sqlite)")
    started = time.perf_counter()
    city = load_city(Store(args.database_url))
    parts = {layer: history.partitions(layer) for layer in ("orders", "readings", "alarms")}
    rows = {layer: sum(history.manifest["layers"][layer][p.city][p.month]["rows"] for p in ps)
            for layer, ps in parts.items()}
    size = sum(p.path.stat().st_size for ps in parts.values() for p in ps)
    print(f"the city from {args.database_url} in {time.perf_counter() - started:.0f} s; history {args.history}: "
          + ", ".join(f"{layer} {rows[layer]:,} in {len(ps)} months" for layer, ps in parts.items())
          + f", {size / 1e9:.2f} GB; as of {history.as_of}; {len(INDICATORS)} indicators × {len(LEVELS)} levels")
    windows = args.windows.split(",")
    results = {"history_rows": rows, "history_bytes": size, "runs": []}
    for count in [int(n) for n in args.workers.split(",")]:
        print(f"LocalCluster, {count} worker process(es) of 1 thread, {args.memory_limit} each:", flush=True)
        with LocalCluster(n_workers=count, threads_per_worker=1, processes=True, memory_limit=args.memory_limit,
                          host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
            results["runs"].append({"cluster": "local", **recompute(client, history, city, windows,
                                                                     args.memory_limit)})
    if not args.no_separate:
        print(f"scheduler + 2 workers as separate processes on loopback, {args.memory_limit} each:", flush=True)
        with separate_processes(2, args.memory_limit) as client:
            results["runs"].append({"cluster": "processes", **recompute(client, history, city, windows,
                                                                         args.memory_limit)})
    local = {run["workers"]: run for run in results["runs"] if run["cluster"] == "local"}
    for window in windows:
        if 1 in local and len(local) > 1:
            one = local[1]["windows"][window]["seconds"]
            print(f"scaling, {window}: " + ", ".join(
                f"1 → {n} workers {one / run['windows'][window]['seconds']:.2f}× ({one} s → "
                f"{run['windows'][window]['seconds']} s)" for n, run in sorted(local.items()) if n > 1))
    results["load_average"] = os.getloadavg()  # the machine is shared: say how busy it was at the end
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in results['load_average'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
