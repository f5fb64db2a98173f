"""The building card: the last step of the drill path (city → … → grid cell → building)."""
from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
from dash import dcc, html

from dashboard.i18n import MESSAGES, alarm_message, pair, pick, state_label, t
from dashboard.maps.sources import SENSOR_KIND_NAMES, USE_NAMES
from dashboard.order_screens import order_href, status_label
from layers.reference import EVENT_TYPES

MAX_ORDERS_LISTED = 8
EVENT_TYPE_NAMES = {code: (name, name_zh) for code, _category, name, name_zh, *_rest in EVENT_TYPES}


def sensor_status(alarm, status, lang: str) -> str:
    """A sensor's open alarm (the systems' known texts in ``lang``) or its device status (online, offline, fault)."""
    if isinstance(alarm, str) and alarm:
        return alarm_message(alarm, lang, SENSOR_KIND_NAMES)
    return t(f"sensor_status.{status}", lang) if f"sensor_status.{status}" in MESSAGES else str(status)


def _fact(label: str, value) -> html.Div:
    return html.Div(className="fact", children=[html.Span(label, className="muted"), html.Span(value)])


def _is_missing(value) -> bool:
    return value is None or bool(pd.isna(value))


def _time(value) -> str:
    return "—" if _is_missing(value) else f"{value:%m-%d %H:%M}"


def _table(lang: str, columns: tuple[str, ...], rows: list) -> html.Table:
    return html.Table(className="card-table", children=[
        html.Thead(html.Tr([html.Th(t(f"card.col.{c}", lang)) for c in columns])), html.Tbody(rows)])


def alert_section(alerts: pd.DataFrame | None, lang: str) -> list:
    """The card's alerts: severity (a state of the one vocabulary), the alert's id linked to it on /alerts with its
    title, its status and when it fired."""
    if alerts is None:
        return []
    rows = [html.Tr(className=f"card-alert state-{a.severity}", **{"data-alert": a.alert_id}, children=[
        html.Td(state_label(a.severity, lang), className=f"kpi-state state-{a.severity}"),
        html.Td([dcc.Link(a.alert_id, href=alert_href(a.alert_id, lang), className="card-alert-link"), " ",
                 html.Span(pick(a.title, a.title_zh, lang))]),
        html.Td(t(f"alerts.status.{a.status}", lang)),
        html.Td(_time(a.fired_at)),
    ]) for a in alerts.itertuples()]
    return [html.H3(t("card.alerts", lang, count=len(rows)), className="topic", id="card-alerts-title"),
            _table(lang, ("severity", "alert", "alert_status", "fired"), rows) if rows
            else html.Div(t("card.no_alerts", lang), className="muted")]


CARD_ALERTS = "card-alerts"


def alerts_id(building_id: str) -> dict:
    """The id of the card's alerts section: a pattern, so that the live refresh can name it on a page that has
    no card open (Dash matches ALL of none)."""
    return {"type": CARD_ALERTS, "building": building_id}


def alert_href(alert_id: str, lang: str) -> str:
    query = {"status": "all", "alert": alert_id, **({"lang": "zh"} if lang == "zh" else {})}
    return "/alerts?" + urlencode(query)


def building_card(card, close_href: str, lang: str = "en", alerts: pd.DataFrame | None = None) -> html.Div:
    """Its use, size, residents; the fire-IoT status of its detectors; the alerts of the building and its sensors
    (``alerts``: layers.alerts.AlertBook.for_building), each a link to the alerts page; its sensors with their last
    readings; the open orders within 50 m. Every text from data (ids, alarm messages, types) is rendered as text."""
    b = card.building
    fire = card.fire
    fire_text = (t("card.fire_none", lang) if not fire["detectors"] else
                 t("card.fire_detail", lang, detectors=fire["detectors"], online=fire["online"],
                   in_alarm=fire["in_alarm"]))
    sensor_rows = [html.Tr(className=f"state-{s.state}", children=[
        html.Td(pair(SENSOR_KIND_NAMES.get(s.kind, (s.kind, s.kind)), lang)),
        html.Td(s.sensor_id),
        html.Td(state_label(s.state, lang), className=f"kpi-state state-{s.state}"),
        html.Td("—" if pd.isna(s.last_value) else f"{s.last_value:g}"),
        html.Td(_time(s.last_at)),
        html.Td(sensor_status(s.alarm, s.status, lang)),
    ]) for s in card.sensors.itertuples()]
    order_rows = [html.Tr([html.Td(dcc.Link(o.order_id, href=order_href(o.order_id, lang))),
                           html.Td(pair(EVENT_TYPE_NAMES.get(o.event_type, (str(o.event_type).replace("_", " "),) * 2),
                                        lang)),
                           html.Td(status_label(o.status, lang)),
                           html.Td(_time(o.received_at)), html.Td(f"{o.distance_m:.0f} m")])
                  for o in card.open_orders.head(MAX_ORDERS_LISTED).itertuples()]
    return html.Div(className="building-card", id="building-card", **{"data-building": b["building_id"]}, children=[
        html.Div(className="card-head", children=[
            html.H2(t("card.building", lang, id=b["building_id"])),
            dcc.Link("×", href=close_href, className="card-close", title=t("card.back", lang), id="card-close"),
        ]),
        html.Div(className="facts", children=[
            _fact(t("card.use", lang), pair(USE_NAMES.get(b["use"], (b["use"], b["use"])), lang)),
            _fact(t("card.height", lang), t("card.height_value", lang, metres=f"{b['height_m']:.0f}",
                                            floors=b["floors"])),
            _fact(t("card.built", lang), "—" if _is_missing(b["year_built"]) else str(b["year_built"])),
            _fact(t("card.residents", lang), "—" if _is_missing(b["residents"]) else f"{b['residents']:,}"),
        ]),
        html.Div(className=f"fire-status state-{fire['state']}", id="fire-status", children=[
            html.Span(t("card.fire", lang), className="muted"),
            html.Span(state_label(fire["state"], lang), className=f"kpi-state state-{fire['state']}"),
            html.Span(fire_text),
            html.Span(t("card.high_rise", lang) if fire["high_rise"] else "", className="muted"),
        ]),
        # Redrawn in place for a new generation (dashboard/pages/overview.py, follow_the_card_alerts).
        html.Div(alert_section(alerts, lang), id=alerts_id(b["building_id"]), className="card-alerts"),
        html.H3(t("card.sensors", lang, count=len(card.sensors)), className="topic"),
        _table(lang, ("kind", "id", "state", "last", "at", "status"), sensor_rows) if sensor_rows
        else html.Div(t("card.no_sensors", lang), className="muted"),
        html.H3(t("card.orders", lang, count=len(card.open_orders)), className="topic"),
        _table(lang, ("order", "type", "status", "received", "distance"), order_rows) if order_rows
        else html.Div(t("card.no_orders", lang), className="muted"),
        html.Div(t("card.as_of", lang, when=f"{card.as_of:%Y-%m-%d %H:%M}"), className="muted card-foot"),
    ])
