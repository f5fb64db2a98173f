"""The wall's panels, render only: each function takes plain data (registry entries, service tables) and returns
Dash components. Sizes live in assets/wall.css, in rem of a root font that scales with the screen."""
from __future__ import annotations

import math

import pandas as pd
from dash import html

from dashboard.components.kpi import change_badge
from dashboard.components.numbers import number_or_none
from dashboard.components.wall_playlist import PLAYLIST, topic_indicators
from dashboard.i18n import (DEFAULT_LANGUAGE, indicator_description, indicator_name, level_label, level_noun,
                            normalise_language, state_label, t, topic_title, unit_name, unit_of_measure,
                            window_label)
from dashboard.theme import STATE_COLORS
from metrics.registry import INDICATORS
from metrics.score import SCORE_STATES
from metrics.spec import Indicator


def _row(kpis: pd.DataFrame, indicator_id: str):
    return kpis.loc[indicator_id] if indicator_id in kpis.index else None


def _state(row) -> str:
    state = row.get("state") if row is not None else None
    return state if isinstance(state, str) else "no_data"


def split_name(indicator: Indicator, lang: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """``Requests received: Public safety`` → (``Requests received``, ``Public safety``): family members name
    their base and their part; the wall sets the part in smaller type. A Chinese name is one word: no part."""
    name, _, part = indicator_name(indicator, lang).partition(": ")
    return name, part


# --- the rotating topic ---------------------------------------------------------------------------------------

def topic_heading(topic: str, next_topic: str, lang: str = DEFAULT_LANGUAGE) -> list:
    position = PLAYLIST.index(topic) + 1
    return [
        html.Div(className="wall-kicker", children=[
            html.Span(t("wall.topic", lang), className="wall-kicker-label"),
            html.Span(f"{position:02d}", className="wall-kicker-pos"),
            html.Span(f"/ {len(PLAYLIST)}", className="muted"),
        ]),
        html.H2(topic_title(topic, lang), className="wall-topic-title", **{"data-topic": topic}),
        html.Div([html.Span(t("wall.next", lang), className="muted"), f" {topic_title(next_topic, lang)}"],
                 className="wall-topic-next"),
    ]


def topic_strip(states: dict[str, str], current: str, seconds: int | None, step: int,
                lang: str = DEFAULT_LANGUAGE) -> list:
    """One segment per topic, coloured by the topic's worst state; the current one fills up in ``seconds`` (two
    alternating animations, so that the browser restarts the fill at every step)."""
    segments = []
    for topic in PLAYLIST:
        classes = f"wall-seg state-{states.get(topic, 'no_data')}"
        children = []
        if topic == current:
            classes += " current"
            if seconds:
                children = [html.Span(className="wall-seg-fill " + ("odd" if step % 2 else "even"),
                                      style={"animationDuration": f"{seconds}s"})]
        segments.append(html.Div(children, className=classes, title=topic_title(topic, lang)))
    return segments


def wall_card(indicator: Indicator, row, lead: bool = False, explain: bool = False,
              lang: str = DEFAULT_LANGUAGE) -> html.Div:
    """A KPI card; ``explain`` adds what the indicator measures and its thresholds (for topics with few cards)."""
    value = number_or_none(row.get("value")) if row is not None else None
    state = _state(row)
    name, part = split_name(indicator, lang)
    figure = indicator.format_value(value)
    zh = normalise_language(lang) == "zh"
    about = None
    if explain:
        steps = " · ".join(f"{span} {state_label(state, lang) if zh else state_label(state, lang).lower()}"
                           for state, span in threshold_spans(indicator, lang)) or t("wall.no_thresholds", lang)
        about = html.Div([html.Div(indicator_description(indicator, lang), className="wall-card-about"),
                          html.Div(steps, className="wall-card-steps")], className="wall-card-explain")
    return html.Div(className=f"wall-card state-{state}" + (" lead" if lead else ""), children=[
        html.Div([html.Span(name, className="wall-card-name" + (" with-part" if part else "")),
                  html.Span(part, className="wall-card-part") if part else None], className="wall-card-head"),
        # The tag row stays on every card (empty but for the lead's tag), so that the figures line up.
        html.Div(html.Span(t("wall.on_the_map", lang), className="wall-card-tag") if lead else None,
                 className="wall-card-zh"),
        html.Div([html.Span(figure, className="wall-card-value" + (" long" if len(figure) > 7 else ""),
                            **{"data-indicator": indicator.id}),
                  html.Span(unit_of_measure(indicator.unit, lang) if value is not None else "",
                            className="wall-card-unit")],
                 className="wall-card-figure"),
        html.Div([html.Span(state_label(state, lang), className=f"wall-card-state state-{state}"),
                  change_badge(indicator, row.get("change") if row is not None else None,
                               row.get("previous") if row is not None else None, lang)], className="wall-card-foot"),
        about,
    ])


def topic_cards(topic: str, kpis: pd.DataFrame, lead: Indicator, lang: str = DEFAULT_LANGUAGE) -> html.Div:
    indicators = topic_indicators(topic)
    if len(indicators) <= 3:
        # Few cards: one column of large cards that also say what they measure, rather than an empty panel.
        cards = [wall_card(i, _row(kpis, i.id), lead=i.id == lead.id, explain=True, lang=lang) for i in indicators]
        return html.Div(cards, className="wall-cards hero", style={"gridTemplateRows": "repeat(3, minmax(0, 1fr))"},
                        **{"data-count": str(len(cards))})
    cards = [wall_card(i, _row(kpis, i.id), lead=i.id == lead.id, lang=lang) for i in indicators]
    rows = max(3, math.ceil(len(cards) / 2))
    return html.Div(cards, className="wall-cards" + (" dense" if rows > 3 else ""),
                    style={"gridTemplateRows": f"repeat({rows}, minmax(0, 1fr))"}, **{"data-count": str(len(cards))})


# --- the map's caption and legend, and the district ranking ------------------------------------------------------

def _bound(value: float) -> str:
    """A threshold as people write it: ``20,000``, ``2.5``, ``99.5``."""
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:,.6g}"


def threshold_spans(indicator: Indicator, lang: str = DEFAULT_LANGUAGE) -> list[tuple[str, str]]:
    """``[(state, "< 95"), (state, "95 – 98"), …, (state, "≥ 99")]`` from the indicator's thresholds."""
    if indicator.thresholds is None:
        return []
    steps = indicator.thresholds.steps
    spans = []
    for i, step in enumerate(steps):
        upper = steps[i + 1].value if i + 1 < len(steps) else None
        if i == 0:
            span = f"< {_bound(upper)}" if upper is not None else t("wall.all", lang)
        elif upper is None:
            span = f"≥ {_bound(step.value)}"
        else:
            span = f"{_bound(step.value)} – {_bound(upper)}"
        spans.append((step.state, span))
    return spans


def map_caption(indicator: Indicator, window: str, children: pd.DataFrame, lang: str = DEFAULT_LANGUAGE,
                child_level: str = "district") -> list:
    """The map's title (its units by the indicator: "Districts by", "Cities by" on a province) and legend."""
    counts = children["state"].value_counts().to_dict()
    rows = []
    if indicator.thresholds is not None:
        for state, span in threshold_spans(indicator, lang):
            rows.append(_legend_row(state, span, counts.get(state, 0), lang))
    else:
        rows.append(html.Div(className="wall-legend-row", children=[
            html.Span(className="wall-swatch ramp"), html.Span(t("wall.ramp", lang), className="wall-legend-span")]))
    if counts.get("no_data"):
        rows.append(_legend_row("no_data", "", counts["no_data"], lang))
    name, part = split_name(indicator, lang)
    return [
        html.Div(className="wall-map-title", children=[
            html.Div(t("wall.children_by", lang, children=level_label(child_level, lang)), className="wall-map-kicker"),
            html.Div([name, html.Span(f" · {part}", className="wall-card-part") if part else None,
                      html.Span(unit_of_measure(indicator.unit, lang), className="wall-map-unit")],
                     className="wall-map-indicator"),
            html.Div(window_label(window, lang), className="muted"),
        ]),
        html.Div(rows, className="wall-legend"),
    ]


def _legend_row(state: str, span: str, count: int, lang: str = DEFAULT_LANGUAGE) -> html.Div:
    label = state_label(state, lang)
    return html.Div(className="wall-legend-row" + ("" if count else " empty"), title=label, children=[
        html.Span(className="wall-swatch", style={"background": STATE_COLORS[state]}),
        html.Span(span or label, className="wall-legend-span"),
        html.Span(str(count), className="wall-legend-count"),
    ])


def children_ranking(indicator: Indicator, children: pd.DataFrame, lang: str = DEFAULT_LANGUAGE,
                     child_level: str = "district") -> list:
    """The units on the map (the districts; a province's cities) by the map's indicator, worst first where a
    direction of good is known."""
    ranked = children.sort_values("value", ascending=indicator.good_direction == "up", na_position="last")
    values = [v for v in (number_or_none(v) for v in ranked["value"]) if v is not None]
    largest = max((abs(v) for v in values), default=0) or 1
    rows = []
    for position, child in enumerate(ranked.itertuples(), start=1):
        value = number_or_none(child.value)
        width = 0 if value is None else max(2.0, 100 * abs(value) / largest)
        rows.append(html.Div(className=f"wall-rank-row state-{child.state}", children=[
            html.Span(str(position), className="wall-rank-pos"),
            html.Span(unit_name(child._asdict(), lang), className="wall-rank-name"),
            html.Span(html.Span(className="wall-rank-fill", style={"width": f"{width:.1f}%"}),
                      className="wall-rank-bar"),
            html.Span(indicator.format_value(value), className="wall-rank-value"),
        ]))
    order = t("wall.worst_first" if indicator.good_direction != "none" else "wall.largest_first", lang)
    heading = t("wall.ranking", lang, child=level_noun(child_level, lang).capitalize(),
                children=level_label(child_level, lang))
    return [html.H3([heading, html.Span(f" · {order}", className="muted")], className="wall-h3"),
            html.Div(rows, className="wall-rank-rows")]


# --- score and situation ------------------------------------------------------------------------------------

def score_state(score: float) -> str:
    return SCORE_STATES.state(score)


def score_panel(score: float, explanation: pd.DataFrame, lang: str = DEFAULT_LANGUAGE) -> list:
    """The composite vital-sign score as a ring, and the indicators that cost it most."""
    state = score_state(score)
    shown = "—" if score != score else f"{score:.0f}"
    judged = int((explanation["state"].isin(("good", "watch", "warning", "critical"))).sum())
    costs = explanation[explanation["lost"] > 0].head(4)
    rows = [html.Div(className="wall-cost-row", children=[
        html.Span(className=f"wall-dot state-{r.state}"),
        html.Span(indicator_name(INDICATORS[r.indicator], lang), className="wall-cost-name"),
        html.Span(f"−{r.lost:.1f}", className="wall-cost-lost"),
    ]) for r in costs.itertuples()]
    return [
        html.H3(t("wall.vital_signs", lang), className="wall-h3"),
        html.Div(className="wall-score-body", children=[
            html.Div(className=f"wall-score-ring state-{state}",
                     style={"--score": "0" if score != score else f"{score:.1f}"}, children=[
                html.Div(className="wall-score-inner", children=[
                    html.Span(shown, className="wall-score-value"),
                    html.Span("/ 100", className="muted wall-score-of"),
                ]),
            ]),
            html.Div(className="wall-score-words", children=[
                html.Div(state_label(state, lang), className=f"wall-score-state state-{state}"),
                html.Div(t("score.no_data", lang) if score != score else t("wall.composite", lang, count=judged),
                         className="muted wall-score-note"),
            ]),
        ]),
        html.Div(className="wall-costs", children=[html.Div(t("wall.pulled_down_by", lang),
                                                            className="muted wall-costs-h"), *rows] if rows else
                 [html.Div(t("wall.all_good", lang), className="muted")] if score == score else []),
    ]


def situation(tiles: list[dict], lang: str = DEFAULT_LANGUAGE) -> list:
    """Big numbers for what needs someone now: ``[{key, label, value, state, note}]`` (label and note in ``lang``)."""
    return [
        html.H3(t("wall.now", lang), className="wall-h3"),
        html.Div(className="wall-tiles", children=[
            html.Div(className=f"wall-tile state-{tile['state']}", **{"data-tile": tile["key"]}, children=[
                html.Div(tile["label"], className="wall-tile-label"),
                html.Div(tile["value"], className="wall-tile-value"),
                html.Div(tile["note"], className="wall-tile-note"),
            ]) for tile in tiles]),
    ]
