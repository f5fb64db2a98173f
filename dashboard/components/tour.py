"""Tour mode for presenters: the app shell's timer, state and caption overlay, and the "Tour" menu for a top bar.

The tour lives in the shell (outside ``dash.page_container``), so it survives the page changes it makes: a
``dcc.Store`` holds the running tour (:mod:`dashboard.tours` state, kept for the browser tab), a ``dcc.Interval``
moves it on, and each step sets the URL, which the pages follow. ``?tour=<name>`` on any page starts a tour, and so
does a button of :func:`tour_control`; Stop ends it and leaves the user on the current view.
"""
from __future__ import annotations

import os

from urllib.parse import parse_qs

import dash
from dash import ALL, Input, Output, State, callback, clientside_callback, dcc, html, no_update

from dashboard import auth, ids, services, tours
from dashboard.i18n import both, pick, t
from layers.incident_requests import IncidentRequests

STATE = "tour-state"
TIMER = "tour-timer"
OVERLAY = "tour-overlay"
TEXT = "tour-text"
PREVIOUS = "tour-previous"
NEXT = "tour-next"
STOP = "tour-stop"
START = "tour-start"  # pattern {"type": START, "tour": name}: start buttons can be on any page
ASKED = "tour-asked"  # {"tour": name, "search": the URL's query}: a start button clicked, or ?tour= in the URL


def shell_components() -> list:
    """What the app shell needs for tours: the state, the timer and the (hidden) caption overlay."""
    return [
        # data=None, as the tab keeps it when no tour runs: the Store then sets nothing as it mounts, and show()
        # is called only when the tab holds a tour (a reload in the middle of one).
        dcc.Store(id=STATE, storage_type="session", data=None),
        dcc.Store(id=ASKED),
        dcc.Interval(id=TIMER, disabled=True, interval=1000),
        html.Div(id=OVERLAY, className="tour-overlay hidden", role="status", **{"aria-live": "polite"}, children=[
            html.Div(id=TEXT),
            html.Div(className="tour-buttons", children=[
                html.Button("‹", id=PREVIOUS, className="tour-button", title="previous step 上一步"),
                html.Button("›", id=NEXT, className="tour-button", title="next step 下一步"),
                html.Button(["■ Stop", html.Span("停止", className="zh")], id=STOP, className="tour-button stop"),
            ]),
        ]),
    ]


def page_paths() -> set[str]:
    """The paths (or path templates) of the app's pages: a tour step must open one of them."""
    return {page.get("path_template") or page["path"] for page in dash.page_registry.values()}


def tours_folder():
    """The server's tours folder (``CITYTWIN_TOURS``, read at start with the other settings)."""
    return services.get().settings.tours_folder or tours.DEFAULT_FOLDER


def tour_control(lang: str = "en") -> html.Details:
    """A "Tour" menu listing the tours of the tours folder, for a page's top bar."""
    found, problems = tours.available_tours(tours_folder(), page_paths=page_paths())
    items = [html.Button(id={"type": START, "tour": tour.name}, className="tour-start", children=[
        html.Span(pick(tour.title["en"], tour.title["zh"], lang), className="tour-start-title"),
        html.Span(t("tour.length", lang, steps=len(tour.steps), seconds=f"{tour.total_seconds:g}"),
                  className="muted")]) for tour in found]
    items += [html.Div(problem, className="tour-problem") for problem in problems]
    return html.Details(className="tour-menu menu", id="tour-menu", children=[
        html.Summary(t("tour.menu", lang), className="menu-button", title=t("tour.help", lang)),
        html.Div(items or html.Div(t("tour.none", lang, folder=str(tours_folder())), className="muted"),
                 className="menu-items"),
    ])


def started(name: str, search: str | None) -> dict:
    """The state of tour ``name`` at its first step, or an ``{"error": …}`` state saying why it cannot start."""
    try:
        tour = tours.load_tour(tours.tour_path(name, tours_folder()), page_paths())
        problems = tours.unknown_units(tour, services.get().city().units.index)
        if problems:
            raise tours.TourError("; ".join(problems))
    except tours.TourError as error:
        # Shown in the browser: name the tour's file, never the server's folder.
        return {"error": str(error).replace(f"{tours_folder()}{os.sep}", "")}
    language = query_value(search, "lang")
    return tours.start(tour, language)


def played(state: dict) -> dict:
    """``state`` with the note of its step's incident, started now when the step plays one. The incident is read
    from the tour's file on the server, never from the browser's copy of the tour (which anyone can edit)."""
    state = {key: value for key, value in state.items() if key != "note"}
    try:
        tour = tours.load_tour(tours.tour_path(state["name"], tours_folder()), page_paths())
    except tours.TourError:
        return state
    if state["step"] >= len(tour.steps) or not tour.steps[state["step"]].incident:
        return state
    return {**state, "note": start_incident(tour.steps[state["step"]].incident)}


def start_incident(spec: str) -> dict:
    """Start the incident ``spec`` (``KIND[:PLACE]``) on this process's simulator, if the asker may; what happened,
    in both languages. In a web worker beside the jobs process, the jobs process's simulator is asked through the
    store (layers/incident_requests.py); without a simulator anywhere (replay mode) nothing starts."""
    kind, _, place = spec.partition(":")
    refused = auth.may_start_incident()
    if refused:
        auth.record("start_incident", spec, outcome="refused", detail=refused)
        return dict(zip(("en", "zh"), both(f"tour.refused.{refused}")))
    service = services.get()
    simulator = service.simulator
    if simulator is not None:
        try:
            incident = simulator.start_incident(kind, place or None)
        except ValueError as error:  # a place the city does not have: the simulator says which
            return _failed(spec, str(error))
        return _started(kind, incident.place)
    if not service.settings.simulate_readings_per_second:
        auth.record("start_incident", spec, outcome="refused", detail="no simulator in this process")
        return dict(zip(("en", "zh"), both("tour.incident.no_simulator")))
    # The simulator runs in the jobs process (several web workers): ask it through the store, and say what it did
    # if it answers within a few seconds (it takes requests once a second).
    queue = IncidentRequests(service.store)
    answer = queue.wait(queue.ask(spec, auth.actor()), timeout=INCIDENT_ANSWER_SECONDS)
    status = answer["status"] if answer else "failed"
    if status == "started":
        return _started(kind, answer["place"])
    if status in ("pending", "taken"):
        auth.record("start_incident", spec, outcome="requested")
        return {lang: t("tour.incident.requested", lang, incident=t(f"tour.incident.kind.{kind}", lang))
                for lang in ("en", "zh")}
    return _failed(spec, (answer or {}).get("detail") or status)


INCIDENT_ANSWER_SECONDS = 5.0
"""How long a tour's step waits for the jobs process's simulator to say it started the incident."""


def _started(kind: str, place: str | None) -> dict:
    auth.record("start_incident", f"{kind}:{place}")
    return {lang: t("tour.incident.started", lang, incident=t(f"tour.incident.kind.{kind}", lang),
                    place=t("tour.incident.at", lang, place=place) if place else "")
            for lang in ("en", "zh")}


def _failed(spec: str, reason: str) -> dict:
    auth.record("start_incident", spec, outcome="refused", detail=reason)
    return dict(zip(("en", "zh"), both("tour.incident.failed", reason=reason)))


def query_value(search: str | None, key: str) -> str | None:
    values = parse_qs((search if isinstance(search, str) else "").lstrip("?")).get(key)
    return values[-1] if values else None


def _texts(value) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(lang), str) for lang in ("en", "zh"))


def well_formed(state) -> bool:
    """Whether ``state`` (kept by the browser) has the shape :func:`dashboard.tours.start` gives it."""
    if not isinstance(state, dict):
        return False
    if "error" in state:
        return isinstance(state["error"], str)
    steps, step = state.get("steps"), state.get("step")
    return (isinstance(steps, list) and bool(steps) and type(step) is int and 0 <= step < len(steps)
            and _texts(state.get("title")) and isinstance(state.get("name"), str)
            and state.get("language") in (None, "en", "zh")
            and (state.get("note") is None or _texts(state["note"]))
            and all(isinstance(s, dict) and _texts(s.get("caption")) and isinstance(s.get("path"), str)
                    and s["path"].startswith("/") and not s["path"].startswith("//")
                    and type(s.get("seconds")) in (int, float) and 0 < s["seconds"] <= 3600 for s in steps))


# Which tour the browser asks for, decided in the browser: a page change (a new URL, new start buttons drawn) asks
# for none, and the server is asked only when a tour is to start. A start button's id names its tour; the URL's
# ?tour= is read on the first load and whenever the URL changes.
clientside_callback(
    """function(search, clicks) {
        const triggered = window.dash_clientside.callback_context.triggered || [];
        const asked = (tour) => ({tour: tour, search: search || "", at: Date.now()});
        for (const trigger of triggered) {
            const prop = trigger.prop_id || "";
            if (prop.endsWith(".n_clicks") && prop.startsWith("{") && trigger.value) {
                try { return asked(JSON.parse(prop.slice(0, -".n_clicks".length)).tour); } catch (e) { }
            }
        }
        const byUrl = !triggered.length || triggered.some(t => t.prop_id === "url.search" || t.prop_id === ".");
        const tour = byUrl ? new URLSearchParams(search || "").get("tour") : null;
        return tour ? asked(tour) : window.dash_clientside.no_update;
    }""",
    Output(ASKED, "data"),
    Input(ids.URL, "search"),
    Input({"type": START, "tour": ALL}, "n_clicks"),
)


@callback(
    Output(STATE, "data", allow_duplicate=True),
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ASKED, "data"),
    Input(TIMER, "n_intervals"),
    Input(PREVIOUS, "n_clicks"),
    Input(NEXT, "n_clicks"),
    Input(STOP, "n_clicks"),
    State(STATE, "data"),
    prevent_initial_call=True,
)
def drive(asked, _ticks, _previous, _next, _stop, state):
    """Start, move on, go back or stop; a step's view is opened by setting the URL."""
    trigger = dash.ctx.triggered_id
    state = state if well_formed(state) else None  # the browser keeps it: only a state this module made is used
    if trigger == ASKED:
        name = asked.get("tour") if isinstance(asked, dict) else None
        search = asked.get("search") if isinstance(asked, dict) else None
        if not isinstance(name, str) or not name:
            return no_update, no_update
        state = started(name, search if isinstance(search, str) else "")
    elif trigger == STOP:
        return None, no_update
    elif trigger in (TIMER, NEXT, PREVIOUS):
        if not state or "steps" not in state:
            return no_update, no_update
        state = tours.move(state, -1 if trigger == PREVIOUS else 1)
        if state is None:  # the last step has had its time: the user has the screen back
            return None, no_update
    else:
        return no_update, no_update
    if "error" in state:
        return state, no_update
    # A drill's incident starts when its step comes, not again when going back to it.
    state = played(state) if trigger != PREVIOUS else {k: v for k, v in state.items() if k != "note"}
    return state, tours.step_href(state)


@callback(
    Output(TEXT, "children"),
    Output(OVERLAY, "className"),
    Output(TIMER, "interval"),
    Output(TIMER, "disabled"),
    Input(STATE, "data"),
    prevent_initial_call=True,  # the overlay is drawn hidden; the state, kept for the tab, says when it is not
)
def show(state):
    """The caption overlay and the timer of the current step (hidden and stopped without a tour)."""
    if not well_formed(state):
        return [], "tour-overlay hidden", no_update, True
    if "error" in state:
        return [html.Div(["Tour cannot start", html.Span("导览无法启动", className="zh")], className="tour-title"),
                html.Div(state["error"], className="tour-error")], "tour-overlay error", no_update, True
    step = state["steps"][state["step"]]
    first = state.get("language") or "en"
    second = "zh" if first == "en" else "en"
    text = [
        html.Div(className="tour-head", children=[
            html.Span(f"{state['title'][first]} · {state['title'][second]}", className="tour-title"),
            html.Span(f"{state['step'] + 1} / {len(state['steps'])}", className="tour-count", id="tour-count"),
        ]),
        html.Div(step["caption"][first], className="tour-caption", id="tour-caption"),
        html.Div(step["caption"][second], className="tour-caption-alt", lang=second),
        html.Div(f"{state['note'][first]} · {state['note'][second]}", className="tour-note", id="tour-note")
        if state.get("note") else None,
        # A new key restarts the progress bar's animation at every step.
        html.Div(html.Span(className="tour-progress-bar", key=f"{state['name']}-{state['step']}",
                           style={"animationDuration": f"{step['seconds']}s"}), className="tour-progress"),
    ]
    # dcc.Interval restarts its clock only when its interval changes: one millisecond more on every other step
    # gives each step its full time even after a click on "next" between two ticks.
    interval = round(step["seconds"] * 1000) + state["step"] % 2
    return text, "tour-overlay", interval, False
