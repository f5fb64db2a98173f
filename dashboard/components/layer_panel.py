"""The map's layer panel, generated from ``dashboard/maps/registry.MAP_LAYERS``: a toggle per layer with its
freshness badge, the legend of each layer that is on, and the colouring of the 3D buildings."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from dash import dcc, html

from dashboard import ids
from dashboard.i18n import pick, t
from dashboard.maps.registry import MAP_LAYERS, MapView, build_layers, normalise_layers
from dashboard.maps.sources import BUILDING_COLOR_MODES
from dashboard.view import map_view
from metrics.spec import FRESHNESS_MINUTES


def age_text(age: pd.Timedelta, lang: str = "en") -> str:
    """A compact age for a badge: 12 min, 3 h, 2 d (12分钟, 3小时, 2天)."""
    seconds = max(age.total_seconds(), 0)
    for size, english, chinese in ((86400, "d", "天"), (3600, "h", "小时"), (60, "min", "分钟")):
        if seconds >= size or size == 60:
            count = int(seconds // size)
            return f"{count}{chinese}" if lang == "zh" else f"{count} {english}"


def freshness_badge(newest: pd.Timestamp | None, now: pd.Timestamp, lang: str = "en") -> html.Span:
    if newest is None or pd.isna(newest):
        return html.Span(t("layers.no_data", lang), className="fresh-badge state-no_data")
    age = now - newest
    state = FRESHNESS_MINUTES.state(age.total_seconds() / 60)
    return html.Span(age_text(age, lang), className=f"fresh-badge state-{state}",
                     title=t("layers.newest", lang, when=f"{newest:%Y-%m-%d %H:%M}"))


def layer_options(view: MapView) -> list[dict]:
    """The toggles: one per layer of the registry, with its freshness badge, its newest record's age at the clock
    now (in live mode a badge ages while the screen is open, and a new generation redraws it)."""
    freshness = view.services.layer_freshness()
    now = pd.Timestamp.now(tz=view.data.as_of.tz)
    options = []
    for layer in MAP_LAYERS.values():
        newest = max((freshness[s] for s in layer.sources if s in freshness), default=None)
        about = pick(layer.description, layer.description_zh, view.lang)
        options.append({"value": layer.id, "label": html.Span(className="layer-option", title=about,
                                                              **{"data-layer": layer.id}, children=[
            html.Span(pick(layer.title, layer.title_zh, view.lang), className="layer-title"),
            freshness_badge(newest, now, view.lang)])})
    return options


@dataclass
class Redrawn:
    """What the map page draws for a view: the map's layers, their legends and the toggles with their badges."""
    view: MapView
    layers: list[dict]
    legends: list
    toggles: list[dict]


def redraw(view: dict, layers, color) -> Redrawn:
    """The map for ``view`` (the URL's) with the ``layers`` the toggles have on and the buildings' ``color``, as
    the browser sent them (anything else is left out or the default): one place for a restyle, playback and the
    live refresh."""
    layers = [layer for layer in layers if isinstance(layer, str)] if isinstance(layers, list) else []
    enabled = normalise_layers(",".join(layers))
    drawn = map_view({**view, "color": color if color in BUILDING_COLOR_MODES else "use"})
    return Redrawn(drawn, build_layers(drawn, enabled), legends(drawn, enabled), layer_options(drawn))


def layer_panel(view: MapView, enabled: tuple[str, ...]) -> html.Div:
    lang = view.lang
    return html.Div(className="layer-panel", id=ids.LAYER_PANEL, children=[
        html.Div(t("layers.title", lang), className="layer-panel-title"),
        dcc.Checklist(id=ids.LAYER_TOGGLES, options=layer_options(view), value=list(enabled),
                      className="layer-toggles"),
        html.Div(className="building-color", children=[
            html.Span(t("layers.buildings_by", lang), className="muted"),
            dcc.RadioItems(id=ids.BUILDING_COLOR, value=view.building_color, inline=True, options=[
                {"label": t(f"layers.color.{mode}", lang), "value": mode} for mode in BUILDING_COLOR_MODES]),
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
            html.Div(pick(layer.title, layer.title_zh, view.lang), className="legend-title"),
            *[html.Div(className="legend-row", children=[
                html.Span(className="swatch", style={"background": entry.color}),
                html.Span(pick(entry.label, entry.label_zh, view.lang))]) for entry in entries],
        ]))
    if view.notes:
        blocks.append(html.Div([html.Div(note) for note in view.notes], className="layer-notes"))
    return blocks
