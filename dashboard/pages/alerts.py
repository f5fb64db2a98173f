"""The alerts page: every alert the rules fired, filtered by status, severity, kind and district; pick one to
acknowledge it, assign it to a department (which files a work order through the work-order service) or resolve it by
hand. ``/alerts?status=open&severity=critical&alert=AL000012&lang=zh``.

The list follows the store by itself (:mod:`dashboard.components.refresh`): it is rendered again when the alerts'
log has a new entry, so an alert the rules fire or resolve appears or changes without a reload. Alert titles and
evidence come from rules and sensors: they are shown as text.
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

import dash
import pandas as pd
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from dashboard import auth, services
from dashboard.alerts_api import select_alerts, statuses_of
from dashboard.components.refresh import screen_refresh
from dashboard.components.topbar import topbar
from dashboard.i18n import HTML_LANG, department_name, dropdown_labels, language_query, normalise_language, pick, \
    state_label, t, unit_name
from dashboard.view import DEFAULT_INDICATOR, DEFAULT_WINDOW
from layers.alerts import OPEN_STATUSES, STATUSES, AlertError, UnknownAlert
from layers.specs import CITY_TIMEZONE
from layers.workorders import WorkOrderError
from metrics.alert_rules import KINDS
from metrics.spec import SEVERITIES

dash.register_page(__name__, path="/alerts", title="citytwin · alerts", name="Alerts")

IDS = {"filters": "alerts-filters", "selected": "alerts-selected", "mark": "alerts-mark", "acted": "alerts-acted",
       "refresh": "alerts-refresh", "list": "alerts-list", "count": "alerts-count", "detail": "alert-detail",
       "actions": "alert-actions", "message": "alert-message", "actor": "alert-actor", "note": "alert-note",
       "department": "alert-department", "filter": "alerts-filter", "button": "alert-action"}
STATUS_CHOICES = ("open", *STATUSES, "all")
MAX_ROWS = 500


def normalise_filters(status=None, severity=None, kind=None, unit=None, alert=None, lang=None) -> dict:
    """The page's filters from the query (hostile text falls back to the default)."""
    return {"status": status if status in STATUS_CHOICES else "open",
            "severity": severity if severity in SEVERITIES else None,
            "kind": kind if kind in KINDS else None,
            "unit": unit if isinstance(unit, str) and 0 < len(unit) <= 64 else None,
            "alert": alert if isinstance(alert, str) and 0 < len(alert) <= 32 else None,
            "lang": normalise_language(lang)}


def page_href(filters: dict, **changes) -> str:
    wanted = {**filters, **changes}
    query = {k: wanted[k] for k in ("status", "severity", "kind", "unit", "alert") if wanted.get(k)}
    if query.get("status") == "open":
        query.pop("status")
    query.update(language_query(wanted["lang"]))
    return "/alerts" + ("?" + urlencode(query) if query else "")


def layout(status=None, severity=None, kind=None, unit=None, alert=None, lang=None, **_ignored):
    filters = normalise_filters(status, severity, kind, unit, alert, lang)
    lang = filters["lang"]
    service = services.get()
    directory = service.directory()
    if filters["unit"] == directory.city["code"]:  # the top bar's links name the city: every alert
        filters["unit"] = None
    departments = service.work_orders().responsibility_list().departments
    now = pd.Timestamp.now(tz=CITY_TIMEZONE)
    districts = directory.of_level("district")
    codes = auth.scope_codes()
    if codes is not None:  # nothing beside the asker's area in the filter either
        districts = districts[districts["code"].isin(codes).to_numpy()]
    return html.Div(className="screen orders-screen alerts-screen", lang=HTML_LANG[lang], children=[
        topbar([directory.city], DEFAULT_INDICATOR, DEFAULT_WINDOW, now, page="alerts", here=page_href(filters),
               lang=lang, controls=[]),
        dcc.Store(id=IDS["filters"], data=filters),
        dcc.Store(id=IDS["selected"], data=filters["alert"]),
        dcc.Store(id=IDS["mark"], data=None),
        dcc.Store(id=IDS["acted"], data=0),
        screen_refresh(IDS["refresh"]),
        html.Main(className="order-main alerts-main", children=[
            html.Section(className="alerts-list-panel", children=[
                html.Div(className="order-filter-bar", children=[
                    _filter("status", filters, lang, [{"label": _status_choice(s, lang), "value": s}
                                                      for s in STATUS_CHOICES], clearable=False),
                    _filter("severity", filters, lang, [{"label": state_label(s, lang), "value": s}
                                                        for s in reversed(SEVERITIES)]),
                    _filter("kind", filters, lang, [{"label": t(f"alerts.kind.{k}", lang), "value": k}
                                                    for k in KINDS]),
                    _filter("unit", filters, lang, [{"label": unit_name(u, lang), "value": u["code"]}
                                                    for u in districts.to_dict("records")]),
                    html.Div(id=IDS["count"], className="order-count"),
                ]),
                html.Div(id=IDS["list"], className="alerts-list"),
            ]),
            html.Aside(className="order-act side-panel alert-panel", children=[
                html.Div(id=IDS["detail"], className="alert-detail"),
                html.Label(t("alerts.actor", lang), htmlFor=IDS["actor"], className="form-label"),
                # Who acts is the signed-in account, shown here; nothing typed in the browser names the actor.
                dcc.Input(id=IDS["actor"], type="text", value=auth.actor(), readOnly=True,
                          className="form-input data-text"),
                html.Label(t("alerts.note", lang), htmlFor=IDS["note"], className="form-label"),
                dcc.Textarea(id=IDS["note"], maxLength=2000, placeholder=t("alerts.note_hint", lang),
                             className="form-input form-note"),
                html.Label(t("alerts.department", lang), htmlFor=IDS["department"], className="form-label"),
                dcc.Dropdown(id=IDS["department"], placeholder=t("alerts.department_hint", lang),
                             className="form-select", labels=dropdown_labels(lang),
                             options=[{"label": department_name(d, lang), "value": d} for d in departments]),
                html.Div(id=IDS["actions"], className="order-actions"),
                html.Div(id=IDS["message"], className="order-message", role="status"),
            ]),
        ]),
    ])


def _status_choice(status: str, lang: str) -> str:
    return t("alerts.open", lang) if status == "open" else "∗" if status == "all" else t(f"alerts.status.{status}",
                                                                                            lang)


def _filter(name: str, filters: dict, lang: str, options: list, clearable: bool = True) -> dcc.Dropdown:
    return dcc.Dropdown(id={"type": IDS["filter"], "name": name}, options=options, value=filters[name],
                        clearable=clearable, placeholder=t(f"alerts.filter.{name}", lang),
                        className=f"order-filter filter-{name}", labels=dropdown_labels(lang))


# --- what the page shows ------------------------------------------------------------------------------------------

def filtered_alerts(filters: dict) -> pd.DataFrame:
    """The alerts the filters select, the most urgent first (unacknowledged critical on top), newest first."""
    service = services.get()
    directory = service.directory()
    frame = service.read_alerts("frame", statuses_of(filters["status"]))
    if filters["unit"] and filters["unit"] not in directory.units.index:
        return frame.iloc[0:0]  # a unit the city does not have has no alerts
    return select_alerts(frame, directory, severities=[filters["severity"]] if filters["severity"] else [],
                         kind=filters["kind"], unit=filters["unit"], scope=auth.scope_unit())


def place_text(alert, lang: str) -> str:
    code = alert.unit_code if isinstance(alert.unit_code, str) else alert.grid_code
    lineage = services.get().directory().lineage(code)[1:]
    names = [unit_name(u, lang) for u in lineage]
    return " · ".join(names[:1] + names[-1:] if len(names) > 2 else names) or (code or "")


def map_href(alert, lang: str) -> str | None:
    code = alert.unit_code if isinstance(alert.unit_code, str) else alert.grid_code
    if not isinstance(code, str):
        return None
    query = {"unit": code, "layers": "units,buildings,sensors,alerts"}
    if isinstance(alert.building_id, str):
        query["building"] = alert.building_id
    return "/?" + urlencode({**query, **language_query(lang)})


def status_text(alert, lang: str) -> str:
    text = t(f"alerts.status.{alert.status}", lang)
    if alert.condition == "clearing":
        rule = next((r for r in services.get().read_alerts("rule_bodies") if r["id"] == alert.rule_id), {})
        text += " · " + t("alerts.condition.clearing", lang, minutes=f"{rule.get('keep_firing_minutes', 0):g}")
    elif alert.condition == "clear" and alert.status != "resolved":
        text += " · " + t("alerts.condition.clear", lang)
    return text


def alert_rows(frame: pd.DataFrame, filters: dict) -> html.Table | html.P:
    lang = filters["lang"]
    if not len(frame):
        return html.P(t("alerts.none", lang), className="muted")
    head = html.Thead(html.Tr([html.Th(t(f"alerts.column.{c}", lang)) for c in
                               ("severity", "alert", "place", "fired", "status", "order")]))
    rows = []
    for alert in frame.head(MAX_ROWS).itertuples():
        selected = alert.alert_id == filters.get("alert")
        unacknowledged_critical = alert.severity == "critical" and alert.status == "firing"
        rows.append(html.Tr(className="alert-row" + (" selected" if selected else "")
                            + (" unacknowledged-critical" if unacknowledged_critical else ""),
                            **{"data-alert": alert.alert_id, "data-status": alert.status}, children=[
            html.Td(html.Span(state_label(alert.severity, lang), className=f"alert-severity state-{alert.severity}")),
            html.Td([dcc.Link(alert.alert_id, href=page_href(filters, alert=alert.alert_id), className="alert-link"),
                     html.Span(pick(alert.title, alert.title_zh, lang), className="alert-title")]),
            html.Td(place_text(alert, lang)),
            html.Td(f"{alert.fired_at:%m-%d %H:%M}"),
            html.Td(status_text(alert, lang), className="alert-status"),
            html.Td(dcc.Link(alert.order_id, href=f"/orders/{quote(alert.order_id, safe='')}"
                             + ("?lang=zh" if lang == "zh" else ""), className="alert-order-link")
                    if isinstance(alert.order_id, str) else "—"),
        ]))
    return html.Table([head, html.Tbody(rows)], className="alerts-table")


def alert_detail(alert_id: str | None, lang: str) -> tuple[list, list]:
    """The selected alert's facts and history, and the buttons the lifecycle allows now."""
    if not alert_id:
        return [html.P(t("alerts.pick", lang), className="muted")], []
    service = services.get()
    try:
        alert = service.read_alerts("get", alert_id)
    except UnknownAlert:
        alert = None
    if alert is None or not auth.in_scope(_place(alert)):  # outside: as if it did not exist
        return [html.P(t("alerts.unknown", lang, alert=alert_id), className="muted")], []
    links = []
    href = map_href(alert, lang)
    if href:
        links.append(dcc.Link(t("alerts.on_map", lang), href=href, className="alert-map-link"))
    if alert.sensor_id:
        links.append(html.Span(t("alerts.sensor", lang, sensor=alert.sensor_id), className="muted"))
    if alert.building_id:
        links.append(html.Span(t("alerts.building", lang, building=alert.building_id), className="muted"))
    if alert.order_id:
        links.append(dcc.Link(t("alerts.order_link", lang, order=alert.order_id),
                              href=f"/orders/{quote(alert.order_id, safe='')}" + ("?lang=zh" if lang == "zh" else ""),
                              className="alert-order-link", id="alert-detail-order"))
    history = [html.Li([html.Span(f"{e.at:%m-%d %H:%M:%S}", className="muted"), " ",
                        html.B(t(f"alerts.action.{e.action}", lang)), f" · {e.actor}",
                        (f" · {department_name(e.department, lang)}" if e.department else ""),
                        (f" — {e.note}" if e.note else "")]) for e in service.read_alerts("timeline", alert.alert_id)]
    body = [
        html.H2([html.Span(state_label(alert.severity, lang), className=f"alert-severity state-{alert.severity}"),
                 " ", html.Span(alert.alert_id, id="alert-detail-id")], className="alert-heading"),
        html.H3(pick(alert.title, alert.title_zh, lang), className="topic"),
        html.Div(status_text(alert, lang), id="alert-detail-status", className="alert-status",
                 **{"data-status": alert.status}),
        html.Div([html.Span(t("alerts.evidence", lang) + ": ", className="muted"),
                  pick(alert.evidence, alert.evidence_zh, lang)]),
        html.Div(place_text(alert, lang)),
        html.Div(t("alerts.rule", lang, rule=alert.rule_id, version=alert.rule_version), className="muted"),
        html.Div(links, className="alert-links"),
        html.H4(t("alerts.timeline", lang)),
        html.Ol(history, className="alert-history"),
    ]
    buttons = [html.Button(t(f"alerts.action.{action}", lang), id={"type": IDS["button"], "action": action},
                           className=f"action-button alert-{action}", n_clicks=0)
               for action in alert.allowed_actions]
    if not buttons:
        buttons = [html.P(t("alerts.final", lang), className="muted")]
    return body, buttons


@callback(
    Output(IDS["list"], "children"), Output(IDS["count"], "children"), Output(IDS["detail"], "children"),
    Output(IDS["actions"], "children"), Output(IDS["mark"], "data"),
    Input(IDS["refresh"], "n_intervals"), Input({"type": IDS["filter"], "name": ALL}, "value"),
    Input(IDS["acted"], "data"),
    State(IDS["filters"], "data"), State(IDS["mark"], "data"),
)
def render(_tick, values, _acted, filters, shown_mark):
    """The list and the selected alert, rendered again when a filter changes, after an action, or when the alerts'
    log moved on since the last rendering."""
    service = services.get()
    mark = service.read_alerts("mark")
    chosen = {item["id"]["name"]: item["value"] for item in ctx.inputs_list[1]}
    filters = normalise_filters(**{**{k: filters.get(k) for k in ("status", "severity", "kind", "unit", "alert",
                                                                   "lang")}, **chosen})
    triggered = {t_["prop_id"].split(".")[0] for t_ in ctx.triggered} if ctx.triggered else set()
    if triggered == {IDS["refresh"]} and shown_mark == [mark, filters]:
        return (no_update,) * 5
    frame = filtered_alerts(filters)
    open_alerts = auth.within_scope(service.read_alerts("frame", OPEN_STATUSES), "unit_code", "grid_code")
    critical = int(((open_alerts["severity"] == "critical") & (open_alerts["status"] == "firing")).sum())
    detail, buttons = alert_detail(filters["alert"], filters["lang"])
    return (alert_rows(frame, filters), t("alerts.count", filters["lang"], count=f"{len(frame):,}",
                                          critical=f"{critical:,}"),
            detail, buttons, [mark, filters])


@callback(
    Output(IDS["message"], "children"), Output(IDS["message"], "className"), Output(IDS["note"], "value"),
    Output(IDS["acted"], "data"),
    Input({"type": IDS["button"], "action": ALL}, "n_clicks"),
    State(IDS["selected"], "data"), State(IDS["actor"], "value"), State(IDS["note"], "value"),
    State(IDS["department"], "value"), State(IDS["filters"], "data"), State(IDS["acted"], "data"),
    prevent_initial_call=True,
)
def act(clicks, alert_id, actor, note, department, filters, acted):
    """One click, one action on the selected alert; the book refuses what the lifecycle does not allow."""
    if not ctx.triggered_id or not any(c for c in clicks or []) or not ctx.triggered[0]["value"]:
        return (no_update,) * 4
    lang = normalise_language((filters or {}).get("lang"))
    action = ctx.triggered_id.get("action")
    book = services.get().alerts()
    actor = auth.actor()  # the signed-in account, whatever the request's "actor" field says
    note = note if isinstance(note, str) else ""
    target = alert_id if isinstance(alert_id, str) else ""
    try:
        alert = book.get(target)
        if not auth.in_scope(_place(alert)):
            raise UnknownAlert(f"no alert {target!r}")  # outside the asker's area: as if it did not exist
        if action == "acknowledge":
            alert = book.acknowledge(alert.alert_id, actor=actor, note=note, expected_version=alert.version)
        elif action == "assign":
            chosen = department if isinstance(department, str) and department else _department_for(alert)
            alert = book.assign(alert.alert_id, department=chosen or "", actor=actor, note=note,
                                expected_version=alert.version)
        elif action == "resolve":
            alert = book.resolve(alert.alert_id, actor=actor, note=note, expected_version=alert.version)
        else:
            return no_update, no_update, no_update, no_update
    except (AlertError, WorkOrderError) as refused:
        auth.record(f"alert.{action}", target[:100], outcome="refused", detail=str(refused))
        return t("alerts.refused", lang, reason=str(refused)), "order-message refused", no_update, (acted or 0) + 1
    auth.record(f"alert.{action}", alert.alert_id, detail=f"status={alert.status}")
    return (t("alerts.done", lang, action=t(f"alerts.action.{action}", lang),
              status=t(f"alerts.status.{alert.status}", lang)), "order-message done", "", (acted or 0) + 1)


def _place(alert) -> str | None:
    """The unit (or else the grid cell) an alert is about."""
    return alert.unit_code if isinstance(alert.unit_code, str) else alert.grid_code


def _department_for(alert) -> str | None:
    """The department the responsibility list gives the rule's event type (the default of an assignment)."""
    service = services.get()
    rule = next((r for r in service.alerts().rule_bodies() if r["id"] == alert.rule_id), {})
    event_type = rule.get("event_type") or (alert.place.split(":", 2)[2] if alert.kind == "order_burst" else None)
    rules = service.work_orders().responsibility_list()
    return rules.rules[event_type].department if event_type in rules.rules else None
