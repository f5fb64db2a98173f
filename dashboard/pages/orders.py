"""The work-order list: every order of the city, filtered, sorted and paged in SQL. AG Grid's infinite row model asks
for blocks of 100 rows as the operator scrolls; each block is one indexed query (:meth:`WorkOrders.list_orders`),
so a city's millions of orders cost a page each, never a load. The filters are in the URL
(``/orders?status=received,dispatched&department=Water%20Affairs%20Bureau&overdue=1&lang=zh``): a link shares the
list, back and forward walk it. Click an order id to open the order."""
from __future__ import annotations

import dash
import dash_ag_grid as dag
import pandas as pd
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from dashboard import auth, ids, services
from dashboard.components.topbar import topbar
from dashboard.i18n import HTML_LANG, department_name, dropdown_labels, pick, t, unit_name
from dashboard.order_screens import (BLOCK_ROWS, LIST_FILTERS, channel_label, filters_search, grid_rows,
                                     normalise_filters, order_query, status_label)
from dashboard.view import DEFAULT_INDICATOR, DEFAULT_WINDOW
from layers.city_settings import timezone as city_timezone
from layers.lifecycle import STATUSES
from layers.workorders import InvalidRequest

dash.register_page(__name__, path="/orders", title="citytwin · work orders", name="Orders")

GRID_THEME = ("themeQuartz.withParams({backgroundColor: '#0b1220', foregroundColor: '#e2e8f0', "
              "headerBackgroundColor: '#111a2e', borderColor: '#1e2a44', accentColor: '#38bdf8', "
              "oddRowBackgroundColor: '#0f1829', fontSize: '0.875rem', headerFontSize: '0.875rem', "
              "spacing: '0.375rem', rowHeight: '2.25rem', headerHeight: '2.5rem'})")  # in rem: the grid scales with the screen like the page (assets/theme.css)
COLUMNS = (  # (column id, field, width, sortable)
    ("order_id", "order_link", 170, True), ("received_at", "received_at", 140, True),
    ("status", "status", 110, True), ("card", "card", 80, False), ("clock", "clock", 130, False),
    ("event_type", "event_type", 190, True), ("department", "department", 230, True),
    ("grid_code", "grid_code", 200, True), ("channel", "channel", 120, True),
    ("deadline_at", "deadline_at", 140, True), ("description", "description", 360, False),
)


def layout(lang: str | None = None, **query):
    filters = normalise_filters(lang=lang, **query)
    lang = filters["lang"]
    service = services.get()
    directory = service.directory()
    rules = service.work_orders().responsibility_list()
    now = pd.Timestamp.now(tz=city_timezone())
    districts = directory.of_level("district")
    city = directory.city
    if filters["unit"] == city["code"]:  # the top bar's links name the city: every order
        filters["unit"] = None
    return html.Div(className="screen orders-screen", lang=HTML_LANG[lang], children=[
        topbar([city], DEFAULT_INDICATOR, DEFAULT_WINDOW, now, page="orders", here="/orders" + filters_search(filters),
               lang=lang, controls=[]),
        dcc.Store(id=ids.ORDER_FILTERS, data=filters),
        html.Main(className="orders-main", children=[
            html.Div(className="order-filter-bar", children=[
                filter_dropdown("status", filters, lang, [{"label": status_label(s, lang), "value": s}
                                                          for s in STATUSES]),
                filter_dropdown("event_type", filters, lang, [{"label": pick(r.name, r.name_zh, lang), "value": code}
                                                              for code, r in sorted(rules.rules.items())]),
                filter_dropdown("department", filters, lang, [{"label": department_name(d, lang), "value": d}
                                                              for d in rules.departments]),
                filter_dropdown("unit", filters, lang, [{"label": unit_name(u, lang), "value": u["code"]}
                                                        for u in districts.to_dict("records")], multi=False),
                filter_dropdown("channel", filters, lang, [{"label": channel_label(c, lang), "value": c}
                                                           for c in service.work_orders().channels()]),
                dcc.Checklist(id={"type": ids.ORDER_FILTER, "name": "flags"}, className="order-flags", inline=True,
                              value=[f for f in ("overdue", "escalated") if filters[f]],
                              options=[{"label": t(f"orders.filter.{f}", lang), "value": f}
                                       for f in ("overdue", "escalated")]),
                dcc.Input(id={"type": ids.ORDER_FILTER, "name": "q"}, value=filters["q"] or "", type="search",
                          debounce=True, placeholder=t("orders.filter.q", lang), className="form-input order-search"),
                html.Div(id=ids.ORDER_COUNT, className="order-count", children=t("orders.loading", lang)),
            ]),
            dag.AgGrid(
                id=ids.ORDER_GRID, rowModelType="infinite", className="order-grid",
                columnDefs=[{"colId": col, "field": field, "headerName": t(f"orders.column.{col}", lang),
                             # Widths as shares of the grid (which is sized in rem), so that the columns
                             # fill a 3840×2160 screen as they fill a 1920×1080 one.
                             "flex": width, "minWidth": 60, "sortable": sortable,
                             **({"cellRenderer": "markdown"} if col == "order_id" else {}),
                             # The citizen's words are data, in the language they were said in.
                             **({"cellClass": "data-text"} if col == "description" else {}),
                             **({"cellClassRules": {"card-red": "params.data && params.data.card_code == 'red'",
                                                    "card-yellow": "params.data && params.data.card_code == 'yellow'"}}
                                if col == "card" else {})}
                            for col, field, width, sortable in COLUMNS],
                defaultColDef={"resizable": True, "suppressMovable": True},
                getRowId="params.data.order_id",
                dashGridOptions={"theme": {"function": GRID_THEME}, "cacheBlockSize": BLOCK_ROWS,
                                 "maxBlocksInCache": 50, "infiniteInitialRowCount": BLOCK_ROWS, "rowBuffer": 10,
                                 "localeText": {"loadingOoo": t("orders.loading", lang),
                                                "noRowsToShow": t("orders.none", lang)}},
                style={"height": "100%", "width": "100%"},
            ),
        ]),
    ])


def filter_dropdown(name: str, filters: dict, lang: str, options: list[dict], multi: bool = True) -> dcc.Dropdown:
    value = filters[name]
    return dcc.Dropdown(id={"type": ids.ORDER_FILTER, "name": name}, options=options, multi=multi,
                        value=value, placeholder=t(f"orders.filter.{name}", lang),
                        className=f"order-filter filter-{name}", labels=dropdown_labels(lang))


@callback(
    Output(ids.ORDER_GRID, "getRowsResponse"), Output(ids.ORDER_COUNT, "children"),
    Input(ids.ORDER_GRID, "getRowsRequest"), State(ids.ORDER_FILTERS, "data"),
    prevent_initial_call=True,
)
def serve_block(request, filters):
    """One block of rows for the grid, and the count of orders that match the filters."""
    if not request:
        return no_update, no_update
    if not isinstance(request, dict) or not isinstance(filters, dict):
        raise dash.exceptions.PreventUpdate  # not what the grid sends
    filters = normalise_filters(**{k: v for k, v in filters.items() if isinstance(k, str)})
    lang = filters["lang"]
    service = services.get()
    work_orders = service.work_orders()
    now = pd.Timestamp.now(tz=city_timezone())
    try:
        filters = auth.scoped_filters(filters)
        page = work_orders.list_orders(order_query(filters, request, now))
    except (InvalidRequest, auth.OutOfScope) as refused:
        return {"rowData": [], "rowCount": 0}, t("orders.refused", lang, reason=str(refused))
    directory = service.directory()
    codes = pd.Series(sorted({o.grid_code for o in page.orders}), dtype=object)
    districts = directory.ancestor(codes, "district")
    district_names = {u["code"]: unit_name(u, lang) for u in directory.of_level("district").to_dict("records")}
    names = {code: " · ".join(filter(None, [district_names.get(d, ""), code])) for code, d in zip(codes, districts)}
    rows = grid_rows(page, work_orders.responsibility_list(), names, now, lang)
    return {"rowData": rows, "rowCount": page.total}, t("orders.count", lang, count=f"{page.total:,}")


@callback(
    Output(ids.URL, "search", allow_duplicate=True),
    Input({"type": ids.ORDER_FILTER, "name": ALL}, "value"), State(ids.ORDER_FILTERS, "data"),
    prevent_initial_call=True,
)
def apply_filters(values, filters):
    """A changed filter is a new URL: the page reloads the list with it (and the link can be shared)."""
    if not ctx.triggered_id or not isinstance(filters, dict):
        return no_update
    names = (*LIST_FILTERS, "unit", "q", "flags")
    chosen = {item["id"]["name"]: item.get("value") for item in ctx.inputs_list[0]
              if isinstance(item, dict) and isinstance(item.get("id"), dict) and item["id"].get("name") in names}
    chosen = {name: (value if isinstance(value, str) or value is None else
                     [v for v in value if isinstance(v, str)] if isinstance(value, list) else None)
              for name, value in chosen.items()}
    flags = chosen.pop("flags", None) or []
    flags = flags if isinstance(flags, list) else []
    changed = normalise_filters(**{name: chosen.get(name) for name in (*LIST_FILTERS, "unit", "q")},
                                overdue="1" if "overdue" in flags else None,
                                escalated="1" if "escalated" in flags else None,
                                lang=filters.get("lang") if isinstance(filters.get("lang"), str) else None)
    if changed == filters:
        return no_update
    return filters_search(changed) or "?"
