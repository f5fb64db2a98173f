"""The big screen for the operators' LED wall (1920×1080 or 3840×2160): the city's vital signs at a glance.

``/wall?kiosk=1&rotate=20&window=7d&topic=requests&refresh=60&lang=zh``

- header: the city's name, a live clock (city time, ticking in the browser) and how fresh the data are;
- centre: the district map coloured by the current topic's lead indicator, the topic's KPI cards, the district
  ranking, the composite vital-sign score and what needs someone now;
- a playlist rotating through the 14 topics every ``rotate`` seconds (0 stops it on ``topic``);
- a ticker of active alarms, red-card orders by district and recurring hotspots;
- the data refresh every ``refresh`` seconds (60 by default) without reloading the page;
- ``kiosk=1`` hides the shared top bar and the cursor (for the wall's PC); without it a user can navigate away;
- ``lang=zh`` shows the wall in Chinese (English by default).

One design for every wall: assets/wall.css sizes everything in rem of a root font of 1/120 of the screen's width
(16 px at 1920), so a 3840×2160 wall shows exactly the 1920×1080 page at twice the size.

Callbacks stay thin: the clock and the map's camera run in the browser; the rotation repaints the map with a Patch
(the districts' geometry is sent once, with the page); the 60-second refresh re-reads the services.
"""
from __future__ import annotations

from urllib.parse import urlencode

import dash
import pandas as pd
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update

from dashboard import auth, live, services
from dashboard.components.topbar import top_level, topbar
from dashboard.components.wall_map import nominal_view, paint, repaint, wall_layers, wall_map, NOMINAL_MAP_SIZE
from dashboard.components.wall_panels import (children_ranking, map_caption, score_panel, situation, topic_cards,
                                              topic_heading, topic_strip)
from dashboard.components.wall_playlist import PLAYLIST, lead_indicator, playlist_topic, topic_state
from dashboard.components.refresh import screen_refresh
from dashboard.components.wall_alerts import (alert_cue, alert_ticker_items, early_warning_block, early_warning_facts,
                                              early_warning_key)
from dashboard.components.wall_ticker import active_alarms, ticker, ticker_items
from dashboard.i18n import (HTML_LANG, language_query, level_noun, localise_hotspots, messages, normalise_language,
                            t, unit_name, window_label)
from layers.alerts import OPEN_STATUSES
from layers.city_settings import timezone as city_timezone
from metrics.registry import INDICATORS
from metrics.spec import DEFAULT_WINDOW, FRESHNESS_MINUTES, WINDOWS, named_window

dash.register_page(__name__, path="/wall", title="citytwin · wall", name="Wall")

WALL_IDS = {
    "root": "wall",
    "clock": "wall-clock", "date": "wall-date", "freshness": "wall-freshness", "as_of": "wall-as-of",
    "age": "wall-age",
    "tick": "wall-tick", "rotate": "wall-rotate", "refresh": "wall-refresh",
    "config": "wall-config", "as_of_store": "wall-as-of-store", "camera": "wall-camera",
    "heading": "wall-heading", "strip": "wall-strip", "cards": "wall-cards",
    "map": "wall-map", "map_frame": "wall-map-frame", "caption": "wall-caption", "ranking": "wall-ranking",
    "score": "wall-score", "situation": "wall-situation", "ticker": "wall-ticker",
    "cue": "wall-alert-cue", "alerts_refresh": "wall-alerts-refresh", "alerts_mark": "wall-alerts-mark",
}
DEFAULT_ROTATE_SECONDS = 20
MIN_ROTATE_SECONDS = 2
REFRESH_SECONDS = 60
MIN_REFRESH_SECONDS = 5
HOTSPOT_WINDOW = "7d"
# The indicator for the shared top bar's links (the wall itself shows every topic in turn).
TOPBAR_INDICATOR = "on_time_rate"
PLAYLIST_KPI_INDICATOR = "on_time_rate"  # any indicator: the city's KPI rows are the same whichever colours the map


def _seconds(text, default: int) -> int:
    try:
        return int(float(text)) if text not in (None, "") else default
    except (TypeError, ValueError, OverflowError):
        return default


def parse_config(kiosk=None, rotate=None, window=None, topic=None, refresh=None, lang=None) -> dict:
    """The wall's settings from the query string, with defaults for what is missing or wrong."""
    seconds = _seconds(rotate, DEFAULT_ROTATE_SECONDS)
    seconds = 0 if seconds <= 0 else min(max(seconds, MIN_ROTATE_SECONDS), 3600)
    lang = normalise_language(lang)
    return {
        "lang": lang,
        # The words the browser writes itself (the data's age and freshness; see the clock's callback below).
        "words": messages(lang, "age.", "fresh."),
        "kiosk": str(kiosk).lower() in ("1", "true", "yes", "on"),
        "rotate": seconds,
        "refresh": min(max(_seconds(refresh, REFRESH_SECONDS), MIN_REFRESH_SECONDS), 3600),
        "window": window if window in WINDOWS else DEFAULT_WINDOW,
        "topic": topic if topic in PLAYLIST else PLAYLIST[0],
        "timezone": city_timezone(),
        # The freshness steps (metrics.spec.FRESHNESS_MINUTES) as data: the browser judges the age as the map does.
        "freshness_steps": FRESHNESS_MINUTES.as_json(),
    }


def wall_href(config: dict, **changes) -> str:
    wanted = {**config, **changes}
    query = {"kiosk": "1" if wanted["kiosk"] else None, "rotate": wanted["rotate"],
             "window": wanted["window"], "topic": wanted["topic"] if wanted["topic"] != PLAYLIST[0] else None,
             "refresh": wanted["refresh"] if wanted["refresh"] != REFRESH_SECONDS else None,
             **language_query(wanted["lang"])}
    return "/wall?" + urlencode({k: v for k, v in query.items() if v is not None})


# --- what the panels show: services → render functions -----------------------------------------------------------

def topic_panels(config: dict, step: int) -> dict:
    """Everything that follows the playlist, for rotation ``step``."""
    topic = playlist_topic(step, config["topic"])
    lang = normalise_language(config.get("lang"))
    service = services.get()
    city_kpis = service.unit_view(auth.scope_unit(), PLAYLIST_KPI_INDICATOR, config["window"]).kpis
    lead = lead_indicator(topic, city_kpis)
    data = service.unit_view(auth.scope_unit(), lead.id, config["window"])
    painted = paint(data.children_geojson, data.children, lead, lang)
    return {
        "data": data, "painted": painted,
        "heading": topic_heading(topic, playlist_topic(step + 1, config["topic"]), lang),
        "strip": topic_strip({p: topic_state(p, data.kpis) for p in PLAYLIST}, topic, config["rotate"], step, lang),
        "cards": topic_cards(topic, data.kpis, lead, lang),
        "caption": map_caption(lead, config["window"], data.children, lang, child_level(data)),
        "ranking": children_ranking(lead, data.children, lang, child_level(data)),
    }


def child_level(data) -> str:
    """The level of the units the wall's map shows (a province's cities, a city's districts, a scoped wall's
    streets); the unit's own level at the bottom, where the map shows the unit itself."""
    return data.child_level or data.level


def checked_config(config) -> dict:
    """The wall's settings as a callback receives them from the browser, made again from the fields the UI
    sends (anything else: the defaults)."""
    config = config if isinstance(config, dict) else {}
    fields = {k: config.get(k) for k in ("kiosk", "rotate", "window", "topic", "refresh", "lang")}
    return parse_config(**{k: (v if isinstance(v, (str, int, float, bool)) else None) for k, v in fields.items()})


def status_panels(config: dict) -> dict:
    """Everything that follows the data only: freshness, score, situation and the ticker."""
    lang = normalise_language(config.get("lang"))
    service = services.get()
    city = service.city()
    data = service.unit_view(auth.scope_unit(), "overdue_orders", config["window"])
    kpis = data.kpis
    end = named_window(config["window"], data.as_of).end
    names = city.units["name_zh"].where(city.units["name_zh"].notna(), city.units["name"]) if lang == "zh" \
        else city.units["name"]
    # A scoped wall (a district's lobby) shows its own alarms, hotspots, alerts and early warning only.
    alarms = active_alarms(auth.within_scope(city["alarms"], "grid_code"), city.hierarchy["district"], names, end) \
        if "alarms" in city.layers else None
    hotspots = localise_hotspots(auth.within_scope(service.hotspots(HOTSPOT_WINDOW), "grid_code"), city, lang)
    critical = 0 if alarms is None else int((alarms["severity"] == "critical").sum())
    red_children = int((data.children["value"].fillna(0) > 0).sum())

    def tile(key, indicator_id, note):
        value, state = kpis.at[indicator_id, "value"], kpis.at[indicator_id, "state"]
        return {"key": key, "label": t(f"wall.tile.{key}", lang), "value": INDICATORS[indicator_id].format_value(
            value), "state": state if isinstance(state, str) else "no_data", "note": note}

    tiles = [
        tile("alarms", "active_alarms", t("wall.note.critical", lang, count=f"{critical:,}")),
        tile("red_cards", "overdue_orders", t("wall.note.children", lang, count=red_children,
                                              total=len(data.children),
                                              nouns=level_noun(child_level(data), lang, many=True),
                                              noun=level_noun(child_level(data), lang))),
        tile("open", "open_orders", t("wall.note.open", lang)),
        {"key": "hotspots", "label": t("wall.tile.hotspots", lang), "value": f"{len(hotspots):,}",
         "state": "warning" if len(hotspots) else "good",
         "note": _most_in(hotspots["district"], lang) if len(hotspots) else t("wall.note.none_recurring", lang)},
    ]
    items = ticker_items(alarms if alarms is not None else _no_alarms(), data.children, hotspots, lang)
    alerts = alert_panels(lang)
    codes = auth.scope_codes()
    early = early_warning_block(service.memo(early_warning_key(city, auth.scope_unit()),
                                             lambda: early_warning_facts(city, units=codes)),
                                _unit_names(city, lang), lang)
    return {
        "as_of": data.as_of,
        "score": score_panel(data.score, data.score_explanation, lang),
        "situation": situation(tiles, lang) + [early],
        "ticker": ticker(alerts["items"] + items, kpis.at["active_alarms", "value"], critical, lang),
        "cue": alerts["cue"], "cue_class": alerts["cue_class"], "alerts_mark": alerts["mark"],
    }


def _unit_names(city, lang: str) -> dict:
    names = city.units["name_zh"].where(city.units["name_zh"].notna(), city.units["name"]) if lang == "zh" \
        else city.units["name"]
    return dict(zip(city.units.index, names))


def alert_panels(lang: str) -> dict:
    """The open alerts for the ticker and the cue (read from the store at each call: they change by the second;
    while it does not answer, as last read)."""
    service = services.get()
    mark = service.read_alerts("mark")
    open_alerts = auth.within_scope(service.read_alerts("frame", OPEN_STATUSES), "unit_code", "grid_code")
    names = _unit_names(service.city(), lang)
    cue, cue_class = alert_cue(open_alerts, names, lang)
    return {"items": alert_ticker_items(open_alerts, names, lang), "cue": cue, "cue_class": cue_class,
            "mark": mark}


def _most_in(districts: pd.Series, lang: str) -> str:
    counts = districts.dropna().value_counts()
    return t("wall.note.most_in", lang, district=counts.index[0]) if len(counts) else t("wall.note.recurring", lang)


def _no_alarms() -> pd.DataFrame:
    return pd.DataFrame(columns=["severity", "kind", "message", "raised_at", "grid_code", "district"])


# --- layout ---------------------------------------------------------------------------------------------------

def header(lineage: list[dict], as_of, lang: str) -> html.Header:
    city = lineage[0]
    return html.Header(className="wall-header", children=[
        html.Div(className="wall-brand", children=[
            html.Div(className="wall-brand-mark"),
            html.Div([
                html.H1(unit_name(city, lang), className="wall-city"),
                html.Div(t(f"wall.center.{top_level(city)}", lang), className="wall-brand-sub"),
            ]),
        ]),
        html.Div(className="wall-clock-block", children=[
            html.Div("--:--:--", id=WALL_IDS["clock"], className="wall-clock"),
            html.Div("", id=WALL_IDS["date"], className="wall-date"),
        ]),
        html.Div(id=WALL_IDS["freshness"], className="wall-freshness", children=[
            html.Div(t("wall.data_as_of", lang), className="wall-fresh-label"),
            html.Div(_as_of_text(as_of), id=WALL_IDS["as_of"], className="wall-fresh-time"),
            html.Div("", id=WALL_IDS["age"], className="wall-fresh-age"),
        ]),
    ])


def _as_of_text(as_of) -> str:
    return as_of.strftime("%Y-%m-%d %H:%M")


def layout(kiosk=None, rotate=None, window=None, topic=None, refresh=None, lang=None, **_ignored):
    config = parse_config(kiosk, rotate, window, topic, refresh, lang)
    lang = config["lang"]
    panels = topic_panels(config, 0)
    status = status_panels(config)
    data = panels["data"]
    view = nominal_view(data.bounds)
    shared_bar = None if config["kiosk"] else topbar(
        data.lineage, TOPBAR_INDICATOR, config["window"], data.as_of, page="wall", here=wall_href(config),
        lang=lang, controls=[
            html.Div(className="window-links", children=[
                dcc.Link(window_label(w, lang), href=wall_href(config, window=w),
                         className="window-link" + (" current" if w == config["window"] else "")) for w in WINDOWS]),
            dcc.Link(t("wall.kiosk", lang), href=wall_href(config, kiosk=True), className="window-link wall-kiosk-link"),
        ])
    return html.Div(id=WALL_IDS["root"], className="wall-screen" + (" kiosk" if config["kiosk"] else ""),
                    lang=HTML_LANG[lang], children=[
        dcc.Store(id=WALL_IDS["config"], data=config),
        live.follower("wall"),
        dcc.Store(id=WALL_IDS["as_of_store"], data=status["as_of"].isoformat()),
        dcc.Store(id=WALL_IDS["camera"], data={"view": view, "nominal": NOMINAL_MAP_SIZE}),
        dcc.Interval(id=WALL_IDS["tick"], interval=1000),
        dcc.Interval(id=WALL_IDS["rotate"], interval=max(config["rotate"], 1) * 1000, disabled=not config["rotate"]),
        dcc.Interval(id=WALL_IDS["refresh"], interval=config["refresh"] * 1000),
        screen_refresh(WALL_IDS["alerts_refresh"]),
        dcc.Store(id=WALL_IDS["alerts_mark"], data=status["alerts_mark"]),
        html.Div(status["cue"], id=WALL_IDS["cue"], className=status["cue_class"], role="alert"),
        shared_bar,
        header(data.lineage, status["as_of"], lang),
        html.Main(className="wall-main", children=[
            html.Section(className="wall-topic wall-panel", children=[
                html.Div(panels["heading"], id=WALL_IDS["heading"], className="wall-heading"),
                html.Div(panels["strip"], id=WALL_IDS["strip"], className="wall-strip"),
                html.Div(panels["cards"], id=WALL_IDS["cards"], className="wall-cards-frame"),
            ]),
            html.Section(className="wall-centre", children=[
                html.Div(className="wall-map-panel wall-panel", children=[
                    html.Div(panels["caption"], id=WALL_IDS["caption"], className="wall-caption"),
                    html.Div(id=WALL_IDS["map_frame"], className="wall-map-frame", children=wall_map(
                        WALL_IDS["map"], wall_layers(data.children_geojson, panels["painted"], view["zoom"], lang),
                        view)),
                ]),
                html.Div(panels["ranking"], id=WALL_IDS["ranking"], className="wall-ranking wall-panel"),
            ]),
            html.Aside(className="wall-side", children=[
                html.Div(status["score"], id=WALL_IDS["score"], className="wall-score wall-panel"),
                html.Div(status["situation"], id=WALL_IDS["situation"], className="wall-situation wall-panel"),
            ]),
        ]),
        html.Footer(status["ticker"], id=WALL_IDS["ticker"], className="wall-ticker"),
    ])


# --- callbacks --------------------------------------------------------------------------------------------------

@callback(
    Output(WALL_IDS["heading"], "children"),
    Output(WALL_IDS["strip"], "children"),
    Output(WALL_IDS["cards"], "children"),
    Output(WALL_IDS["caption"], "children"),
    Output(WALL_IDS["ranking"], "children"),
    Output(WALL_IDS["map"], "layers"),
    Input(WALL_IDS["rotate"], "n_intervals"),
    Input(WALL_IDS["refresh"], "n_intervals"),
    live.follows("wall"),
    State(WALL_IDS["config"], "data"),
    prevent_initial_call=True,
)
def show_topic(step, _refreshed, _generation, config):
    """The next topic of the playlist (or the same one with fresh data): cards, caption, ranking, and the map
    repainted in place."""
    config = checked_config(config)
    step = step if type(step) is int and step >= 0 else 0
    panels = topic_panels(config, step)
    return (panels["heading"], panels["strip"], panels["cards"], panels["caption"], panels["ranking"],
            repaint(panels["data"].children_geojson, panels["painted"]))


@callback(
    Output(WALL_IDS["as_of_store"], "data"),
    Output(WALL_IDS["as_of"], "children"),
    Output(WALL_IDS["score"], "children"),
    Output(WALL_IDS["situation"], "children"),
    Output(WALL_IDS["ticker"], "children"),
    Input(WALL_IDS["refresh"], "n_intervals"),
    live.follows("wall"),
    State(WALL_IDS["config"], "data"),
    prevent_initial_call=True,
)
def refresh_status(_refreshed, _generation, config):
    status = status_panels(checked_config(config))
    return (status["as_of"].isoformat(), _as_of_text(status["as_of"]), status["score"], status["situation"],
            status["ticker"])


@callback(
    Output(WALL_IDS["cue"], "children"),
    Output(WALL_IDS["cue"], "className"),
    Output(WALL_IDS["ticker"], "children", allow_duplicate=True),
    Output(WALL_IDS["alerts_mark"], "data"),
    Input(WALL_IDS["alerts_refresh"], "n_intervals"),
    State(WALL_IDS["alerts_mark"], "data"),
    State(WALL_IDS["config"], "data"),
    prevent_initial_call=True,
)
def follow_alerts(_tick, shown_mark, config):
    """Alerts change by the second: the cue and the ticker follow them without waiting for the data's refresh, and
    only when the alerts' log moved on."""
    if services.get().read_alerts("mark") == shown_mark:
        return no_update, no_update, no_update, no_update
    status = status_panels(config)
    return status["cue"], status["cue_class"], status["ticker"], status["alerts_mark"]


# The clock ticks in the browser (no request a second): city time, and the data's age against it.
clientside_callback(
    """
    function(_n, asOf, config) {
        const tz = (config && config.timezone) || undefined;
        const now = new Date();
        const part = (locale, options) => new Intl.DateTimeFormat(locale, Object.assign({timeZone: tz}, options))
            .format(now);
        // ISO date and 24-hour time read the same in both languages; the weekday is in the wall's language.
        const zh = config && config.lang === "zh";
        const words = (config && config.words) || {};
        const say = (key, args) => Object.keys(args).reduce(
            (text, name) => text.split("{" + name + "}").join(args[name]), words[key] || key);
        const time = part("en-GB", {hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});
        const date = part("en-CA", {year: "numeric", month: "2-digit", day: "2-digit"}) + "  "
            + part(zh ? "zh-CN" : "en-GB", {weekday: "long"});
        let age = "", state = "no_data";
        const at = asOf ? Date.parse(asOf) : NaN;
        if (!isNaN(at)) {
            const minutes = Math.max(0, Math.floor((now.getTime() - at) / 60000));
            const days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60);
            const text = minutes < 1 ? say("age.just_now", {}) : minutes < 60 ? say("age.minutes", {minutes})
                : days < 1 ? say("age.hours", {hours, minutes: minutes % 60}) : say("age.days", {days, hours});
            const steps = (config && config.freshness_steps) || [[null, "no_data"]];
            state = steps.reduce((found, step) => step[0] === null || minutes >= step[0] ? step[1] : found,
                                 steps[0][1]);
            age = text + " · " + say("fresh." + state, {});
        }
        return [time, date, age, "wall-freshness state-" + state];
    }
    """,
    Output(WALL_IDS["clock"], "children"),
    Output(WALL_IDS["date"], "children"),
    Output(WALL_IDS["age"], "children"),
    Output(WALL_IDS["freshness"], "className"),
    Input(WALL_IDS["tick"], "n_intervals"),
    Input(WALL_IDS["as_of_store"], "data"),
    State(WALL_IDS["config"], "data"),
)

# The camera was fitted on the server for the map's size on a 1920×1080 wall; on any other wall the browser adds
# log2(actual / nominal) to the zoom, so that a 3840×2160 wall shows the same map twice as large.
clientside_callback(
    f"""
    function(camera, _n) {{
        const frame = document.getElementById("{WALL_IDS['map_frame']}");
        if (!camera || !frame || !frame.clientWidth || !frame.clientHeight) {{
            return window.dash_clientside.no_update;
        }}
        const scale = Math.min(frame.clientWidth / camera.nominal[0], frame.clientHeight / camera.nominal[1]);
        const zoom = Math.round((camera.view.zoom + Math.log2(scale)) * 1000) / 1000;
        return Object.assign({{}}, camera.view, {{zoom: zoom}});
    }}
    """,
    Output(WALL_IDS["map"], "viewState"),
    Input(WALL_IDS["camera"], "data"),
    Input(WALL_IDS["refresh"], "n_intervals"),
)
