"""Recurring hotspots: from one case to a class of cases. The same event type at the same place in the same hours,
day after day, found by :mod:`metrics.hotspots`, each with the evidence an operator can check and a link to the
place on the map. ``/hotspots?window=30d``."""
from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import services
from dashboard.components.breadcrumb import view_href
from dashboard.components.topbar import topbar
from dashboard.pages.overview import normalise_view
from metrics.spec import WINDOWS, WINDOWS_ZH

dash.register_page(__name__, path="/hotspots", title="citytwin · recurring hotspots", name="Hotspots")

HEADERS = ["#", "Event type", "Place", "District", "Hours", "Days", "Orders", "Expected", "× expected", "Evidence"]


def layout(unit: str | None = None, indicator: str | None = None, window: str | None = None, **_ignored):
    view = normalise_view(unit, indicator, window)
    service = services.get()
    data = service.unit_view(None, view["indicator"], view["window"])
    found = service.hotspots(view["window"])
    window_links = [dcc.Link(f"{WINDOWS[w]} {WINDOWS_ZH[w]}", className="window-link" + (
        " current" if w == view["window"] else ""), href=view_href(data.code, view["indicator"], w, "/hotspots"))
        for w in WINDOWS]
    rows = [html.Tr(className="hotspot-row", children=[
        html.Td(str(n)),
        html.Td(h.event_name),
        html.Td(dcc.Link(h.place, href=view_href(h.grid_code, view["indicator"], view["window"]))),
        html.Td(h.district),
        html.Td(f"{h.start_hour:02d}:00–{h.end_hour:02d}:00"),
        html.Td(f"{h.days_seen} of {h.days}"),
        html.Td(f"{h.orders:,}"),
        html.Td(f"{h.expected:,.1f}"),
        html.Td(f"{h.ratio:,.1f}"),
        html.Td(h.evidence, className="cat-formula"),
    ]) for n, h in enumerate(found.itertuples(), start=1)]
    return html.Div(className="screen", children=[
        topbar(data.lineage, view["indicator"], view["window"], data.as_of, page="hotspots",
               controls=[html.Div(window_links, className="window-links")]),
        html.Main(className="catalogue", children=[
            html.H1(["Recurring hotspots", html.Span("高频问题热点", className="zh")], id="hotspots-title",
                    **{"data-count": str(len(found))}),
            html.Div(f"{len(found)} found in {WINDOWS[view['window']]}: the same event type at the same place in "
                     "the same hours, on at least half of the days, far above what the place's volume explains "
                     "(Poisson scan, Bonferroni-corrected; see metrics/hotspots.py)", className="map-subtitle"),
            html.Div(className="catalogue-table-wrap", children=html.Table(className="catalogue-table", children=[
                html.Thead(html.Tr([html.Th(h) for h in HEADERS])), html.Tbody(rows)]))
            if rows else html.Div("No recurring hotspot in this window.", className="muted"),
        ]),
    ])
