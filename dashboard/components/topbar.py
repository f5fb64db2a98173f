"""The top bar every page shares: brand, breadcrumb, the page's own controls, page links and data freshness."""
from __future__ import annotations

from dash import dcc, html

from dashboard import ids
from dashboard.components.breadcrumb import breadcrumb, view_href


def topbar(lineage: list[dict], indicator: str, window: str, as_of, controls: list, page: str) -> html.Header:
    city = lineage[0]
    here = lineage[-1]["code"]
    pages = [("Map", "地图", view_href(here, indicator, window)),
             ("Hotspots", "热点", view_href(here, indicator, window, path="/hotspots")),
             ("Catalogue", "指标目录", view_href(here, indicator, window, path="/catalogue")),
             ("Wall", "大屏", view_href(here, indicator, window, path="/wall"))]
    return html.Header(className="topbar", children=[
        html.Div(className="brand", children=[
            html.Span("citytwin", className="brand-name"),
            html.Span(f"{city['name_zh']} 城市运行指挥中心 · {city['name']} city operations", className="brand-sub"),
        ]),
        # The map page shows its breadcrumb over the map, where a deep drill path has room.
        html.Div(className="topbar-spacer") if page == "map" else
        breadcrumb(lineage, indicator, window, path={"catalogue": "/catalogue"}.get(page, "/")),
        html.Div(className="controls", children=controls),
        html.Nav(className="page-links", children=[
            dcc.Link([label, html.Span(label_zh, className="zh")], href=href,
                     className="page-link" + (" current" if label.lower() == page else ""))
            for label, label_zh, href in pages]),
        html.Div(id=ids.AS_OF, className="as-of", children=[
            html.Span("data as of", className="muted"),
            html.Span(as_of.strftime("%Y-%m-%d %H:%M"), className="as-of-time"),
        ]),
    ])
