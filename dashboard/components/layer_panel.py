"""The map's layer panel, generated from ``dashboard/maps/registry.MAP_LAYERS``: a toggle per layer with its
freshness badge, the legend of each layer that is on, and the colouring of the 3D buildings."""
from __future__ import annotations

import pandas as pd
from dash import dcc, html

from dashboard import ids
from dashboard.maps.registry import MAP_LAYERS, MapView
from dashboard.maps.sources import BUILDING_COLOR_MODES

BUILDING_COLOR_LABELS = {"use": ("use", "用途"), "state": ("indicator", "指标"), "alarms": ("alarms", "告警")}
# Data age → badge state: an hour is live for a command center, a day is stale, a week is dead.
FRESHNESS_STEPS = ((pd.Timedelta(hours=1), "good"), (pd.Timedelta(days=1), "watch"), (pd.Timedelta(days=7),
                                                                                       "warning"))


def age_text(age: pd.Timedelta) -> str:
    seconds = max(age.total_seconds(), 0)
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def freshness_badge(newest: pd.Timestamp | None, now: pd.Timestamp) -> html.Span:
    if newest is None or pd.isna(newest):
        return html.Span("no data", className="fresh-badge state-no_data")
    age = now - newest
    state = next((s for limit, s in FRESHNESS_STEPS if age <= limit), "critical")
    return html.Span(age_text(age), className=f"fresh-badge state-{state}",
                     title=f"newest record {newest:%Y-%m-%d %H:%M}")


def layer_panel(view: MapView, enabled: tuple[str, ...], freshness: dict, now: pd.Timestamp) -> html.Div:
    options = []
    for layer in MAP_LAYERS.values():
        newest = max((freshness[s] for s in layer.sources if s in freshness), default=None)
        options.append({"value": layer.id, "label": html.Span(className="layer-option", title=layer.description,
                                                              children=[
            html.Span(layer.title, className="layer-title"), html.Span(layer.title_zh, className="zh"),
            freshness_badge(newest, now)])})
    return html.Div(className="layer-panel", id=ids.LAYER_PANEL, children=[
        html.Div("Layers 图层", className="layer-panel-title"),
        dcc.Checklist(id=ids.LAYER_TOGGLES, options=options, value=list(enabled), className="layer-toggles"),
        html.Div(className="building-color", children=[
            html.Span("Buildings by 建筑着色", className="muted"),
            dcc.RadioItems(id=ids.BUILDING_COLOR, value=view.building_color, inline=True, options=[
                {"label": f"{en} {zh}", "value": mode} for mode, (en, zh) in
                ((m, BUILDING_COLOR_LABELS[m]) for m in BUILDING_COLOR_MODES)]),
        ]),
        html.Div(id=ids.LAYER_LEGENDS, className="layer-legends", children=legends(view, enabled)),
    ])


def legends(view: MapView, enabled) -> list:
    blocks = []
    for layer_id in enabled:
        layer = MAP_LAYERS[layer_id]
        entries = layer.legend(view)
        if not entries:
            continue
        blocks.append(html.Div(className="legend-block", **{"data-layer": layer_id}, children=[
            html.Div(layer.title, className="legend-title"),
            *[html.Div(className="legend-row", children=[
                html.Span(className="swatch", style={"background": entry.color}),
                html.Span(f"{entry.label} {entry.label_zh}")]) for entry in entries],
        ]))
    if view.notes:
        blocks.append(html.Div([html.Div(note) for note in view.notes], className="layer-notes"))
    return blocks
