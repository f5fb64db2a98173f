"""The building card: the last step of the drill path (city → … → grid cell → building)."""
from __future__ import annotations

import pandas as pd
from dash import dcc, html

from dashboard.maps.sources import SENSOR_KIND_NAMES, USE_NAMES
from dashboard.theme import STATE_LABELS

MAX_ORDERS_LISTED = 8


def _fact(label: str, value) -> html.Div:
    return html.Div(className="fact", children=[html.Span(label, className="muted"), html.Span(value)])


def _time(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:%m-%d %H:%M}"


def building_card(card, close_href: str) -> html.Div:
    b = card.building
    use_en, use_zh = USE_NAMES.get(b["use"], (b["use"], b["use"]))
    fire = card.fire
    fire_label = STATE_LABELS[fire["state"]]
    fire_text = ("no fire detectors" if not fire["detectors"] else
                 f"{fire['detectors']} detectors · {fire['online']} online · {fire['in_alarm']} in alarm")
    sensor_rows = [html.Tr(className=f"state-{s.state}", children=[
        html.Td(SENSOR_KIND_NAMES.get(s.kind, (s.kind, s.kind))[0]),
        html.Td(s.sensor_id),
        html.Td(STATE_LABELS.get(s.state, (s.state,))[0], className=f"kpi-state state-{s.state}"),
        html.Td("—" if pd.isna(s.last_value) else f"{s.last_value:g}"),
        html.Td(_time(s.last_at)),
        html.Td(s.alarm or s.status),
    ]) for s in card.sensors.itertuples()]
    order_rows = [html.Tr([html.Td(o.order_id), html.Td(str(o.event_type).replace("_", " ")), html.Td(o.status),
                           html.Td(_time(o.received_at)), html.Td(f"{o.distance_m:.0f} m")])
                  for o in card.open_orders.head(MAX_ORDERS_LISTED).itertuples()]
    return html.Div(className="building-card", id="building-card", **{"data-building": b["building_id"]}, children=[
        html.Div(className="card-head", children=[
            html.H2([f"Building {b['building_id']}", html.Span("建筑", className="zh")]),
            dcc.Link("×", href=close_href, className="card-close", title="back to the grid cell", id="card-close"),
        ]),
        html.Div(className="facts", children=[
            _fact("use 用途", f"{use_en} {use_zh}"),
            _fact("height 高度", f"{b['height_m']:.0f} m · {b['floors']} floors"),
            _fact("built 建成", str(b["year_built"])),
            _fact("residents 居住人口", f"{b['residents']:,}"),
        ]),
        html.Div(className=f"fire-status state-{fire['state']}", id="fire-status", children=[
            html.Span("Fire IoT 消防物联", className="muted"),
            html.Span(f"{fire_label[0]} {fire_label[1]}", className=f"kpi-state state-{fire['state']}"),
            html.Span(fire_text),
            html.Span("high-rise ≥100 m 超高层" if fire["high_rise"] else "", className="muted"),
        ]),
        html.H3(f"Sensors 感知设备 ({len(card.sensors)})", className="topic"),
        html.Table(className="card-table", children=[
            html.Thead(html.Tr([html.Th(h) for h in ("kind", "id", "state", "last", "at", "status")])),
            html.Tbody(sensor_rows)]) if sensor_rows else html.Div("no sensors in this building", className="muted"),
        html.H3(f"Open orders nearby 周边未办结工单 ({len(card.open_orders)})", className="topic"),
        html.Table(className="card-table", children=[
            html.Thead(html.Tr([html.Th(h) for h in ("order", "type", "status", "received", "distance")])),
            html.Tbody(order_rows)]) if order_rows else html.Div("no open orders within 50 m", className="muted"),
        html.Div(f"data as of {card.as_of:%Y-%m-%d %H:%M}", className="muted card-foot"),
    ])
