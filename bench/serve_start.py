"""Start as an operator sees it: ``python app.py`` started on a city, timed to its first answer and its warm-up, with
the resident memory of every process it runs (the server, gunicorn's workers, the jobs process).

    .venv/bin/python bench/serve_start.py --database-url sqlite:///data/bench-city.sqlite
    .venv/bin/python bench/serve_start.py --database-url … --workers 2 --keep-serving 600   # then bench/load.py

Prints: seconds to the first 200 of ``GET /health`` and of a signed-in ``GET /`` (bench/signin.py's account); the
memory per process and in total at that moment (PSS, and the RSS summed, which counts shared pages once per
process); then when the server's CPU goes quiet (under ``--quiet-cpu`` of a core for ``--quiet-seconds``: the
background warm-up is done) and the memory then. The scheduled writes are off
(``CITYTWIN_ESCALATION_MINUTES=0``): a bench never writes to the city it measures. With ``--keep-serving`` the
server is left running that many seconds (its URL printed) for bench/load.py, then stopped.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1000
    except OSError:
        pass
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass
    return total


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (gunicorn's workers share the master's city copy-on-write) divided
    among the processes sharing them, so that a sum over processes is the memory they take together."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1000
    except OSError:
        pass
    return float("nan")


def memory_line(pid: int) -> str:
    pids = tree(pid)
    rss, pss = [rss_mb(p) for p in pids], [pss_mb(p) for p in pids]
    return (f"PSS {sum(pss) / 1000:.2f} GB in {len(pids)} process(es) (" + ", ".join(f"{m / 1000:.2f}" for m in pss)
            + f"); RSS summed {sum(rss) / 1000:.2f} GB")


def load_average() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on the first answer after this long")
    parser.add_argument("--quiet-cpu", type=float, default=0.10, help="cores; under this the warm-up is done")
    parser.add_argument("--quiet-seconds", type=float, default=10.0)
    parser.add_argument("--warm-timeout", type=float, default=600.0)
    parser.add_argument("--keep-serving", type=float, default=0.0, help="seconds to keep the server for other benches")
    args = parser.parse_args(argv)

    import requests
    from layers.store import Store
    from signin import bench_account, signed_in_session

    account = bench_account(Store(args.database_url))
    # Stopped by a signal (even started in the background, where SIGINT is ignored): the server is stopped too.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda number, frame: sys.exit(128 + number))
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, CITYTWIN_ESCALATION_MINUTES="0", PYTHONUNBUFFERED="1")
    log = open(ROOT / "data" / f"serve-start-{port}.log", "w")
    print(f"starting app.py on {base} ({args.workers} worker(s)), {load_average()}", flush=True)
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--database-url",
                               args.database_url, "--workers", str(args.workers)], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        health_at = page_at = None
        session = requests.Session()
        while time.perf_counter() - started < args.timeout and page_at is None:
            if server.poll() is not None:
                raise SystemExit(f"error: app.py exited with {server.returncode} (see {log.name})")
            try:
                if health_at is None and session.get(base + "/health", timeout=5,
                                                     allow_redirects=False).status_code == 200:
                    health_at = time.perf_counter() - started
                    print(f"first 200 of GET /health:   {health_at:6.1f} s   {memory_line(server.pid)}   "
                          f"{load_average()}", flush=True)
                if health_at is not None:
                    signed_in_session(base, account, session)
                    if session.get(base + "/", timeout=30, allow_redirects=False).status_code == 200:
                        page_at = time.perf_counter() - started
                        print(f"first 200 of GET / (signed in): {page_at:6.1f} s   {memory_line(server.pid)}   "
                              f"{load_average()}", flush=True)
            except (requests.RequestException, RuntimeError):  # not answering yet / not signed in yet
                pass
            time.sleep(0.5)
        if page_at is None:
            raise SystemExit(f"error: no signed-in page after {args.timeout:.0f} s (see {log.name})")
        # The warm-up runs in the background: done when the server's processes stop using the CPU.
        last_cpu, quiet_since = cpu_seconds(tree(server.pid)), None
        while time.perf_counter() - started < args.warm_timeout:
            time.sleep(1.0)
            cpu = cpu_seconds(tree(server.pid))
            busy = cpu - last_cpu
            last_cpu = cpu
            if busy < args.quiet_cpu:
                quiet_since = quiet_since or time.perf_counter() - 1.0
                if time.perf_counter() - quiet_since >= args.quiet_seconds:
                    print(f"warm-up done (CPU quiet):   {quiet_since - started:6.1f} s   {memory_line(server.pid)}   "
                          f"{load_average()}", flush=True)
                    break
            else:
                quiet_since = None
        else:
            print(f"warm-up not quiet after {args.warm_timeout:.0f} s   {memory_line(server.pid)}", flush=True)
        if args.keep_serving:
            print(f"serving on {base} for {args.keep_serving:.0f} s", flush=True)
            time.sleep(args.keep_serving)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
