"""Recurring hotspots: from one case to a class of cases. The same event type at the same place in the same hours,
day after day, found by :mod:`metrics.hotspots`, each with the evidence an operator can check and a link to the
place on the map. ``/hotspots?window=30d``."""
from __future__ import annotations

import dash
from dash import dcc, html

from dashboard import auth, services
from dashboard.components.breadcrumb import view_href
from dashboard.components.topbar import topbar
from dashboard.i18n import HTML_LANG, hotspot_evidence, localise_hotspots, t, window_label
from dashboard.view import normalise_view
from metrics.spec import WINDOWS

dash.register_page(__name__, path="/hotspots", title="citytwin · recurring hotspots", name="Hotspots")

HEADERS = ["#", "event_type", "place", "district", "hours", "days", "orders", "expected", "ratio", "evidence"]


def layout(unit: str | None = None, indicator: str | None = None, window: str | None = None, lang: str | None = None,
           **_ignored):
    view = normalise_view(unit, indicator, window, lang=lang)
    lang = view["lang"]
    service = services.get()
    data = service.unit_view(auth.scope_unit(), view["indicator"], view["window"])
    # The asker's area only (the detection runs city-wide once per window; what is cut is cut per request).
    found = localise_hotspots(auth.within_scope(service.hotspots(view["window"]), "grid_code"), service.city(), lang)
    window_links = [dcc.Link(window_label(w, lang), className="window-link" + (
        " current" if w == view["window"] else ""), href=view_href(data.code, view["indicator"], w, "/hotspots", lang))
        for w in WINDOWS]
    rows = [html.Tr(className="hotspot-row", children=[
        html.Td(str(n)),
        html.Td(h.event_name),
        html.Td(dcc.Link(h.place, href=view_href(h.grid_code, view["indicator"], view["window"], lang=lang))),
        html.Td(h.district),
        html.Td(f"{h.start_hour:02d}:00–{h.end_hour:02d}:00"),
        html.Td(t("hotspots.days_seen", lang, seen=h.days_seen, days=h.days)),
        html.Td(f"{h.orders:,}"),
        html.Td(f"{h.expected:,.1f}"),
        html.Td(f"{h.ratio:,.1f}"),
        html.Td(hotspot_evidence(h, lang), className="cat-formula"),
    ]) for n, h in enumerate(found.itertuples(), start=1)]
    here = view_href(data.code, view["indicator"], view["window"], "/hotspots")
    return html.Div(className="screen", lang=HTML_LANG[lang], children=[
        topbar(data.lineage, view["indicator"], view["window"], data.as_of, page="hotspots", here=here, lang=lang,
               controls=[html.Div(window_links, className="window-links")]),
        html.Main(className="catalogue", children=[
            html.H1(t("hotspots.title", lang), id="hotspots-title", **{"data-count": str(len(found))}),
            html.Div(t("hotspots.subtitle", lang, count=len(found), window=window_label(view["window"], lang)),
                     className="map-subtitle"),
            html.Div(className="catalogue-table-wrap", children=html.Table(className="catalogue-table", children=[
                html.Thead(html.Tr([html.Th(h if h == "#" else t(f"hotspots.column.{h}", lang)) for h in HEADERS])),
                html.Tbody(rows)]))
            if rows else html.Div(t("hotspots.none", lang), className="muted"),
        ]),
    ])
