"""The store's faults as the web sees them: ``GET /health``, and 503 with Retry-After (never 500) for whatever
needed a store that did not answer.

``register(server, settings)`` adds, on the Flask server:

- a budget for every request: a connection borrowed while answering is cut after
  ``CITYTWIN_STATEMENT_TIMEOUT_SECONDS`` (see :mod:`layers.store_health`), so no request waits on a frozen
  database and the server's threads stay free for the pages and files that do not need it;
- error handlers: a request that needed the store while it was unavailable gets **503** with ``Retry-After`` and a
  message saying what happened (JSON for Dash's callbacks and API clients, text otherwise). A write whose commit
  was cut off says its outcome is unknown, never that it failed;
- ``GET /health``: JSON naming which parts are up — the store (probed now, with a 2-second budget), the loaded
  generation (its data time and age), and any part registered with :func:`add_part` (Redis when
  ``CITYTWIN_REDIS_URL`` is set). It answers 200 while the server can serve (pages from the loaded city) and says
  ``"status": "degraded"`` when a part is down: a load balancer keeps a worker that still serves.
"""
from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable

from flask import Flask, Response, jsonify, request
from sqlalchemy import exc, text

from dashboard.settings import Settings
from layers import store_health
from layers.store_health import StoreUnavailable, is_unavailability

log = logging.getLogger(__name__)

PROBE_SECONDS = 2.0

_parts: dict[str, Callable[[], dict]] = {}


def add_part(name: str, check: Callable[[], dict]) -> None:
    """Report another part in ``GET /health``: ``check()`` returns ``{"up": bool, …}`` quickly (and never raises)."""
    _parts[name] = check


def unavailable_message(error: BaseException) -> str:
    """What a user is told when the store did not answer."""
    error = store_health.unavailable(error)
    if error.outcome == "unknown":
        saved = f" as {error.order_id}" if error.order_id else ""
        return (f"The store stopped answering while this was being saved: it may have been saved{saved}. Check "
                f"before sending it again (or send it again with the same Idempotency-Key). Details: {error}")
    return (f"The store is unavailable, so nothing was saved: try again in {error.retry_after} seconds. "
            f"Pages keep showing the data last loaded. Details: {error}")


def unavailable_response(error: BaseException) -> Response:
    error = store_health.unavailable(error)
    message = unavailable_message(error)
    if request.path.startswith("/_dash") or request.accept_mimetypes.best == "application/json" or request.is_json:
        response = jsonify({"error": "store_unavailable", "outcome": error.outcome, "order_id": error.order_id,
                            "message": message})
    else:
        response = Response(message, mimetype="text/plain")
    response.status_code = 503
    response.headers["Retry-After"] = str(error.retry_after)
    response.headers["X-Citytwin-Outcome"] = error.outcome
    return response


def register(server: Flask, settings: Settings) -> None:
    request_seconds = settings.store_timeouts.request

    @server.before_request
    def _request_budget():
        store_health.use_request_budget(request_seconds)

    def _database_error(error):
        if is_unavailability(error):
            return unavailable_response(error)
        log.exception("%s %s failed", request.method, request.path, exc_info=error)
        return Response("internal error; the server log has the details", status=500, mimetype="text/plain")

    server.register_error_handler(StoreUnavailable, unavailable_response)
    server.register_error_handler(exc.DBAPIError, _database_error)
    server.register_error_handler(exc.TimeoutError, unavailable_response)

    @server.get("/health")
    def health():
        parts = {"store": store_part(), "generation": generation_part()}
        for name, check in list(_parts.items()):
            try:
                parts[name] = check()
            except Exception as error:  # noqa: BLE001 — a broken check is a part that is down
                parts[name] = {"up": False, "error": repr(error)[:200]}
        degraded = any(not part.get("up", True) for part in parts.values())
        response = jsonify({"status": "degraded" if degraded else "ok", "parts": parts, "at": time.time()})
        response.headers["Cache-Control"] = "no-store"
        return response

    if settings.redis_url:
        add_part("redis", functools.partial(redis_part, settings.redis_url))


def store_part() -> dict:
    from dashboard import services

    store = services.get().store
    started = time.perf_counter()
    try:
        with store_health.statement_budget(PROBE_SECONDS), store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 — the answer is "down", with why
        if not is_unavailability(error):
            store.health.failed(error)
    health = store.health.as_dict()
    return {**health, "dialect": store.dialect, "probe_ms": round((time.perf_counter() - started) * 1000, 1)}


def generation_part() -> dict:
    from dashboard import services

    generation = services.get().loaded_generation()
    if generation is None:
        return {"up": False, "error": "no city loaded yet"}
    spool = services.get().stream_spool
    return {"up": True, "as_of": generation.city.as_of.isoformat(),
            "age_seconds": round(time.time() - generation.loaded_at, 1),
            "versions": generation.city.versions, "key": generation.key, "worker": os.getpid(),
            # Where the stream's last changes were taken from: the machine's spool (layers.stream_spool) or the
            # store (no publisher beside this process, or it had gone quiet).
            "stream_from": "store" if spool is None else spool.read_from}


def redis_part(url: str) -> dict:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        client.ping()
        return {"up": True}
    except Exception as error:  # noqa: BLE001 — down, and why
        return {"up": False, "error": str(error)[:200]}
    finally:
        client.close()
