"""The breadcrumb: city › district › street …, each a link that reopens that view."""
from __future__ import annotations

from urllib.parse import urlencode

from dash import dcc, html

from dashboard.components.labels import short_name


def view_href(code: str, indicator: str, window: str, path: str = "/") -> str:
    return path + "?" + urlencode({"unit": code, "indicator": indicator, "window": window})


def breadcrumb(lineage: list[dict], indicator: str, window: str, path: str = "/") -> html.Nav:
    items = []
    for i, unit in enumerate(lineage):
        if i:
            items.append(html.Span("›", className="crumb-sep"))
        if i == len(lineage) - 1:
            label = [short_name(unit["name"]), html.Span(unit["name_zh"], className="zh")]
            items.append(html.Span(label, className="crumb current"))
        else:
            items.append(dcc.Link(short_name(unit["name"]), href=view_href(unit["code"], indicator, window, path),
                                  className="crumb", title=f"{unit['name']} {unit['name_zh']}"))
    return html.Nav(items, className="breadcrumb", id="breadcrumb")
