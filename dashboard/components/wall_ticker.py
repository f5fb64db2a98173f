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

from dashboard.i18n import DEFAULT_LANGUAGE, alarm_message, pair, pick, t
from layers.reference import SENSOR_KINDS

KIND_NAMES = {code: (name, name_zh) for code, name, name_zh, *_ in SENSOR_KINDS}
SEVERITY_ORDER = {"critical": 0, "warning": 1}
TAGS = ("critical", "warning", "red_card", "hotspot", "alert")
MAX_ALARMS = 16          # the ticker is read in passing: the most urgent, then "+ N more"
MAX_HOTSPOTS = 6
SECONDS_PER_CHARACTER = 0.16  # scrolling speed: about 6 rem a second, whatever the wall's size


@dataclass(frozen=True)
class TickerItem:
    kind: str        # critical | warning | red_card | hotspot | alert | more
    text: str
    critical: bool = False  # pulses

    def tag(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return t(f"ticker.tag.{self.kind}", lang) if self.kind in TAGS else ""


def active_alarms(alarms: pd.DataFrame, district_of_grid: pd.Series, unit_names: pd.Series,
                  end: pd.Timestamp) -> pd.DataFrame:
    """Alarms raised before ``end`` and not cleared by then (the definition of the ``active_alarms`` indicator),
    critical first, newest first, with the name of their district."""
    active = alarms[(alarms["raised_at"] < end) & (alarms["cleared_at"].isna() | (alarms["cleared_at"] >= end))]
    active = active.assign(district=active["grid_code"].map(district_of_grid).map(unit_names),
                           order=active["severity"].map(SEVERITY_ORDER).fillna(2))
    return active.sort_values(["order", "raised_at"], ascending=[True, False]).drop(columns="order")


def ticker_items(alarms: pd.DataFrame, overdue_by_district: pd.DataFrame, hotspots: pd.DataFrame,
                 lang: str = DEFAULT_LANGUAGE) -> list[TickerItem]:
    """Critical alarms, warnings, red cards by district (most first), then the strongest recurring hotspots.
    Names in ``lang`` (``alarms``' district and ``hotspots``' names come in the language the caller chose); an
    alarm's message is the sensor system's own text: known ones are translated (i18n.alarm_message), others
    shown as they came."""
    items = []
    for alarm in alarms.head(MAX_ALARMS).itertuples():
        kind = pair(KIND_NAMES.get(alarm.kind, (str(alarm.kind).replace("_", " ").capitalize(), "")), lang)
        severity = alarm.severity if alarm.severity in SEVERITY_ORDER else "warning"
        where = alarm.district if isinstance(alarm.district, str) else alarm.grid_code
        items.append(TickerItem(severity, t("ticker.alarm", lang, kind=kind, where=where, message=alarm_message(alarm.message, lang, KIND_NAMES),
                                            since=f"{alarm.raised_at:%m-%d %H:%M}"), critical=severity == "critical"))
    if len(alarms) > MAX_ALARMS:
        items.append(TickerItem("more", t("ticker.more", lang, count=f"{len(alarms) - MAX_ALARMS:,}")))
    overdue = overdue_by_district.assign(count=pd.to_numeric(overdue_by_district["value"], errors="coerce"))
    for row in overdue[overdue["count"] > 0].sort_values("count", ascending=False).itertuples():
        count = int(row.count)
        items.append(TickerItem("red_card", t("ticker.red_card", lang, district=pick(row.name, row.name_zh, lang),
                                              count=f"{count:,}", plural="s" if count != 1 else ""),
                                critical=row.state == "critical"))
    for spot in hotspots.head(MAX_HOTSPOTS).itertuples():
        items.append(TickerItem("hotspot", t("ticker.hotspot", lang, event=spot.event_name, place=spot.place,
                                             start=f"{spot.start_hour:02d}:00", end=f"{spot.end_hour:02d}:00",
                                             seen=spot.days_seen, days=spot.days, orders=f"{spot.orders:,}",
                                             ratio=f"{spot.ratio:,.0f}")))
    return items


def _item(item: TickerItem, lang: str) -> html.Span:
    tag = item.tag(lang)
    pulse = " critical" if item.critical and item.kind != "critical" else ""
    return html.Span(className=f"wall-tick-item {item.kind}{pulse}", children=[
        html.Span(tag, className="wall-tick-tag") if tag else None,
        html.Span(item.text, className="wall-tick-text"),
    ])


def ticker(items: list[TickerItem], active_count, critical_count: int, lang: str = DEFAULT_LANGUAGE) -> list:
    """The fixed summary on the left (the counts, always readable) and the scrolling track."""
    active = 0 if active_count is None or (isinstance(active_count, float) and math.isnan(active_count)) \
        else int(active_count)
    summary = html.Div(className="wall-tick-summary" + (" alarm" if active else ""), children=[
        html.Span(f"{active:,}", className="wall-tick-count", **{"data-active-alarms": str(active)}),
        html.Span(t("ticker.active_alarms", lang), className="wall-tick-label"),
        html.Span(t("ticker.critical", lang, count=f"{critical_count:,}"),
                  className="wall-tick-critical" + (" on" if critical_count else "")),
    ])
    if not items:
        track = html.Div(html.Span(t("ticker.all_clear", lang), className="wall-tick-clear"),
                         className="wall-tick-window")
    else:
        # A Chinese character is about twice as wide as a Latin letter: count it twice for a steady speed.
        characters = sum(sum(2 if ord(c) > 0x2e80 else 1 for c in i.text) + 14 for i in items)
        spans = [_item(i, lang) for i in items]
        track = html.Div(className="wall-tick-window", children=html.Div(
            spans + [_item(i, lang) for i in items], className="wall-tick-track",
            style={"animationDuration": f"{max(20.0, characters * SECONDS_PER_CHARACTER):.0f}s"}))
    return [summary, track]
