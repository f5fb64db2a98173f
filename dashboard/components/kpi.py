"""KPI cards: value, unit, state colour and change against the previous window, generated from the registry."""
from __future__ import annotations


from dash import html

from dashboard.components.numbers import number_or_none
from dashboard.theme import STATE_LABELS
from metrics.registry import TOPICS
from metrics.spec import Indicator


def change_badge(indicator: Indicator, change, previous) -> html.Span:
    change, previous = number_or_none(change), number_or_none(previous)
    if change is None or previous is None:
        return html.Span("no previous", className="kpi-change muted", title="no figure for the window before")
    if abs(change) < 1e-9:
        return html.Span("= previous", className="kpi-change muted")
    arrow = "▲" if change > 0 else "▼"
    if indicator.good_direction == "none":
        tone = "muted"
    else:
        better = (change > 0) == (indicator.good_direction == "up")
        tone = "better" if better else "worse"
    unit = " pts" if indicator.unit == "%" else ""
    return html.Span(f"{arrow} {indicator.format.format(abs(change))}{unit}", className=f"kpi-change {tone}",
                     title=f"previous window: {indicator.format_value(previous)}")


def rank_text(row) -> str:
    rank = number_or_none(row.get("rank")) if row is not None else None
    siblings = number_or_none(row.get("siblings")) if row is not None else None
    if rank is None or siblings is None or siblings < 2:
        return ""
    return f" · #{rank:.0f} of {siblings:.0f}"


def sparkline(values) -> html.Div | None:
    """The window's steps as bars scaled between their minimum and maximum (a gap where a step has no data)."""
    numbers = [number_or_none(v) for v in values or []]
    known = [v for v in numbers if v is not None]
    if len(known) < 2:
        return None
    low, high = min(known), max(known)
    bars = [html.Span(className="spark-gap" if v is None else "spark-bar",
                      style={"height": "0" if v is None else f"{12 + 88 * (v - low) / (high - low or 1):.0f}%"})
            for v in numbers]
    return html.Div(bars, className="sparkline", title=f"from {low:,.4g} to {high:,.4g} over the window")


def kpi_card(indicator: Indicator, row, selected: bool = False, spark=None) -> html.Div:
    value = number_or_none(row.get("value")) if row is not None else None
    state = (row.get("state") if row is not None else None) or "no_data"
    return html.Div(
        className=f"kpi-card state-{state}" + (" selected" if selected else ""),
        id={"type": "kpi-card", "indicator": indicator.id},
        title=indicator.description,
        children=[
            html.Div([html.Span(indicator.name, className="kpi-name"),
                      html.Span(indicator.name_zh, className="kpi-name-zh")], className="kpi-head"),
            html.Div([html.Span(indicator.format_value(value), className="kpi-value",
                                **{"data-indicator": indicator.id}),
                      html.Span(indicator.unit if value is not None else "", className="kpi-unit")],
                     className="kpi-figure"),
            sparkline(spark),
            html.Div([html.Span([STATE_LABELS[state][0], rank_text(row)], className=f"kpi-state state-{state}"),
                      change_badge(indicator, row.get("change") if row is not None else None,
                                   row.get("previous") if row is not None else None)],
                     className="kpi-foot"),
        ],
    )


def kpi_panel(indicators: list[Indicator], kpis, selected_id: str, sparklines: dict | None = None) -> list:
    """Cards grouped by topic, in registry order: the headline indicators, and the selected one if it is not."""
    blocks = []
    selected = next((i for i in indicators if i.id == selected_id), None)
    if selected is not None and not selected.headline:
        card = kpi_card(selected, kpis.loc[selected.id] if selected.id in kpis.index else None, True)
        blocks.append(html.Section([html.H3(["On the map", html.Span("地图指标", className="zh")], className="topic"),
                                    html.Div([card], className="kpi-grid")], className="topic-block"))
    for topic, (title, title_zh) in TOPICS.items():
        cards = [kpi_card(i, kpis.loc[i.id] if i.id in kpis.index else None, i.id == selected_id,
                          (sparklines or {}).get(i.id))
                 for i in indicators if i.topic == topic and i.headline]
        if cards:
            blocks.append(html.Section([html.H3([title, html.Span(title_zh, className="zh")], className="topic"),
                                        html.Div(cards, className="kpi-grid")], className="topic-block"))
    return blocks
