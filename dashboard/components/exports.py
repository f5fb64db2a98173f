"""The "Export" menu for a page's top bar: the screen as PNG, the KPI table as CSV, the 3D scene as offline HTML.

The CSV and HTML links go to the routes of :mod:`dashboard.exports` with the page's view in the query; the PNG is
made in the browser (assets/exports.js), so it shows exactly what is on the screen.
"""
from __future__ import annotations

from urllib.parse import urlencode

from dash import html


def export_controls(view: dict) -> html.Details:
    """The menu for the view ``{"unit": …, "indicator": …, "window": …}`` (other keys are passed on)."""
    query = urlencode({key: value for key, value in view.items() if value})
    suffix = "?" + query if query else ""
    return html.Details(className="export-menu menu", id="export-menu", children=[
        html.Summary("⤓ Export", className="menu-button", title="Export 导出"),
        html.Div(className="menu-items", children=[
            html.Button(["Screen as PNG", html.Span("截图", className="zh")], id="export-png",
                        className="menu-item", **{"data-export": "png"}),
            html.A(["KPI table as CSV", html.Span("指标表", className="zh")], id="export-csv", className="menu-item",
                   href="/export/kpis.csv" + suffix, download="citytwin-kpis.csv"),
            html.A(["3D scene, offline HTML", html.Span("三维场景", className="zh")], id="export-scene",
                   className="menu-item", href="/export/scene.html" + suffix, download="citytwin-scene.html",
                   title="one file that opens in a browser with no network: for presentations away from the server"),
        ]),
    ])
