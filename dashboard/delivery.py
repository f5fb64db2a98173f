"""How answers go over the wire: compressed, cached by the browser as long as their name says they may be, and
timed.

- **Compression** (flask-compress): JavaScript, CSS, HTML, JSON (callbacks, layouts), the favicon and the building
  tiles go brotli-compressed to a browser that accepts it, gzip to one that only takes gzip. A static file is
  compressed once per process and kept (:class:`StaticCompressionCache`); a callback's answer is compressed as it
  goes (brotli quality 5: about a millisecond per 100 kB, a third of gzip's bytes for Dash's JSON).
- **Cache lifetimes**: a file whose URL names its version — Dash's component suites (``…v4_4_1m1700000000.min.js``,
  fingerprinted by Dash when it serves them itself), our ``/assets/…?m=<mtime>`` (Dash adds the file's modification
  time), the MVT worker (``?v=<content hash>``) — is kept a year and never revalidated (``immutable``): a new
  version is a new URL. Dash's unfingerprinted chunks (``async-dropdown.js``…) and the favicon are kept a day.
  Pages, layouts and callbacks are not cached (they follow the city).
- **Server-Timing** (``app;dur=<ms>``) on every answer: the app's own time, which the browser bench
  (bench/browser.py) sums to split a page's settle time into server, network and rendering.

``register(server)`` once, in app.py, after the routes are registered.
"""
from __future__ import annotations

import time

from dash.fingerprint import check_fingerprint
from flask import Flask, g, request
from flask_compress import Compress

from dashboard.maps.routes import MVT_MEDIA_TYPE

YEAR = 31_536_000
DAY = 86_400
VERSIONED = f"public, max-age={YEAR}, immutable"
DAILY = f"public, max-age={DAY}"

COMPRESSED_TYPES = ["text/html", "text/css", "text/plain", "text/javascript", "application/javascript",
                    "application/json", "image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon",
                    MVT_MEDIA_TYPE]

COMPONENT_SUITES = "/_dash-component-suites/"
ASSETS = "/assets/"
VERSIONED_ROUTES = ("/_citytwin/workers/",)  # our own files whose URL carries ?v=<content hash>


def cache_policy(path: str, args) -> str | None:
    """The Cache-Control a GET of ``path`` (with query ``args``) deserves, or None to leave the answer's own."""
    if path.startswith(COMPONENT_SUITES):
        _, fingerprinted = check_fingerprint(path[len(COMPONENT_SUITES):])
        return VERSIONED if fingerprinted else DAILY
    if path.startswith(ASSETS):
        return VERSIONED if "m" in args else None
    if path.startswith(VERSIONED_ROUTES):
        return VERSIONED if "v" in args else None
    if path == "/_favicon.ico":
        return DAILY
    return None


def static_key(req) -> str:
    """The compression cache's key: a versioned static file's URL, or a component suite's (Dash's unfingerprinted
    chunks, ``async-community.js``…: served from the installed package, so their bytes cannot change while the
    process runs — AG Grid's chunk took 17 ms to compress, at every first visit); "" (not cached) for anything
    else."""
    if req.method == "GET" and (cache_policy(req.path, req.args) == VERSIONED
                                or req.path.startswith(COMPONENT_SUITES)):
        return req.full_path
    return ""


class StaticCompressionCache:
    """flask-compress's cache, keeping only versioned static files (whose bytes a URL fixes); every other answer
    (callbacks, tiles, pages) is compressed afresh, as its key is empty."""

    def __init__(self):
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def set(self, key: str, value: bytes) -> None:
        if not key.endswith(";"):  # "<algorithm>;<static_key>": empty for what must not be kept
            self._data[key] = value


def register(server: Flask) -> None:
    @server.before_request
    def _start_clock():
        g.citytwin_started = time.perf_counter()

    # Registered before Compress: Flask runs after_request hooks last-registered first, so the time below includes
    # the compression and the cache headers are set whatever Compress does.
    @server.after_request
    def _cache_and_time(response):
        if request.method in ("GET", "HEAD") and response.status_code in (200, 304):
            policy = cache_policy(request.path, request.args)
            if policy:
                response.headers["Cache-Control"] = policy
        started = g.get("citytwin_started")
        if started is not None:
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    server.config.update(
        COMPRESS_MIMETYPES=COMPRESSED_TYPES,
        COMPRESS_ALGORITHM=["br", "gzip"],
        COMPRESS_ALGORITHM_STREAMING=["br", "deflate"],
        COMPRESS_BR_LEVEL=5,
        COMPRESS_LEVEL=6,
        COMPRESS_MIN_SIZE=500,
        COMPRESS_CACHE_BACKEND=StaticCompressionCache,
        COMPRESS_CACHE_KEY=static_key,
    )
    Compress(server)
