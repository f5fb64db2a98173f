"""The database fails while people use the dashboard: killed, stopped and frozen for 20 s each, on a PostgreSQL this
test starts itself, with ``app.py`` serving over it.

During the whole run a bounded load goes on: people browsing (``GET /``, a stylesheet, the map page's layout callback,
``GET /health``), citizens' applications posting Open311 requests, and operators dispatching orders through the
order page's callback. Every request is counted: sent, acknowledged (201, or "Done"), refused as not stored (503),
or answered "outcome unknown". Then the store is read back and compared:

- nothing lost: every acknowledged request is stored; every stored one was acknowledged or answered "unknown" (never
  "not stored");
- nothing half-written: every order has its log, and its version equals its number of log rows;
- no 500 and no request left waiting: every answer is one of the expected ones, within a few seconds;
- ``GET /`` and the stylesheet answer 200 while the database is frozen;
- pages say "(store unavailable)" during the outage, and writes are accepted again within 5 s of the database's
  return.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from dashboard import ids
from dashboard.components.order_views import ACTION_BUTTON
from dashboard.open311 import DEV_KEY
from layers.store import METADATA, Store
from sample_data.__main__ import build

from conftest import APP_LOGS, _admin_engine, _free_port, _missing, _postgres_bin_dir, _run, run_app_server

OUTAGE_SECONDS = 20
CALM_SECONDS = 6
RECOVERY_SECONDS = 5
REQUEST_TIMEOUT = 20          # a client that waits this long has met a hung server: counted as a failure
SLOW_SECONDS = 10             # no answer may take longer: a request waiting on the database would wait the whole
                              # 20 s outage (the request budget is 2 s; the rest is room for a machine shared by many)
POSTERS, BROWSERS, OPERATORS = 3, 3, 2
PAUSE = 0.15                  # between one client's requests (bounded load, not a flood)
POINT = None                  # (lat, long) inside the city, set by the fixture


# --- a PostgreSQL this test may kill ------------------------------------------------------------------------------

class Postgres:
    """A private cluster on a fixed port, with the four things that can happen to a database server."""

    def __init__(self):
        self.bindir = _postgres_bin_dir()
        if self.bindir is None:
            _missing("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (Debian: postgresql)")
        self.as_user = "postgres" if os.geteuid() == 0 else None
        self.base = tempfile.mkdtemp(prefix="citytwin-faults-", dir="/tmp")
        self.data = os.path.join(self.base, "data")
        self.log = os.path.join(self.base, "postgres.log")
        self.port = _free_port()
        if self.as_user:
            import pwd

            user = pwd.getpwnam(self.as_user)
            os.chown(self.base, user.pw_uid, user.pw_gid)
        os.chmod(self.base, 0o700)
        _run([str(self.bindir / "initdb"), "-D", self.data, "--username=postgres", "--auth=trust",
              "--encoding=UTF8", "--locale=C", "--no-sync"], as_user=self.as_user, cwd=self.base, what="initdb")
        self.start()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/citytwin_faults"
        admin = _admin_engine(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE citytwin_faults")
        admin.dispose()
        admin = _admin_engine(self.url)
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        admin.dispose()

    def _ctl(self, *args: str) -> None:
        _run([str(self.bindir / "pg_ctl"), "-D", self.data, *args], as_user=self.as_user, cwd=self.base,
             what=f"pg_ctl {args[-1]}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", self.log, "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """A clean shutdown (``pg_ctl stop``, fast mode: connections are closed by the server)."""
        self._ctl("-m", "fast", "-w", "stop")

    def processes(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = int(Path(self.data, "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster, *map(int, children)]

    def signal_all(self, signum: int) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self) -> None:
        """A crash: every server process killed at once (SIGKILL); the next start recovers from the log."""
        pids = self.processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.05)

    def freeze(self) -> None:
        # Twice: a backend the postmaster was forking during the first pass is caught by the second (the
        # postmaster, stopped by then, forks no more).
        for _ in range(2):
            self.signal_all(signal.SIGSTOP)
            time.sleep(0.2)

    def thaw(self) -> None:
        self.signal_all(signal.SIGCONT)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.thaw()
        subprocess.run((["runuser", "-u", self.as_user, "--"] if self.as_user else [])
                       + [str(self.bindir / "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


# --- the load -----------------------------------------------------------------------------------------------------

@dataclass
class Answer:
    kind: str                 # page, static, health, callback, post, act
    sent_at: float
    seconds: float
    status: int               # HTTP status, 0 for no answer
    outcome: str = ""         # post/act: acked, not_stored, unknown, refused, …
    order_id: str | None = None
    tag: str = ""             # what identifies the write in the store (description / actor)


@dataclass
class Load:
    base: str
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked_orders: list[str] = field(default_factory=list)
    counter: itertools.count = field(default_factory=itertools.count)

    def record(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)
            if answer.kind == "post" and answer.outcome == "acked":
                self.acked_orders.append(answer.order_id)

    def session(self) -> requests.Session:
        """A browser of its own, signed in as the test's account (the access layer gates every page)."""
        session = requests.Session()
        session.trust_env = False  # never through a proxy
        session.cookies.update(self.base.http.cookies)
        session.headers["Origin"] = str(self.base)
        return session

    def timed(self, kind: str, call) -> tuple[Answer, requests.Response | None]:
        started = time.time()
        try:
            response = call()
        except requests.RequestException as error:
            return Answer(kind, started, time.time() - started, 0, outcome=f"no answer: {error!r}"[:200]), None
        return Answer(kind, started, time.time() - started, response.status_code), response

    # one person browsing
    def browse(self, dependencies: dict) -> None:
        session = self.session()
        page_body = {
            "output": ".._pages_content.children..._pages_store.data..",
            "outputs": [{"id": "_pages_content", "property": "children"}, {"id": "_pages_store", "property": "data"}],
            "inputs": [{"id": "_pages_location", "property": "pathname", "value": "/"},
                       {"id": "_pages_location", "property": "search", "value": ""}],
            "changedPropIds": ["_pages_location.pathname"],
        }
        steps = itertools.cycle([
            ("page", lambda: session.get(self.base + "/", timeout=REQUEST_TIMEOUT)),
            ("static", lambda: session.get(self.base + "/assets/theme.css", timeout=REQUEST_TIMEOUT)),
            ("callback", lambda: session.post(self.base + "/_dash-update-component", json=page_body,
                                              timeout=REQUEST_TIMEOUT)),
            ("health", lambda: session.get(self.base + "/health", timeout=REQUEST_TIMEOUT)),
        ])
        while not self.stop.is_set():
            kind, call = next(steps)
            answer, response = self.timed(kind, call)
            if response is not None and kind == "callback" and response.status_code == 200:
                answer.outcome = "notice" if "(store unavailable)" in response.text else "fresh"
            if response is not None and kind == "health" and response.status_code == 200:
                answer.outcome = "up" if response.json()["parts"]["store"]["up"] else "down"
            self.record(answer)
            time.sleep(PAUSE)

    # one citizens' application
    def post(self) -> None:
        session = self.session()
        lat, lon = POINT
        while not self.stop.is_set():
            tag = f"fault-test post {next(self.counter)}"
            form = {"api_key": DEV_KEY, "service_code": "garbage_overflow", "lat": f"{lat:.6f}",
                    "long": f"{lon:.6f}", "description": tag}
            answer, response = self.timed("post", lambda: session.post(
                self.base + "/open311/v2/requests.json", data=form, timeout=REQUEST_TIMEOUT))
            answer.tag = tag
            if response is not None:
                if response.status_code == 201:
                    answer.outcome, answer.order_id = "acked", response.json()[0]["service_request_id"]
                elif response.status_code == 503:
                    answer.outcome = response.headers.get("X-Citytwin-Outcome", "?")
                    answer.order_id = response.headers.get("X-Citytwin-Service-Request-Id")
                    assert response.headers.get("Retry-After"), "a 503 says when to try again"
                else:
                    answer.outcome = f"refused: {response.text[:200]}"
            self.record(answer)
            time.sleep(PAUSE)

    # one operator, dispatching orders the applications filed
    def operate(self, number: int, act_output: str) -> None:
        session = self.session()
        done: set[str] = set()
        while not self.stop.is_set():
            with self.lock:
                waiting = [o for o in self.acked_orders if o not in done and hash(o) % OPERATORS == number]
            if not waiting:
                time.sleep(PAUSE)
                continue
            order_id = waiting[0]
            actor = f"operator {number} #{next(self.counter)}"
            button = {"action": "dispatch", "type": ACTION_BUTTON}
            body = {
                "output": act_output,
                "outputs": [{"id": part.split(".")[0], "property": part.split(".")[1]}
                            for part in act_output.strip(".").split("...")],
                "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
                "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
                "state": [
                    {"id": ids.ORDER_STATE, "property": "data",
                     "value": {"order_id": order_id, "version": 1, "lang": "en", "status": "received",
                               "department": ""}},
                    # the actor is the signed-in account (the access layer): the note tells the writes apart
                    {"id": ids.ORDER_NOTE, "property": "value", "value": actor},
                    {"id": ids.ORDER_DEPARTMENT, "property": "value", "value": None},
                ],
            }
            answer, response = self.timed("act", lambda: session.post(
                self.base + "/_dash-update-component", json=body, timeout=REQUEST_TIMEOUT))
            answer.order_id, answer.tag = order_id, actor
            if response is not None and response.status_code == 200:
                shown = response.json()["response"][ids.ORDER_MESSAGE]
                message = json.dumps(shown["children"])
                answer.outcome = ("acked" if message.startswith('"Done') else
                                  "unknown" if "may have been saved" in message else
                                  "not_stored" if "Not saved" in message else
                                  "conflict" if "conflict" in (shown.get("className") or "") else
                                  f"refused: {message[:200]}")
                if answer.outcome in ("acked", "conflict"):
                    done.add(order_id)  # a conflict: dispatched already (an earlier answer was "unknown")
            elif response is not None and response.status_code == 503:
                answer.outcome = response.headers.get("X-Citytwin-Outcome", "?")
            self.record(answer)
            time.sleep(PAUSE)


# --- the test -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def postgres():
    server = Postgres()
    try:
        yield server
    finally:
        server.close()


def test_the_database_killed_stopped_and_frozen_while_people_work(postgres):
    global POINT
    import shapely

    store = build("test", postgres.url, progress=False)
    units = store.read_frame("units", ["code", "level", "geometry"])
    grids = units[units["level"] == "grid"]
    point = shapely.from_wkb(grids["geometry"].iloc[len(grids) // 2]).representative_point()
    POINT = (point.y, point.x)
    store.engine.dispose()

    settings = {"CITYTWIN_STATEMENT_TIMEOUT_SECONDS": "2", "CITYTWIN_CONNECT_TIMEOUT_SECONDS": "2",
                "CITYTWIN_POOL_TIMEOUT_SECONDS": "2", "CITYTWIN_OPEN311_DEV_KEY": "1",
                "CITYTWIN_ESCALATION_MINUTES": "0", "CITYTWIN_VERSION_CHECK_SECONDS": "5",
                # The posters are the load, not a client to be limited (tests/test_open311_keys.py tests the limit).
                "CITYTWIN_OPEN311_POSTS_PER_MINUTE": "1000000"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        with run_app_server(postgres.url, timeout=240) as base:
            dependencies = base.http.get(base + "/_dash-dependencies", timeout=60).json()
            act_output = next(d["output"] for d in dependencies if f"{ids.ORDER_BODY}.children" in d["output"])
            load = Load(base)
            # The map page once, so that its first computation (seconds on a busy machine) is not in the counts.
            base.http.post(base + "/_dash-update-component", timeout=120, json={
                "output": ".._pages_content.children..._pages_store.data..",
                "outputs": [{"id": "_pages_content", "property": "children"},
                            {"id": "_pages_store", "property": "data"}],
                "inputs": [{"id": "_pages_location", "property": "pathname", "value": "/"},
                           {"id": "_pages_location", "property": "search", "value": ""}],
                "changedPropIds": ["_pages_location.pathname"]}).raise_for_status()
            workers = ([threading.Thread(target=load.browse, args=(dependencies,)) for _ in range(BROWSERS)]
                       + [threading.Thread(target=load.post) for _ in range(POSTERS)]
                       + [threading.Thread(target=load.operate, args=(n, act_output)) for n in range(OPERATORS)])
            for worker in workers:
                worker.start()
            outages = []
            try:
                time.sleep(CALM_SECONDS)
                for name, fail, restore in (("killed", postgres.kill, postgres.start),
                                            ("stopped", postgres.stop, postgres.start),
                                            ("frozen", postgres.freeze, postgres.thaw)):
                    began = time.time()
                    fail()
                    time.sleep(OUTAGE_SECONDS)
                    restoring = time.time()
                    restore()  # pg_ctl start -w returns a moment after the server accepts connections
                    outages.append((name, began, time.time(), restoring))
                    time.sleep(CALM_SECONDS)
            finally:
                load.stop.set()
                for worker in workers:
                    worker.join(REQUEST_TIMEOUT + 5)
                server_log = Path(APP_LOGS[base]).read_text(errors="replace")
                if os.environ.get("FAULTS_KEEP_LOG"):
                    Path(os.environ["FAULTS_KEEP_LOG"]).write_text(server_log)
    # No request failed on the server (Flask logs "Exception on <path>", the Open311 views "… failed"; a
    # connection cut while being reset is logged by SQLAlchemy's pool, and discarded: that is the design).
    for sign in ("Exception on ", " failed\nTraceback"):
        assert sign not in server_log, server_log[server_log.index(sign):][:6000]
    report(load, outages)
    check(load, outages, postgres.url)


def report(load: Load, outages) -> None:
    by_kind = defaultdict(Counter)
    for answer in load.answers:
        by_kind[answer.kind][answer.status if answer.kind not in ("post", "act") else answer.outcome] += 1
    print("\nanswers:", {kind: dict(counts) for kind, counts in sorted(by_kind.items())})
    for name, began, restored, _restoring in outages:
        during = [a for a in load.answers if began <= a.sent_at < restored]
        print(f"{name}: {len(during)} requests during the outage, "
              f"{Counter(a.kind for a in during if a.status == 200)} answered 200")


def _when(moment: float, outages) -> str:
    """Where ``moment`` lies relative to the outages (for a failure's message)."""
    for name, began, restored, _restoring in outages:
        if moment < restored + CALM_SECONDS:
            return f"{moment - began:+.2f} s from the start of '{name}' ({restored - began:.1f} s long)"
    return "after the outages"


def check(load: Load, outages, url: str) -> None:
    answers = load.answers
    # No 500, no hung request, nothing unexpected.
    unexpected = [a for a in answers if a.status not in (200, 201, 503, 204)]
    assert not unexpected, f"{len(unexpected)} unexpected answers, e.g. {unexpected[:3]}"
    slow = [a for a in answers if a.seconds > SLOW_SECONDS]
    assert not slow, f"{len(slow)} answers took over {SLOW_SECONDS} s, e.g. {slow[:3]}"
    writes = [a for a in answers if a.kind in ("post", "act")]
    odd = [a for a in writes if a.outcome not in ("acked", "not_stored", "unknown", "conflict")]
    assert not odd, f"writes answered neither stored, not stored nor unknown: {odd[:3]}"

    for name, began, restored, restoring in outages:
        during = [a for a in answers if began + 3 <= a.sent_at < restored]
        # Pages and files keep serving while the database is away, and say that it is.
        for kind in ("page", "static", "callback"):
            served = [a for a in during if a.kind == kind]
            assert served and all(a.status == 200 for a in served), f"{name}: {kind} {Counter(a.status for a in served)}"
        assert any(a.outcome == "notice" for a in during if a.kind == "callback"), \
            f"{name}: no page said the store was unavailable"
        # Answered before the restart began: once it has, the database may accept connections before pg_ctl
        # returns, and /health rightly says "up" (CI saw one such answer 1.6 s into a restart).
        health = [(round(a.sent_at - began, 1), round(a.seconds, 1), a.outcome) for a in during
                  if a.kind == "health" and a.sent_at + a.seconds < restoring]
        assert health and all(outcome == "down" for *_times, outcome in health), f"{name}: /health said {health}"
        # (a request that waited on the frozen server may be answered once it resumes)
        assert not [a for a in during if a.kind == "post" and a.outcome == "acked"
                    and a.sent_at + a.seconds < restored], f"{name}: acknowledged while the database was away?"
        # Writes are accepted again within 5 s of the database's return.
        after = sorted((a for a in answers if a.kind == "post" and a.sent_at >= restored and a.outcome == "acked"),
                       key=lambda a: a.sent_at)
        assert after, f"{name}: no post was accepted after the database came back"
        recovery = after[0].sent_at + after[0].seconds - restored
        print(f"{name}: writes accepted again {recovery:.1f} s after the database's return")
        assert recovery <= RECOVERY_SECONDS, f"{name}: recovered after {recovery:.1f} s"

    # Counted against the store.
    store = Store(url)
    orders, log = METADATA.tables["orders"], METADATA.tables["order_transitions"]
    with store.engine.connect() as conn:
        stored = dict(conn.execute(select(orders.c.description, orders.c.order_id)
                                   .where(orders.c.description.like("fault-test post %"))).all())
        versions = dict(conn.execute(select(orders.c.order_id, orders.c.version)
                                     .where(orders.c.description.like("fault-test post %"))).all())
        logged = dict(conn.execute(select(log.c.order_id, func.count()).where(log.c.order_id.in_(list(versions)))
                                   .group_by(log.c.order_id)).all())
        dispatchers = set(conn.execute(select(log.c.note).where(log.c.action == "dispatch",
                                                                log.c.note.like("operator %"))).scalars())
    store.engine.dispose()
    posts = [a for a in answers if a.kind == "post"]
    acked = {a.tag: a.order_id for a in posts if a.outcome == "acked"}
    unknown = {a.tag for a in posts if a.outcome == "unknown"}
    not_stored = {a.tag for a in posts if a.outcome == "not_stored"}
    lost = {tag for tag in acked if stored.get(tag) != acked[tag]}
    print(f"Open311 posts: sent {len(posts)}, acknowledged {len(acked)}, not stored (503) {len(not_stored)}, "
          f"outcome unknown {len(unknown)}, stored {len(stored)}, lost {len(lost)}")
    assert not lost, f"acknowledged but not stored: {sorted(lost)[:5]}"
    assert not (set(stored) & not_stored), "answered 'not stored' but stored"
    assert set(stored) <= set(acked) | unknown, "stored without being acknowledged or reported unknown"
    assert len(acked) >= 10 and not_stored, "the load should have met the outages (and the calm between them)"
    # Nothing half-written: every order has its whole log.
    assert versions == logged, "an order whose version is not its number of log rows"

    acts = [a for a in answers if a.kind == "act"]
    acted = {a.tag for a in acts if a.outcome == "acked"}
    refused = {a.tag for a in acts if a.outcome == "not_stored"}
    print(f"operators' actions: sent {len(acts)}, acknowledged {len(acted)}, not stored {len(refused)}, "
          f"unknown {sum(a.outcome == 'unknown' for a in acts)}, stored {len(dispatchers)}")
    assert acted <= dispatchers, f"acknowledged actions not stored: {sorted(acted - dispatchers)[:5]}"
    both = refused & dispatchers
    assert not both, "an action answered 'not saved' was stored: " + "; ".join(
        f"{a.tag} ({a.order_id}) sent {_when(a.sent_at, outages)}, answered {a.status} after {a.seconds:.2f} s"
        for a in acts if a.tag in both)
    assert dispatchers <= acted | {a.tag for a in acts if a.outcome == "unknown"}
    assert acted, "no action was acknowledged"
