"""The supervision board (督办): yellow and red cards by department and by district, the red-carded orders first, and
the sweep that escalates every red card not yet escalated. ``/supervision?lang=zh``.

Cards are read from the clocks (:mod:`metrics.clocks`) of the open orders, at the moment the page is drawn; each
count links to the list of those orders.
"""
from __future__ import annotations

import dash
import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import auth, ids, services
from dashboard.components.order_views import board_table, carded_rows
from dashboard.components.topbar import topbar
from dashboard.i18n import HTML_LANG, department_name, normalise_language, pick, t, unit_name
from dashboard.order_screens import filters_search, normalise_filters
from dashboard.view import DEFAULT_INDICATOR, DEFAULT_WINDOW
from layers.city_settings import timezone as city_timezone
from layers.lifecycle import OPEN_STATUSES, STATUSES
from metrics.clocks import ESCALATION, card_counts, carded_orders, order_clocks

dash.register_page(__name__, path="/supervision", title="citytwin · supervision", name="Supervision")

CARDED_SHOWN = 60
OPEN_IN_ORDER = [s for s in STATUSES if s in OPEN_STATUSES]


def layout(lang: str | None = None, **_ignored):
    lang = normalise_language(lang)
    directory = services.get().directory()
    now = pd.Timestamp.now(tz=city_timezone())
    return html.Div(className="screen supervision-screen", lang=HTML_LANG[lang], children=[
        topbar([directory.city], DEFAULT_INDICATOR, DEFAULT_WINDOW, now, page="supervision",
               here="/supervision", lang=lang, controls=[]),
        dcc.Store(id="supervision-lang", data=lang),
        html.Main(className="supervision-main", children=board(now, lang), id="supervision-board"),
    ])


def board(now: pd.Timestamp, lang: str, message: str | None = None, fresh: bool = False) -> list:
    service = services.get()
    work_orders = service.work_orders()
    directory = service.directory()
    orders, read_at = service.open_orders(fresh)
    # The asker's orders only: those in its area (a district's board counts its district), and a handler's
    # department's (the cached frame is the city's; what is cut here is cut at each request).
    orders = auth.within_scope(orders, "grid_code")
    departments = auth.department_bound()
    if departments:
        orders = orders[orders["department"].isin(departments).to_numpy()]
    clocks = order_clocks(orders, now)
    sweep_minutes = services.get().settings.escalation_minutes
    by_department = card_counts(orders, now, by="department", clocks=clocks)
    by_district = card_counts(orders, now, by="district", clocks=clocks)
    carded = carded_orders(orders, now, clocks=clocks)
    totals = by_department[["open", "yellow", "red", "escalated", "to_escalate"]].sum()
    rules = work_orders.responsibility_list()
    event_names = {code: pick(r.name, r.name_zh, lang) for code, r in rules.rules.items()}
    district_names = {row["code"]: unit_name(row, lang) for row in directory.of_level("district").to_dict("records")}
    codes = auth.scope_codes()
    if codes is not None:  # a district's board lists its own district only, even with no card in it
        by_district = by_district[by_district["district"].isin(codes).to_numpy()]
    department_names = {d: department_name(d, lang) for d in by_department["department"]}

    def department_href(department, red):
        return "/orders" + filters_search(normalise_filters(department=[department], overdue="1" if red else None,
                                                            status=None if red else OPEN_IN_ORDER, lang=lang))

    def district_href(district, red):
        return "/orders" + filters_search(normalise_filters(unit=district, overdue="1" if red else None,
                                                            status=None if red else OPEN_IN_ORDER, lang=lang))

    tiles = [html.Div(className=f"board-tile tile-{name}", id=f"board-{name}", children=[
        html.Div(f"{int(totals[name]):,}", className="board-tile-value", **{"data-value": str(int(totals[name]))}),
        html.Div(t(f"supervision.column.{name}", lang), className="board-tile-label")])
        for name in ("open", "yellow", "red", "escalated", "to_escalate")]
    return [
        html.Div(className="board-head", children=[
            html.H1(t("supervision.title", lang)),
            html.Div([t("supervision.subtitle", lang, at=now.strftime("%Y-%m-%d %H:%M"),
                        read=read_at.strftime("%H:%M:%S")), html.Br(),
                      html.Span(t("supervision.red_definition", lang), id="red-definition")],
                     className="map-subtitle"),
            html.Div(tiles, className="board-tiles", title=t("supervision.red_definition", lang)),
            html.Div(className="board-sweep", children=[
                html.Span(auth.actor(), id=ids.ORDER_ACTOR, className="muted data-text"),
                html.Button(t("supervision.escalate_all", lang, count=f"{int(totals['to_escalate']):,}"),
                            id=ids.ESCALATE_ALL, n_clicks=0, className="action-button action-escalate",
                            disabled=not int(totals["to_escalate"])),
                html.Div(t("supervision.sweep", lang, minutes=f"{sweep_minutes:g}")
                         if sweep_minutes else t("supervision.no_sweep", lang),
                         className="muted board-sweep-note"),
                html.Div(message, id=ids.ESCALATE_MESSAGE, className="order-message done" if message else
                         "order-message", role="status"),
            ]),
        ]),
        html.Div(className="board-columns", children=[
            html.Section(className="board-section", children=[
                html.H3(t("supervision.by_department", lang), className="topic"),
                board_table(by_department, "department", department_names, department_href, lang,
                            table_id="board-departments"),
                html.H3(t("supervision.by_district", lang), className="topic"),
                board_table(by_district, "district", district_names, district_href, lang,
                            table_id="board-districts"),
            ]),
            html.Section(className="board-section", children=[
                html.H3(t("supervision.carded", lang, shown=min(CARDED_SHOWN, len(carded)),
                          count=f"{len(carded):,}"), className="topic"),
                carded_rows(carded.head(CARDED_SHOWN), event_names, district_names, lang),
            ]),
        ]),
    ]


@callback(
    Output("supervision-board", "children"),
    Input(ids.ESCALATE_ALL, "n_clicks"), State("supervision-lang", "data"),
    prevent_initial_call=True,
)
def escalate_red_cards(clicks, lang):
    """The sweep: every red card never escalated is escalated, in one set-based write (each logged), as the
    signed-in supervisor."""
    if not clicks:
        return no_update
    lang = normalise_language(lang if isinstance(lang, str) else None)
    now = pd.Timestamp.now(tz=city_timezone())
    if auth.scope_unit():  # the sweep reaches every red card of the city: not for an account bound to a part
        auth.record("order.escalate_all", "supervision", outcome="refused", detail="scoped account")
        return board(now, lang, t("order.refused", lang, reason=t("refusal.sweep_scoped", lang)))
    escalated = services.get().work_orders().escalate_overdue(now, actor=auth.actor(), **ESCALATION)
    auth.record("order.escalate_all", "supervision", detail=f"{escalated} orders escalated")
    return board(now, lang, t("supervision.escalated", lang, count=f"{escalated:,}"), fresh=True)
