"""citytwin: serve the dashboard.

    python app.py [--port 8050] [--host 127.0.0.1] [--database-url URL] [--workers N] [--jobs-only]

The database defaults to CITYTWIN_DATABASE_URL, else the embedded file data/citytwin.sqlite (`make run` builds it).
Settings: dashboard/settings.py (every CITYTWIN_* variable). With CITYTWIN_WORKERS (or --workers) above 1, gunicorn
serves the port with that many worker processes, forked after the city is loaded and warmed so that they share its
memory, and the jobs that write to the store on a schedule (the supervision sweep, the simulator) run in one
separate process, forked from the master like the workers (`app.py --jobs-only` runs them alone), never in a web
worker.
"""
from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
import threading
import time

import dash
import flask
import pandas as pd
import waitress
from dash import Dash, dcc, html

from dashboard import alerts_api, auth, delivery, exports, health, ids, live, open311, replies, services
from dashboard.components import tour
from dashboard.components.loading import boot_entry, boot_style
from dashboard.maps import routes as map_routes
from dashboard.settings import Settings
from dashboard.theme import css_variables
from layers.city_settings import timezone as city_timezone
from metrics.clocks import ESCALATION


def create_app(database_url: str | None = None, progress: bool = False, settings: Settings | None = None,
               jobs: bool = True, warm_now: bool = False) -> Dash:
    """The Dash app over the configured store. ``jobs``: run the scheduled jobs in this process (one process
    serving alone); ``warm_now``: warm the default window, the map and the open orders before returning (before
    gunicorn forks its workers, so that they share what was computed) instead of in a background thread, with the
    other windows."""
    settings = settings or Settings.from_environ()  # a bad setting stops the start before the city is loaded
    sweep_minutes = settings.escalation_minutes
    service = services.configure(database_url, progress=progress, settings=settings)
    if not service.store.is_built():
        raise SystemExit(f"error: no city in {service.store.url}; build the sample with "
                         f"`make sample` (or `python -m sample_data build`), or import your own (docs/importing.md)")
    app = Dash(__name__, use_pages=True, pages_folder="dashboard/pages", title="citytwin",
               suppress_callback_exceptions=True, serve_locally=True, update_title=None)
    _every_app_gets_every_callback()
    app.index_string = app.index_string.replace("</head>", f"<style>{css_variables()}</style></head>")
    # Before any script has run the page shows a skeleton of the screen in its language, not Dash's "Loading..."
    interpolate = app.interpolate_index

    def interpolate_with_skeleton(**parts):
        lang = flask.request.args.get("lang") if flask.has_request_context() else None
        return interpolate(**{**parts, "app_entry": boot_entry(lang), "css": parts.get("css", "") + boot_style(lang)})

    app.interpolate_index = interpolate_with_skeleton
    # A function: each page load starts from the generation it was drawn from (dashboard.live follows it on).
    app.layout = lambda: html.Div([dcc.Location(id=ids.URL, refresh="callback-nav"), dash.page_container,
                                   *tour.shell_components(), *live.shell_components()], id="shell")
    map_routes.register(app.server)
    exports.register_routes(app.server)
    open311.register(app.server, keys=dict(settings.open311_keys), settings=settings)
    live.register(app.server)
    alerts_api.register(app.server)
    health.register(app.server, settings)
    replies.register(app.server)  # before the access layer wraps the callback route (dashboard/replies.py)
    auth.setup(app)  # sign-in, the gate on every request, hardened answers, the audit trail (docs/access.md)
    delivery.register(app.server)  # compressed, cached and timed answers (after every route is registered)
    service.warm()
    if warm_now:
        # Before gunicorn forks: the default window only (warmed above). Today and 30 days, warmed here before,
        # were shared by the workers only until their first live refresh, then followed by every worker for good
        # whether anyone looked at them or not; now each is computed where it is first asked (and dropped when
        # idle, Settings.window_idle_minutes). The first page came 5–6 s later for them and the processes held
        # 0.7 GB more (bench/serve_start.py, README).
        warm_in_background(service, windows=())
    else:
        # The other windows are ready before anyone asks for them (at the city scale they take seconds each).
        threading.Thread(target=warm_in_background, args=(service,), daemon=True, name="warm-windows").start()
    if jobs:
        start_jobs(service, settings)
    return app


_REGISTERED: tuple | None = None


def _every_app_gets_every_callback() -> None:
    """Dash moves the callbacks that page modules register (at their first import) into the first app that serves
    a request, and empties its global registry; a second app in the same process (tests, benches) would get only
    some. The first call keeps a copy, and every later app starts from it."""
    from dash import _callback

    global _REGISTERED
    if _REGISTERED is None:
        _REGISTERED = (dict(_callback.GLOBAL_CALLBACK_MAP), list(_callback.GLOBAL_CALLBACK_LIST),
                       list(_callback.GLOBAL_INLINE_SCRIPTS))
        return
    callback_map, callback_list, inline_scripts = _REGISTERED
    _callback.GLOBAL_CALLBACK_MAP.clear()
    _callback.GLOBAL_CALLBACK_MAP.update(callback_map)
    _callback.GLOBAL_CALLBACK_LIST[:] = callback_list
    _callback.GLOBAL_INLINE_SCRIPTS[:] = inline_scripts


def start_jobs(service, settings: Settings, publish: bool = False) -> list[threading.Thread]:
    """The jobs that write to the store on a schedule, each in its own thread: in the one serving process, or in
    the jobs process beside several web workers (never in a web worker: each would run them again). ``publish``:
    beside several workers, also read the stream's changes once for all of them (layers.stream_spool)."""
    threads = []
    if publish and settings.version_check_seconds > 0:
        from layers.stream_spool import StreamSpool, publish_every

        threads.append(threading.Thread(target=publish_every, args=(service.store, settings.version_check_seconds),
                                        daemon=True, name="stream-publisher"))
        service.stream_spool = StreamSpool.of(service.store)  # this process takes them in from there too
    if settings.escalation_minutes:
        threads.append(threading.Thread(target=escalate_every, args=(service, settings.escalation_minutes),
                                        daemon=True, name="escalation"))
    if settings.alert_seconds:
        threads.append(threading.Thread(target=evaluate_alerts_every, args=(service, settings.alert_seconds),
                                        daemon=True, name="alerts"))
    if settings.mqtt_broker:
        from layers.ingest import IngestService

        IngestService(service.store, settings.mqtt_broker).start()  # its own threads (paho's loop, the batcher)
    if settings.simulate_readings_per_second or settings.mqtt_broker:
        threads.append(threading.Thread(target=fold_every, args=(service, settings.raw_readings_fold_minutes),
                                        daemon=True, name="retention"))
    if settings.simulate_readings_per_second:
        threads.append(threading.Thread(target=simulate_every_second,
                                        args=(service, settings.simulate_readings_per_second),
                                        daemon=True, name="simulator"))
    for thread in threads:
        thread.start()
    return threads


def evaluate_alerts_every(service, seconds: float, stop: threading.Event | None = None) -> None:
    """The alert rules, evaluated every ``seconds`` in their own thread (until the engine does it); ``stop`` ends
    the loop. It waits on an event, not ``time.sleep``, so a test that replaces ``time.sleep`` (the escalation
    sweep's) never steers this thread."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            service.evaluate_alerts()
        except Exception as error:  # noqa: BLE001 — a failed evaluation is reported; the next one still runs
            print(f"citytwin: the alert evaluation failed: {error!r}", file=sys.stderr, flush=True)
        stop.wait(seconds)


def escalate_every(service, minutes: float) -> None:
    """The supervision sweep (督办), in its own thread: every ``minutes`` (the first time ``minutes`` after the
    start), each red-carded order not yet escalated is escalated (one set-based write, each logged) as
    "supervision sweep"."""
    while True:
        time.sleep(minutes * 60)
        try:
            escalated = service.work_orders().escalate_overdue(pd.Timestamp.now(tz=city_timezone()),
                                                               actor="supervision sweep", **ESCALATION)
        except Exception as error:  # noqa: BLE001 — a failed sweep is reported; the next one still runs
            print(f"citytwin: the escalation sweep failed: {error!r}", file=sys.stderr, flush=True)
            continue
        if escalated:
            print(f"citytwin: escalated {escalated:,} red-carded orders", flush=True)


def fold_every(service, minutes: float) -> None:
    """Retention: raw readings older than the window folded into hourly aggregates, every ``minutes``."""
    from layers.retention import fold

    while True:
        time.sleep(minutes * 60)
        try:
            fold(service.store, days=service.settings.raw_readings_days)
        except Exception as error:  # noqa: BLE001 — the next fold tries again; nothing is lost meanwhile
            print(f"citytwin: folding raw readings failed: {error!r}", file=sys.stderr, flush=True)


def simulate_every_second(service, rate: float) -> None:
    """The sample city's sensors, live, without a broker (``CITYTWIN_SIMULATE`` readings a second): the simulator
    writes through the ingest's batch writer, once a second (sample_data/simulate.py)."""
    from sample_data.simulate import Simulator

    from layers.incident_requests import IncidentRequests

    simulator = Simulator(service.store, rate=rate)
    service.simulator = simulator  # the tour can start an incident on it (in this process)
    requests = IncidentRequests(service.store)  # … and from a web worker, through the store
    while True:
        started = time.monotonic()
        try:
            requests.serve(simulator.start_incident)
            simulator.step()
        except Exception as error:  # noqa: BLE001 — a failed step is reported; the next one tries again
            print(f"citytwin: the simulator's step failed: {error!r}", file=sys.stderr, flush=True)
        time.sleep(max(0.05, 1.0 - (time.monotonic() - started)))


def warm_in_background(service, windows=("today", "30d")) -> None:
    """What the first users would otherwise wait for: the other ``windows``, the map's tile index and colourings,
    the replayed day's hours and the open orders of the supervision board (at the city scale about a minute of
    work, in this thread)."""
    service.work_orders().warm()
    service.open_orders()
    service.warm(windows)
    map_routes.warm(service)
    service.warm_playback()
    service.keep_computed()  # the next start of this same city reads its first page's tables instead
    map_routes.keep_tile_index(service, service.generation())  # … and its tile index
    service.drop_shared_facts()  # the windows are computed: what their indicators shared is not needed now
    services.give_back_free_memory()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=None, help="web worker processes (CITYTWIN_WORKERS)")
    parser.add_argument("--jobs-only", action="store_true", help="run the scheduled jobs only (no web server)")
    parser.add_argument("--debug", action="store_true", help="Flask's development server with Dash's dev tools")
    args = parser.parse_args(argv)
    settings = Settings.from_environ(workers=args.workers)
    if args.jobs_only:
        return run_jobs_only(args.database_url, settings)
    if settings.workers > 1 and not args.debug:
        return serve_with_workers(args, settings)
    app = create_app(args.database_url, progress=True, settings=settings)
    print(f"citytwin: serving {services.get().store.url} on http://{args.host}:{args.port}/ ({settings.mode} mode)",
          flush=True)
    if args.debug:
        app.run(host=args.host, port=args.port, debug=True)
    else:
        # A wall screen runs all day: a production WSGI server, not Flask's development one.
        # Browsers keep up to 6 connections each alive between steps: room for hundreds of screens, and idle ones
        # closed after 30 s instead of 120 (at 25 users the default 100 connections ran out, bench/load.py).
        waitress.serve(app.server, host=args.host, port=args.port, threads=settings.threads, ident="",
                       connection_limit=1000, channel_timeout=30,
                       max_request_header_size=32 * 1024, max_request_body_size=auth.MAX_REQUEST_BYTES)
    return 0


def run_jobs_only(database_url: str | None, settings: Settings) -> int:
    """The jobs process beside several web workers: the scheduled writes, and nothing served."""
    service = services.configure(database_url, settings=settings)
    threads = start_jobs(service, settings, publish=True)
    print(f"citytwin: jobs running ({', '.join(t.name for t in threads) or 'none'})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    return 0


def serve_with_workers(args, settings: Settings) -> int:
    """gunicorn on the port with ``settings.workers`` processes. The master loads the city and warms every window
    before it forks, so the workers start at once and share those pages of memory (copy-on-write); the master
    replaces a worker that dies. Each worker then follows the store on its own (dashboard.services), taking the
    stream's changes from the jobs process's spool (layers.stream_spool)."""
    from gunicorn.app.base import BaseApplication

    class Workers(BaseApplication):
        def load_config(self):
            for key, value in dict(bind=f"{args.host}:{args.port}", workers=settings.workers,
                                   worker_class="gthread", threads=settings.threads, preload_app=True,
                                   # Idle browser connections kept 30 s, as waitress keeps them serving alone:
                                   # gunicorn's default of 2 s closed them between a person's steps (5 s apart),
                                   # and a request sent as the server closed its connection failed (bench/load.py).
                                   keepalive=30,
                                   timeout=120, graceful_timeout=10, post_fork=after_fork,
                                   accesslog=None, errorlog="-", loglevel="warning").items():
                self.cfg.set(key, value)

        def load(self):
            app = create_app(args.database_url, progress=True, settings=settings, jobs=False, warm_now=True)
            fork_jobs(settings)
            print(f"citytwin: serving {services.get().store.url} on http://{args.host}:{args.port}/ with "
                  f"{settings.workers} workers ({settings.mode} mode)", flush=True)
            return app.server

    Workers().run()
    return 0


def fork_jobs(settings: Settings) -> int:
    """The jobs process beside the workers, forked from the master once the city is loaded and warmed, as the
    workers are: it shares the master's city copy-on-write instead of loading one of its own (a whole second city
    at the city scale, and a second start competing for the cores with the master's). Stopped with the master."""
    master = os.getpid()
    sys.stdout.flush(), sys.stderr.flush()  # else what is buffered is printed twice
    pid = os.fork()
    if pid:
        # Only in the master: gunicorn's workers are forked from it too and run the atexit handlers they inherit.
        atexit.register(lambda: os.getpid() == master and _signal(pid, signal.SIGTERM))
        return pid
    try:
        service = services.get()
        service.store.engine.dispose(close=False)  # the master's connections stay the master's
        service.reset_after_fork()
        threads = start_jobs(service, settings, publish=True)
        print(f"citytwin: jobs running ({', '.join(t.name for t in threads) or 'none'})", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
    except BaseException as error:  # noqa: BLE001 — said, then the process ends as below
        print(f"citytwin: the jobs process failed: {error!r}", file=sys.stderr, flush=True)
    finally:
        os._exit(0)  # never back into gunicorn's start in this process


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def after_fork(_server, _worker) -> None:
    """In a new worker: its own database connections (a connection must never be shared across processes), a
    fresh lock (no other thread existed at the fork, but a lock's state is copied as it was), and the stream's
    changes taken from the jobs process's spool while it publishes them (layers.stream_spool)."""
    from layers.stream_spool import StreamSpool

    service = services.get()
    service.store.engine.dispose(close=False)
    service.reset_after_fork()
    if service.settings.version_check_seconds > 0:
        service.stream_spool = StreamSpool.of(service.store)


if __name__ == "__main__":
    sys.exit(main())
