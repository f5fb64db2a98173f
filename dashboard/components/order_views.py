"""The parts of the work-order screens: an order's facts, its timeline as swim-lanes (one lane per party that held
the order), the actions the lifecycle allows now, and the supervision board's tables. Every text that came from a
citizen or an operator is a Dash text child: React writes it as text, so markup in it is shown, never run."""
from __future__ import annotations

import pandas as pd
from dash import dcc, html

from dashboard.components.labels import short_name
from dashboard.i18n import (DEFAULT_LANGUAGE, MESSAGES, department_name, normalise_language, pick, t, unit_name,
                            written_language)
from dashboard.order_screens import card_label, channel_label, clock_text, order_href, status_label
from layers.lifecycle import ACTIONS, TransitionRefused
from layers.workorders import Order, ResponsibilityList, TimelineEntry, UnknownOrder, InvalidRequest
from metrics.clocks import ESCALATION

# What the server itself writes into an order's log (the supervision sweep's name and its notes) is said in the
# page's language; what people write stays as they wrote it.
SWEEP_ACTOR = "supervision sweep"  # app.py's sweep
NOTE_REASONS = {note: reason for reason, note in ESCALATION["notes"].items()}


def _actor(entry, lang: str) -> str:
    if entry.source != "log":
        return t("order.from_stage_times", lang)
    return t("order.actor.supervision_sweep", lang) if entry.actor == SWEEP_ACTOR else entry.actor


def _note(note: str, lang: str) -> str:
    reason = NOTE_REASONS.get(note)
    return note if reason is None else t(f"order.note.red_card.{reason}", lang)

ACTION_BUTTON = "order-action"
"""Pattern-matching id type of the action buttons: ``{"type": ACTION_BUTTON, "action": name}``. An evaluation has
two buttons, ``evaluate:satisfied`` and ``evaluate:unsatisfied`` (the latter reopens the order)."""

# Who does an action, for its swim-lane. Unit actions go in the lane of the department that held the order then.
# Closing (办结归档) is the dispatch center's filing of a finished order, done by its operators: their lane. Only an
# escalation (督办) is supervision's.
LANE_OF_ACTION = {"file": "intake", "dispatch": "dispatch", "redispatch": "dispatch", "cancel": "dispatch",
                  "reject": "unit", "accept": "unit", "handle": "unit", "reply": "unit",
                  "evaluate": "citizen", "reopen": "citizen", "escalate": "supervision", "close": "dispatch"}
FIXED_LANES_BEFORE = ("intake", "dispatch")
FIXED_LANES_AFTER = ("citizen", "supervision")


def action_label(action: str, lang: str) -> str:
    if action.startswith("evaluate:"):
        return t("order.evaluate_satisfied" if action == "evaluate:satisfied" else "order.evaluate_unsatisfied", lang)
    spec = ACTIONS[action]
    return pick(spec.label, spec.label_zh, lang)


def refusal_text(error, lang: str) -> str:
    """A refusal of the order service or the access layer in ``lang``: the message id the error carries, its
    values said in the page's words (statuses, actions, departments, fields). In English, and for an error without
    a message id, the service's own text.

    >>> from layers.lifecycle import transition, TransitionRefused
    >>> try:
    ...     transition("closed", "reopen")
    ... except TransitionRefused as refused:
    ...     print(refusal_text(refused, "zh"))
    “已办结”状态的工单已终结，不能“不满意重办”；此时可办理：无
    """
    if normalise_language(lang) == "en":
        return str(error)  # the service's own words (as its API answers)
    message_id, params = getattr(error, "message_id", None), dict(getattr(error, "params", None) or {})
    if isinstance(error, TransitionRefused):
        params.update(status=error.status, action=error.action)
    if isinstance(error, InvalidRequest):
        params.setdefault("field", error.field)
    if isinstance(error, UnknownOrder):
        message_id, params = "refusal.unknown_order", {"order_id": error.order_id}
    if message_id is None:
        return str(error)
    if "status" in params:
        params["status"] = status_label(params["status"], lang)
    if "action" in params and params["action"] in ACTIONS:
        params["action"] = action_label(params["action"], lang)
    if "allowed" in params:
        params["allowed"] = ("、" if lang == "zh" else ", ").join(
            action_label(a, lang) for a in params["allowed"]) or t("refusal.nothing", lang)
    if "department" in params:
        params["department"] = department_name(params["department"], lang)
    if "field" in params and f"field.{params['field']}" in MESSAGES:
        params["field"] = t(f"field.{params['field']}", lang)
    return t(message_id, lang, **params)


def ui_actions(order: Order) -> list[str]:
    """The buttons for an order: the lifecycle's allowed actions, with the evaluation split into its two answers
    (an unsatisfied answer reopens, so reopen has no button of its own)."""
    buttons = []
    for action in order.allowed_actions:
        if action == "evaluate":
            buttons += ["evaluate:satisfied", "evaluate:unsatisfied"]
        elif action != "reopen":
            buttons.append(action)
    return buttons


def fact(label: str, value, **attributes) -> html.Div:
    return html.Div(className="order-fact", children=[html.Span(label, className="muted"),
                                                       html.Span(value, className="order-fact-value", **attributes)])


def order_facts(order: Order, rules: ResponsibilityList, place: list[dict], clock: dict,
                lang: str = DEFAULT_LANGUAGE) -> html.Section:
    rule = rules.rules.get(order.event_type)
    card = clock.get("card")
    return html.Section(className="order-facts", children=[
        html.Div(className="order-heading", children=[
            html.H1(order.order_id, id="order-id"),
            html.Span(status_label(order.status, lang), id="order-status",
                      className=f"status-chip status-{order.status}", **{"data-status": order.status}),
            html.Span(card_label(card, lang), id="order-card", className=f"card-chip card-{card}",
                      **{"data-card": card}) if card else None,
            html.Span(t("order.reopened", lang, count=order.reopen_count), className="reopen-chip",
                      id="order-reopens", **{"data-count": str(order.reopen_count)}) if order.reopen_count else None,
        ]),
        html.Div(className="order-fact-grid", children=[
            fact(t("order.event_type", lang), pick(rule.name, rule.name_zh, lang) if rule else order.event_type),
            fact(t("order.department", lang), department_name(order.department, lang) if order.department else "—",
                 id="order-department"),
            fact(t("order.place", lang), place_text(place, lang) or order.grid_code, id="order-place",
                 **{"data-grid": order.grid_code}),
            fact(t("order.channel", lang), channel_label(order.channel, lang)),
            fact(t("order.received", lang), order.received_at.strftime("%Y-%m-%d %H:%M")),
            fact(t("order.deadline", lang), order.deadline_at.strftime("%Y-%m-%d %H:%M") +
                 (f" · {clock_text(clock, lang)}" if clock_text(clock, lang) else "")),
            fact(t("order.version", lang), str(order.version), id="order-version"),
            fact(t("order.rules_version", lang), str(order.rules_version or "—")),
        ]),
        html.H3(t("order.description", lang), className="topic"),
        html.P(order.description or "—", className="order-description data-text", id="order-description",
               lang=written_language(order.description)),
        html.P(order.address, className="order-address muted") if order.address else None,
    ])


def place_text(lineage: list[dict], lang: str) -> str:
    """District › street › community › grid, each named without its parent's name repeated."""
    names = [unit_name(u, lang) for u in lineage]
    return " › ".join(short_name(name, names[i - 1] if i else None) for i, name in enumerate(names) if i)


def swim_lanes(entries: list[TimelineEntry], lang: str = DEFAULT_LANGUAGE) -> html.Section:
    """The timeline as a grid: one row per party (intake, dispatch center, each department in the order it got the
    order, the citizen, supervision), one column per step, oldest first."""
    lane_of = []
    departments: list[str] = []
    for entry in entries:
        lane = LANE_OF_ACTION.get(entry.action, "supervision")
        if lane == "unit":
            lane = f"dept:{entry.department or '—'}"
            if lane not in departments:
                departments.append(lane)
        lane_of.append(lane)
    used = set(lane_of)
    lanes = [lane for lane in FIXED_LANES_BEFORE if lane in used] + departments + \
            [lane for lane in FIXED_LANES_AFTER if lane in used]
    row_of = {lane: i + 1 for i, lane in enumerate(lanes)}
    cells = [html.Div(lane_title(lane, lang), className="lane-title", style={"gridRow": row_of[lane]})
             for lane in lanes]
    cells += [html.Div(className="lane-band", style={"gridRow": row_of[lane], "gridColumn": f"2 / span {len(entries)}"})
              for lane in lanes]
    for column, (entry, lane) in enumerate(zip(entries, lane_of), start=2):
        cells.append(html.Div(className=f"lane-step action-{entry.action}",
                              style={"gridRow": row_of[lane], "gridColumn": column},
                              **{"data-action": entry.action, "data-lane": lane}, children=[
            html.Div(action_label(entry.action, lang), className="step-action"),
            html.Div(entry.at.strftime("%m-%d %H:%M"), className="step-time"),
            html.Div(t("order.step_to", lang, status=status_label(entry.to_status, lang)), className="step-status"),
            html.Div(_actor(entry, lang), className="step-actor muted"),
            html.Div(_note(entry.note, lang), className="step-note") if entry.note else None,
        ]))
    # The steps share the width (a nine-step timeline fits a 1920×1080 screen); a longer one scrolls sideways, opens
    # on its newest step and says that earlier ones are to the left (the clientside callback in pages/order.py).
    return html.Section(className="order-lanes", id="order-lanes-section", children=[
        html.H3([t("order.timeline", lang, count=len(entries)),
                 html.Span(t("order.timeline_scroll", lang), className="lanes-cue")], className="topic"),
        html.Div(cells, className="lanes", id="order-lanes",
                 style={"gridTemplateColumns": f"9.375rem repeat({len(entries)}, minmax(6.5rem, 1fr))",
                        "gridTemplateRows": f"repeat({len(lanes)}, auto)"}),
    ])


def lane_title(lane: str, lang: str) -> str:
    if lane.startswith("dept:"):
        return department_name(lane[5:], lang)
    return t(f"order.lane.{lane}", lang)


def action_buttons(order: Order, lang: str = DEFAULT_LANGUAGE) -> html.Div:
    buttons = [html.Button(action_label(action, lang), id={"type": ACTION_BUTTON, "action": action},
                           className=f"action-button action-{action.replace(':', '-')}", n_clicks=0)
               for action in ui_actions(order)]
    return html.Div(buttons or html.Span(t("order.final", lang), className="muted"), className="action-buttons",
                    id="order-action-buttons")


def board_table(counts: pd.DataFrame, by: str, names: dict[str, str], list_href, lang: str = DEFAULT_LANGUAGE,
                table_id: str | None = None) -> html.Table:
    """Cards per unit (department or district): open, yellow, red, escalated, to escalate; each count links to the
    list of those orders."""
    head = html.Thead(html.Tr([html.Th(t(f"supervision.column.{c}", lang)) for c in
                               (by, "open", "yellow", "red", "escalated", "to_escalate")]))
    rows = []
    for row in counts.itertuples(index=False):
        key = getattr(row, by)
        rows.append(html.Tr(className="board-row" + (" has-red" if row.red else ""), **{"data-key": str(key)},
                            children=[
            html.Td(names.get(key, key)),
            html.Td(dcc.Link(f"{row.open:,}", href=list_href(key, False))),
            html.Td(f"{row.yellow:,}", className="count-yellow" if row.yellow else "muted"),
            html.Td(dcc.Link(f"{row.red:,}", href=list_href(key, True)), className="count-red" if row.red else "muted"),
            html.Td(f"{row.escalated:,}"),
            html.Td(f"{row.to_escalate:,}", className="count-red" if row.to_escalate else "muted"),
        ]))
    return html.Table([head, html.Tbody(rows)], className="catalogue-table board-table", id=table_id)


def card_clock(reason: str | None, remaining_hours: float, lang: str = DEFAULT_LANGUAGE) -> str:
    """The clock of a carded order, saying why when the card is for the first response (a red card with days left
    would otherwise read as a mistake)."""
    deadline = clock_text({"remaining_hours": remaining_hours}, lang)
    if reason in ("no_first_response", "first_response_due"):
        return " · ".join(part for part in (t(f"clock.reason.{reason}", lang), deadline) if part)
    return deadline or (t(f"clock.reason.{reason}", lang) if reason else "")


def carded_rows(carded: pd.DataFrame, event_names: dict[str, str], district_names: dict[str, str],
                lang: str = DEFAULT_LANGUAGE) -> html.Table:
    head = html.Thead(html.Tr([html.Th(t(f"supervision.column.{c}", lang)) for c in
                               ("card", "order_id", "event_type", "department", "district", "clock", "escalated")]))
    rows = [html.Tr(className=f"carded-row card-{r.card}", children=[
        html.Td(html.Span(card_label(r.card, lang), className=f"card-chip card-{r.card}")),
        html.Td(dcc.Link(r.order_id, href=order_href(r.order_id, lang))),
        html.Td(event_names.get(r.event_type, r.event_type)),
        html.Td(department_name(r.department, lang) if r.department else "—"),
        html.Td(district_names.get(r.district, "") if isinstance(r.district, str) else ""),
        html.Td(card_clock(r.reason, r.remaining_hours, lang)),
        html.Td(r.supervised_at.strftime("%m-%d %H:%M") if pd.notna(r.supervised_at) else "—"),
    ]) for r in carded.itertuples()]
    return html.Table([head, html.Tbody(rows)], className="catalogue-table carded-table", id="carded-orders")
