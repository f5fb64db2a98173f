"""The live city, measured: publish → on the screen, an idle screen's bytes, and 50 open screens on one server.

    python bench/live.py [--database-url sqlite:///data/citytwin.sqlite] [--events 10] [--screens 50]

Starts a Mosquitto broker and the app (live mode, its own ingest) on free ports over a copy of the database, opens
the map page in Chromium, and for each event publishes a PM2.5 reading at every monitor over MQTT and times until
the PM2.5 card shows the new value. Then an idle screen's traffic per minute (the poll of GET /api/generation: its
request and response, headers included), and ``--screens`` pollers at once against one server: the poll's p95 and
the server's CPU share.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"sqlite:///{ROOT / 'data' / 'citytwin.sqlite'}")
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--screens", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60, help="how long the idle and the many-screens parts run")
    args = parser.parse_args(argv)

    import pandas as pd
    from playwright.sync_api import sync_playwright

    from layers.store import Store
    from tests.mqtt_harness import Mosquitto, Publisher, free_port, wait_for

    work = Path(tempfile.mkdtemp(prefix="citytwin-live-bench-"))
    source = args.database_url.removeprefix("sqlite:///")
    shutil.copy(source, work / "city.sqlite")
    url = f"sqlite:///{work / 'city.sqlite'}"
    broker = Mosquitto(work)
    broker.start()
    port = free_port()
    env = dict(os.environ, CITYTWIN_MODE="live", CITYTWIN_MQTT_BROKER=broker.url, CITYTWIN_ESCALATION_MINUTES="0",
               CITYTWIN_SNAPSHOT_DIR=str(work / "snapshot"))
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--database-url", url],
                              env=env, stdout=open(work / "app.log", "w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        import requests

        from layers.accounts import Accounts

        wait_for(lambda: _answers(base + "/login"), 600, "the app")
        Accounts(Store(url)).add("bench", "bench-password-1", roles={"admin"})
        http = requests.Session()
        http.trust_env = False
        http.headers["Origin"] = base
        http.post(base + "/login", data={"name": "bench", "password": "bench-password-1"}, allow_redirects=False)
        cookie = {"name": "citytwin_session", "value": http.cookies["citytwin_session"], "url": base}
        global _http
        _http = http
        wait_for(lambda: _answers(base + "/api/generation"), 600, "the city")
        pm25 = Store(url).read_frame("sensors", ["sensor_id", "kind"]).query("kind == 'pm25'")["sensor_id"].tolist()
        publisher = Publisher(broker.port)
        latencies = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            context.add_cookies([cookie])
            page = context.new_page()
            page.goto(base + "/?indicator=pm25_mean&window=today", wait_until="networkidle", timeout=300_000)
            card = page.locator(".kpi-value[data-indicator=pm25_mean]").first
            card.wait_for(timeout=300_000)
            for event in range(args.events):
                before = card.inner_text()
                value = 500.0 + 50 * event
                now = pd.Timestamp.now(tz="Asia/Shanghai").floor("s")
                started = time.monotonic()
                for sensor in pm25:
                    publisher.publish(f"citytwin/{sensor}/reading", json.dumps({"ts": now.isoformat(), "value": value}))
                page.wait_for_function("([selector, before]) => document.querySelector(selector).innerText !== before",
                                       arg=[".kpi-value[data-indicator=pm25_mean]", before], timeout=120_000)
                latencies.append(time.monotonic() - started)
                print(f"event {event + 1}: on the screen after {latencies[-1]:.2f} s", flush=True)
            # An idle screen: what its polls cost a minute (no event meanwhile: the simulator is off).
            sizes = []
            page.on("requestfinished", lambda request: sizes.append(
                request.sizes()["requestHeadersSize"] + request.sizes()["responseHeadersSize"]
                + request.sizes()["responseBodySize"]) if "/api/generation" in request.url else None)
            started = time.monotonic()
            page.wait_for_timeout(args.seconds * 1000)
            per_minute = sum(sizes) * 60 / (time.monotonic() - started)
            browser.close()
        print(f"publish → on the screen: median {statistics.median(latencies):.2f} s, p95 {p95(latencies):.2f} s "
              f"({len(latencies)} events)")
        print(f"an idle screen: {len(sizes)} polls, {per_minute / 1000:.1f} kB a minute")

        # Many screens at once: each polls every 2 s like a page does.
        timings, stop = [], threading.Event()

        def screen():
            while not stop.is_set():
                started = time.monotonic()
                _answers(base + "/api/generation")
                timings.append(time.monotonic() - started)
                stop.wait(max(0.0, 2.0 - (time.monotonic() - started)))

        cpu_before, wall = cpu_seconds(server.pid), time.monotonic()
        threads = [threading.Thread(target=screen, daemon=True) for _ in range(args.screens)]
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        share = (cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - wall)
        print(f"{args.screens} screens polling: {len(timings)} polls, p95 {p95(timings) * 1000:.0f} ms, "
              f"server CPU {share * 100:.0f} % of a core")
        publisher.close()
    finally:
        server.terminate()
        server.wait(30)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


_http = None  # the signed-in session, once there is one


def _answers(url: str) -> bool:
    try:
        if _http is not None:
            return _http.get(url, timeout=30).status_code == 200
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
