"""Each page in Chromium, cold and warm: how long until it is settled, and where that time goes.

    .venv/bin/python bench/browser.py --base-url http://127.0.0.1:8050 --database-url sqlite:///data/city.sqlite
    .venv/bin/python bench/browser.py --database-url sqlite:///... --repeat 3    # starts the app in this process

The pages: the city, a district (Futian), a street, a community, a grid cell (the drill path bench/capture.py
walks: its captured URLs, or, without a capture, the first child at each level), the wall, the work orders, the
supervision board, the catalogue and the hotspots; and, for comparison, the same community's buildings drawn by a
naive plotly map (``plotly.express.choropleth_map`` of their footprints, plotly.js served from loopback).

*Cold* is a new browser context (empty cache) opening the page's URL; *warm* is the same context opening it again
(what a returning user's browser keeps is kept). *Settled* = the page shows what it should (the map's canvas and the
KPI values on map pages; see ``capture.READY``), nothing has been in flight for 500 ms, and a frame was drawn after
the last answer. The settle time is split, on the wall clock from the navigation's start:

- **server**: the time at least one request was waiting for its first byte (on loopback, the server's time);
- **network**: the time requests were in flight but none waiting on the server (sending, receiving, decoding);
- **rendering**: the rest, when nothing was in flight (script, layout, WebGL frames: software WebGL here).

Also the app's own time (the sum of its ``Server-Timing`` headers, over all requests), the bytes received (headers
and body as sent, compressed where they were; 0 for what the browser cache answered), the requests and callbacks.
Median of ``--repeat`` (default 3) per page and state.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CITYTWIN_ESCALATION_MINUTES", "0")  # a bench never writes to the city it measures

import capture  # noqa: E402  (bench/ is on the path as the script's folder)
from signin import bench_account  # noqa: E402


@dataclass
class Visit:
    settle_ms: float
    server_ms: float
    network_ms: float
    rendering_ms: float
    app_ms: float
    bytes: int
    requests: int
    callbacks: int
    error: str | None = None


def union_ms(intervals) -> float:
    """Total length of the union of (start, end) intervals."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def clip(interval, start, end):
    return max(interval[0], start), min(interval[1], end)


def visit(page, recorder, url: str, kind: str) -> Visit:
    """Open ``url`` and wait until it settles; the split of its time (see the module docstring)."""
    step = capture.Step(url, kind, started_ms=time.time() * 1000)
    first = len(recorder.requests)
    try:
        page.goto(url, wait_until="commit")
        capture.settle(page, recorder, kind, _Live(recorder, first, step))
    except Exception as error:  # noqa: BLE001
        return Visit(float("nan"), 0, 0, 0, 0, 0, 0, 0, error=f"{type(error).__name__}: {str(error)[:160]}")
    requests = recorder.requests[first:]
    start, end = step.started_ms, step.settled_ms
    in_flight = [clip((r.start_ms, r.end_ms), start, end) for r in requests if r.end_ms and not r.from_cache]
    waiting = [clip((r.server_from_ms, r.server_from_ms + r.server_ms), start, end) for r in requests
               if r.server_from_ms is not None and r.server_ms is not None and not r.from_cache]
    busy, server = union_ms(in_flight), union_ms(waiting)
    settle = end - start
    return Visit(settle, server, busy - server, settle - busy, sum(r.app_ms or 0 for r in requests),
                 sum(r.wire_bytes or 0 for r in requests), len(requests), sum(r.is_callback for r in requests))


class _Live:
    """A step whose request list is the recorder's, from ``first`` on, as it grows (capture.settle reads it)."""

    def __init__(self, recorder, first: int, step):
        self._recorder, self._first, self._step = recorder, first, step

    @property
    def requests(self):
        return self._recorder.requests[self._first:]

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._step, name, value)


def pages_from(steps: list[capture.Step], base_url: str) -> list[tuple[str, str, str]]:
    """(name, URL, kind) of each page measured, from a capture's drill path."""
    def here(url):
        parsed = urlparse(url)
        return base_url + parsed.path + (f"?{parsed.query}" if parsed.query else "")
    drill = [s for s in steps if s.kind == "map"]
    names = ["city", "district", "street", "community", "grid cell"]
    pages = [(f"{name} ({urlparse(s.url).query or '/'})", here(s.url), "map") for name, s in zip(names, drill)]
    pages += [(name, base_url + path, kind) for name, path, kind in capture.OTHER_PAGES]
    return pages


def community_of(steps: list[capture.Step]) -> str:
    from urllib.parse import parse_qs
    drill = [s for s in steps if s.kind == "map"]
    return parse_qs(urlparse(drill[3].url).query)["unit"][0]


def naive_plotly_page(database_url: str, community: str, folder: Path) -> tuple[Path, int]:
    """An HTML page with the community's buildings as a plotly choropleth map (no tiles: white background), and
    plotly.js beside it; the page's path and the number of buildings."""
    import plotly.express as px
    from layers.load import load_layer
    from sqlalchemy import select

    from layers.store import METADATA, Store
    store = Store(database_url)
    units = METADATA.tables["units"]
    with store.engine.connect() as connection:
        grids = connection.execute(select(units.c.code).where(units.c.level == "grid",
                                                              units.c.parent_code == community)).scalars().all()
    buildings = load_layer(store, "buildings", columns=["building_id", "grid_code", "height_m", "use", "geometry"],
                           where=lambda table: table.c.grid_code.in_(grids))
    figure = px.choropleth_map(buildings, geojson=json.loads(buildings.to_json()), locations="building_id",
                               featureidkey="properties.building_id", color="use", hover_data=["height_m"],
                               map_style="white-bg", zoom=15,
                               center={"lat": float(buildings.geometry.centroid.y.mean()),
                                       "lon": float(buildings.geometry.centroid.x.mean())})
    figure.update_layout(width=1900, height=1060, margin={"l": 0, "r": 0, "t": 0, "b": 0})
    path = folder / "naive-plotly.html"
    figure.write_html(path, include_plotlyjs="directory", full_html=True, post_script=(
        "var mark = document.createElement('div'); mark.id = 'plotted'; mark.textContent = 'plotted';"
        " document.body.appendChild(mark);"))
    return path, len(buildings)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_folder(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True, name="plotly-page").start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def measure(browser, pages, repeat: int, account: tuple[str, str]) -> dict[str, dict[str, list[Visit]]]:
    results: dict[str, dict[str, list[Visit]]] = {name: {"cold": [], "warm": []} for name, _, _ in pages}
    for run in range(repeat):
        for name, url, kind in pages:
            origin = "{0.scheme}://{0.netloc}".format(urlparse(url))
            # The naive plotly page comes from a plain static server: nothing to sign in to there (its POST /login
            # answers 501, which stopped the bench after the app's pages).
            context, page, recorder = capture.new_page(browser, origin, None if kind == "plotly" else account)
            try:
                for state in ("cold", "warm"):
                    result = visit(page, recorder, url, kind)
                    results[name][state].append(result)
                    print(f"  run {run + 1} {name:<52} {state}: {fmt_visit(result)}", flush=True)
            finally:
                context.close()
    return results


def fmt_visit(v: Visit) -> str:
    if v.error:
        return f"FAILED {v.error}"
    return (f"settled {v.settle_ms / 1000:5.2f} s = server {v.server_ms / 1000:4.2f} + network "
            f"{v.network_ms / 1000:4.2f} + rendering {v.rendering_ms / 1000:5.2f}; app {v.app_ms:5.0f} ms; "
            f"{v.bytes / 1e6:5.2f} MB; {v.requests} requests ({v.callbacks} callbacks)")


def median_visit(visits: list[Visit]) -> Visit | None:
    good = [v for v in visits if not v.error]
    if not good:
        return None
    fields = ("settle_ms", "server_ms", "network_ms", "rendering_ms", "app_ms", "bytes", "requests", "callbacks")
    return Visit(*[statistics.median(getattr(v, f) for v in good) for f in fields])


def print_table(results) -> None:
    print("\nMarkdown (README), median of the runs:\n")
    print("| page | state | settled s | server s | network s | rendering s | app ms | MB received | requests "
          "(callbacks) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for name, states in results.items():
        for state, visits in states.items():
            m = median_visit(visits)
            if m is None:
                print(f"| {name} | {state} | FAILED | | | | | | {visits[0].error if visits else ''} |")
                continue
            print(f"| {name} | {state} | {m.settle_ms / 1000:.2f} | {m.server_ms / 1000:.2f} | "
                  f"{m.network_ms / 1000:.2f} | {m.rendering_ms / 1000:.2f} | {m.app_ms:.0f} | "
                  f"{m.bytes / 1e6:.2f} | {m.requests:.0f} ({m.callbacks:.0f}) |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="the city (read for the naive map; served unless "
                                                              "--base-url)")
    parser.add_argument("--base-url", help="a server already running on that city")
    parser.add_argument("--capture", type=Path, default=ROOT / "data" / "bench-capture.json",
                        help="the drill path's URLs (bench/capture.py, bench/run.py); captured now if missing")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="measure only pages whose name contains this (e.g. 'community')")
    parser.add_argument("--without-delivery", action="store_true",
                        help="serve without dashboard/delivery.py (no compression, cache lifetimes nor "
                             "Server-Timing): the before of a before → after, in the same run")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    server_context = None
    if args.base_url:
        base_url = args.base_url.rstrip("/")
        if not args.capture.exists():
            raise SystemExit(f"error: no {args.capture}; run bench/capture.py --base-url {base_url} first")
        steps = capture.load(args.capture)
    else:
        if args.without_delivery:
            from dashboard import delivery
            delivery.register = lambda server: None
        from app import create_app
        app = create_app(args.database_url)
        for thread in threading.enumerate():  # measuring beside the app's warm-up would time the GIL, not the pages
            if thread.name == "warm-windows":
                thread.join()
        server_context = capture.serving(app)
        base_url = server_context.__enter__()
        steps = capture.captured_for(app, args.capture if args.capture.exists() else None)
    pages = pages_from(steps, base_url)
    with tempfile.TemporaryDirectory(prefix="citytwin-naive-") as folder:
        community = community_of(steps)
        path, count = naive_plotly_page(args.database_url, community, Path(folder))
        naive_base, naive_server = serve_folder(Path(folder))
        pages.append((f"naive plotly map, community {community} ({count:,} buildings)",
                      f"{naive_base}/{path.name}", "plotly"))
        if args.only:
            pages = [p for p in pages if args.only in p[0]]
        print(f"citytwin browser bench — {base_url}, {len(pages)} pages × cold/warm × {args.repeat}", flush=True)
        with sync_playwright() as playwright:
            browser = capture.launch(playwright)
            try:
                from layers.store import Store
                results = measure(browser, pages, args.repeat, bench_account(Store(args.database_url)))
            finally:
                browser.close()
        naive_server.shutdown()
    if server_context is not None:
        server_context.__exit__(None, None, None)
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
