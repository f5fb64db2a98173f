"""Time playback on the map page: replay the last 24 hours of orders and alarms on the map and the KPI cards.

The points of the day go to the browser once, as binary columns with their time (seconds into the day); deck.gl's
GPU time filter (the component's ``timeFilter``) shows the last hour before the play head at 60 fps with no round
trip. The component reports the play head about 8 times a second; the browser sets the clock, and the KPI cards are
recomputed on the server only when the head enters a new hour (each hour's figures are computed once and remembered).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from dash import Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update
from deckgl_dash.binary import binary_data

from dashboard import ids, services
from dashboard.components.kpi import kpi_panel
from dashboard.components.layer_panel import redraw
from dashboard.components.loading import loading_slot
from dashboard.i18n import t
from dashboard.maps import deck, sources
from dashboard.maps.registry import text_last
from dashboard.theme import STATE_COLORS, rgba
from dashboard.view import parse_view
from layers.city_settings import timezone as city_timezone
from metrics.registry import INDICATORS

SPEEDS = {"slow": 900, "normal": 3600, "fast": 3 * 3600}
"""Seconds of the day replayed per second: 15 min/s (a day in 96 s), 1 h/s (24 s), 3 h/s (8 s)."""
MAX_PLAYBACK_POINTS = 100_000
TRAIL_SECONDS = 3600  # what the map shows: what arrived in the hour before the play head
NOT_YET = False  # the scrub and the play head's hour before a person plays or scrubs (the map is live)


def replaying(hour) -> bool:
    """Whether the play head's hour (from the browser) is a past hour the screen shows, rather than live."""
    return type(hour) in (int, float) and 0 <= hour <= services.PLAYBACK_HOURS


def playback_bar(lang: str = "en") -> html.Div:
    hours = services.PLAYBACK_HOURS
    start, _ = services.get().playback_period()
    return html.Div(className="playback", id=ids.PLAYBACK, children=[
        html.Button(t("play.replay", lang), id=ids.PLAY, n_clicks=0, className="play-button"),
        dcc.RadioItems(id=ids.PLAY_SPEED, value="normal", inline=True, className="play-speed", options=[
            {"label": t(f"play.speed.{speed}", lang), "value": speed} for speed in ("slow", "normal", "fast")]),
        loading_slot(dcc.Slider(id=ids.PLAY_SLIDER, min=0, max=hours, step=0.25, value=hours, updatemode="mouseup",
                                marks={h: f"{h}h" for h in range(0, hours + 1, 6)}, className="play-slider"),
                     "slider", lang, "slider-slot"),
        html.Span("", id=ids.PLAY_NOTE, className="play-note", title=t("play.note_title", lang)),
        html.Span(t("play.live", lang), id=ids.PLAY_CLOCK, className="play-clock"),
        # False, not None, until something happens: a Store kept in memory whose data is None sets it again as
        # it mounts (dcc.Store tells undefined from null), which called the callbacks below on every page drawn.
        dcc.Store(id=ids.PLAY_SCRUB, data=NOT_YET),  # where a person moved the slider to (the slider also follows)
        dcc.Store(id=ids.PLAY_HOUR, data=NOT_YET),  # the hour whose figures the KPI cards show
        dcc.Store(id=ids.PLAY_START, data={"epoch_ms": int(start.timestamp() * 1000), "tz": city_timezone()}),
    ])


def playback_layers(city, code: str, start) -> tuple[list[dict], tuple[int, int] | None]:
    """The day's orders and alarms as binary layers, and a note when the orders had to be thinned: 12 bytes a
    point (16 in base64), so above MAX_PLAYBACK_POINTS one in every k orders is drawn to stay under 2 MB."""
    end = start + pd.Timedelta(hours=services.PLAYBACK_HOURS)
    layers, note = [], None
    for layer_id, points, color, radius in (
            ("playback-orders", sources.order_points(city, code, start, end), STATE_COLORS["neutral"], 3),
            ("playback-alarms", sources.alarm_points(city, code, start, end), STATE_COLORS["critical"], 7)):
        keep = slice(None)
        if len(points.lon) > MAX_PLAYBACK_POINTS:
            step = int(np.ceil(len(points.lon) / MAX_PLAYBACK_POINTS))
            keep = slice(None, None, step)
            note = (step, len(points.lon))
        data = binary_data(len(points.lon[keep]), {
            "getPosition": np.column_stack([points.lon[keep], points.lat[keep]]).astype(np.float32),
            "getFilterValue": points.seconds[keep].astype(np.float32),
        })
        layers.append(deck.timed_points_layer(layer_id, data, rgba(color, 220), radius))
    return layers, note


def time_filter(current: float, playing: bool, speed: str) -> dict:
    seconds = services.PLAYBACK_HOURS * 3600
    return {"domain": [0, seconds], "window": TRAIL_SECONDS, "current": current, "playing": playing,
            "speed": SPEEDS.get(speed, SPEEDS["normal"]), "loop": False,
            "layerIds": ["playback-orders", "playback-alarms"]}


def _number(value, low: float, high: float) -> float:
    """A number the UI could have sent, held within [low, high]; anything else is ``low``."""
    if type(value) not in (int, float) or value != value:
        return low
    return min(max(float(value), low), high)


@callback(
    Output(ids.MAP, "layers", allow_duplicate=True),
    Output(ids.MAP, "timeFilter"),
    Output(ids.PLAY, "children"),
    Output(ids.PLAY_NOTE, "children"),
    Input(ids.PLAY, "n_clicks"),
    Input(ids.PLAY_SCRUB, "data"),
    Input(ids.PLAY_SPEED, "value"),
    State(ids.MAP, "currentTime"),
    State(ids.URL, "search"),
    State(ids.LAYER_TOGGLES, "value"),
    State(ids.BUILDING_COLOR, "value"),
    prevent_initial_call=True,
)
def control_playback(clicks, slider_hours, speed, current, search, layers, color):
    """Play/pause, scrub or change speed: the layers of the day join the map the first time, and the GPU time
    filter takes the play head."""
    if ctx.triggered_id == ids.PLAY_SCRUB and type(slider_hours) not in (int, float):
        return no_update, no_update, no_update, no_update  # the page drawing its empty scrub, not a person
    clicks = clicks if type(clicks) is int and clicks >= 0 else 0  # inputs from the network: only what the UI sends
    slider_hours = _number(slider_hours, 0, services.PLAYBACK_HOURS)
    current = _number(current, 0, services.PLAYBACK_HOURS * 3600) if current is not None else None
    speed = speed if isinstance(speed, str) else None
    view = parse_view(search)
    redrawn = redraw(view, layers, color)
    service, data, base = redrawn.view.services, redrawn.view.data, redrawn.layers
    start, _ = service.playback_period()
    day, note = service.memo(("playback_layers", data.code),
                             lambda: playback_layers(service.city(), data.code, start))
    playing = bool(clicks) and clicks % 2 == 1
    day_seconds = services.PLAYBACK_HOURS * 3600
    if ctx.triggered_id == ids.PLAY_SCRUB:  # scrubbing pauses at the chosen time
        playing, head = False, float(slider_hours) * 3600
    elif current is None or (playing and float(current) >= day_seconds - 1):
        head = 0.0  # the first play, or a replay after the end, starts at the beginning of the day
    else:
        head = float(current)
    label = t("play.pause" if playing else "play.play", view["lang"])
    note_text = t("play.thinned", view["lang"], step=note[0], count=f"{note[1]:,}") if note else ""
    # The day's markers join under the map's text, sized for the screen like the layers they join.
    return (text_last(base + deck.for_screen(day, redrawn.view.scale)), time_filter(head, playing, speed), label,
            note_text)


# The play head moves about 8 times a second. Dash drops a callback's answer when a newer call is already on its way,
# so a server round trip per move would never land: the clock and the slider are set in the browser, and only a new
# hour goes to the server (for the KPI cards). The slider's position set here is remembered, so that the callback
# below tells it from a person's scrub.
clientside_callback(
    """function(current, start, shownHour) {
        const none = window.dash_clientside.no_update;
        if (current === null || current === undefined || !start) {
            return [none, none, none];
        }
        const position = Math.round(current / 36) / 100;  // hours, to the hundredth
        window.citytwinPlayHead = position;
        const when = new Date(start.epoch_ms + current * 1000);
        const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {timeZone: start.tz, month: "2-digit",
            day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23"}).formatToParts(when)
            .map(p => [p.type, p.value]));
        const clock = `${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
        const hour = Math.max(1, Math.ceil(current / 3600));
        return [clock, hour === shownHour ? none : hour, position];
    }""",
    Output(ids.PLAY_CLOCK, "children"),
    Output(ids.PLAY_HOUR, "data"),
    Output(ids.PLAY_SLIDER, "value"),
    Input(ids.MAP, "currentTime"),
    State(ids.PLAY_START, "data"),
    State(ids.PLAY_HOUR, "data"),
    prevent_initial_call=True,
)


clientside_callback(
    """function(hours, end) {
        // Until the play head has moved the slider stands at the end of the day (where it is drawn, and where it
        // says so again as its script mounts): only another position is a person's scrub.
        const head = window.citytwinPlayHead === undefined ? end : window.citytwinPlayHead;
        return typeof hours === "number" && hours !== head ? hours : window.dash_clientside.no_update;
    }""",
    Output(ids.PLAY_SCRUB, "data"),
    Input(ids.PLAY_SLIDER, "value"),
    State(ids.PLAY_SLIDER, "max"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.KPI_PANEL, "children", allow_duplicate=True),
    Input(ids.PLAY_HOUR, "data"),
    State(ids.URL, "search"),
    prevent_initial_call=True,
)
def follow_play_head(hour, search):
    """The KPI cards follow the play head hour by hour: the day's figures up to the end of that hour."""
    if not replaying(hour):
        return no_update
    service = services.get()
    view = parse_view(search)
    card = service.building_card(view["building"])
    code = card.grid_code if card else view["unit"]
    kpis = service.playback_kpis(code, view["indicator"], int(hour))
    return kpi_panel(list(INDICATORS.values()), kpis, view["indicator"], lang=view["lang"])
