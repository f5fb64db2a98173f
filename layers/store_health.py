"""How the store is doing, and the limits that keep a request from waiting on a database that does not answer.

A database can fail three ways while the dashboard serves: killed (connections are refused), stopped (connections
are closed by the server), or frozen (a paused server: the kernel still accepts connections and bytes, nothing ever
answers). The first two fail fast by themselves; the third would hold every thread that touches the store forever.
So every connection the store lends out is *leased*: a watchdog closes its socket when the lease outlives the
statement budget of the thread that borrowed it (``CITYTWIN_STATEMENT_TIMEOUT_SECONDS``, default 10, for web
requests: :func:`use_request_budget`; :data:`BACKGROUND_STATEMENT_SECONDS` for background work such as loading the
city), and the blocked call fails at once as a lost connection. New connections give up after
``CITYTWIN_CONNECT_TIMEOUT_SECONDS`` (default 3) and a full pool after ``CITYTWIN_POOL_TIMEOUT_SECONDS`` (default 5).

:class:`StoreHealth` records the last failure. While the store is down, requests do not even try: they get
:class:`StoreUnavailable` at once (writes answer 503 with Retry-After, pages keep showing the city last loaded), except
one request a second that is let through as a probe; the first probe that succeeds closes the circuit, so the
service recovers within about a second of the database's return.

Nothing here imports a web framework; ``dashboard/health.py`` maps these to HTTP.
"""
from __future__ import annotations

import collections
import contextlib
import contextvars
import heapq
import itertools
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass

from sqlalchemy import event, exc

STATEMENT_SECONDS_ENV = "CITYTWIN_STATEMENT_TIMEOUT_SECONDS"
CONNECT_SECONDS_ENV = "CITYTWIN_CONNECT_TIMEOUT_SECONDS"
POOL_SECONDS_ENV = "CITYTWIN_POOL_TIMEOUT_SECONDS"
BACKGROUND_STATEMENT_SECONDS = 900.0
"""The lease of background work (loading 3 M orders, the sweep): long, since a paused server that resumes lets it
finish, and a dead one fails it at once."""
PROBE_SECONDS = 1.0
RETRY_AFTER_SECONDS = 5

_budget: contextvars.ContextVar[float | None] = contextvars.ContextVar("citytwin_statement_budget", default=None)


@dataclass(frozen=True)
class StoreTimeouts:
    """How long anything waits on the store, in seconds: a web request's statement budget, a new connection, a free
    connection from the pool (on SQLite: the write lock). Given to :class:`layers.store.Store`; the server reads them
    once at start with its other settings (:meth:`from_environ`), a library user passes their own or takes these."""

    request: float = 10.0
    connect: float = 3.0
    pool: float = 5.0

    @classmethod
    def from_environ(cls, environ=None) -> "StoreTimeouts":
        """From ``CITYTWIN_STATEMENT_TIMEOUT_SECONDS``, ``…_CONNECT_…`` and ``…_POOL_…``; a bad value stops the
        start, naming the variable."""
        environ = os.environ if environ is None else environ
        return cls(request=_seconds(environ, STATEMENT_SECONDS_ENV, cls.request),
                   connect=_seconds(environ, CONNECT_SECONDS_ENV, cls.connect),
                   pool=_seconds(environ, POOL_SECONDS_ENV, cls.pool))


def _seconds(environ, name: str, default: float) -> float:
    text = (environ.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SystemExit(f"error: {name}={text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise SystemExit(f"error: {name}={text!r} must be a number of seconds above 0")
    return value


def use_request_budget(seconds: float) -> None:
    """From now on, connections this thread borrows are leased for a web request's budget of ``seconds`` (the
    store's :attr:`StoreTimeouts.request`; set once per request)."""
    _budget.set(seconds)


@contextlib.contextmanager
def statement_budget(seconds: float):
    """Within the block, connections this thread borrows are leased for ``seconds``."""
    token = _budget.set(seconds)
    try:
        yield
    finally:
        _budget.reset(token)


def current_budget() -> float:
    budget = _budget.get()
    return BACKGROUND_STATEMENT_SECONDS if budget is None else budget


class StoreUnavailable(RuntimeError):
    """The store did not answer (down, stopped, frozen or too busy). ``outcome`` says what became of a write:
    ``"not_stored"`` (nothing was written: safe to send again) or ``"unknown"`` (the store stopped answering while the
    write was being committed: it may have been saved; ``order_id`` names what it would be)."""

    def __init__(self, message: str, *, outcome: str = "not_stored", order_id: str | None = None):
        super().__init__(message)
        self.outcome = outcome
        self.order_id = order_id
        self.retry_after = RETRY_AFTER_SECONDS


SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open database",
                      "disk i/o error")
"""SQLite's OperationalError also means "no such table" or a syntax error (bugs, not an unavailable store): only
these messages say the file could not be used now."""


def is_unavailability(error: BaseException) -> bool:
    """Whether ``error`` means the store did not answer (rather than a bug or bad input)."""
    if isinstance(error, (StoreUnavailable, exc.TimeoutError)):
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if type(error.orig).__module__.startswith("sqlite3"):
        return isinstance(error, exc.OperationalError) and any(
            sign in str(error.orig).lower() for sign in SQLITE_UNAVAILABLE)
    return isinstance(error, (exc.OperationalError, exc.InterfaceError))


def unavailable(error: BaseException, *, outcome: str = "not_stored", order_id: str | None = None) -> StoreUnavailable:
    """A :class:`StoreUnavailable` for a low-level ``error`` (its outcome kept if it is one already)."""
    if isinstance(error, StoreUnavailable):
        if order_id and not error.order_id:
            error.order_id = order_id
        return error
    return StoreUnavailable(f"the store did not answer ({_short(error)})", outcome=outcome, order_id=order_id)


def _short(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


class LastRead:
    """The last answer of each read, for while the store does not answer: a page shows what it showed last (and the
    top bar says the store is unavailable) instead of failing. A read that never succeeded has nothing to fall back
    on and raises; an error that is not an unavailability (a bug) always raises. Thread-safe."""

    def __init__(self, limit: int = 4_096):
        self._answers: collections.OrderedDict = collections.OrderedDict()
        self._limit = limit  # reads keyed by what a request named (an alert's id): bounded, the oldest forgotten
        self._lock = threading.Lock()

    def __call__(self, key, read):
        """``read()``, remembered under ``key``; while the store is unavailable, the last answer remembered."""
        return self.read(key, read)[0]

    def read(self, key, read) -> tuple[object, bool]:
        """``(answer, fresh)``: fresh is False when the answer is the last one remembered (the store is away)."""
        try:
            answer = read()
        except Exception as error:
            if not is_unavailability(error):
                raise
            with self._lock:
                if key not in self._answers:
                    raise
                return self._answers[key], False
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            if len(self._answers) > self._limit:
                self._answers.popitem(last=False)
        return answer, True


class StoreHealth:
    """The store's state as the requests saw it: up, or down since a time with the last error."""

    def __init__(self, url: str = "", request_seconds: float = StoreTimeouts.request):
        self.url = url
        self.request_seconds = request_seconds
        self._lock = threading.Lock()
        self.down_since: float | None = None      # epoch seconds
        self.last_error: str | None = None
        self.last_failure_at: float | None = None
        self.last_ok_at: float | None = None
        self._probe_after = 0.0                   # monotonic
        self._probe = threading.local()

    @property
    def available(self) -> bool:
        return self.down_since is None

    def check(self) -> None:
        """Before borrowing a connection: raise :class:`StoreUnavailable` at once while the store is down, except
        for one probe a second (the same thread keeps its probe for the connect and the statement that follow)."""
        if self.down_since is None:
            return
        now = time.monotonic()
        if getattr(self._probe, "until", 0.0) > now:
            return
        with self._lock:
            if self.down_since is not None and now < self._probe_after:
                since = time.strftime("%H:%M:%S", time.localtime(self.down_since))
                raise StoreUnavailable(f"the store has not answered since {since} ({self.last_error}); "
                                       f"try again in a few seconds")
            # A probe from background work (a long budget) must not keep the requests from probing for minutes.
            hold = min(current_budget(), self.request_seconds) + 1.0
            self._probe_after = now + hold
            self._probe.until = now + hold

    def succeeded(self) -> None:
        self.last_ok_at = time.time()
        self._probe.until = 0.0
        if self.down_since is not None:
            with self._lock:
                if self.down_since is not None:
                    print(f"citytwin: the store answers again after {time.time() - self.down_since:.1f} s",
                          file=sys.stderr, flush=True)
                self.down_since = None
                self.last_error = None

    def failed(self, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else _short(error)
        self._probe.until = 0.0
        with self._lock:
            self.last_error = message
            self.last_failure_at = time.time()
            self._probe_after = time.monotonic() + PROBE_SECONDS
            if self.down_since is None:
                self.down_since = self.last_failure_at
                print(f"citytwin: the store stopped answering: {message}", file=sys.stderr, flush=True)

    def as_dict(self) -> dict:
        return {"up": self.available, "down_since": self.down_since, "last_error": self.last_error,
                "last_ok_at": self.last_ok_at}


# --- the watchdog ---------------------------------------------------------------------------------------------------

class _Watchdog:
    """One thread that closes the sockets of connections lent out for longer than their lease."""

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._leases: dict[int, tuple[object, float]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def lease(self, dbapi_connection, seconds: float) -> int:
        lease_id = next(self._ids)
        deadline = time.monotonic() + seconds
        with self._cond:
            self._leases[lease_id] = (dbapi_connection, seconds)
            heapq.heappush(self._heap, (deadline, lease_id))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="store-watchdog")
                self._thread.start()
            self._cond.notify()
        return lease_id

    def release(self, lease_id: int | None) -> None:
        if lease_id is not None:
            with self._cond:
                self._leases.pop(lease_id, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, lease_id = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(min(wait, 1.0))
                    continue
                heapq.heappop(self._heap)
                expired = self._leases.pop(lease_id, None)
            if expired is not None:
                _cut(*expired)


def _cut(dbapi_connection, seconds: float) -> None:
    """Shut the connection's socket down: a call blocked on it returns at once with a lost connection."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # noqa: BLE001 — already closed
        return
    try:
        duplicate = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        duplicate.close()
    print(f"citytwin: a store connection was held over its {seconds:g} s budget (the store did not answer): cut",
          file=sys.stderr, flush=True)


WATCHDOG = _Watchdog()


def watch(engine, health: StoreHealth) -> None:
    """Install the circuit check, the leases (PostgreSQL: a server can freeze) and the failure records on
    ``engine``."""
    leased = engine.dialect.name == "postgresql"

    @event.listens_for(engine, "do_connect")
    def _before_connect(dialect, conn_rec, cargs, cparams):
        health.check()

    @event.listens_for(engine.pool, "checkout")
    def _checkout(dbapi_connection, record, proxy):
        health.check()
        if leased:
            record.info["citytwin_lease"] = WATCHDOG.lease(dbapi_connection, current_budget())

    @event.listens_for(engine.pool, "checkin")
    def _checkin(dbapi_connection, record):
        WATCHDOG.release(record.info.pop("citytwin_lease", None))

    @event.listens_for(engine.pool, "invalidate")
    def _invalidate(dbapi_connection, record, exception):
        WATCHDOG.release(record.info.pop("citytwin_lease", None))

    @event.listens_for(engine, "after_cursor_execute")
    def _answered(conn, cursor, statement, parameters, context, executemany):
        health.succeeded()

    @event.listens_for(engine, "handle_error")
    def _failed(context):
        error = context.sqlalchemy_exception or context.original_exception
        if isinstance(context.original_exception, StoreUnavailable):
            return  # refused by the circuit: already recorded
        # A busy SQLite file (a long write holding the lock) is not a store that is down: no circuit for it.
        if context.is_disconnect or (error is not None and is_unavailability(error)
                                     and "locked" not in str(context.original_exception)):
            health.failed(context.original_exception)
