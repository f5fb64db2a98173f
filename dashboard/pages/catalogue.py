"""The indicator catalogue: every indicator of the registry with its formula, thresholds and owner, and its live
value for the selected unit and window. ``/catalogue?unit=440304&window=30d`` shows Futian over 30 days."""
from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import services
from dashboard.components.breadcrumb import view_href
from dashboard.components.kpi import change_badge
from dashboard.components.topbar import topbar
from dashboard.pages.overview import normalise_view
from dashboard.theme import STATE_LABELS
from metrics.catalogue import DIRECTIONS, thresholds_text
from metrics.registry import INDICATORS, TOPICS
from metrics.spec import WINDOWS, WINDOWS_ZH

dash.register_page(__name__, path="/catalogue", title="citytwin · indicator catalogue", name="Catalogue")

HEADERS = ["Indicator", "Value", "Change", "State", "Formula", "Thresholds", "Direction", "Owner · update"]


def layout(unit: str | None = None, indicator: str | None = None, window: str | None = None, **_ignored):
    view = normalise_view(unit, indicator, window)
    data = services.get().unit_view(view["unit"], view["indicator"], view["window"])
    window_links = [dcc.Link(f"{WINDOWS[w]} {WINDOWS_ZH[w]}", className="window-link" + (
        " current" if w == view["window"] else ""), href=view_href(data.code, view["indicator"], w, "/catalogue"))
        for w in WINDOWS]
    rows = []
    for topic, (title, title_zh) in TOPICS.items():
        members = [i for i in INDICATORS.values() if i.topic == topic]
        if not members:
            continue
        rows.append(html.Tr(html.Th([title, html.Span(title_zh, className="zh")], colSpan=len(HEADERS)),
                            className="topic-row"))
        for i in members:
            kpi = data.kpis.loc[i.id]
            state = kpi["state"] if isinstance(kpi["state"], str) else "no_data"
            rows.append(html.Tr(className=f"state-{state}", children=[
                html.Td([html.Div(i.name), html.Div(i.name_zh, className="zh"), html.Code(i.id)]),
                html.Td([html.Span(i.format_value(float(kpi["value"])), className="cat-value",
                                   **{"data-indicator": i.id}), html.Span(f" {i.unit}", className="muted")]),
                html.Td(change_badge(i, kpi["change"], kpi["previous"])),
                html.Td(html.Span(STATE_LABELS[state][0], className=f"kpi-state state-{state}")),
                html.Td(i.description, className="cat-formula"),
                html.Td(thresholds_text(i)),
                html.Td(DIRECTIONS[i.good_direction]),
                html.Td([i.owner, html.Div(i.frequency, className="muted")]),
            ]))
    return html.Div(className="screen", children=[
        topbar(data.lineage, view["indicator"], view["window"], data.as_of, page="catalogue",
               controls=[html.Div(window_links, className="window-links")]),
        html.Main(className="catalogue", children=[
            html.H1([f"Indicator catalogue · {data.name}", html.Span(data.name_zh, className="zh")],
                    id="catalogue-title", **{"data-unit": data.code}),
            html.Div(f"{len(INDICATORS)} indicators in {len(TOPICS)} topics · values for {WINDOWS[view['window']]}, "
                     "change against the window before it", className="map-subtitle"),
            html.Div(className="catalogue-table-wrap", children=html.Table(className="catalogue-table", children=[
                html.Thead(html.Tr([html.Th(h) for h in HEADERS])), html.Tbody(rows)])),
        ]),
    ])
