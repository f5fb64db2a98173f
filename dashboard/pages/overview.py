"""The first screen: the map of a unit's children coloured by an indicator's state, the unit's KPI cards, and
drill-down (click a unit on the map) with a breadcrumb back up. The whole view is in the URL:
``/?unit=440304&indicator=on_time_rate&window=7d`` reopens Futian's view, and back/forward walk the drill path.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import ids, services
from dashboard.components.breadcrumb import breadcrumb
from dashboard.components.kpi import kpi_panel
from dashboard.components.labels import short_name
from dashboard.components.topbar import topbar
from dashboard.i18n import (DEFAULT_LANGUAGE, HTML_LANG, indicator_name, level_label, normalise_language, state_label,
                            t, unit_name, unit_of_measure, window_label)
from dashboard.maps.deck import choropleth_layer, city_map, fit_view, label_layer
from dashboard.theme import STATE_COLORS
from metrics.registry import INDICATORS
from metrics.spec import WINDOWS

dash.register_page(__name__, path="/", title="citytwin · city vital signs", name="Overview")

DEFAULT_INDICATOR = "on_time_rate"
DEFAULT_WINDOW = "7d"


def parse_view(search: str | None) -> dict:
    """The view named by a query string, with defaults for what is missing or unknown."""
    query = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}
    return normalise_view(query.get("unit"), query.get("indicator"), query.get("window"), query.get("lang"))


def normalise_view(unit=None, indicator=None, window=None, lang=None) -> dict:
    return {
        "unit": unit or None,
        "indicator": indicator if indicator in INDICATORS else DEFAULT_INDICATOR,
        "window": window if window in WINDOWS else DEFAULT_WINDOW,
        "lang": normalise_language(lang),
    }


def view_search(view: dict) -> str:
    """The view as a query string; English, the default language, is left out."""
    return "?" + urlencode({k: v for k, v in view.items() if v and not (k == "lang" and v == DEFAULT_LANGUAGE)})


def layout(unit: str | None = None, indicator: str | None = None, window: str | None = None, lang: str | None = None,
           **_ignored):
    view = normalise_view(unit, indicator, window, lang)
    lang = view["lang"]
    service = services.get()
    data = service.unit_view(view["unit"], view["indicator"], view["window"])
    selected = INDICATORS[view["indicator"]]

    state_by_code = dict(zip(data.children["code"], data.children["state"]))
    value_by_code = {code: f"{selected.name}: {selected.format_value(value)} {selected.unit}"
                     for code, value in zip(data.children["code"], data.children["value"])}
    layers = [choropleth_layer("units", data.children_geojson, state_by_code, value_by_code, selected=data.code),
              label_layer("unit-labels", data.children_geojson)]
    child_label = level_label(data.child_level or data.level, lang)

    return html.Div(className="screen", lang=HTML_LANG[lang], children=[
        topbar(data.lineage, view["indicator"], view["window"], data.as_of, page="map", here="/" + view_search(view),
               lang=lang, controls=[
            dcc.Dropdown(
                id=ids.INDICATOR, value=view["indicator"], clearable=False, searchable=True,
                options=[{"label": indicator_name(i, lang), "value": i.id} for i in INDICATORS.values()],
                className="indicator-select"),
            dcc.RadioItems(
                id=ids.WINDOW, value=view["window"], className="window-select", inline=True,
                options=[{"label": window_label(w, lang), "value": w} for w in WINDOWS]),
        ]),
        html.Main(className="main", children=[
            html.Section(className="map-panel", children=[
                city_map(ids.MAP, layers, fit_view(data.bounds)),
                html.Div(className="map-title", children=[
                    breadcrumb(data.lineage, view["indicator"], view["window"], lang=lang),
                    html.H1(unit_name({"name": data.name, "name_zh": data.name_zh}, lang), id=ids.UNIT_TITLE,
                            **{"data-unit": data.code, "data-level": data.level}),
                    html.Div(t("map.subtitle", lang, children=child_label, indicator=indicator_name(selected, lang),
                               unit=unit_of_measure(selected.unit, lang), window=window_label(view["window"], lang)),
                             className="map-subtitle"),
                ]),
                score_badge(data, lang),
                legend(data.children["state"].value_counts().to_dict(), lang),
            ]),
            html.Aside(className="side-panel", children=[
                html.Div(id=ids.KPI_PANEL, className="kpi-panel",
                         children=kpi_panel(list(INDICATORS.values()), data.kpis, view["indicator"],
                                            data.sparklines, lang)),
                ranking(data, view),
            ]),
        ]),
    ])


def score_badge(data: services.UnitView, lang: str = DEFAULT_LANGUAGE) -> html.Details:
    """The unit's composite vital-sign score; opening it shows which indicators pull it down, with their weights."""
    score = data.score
    state = "no_data" if score != score else (
        "good" if score >= 90 else "watch" if score >= 75 else "warning" if score >= 50 else "critical")
    costs = data.score_explanation[data.score_explanation["lost"] > 0].head(6)
    rows = [html.Tr([html.Td(indicator_name(INDICATORS[r.indicator], lang)),
                     html.Td(state_label(r.state, lang), className=f"kpi-state state-{r.state}"),
                     html.Td(f"×{r.weight:g}"), html.Td(f"−{r.lost:.1f}")]) for r in costs.itertuples()]
    return html.Details(className=f"score-badge state-{state}", id="vital-score", children=[
        html.Summary([html.Span(t("score.label", lang), className="score-label"),
                      html.Span("—" if score != score else f"{score:.0f}", className="score-value"),
                      html.Span("/ 100", className="muted")]),
        html.Table([html.Thead(html.Tr([html.Th(t(f"score.{key}", lang))
                                        for key in ("pulled_down_by", "state", "weight", "points")])),
                    html.Tbody(rows)], className="score-table")
        if rows else html.Div(t("score.all_good", lang), className="muted"),
    ])


def legend(counts: dict[str, int], lang: str = DEFAULT_LANGUAGE) -> html.Div:
    rows = []
    for state in ("critical", "warning", "watch", "good", "neutral", "no_data"):
        if counts.get(state):
            rows.append(html.Div(className="legend-row", children=[
                html.Span(className="swatch", style={"background": STATE_COLORS[state]}),
                html.Span(state_label(state, lang)),
                html.Span(str(counts[state]), className="legend-count"),
            ]))
    return html.Div(rows, className="legend")


def ranking(data: services.UnitView, view: dict) -> html.Div:
    """The children ranked by the selected indicator, worst first where a direction of good is known."""
    indicator, lang = INDICATORS[view["indicator"]], view.get("lang", DEFAULT_LANGUAGE)
    children = data.children.copy()
    ascending = indicator.good_direction == "up"
    children = children.sort_values("value", ascending=ascending, na_position="last")
    rows = []
    for position, child in enumerate(children.itertuples(), start=1):
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
    return html.Div(className="ranking", id=ids.RANKING, children=[html.H3(title, className="topic"),
                                                                  html.Div(rows, className="rank-rows")])


@callback(
    Output(ids.URL, "search"),
    Input(ids.MAP, "clickInfo"),
    Input(ids.INDICATOR, "value"),
    Input(ids.WINDOW, "value"),
    State(ids.URL, "search"),
    prevent_initial_call=True,
)
def navigate(click_info, indicator, window, search):
    """A click on a unit drills into it; a new indicator or window keeps the unit. Both change only the URL, and
    the page follows the URL, so every view can be linked to and back/forward work."""
    current = parse_view(search)
    wanted = dict(current)
    if dash.ctx.triggered_id == ids.MAP:
        code = ((click_info or {}).get("properties") or {}).get("code")
        wanted["unit"] = code or current["unit"]
    else:
        wanted.update(normalise_view(current["unit"], indicator, window, current["lang"]))
    # Dash also calls this when the page is drawn; the view is then unchanged and the page must not redraw.
    return no_update if wanted == current else view_search(wanted)
