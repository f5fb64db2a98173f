"""Many users at once: simulated users replay the browser's real requests on the drill path against a running server.

    .venv/bin/python bench/load.py --base-url http://127.0.0.1:8050                  # 10, 25, 50 users, then the ceiling
    .venv/bin/python bench/load.py --base-url ... --users 10 --duration 30 --closed-users 0

The requests are those Chromium sent walking the pages (bench/capture.py; bench/run.py saves them in
data/bench-capture.json): the city's map, the click on Futian, its first street, community, grid cell and building
— the same URLs, headers and callback bodies, replayed verbatim (``If-None-Match`` included, so a revalidation is
answered 304 as the browser's was). Static files are cached as a browser caches them: a user's first visit fetches
everything the browser fetched cold; after that, what the browser answered from its cache is not sent, and on the
city page again the scripts, style sheets and images are not either.

A user walks the path step by step, pausing ``--pause`` seconds (5, as a person reads) between steps, and starts
again at the city. Within a step, requests go as the browser sent them: those the browser had in flight together go
together (up to 6 at once, Chromium's limit per host), the others after them (a callback that waits for the page's
answer). Users start spread over the first pause. Each level runs ``--duration`` seconds; what is still running then
finishes. Reported: p50/p95/max over all requests, over callbacks and over tiles, the slowest step (a whole page
visit), requests per second, errors (a status ≥ 400 or no answer). Then the closed loop: ``--closed-users`` users
with no pause, for the ceiling in requests per second.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import capture  # noqa: E402  (bench/ is on the path as the script's folder)
from signin import bench_account, signed_in_session  # noqa: E402

PER_HOST = 6  # Chromium's connections per host
POLL_SECONDS = 2.0  # dashboard/live.POLL_SECONDS
STATIC_TYPES = {"script", "stylesheet", "image", "font", "other"}
DROPPED_HEADERS = {"host", "content-length", "connection", "cookie"}  # requests sets its own
# The capture's server ran on another port: a Referer or Origin naming it is another site to the server under load,
# whose same-origin check (dashboard/auth) refuses every callback with 403.
REHOMED_HEADERS = {"origin", "referer"}


def rehome(value: str, base_url: str) -> str:
    """``value`` (an Origin or a Referer URL) on ``base_url``'s scheme, host and port, its path kept."""
    from urllib.parse import urlparse
    parsed, base = urlparse(value), urlparse(base_url)
    return parsed._replace(scheme=base.scheme, netloc=base.netloc).geturl() if parsed.netloc else value


@dataclass
class Sample:
    seconds: float
    status: int
    callback: bool
    tile: bool
    error: str | None = None
    kind: str = ""  # what was asked (:func:`kind_of`): the breakdown of where the slow requests are
    app_ms: float | None = None  # the app's own time (its Server-Timing): the rest is queueing, network, client


def server_timing_ms(header: str | None) -> float | None:
    """The ``app;dur=<ms>`` of a Server-Timing header (dashboard/delivery.py), or None."""
    for metric in (header or "").split(","):
        name, _, rest = metric.strip().partition(";")
        if name == "app" and rest.startswith("dur="):
            try:
                return float(rest[4:])
            except ValueError:
                return None
    return None


def kind_of(recorded: capture.Recorded) -> str:
    """A short name for what a request asks: a callback's output, a tile, a static file, the poll, a page's path."""
    if recorded.is_callback:
        output = json.loads(recorded.body or "{}").get("output", "?")
        return "callback " + (output if len(output) <= 60 else output[:57] + "...")
    if recorded.is_poll:
        return "poll"
    if recorded.url.startswith("/tiles/"):
        return "tile"
    if recorded.resource_type in STATIC_TYPES:
        return "static"
    return recorded.method + " " + recorded.url.split("?", 1)[0]


def waves(step_requests: list[capture.Recorded]) -> list[list[capture.Recorded]]:
    """The step's requests in the groups the browser had in flight together: a request joins the current group
    if it started before every request of that group ended, else it waited for them and starts a new one."""
    groups: list[list[capture.Recorded]] = []
    group_end = None
    for request in sorted(step_requests, key=lambda r: r.start_ms):
        if groups and group_end is not None and request.start_ms < group_end:
            groups[-1].append(request)
            group_end = max(group_end, request.end_ms or request.start_ms)
        else:
            groups.append([request])
            group_end = request.end_ms or request.start_ms
    return groups


@dataclass
class Walk:
    """A user's walk of the drill path: each step's waves of requests, and the redraw a new generation calls on its
    page (the captured ``is_follow`` callbacks; none in replay mode)."""
    steps: list[list[list[capture.Recorded]]]
    follows: list[list[capture.Recorded]]


def plan(steps: list[capture.Step]) -> tuple[Walk, Walk]:
    """The drill path's steps as waves of requests: for a user's first walk, and for every walk after it. The polls
    and the redraws they call are not in the waves: a user sends them at the pace of the polls (:meth:`User.pause`)."""
    drill = [s for s in steps if s.kind == "map" and not s.error]  # a step that failed in the capture is left out
    first, again = Walk([], []), Walk([], [])
    for index, step in enumerate(drill):
        sent = [r for r in step.requests if not r.from_cache and not r.failed and r.status is not None]
        follows = list({json.loads(r.body)["output"]: r for r in sent if r.is_follow}.values())
        sent = [r for r in sent if not r.is_poll and not r.is_follow]
        first.steps.append(waves(sent))
        if index == 0:  # the city again: the browser keeps what it loaded the first time
            sent = [r for r in sent if r.resource_type not in STATIC_TYPES]
        again.steps.append(waves(sent))
        first.follows.append(follows)
        again.follows.append(follows)
    return first, again


POLL = capture.Recorded("GET", capture.POLL_PATH, "fetch", {"Accept": "*/*"}, None, 0.0)


def drawn_key(answer: dict) -> str | None:
    """The generation a page answer was drawn from: the data of its follower store (dashboard/live.follower)."""
    return next((node["props"].get("data") for node in capture.json_objects(answer)
                 if isinstance(node.get("props"), dict) and isinstance(node["props"].get("id"), dict)
                 and node["props"]["id"].get("type") == capture.FOLLOWER), None)


class User(threading.Thread):
    def __init__(self, base_url: str, first, again, pause: float, delay: float, stop: threading.Event,
                 samples: list, steps: list, account: tuple[str, str]):
        super().__init__(daemon=True)
        self.base_url, self.first, self.again, self.pause_seconds, self.delay = base_url, first, again, pause, delay
        self.key: str | None = None  # the generation the page on screen was drawn from
        self.next_poll = 0.0
        self.stop, self.samples, self.steps = stop, samples, steps
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=PER_HOST)
        self.session.mount("http://", adapter)
        self.account = account  # each user signs in once, as a person does, before the first step
        self.pool = ThreadPoolExecutor(PER_HOST)

    def send(self, recorded: capture.Recorded) -> Sample:
        sample, response = self.exchange(recorded)
        if response is not None and response.ok and recorded.is_callback and "_pages_content" in (recorded.body or ""):
            self.key = drawn_key(response.json()) or self.key  # the page's generation: the polls compare with it
        return sample

    def exchange(self, recorded: capture.Recorded):
        headers = {k: v for k, v in recorded.headers.items() if k.lower() not in DROPPED_HEADERS}
        headers = {k: rehome(v, self.base_url) if k.lower() in REHOMED_HEADERS else v for k, v in headers.items()}
        started = time.perf_counter()
        try:
            response = self.session.request(recorded.method, self.base_url + recorded.url, headers=headers,
                                             data=recorded.body.encode() if recorded.body else None, timeout=120)
            response.content  # noqa: B018 (read to the end, as the browser does)
            error = None if response.status_code < 400 else f"{response.status_code} {recorded.url[:80]}"
            status = response.status_code
            app_ms = server_timing_ms(response.headers.get("Server-Timing"))
        except requests.RequestException as failure:
            status, error, response, app_ms = 0, f"{type(failure).__name__} {recorded.url[:80]}", None, None
        return Sample(time.perf_counter() - started, status, recorded.is_callback,
                      recorded.url.startswith("/tiles/"), error, kind_of(recorded), app_ms), response

    def pause(self, follows: list[capture.Recorded]) -> bool:
        """A person reading the page for ``self.pause_seconds``: the page polls for a new generation every
        :data:`POLL_SECONDS` (on every page, as the shell does) and, when the key changed from the one the page was
        drawn from, sends the redraw it calls. True when the level ended meanwhile."""
        end = time.perf_counter() + self.pause_seconds
        while True:
            if self.stop.wait(max(0.0, min(self.next_poll, end) - time.perf_counter())):
                return True
            if time.perf_counter() >= end:
                return False
            self.next_poll = max(self.next_poll + POLL_SECONDS, time.perf_counter())
            sample, response = self.exchange(POLL)
            self.samples.append(sample)
            key = response.json().get("generation") if response is not None and response.ok else None
            if follows and key and self.key and key != self.key:
                self.key = key
                self.samples.extend(self.pool.map(self.send, follows))

    def run(self):
        if self.stop.wait(self.delay):
            return
        signed_in_session(self.base_url, self.account, self.session)
        walk = self.first
        self.next_poll = time.perf_counter() + POLL_SECONDS
        while not self.stop.is_set():
            for step, follows in zip(walk.steps, walk.follows):
                started = time.perf_counter()
                for wave in step:
                    self.samples.extend(self.pool.map(self.send, wave))
                self.steps.append(time.perf_counter() - started)
                if self.stop.is_set() or (self.pause_seconds and self.pause(follows)):
                    break
            walk = self.again
        self.pool.shutdown()


def percentile(values, q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def level(base_url: str, first, again, users: int, pause: float, duration: float,
          account: tuple[str, str]) -> dict:
    stop = threading.Event()
    samples: list[Sample] = []
    steps: list[float] = []
    spread = pause or 1.0
    crowd = [User(base_url, first, again, pause, spread * i / users, stop, samples, steps, account)
             for i in range(users)]
    started = time.perf_counter()
    for user in crowd:
        user.start()
    time.sleep(duration)
    stop.set()
    for user in crowd:
        user.join(timeout=300)
    elapsed = time.perf_counter() - started
    all_ms = [s.seconds * 1000 for s in samples]
    callbacks = [s.seconds * 1000 for s in samples if s.callback]
    tiles = [s.seconds * 1000 for s in samples if s.tile]
    errors = [s.error for s in samples if s.error]
    return {"users": users, "pause": pause, "seconds": elapsed, "requests": len(samples),
            "rps": len(samples) / elapsed, "errors": len(errors), "error_examples": sorted(set(errors))[:5],
            "p50": percentile(all_ms, 50), "p95": percentile(all_ms, 95), "max": max(all_ms, default=float("nan")),
            "callbacks": len(callbacks), "cb_p50": percentile(callbacks, 50), "cb_p95": percentile(callbacks, 95),
            "cb_max": max(callbacks, default=float("nan")), "tile_p95": percentile(tiles, 95),
            "steps": len(steps), "step_p95": percentile([s * 1000 for s in steps], 95),
            "kinds": breakdown(samples, percentile(all_ms, 95))}


def breakdown(samples: list[Sample], p95_ms: float) -> list[tuple]:
    """Per kind of request: count, p50, p95, max (ms), how many of the requests slower than the overall p95 it
    holds — where the tail is — and the p95 of the app's own time (Server-Timing) for them: the rest of a slow
    request's time was spent waiting for a thread, on the wire or in the client. The kinds holding most of the
    tail first."""
    kinds: dict[str, list[Sample]] = {}
    for sample in samples:
        kinds.setdefault(sample.kind, []).append(sample)
    rows = []
    for kind, those in kinds.items():
        ms = [s.seconds * 1000 for s in those]
        app = [s.app_ms for s in those if s.app_ms is not None]
        rows.append((kind, len(ms), percentile(ms, 50), percentile(ms, 95), max(ms), sum(m > p95_ms for m in ms),
                     percentile(app, 95)))
    return sorted(rows, key=lambda row: (-row[5], -row[3]))


def show(result: dict, verbose: bool = False) -> None:
    print(f"  {result['users']:>3} users, pause {result['pause']:.0f} s: {result['requests']:,} requests in "
          f"{result['seconds']:.0f} s ({result['rps']:.1f}/s), {result['errors']} errors; all p50 "
          f"{result['p50']:.0f} / p95 {result['p95']:.0f} / max {result['max']:.0f} ms; callbacks "
          f"({result['callbacks']:,}) p95 {result['cb_p95']:.0f} / max {result['cb_max']:.0f} ms; tiles p95 "
          f"{result['tile_p95']:.0f} ms; page visit ({result['steps']:,}) p95 {result['step_p95']:.0f} ms", flush=True)
    for example in result["error_examples"]:
        print(f"      error: {example}")
    if verbose:
        print(f"      {'kind of request':<72} {'count':>6} {'p50':>6} {'p95':>6} {'max':>6} {'> p95':>6} "
              f"{'app p95':>7}")
        for kind, count, p50, p95, longest, over, app_p95 in result["kinds"]:
            print(f"      {kind:<72} {count:>6} {p50:>6.0f} {p95:>6.0f} {longest:>6.0f} {over:>6} {app_p95:>7.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--capture", type=Path, default=ROOT / "data" / "bench-capture.json")
    parser.add_argument("--users", default="10,25,50", help="comma-separated user counts")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between a user's steps")
    parser.add_argument("--duration", type=float, default=90.0, help="seconds per level")
    parser.add_argument("--closed-users", type=int, default=8, help="users of the closed loop (0: none)")
    parser.add_argument("--closed-duration", type=float, default=45.0)
    parser.add_argument("--database-url", help="the served city's store: the bench makes its own admin account there "
                                               "(bench/signin.py) and every simulated user signs in with it")
    parser.add_argument("--account", help="NAME:PASSWORD of an existing account instead")
    parser.add_argument("--by-kind", action="store_true",
                        help="also print each kind of request's p50/p95/max and its share of the slow tail")
    args = parser.parse_args(argv)
    if args.account and ":" in args.account:
        account = tuple(args.account.split(":", 1))
    elif args.database_url:
        from layers.store import Store
        account = bench_account(Store(args.database_url))
    else:
        raise SystemExit("error: the users must sign in: give --database-url (of the served city) or "
                         "--account NAME:PASSWORD")
    if not args.capture.exists():
        raise SystemExit(f"error: no {args.capture}; capture the browser's requests first: "
                         f".venv/bin/python bench/capture.py --base-url {args.base_url} --database-url … "
                         f"--out {args.capture} (or make bench)")
    first, again = plan(capture.load(args.capture))
    base_url = args.base_url.rstrip("/")
    print(f"citytwin load bench — {base_url}; drill path of {len(first.steps)} steps, "
          f"{sum(len(w) for s in first.steps for w in s)} requests the first walk, "
          f"{sum(len(w) for s in again.steps for w in s)} after; polls every {POLL_SECONDS:.0f} s while a user "
          f"reads, and on a new generation the page's redraw ({sum(map(len, first.follows))} callbacks "
          f"over the walk)", flush=True)
    results = []
    for users in [int(u) for u in args.users.split(",") if u.strip()]:
        results.append(level(base_url, first, again, users, args.pause, args.duration, account))
        show(results[-1], args.by_kind)
    if args.closed_users:
        results.append(level(base_url, first, again, args.closed_users, 0.0, args.closed_duration, account))
        print("  closed loop (no pause): the ceiling", flush=True)
        show(results[-1], args.by_kind)
    print("\nMarkdown (README):\n")
    print("| users | pause s | requests | req/s | errors | p95 all ms | p95 callbacks ms | max callback ms | "
          "p95 tiles ms | p95 page visit ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['users']} | {r['pause']:.0f} | {r['requests']:,} | {r['rps']:.1f} | {r['errors']} | "
              f"{r['p95']:.0f} | {r['cb_p95']:.0f} | {r['cb_max']:.0f} | {r['tile_p95']:.0f} | "
              f"{r['step_p95']:.0f} |")
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
