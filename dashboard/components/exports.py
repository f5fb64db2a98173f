"""The "Export" menu for a page's top bar: the screen as PNG, the KPI table as CSV, the 3D scene as offline HTML.

The CSV and HTML links go to the routes of :mod:`dashboard.exports` with the page's view in the query; the PNG is
made in the browser (assets/exports.js), so it shows exactly what is on the screen.
"""
from __future__ import annotations

from urllib.parse import urlencode

from dash import html

from dashboard.i18n import t
from layers.city_settings import timezone as city_timezone


def export_controls(view: dict) -> html.Details:
    """The menu for the view ``{"unit": …, "indicator": …, "window": …}`` (other keys are passed on)."""
    query = urlencode({key: value for key, value in view.items() if value})
    suffix = "?" + query if query else ""
    lang = view.get("lang", "en")
    return html.Details(className="export-menu menu", id="export-menu", children=[
        html.Summary(t("export.menu", lang), className="menu-button"),
        html.Div(className="menu-items", children=[
            # The PNG's name carries the time in the city's time zone, as the CSV's and HTML's do.
            html.Button(t("export.png", lang), id="export-png", className="menu-item",
                        **{"data-export": "png", "data-timezone": city_timezone()}),
            html.A(t("export.csv", lang), id="export-csv", className="menu-item",
                   href="/export/kpis.csv" + suffix, download="citytwin-kpis.csv"),
            html.A(t("export.scene", lang), id="export-scene",
                   className="menu-item", href="/export/scene.html" + suffix, download="citytwin-scene.html",
                   title=t("export.scene_help", lang)),
        ]),
    ])
