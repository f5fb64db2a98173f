"""The indicator catalogue: every indicator of the registry with its formula, thresholds and owner, and its live
value for the selected unit and window. ``/catalogue?unit=440304&window=30d`` shows Futian over 30 days."""
from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import auth, services
from dashboard.components.breadcrumb import view_href
from dashboard.components.kpi import change_badge
from dashboard.components.topbar import topbar
from dashboard.i18n import (HTML_LANG, department_name, frequency_label, indicator_description, indicator_name,
                            state_label, t, thresholds_text, topic_title, unit_name, unit_of_measure,
                            window_label)
from dashboard.view import normalise_view
from metrics.registry import INDICATORS, TOPICS
from metrics.spec import WINDOWS

dash.register_page(__name__, path="/catalogue", title="citytwin · indicator catalogue", name="Catalogue")

HEADERS = ["indicator", "value", "change", "state", "formula", "thresholds", "direction", "owner"]


def layout(unit: str | None = None, indicator: str | None = None, window: str | None = None, lang: str | None = None,
           **_ignored):
    view = normalise_view(auth.default_unit(unit), indicator, window, lang=lang)
    lang = view["lang"]
    data = services.get().unit_view(view["unit"], view["indicator"], view["window"])
    window_links = [dcc.Link(window_label(w, lang), className="window-link" + (
        " current" if w == view["window"] else ""), href=view_href(data.code, view["indicator"], w, "/catalogue", lang))
        for w in WINDOWS]
    rows = []
    for topic in TOPICS:
        members = [i for i in INDICATORS.values() if i.topic == topic]
        if not members:
            continue
        rows.append(html.Tr(html.Th(topic_title(topic, lang), colSpan=len(HEADERS)), className="topic-row"))
        for i in members:
            kpi = data.kpis.loc[i.id]
            state = kpi["state"] if isinstance(kpi["state"], str) else "no_data"
            rows.append(html.Tr(className=f"state-{state}", children=[
                html.Td([html.Div(indicator_name(i, lang)), html.Code(i.id)]),
                html.Td([html.Span(i.format_value(float(kpi["value"])), className="cat-value",
                                   **{"data-indicator": i.id}),
                         html.Span(f" {unit_of_measure(i.unit, lang)}", className="muted")]),
                html.Td(change_badge(i, kpi["change"], kpi["previous"], lang)),
                html.Td(html.Span(state_label(state, lang), className=f"kpi-state state-{state}")),
                html.Td(indicator_description(i, lang), className="cat-formula"),
                html.Td(thresholds_text(i, lang)),
                html.Td(t(f"direction.{i.good_direction}", lang)),
                html.Td([department_name(i.owner, lang), html.Div(frequency_label(i.frequency, lang), className="muted")]),
            ]))
    here = view_href(data.code, view["indicator"], view["window"], "/catalogue")
    return html.Div(className="screen", lang=HTML_LANG[lang], children=[
        topbar(data.lineage, view["indicator"], view["window"], data.as_of, page="catalogue", here=here, lang=lang,
               controls=[html.Div(window_links, className="window-links")]),
        html.Main(className="catalogue", children=[
            html.H1(t("catalogue.title", lang, unit=unit_name({"name": data.name, "name_zh": data.name_zh}, lang)),
                    id="catalogue-title", **{"data-unit": data.code}),
            html.Div(t("catalogue.subtitle", lang, count=len(INDICATORS), topics=len(TOPICS),
                       window=window_label(view["window"], lang)), className="map-subtitle"),
            html.Div(className="catalogue-table-wrap", children=html.Table(className="catalogue-table", children=[
                html.Thead(html.Tr([html.Th(t(f"catalogue.column.{h}", lang)) for h in HEADERS])), html.Tbody(rows)])),
        ]),
    ])
