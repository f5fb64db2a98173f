"""The browser's real requests, captured from the app itself: Chromium (Playwright, Debian's /usr/bin/chromium) walks
the pages once, as a person does, and every request it sends is recorded (method, URL, headers, body, and when it
started and ended). The benchmarks replay these instead of request bodies written by hand, so a callback that gains
an input or a state cannot leave them sending a stale body (bench/run.py once got a 500 after 12 minutes that way).

    .venv/bin/python bench/capture.py --database-url sqlite:///data/citytwin.sqlite --out /tmp/drill.json
    .venv/bin/python bench/capture.py --base-url http://127.0.0.1:8050 --out /tmp/drill.json  # a running server

The walk (:data:`STEPS`): the city's map; a click on Futian where the map draws it (deck.gl's own ``clickInfo``);
its first street, that street's first community, its first grid cell and that cell's first building, each by the
link a person clicks in the ranking; then the wall, the work orders, the supervision board, the catalogue and the
hotspots. All in one browser context, so from the second step on the browser's cache answers what it may keep, and
the requests recorded are those a returning browser sends.

Used by bench/run.py and bench/maps.py (the page and map-click bodies), bench/load.py (the replay) and
bench/browser.py (the same walk, timed).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from signin import bench_account, sign_in_browser  # noqa: E402  (bench/ is on the path as the script's folder)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1920, "height": 1080}
FUTIAN = "440304"
QUIET_MS = 500  # no request in flight for this long: the network is idle
STEP_TIMEOUT_S = 300.0  # at the city scale, on a busy machine, a cold map page takes well over 10 s

# What each page shows once it is there (CSS selectors that must all match an element with content or a canvas).
READY = {
    "map": ["#unit-title", "canvas", ".kpi-value"],
    "wall": [".wall-clock", "canvas"],
    "orders": [".ag-row"],
    "supervision": [".board-tile-value"],
    "catalogue": [".catalogue-table-wrap"],
    # The title counts what was found: a city (or a window) with no recurring hotspot has no table, only its message.
    "hotspots": ["#hotspots-title"],
    "plotly": ["#plotted", "canvas"],  # bench/browser.py's naive plotly map
}


@dataclass
class Recorded:
    """One request the browser sent: what to replay, and when (epoch ms) it started and ended."""
    method: str
    url: str  # path and query, without the host
    resource_type: str
    headers: dict
    body: str | None
    start_ms: float
    end_ms: float | None = None
    status: int | None = None
    server_ms: float | None = None  # waiting for the first byte (the server's time, on loopback)
    server_from_ms: float | None = None  # when that wait began (epoch ms)
    app_ms: float | None = None  # the app's own Server-Timing, where it sends one
    wire_bytes: int | None = None  # response headers + body as received (encoded), 0 when the cache answered
    body_bytes: int | None = None  # the body decoded
    from_cache: bool = False
    failed: str | None = None

    @property
    def is_callback(self) -> bool:
        return self.url.startswith("/_dash-update-component")

    @property
    def is_poll(self) -> bool:
        """The pages' poll for a new generation (dashboard/live.py), every 2 s whatever the page is drawing."""
        return self.url.startswith(POLL_PATH)

    @property
    def is_follow(self) -> bool:
        """A callback a new generation called (the page's redraw in place: its trigger is the page's follower)."""
        return self.is_callback and FOLLOWER in json.loads(self.body or "{}").get("changedPropIds", [""])[0]


@dataclass
class Step:
    name: str
    kind: str  # a key of READY
    url: str = ""  # where the browser was when it settled
    requests: list[Recorded] = field(default_factory=list)
    started_ms: float = 0.0
    settled_ms: float = 0.0
    error: str | None = None


class Recorder:
    """Listens to a page's network events; knows what is in flight."""

    def __init__(self, page):
        self.page = page
        self.requests: list[Recorded] = []
        self._open: dict = {}
        self.last_activity = time.time()
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_finished)
        page.on("requestfailed", self._on_failed)

    def _on_request(self, request):
        parsed = urlparse(request.url)
        if parsed.scheme not in ("http", "https"):
            return
        record = Recorded(request.method, parsed.path + (f"?{parsed.query}" if parsed.query else ""),
                          request.resource_type, dict(request.headers), request.post_data, time.time() * 1000)
        self.requests.append(record)
        self._open[request] = record
        self.last_activity = time.time()

    def _on_finished(self, request):
        record = self._open.pop(request, None)
        self.last_activity = time.time()
        if record is None:
            return
        record.end_ms = time.time() * 1000
        try:
            response = request.response()
            timing = request.timing
            if timing and timing.get("responseStart", -1) >= 0:
                record.start_ms = timing["startTime"]
                record.server_from_ms = timing["startTime"] + max(timing.get("requestStart", 0), 0)
                record.server_ms = timing["responseStart"] - max(timing.get("requestStart", 0), 0)
                if timing.get("responseEnd", -1) >= 0:
                    record.end_ms = timing["startTime"] + timing["responseEnd"]
            if response is not None:
                record.status = response.status
                headers = response.headers
                match = re.search(r"dur=([0-9.]+)", headers.get("server-timing", ""))
                record.app_ms = float(match.group(1)) if match else None
                sizes = request.sizes()
                record.body_bytes = 0
                if record.status != 304:
                    with contextlib.suppress(Exception):
                        record.body_bytes = len(response.body())
                # The cache answered: a body, none of it received (Playwright still reports the stored headers).
                record.from_cache = sizes["responseBodySize"] <= 0 and record.body_bytes > 0
                record.wire_bytes = 0 if record.from_cache else (sizes["responseBodySize"]
                                                                 + max(sizes["responseHeadersSize"], 0))
        except Exception as error:  # noqa: BLE001 (a closed page while a response was read: keep what is known)
            record.failed = record.failed or f"{type(error).__name__}: {error}"

    def _on_failed(self, request):
        record = self._open.pop(request, None)
        self.last_activity = time.time()
        if record is not None:
            record.end_ms = time.time() * 1000
            record.failed = request.failure or "failed"

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def wait_idle(self, timeout: float = STEP_TIMEOUT_S) -> None:
        """Until nothing has been in flight for :data:`QUIET_MS` (events are delivered while Playwright waits)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.page.wait_for_timeout(100)
            if not self._open and time.time() - self.last_activity >= QUIET_MS / 1000:
                return
        raise TimeoutError(f"network not idle after {timeout:.0f} s: {len(self._open)} requests in flight "
                           f"({', '.join(r.url[:80] for r in list(self._open.values())[:3])})")


# Installed in every document: the time of each animation frame (epoch ms), to tell when the last frame after the
# last answer was drawn.
FRAME_CLOCK = """
window.__frames = [];
(function tick() {
  window.__frames.push(performance.timeOrigin + performance.now());
  if (window.__frames.length > 5000) window.__frames.splice(0, 2500);
  requestAnimationFrame(tick);
})();
"""


def wait_ready(page, kind: str, timeout: float = STEP_TIMEOUT_S) -> None:
    selectors = READY[kind]
    page.wait_for_function(
        """selectors => selectors.every(s => { const e = document.querySelector(s);
             return e && (e.tagName === 'CANVAS' ? e.width > 0 : e.textContent.trim().length > 0); })""",
        arg=selectors, timeout=timeout * 1000, polling=100)


def settle(page, recorder: Recorder, kind: str, step: Step, timeout: float = STEP_TIMEOUT_S) -> None:
    """Wait until the page shows what it should, the network is idle and the map has drawn what it was sent;
    ``step.settled_ms`` is when its last long frame ended (epoch ms).

    Network idle alone is not enough: the map goes on drawing after the last answer (building tiles are parsed and
    drawn frames later, each a long frame with software WebGL), and a settle at the first idle moment missed those
    frames. So after the network is idle the page must also draw for :data:`RENDER_QUIET_MS` without a frame longer
    than :data:`LONG_FRAME_MS`; a request other than a callback started meanwhile starts the wait again."""
    wait_ready(page, kind, timeout)
    ready_at = time.time() * 1000
    deadline = time.time() + timeout
    while True:
        recorder.wait_idle(max(1.0, deadline - time.time()))
        ended = [r.end_ms for r in step.requests if r.end_ms]
        last_answer = max([ready_at, *ended])
        quiet_since = page.evaluate(RENDER_QUIET, [last_answer, LONG_FRAME_MS, RENDER_QUIET_MS,
                                                   max(1000, (deadline - time.time()) * 1000)])
        if quiet_since is None:
            raise TimeoutError(f"the page was still drawing long frames after {timeout:.0f} s")
        # A tile or a script asked for meanwhile may still be drawn: wait again. The pages' polls (a fetch every
        # 2 s, and the callbacks a new generation calls) come and go without a long frame and do not count: when
        # they did, a step lasted until a poll happened to fall before the quiet began (13 polls, 26 s a step; the
        # hotspots page never settled in 300 s).
        later = [r for r in step.requests if r.start_ms > quiet_since and not r.is_callback and not r.is_poll]
        if not recorder.in_flight and not later:
            step.settled_ms = quiet_since
            break
    step.url = page.url


POLL_PATH = "/api/generation"
FOLLOWER = "live-follower"  # dashboard/live.FOLLOWER: the store whose change calls a page's redraw
# Installed in every document: the pages' poll for a new generation is held (answered 503 in the page, which the
# poll takes for no change, without a request) while a step draws, and released once it settled to record one
# redraw (:func:`follow_once`). Without it, in live mode the map was redrawn every 2 s while a step drew: the
# settle waited for a quiet second between redraws and the hover before the click lost its tooltip (45-90 s a
# step), and the walk recorded a redraw per poll, which the load bench replayed back to back (20 in one step).
HOLD_POLLS = """
(function () {
  const fetched = window.fetch;
  window.__holdPolls = true;
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : input.url;
    if (window.__holdPolls && url.startsWith('%s')) { return Promise.resolve(new Response('', {status: 503})); }
    return fetched.apply(this, arguments);
  };
})();
""" % POLL_PATH
FOLLOW_TIMEOUT_S = 60.0  # the generation changes every second or two with the live stream on
LONG_FRAME_MS = 100  # a frame this long is the page still drawing (a software-WebGL map frame takes 0.2–2 s)
RENDER_QUIET_MS = 1000
# Resolves with the end of the last frame (after ``last``, the last answer) that followed a long one, once the page
# has drawn for ``quiet`` ms without a long frame; with the first frame after ``last`` when none was long; null after
# ``limit`` ms. window.__frames is FRAME_CLOCK's list of frame times.
RENDER_QUIET = """([last, long, quiet, limit]) => new Promise(done => {
  const began = performance.timeOrigin + performance.now();
  (function check() {
    const now = performance.timeOrigin + performance.now();
    const frames = window.__frames.filter(t => t > last);
    let settled = frames.length ? frames[0] : null;
    for (let i = 1; i < frames.length; i++) { if (frames[i] - frames[i - 1] > long) { settled = frames[i]; } }
    // Quiet is measured in frames drawn, not in time passed: a check can run after a long task, before its frame.
    if (settled !== null && frames[frames.length - 1] - Math.max(settled, last) >= quiet) { done(settled); return; }
    if (now - began > limit) { done(null); return; }
    setTimeout(check, 100);
  })();
})"""


def launch(playwright):
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"error: {CHROMIUM} not found (Debian package: chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def new_page(browser, base_url: str | None = None, account: tuple[str, str] | None = None):
    """A page in a new context, signed in to ``base_url`` as ``account`` when given (bench/signin.py)."""
    context = browser.new_context(viewport=VIEWPORT)
    if account is not None:
        sign_in_browser(context, base_url, account)
    context.add_init_script(FRAME_CLOCK)
    context.add_init_script(HOLD_POLLS)
    page = context.new_page()
    # Playwright's own 30 s default (a locator's bounding box, a click) is shorter than a cold city-scale map page
    # on a busy machine: every wait gets the step's budget.
    page.set_default_timeout(STEP_TIMEOUT_S * 1000)
    return context, page, Recorder(page)


@contextlib.contextmanager
def step_of(recorder: Recorder, steps: list[Step], name: str, kind: str) -> Iterator[Step]:
    """Collects the requests sent from the step's first action until it settles."""
    step = Step(name, kind, started_ms=time.time() * 1000)
    first = len(recorder.requests)
    try:
        yield step
    except Exception as error:  # noqa: BLE001 (the walk goes on; the step says what failed)
        step.error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    step.requests = recorder.requests[first:]
    steps.append(step)
    print(f"  {step.name:<44} {(step.settled_ms - step.started_ms) / 1000 if step.settled_ms else float('nan'):6.1f} s"
          f"  {len(step.requests):3d} requests" + (f"  FAILED {step.error}" if step.error else ""), flush=True)


HOVER_WAIT_MS = 4000  # per candidate point: deck.gl picks on the next frame, seconds later on a busy machine


def _candidate_points(feature: dict, count: int = 40) -> list[tuple[float, float]]:
    """Points inside ``feature`` (lon, lat) to try for a click: its label point first, then a grid of interior
    points, nearest the label point first."""
    import numpy as np
    from shapely.geometry import Point, shape
    geometry = shape(feature["geometry"])
    label = tuple(feature["properties"]["label_point"])
    minx, miny, maxx, maxy = geometry.bounds
    inner = geometry.buffer(-0.05 * min(maxx - minx, maxy - miny))  # away from the edges and the neighbours' outline
    inner = inner if not inner.is_empty else geometry
    grid = [(x, y) for x in np.linspace(minx, maxx, 12) for y in np.linspace(miny, maxy, 12)
            if inner.contains(Point(x, y))]
    grid.sort(key=lambda p: (p[0] - label[0]) ** 2 + (p[1] - label[1]) ** 2)
    return [label, *grid][:count]


def click_unit_on_map(page, service, code: str) -> None:
    """Click ``code`` where the city map draws it, as a hand does: move the pointer over a point of it (projected
    with the camera the server chose, on the canvas as the browser laid it out), and click only once deck.gl's own
    tooltip names the unit under the pointer: what the map picks there is the page's own answer, whatever the panel's
    size, the overlays or the layers drawn over the unit. Points inside the unit are tried in turn (the label point
    first); when none is confirmed, the label point is clicked anyway (the caller waits for the URL and tries again).
    """
    from dashboard.maps.deck import MAP_PAGE_INSETS, NOMINAL_MAP_SIZE, fit_view, project
    view = service.unit_view(None, "on_time_rate", "7d")
    feature = next(f for f in view.children_geojson["features"] if f["properties"]["code"] == code)
    names = [n for n in (feature["properties"].get("name"), feature["properties"].get("name_zh")) if n]
    canvas = page.locator("canvas").first.bounding_box()
    width, height = canvas["width"], canvas["height"]
    camera = fit_view(view.bounds, NOMINAL_MAP_SIZE, **MAP_PAGE_INSETS)
    # The camera's centre and zoom hold for any canvas size: project onto the canvas the browser really drew.
    free = [(x, y) for x, y in (project(camera, lon, lat, (width, height)) for lon, lat in _candidate_points(feature))
            if MAP_PAGE_INSETS["left"] + 8 < x < width - 8 and 8 < y < height - MAP_PAGE_INSETS["bottom"] - 8]
    label_xy = project(camera, *feature["properties"]["label_point"], (width, height))
    for tried, (x, y) in enumerate(free or [label_xy], 1):
        page.mouse.move(canvas["x"] + x - 5, canvas["y"] + y - 5)
        page.mouse.move(canvas["x"] + x, canvas["y"] + y)
        try:
            page.wait_for_function(
                """names => { const tip = document.querySelector('.deck-tooltip');
                     return !!tip && tip.offsetParent !== null && names.some(n => tip.textContent.includes(n)); }""",
                arg=names, timeout=HOVER_WAIT_MS, polling=100)
        except Exception:  # noqa: BLE001 (playwright's TimeoutError: something else, or nothing yet, is under it)
            continue
        page.mouse.click(canvas["x"] + x, canvas["y"] + y)
        print(f"    the map's tooltip named {code} under the pointer at ({x:.0f}, {y:.0f}) of the {width:.0f}×{height:.0f} "
              f"canvas (point {tried} of {len(free)}); clicked", flush=True)
        return
    print(f"    no point of {code} was confirmed under the pointer by the map's tooltip "
          f"({len(free)} tried); clicking its label point", flush=True)
    x, y = label_xy
    page.mouse.move(canvas["x"] + x, canvas["y"] + y)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    page.mouse.click(canvas["x"] + x, canvas["y"] + y)


def follow_first_rank_link(page) -> str:
    """Click the ranking's first row; the unit (or building) it leads to."""
    link = page.locator(".rank-row").first
    href = link.get_attribute("href") or ""
    query = parse_qs(urlparse(href).query)
    target = (query.get("building") or query.get("unit") or [""])[0]
    link.click()
    return target


def wait_for_unit(page, attribute: str, value: str, timeout: float = STEP_TIMEOUT_S) -> None:
    # A function, not an expression string: Playwright evaluates a string with eval, which the CSP refuses.
    page.wait_for_function(
        "([attribute, value]) => document.querySelector('#unit-title')?.dataset[attribute] === value",
        arg=[attribute, value], timeout=timeout * 1000, polling=100)


CLICK_ATTEMPTS = 4

OTHER_PAGES = [("wall", "/wall", "wall"), ("work orders", "/orders", "orders"),
               ("supervision board", "/supervision", "supervision"), ("catalogue", "/catalogue", "catalogue"),
               ("hotspots", "/hotspots", "hotspots")]


def follow_once(page, recorder: Recorder, step: Step, timeout: float = FOLLOW_TIMEOUT_S) -> None:
    """In live mode, once a map step settled: the page's polls released until a new generation has called its
    redraw and the redraw was answered, then held again; the redraw's requests are the step's (``is_follow``: the
    load bench sends them at the pace of the polls, not in the walk)."""
    first = len(recorder.requests)
    page.evaluate("window.__holdPolls = false")
    try:
        deadline = time.time() + timeout
        while not any(r.is_follow and r.end_ms for r in recorder.requests[first:]):
            if time.time() > deadline:
                raise TimeoutError(f"no redraw for a new generation within {timeout:.0f} s")
            page.wait_for_timeout(100)
        recorder.wait_idle()
    finally:
        page.evaluate("window.__holdPolls = true")


def walk(page, recorder: Recorder, base_url: str, service, other_pages: bool = True) -> list[Step]:
    """The drill path and the other pages (see the module docstring), each step settled before the next; in live
    mode each map step then records the redraw a new generation calls (:func:`follow_once`)."""
    steps: list[Step] = []
    with step_of(recorder, steps, "city", "map") as step:
        page.goto(base_url + "/", wait_until="commit")
        settle(page, recorder, "map", step)
        live = page.request.get(base_url + POLL_PATH).json().get("mode") == "live"  # not one of the page's requests
        if live:
            follow_once(page, recorder, step)
    with step_of(recorder, steps, f"click {FUTIAN} on the map", "map") as step:
        for attempt in range(1, CLICK_ATTEMPTS + 1):
            # On a loaded machine deck.gl may not have picked anything yet under the pointer: click again.
            click_unit_on_map(page, service, FUTIAN)
            try:
                wait_for_unit(page, "unit", FUTIAN, timeout=30 if attempt < CLICK_ATTEMPTS else STEP_TIMEOUT_S)
                break
            except Exception:  # noqa: BLE001 (playwright's TimeoutError)
                if attempt == CLICK_ATTEMPTS:
                    raise
                print(f"    the click on {FUTIAN} did not land (attempt {attempt}); again", flush=True)
        settle(page, recorder, "map", step)
        if live:
            follow_once(page, recorder, step)
    for level in ("street", "community", "grid cell", "building"):
        with step_of(recorder, steps, f"{level} (ranking link)", "map") as step:
            target = follow_first_rank_link(page)
            wait_for_unit(page, "building" if level == "building" else "unit", target)
            settle(page, recorder, "map", step)
            step.name = f"{level} {target}"
            if live:
                follow_once(page, recorder, step)
    if other_pages:
        for name, path, kind in OTHER_PAGES:
            with step_of(recorder, steps, name, kind) as step:
                page.goto(base_url + path, wait_until="commit")
                settle(page, recorder, kind, step)
    return steps


@contextlib.contextmanager
def serving(app, threads: int = 8) -> Iterator[str]:
    """``app`` served by waitress (as app.py serves it) on a free loopback port, in this process."""
    import waitress
    server = waitress.create_server(app.server, host="127.0.0.1", port=0, threads=threads, ident="citytwin")
    thread = threading.Thread(target=server.run, daemon=True, name="bench-server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()


def capture(base_url: str, service) -> list[Step]:
    """Walk the pages once in Chromium; the steps with their requests."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context, page, recorder = new_page(browser, base_url, bench_account(service.store))
            steps = walk(page, recorder, base_url, service)
            context.close()
        finally:
            browser.close()
    failed = [s for s in steps if s.error]
    if failed:
        # A step that timed out on a loaded machine is reported and left out of the replays (load.plan); the
        # bodies bench/run.py needs must be there, or nothing after the capture would mean anything.
        print("  WARNING: the capture walk failed at: " + "; ".join(f"{s.name}: {s.error}" for s in failed),
              flush=True)
    try:
        page_callback(steps), map_click(steps)
    except LookupError as missing:
        raise RuntimeError(f"the capture lacks what the benches replay: {missing}") from None
    return steps


def save(steps: list[Step], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(s) for s in steps], ensure_ascii=False, indent=1))


def load(path: Path) -> list[Step]:
    steps = []
    for raw in json.loads(Path(path).read_text()):
        requests = [Recorded(**r) for r in raw.pop("requests")]
        steps.append(Step(**raw, requests=requests))
    return steps


# --- what the other benches take from a capture -----------------------------------------------------------------------

def callback_bodies(steps: list[Step]) -> list[dict]:
    return [json.loads(r.body) for s in steps for r in s.requests if r.is_callback and r.body]


def json_objects(value) -> Iterator[dict]:
    """Every object (dict) anywhere in a decoded JSON value, outermost first (a callback's answer, say)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))


def page_callback(steps: list[Step]) -> dict:
    """The body the renderer posts when the URL changes (the page layout callback), as captured."""
    for body in callback_bodies(steps):
        if "_pages_content.children" in body["output"]:
            return body
    raise LookupError("no page callback in the capture")


def page_request(template: dict, search: str, pathname: str = "/") -> dict:
    """The captured page callback body for another URL: the location's pathname and search replaced."""
    body = json.loads(json.dumps(template))
    for item in body.get("inputs", []) + body.get("state", []):
        if isinstance(item, dict) and item.get("id") == "_pages_location":
            if item["property"] == "pathname":
                item["value"] = pathname
            elif item["property"] == "search":
                item["value"] = search
            elif item["property"] == "href":
                item["value"] = f"http://127.0.0.1{pathname}{search}"
    return body


def map_click(steps: list[Step]) -> dict:
    """The body posted when a unit was clicked on the map (the click on Futian), as captured: deck.gl's
    ``clickInfo`` or the unit assets/map_click.js picked (``map-pick``), whichever the browser sent."""
    clicks = {("city-map", "clickInfo"), ("map-pick", "data")}
    for body in callback_bodies(steps):
        clicked = [i for i in body.get("inputs", [])
                   if isinstance(i, dict) and isinstance(i.get("id"), str)  # a pattern-matching id is a dict
                   and (i["id"], i.get("property")) in clicks and i.get("value")]
        if body["output"] == "map-goto.data" and clicked:  # overview.navigate
            return body
    raise LookupError("no map click in the capture")


_captured: dict = {}


def captured_for(app, saved: Path | None = None) -> list[Step]:
    """The walk's steps for ``app`` (created in this process): read from ``saved`` if that file exists (written by
    an earlier bench of the same ``make bench``), else captured now, by serving the app on a free port (and saved
    there when given)."""
    global _page_template
    if saved is not None and Path(saved).exists():
        steps = load(saved)
        _page_template = page_callback(steps)
        return steps
    if id(app) not in _captured:
        from dashboard import services
        print("capturing the browser's requests (Chromium walks the pages once):", flush=True)
        with serving(app) as base_url:
            _captured[id(app)] = capture(base_url, services.get())
        if saved is not None:
            save(_captured[id(app)], Path(saved))
    _page_template = page_callback(_captured[id(app)])
    return _captured[id(app)]


_page_template: dict | None = None


def pages_request(search: str, pathname: str = "/") -> dict:
    """The page callback's body for a URL, from the capture (:func:`captured_for` first)."""
    if _page_template is None:
        raise RuntimeError("no capture yet: call capture.captured_for(app) after creating the app")
    return page_request(_page_template, search, pathname)


def summary(steps: list[Step]) -> str:
    """Per step: requests (callbacks), bytes received (compressed, 0 for what the cache answered) and the same
    bodies decoded (what went over the wire before compression), seconds to settle; Markdown."""
    lines = ["| step | requests (callbacks) | received kB | decoded kB | settled s |", "|---|---|---:|---:|---:|"]
    for step in steps:
        wire = sum(r.wire_bytes or 0 for r in step.requests)
        plain = sum((r.body_bytes or 0) for r in step.requests if not r.from_cache)
        lines.append(f"| {step.name} | {len(step.requests)} ({sum(r.is_callback for r in step.requests)}) | "
                     f"{wire / 1000:,.0f} | {plain / 1000:,.0f} | "
                     + (f"failed: {step.error[:60]} |" if step.error else
                        f"{(step.settled_ms - step.started_ms) / 1000:.1f} |"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="start the app in this process on this city")
    parser.add_argument("--base-url", help="or walk a server already running (its city must be readable here too)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("CITYTWIN_ESCALATION_MINUTES", "0")  # a bench never writes to the city it measures
    from dashboard import services
    if args.base_url:
        service = services.configure(args.database_url) if args.database_url else None
        if service is None:
            raise SystemExit("error: --base-url needs --database-url too (to find where the map draws Futian)")
        steps = capture(args.base_url.rstrip("/"), service)
    else:
        from app import create_app
        app = create_app(args.database_url)
        with serving(app) as base_url:
            steps = capture(base_url, services.get())
    save(steps, args.out)
    print(summary(steps))
    print(f"{sum(len(s.requests) for s in steps)} requests in {len(steps)} steps → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
