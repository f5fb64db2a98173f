"""The wall's share of alerts and early warning: the open alerts in the ticker, the cue that cannot be missed while a
critical alert is unacknowledged (the only thing on the wall that moves by itself), and the early-warning block
(the 24-hour order forecast and the districts whose last hour was unusual, with the figures that say so).

Pure render functions of frames (tested without a browser), plus :func:`early_warning_facts` that computes the
forecast and anomalies from a city (metrics/early_warning.py)."""
from __future__ import annotations

import pandas as pd
from dash import html

from dashboard.components.wall_ticker import TickerItem
from dashboard.i18n import DEFAULT_LANGUAGE, pick, t
from metrics.spec import STATE_RANK

MAX_ALERT_ITEMS = 12
MAX_ANOMALIES = 2


def _sorted(alerts: pd.DataFrame) -> pd.DataFrame:
    rank = -alerts["severity"].map(STATE_RANK).astype("float64").fillna(0) * 2 \
        - (alerts["status"] == "firing").astype("float64")
    return alerts.assign(_rank=rank.to_numpy()).sort_values(["_rank", "fired_at"], ascending=[True, False])


def place_name(alert, names: dict) -> str:
    """The alert's place: its unit's name (a district's or a grid cell's code when it has no name)."""
    code = alert.unit_code if isinstance(alert.unit_code, str) else alert.grid_code
    return names.get(code, code or "")


def alert_ticker_items(alerts: pd.DataFrame, names: dict, lang: str = DEFAULT_LANGUAGE) -> list[TickerItem]:
    """Open alerts for the ticker, most severe and unacknowledged first (titles and evidence shown as text)."""
    items = []
    for alert in _sorted(alerts).head(MAX_ALERT_ITEMS).itertuples():
        items.append(TickerItem("alert", t("ticker.alert", lang, title=pick(alert.title, alert.title_zh, lang),
                                           where=place_name(alert, names),
                                           evidence=pick(alert.evidence, alert.evidence_zh, lang),
                                           status=t(f"alerts.status.{alert.status}", lang)),
                                critical=alert.severity == "critical"))
    return items


def unacknowledged_critical(alerts: pd.DataFrame) -> pd.DataFrame:
    return _sorted(alerts[(alerts["severity"] == "critical") & (alerts["status"] == "firing")])


def alert_cue(alerts: pd.DataFrame, names: dict, lang: str = DEFAULT_LANGUAGE) -> tuple[list, str]:
    """The cue's content and class: on (a red band, the one moving thing on the wall) while a critical alert is
    firing and nobody has acknowledged it; off otherwise, whatever else is open."""
    waiting = unacknowledged_critical(alerts)
    if not len(waiting):
        return [], "wall-alert-cue"
    first = waiting.iloc[0]
    children = [
        html.Span(t("wall.cue", lang), className="wall-cue-title"),
        html.Span(f"{first['alert_id']} · {pick(first['title'], first['title_zh'], lang)} · "
                  f"{_place_of_row(first, names)} · {pick(first['evidence'], first['evidence_zh'], lang)} · "
                  + t("wall.cue_since", lang, since=f"{first['fired_at']:%H:%M}"), className="wall-cue-text"),
    ]
    if len(waiting) > 1:
        children.append(html.Span(t("wall.cue_more", lang, count=len(waiting) - 1), className="wall-cue-more"))
    return children, "wall-alert-cue on"


def _place_of_row(row: pd.Series, names: dict) -> str:
    code = row["unit_code"] if isinstance(row["unit_code"], str) else row["grid_code"]
    return names.get(code, code or "")


def early_warning_facts(city, level: str = "district", units=None) -> dict:
    """The next 24 hours' orders (the city's sum of the units' forecasts and of their 90 % ranges) and the units
    whose last complete hour was an anomaly (metrics.early_warning), most unusual first. ``units``: only these
    units' (a scoped wall: its own districts; none when the scope lies below ``level``)."""
    from metrics.early_warning import forecast_orders, order_anomalies
    if "orders" not in city.layers or not len(city["orders"]):
        return {"forecast": None, "anomalies": pd.DataFrame(columns=["unit_code", "ts", "value", "baseline", "score"])}
    forecast = forecast_orders(city, level=level)
    rows = order_anomalies(city, level, end=city.as_of.floor("h"))
    if units is not None:
        forecast = forecast[forecast["unit_code"].isin(units).to_numpy()]
        rows = rows[rows["unit_code"].isin(units).to_numpy()]
    last = rows[rows["ts"] == rows["ts"].max()] if len(rows) else rows
    flagged = last[last["anomaly"].astype(bool)].sort_values("score", ascending=False, key=abs)
    total = None if forecast.empty else {"orders": float(forecast["forecast"].sum()),
                                         "low": float(forecast["lower"].sum()),
                                         "high": float(forecast["upper"].sum())}
    return {"forecast": total, "anomalies": flagged}


def early_warning_key(city, *more) -> tuple:
    """The memo key of :func:`early_warning_facts` for ``city``: the facts read the orders and the units, and the
    clock only through the hours it falls in (the anomalies end on its hour, the forecast starts at the next), so
    they are made once an hour, not at every live generation (0.5 s at the city scale, a quarter of a map page's
    time when made afresh: services.MEMO_LAYERS carries them over while the orders and units do not change)."""
    return ("wall_early_warning", city.as_of.floor("h"), city.as_of.ceil("h"), *more)


def early_warning_block(facts: dict, names: dict, lang: str = DEFAULT_LANGUAGE, one_unit: bool = False) -> html.Div:
    rows = []
    total = facts["forecast"]
    if total is not None:
        rows.append(html.Div(t("wall.forecast", lang, orders=f"{total['orders']:,.0f}", low=f"{total['low']:,.0f}",
                               high=f"{total['high']:,.0f}"), className="wall-early-row forecast"))
    anomalies = facts["anomalies"]
    for row in anomalies.head(MAX_ANOMALIES).itertuples():
        rows.append(html.Div(t("wall.anomaly", lang, unit=names.get(row.unit_code, row.unit_code),
                               value=f"{row.value:,.0f}", hour=f"{pd.Timestamp(row.ts):%H:00}",
                               baseline=f"{row.baseline:,.0f}"), className="wall-early-row anomaly",
                             title=f"score {row.score:+.1f}"))
    if not len(anomalies):
        rows.append(html.Div(t("wall.no_anomaly_here" if one_unit else "wall.no_anomaly", lang),
                             className="wall-early-row muted"))
    return html.Div(className="wall-early", id="wall-early", children=[
        html.Div(t("wall.early_warning", lang), className="wall-early-title"), *rows])


def unit_early_warning(service, code: str, level: str, lang: str = DEFAULT_LANGUAGE) -> html.Div | None:
    """The district view's (and the city's) early warning: the unit's next 24 hours of orders with their range, its
    last hour if it was unusual, and its open alerts rolled up from the places inside it (a link to them)."""
    from urllib.parse import urlencode

    from dash import dcc

    from dashboard.i18n import language_query
    from metrics.alert_runner import roll_up
    if level not in ("city", "district"):
        return None
    city = service.city()
    facts = service.memo(early_warning_key(city), lambda: early_warning_facts(city))
    names = {c: (n if lang != "zh" or not isinstance(z, str) else z)
             for c, n, z in zip(city.units.index, city.units["name"], city.units["name_zh"])}
    rows = []
    if level == "city":
        total = facts["forecast"]
        anomalies = facts["anomalies"]
    else:
        forecast = service.memo(("district_forecast", *early_warning_key(city)[1:]), lambda: _district_forecast(city))
        mine = forecast[forecast["unit_code"] == code]
        total = None if mine.empty else {"orders": float(mine["forecast"].sum()), "low": float(mine["lower"].sum()),
                                         "high": float(mine["upper"].sum())}
        anomalies = facts["anomalies"][facts["anomalies"]["unit_code"] == code]
    block = early_warning_block({"forecast": total, "anomalies": anomalies}, names, lang, one_unit=level != "city")
    rolled = roll_up(service.open_alerts(), city)
    here = rolled[rolled["code"] == code]
    count = int(here["open"].iloc[0]) if len(here) else 0
    critical = int(here["critical"].iloc[0]) if len(here) else 0
    query = urlencode({**({"unit": code} if level == "district" else {}), **language_query(lang)})
    block.children.append(dcc.Link(t("alerts.here", lang, count=count, critical=critical),
                                   href="/alerts" + (f"?{query}" if query else ""),
                                   className="wall-early-row alerts-here" + (" critical" if critical else "")))
    block.id = "unit-early-warning"
    return block


def _district_forecast(city) -> pd.DataFrame:
    from metrics.early_warning import forecast_orders
    if "orders" not in city.layers or not len(city["orders"]):
        return pd.DataFrame(columns=["unit_code", "forecast", "lower", "upper"])
    return forecast_orders(city, level="district")
