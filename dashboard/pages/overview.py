"""The first screen: the map of a unit's children coloured by an indicator's state, the unit's KPI cards, and
drill-down (click a unit on the map) with a breadcrumb back up, down to one building's card. The whole view is in
the URL: ``/?unit=440304&indicator=on_time_rate&window=7d&layers=units,buildings&color=use&building=B0001234``;
back/forward walk the drill path. The map's layers come from ``dashboard/maps/registry.py``; toggling one restyles
the map in place (the camera stays) and rewrites the URL without a new history entry.
"""
from __future__ import annotations

import time

import dash
from dash import ALL, Input, Output, State, callback, clientside_callback, dcc, html, no_update

from dashboard import auth, ids, live, services
from dashboard.components.breadcrumb import breadcrumb
from dashboard.components.exports import export_controls
from dashboard.components.tour import tour_control
from dashboard.components.loading import loading_slot
from dashboard.components.kpi import kpi_panel
from dashboard.components.labels import short_name
from dashboard.components.building_card import CARD_ALERTS, alert_section, building_card
from dashboard.components.layer_panel import layer_panel, redraw
from dashboard.components.playback import playback_bar, replaying
from dashboard.components.topbar import as_of_text, topbar
from dashboard.components.wall_alerts import unit_early_warning
from dashboard.i18n import (DEFAULT_LANGUAGE, HTML_LANG, dropdown_labels, indicator_name, level_label, pair,
                            state_label, t, unit_name, unit_of_measure, window_label)
from dashboard.maps.deck import BUILDING_PITCH, MAP_PAGE_INSETS, TILTED_LEVELS, city_map, fit_view
from dashboard.maps.registry import build_layers, normalise_layers, unit_building_at
from dashboard.maps.sources import BUILDING_COLOR_MODES, USE_NAMES
from dashboard.replies import shared_reply
from dashboard.view import map_view, normalise_view, parse_view, screen_scale, view_search
from metrics.score import SCORE_STATES
from metrics.registry import INDICATORS
from metrics.spec import WINDOWS



dash.register_page(__name__, path="/", title="citytwin · city vital signs", name="Overview")

MAP_CAMERA = "map-camera"  # the camera fitted on the server for a 1920×1080 screen (scaled in the browser)


def layout(unit: str | None = None, indicator: str | None = None, window: str | None = None,
           layers: str | None = None, color: str | None = None, building: str | None = None,
           lang: str | None = None, **_ignored):
    view = normalise_view(auth.default_unit(unit), indicator, window, layers, color, building, lang)
    service = services.get()
    # The page depends on its view alone (the gate let the view through; an account's scope only picks the view
    # when the URL names no unit), the screen's scale (the camera), the minute (the freshness badges' ages) and
    # whether the store answers: every screen that opens the same view in the same generation shares it.
    key = ("overview", tuple(sorted(view.items())), screen_scale(), int(time.time() // 60),
           service.store.health.available)
    return shared_reply(key, lambda: _page(dict(view)))


def _page(view: dict) -> html.Div:
    lang = view["lang"]
    service = services.get()
    card = service.building_card(view["building"])
    if card is not None:  # a building's view is its grid cell's, with the card
        view["unit"] = card.grid_code
    drawn = map_view(view)
    data = drawn.data
    selected = INDICATORS[view["indicator"]]
    enabled = normalise_layers(view["layers"])
    deck_layers = build_layers(drawn, enabled)
    child_label = level_label(data.child_level or data.level, lang)
    if card is not None:
        camera = dict(fit_view(_around(card.bounds), max_zoom=18, **MAP_PAGE_INSETS), pitch=BUILDING_PITCH,
                      bearing=-20)
    else:
        camera = dict(fit_view(data.bounds, **MAP_PAGE_INSETS), pitch=TILTED_LEVELS.get(data.level, 0))

    return html.Div(className="screen", lang=HTML_LANG[lang], children=[
        topbar(data.lineage, view["indicator"], view["window"], data.as_of, page="map", here="/" + view_search(view),
               lang=lang, controls=[
            loading_slot(dcc.Dropdown(
                id=ids.INDICATOR, value=view["indicator"], clearable=False, searchable=True,
                options=[{"label": indicator_name(i, lang), "value": i.id} for i in INDICATORS.values()],
                className="indicator-select", labels=dropdown_labels(lang)), "picker", lang, "picker-slot"),
            dcc.RadioItems(
                id=ids.WINDOW, value=view["window"], className="window-select", inline=True,
                options=[{"label": window_label(w, lang), "value": w} for w in WINDOWS]),
            tour_control(lang), export_controls(view),
        ]),
        html.Main(className="main", children=[
            html.Section(className="map-panel", **{"data-loading": t("loading.map", lang)}, children=[
                city_map(ids.MAP, deck_layers, camera),
                dcc.Store(id=MAP_CAMERA, data=camera),
                dcc.Store(id=ids.MAP_PICK),  # a click's unit, from assets/map_click.js
                dcc.Store(id=ids.MAP_GOTO),  # where navigate() sends the browser
                live.follower("map"),
                # A link to a unit the city does not have says so, rather than silently showing the city.
                html.Div(t("map.no_such_unit", lang, unit=str(view["unit"])), id="unit-missing",
                         className="unit-missing", role="alert")
                if view["unit"] and card is None and data.code != view["unit"] else None,
                html.Div(className="map-title", children=[
                    breadcrumb(data.lineage, view["indicator"], view["window"], lang=lang),
                    html.H1(unit_name({"name": data.name, "name_zh": data.name_zh}, lang), id=ids.UNIT_TITLE,
                            **{"data-unit": data.code, "data-level": data.level,
                               "data-building": card.building["building_id"] if card else ""}),
                    html.Div(t("map.subtitle", lang, children=child_label, indicator=indicator_name(selected, lang),
                               unit=unit_of_measure(selected.unit, lang), window=window_label(view["window"], lang)),
                             className="map-subtitle"),
                ]),
                score_badge(data, lang),
                layer_panel(drawn, enabled),
                building_card(card, "/" + view_search({**view, "building": None}), lang,
                              alerts=service.building_alerts(card.building["building_id"], card.sensors["sensor_id"]))
                if card is not None else None,
                playback_bar(lang),
            ]),
            html.Aside(className="side-panel", children=[
                unit_early_warning(service, data.code, data.level, lang),
                html.Div(id=ids.KPI_PANEL, className="kpi-panel",
                         children=kpi_panel(list(INDICATORS.values()), data.kpis, view["indicator"],
                                            data.sparklines, lang)),
                ranking(data, view),
            ]),
        ]),
    ])


def _around(bounds, metres: float = 120.0) -> tuple[float, float, float, float]:
    """A building's bounds widened to show its block (degrees, ~111 km per degree at Shenzhen's latitude), and
    more to the east, so that the building stands left of its card."""
    pad = metres / 111_000
    return bounds[0] - pad, bounds[1] - pad, bounds[2] + 4 * pad, bounds[3] + pad


def score_badge(data: services.UnitView, lang: str = DEFAULT_LANGUAGE) -> html.Details:
    """The unit's composite vital-sign score; opening it shows which indicators pull it down, with their weights."""
    score = data.score
    state = SCORE_STATES.state(score)
    costs = data.score_explanation[data.score_explanation["lost"] > 0].head(6)
    rows = [html.Tr([html.Td(indicator_name(INDICATORS[r.indicator], lang)),
                     html.Td(state_label(r.state, lang), className=f"kpi-state state-{r.state}"),
                     html.Td(f"×{r.weight:g}"), html.Td(f"−{r.lost:.1f}")]) for r in costs.itertuples()]
    return html.Details(className=f"score-badge state-{state}", id="vital-score", children=[
        html.Summary([html.Span(t("score.label", lang), className="score-label"),
                      html.Span("—" if score != score else f"{score:.0f}", className="score-value"),
                      html.Span("/ 100", className="muted")]),
        # Nothing judged is "no data", never "all good"; a score says how many indicators it rests on.
        html.Div(t("score.no_data", lang) if score != score else
                 t("score_basis.rests_on", lang, count=data.score_count),
                 className="muted score-basis", id="vital-score-basis"),
        html.Table([html.Thead(html.Tr([html.Th(t(f"score.{key}", lang))
                                        for key in ("pulled_down_by", "state", "weight", "points")])),
                    html.Tbody(rows)], className="score-table")
        if rows else html.Div(t("score.all_good", lang), className="muted") if score == score else None,
    ])


def ranking(data: services.UnitView, view: dict) -> html.Div:
    """The children ranked by the selected indicator, worst first where a direction of good is known; in a grid
    cell (no children), its buildings, those with open alarms first, each a link to its card."""
    indicator, lang = INDICATORS[view["indicator"]], view.get("lang", DEFAULT_LANGUAGE)
    if not data.child_level:
        return building_list(data, view)
    children = data.children.copy()
    ascending = indicator.good_direction == "up"
    children = children.sort_values("value", ascending=ascending, na_position="last")
    # The number is the rank with #1 the best, as on the KPI cards, though the list starts with the worst.
    judged = indicator.good_direction in ("up", "down")
    ranks = children["value"].rank(ascending=not ascending, method="min") if judged else None
    rows = []
    for position, child in enumerate(children.itertuples(), start=1):
        if judged:
            rank = ranks.iloc[position - 1]
            position = "—" if rank != rank else int(rank)
        href = "/" + view_search({**view, "unit": child.code})
        name = unit_name(child._asdict(), lang)
        rows.append(dcc.Link(className=f"rank-row state-{child.state}", href=href, children=[
            html.Span(str(position), className="rank-pos"),
            html.Span(short_name(name, unit_name({"name": data.name, "name_zh": data.name_zh}, lang)),
                      className="rank-name", title=name),
            html.Span(indicator.format_value(child.value), className="rank-value"),
        ]))
    title = t("map.ranking", lang, children=level_label(data.child_level, lang),
              indicator=indicator_name(indicator, lang)) if data.child_level else t("map.lowest_level", lang)
    if judged:
        title += t("map.ranking_order", lang)
    return html.Div(className="ranking", id=ids.RANKING, children=[html.H3(title, className="topic"),
                                                                  html.Div(rows, className="rank-rows")])


def building_list(data: services.UnitView, view: dict) -> html.Div:
    lang = view["lang"]
    buildings = services.get().grid_buildings(data.code).head(MAX_BUILDINGS_LISTED)
    rows = [dcc.Link(className="rank-row building-row" + (" state-critical" if b.alarm else ""),
                     href="/" + view_search({**view, "unit": data.code, "building": b.building_id}), children=[
        html.Span(b.building_id, className="rank-name"),
        html.Span(t("map.floors", lang, use=pair(USE_NAMES.get(b.use, (b.use, b.use)), lang), floors=b.floors),
                  className="muted"),
        html.Span(f"{b.height_m:.0f} m", className="rank-value"),
    ]) for b in buildings.itertuples()]
    return html.Div(className="ranking", id=ids.RANKING, children=[
        html.H3(t("map.buildings_title", lang), className="topic"),
        html.Div(rows, className="rank-rows") if rows else html.Div(t("map.no_buildings", lang), className="muted")])


MAX_BUILDINGS_LISTED = 60


@callback(
    Output(ids.MAP_GOTO, "data"),
    Input(ids.MAP, "clickInfo"),
    Input(ids.MAP_PICK, "data"),
    Input(ids.INDICATOR, "value"),
    Input(ids.WINDOW, "value"),
    State(ids.URL, "search"),
    State(ids.LAYER_TOGGLES, "value"),
    State(ids.BUILDING_COLOR, "value"),
    prevent_initial_call=True,
)
def navigate(click_info, picked_unit, indicator, window, search, layers, color):
    """A click on a unit drills into it, a click on a building opens its card; a new indicator or window keeps
    the unit. All change only the URL, and the page follows the URL, so every view can be linked to and
    back/forward work. The layer toggles rewrite the URL without Dash knowing, hence they are read here. A click
    on a unit comes as deck.gl's ``clickInfo`` or, when deck.gl's tap timed out, as the unit the map picked under
    the pointer (``map-pick``, assets/map_click.js); both are the browser's word, checked like any input."""
    current = parse_view(search)
    layers = [layer for layer in layers if isinstance(layer, str)] if isinstance(layers, list) else []
    color = color if isinstance(color, str) else None
    current.update(layers=",".join(normalise_layers(",".join(layers))), color=color or current["color"])
    wanted = dict(current)
    if dash.ctx.triggered_id == ids.MAP_PICK:
        unit = picked_unit.get("unit") if isinstance(picked_unit, dict) else None
        if not isinstance(unit, str) or not unit:
            return no_update
        wanted.update(unit=unit, building=None)
    elif dash.ctx.triggered_id == ids.MAP:
        click_info = click_info if isinstance(click_info, dict) else {}
        picked = click_info.get("object") if isinstance(click_info.get("object"), dict) else {}
        properties = click_info.get("properties") or picked.get("properties") or {}
        properties = {k: v for k, v in properties.items() if isinstance(v, str)} if isinstance(properties, dict) \
            else {}
        # A small unit's buildings are one binary layer: a click on one says only its layer and index.
        drawn = unit_building_at(services.get().generation(), current["unit"], click_info.get("index")) \
            if click_info.get("layerId") == "buildings" and not picked else None
        if drawn or properties.get("building_id"):
            wanted["building"] = drawn or properties["building_id"]
        else:
            wanted["unit"] = properties.get("code") or current["unit"]
            wanted["building"] = None
    else:
        wanted.update(indicator=normalise_view(None, indicator)["indicator"],
                      window=normalise_view(None, None, window)["window"])
    return no_update if wanted == current else view_search(wanted)


# navigate() answers into a store of the page rather than into the URL: Dash calls a callback whose inputs a page
# draws and whose output lies outside that page on every draw, whatever prevent_initial_call says (one round trip
# per page for nothing); with its output on the page it is called only for a person's click or choice, and this
# browser-side step moves the URL.
clientside_callback(
    """function(search) {
        return typeof search === "string" && search ? search : window.dash_clientside.no_update;
    }""",
    Output(ids.URL, "search"),
    Input(ids.MAP_GOTO, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.MAP, "layers"),
    Output(ids.LAYER_LEGENDS, "children"),
    Input(ids.LAYER_TOGGLES, "value"),
    Input(ids.BUILDING_COLOR, "value"),
    State(ids.URL, "search"),
    prevent_initial_call=True,
)
def restyle_map(layers, color, search):
    """Toggling a layer or the buildings' colouring redraws the map's layers in place: the camera stays where the
    user put it."""
    redrawn = redraw(parse_view(search), layers, color)
    return redrawn.layers, redrawn.legends


@callback(
    Output(ids.MAP, "layers", allow_duplicate=True),
    Output(ids.LAYER_LEGENDS, "children", allow_duplicate=True),
    Output(ids.LAYER_TOGGLES, "options"),
    Output(ids.KPI_PANEL, "children"),
    Output(ids.RANKING, "children"),
    Output("vital-score", "children"),
    Output("vital-score", "className"),
    Output(ids.AS_OF, "children"),
    live.follows("map"),
    State(ids.URL, "search"),
    State(ids.LAYER_TOGGLES, "value"),
    State(ids.BUILDING_COLOR, "value"),
    State(ids.PLAY_HOUR, "data"),
    prevent_initial_call=True,
)
def follow_the_city(_generation, search, layers, color, replayed_hour):
    """A new generation (readings, alarms, orders arrived; the clock moved on in live mode) redraws the map's data
    layers, their legends and freshness badges, the KPI cards, the ranking, the score and the as-of time in place:
    the camera, the unit, the building, the toggles and the scroll stay. While playback shows a past hour, the
    replay keeps the screen."""
    if replaying(replayed_hour):
        return (no_update,) * 8
    view = parse_view(search)
    layers = [layer for layer in layers if isinstance(layer, str)] if isinstance(layers, list) else []
    # Every screen on this view redraws for each new generation: the first makes the answer, the others share it.
    # It depends on the view, the layers and colouring on, the screen's scale (the camera), the asker's scope
    # (the gate let the view through), the minute (the freshness badges' ages) and whether the store answers.
    key = ("follow_the_city", tuple(sorted(view.items())), tuple(normalise_layers(",".join(layers))),
           color if color in BUILDING_COLOR_MODES else "use", screen_scale(), auth.scope_unit(),
           int(time.time() // 60), services.get().store.health.available)
    return shared_reply(key, lambda: _followed(view, layers, color))


def _followed(view: dict, layers: list, color) -> tuple:
    redrawn = redraw(view, layers, color)
    data, lang = redrawn.view.data, view["lang"]
    badge = score_badge(data, lang)
    return (redrawn.layers, redrawn.legends, redrawn.toggles,
            kpi_panel(list(INDICATORS.values()), data.kpis, view["indicator"], data.sparklines, lang),
            ranking(data, view).children, badge.children, badge.className,
            as_of_text(data.as_of, lang))


@callback(
    Output({"type": CARD_ALERTS, "building": ALL}, "children"),
    live.follows("map"),
    State(ids.URL, "search"),
    prevent_initial_call=True,
)
def follow_the_card_alerts(_generation, search):
    """The open building card's alerts, redrawn in place for a new generation like the rest of the page (an alert
    fired, acknowledged or resolved since the card was drawn). The card named by the URL is the one redrawn, as a
    reload would draw it; an output naming another building (only a hand-made request has one) is left alone."""
    outputs = dash.ctx.outputs_grouping  # one per card on the page: none, or the open one
    outputs = outputs if isinstance(outputs, list) else [outputs] if isinstance(outputs, dict) else []
    if not outputs:
        return []
    view = parse_view(search)
    service = services.get()
    card = service.building_card(view["building"])
    building = card.building["building_id"] if card is not None else None
    section = alert_section(service.building_alerts(building, card.sensors["sensor_id"]), view["lang"]) \
        if card is not None else no_update
    return [section if isinstance(o, dict) and isinstance(o.get("id"), dict) and o["id"].get("building") == building
            else no_update for o in outputs]


# The camera was fitted on the server for the map's size on a 1920×1080 screen. The page is sized in rem (the root
# font follows the screen: assets/theme.css), so on any other screen the map is that much larger or smaller, and the
# browser adds log2(root font / 16 px) to the zoom: a 3840×2160 screen shows the same view, twice as large.
clientside_callback(
    """function(camera) {
        if (!camera) { return window.dash_clientside.no_update; }
        const scale = parseFloat(getComputedStyle(document.documentElement).fontSize) / 16 || 1;
        const zoom = Math.round((camera.zoom + Math.log2(scale)) * 1000) / 1000;
        const panel = document.querySelector(".map-panel");
        if (panel) { panel.dataset.zoom = zoom; }  // the camera the screen got (tests/e2e/test_scaling.py)
        if (Math.abs(scale - 1) < 0.001) { return window.dash_clientside.no_update; }
        return Object.assign({}, camera, {zoom: zoom});
    }""",
    Output(ids.MAP, "initialViewState"),
    Input(MAP_CAMERA, "data"),
)


# The URL keeps the layers and colouring (a link reopens the same map) without a new history entry or a redraw.
clientside_callback(
    """function(layers, color) {
        const params = new URLSearchParams(window.location.search);
        params.set("layers", (layers || []).join(","));
        params.set("color", color || "use");
        window.history.replaceState(window.history.state, "", window.location.pathname + "?" + params.toString());
        return window.dash_clientside.no_update;
    }""",
    Output(ids.LAYER_PANEL, "data-synced"),
    Input(ids.LAYER_TOGGLES, "value"),
    Input(ids.BUILDING_COLOR, "value"),
    prevent_initial_call=True,
)
