"""Shared test fixtures for citytwin.

Fixtures
--------
postgis_url (session)
    SQLAlchemy URL of a PostgreSQL + PostGIS database ``citytwin_test``.  A
    throwaway PostgreSQL cluster is started for the test session (or
    ``$CITYTWIN_TEST_POSTGIS_URL`` is used as is).
postgis_db_url (function)
    URL of a brand-new database (PostGIS enabled) on that server, dropped
    after the test: use it for isolated tests.  ``fresh_postgis_database(url)``
    is the same thing as a context manager (for module-scoped fixtures).
sqlite_url (function)
    ``sqlite:///<tmp_path>/citytwin.sqlite``.
province_db (session)
    URL of the province sample (``make sample SCALE=province``), built once.
browser (session) / page (function)
    Playwright Chromium using Debian's ``/usr/bin/chromium`` (never
    ``playwright install``).  ``page.external_requests`` lists the URLs of
    requests to hosts other than localhost; ``page.console_errors`` lists
    console errors and uncaught page errors.
serve_app (function)
    ``serve_app(database_url) -> "http://127.0.0.1:PORT"``: runs ``app.py``
    in a subprocess until the end of the test.  ``run_app_server(url)`` is the
    same thing as a context manager (for module-scoped fixtures).
    Both sign in by themselves (docs/access.md): an account is added to the
    database before the start (an admin with the whole city unless
    ``roles=``, ``scope=``, ``departments=`` say otherwise) and signed in over
    HTTP; every browser context of the test gets its session cookie, and the
    URL returned carries ``.cookie``, ``.account`` and ``.http`` (a
    ``requests.Session`` signed in, with the Origin header of the app).
    ``add_account(database_url, name, roles=…)`` adds another one and returns
    its password; ``sign_in(base_url, name, password)`` returns a session.
In-process Flask test clients of an app with the access layer
(``create_app(...).server.test_client()``) are signed in as an admin too.

In CI (``$CI`` set) a skipped test counts as a failure: everything the tests
need is installed by ``make test``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

import pytest

from tests.redis_harness import redis_server  # noqa: E402,F401  (a fixture: a Redis of the test's own)

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--enable-unsafe-swiftshader",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
TEST_DB_NAME = "citytwin_test"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(what: str) -> None:
    """Fail (never skip) because a system dependency is missing."""
    if _in_ci():
        pytest.fail(
            f"{what}\nCI must not skip tests: `make test` (make system-deps) "
            "should have installed it.",
            pytrace=False,
        )
    pytest.fail(
        f"{what}\nRun `make test` (as root it installs the system packages; "
        "otherwise `make system-deps` prints the apt-get command).",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# No skipped tests in CI
# --------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"test skipped in CI, which is not allowed: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped:  # e.g. a module-level pytest.importorskip
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"module skipped in CI, which is not allowed: {reason}"


# --------------------------------------------------------------------------
# PostgreSQL + PostGIS
# --------------------------------------------------------------------------


def _postgres_bin_dir() -> Path | None:
    """Highest-version /usr/lib/postgresql/*/bin that has initdb and pg_ctl."""
    candidates = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        version = bindir.parent.name
        if not re.fullmatch(r"\d+(\.\d+)?", version):
            continue
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            candidates.append((tuple(int(p) for p in version.split(".")), bindir))
    return max(candidates)[1] if candidates else None


def _run(cmd: list[str], *, as_user: str | None, cwd: str, what: str) -> str:
    """Run cmd (through ``runuser -u as_user --`` if given); fail with its output."""
    if as_user:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}",
            pytrace=False,
        )
    return proc.stdout


def _admin_engine(url: str):
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    return sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


@contextlib.contextmanager
def throwaway_postgis_cluster() -> Iterator[str]:
    """Start a private PostgreSQL cluster with PostGIS; yield its SQLAlchemy URL."""
    bindir = _postgres_bin_dir()
    if bindir is None:
        _missing(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
            "(Debian package: postgresql, postgresql-15-postgis-3)."
        )
    version = bindir.parent.name
    control = Path(f"/usr/share/postgresql/{version}/extension/postgis.control")
    if not control.is_file():
        _missing(
            f"PostGIS for PostgreSQL {version} is not installed ({control} missing; "
            f"Debian package: postgresql-{version}-postgis-3)."
        )

    as_user = None
    if os.geteuid() == 0:
        # initdb/postgres refuse to run as root: run them as `postgres`.
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            _missing("Running as root but there is no `postgres` user (Debian package: postgresql).")
        if shutil.which("runuser") is None:
            _missing("`runuser` not found (Debian package: util-linux).")
        as_user = "postgres"

    # Under /tmp (world-traversable) whatever $TMPDIR says, and short enough
    # for the unix-socket path limit.
    base = tempfile.mkdtemp(prefix="citytwin-pg-", dir="/tmp" if os.path.isdir("/tmp") else None)
    datadir = os.path.join(base, "data")
    logfile = os.path.join(base, "postgres.log")
    started = False
    try:
        if as_user:
            os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chmod(base, 0o700)
        _run(
            [
                str(bindir / "initdb"),
                "-D", datadir,
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            as_user=as_user,
            cwd=base,
            what="initdb",
        )
        last_error = ""
        for _attempt in range(3):  # the free port may be taken in between
            port = _free_port()
            opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
            cmd = [str(bindir / "pg_ctl"), "-D", datadir, "-l", logfile, "-o", opts, "-w", "-t", "60", "start"]
            if as_user:
                cmd = ["runuser", "-u", as_user, "--", *cmd]
            proc = subprocess.run(cmd, cwd=base, capture_output=True, text=True, timeout=120)
            if proc.returncode == 0:
                started = True
                break
            log = Path(logfile).read_text(errors="replace") if os.path.exists(logfile) else ""
            last_error = f"{proc.stdout}\n{proc.stderr}\n--- {logfile} ---\n{log[-4000:]}"
        if not started:
            pytest.fail(f"could not start the throwaway PostgreSQL cluster:\n{last_error}", pytrace=False)

        import sqlalchemy

        server_url = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        engine = _admin_engine(f"{server_url}/postgres")
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{TEST_DB_NAME}"'))
        engine.dispose()
        url = f"{server_url}/{TEST_DB_NAME}"
        engine = _admin_engine(url)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()

        yield url
    finally:
        if started:
            stop = [str(bindir / "pg_ctl"), "-D", datadir, "-m", "immediate", "-w", "stop"]
            if as_user:
                stop = ["runuser", "-u", as_user, "--", *stop]
            subprocess.run(stop, cwd=base, capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgis_url() -> Iterator[str]:
    """SQLAlchemy URL of a PostGIS-enabled database on a throwaway server.

    ``$CITYTWIN_TEST_POSTGIS_URL`` overrides it (nothing is started then).
    """
    external = os.environ.get("CITYTWIN_TEST_POSTGIS_URL")
    if external:
        yield external
        return
    with throwaway_postgis_cluster() as url:
        yield url


@contextlib.contextmanager
def fresh_postgis_database(postgis_url: str) -> Iterator[str]:
    """Create a uniquely named database with PostGIS on the server of
    ``postgis_url``; yield its URL; drop it afterwards."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    name = f"citytwin_t_{uuid.uuid4().hex[:16]}"
    admin = _admin_engine(postgis_url)
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgis_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = _admin_engine(url)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            # FORCE: a test may have left connections open.
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgis_db_url(postgis_url: str) -> Iterator[str]:
    """URL of a new, empty PostGIS database for this test only."""
    with fresh_postgis_database(postgis_url) as url:
        yield url


# --------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a (not yet existing) SQLite file in tmp_path."""
    return f"sqlite:///{tmp_path}/citytwin.sqlite"


# The province sample ends here: its 7 days of orders span November (closed) and December.
PROVINCE_END = "2026-12-03 16:00"


@pytest.fixture(scope="session")
def province_db(tmp_path_factory) -> str:
    """SQLAlchemy URL of the province sample (Guangdong's 21 cities, sample_data.province), built once a session."""
    import pandas as pd

    from layers.specs import CITY_TIMEZONE
    from sample_data.__main__ import build
    url = f"sqlite:///{tmp_path_factory.mktemp('province') / 'province.sqlite'}"
    build("province", url, progress=False, end=pd.Timestamp(PROVINCE_END, tz=CITY_TIMEZONE))
    return url


# --------------------------------------------------------------------------
# Browser (Playwright + Debian's Chromium)
# --------------------------------------------------------------------------


# Session cookies of the servers signed in now (base URL → Playwright cookie), given to every browser context.
_SIGNED_IN: dict[str, dict] = {}
_OPEN_CONTEXTS: list = []


def _give_cookies(context) -> None:
    if _SIGNED_IN:
        context.add_cookies(list(_SIGNED_IN.values()))


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (/usr/bin/chromium) driven by Playwright. Every context it opens (``new_context``,
    ``new_page``) carries the session cookies of the app servers that the test runs (signed in by themselves)."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"{CHROMIUM} not found (Debian package: chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        new_context = b.new_context

        def signed_in_context(*args, **kwargs):
            context = new_context(*args, **kwargs)
            _give_cookies(context)
            _OPEN_CONTEXTS.append(context)
            context.on("close", lambda c: _OPEN_CONTEXTS.remove(c) if c in _OPEN_CONTEXTS else None)
            return context

        def signed_in_page(*args, **kwargs):
            context = signed_in_context(*args, **kwargs)
            page = context.new_page()
            page.on("close", lambda _p: context.close())
            return page

        b.new_context = signed_in_context
        b.new_page = signed_in_page
        try:
            yield b
        finally:
            b.close()


def _is_external(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https", "ws", "wss"):
        return False  # data:, blob:, about:, chrome-extension:, ...
    return (parsed.hostname or "") not in LOCAL_HOSTS


@pytest.fixture
def page(browser):
    """A fresh 1920x1080 page (own context) that records external requests
    (``page.external_requests``) and console/page errors (``page.console_errors``)."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    pg = context.new_page()
    pg.external_requests = []
    pg.console_errors = []

    def on_request(request):
        if _is_external(request.url):
            pg.external_requests.append(request.url)

    def on_websocket(ws):
        if _is_external(ws.url):
            pg.external_requests.append(ws.url)

    def on_console(msg):
        if msg.type == "error":
            loc = msg.location or {}
            where = f" ({loc.get('url')}:{loc.get('lineNumber')})" if loc.get("url") else ""
            pg.console_errors.append(f"{msg.text}{where}")

    def on_pageerror(exc):
        pg.console_errors.append(f"uncaught: {exc}")

    pg.on("request", on_request)
    pg.on("websocket", on_websocket)
    pg.on("console", on_console)
    pg.on("pageerror", on_pageerror)
    try:
        yield pg
    finally:
        context.close()


# --------------------------------------------------------------------------
# Live dashboard server
# --------------------------------------------------------------------------


def _wait_for_http_200(url: str, proc: subprocess.Popen, log_path: str, timeout: float, session=None) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    if session is not None:
        opener.addheaders.append(("Cookie", "; ".join(f"{k}={v}" for k, v in session.cookies.items())))
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = Path(log_path).read_text(errors="replace")
            pytest.fail(
                f"app.py exited with code {proc.returncode} before serving {url}\n"
                f"--- output ---\n{log[-8000:]}",
                pytrace=False,
            )
        try:
            with opener.open(url, timeout=5) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = repr(exc)
        time.sleep(0.25)
    log = Path(log_path).read_text(errors="replace")
    pytest.fail(
        f"app.py did not answer 200 on {url} within {timeout:.0f}s (last: {last})\n"
        f"--- output ---\n{log[-8000:]}",
        pytrace=False,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # the whole group (e.g. a reloader child)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


APP_LOGS: dict[str, str] = {}
"""base URL → the output file of the app.py serving it, while it runs (a test can read the server's log)."""


TEST_ADMIN = "test-admin"


class AppURL(str):
    """The base URL of a running app (a plain string), with the session of the account it signed in as."""

    cookie: dict
    account: str
    http: "object"


def add_account(database_url: str, name: str, *, roles=("admin",), scope: str | None = None,
                departments=(), password: str | None = None) -> str:
    """Add an account to the city's database (replacing one of that name); returns its password."""
    from layers.accounts import ACCOUNTS, Accounts
    from layers.store import Store

    password = password or f"pw-{uuid.uuid4().hex}"
    store = Store(database_url)
    accounts = Accounts(store)
    with store.engine.begin() as conn:
        conn.execute(ACCOUNTS.delete().where(ACCOUNTS.c.name == name))
    accounts.add(name, password, roles=set(roles), scope=scope, departments=departments)
    store.engine.dispose()
    return password


def sign_in(base_url: str, name: str, password: str):
    """A ``requests.Session`` signed in to the app at ``base_url`` (with the app's Origin on every request)."""
    import requests

    http = requests.Session()
    http.trust_env = False  # never through a proxy
    http.headers["Origin"] = base_url
    answer = http.post(f"{base_url}/login", data={"name": name, "password": password}, allow_redirects=False,
                       timeout=30)
    if answer.status_code != 302 or "citytwin_session" not in http.cookies:
        pytest.fail(f"could not sign in to {base_url} as {name}: HTTP {answer.status_code}", pytrace=False)
    return http


@contextlib.contextmanager
def run_app_server(database_url: str, *, timeout: float = 90.0, extra_args: tuple[str, ...] = (),
                   roles=("admin",), scope: str | None = None, departments=(),
                   account: str = TEST_ADMIN) -> Iterator[AppURL]:
    """Run ``app.py --port PORT --database-url URL`` signed in as ``account`` (added with ``roles``, ``scope``,
    ``departments``); yield ``http://127.0.0.1:PORT`` (an :class:`AppURL`)."""
    password = add_account(database_url, account, roles=roles, scope=scope, departments=departments)
    port = _free_port()
    env = dict(os.environ, CITYTWIN_DATABASE_URL=database_url, PYTHONUNBUFFERED="1")
    log_fd, log_path = tempfile.mkstemp(prefix="citytwin-app-", suffix=".log")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--database-url", database_url, *extra_args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_fd,
        stderr=subprocess.STDOUT,  # a file, not a pipe: a chatty server never blocks
        start_new_session=True,
    )
    os.close(log_fd)
    base_url = AppURL(f"http://127.0.0.1:{port}")
    APP_LOGS[base_url] = log_path
    try:
        _wait_for_http_200(base_url + "/login", proc, log_path, timeout)
        base_url.http = sign_in(base_url, account, password)
        base_url.account = account
        base_url.cookie = {"name": "citytwin_session", "value": base_url.http.cookies["citytwin_session"],
                           "url": base_url}
        _SIGNED_IN[base_url] = base_url.cookie
        for context in list(_OPEN_CONTEXTS):
            context.add_cookies([base_url.cookie])
        _wait_for_http_200(base_url + "/", proc, log_path, timeout, base_url.http)
        yield base_url
    finally:
        _SIGNED_IN.pop(base_url, None)
        _stop(proc)
        APP_LOGS.pop(base_url, None)
        with contextlib.suppress(OSError):
            os.unlink(log_path)


@pytest.fixture
def serve_app() -> Iterator[Callable[[str], str]]:
    """Factory: ``base_url = serve_app(database_url)`` starts the dashboard, signed in (``roles=``,
    ``scope=``, ``departments=`` choose the account); every server started is stopped at the end of the test."""
    with contextlib.ExitStack() as stack:

        def start(database_url: str, **kwargs) -> str:
            return stack.enter_context(run_app_server(database_url, **kwargs))

        yield start


def built_test_city(tmp_path_factory, name: str) -> str:
    """A test-scale sample city of the asking module's own, in a SQLite file; its database URL."""
    from sample_data.__main__ import build

    path = tmp_path_factory.mktemp(name) / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False)
    return f"sqlite:///{path}"


def app_in_process(database_url: str, jobs: bool = True):
    """The dashboard's Dash app on ``database_url``, in this process (Flask's test client talks to it), with its
    callbacks in place; ``jobs``: with the scheduled jobs (the sweep) running in this process, as one server runs."""
    from app import create_app

    app = create_app(database_url, jobs=jobs)
    app.server.test_client().get("/login")  # Dash moves its callbacks into the app on the first request
    return app


@contextlib.contextmanager
def serving(service):
    """``service`` (a dashboard.services.Services) as the process's own while the block runs (what the pages and
    callbacks read through ``services.get()``), the one before it restored afterwards."""
    from dashboard import services as services_module

    previous = services_module._services
    services_module._services = service
    try:
        yield service
    finally:
        services_module._services = previous


def work_order_snapshot(store) -> tuple:
    """Row counts and a checksum of everything work orders write (to prove that a refused request changed nothing)."""
    import hashlib

    from sqlalchemy import select

    from layers.store import METADATA

    digest = hashlib.sha256()
    counts = {}
    with store.engine.connect() as conn:
        for name in ("orders", "order_transitions", "responsibility_rules", "responsibility_versions",
                     "layer_versions"):
            table = METADATA.tables[name]
            columns = [c for c in table.columns if c.name != "written_at"]
            rows = conn.execute(select(*columns).order_by(*columns[:2])).all()
            counts[name] = len(rows)
            digest.update(repr(rows).encode())
    return counts, digest.hexdigest()


# --------------------------------------------------------------------------
# In-process test clients sign in by themselves
# --------------------------------------------------------------------------


def _install_signed_in_test_client() -> None:
    """``app.server.test_client()`` of an app with the access layer (dashboard/auth) starts signed in as an
    admin of the whole city, so that tests of routes need not know about sign-in; tests of the access layer
    itself sign out (``client.delete_cookie("citytwin_session")``) or sign in as someone else."""
    import flask
    from flask.testing import FlaskClient

    class SignedInClient(FlaskClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            access = self.application.extensions.get("citytwin.auth")
            if access is None:
                return
            principal = access.accounts.get(TEST_ADMIN, cached=False)
            if principal is None:
                access.accounts.add(TEST_ADMIN, f"pw-{uuid.uuid4().hex}", roles={"admin"})
                principal = access.accounts.get(TEST_ADMIN, cached=False)
            with self.session_transaction() as session:
                session.update(u=principal.name, g=principal.generation, t=time.time())
            self.environ_base["HTTP_ORIGIN"] = "http://localhost"

    flask.Flask.test_client_class = SignedInClient


_install_signed_in_test_client()


# --------------------------------------------------------------------------
# Browser waits under the app's CSP (no 'unsafe-eval')
# --------------------------------------------------------------------------

_FUNCTION_TEXT = re.compile(r"^\s*(async\s+)?(function\b|\([^()]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)")


def _waits_without_eval() -> None:
    """Playwright runs a ``wait_for_function`` *expression* string in the page with eval, which a CSP without
    'unsafe-eval' refuses (the way the app's CSP is going, docs/access.md); a *function* string it runs without. So
    an expression becomes ``() => (expression)``: the tests keep their short waits whatever the CSP.

    A condition that reads an element the page has not drawn yet (``document.querySelector('#x').innerText`` while
    ``#x`` is still missing) throws a TypeError, which Playwright reports as a failure at once; here it means "not yet"
    and the wait goes on (a page that never draws ``#x`` still fails, by the wait's timeout)."""
    from playwright.sync_api import Frame, Page

    for cls in (Page, Frame):
        original = cls.wait_for_function

        def wait_for_function(self, expression, *args, _original=original, **kwargs):
            if isinstance(expression, str):
                if not _FUNCTION_TEXT.match(expression):
                    expression = f"() => ({expression})"
                expression = (f"(...args) => {{ try {{ return ({expression})(...args); }} "
                              f"catch (error) {{ if (error instanceof TypeError) return false; throw error; }} }}")
            return _original(self, expression, *args, **kwargs)

        cls.wait_for_function = wait_for_function


with contextlib.suppress(ImportError):
    _waits_without_eval()
