"""One work order followed from intake to evaluation: its facts, its timeline as swim-lanes, and the actions the
lifecycle allows now. ``/orders/SZ2026112200042?lang=zh``.

An action is sent with the version of the order this page showed. If someone acted in between, the store refuses
it (:class:`layers.workorders.VersionConflict`): the page says who did what, shows the order as it is now, and keeps
what the operator typed. The actor in the order's log is the signed-in person (dashboard/auth), never text from the
browser; each action is allowed to the roles of dashboard/auth/rules.ORDER_ACTIONS, in the person's scope.
"""
from __future__ import annotations

from urllib.parse import quote, unquote, urlencode

import dash
import pandas as pd
from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from dashboard import auth, ids, services
from dashboard.components.order_views import (ACTION_BUTTON, action_buttons, action_label, refusal_text, order_facts,
                                              swim_lanes)
from dashboard.components.topbar import topbar
from dashboard.i18n import HTML_LANG, department_name, dropdown_labels, language_query, normalise_language, t
from dashboard.order_screens import orders_frame, status_label
from dashboard.view import DEFAULT_INDICATOR, DEFAULT_WINDOW
from layers.city_settings import timezone as city_timezone
from layers.lifecycle import TransitionRefused
from layers.store_health import is_unavailability
from layers.workorders import InvalidRequest, UnknownOrder, VersionConflict
from metrics.clocks import order_clocks

dash.register_page(__name__, path_template="/orders/<order_id>", title="citytwin · work order", name="Order")


def layout(order_id: str | None = None, lang: str | None = None, **_ignored):
    lang = normalise_language(lang)
    order_id = unquote(order_id or "")  # Dash passes the path segment as the browser sent it, percent-encoded
    service = services.get()
    directory = service.directory()
    now = pd.Timestamp.now(tz=city_timezone())
    body, state = order_body(order_id, lang)
    return html.Div(className="screen order-screen", lang=HTML_LANG[lang], children=[
        topbar([directory.city], DEFAULT_INDICATOR, DEFAULT_WINDOW, now, controls=[
            dcc.Link(t("order.back_to_list", lang), href="/orders" + ("?lang=zh" if lang == "zh" else ""),
                     className="window-link")],
               page="orders", here=f"/orders/{quote(order_id, safe='')}", lang=lang),
        dcc.Store(id=ids.ORDER_STATE, data=state),
        html.Main(className="order-main", children=[
            html.Div(body, id=ids.ORDER_BODY, className="order-body"),
            html.Aside(className="order-act side-panel", children=action_form(state, lang)),
        ]),
    ])


def order_body(order_id: str | None, lang: str) -> tuple[list, dict]:
    """The order's facts and lanes, and the state the actions are sent with (id, version, language, buttons)."""
    service = services.get()
    work_orders = service.work_orders()
    try:
        order = work_orders.get(order_id or "")
    except UnknownOrder:
        return [html.H1(t("order.unknown", lang), id="order-id"),
                html.P(t("order.unknown_detail", lang, order_id=order_id or ""), className="muted")], \
            {"order_id": order_id, "version": None, "lang": lang}
    now = pd.Timestamp.now(tz=city_timezone())
    clock = order_clocks(orders_frame([order]), now).iloc[0].to_dict()
    place = service.directory().lineage(order.grid_code)
    rules = work_orders.responsibility_list()
    body = [order_facts(order, rules, place, clock, lang), swim_lanes(work_orders.timeline(order.order_id), lang)]
    alert = service.read_alerts("for_order", order.order_id)
    if alert is not None:  # filed by assigning an alert: the way back to it
        query = urlencode({"status": "all", "alert": alert.alert_id, **language_query(lang)})
        body.insert(1, dcc.Link(t("alerts.from_alert", lang, alert=alert.alert_id), href=f"/alerts?{query}",
                                id="order-alert-link", className="alert-order-link"))
    return body, {"order_id": order.order_id, "version": order.version, "lang": lang, "status": order.status,
                  "department": order.department}


def action_form(state: dict, lang: str) -> list:
    service = services.get()
    departments = service.work_orders().responsibility_list().departments
    return [
        html.H3(t("order.act", lang), className="topic"),
        html.Div([t("order.actor", lang), ": ", html.Strong(auth.actor(), id=ids.ORDER_ACTOR, className="data-text")],
                 className="form-label"),
        html.Label(t("order.note", lang), htmlFor=ids.ORDER_NOTE, className="form-label"),
        dcc.Textarea(id=ids.ORDER_NOTE, maxLength=4000, placeholder=t("order.note_hint", lang),
                     className="form-input form-note"),
        html.Label(t("order.to_department", lang), htmlFor=ids.ORDER_DEPARTMENT, className="form-label"),
        dcc.Dropdown(id=ids.ORDER_DEPARTMENT, placeholder=t("order.by_the_list", lang), className="form-select",
                     labels=dropdown_labels(lang),
                     options=[{"label": department_name(d, lang), "value": d} for d in departments]),
        html.Div(action_buttons_for(state, lang), id="order-actions"),
        html.Div(id=ids.ORDER_MESSAGE, className="order-message", role="status"),
    ]


def action_buttons_for(state: dict, lang: str):
    if state.get("version") is None:
        return None
    return action_buttons(services.get().work_orders().get(state["order_id"]), lang)


@callback(
    Output(ids.ORDER_BODY, "children"), Output(ids.ORDER_STATE, "data"), Output("order-actions", "children"),
    Output(ids.ORDER_MESSAGE, "children"), Output(ids.ORDER_MESSAGE, "className"), Output(ids.ORDER_NOTE, "value"),
    Input({"type": ACTION_BUTTON, "action": ALL}, "n_clicks"),
    State(ids.ORDER_STATE, "data"), State(ids.ORDER_NOTE, "value"),
    State(ids.ORDER_DEPARTMENT, "value"),
    prevent_initial_call=True,
)
def act_on_order(clicks, state, note, department):
    """One click, one action, with the version this page showed, as the signed-in person. Thin: the rules are
    the store's (what the lifecycle allows) and the access layer's (who may)."""
    if not ctx.triggered_id or not any(c for c in clicks or []) or not ctx.triggered[0]["value"]:
        return (no_update,) * 6  # buttons re-rendered, nothing clicked
    if not isinstance(state, dict) or not isinstance(state.get("order_id"), str) \
            or not isinstance(state.get("version"), int) or not isinstance(note or "", str) \
            or not isinstance(department or "", str) or not isinstance(ctx.triggered_id, dict) \
            or not isinstance(ctx.triggered_id.get("action"), str):
        raise dash.exceptions.PreventUpdate  # not what this page sends
    lang = normalise_language(state.get("lang"))
    button = ctx.triggered_id["action"]
    action, _, answer = button.partition(":")
    work_orders = services.get().work_orders()
    try:
        current = work_orders.get(state["order_id"])
    except UnknownOrder as refused:
        return no_update, no_update, no_update, t("order.refused", lang, reason=refusal_text(refused, lang)), \
            "order-message refused", no_update
    asked = "reopen" if button == "evaluate:unsatisfied" else action
    why_not = auth.may_act_on(current, asked)
    if why_not:
        auth.record(f"order.{action}", state["order_id"], outcome="refused", detail=why_not)
        return no_update, no_update, no_update, t("order.refused", lang,
                                                  reason=auth.may_act_on(current, asked, lang)), \
            "order-message refused", no_update
    arguments = dict(expected_version=state["version"], actor=auth.actor(), note=note or "")
    if action in ("dispatch", "redispatch"):
        arguments["department"] = department or None
    if action == "evaluate":
        arguments["satisfied"] = answer == "satisfied"
    try:
        if not arguments["actor"]:
            raise InvalidRequest("actor", t("order.actor_missing", "en"), "order.actor_missing")
        order = work_orders.act(state["order_id"], action, **arguments)
    except VersionConflict as conflict:
        auth.record(f"order.{action}", state["order_id"], outcome="refused", detail="version conflict")
        body, fresh = order_body(state["order_id"], lang)
        last = conflict.last
        message = t("order.conflict", lang, order_id=state["order_id"], version=conflict.actual,
                    actor=last.actor if last else "?", action=action_label(last.action, lang) if last else "?",
                    at=last.at.strftime("%H:%M:%S") if last else "?",
                    status=status_label(last.to_status, lang) if last else "?")
        return body, fresh, action_buttons_for(fresh, lang), message, "order-message conflict", no_update
    except (InvalidRequest, TransitionRefused, UnknownOrder) as refused:
        auth.record(f"order.{action}", state["order_id"], outcome="refused", detail=str(refused))
        return no_update, no_update, no_update, t("order.refused", lang, reason=refusal_text(refused, lang)), \
            "order-message refused", no_update
    except Exception as error:
        if not is_unavailability(error):
            raise
        unknown = getattr(error, "outcome", "not_stored") == "unknown"
        return no_update, no_update, no_update, t("order.store_unknown" if unknown else "order.store_unavailable",
                                                  lang), "order-message refused", no_update
    message = t("order.done", lang, action=action_label(button, lang), status=status_label(order.status, lang),
                version=order.version)
    # Saved: from here on the answer says so whatever happens. Redrawing the order reads the store again (its body,
    # then its buttons); if the store stops answering meanwhile, the page keeps its body and learns the new version.
    try:
        body, fresh = order_body(order.order_id, lang)
        buttons = action_buttons_for(fresh, lang)
    except Exception as error:
        if not is_unavailability(error):
            raise
        return no_update, dict(state, version=order.version, status=order.status), no_update, message, \
            "order-message done", ""
    return body, fresh, buttons, message, "order-message done", ""


# A timeline wider than the page opens on its newest step, with the cue that earlier steps are to the left.
clientside_callback(
    """function(_children) {
        const lanes = document.getElementById("order-lanes");
        const section = document.getElementById("order-lanes-section");
        if (!lanes || !section) { return window.dash_clientside.no_update; }
        const overflowing = lanes.scrollWidth > lanes.clientWidth + 1;
        lanes.scrollLeft = lanes.scrollWidth;
        section.classList.toggle("overflowing", overflowing);
        return overflowing ? "overflowing" : "fits";
    }""",
    Output("order-lanes", "data-fit"),
    Input("order-lanes", "children"),
)
