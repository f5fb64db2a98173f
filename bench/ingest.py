"""Stream ingest benchmark: sustained readings/s through Mosquitto into SQLite and into PostgreSQL.

    .venv/bin/python bench/ingest.py                                 # 20 s per back end at 4,500 readings/s
    .venv/bin/python bench/ingest.py --seconds 600 --backends sqlite # the issue's 10 minutes

Starts its own Mosquitto (persistence on, free port), a copy of the demo city (SQLite) or the demo city built into
a throwaway PostgreSQL cluster, ``python -m layers.ingest`` as a child process, and a publisher process that sends
QoS 1 readings of the city's measuring sensors at ``--rate`` readings a second. Prints, per back end:

* offered and stored readings/s (stored over the whole run, counting the drain after the publisher stops);
* p95 and max publish → stored latency, on a sample of messages (one in 50) whose send time the publisher notes,
  seen by a follower polling :func:`layers.ingest.arrived_since` every 100 ms (so up to 0.1 s pessimistic);
* CPU share (of one core) of the broker, the ingest and the publisher, from /proc, and CPU microseconds per reading
  (so what one free core would sustain: on a loaded machine the share is what the scheduler gave, not what it needs);
* bytes on disk per stored reading and per day at the measured rate and at 4,500/s (270,000 devices once a minute).

The machine is shared: run it when it is quiet, and read the figures as this machine's, not a promise.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import sqlalchemy  # noqa: E402

from layers.ingest import arrived_since  # noqa: E402
from layers.store import Store  # noqa: E402
from tests.mqtt_harness import IngestProcess, Mosquitto, wait_for  # noqa: E402

DEMO_CITY = ROOT / "data" / "citytwin.sqlite"
SAMPLE_EVERY = 50
TICK = 0.01
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (no psutil needed)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def publish(port: int, sensors_file: str, rate: float, seconds: float, base_ts: int, report_file: str) -> None:
    """The publisher process: ``rate`` QoS 1 readings a second for ``seconds``, round-robin over the sensors, each
    sensor's instants one second apart from ``base_ts`` (a distinct key per reading at any rate). Message n is
    sensor n % sensors at base_ts + n // sensors; one in :data:`SAMPLE_EVERY` has its send time written down."""
    import paho.mqtt.client as mqtt

    sensors = json.loads(Path(sensors_file).read_text())
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="citytwin-bench-publisher", clean_session=True)
    # No client-side window: paho scans its whole in-flight list on every PUBACK when one is set (quadratic at
    # thousands a second); the broker takes them as they come.
    client.max_inflight_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.monotonic()
    sent, sent_at = 0, {}
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        while sent < due and (sent % 500 or time.monotonic() - started < seconds):
            body = {"ts": base_ts + sent // len(sensors), "value": 20.0 + sent % 50}
            if sent % SAMPLE_EVERY == 0:
                sent_at[sent] = time.time()
            client.publish(f"citytwin/{sensors[sent % len(sensors)]}/reading", json.dumps(body), qos=1)
            sent += 1
        time.sleep(TICK)
    publishing = time.monotonic() - started
    client.loop_stop()
    client.disconnect()
    # A file, not stdout: ten minutes' send times are megabytes, more than a pipe holds while nobody reads it.
    Path(report_file).write_text(json.dumps({"sent": sent, "sent_at": sent_at, "seconds": publishing}))


def disk_bytes(store: Store, path: Path | None) -> int:
    if path is not None:
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with store.engine.connect() as conn:
        return conn.execute(sqlalchemy.text("SELECT pg_database_size(current_database())")).scalar_one()


def run(backend: str, url: str, sqlite_path: Path | None, rate: float, seconds: float, workdir: Path) -> dict:
    """One back end's run; the broker, the ingest and the publisher are stopped whatever happens."""
    children: list = []
    try:
        return _measure(backend, url, sqlite_path, rate, seconds, workdir, children)
    finally:
        for child in reversed(children):
            if isinstance(child, subprocess.Popen):
                if child.poll() is None:
                    child.kill()
                    child.wait()
            else:
                child.stop()


def _measure(backend: str, url: str, sqlite_path: Path | None, rate: float, seconds: float, workdir: Path,
             children: list) -> dict:
    store = Store(url)
    sensors = store.read_frame("sensors", ["sensor_id", "kind"])
    measuring = sorted(sensors.loc[sensors["kind"].isin(["pm25", "noise", "water_level", "traffic_flow"]),
                                   "sensor_id"])
    sensors_file = workdir / "sensors.json"
    sensors_file.write_text(json.dumps(measuring))
    (workdir / "mosquitto").mkdir()
    broker = Mosquitto(workdir / "mosquitto")
    broker.start()
    children.append(broker)
    ingest = IngestProcess(broker.url, url, workdir / f"ingest-{backend}.log")
    ingest.start()
    children.append(ingest)
    ingest.wait_connected(timeout=60)
    with store.engine.connect() as conn:
        seq0 = conn.execute(sqlalchemy.text("SELECT COALESCE(MAX(seq), 0) FROM readings")).scalar_one()
    disk0 = disk_bytes(store, sqlite_path)
    # Each sensor's instants start a second after the newest reading stored, so that no reading sent is one the
    # sample city already has (a duplicate is not stored again, and the run would wait for rows that never come).
    with store.engine.connect() as conn:
        newest = conn.execute(sqlalchemy.text("SELECT MAX(ts) FROM readings")).scalar_one()
    newest = 0 if newest is None else int(newest if isinstance(newest, (int, float)) else newest.timestamp())
    base_ts = max(newest + 1, int(time.time()) - int(seconds * rate / max(len(measuring), 1)) - 3600 * 2)
    cpu0 = {name: cpu_seconds(p.pid) for name, p in (("broker", broker.process), ("ingest", ingest.process))}
    started = time.monotonic()
    report_file = workdir / "publisher.json"
    publisher = subprocess.Popen([sys.executable, __file__, "--publish", str(broker.port), str(sensors_file),
                                  str(rate), str(seconds), str(base_ts), str(report_file)])
    children.append(publisher)
    index = {s: i for i, s in enumerate(measuring)}
    seen_at: dict[int, float] = {}
    cursor, stored, publisher_cpu, report = seq0, 0, 0.0, None
    first_row_at = last_row_at = None
    while True:
        if report is None and publisher.poll() is None:
            publisher_cpu = cpu_seconds(publisher.pid)
        frame, cursor = arrived_since(store, "readings", cursor)
        now = time.time()
        stored += len(frame)
        if len(frame):
            first_row_at = first_row_at or now
            last_row_at = now
            ts = frame["ts"].dt.as_unit("s").astype("int64").to_numpy()
            numbers = (ts - base_ts) * len(measuring) + frame["sensor_id"].map(index).to_numpy()
            seen_at.update((int(n), now) for n in numbers[numbers % SAMPLE_EVERY == 0])
        if report is None and publisher.poll() is not None:
            if publisher.returncode != 0:
                raise RuntimeError(f"the publisher failed (exit {publisher.returncode})")
            report = json.loads(report_file.read_text())
        if report is not None and (stored >= report["sent"] or time.monotonic() - started > seconds + 120):
            break  # all stored (or a drain of over two minutes: report what was stored)
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    cpu = {name: (cpu_seconds(p.pid) - cpu0[name]) / elapsed
           for name, p in (("broker", broker.process), ("ingest", ingest.process))}
    cpu["publisher"] = publisher_cpu / elapsed
    sent = report["sent"]
    latencies = [seen_at[int(n)] - t for n, t in report["sent_at"].items() if int(n) in seen_at]
    ingest.stop()
    broker.stop()
    waits = ingest.output().count("database unavailable")
    disk = disk_bytes(store, sqlite_path) - disk0
    per_reading = disk / max(stored, 1)
    # From the first row stored to the last (the publisher's start-up is not the ingest's time), at least as long
    # as the publisher sent: what the ingest sustained.
    stored_rate = stored / max((last_row_at or 0) - (first_row_at or 0), report["seconds"], 1e-9)
    return {
        "backend": backend, "seconds": round(elapsed, 1), "offered_per_s": round(sent / report["seconds"]),
        "stored": stored, "sent": sent, "stored_per_s": round(stored_rate),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "p95_publish_to_stored_s": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
        "max_publish_to_stored_s": round(max(latencies), 3) if latencies else None,
        "latency_samples": len(latencies),
        "database_waits": waits,  # times the ingest found the database busy or down and held its batch
        "cpu_share": {k: round(v, 2) for k, v in cpu.items()},
        # CPU time per reading stored: what a free core would sustain, whatever else the machine was doing.
        "cpu_us_per_reading": {k: round(v * elapsed / max(stored, 1) * 1e6) for k, v in cpu.items()},
        "ingest_readings_per_s_per_free_core": round(max(stored, 1) / max(cpu["ingest"] * elapsed, 1e-9)),
        "disk_bytes_per_reading": round(per_reading, 1),
        "disk_gb_per_day_at_measured_rate": round(per_reading * stored_rate * 86400 / 1e9, 2),
        "disk_gb_per_day_at_4500_per_s": round(per_reading * 4500 * 86400 / 1e9, 2),
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        port, sensors_file, rate, seconds, base_ts, report_file = sys.argv[2:8]
        publish(int(port), sensors_file, float(rate), float(seconds), int(base_ts), report_file)
        return 0
    # Stopped by a timeout (SIGTERM): unwind, so the broker, the ingest and a PostgreSQL cluster are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench/ingest.py: stopped by SIGTERM"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=4500.0, help="readings per second offered")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the publisher sends, per back end")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--city", type=Path, default=DEMO_CITY, help="the demo city to copy for SQLite "
                                                                     "(default data/citytwin.sqlite)")
    args = parser.parse_args()
    results = []
    for backend in args.backends.split(","):
        workdir = Path(tempfile.mkdtemp(prefix=f"citytwin-bench-ingest-{backend}-"))
        try:
            if backend == "sqlite":
                if not args.city.exists():
                    print(f"{args.city} missing: run `make sample` first", file=sys.stderr)
                    return 2
                path = workdir / "city.sqlite"
                shutil.copy(args.city, path)
                results.append(run(backend, f"sqlite:///{path}", path, args.rate, args.seconds, workdir))
            else:
                from sample_data.__main__ import build
                from tests.conftest import throwaway_postgis_cluster
                with throwaway_postgis_cluster() as url:
                    build("demo", url, progress=False)
                    results.append(run(backend, url, None, args.rate, args.seconds, workdir))
            print(json.dumps(results[-1]), flush=True)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
