"""citytwin: serve the dashboard.

    python app.py [--port 8050] [--host 127.0.0.1] [--database-url URL]

The database defaults to CITYTWIN_DATABASE_URL, else the embedded file data/citytwin.sqlite (`make run` builds it).
"""
from __future__ import annotations

import argparse
import sys
import threading
import time

import dash
import pandas as pd
import waitress
from dash import Dash, dcc, html

from dashboard import exports, ids, open311, services
from dashboard.components import tour
from dashboard.maps import routes as map_routes
from dashboard.theme import css_variables
from layers.specs import CITY_TIMEZONE
from metrics.clocks import escalate_overdue


def create_app(database_url: str | None = None, progress: bool = False) -> Dash:
    sweep_minutes = services.escalation_minutes()  # a bad setting stops the start before the city is loaded
    alert_seconds = services.alert_seconds()
    service = services.configure(database_url, progress=progress)
    if not service.store.is_built():
        raise SystemExit(f"error: no city in {service.store.url}; build the sample with "
                         f"`make sample` (or `python -m sample_data build`), or import your own (docs/importing.md)")
    app = Dash(__name__, use_pages=True, pages_folder="dashboard/pages", title="citytwin",
               suppress_callback_exceptions=True, serve_locally=True, update_title=None)
    app.index_string = app.index_string.replace("</head>", f"<style>{css_variables()}</style></head>")
    app.layout = html.Div([dcc.Location(id=ids.URL, refresh="callback-nav"), dash.page_container,
                           *tour.shell_components()], id="shell")
    map_routes.register(app.server)
    exports.register_routes(app.server)
    open311.register(app.server)
    service.warm()
    # The other windows are ready before anyone asks for them (at the city scale they take seconds each).
    threading.Thread(target=warm_in_background, args=(service,), daemon=True, name="warm-windows").start()
    if sweep_minutes:
        threading.Thread(target=escalate_every, args=(service, sweep_minutes), daemon=True,
                         name="escalation").start()
    if alert_seconds:
        threading.Thread(target=evaluate_alerts_every, args=(service, alert_seconds), daemon=True,
                         name="alerts").start()
    return app


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
    start), each red-carded order not yet escalated is escalated, one action each, as "supervision sweep"."""
    while True:
        time.sleep(minutes * 60)
        try:
            escalated = escalate_overdue(service.work_orders(), pd.Timestamp.now(tz=CITY_TIMEZONE),
                                         actor="supervision sweep")
        except Exception as error:  # noqa: BLE001 — a failed sweep is reported; the next one still runs
            print(f"citytwin: the escalation sweep failed: {error!r}", file=sys.stderr, flush=True)
            continue
        if escalated:
            print(f"citytwin: escalated {len(escalated):,} red-carded orders", flush=True)


def warm_in_background(service) -> None:
    """What the first users would otherwise wait for: the other windows, the map's tile index and colourings,
    the replayed day's hours and the open orders of the supervision board (at the city scale about a minute of
    work, in this thread)."""
    service.work_orders().warm()
    service.open_orders()
    service.warm(("today", "30d"))
    map_routes.warm(service)
    service.warm_playback()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--debug", action="store_true", help="Flask's development server with Dash's dev tools")
    args = parser.parse_args(argv)
    app = create_app(args.database_url, progress=True)
    print(f"citytwin: serving {services.get().store.url} on http://{args.host}:{args.port}/", flush=True)
    if args.debug:
        app.run(host=args.host, port=args.port, debug=True)
    else:
        # A wall screen runs all day: a production WSGI server, not Flask's development one.
        waitress.serve(app.server, host=args.host, port=args.port, threads=8, ident="citytwin")
    return 0


if __name__ == "__main__":
    sys.exit(main())
