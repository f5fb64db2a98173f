"""The wall's alarm ticker: active sensor alarms, red-card (overdue) orders by district and recurring hotspots,
scrolling from right to left with a CSS animation (assets/wall.css); critical items pulse red.

:func:`ticker_items` turns service tables into items (pure, tested without a browser); :func:`ticker` renders them.
The track holds the items twice and moves by half its width, so the loop has no seam.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from dash import html

from layers.reference import SENSOR_KINDS

KIND_NAMES = {code: (name, name_zh) for code, name, name_zh, *_ in SENSOR_KINDS}
SEVERITY_ORDER = {"critical": 0, "warning": 1}
TAGS = {"critical": ("CRITICAL", "告警"), "warning": ("WARNING", "预警"), "red_card": ("RED CARD", "红牌"),
        "hotspot": ("HOTSPOT", "热点")}
MAX_ALARMS = 16          # the ticker is read in passing: the most urgent, then "+ N more"
MAX_HOTSPOTS = 6
SECONDS_PER_CHARACTER = 0.16  # scrolling speed: about 6 rem a second, whatever the wall's size


@dataclass(frozen=True)
class TickerItem:
    kind: str        # critical | warning | red_card | hotspot | more
    text: str
    critical: bool = False  # pulses

    @property
    def tag(self) -> tuple[str, str]:
        return TAGS.get(self.kind, ("", ""))


def active_alarms(alarms: pd.DataFrame, district_of_grid: pd.Series, unit_names: pd.Series,
                  end: pd.Timestamp) -> pd.DataFrame:
    """Alarms raised before ``end`` and not cleared by then (the definition of the ``active_alarms`` indicator),
    critical first, newest first, with the name of their district."""
    active = alarms[(alarms["raised_at"] < end) & (alarms["cleared_at"].isna() | (alarms["cleared_at"] >= end))]
    active = active.assign(district=active["grid_code"].map(district_of_grid).map(unit_names),
                           order=active["severity"].map(SEVERITY_ORDER).fillna(2))
    return active.sort_values(["order", "raised_at"], ascending=[True, False]).drop(columns="order")


def ticker_items(alarms: pd.DataFrame, overdue_by_district: pd.DataFrame, hotspots: pd.DataFrame) -> list[TickerItem]:
    """Critical alarms, warnings, red cards by district (most first), then the strongest recurring hotspots."""
    items = []
    for alarm in alarms.head(MAX_ALARMS).itertuples():
        kind = KIND_NAMES.get(alarm.kind, (str(alarm.kind).replace("_", " ").capitalize(), ""))[0]
        severity = alarm.severity if alarm.severity in SEVERITY_ORDER else "warning"
        where = alarm.district if isinstance(alarm.district, str) else alarm.grid_code
        items.append(TickerItem(severity, f"{kind} · {where} · {alarm.message} · since "
                                          f"{alarm.raised_at:%m-%d %H:%M}", critical=severity == "critical"))
    if len(alarms) > MAX_ALARMS:
        items.append(TickerItem("more", f"+ {len(alarms) - MAX_ALARMS} more active alarms"))
    overdue = overdue_by_district.assign(count=pd.to_numeric(overdue_by_district["value"], errors="coerce"))
    for row in overdue[overdue["count"] > 0].sort_values("count", ascending=False).itertuples():
        count = int(row.count)
        items.append(TickerItem("red_card", f"{row.name} {row.name_zh}: {count:,} overdue order"
                                            f"{'s' if count != 1 else ''}", critical=row.state == "critical"))
    for spot in hotspots.head(MAX_HOTSPOTS).itertuples():
        items.append(TickerItem("hotspot", f"{spot.event_name} · {spot.place} · {spot.start_hour:02d}:00–"
                                           f"{spot.end_hour:02d}:00 on {spot.days_seen} of {spot.days} days · "
                                           f"{spot.orders:,} orders, {spot.ratio:,.0f}× expected"))
    return items


def _item(item: TickerItem) -> html.Span:
    tag, tag_zh = item.tag
    pulse = " critical" if item.critical and item.kind != "critical" else ""
    return html.Span(className=f"wall-tick-item {item.kind}{pulse}", children=[
        html.Span([tag, html.Span(tag_zh, className="zh")], className="wall-tick-tag") if tag else None,
        html.Span(item.text, className="wall-tick-text"),
    ])


def ticker(items: list[TickerItem], active_count, critical_count: int) -> list:
    """The fixed summary on the left (the counts, always readable) and the scrolling track."""
    active = 0 if active_count is None or (isinstance(active_count, float) and math.isnan(active_count)) \
        else int(active_count)
    summary = html.Div(className="wall-tick-summary" + (" alarm" if active else ""), children=[
        html.Span(f"{active:,}", className="wall-tick-count", **{"data-active-alarms": str(active)}),
        html.Span(["active alarms", html.Span("在途告警", className="zh")], className="wall-tick-label"),
        html.Span(f"{critical_count:,} critical", className="wall-tick-critical" + (" on" if critical_count else "")),
    ])
    if not items:
        track = html.Div(html.Span("All clear — no active alarm, no red-card order, no recurring hotspot",
                                   className="wall-tick-clear"), className="wall-tick-window")
    else:
        characters = sum(len(i.text) + 14 for i in items)
        spans = [_item(i) for i in items]
        track = html.Div(className="wall-tick-window", children=html.Div(
            spans + [_item(i) for i in items], className="wall-tick-track",
            style={"animationDuration": f"{max(20.0, characters * SECONDS_PER_CHARACTER):.0f}s"}))
    return [summary, track]
