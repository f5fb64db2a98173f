"""The breadcrumb: city › district › street …, each a link that reopens that view (in the same language)."""
from __future__ import annotations

from urllib.parse import urlencode

from dash import dcc, html

from dashboard.components.labels import short_name
from dashboard.i18n import DEFAULT_LANGUAGE, language_query, unit_name


def view_href(code: str, indicator: str, window: str, path: str = "/", lang: str = DEFAULT_LANGUAGE) -> str:
    return path + "?" + urlencode({"unit": code, "indicator": indicator, "window": window, **language_query(lang)})


def breadcrumb(lineage: list[dict], indicator: str, window: str, path: str = "/",
               lang: str = DEFAULT_LANGUAGE) -> html.Nav:
    items = []
    for i, unit in enumerate(lineage):
        name = unit_name(unit, lang)
        parent = unit_name(lineage[i - 1], lang) if i else None
        if i:
            items.append(html.Span("›", className="crumb-sep"))
        if i == len(lineage) - 1:
            items.append(html.Span(short_name(name, parent), className="crumb current", title=name))
        else:
            items.append(dcc.Link(short_name(name, parent), href=view_href(unit["code"], indicator, window, path, lang),
                                  className="crumb", title=name))
    return html.Nav(items, className="breadcrumb", id="breadcrumb")
