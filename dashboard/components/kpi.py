"""KPI cards: value, unit, state colour and change against the previous window, generated from the registry."""
from __future__ import annotations


from dash import html

from dashboard.components.numbers import number_or_none
from dashboard.i18n import (DEFAULT_LANGUAGE, indicator_description, indicator_name, state_label, t, topic_title,
                            unit_of_measure)
from metrics.registry import TOPICS
from metrics.spec import Indicator


def change_badge(indicator: Indicator, change, previous, lang: str = DEFAULT_LANGUAGE) -> html.Span:
    change, previous = number_or_none(change), number_or_none(previous)
    if change is None or previous is None:
        return html.Span(t("kpi.no_previous", lang), className="kpi-change muted",
                         title=t("kpi.no_previous_title", lang))
    if abs(change) < 1e-9:
        return html.Span(t("kpi.same", lang), className="kpi-change muted")
    arrow = "▲" if change > 0 else "▼"
    if indicator.good_direction == "none":
        tone = "muted"
    else:
        better = (change > 0) == (indicator.good_direction == "up")
        tone = "better" if better else "worse"
    unit = t("kpi.points", lang) if indicator.unit == "%" else ""
    return html.Span(f"{arrow} {indicator.format.format(abs(change))}{unit}", className=f"kpi-change {tone}",
                     title=t("kpi.previous_title", lang, value=indicator.format_value(previous)))


def rank_text(row, lang: str = DEFAULT_LANGUAGE) -> str:
    rank = number_or_none(row.get("rank")) if row is not None else None
    siblings = number_or_none(row.get("siblings")) if row is not None else None
    if rank is None or siblings is None or siblings < 2:
        return ""
    return t("kpi.rank", lang, rank=f"{rank:.0f}", siblings=f"{siblings:.0f}")


def sparkline(values, lang: str = DEFAULT_LANGUAGE) -> html.Div | None:
    """The window's steps as bars scaled between their minimum and maximum (a gap where a step has no data)."""
    numbers = [number_or_none(v) for v in values or []]
    known = [v for v in numbers if v is not None]
    if len(known) < 2:
        return None
    low, high = min(known), max(known)
    bars = [html.Span(className="spark-gap" if v is None else "spark-bar",
                      style={"height": "0" if v is None else f"{12 + 88 * (v - low) / (high - low or 1):.0f}%"})
            for v in numbers]
    return html.Div(bars, className="sparkline", title=t("kpi.spark_title", lang, low=f"{low:,.4g}",
                                                                        high=f"{high:,.4g}"))


def kpi_card(indicator: Indicator, row, selected: bool = False, spark=None, lang: str = DEFAULT_LANGUAGE) -> html.Div:
    value = number_or_none(row.get("value")) if row is not None else None
    state = (row.get("state") if row is not None else None) or "no_data"
    return html.Div(
        className=f"kpi-card state-{state}" + (" selected" if selected else ""),
        id={"type": "kpi-card", "indicator": indicator.id},
        title=indicator_description(indicator, lang),
        children=[
            html.Div(html.Span(indicator_name(indicator, lang), className="kpi-name"), className="kpi-head"),
            html.Div([html.Span(indicator.format_value(value), className="kpi-value",
                                **{"data-indicator": indicator.id}),
                      html.Span(unit_of_measure(indicator.unit, lang) if value is not None else "",
                                className="kpi-unit")],
                     className="kpi-figure"),
            sparkline(spark, lang),
            html.Div([html.Span([state_label(state, lang), rank_text(row, lang)], className=f"kpi-state state-{state}"),
                      change_badge(indicator, row.get("change") if row is not None else None,
                                   row.get("previous") if row is not None else None, lang)],
                     className="kpi-foot"),
        ],
    )


def kpi_panel(indicators: list[Indicator], kpis, selected_id: str, sparklines: dict | None = None,
              lang: str = DEFAULT_LANGUAGE) -> list:
    """Cards grouped by topic, in registry order: the headline indicators, and the selected one if it is not."""
    blocks = []
    selected = next((i for i in indicators if i.id == selected_id), None)
    if selected is not None and not selected.headline:
        card = kpi_card(selected, kpis.loc[selected.id] if selected.id in kpis.index else None, True, lang=lang)
        blocks.append(html.Section([html.H3(t("kpi.on_the_map", lang), className="topic"),
                                    html.Div([card], className="kpi-grid")], className="topic-block"))
    for topic in TOPICS:
        cards = [kpi_card(i, kpis.loc[i.id] if i.id in kpis.index else None, i.id == selected_id,
                          (sparklines or {}).get(i.id), lang)
                 for i in indicators if i.topic == topic and i.headline]
        if cards:
            blocks.append(html.Section([html.H3(topic_title(topic, lang), className="topic"),
                                        html.Div(cards, className="kpi-grid")], className="topic-block"))
    return blocks
