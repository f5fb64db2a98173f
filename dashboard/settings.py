"""Every ``CITYTWIN_*`` setting, read once at start, validated, with the variable's name in each error.

The server reads the environment in one place (:meth:`Settings.from_environ`) and hands the result to whoever needs
it, so a bad value stops the start at once, before a city-scale load, and tests set what they need by constructing
a :class:`Settings` instead of patching module globals.

>>> Settings.from_environ({"CITYTWIN_MODE": "replay", "CITYTWIN_WORKERS": "3"}).workers
3
>>> Settings.from_environ({"CITYTWIN_WORKERS": "many"})
Traceback (most recent call last):
...
SystemExit: error: CITYTWIN_WORKERS='many' is not a whole number
>>> Settings.from_environ({"CITYTWIN_BASEMAP_PMTILES": "/nowhere/city.pmtiles"})
Traceback (most recent call last):
...
SystemExit: error: CITYTWIN_BASEMAP_PMTILES='/nowhere/city.pmtiles': /nowhere/city.pmtiles does not exist or is not a file
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from layers.retention import DEFAULT_RAW_DAYS, raw_days
from layers.store_health import StoreTimeouts

MODES = ("live", "replay")
LIVE_VERSION_CHECK_SECONDS = 2.0
"""Live mode's version check, the pace of new generations: the screens' poll's (dashboard/live.POLL_SECONDS). A
generation made more often is seen by no screen, yet each one is read and computed by every worker and draws every
view again (with a check every second, 50 users with the stream: p95 over callbacks 4.7 s against 1.9 s)."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    """``CITYTWIN_DATABASE_URL``: the store (default: the embedded file data/citytwin.sqlite)."""
    mode: str = "replay"
    """``CITYTWIN_MODE``: ``live`` shows the city at the wall clock (sensors are offline when they stop reporting);
    ``replay`` at the newest record, for demos of the past and cities without a stream."""
    version_check_seconds: float = 30.0
    """``CITYTWIN_VERSION_CHECK_SECONDS``: how often the loaded city compares the store's layer versions with its
    own; above 0 a change is read in the background, 0 reads it before answering (tests, an operator at a desk)."""
    clock_step_seconds: float = 60.0
    """``CITYTWIN_CLOCK_STEP_SECONDS``: in live mode, how far the clock may move before a new generation is made
    even when nothing arrived (the "now" tiles, windows and freshness follow it)."""
    escalation_minutes: float = 10.0
    """``CITYTWIN_ESCALATION_MINUTES``: how often the supervision sweep runs (0 = off)."""
    simulate_readings_per_second: float = 0.0
    """``CITYTWIN_SIMULATE``: readings per second the built-in simulator feeds into the store (0 = off; ``make run``
    turns it on so the sample city lives without a broker)."""
    mqtt_broker: str | None = None
    """``CITYTWIN_MQTT_BROKER``: ``mqtt://host:port`` of the city's broker; the jobs process then runs the ingest
    (layers/ingest.py) beside the server. Unset: no broker (the simulator can feed the store in-process)."""
    raw_readings_fold_minutes: float = 60.0
    """How often the jobs fold raw readings older than ``CITYTWIN_RAW_READINGS_DAYS`` into hourly aggregates."""
    workers: int = 1
    """``CITYTWIN_WORKERS``: web worker processes behind the one port (1 = one process, threads only)."""
    threads: int = 24
    """``CITYTWIN_THREADS``: request threads per worker. 24, not 8: at 50 users a page's scripts, its shell and the
    polls (a millisecond or two of the app's time each) waited for a thread behind the callbacks — p95 over all
    requests 604–796 ms with 8 threads, 276–371 ms with 16–24, callbacks alike (bench/load.py --by-kind, README)."""
    window_idle_minutes: float = 10.0
    """``CITYTWIN_WINDOW_IDLE_MINUTES``: a window other than the default (7 days) that no request asked for in this
    long is no longer brought up to date by the live refresh, nor kept; the next request for it computes it again
    (dashboard/services.py). Several workers compute only the default window before they fork."""
    redis_url: str | None = None
    """``CITYTWIN_REDIS_URL``: shared state of several processes (sign-in lockouts); unset, each keeps its own."""
    snapshots: bool = False
    """``CITYTWIN_SNAPSHOTS``: keep a columnar snapshot of the loaded city beside the store, so a restart reads
    Parquet instead of the database (layers/snapshot.py). On for the server (app.py), off for library use."""
    basemap_url: str | None = None
    """``CITYTWIN_BASEMAP_URL``: an XYZ raster tile URL (``…/{z}/{x}/{y}.png``) of a tile server on the
    deployment's own network, drawn under the layers. Unset: no raster base map."""
    basemap_pmtiles: str | None = None
    """``CITYTWIN_BASEMAP_PMTILES``: a PMTiles file of vector tiles the city made itself (docs/basemap.md), served
    by this server at ``/basemap/{z}/{x}/{y}.mvt`` and drawn dark under the layers. Unset: the land is drawn from
    the city's own boundaries."""
    oidc_issuer: str | None = None
    """``CITYTWIN_OIDC_ISSUER``: the OpenID Connect provider's issuer URL (its ``/.well-known/openid-configuration``
    is read on the first single sign-on); unset, there is no single sign-on (docs/access.md)."""
    oidc_client_id: str | None = None
    """``CITYTWIN_OIDC_CLIENT_ID``: this dashboard's client id at the provider (needed with an issuer)."""
    oidc_client_secret: str | None = None
    """``CITYTWIN_OIDC_CLIENT_SECRET``: its client secret (needed with an issuer)."""
    oidc_name_claim: str = "preferred_username"
    """``CITYTWIN_OIDC_NAME_CLAIM``: the claim whose value is the local account's name (Grafana's
    ``login_attribute_path``)."""
    oidc_unknown: str = "refuse"
    """``CITYTWIN_OIDC_UNKNOWN``: a person the provider vouches for who has no local account: ``refuse`` (no access,
    an admin creates the account first) or ``viewer`` (an account with the viewer role over the whole city is made
    at the first sign-in, as Grafana's ``allow_sign_up`` with ``auto_assign_org_role = Viewer`` does)."""
    open311_posts_per_minute: int = 60
    """``CITYTWIN_OPEN311_POSTS_PER_MINUTE``: how many POSTs one Open311 API key may make in a minute (a key created
    by an admin may have its own limit); shared through Redis when ``CITYTWIN_REDIS_URL`` is set."""
    alert_seconds: float = 15.0
    """``CITYTWIN_ALERT_SECONDS``: how often the alert rules are evaluated (0 = off)."""
    idle_minutes: float = 30.0
    """``CITYTWIN_IDLE_MINUTES``: a session ends after this long without a request (docs/access.md)."""
    signin_attempts: int = 5
    """``CITYTWIN_SIGNIN_ATTEMPTS``: failed sign-ins that lock an account name (an address: four times as many)."""
    lockout_seconds: int = 900
    """``CITYTWIN_LOCKOUT_SECONDS``: how long a lock lasts after the last failure."""
    secret_key: str | None = None
    """``CITYTWIN_SECRET_KEY``: the key that signs session cookies; unset, a random key kept in the store (every
    worker shares it, a restart keeps people signed in)."""
    secure_cookies: bool = False
    """``CITYTWIN_SECURE_COOKIES``: ``1`` behind HTTPS, so that the browser sends the session cookie over HTTPS only."""
    frame_ancestors: str = "'self'"
    """``CITYTWIN_FRAME_ANCESTORS``: who may show the pages in a frame (the CSP's ``frame-ancestors``)."""
    origins: tuple[str, ...] = ()
    """``CITYTWIN_ORIGINS``: comma-separated origins, besides the server's own, whose pages may call its callbacks
    (a proxy's public address)."""
    store_timeouts: StoreTimeouts = field(default_factory=StoreTimeouts)
    """``CITYTWIN_STATEMENT_TIMEOUT_SECONDS`` (a request's lease on a connection), ``CITYTWIN_CONNECT_TIMEOUT_SECONDS``
    and ``CITYTWIN_POOL_TIMEOUT_SECONDS``: how long anything waits on the store (layers/store_health.py)."""
    raw_readings_days: float = DEFAULT_RAW_DAYS
    """``CITYTWIN_RAW_READINGS_DAYS``: raw readings older than this are folded into hourly aggregates."""
    open311_keys: tuple[tuple[str, str], ...] = ()
    """``CITYTWIN_OPEN311_KEYS`` (``key=channel,…``) and ``CITYTWIN_OPEN311_DEV_KEY=1``: the Open311 API keys and
    their intake channels (keys an admin creates are in the store)."""
    tours_folder: Path | None = None
    """``CITYTWIN_TOURS``: a folder of tour files (docs/tours.md); unset, the tours shipped with the app."""
    snapshot_dir: Path | None = None
    """``CITYTWIN_SNAPSHOT_DIR``: where the city's columnar snapshots are kept (layers/snapshot.py); unset, beside an
    SQLite file, else under data/snapshots/."""

    @classmethod
    def from_environ(cls, environ=None, **overrides) -> "Settings":
        environ = os.environ if environ is None else environ
        values = dict(
            database_url=environ.get("CITYTWIN_DATABASE_URL") or None,
            mode=_choice(environ, "CITYTWIN_MODE", cls.mode, MODES),
            version_check_seconds=_number(environ, "CITYTWIN_VERSION_CHECK_SECONDS", cls.version_check_seconds),
            clock_step_seconds=_number(environ, "CITYTWIN_CLOCK_STEP_SECONDS", cls.clock_step_seconds, minimum=1),
            escalation_minutes=_number(environ, "CITYTWIN_ESCALATION_MINUTES", cls.escalation_minutes,
                                       off="0 turns the sweep off"),
            simulate_readings_per_second=_number(environ, "CITYTWIN_SIMULATE", cls.simulate_readings_per_second,
                                                 off="0 turns the simulator off"),
            mqtt_broker=_broker(environ, "CITYTWIN_MQTT_BROKER"),
            workers=_whole(environ, "CITYTWIN_WORKERS", cls.workers),
            threads=_whole(environ, "CITYTWIN_THREADS", cls.threads),
            window_idle_minutes=_number(environ, "CITYTWIN_WINDOW_IDLE_MINUTES", cls.window_idle_minutes,
                                        minimum=0.01),
            redis_url=environ.get("CITYTWIN_REDIS_URL") or None,
            snapshots=_choice(environ, "CITYTWIN_SNAPSHOTS", "on", ("on", "off")) == "on",
            basemap_url=_tile_url(environ, "CITYTWIN_BASEMAP_URL"),
            basemap_pmtiles=_pmtiles(environ, "CITYTWIN_BASEMAP_PMTILES"),
            oidc_issuer=_url(environ, "CITYTWIN_OIDC_ISSUER"),
            oidc_client_id=(environ.get("CITYTWIN_OIDC_CLIENT_ID") or "").strip() or None,
            oidc_client_secret=environ.get("CITYTWIN_OIDC_CLIENT_SECRET") or None,
            oidc_name_claim=(environ.get("CITYTWIN_OIDC_NAME_CLAIM") or "").strip() or cls.oidc_name_claim,
            oidc_unknown=_choice(environ, "CITYTWIN_OIDC_UNKNOWN", cls.oidc_unknown, ("refuse", "viewer")),
            open311_posts_per_minute=_whole(environ, "CITYTWIN_OPEN311_POSTS_PER_MINUTE",
                                            cls.open311_posts_per_minute),
            alert_seconds=_number(environ, "CITYTWIN_ALERT_SECONDS", cls.alert_seconds,
                                  off="0 turns the evaluation off"),
            idle_minutes=_number(environ, "CITYTWIN_IDLE_MINUTES", cls.idle_minutes, minimum=0.01),
            signin_attempts=_whole(environ, "CITYTWIN_SIGNIN_ATTEMPTS", cls.signin_attempts),
            lockout_seconds=_whole(environ, "CITYTWIN_LOCKOUT_SECONDS", cls.lockout_seconds),
            secret_key=environ.get("CITYTWIN_SECRET_KEY") or None,
            secure_cookies=_choice(environ, "CITYTWIN_SECURE_COOKIES", "0", ("0", "1", "true", "false", "yes", "no"))
            in ("1", "true", "yes"),
            frame_ancestors=(environ.get("CITYTWIN_FRAME_ANCESTORS") or "").strip() or cls.frame_ancestors,
            origins=tuple(o.strip().rstrip("/") for o in (environ.get("CITYTWIN_ORIGINS") or "").split(",")
                          if o.strip()),
            store_timeouts=StoreTimeouts.from_environ(environ),
            raw_readings_days=_or_exit(raw_days, environ),
            open311_keys=tuple(_or_exit(_open311_keys, environ).items()),
            tours_folder=Path(environ["CITYTWIN_TOURS"]) if (environ.get("CITYTWIN_TOURS") or "").strip() else None,
            snapshot_dir=Path(environ["CITYTWIN_SNAPSHOT_DIR"].strip())
            if (environ.get("CITYTWIN_SNAPSHOT_DIR") or "").strip() else None,
        )
        if values["oidc_issuer"]:
            for name, key in (("CITYTWIN_OIDC_CLIENT_ID", "oidc_client_id"),
                              ("CITYTWIN_OIDC_CLIENT_SECRET", "oidc_client_secret")):
                if not values[key]:
                    raise SystemExit(f"error: {name} is not set; single sign-on (CITYTWIN_OIDC_ISSUER) needs it")
        if values["mode"] == "live" and not (environ.get("CITYTWIN_VERSION_CHECK_SECONDS") or "").strip():
            # Live screens promise a change on the wall within seconds: the store's versions are compared as often
            # as the screens poll (one small query; the change itself is still read in the background).
            values["version_check_seconds"] = LIVE_VERSION_CHECK_SECONDS
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def but(self, **changes) -> "Settings":
        """A copy with some settings changed (tests, command-line options)."""
        return replace(self, **changes)

    @property
    def live(self) -> bool:
        return self.mode == "live"

    @property
    def single_sign_on(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                         if f.name not in ("database_url", "oidc_client_secret", "secret_key"))


def _or_exit(read, environ):
    """``read(environ)``, its ValueError (which names the variable) as the one-line exit of every bad setting."""
    try:
        return read(environ)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def _open311_keys(environ) -> dict[str, str]:
    from dashboard.open311 import keys_from_env  # the channels are the reference's; imported when read, not before

    return keys_from_env(environ)


def _number(environ, name: str, default: float, minimum: float = 0, off: str | None = None) -> float:
    text = environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise SystemExit(f"error: {name}={text!r} is not a number") from None
    if value != value or value < minimum or value == float("inf"):
        hint = f"; {off}" if off else ""
        raise SystemExit(f"error: {name}={text!r} must be at least {minimum:g}{hint}")
    return value


def _broker(environ, name: str) -> str | None:
    text = (environ.get(name) or "").strip()
    if not text:
        return None
    if not text.startswith("mqtt://") or ":" not in text[len("mqtt://"):]:
        raise SystemExit(f"error: {name}={text!r} is not mqtt://host:port")
    return text


def _tile_url(environ, name: str) -> str | None:
    text = (environ.get(name) or "").strip()
    if not text:
        return None
    if not text.startswith(("http://", "https://", "/")) or not all(f"{{{p}}}" in text for p in "zxy"):
        raise SystemExit(f"error: {name}={text!r} is not a tile URL with {{z}}, {{x}} and {{y}} "
                         "(e.g. http://tiles.city.local/{z}/{x}/{y}.png)")
    return text


def _pmtiles(environ, name: str) -> str | None:
    """The path of a PMTiles file of vector tiles, opened once to check it (its header: a few bytes)."""
    text = (environ.get(name) or "").strip()
    if not text:
        return None
    from dashboard.maps.basemap import PMTilesBaseMap

    try:
        PMTilesBaseMap.open(text)
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {name}={text!r}: {error}") from None
    return text
def _url(environ, name: str) -> str | None:
    text = (environ.get(name) or "").strip()
    if not text:
        return None
    if not text.startswith(("https://", "http://")) or len(text.split("://", 1)[1]) < 1:
        raise SystemExit(f"error: {name}={text!r} is not an http(s) URL")
    return text.rstrip("/")


def _whole(environ, name: str, default: int) -> int:
    text = environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"error: {name}={text!r} is not a whole number") from None
    if value < 1:
        raise SystemExit(f"error: {name}={text!r} must be 1 or more")
    return value


def _choice(environ, name: str, default: str, allowed: tuple[str, ...]) -> str:
    text = (environ.get(name) or default).strip().lower()
    if text not in allowed:
        raise SystemExit(f"error: {name}={text!r} is not one of {', '.join(allowed)}")
    return text
