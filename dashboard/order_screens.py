"""What the operators' work-order screens show, as plain data: the list's filters (read from and written to the URL),
AG Grid's block requests turned into :class:`layers.workorders.OrderQuery` pages, and the rows, clocks and names of
orders in one language. No Dash here: the pages in ``dashboard/pages/orders.py``, ``order.py`` and
``supervision.py`` render it, and ``tests/test_order_screens.py`` tests it without a browser.

>>> parse_filters("?status=received,bogus,dispatched&overdue=1&unit=")["status"]
['received', 'dispatched']
>>> filters_search({"status": ["received"], "overdue": True, "lang": "zh"})
'?status=received&overdue=1&lang=zh'
"""
from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlencode

import pandas as pd

from dashboard.i18n import DEFAULT_LANGUAGE, department_name, normalise_language, pick, t
from layers.city_settings import timezone as city_timezone
from layers.lifecycle import STATUSES
from layers.reference import CHANNELS
from layers.workorders import SORTABLE, Order, OrderPage, OrderQuery, ResponsibilityList
from metrics.clocks import order_clocks

LIST_FILTERS = ("status", "event_type", "department", "channel")
"""Filters that take several values (comma-separated in the URL)."""
BLOCK_ROWS = 100
"""Rows per block that AG Grid asks for (one SQL page)."""
DESCRIPTION_PREVIEW = 120
CHANNEL_NAMES = {code: (name, name_zh) for code, name, name_zh, *_share in CHANNELS}


def parse_filters(search: str | None) -> dict:
    """The list's filters named by a query string. Unknown statuses are dropped; other values are checked by the
    store when the list is read (an unknown department simply matches nothing)."""
    query = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?"), keep_blank_values=True).items()}
    return normalise_filters(**query)


def normalise_filters(status=None, event_type=None, department=None, channel=None, unit=None, overdue=None,
                      escalated=None, q=None, lang=None, **_ignored) -> dict:
    def values(text):
        if isinstance(text, (list, tuple)):
            return [str(v) for v in text if v]
        return [v for v in (text or "").split(",") if v.strip()]

    return {
        "status": [s for s in values(status) if s in STATUSES],
        "event_type": values(event_type),
        "department": values(department),
        "channel": values(channel),
        "unit": unit or None,
        "overdue": str(overdue).lower() in ("1", "true", "yes", "on"),
        "escalated": str(escalated).lower() in ("1", "true", "yes", "on"),
        "q": (q or "").strip()[:64] or None,
        "lang": normalise_language(lang),
    }


def filters_search(filters: dict) -> str:
    """The query string of the list's filters (empty ones and English left out)."""
    params = {}
    for name, value in filters.items():
        if name == "lang":
            if value and value != DEFAULT_LANGUAGE:
                params[name] = value
        elif isinstance(value, bool):
            if value:
                params[name] = "1"
        elif isinstance(value, (list, tuple)):
            if value:
                params[name] = ",".join(value)
        elif value:
            params[name] = value
    return "?" + urlencode(params, safe=",") if params else ""


def order_query(filters: dict, request: dict | None, now: pd.Timestamp) -> OrderQuery:
    """The SQL page for one block request of AG Grid's infinite row model (``startRow``, ``endRow``,
    ``sortModel``), under the list's filters. The grid sorts by one column at a time; a column that is not a
    stored one (the card, the place) is not sortable and falls back to the newest first."""
    request = request or {}
    start = max(0, int(request.get("startRow") or 0))
    end = int(request.get("endRow") or start + BLOCK_ROWS)
    sort, descending = "received_at", True
    for entry in request.get("sortModel") or []:
        if entry.get("colId") in SORTABLE:
            sort, descending = entry["colId"], entry.get("sort") != "asc"
            break
    query = filters.get("q")
    return OrderQuery(
        status=filters["status"], event_type=filters["event_type"], department=filters["department"],
        channel=filters["channel"], unit=filters["unit"], overdue_at=now if filters["overdue"] else None,
        escalated=True if filters["escalated"] else None, order_ids=[query.upper()] if query else (),
        sort=sort, descending=descending, offset=start, limit=max(1, min(end - start, 1_000)))


def orders_frame(orders: list[Order]) -> pd.DataFrame:
    """Orders as a frame of their stored columns (times tz-aware), for :func:`metrics.clocks.order_clocks`."""
    columns = ["order_id", "event_type", "channel", "department", "grid_code", "status", "received_at",
               "dispatched_at", "handled_at", "evaluated_at", "supervised_at", "deadline_at", "reopen_count",
               "version", "description"]
    frame = pd.DataFrame([{c: getattr(o, c) for c in columns} for o in orders], columns=columns)
    for name in ("received_at", "dispatched_at", "handled_at", "evaluated_at", "supervised_at", "deadline_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True).dt.tz_convert(city_timezone())
    return frame


def clock_text(clock, lang: str) -> str:
    """"overdue by 5.2 h", "3.0 h left", or "" when the deadline clock is not running."""
    hours = clock.get("remaining_hours")
    if hours is None or pd.isna(hours):
        return ""
    return t("orders.overdue_by" if hours < 0 else "orders.hours_left", lang, hours=_hours(abs(hours), lang))


def _hours(hours: float, lang: str) -> str:
    if hours >= 48:
        return t("orders.days", lang, days=f"{hours / 24:.1f}")
    return t("orders.hours", lang, hours=f"{hours:.1f}")


def grid_rows(page: OrderPage, rules: ResponsibilityList, places: dict[str, str], now: pd.Timestamp,
              lang: str = DEFAULT_LANGUAGE) -> list[dict]:
    """One page of orders as AG Grid rows. Text from citizens stays text: AG Grid writes cell values with
    ``textContent``; only the order id (ours) is a Markdown link."""
    if not page.orders:
        return []
    frame = orders_frame(page.orders)
    clocks = order_clocks(frame, now)
    rows = []
    for order, (_, clock) in zip(page.orders, clocks.iterrows()):
        rule = rules.rules.get(order.event_type)
        description = order.description or ""
        rows.append({
            "order_id": order.order_id,
            "order_link": order_markdown_link(order.order_id, lang),
            "received_at": order.received_at.strftime("%Y-%m-%d %H:%M"),
            "status": status_label(order.status, lang),
            "status_code": order.status,
            "card": card_label(clock["card"], lang),
            "card_code": clock["card"] or "",
            "clock": clock_text(clock, lang),
            "event_type": pick(rule.name, rule.name_zh, lang) if rule else order.event_type,
            "department": department_name(order.department, lang) if order.department else "",
            "grid_code": places.get(order.grid_code, order.grid_code),
            "channel": channel_label(order.channel, lang),
            "deadline_at": order.deadline_at.strftime("%Y-%m-%d %H:%M"),
            "reopen_count": order.reopen_count,
            "description": description[:DESCRIPTION_PREVIEW] + ("…" if len(description) > DESCRIPTION_PREVIEW else ""),
        })
    return rows


def channel_label(code: str, lang: str) -> str:
    """An intake channel's name (the reference list's); a channel added by an import shows its code."""
    names = CHANNEL_NAMES.get(code)
    return pick(*names, lang) if names else code


def order_href(order_id: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The order page's path, the id percent-encoded whole: imported ids may hold ``/ # ? [ ] ( )`` or spaces.

    >>> order_href("A/1#2?x")
    '/orders/A%2F1%232%3Fx'
    """
    return f"/orders/{quote(order_id, safe='')}" + ("?lang=zh" if normalise_language(lang) == "zh" else "")


# CommonMark lets a backslash escape any ASCII punctuation; escaping all of it keeps an id's ``[ ] ( ) * _ ` < >``
# from being read as Markdown in the grid's link text.
_MARKDOWN_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def order_markdown_link(order_id: str, lang: str = DEFAULT_LANGUAGE) -> str:
    r"""The grid's Order cell: a Markdown link whose text is the id as written and whose target is encoded.

    >>> order_markdown_link("A[1](x)")
    '[A\\[1\\]\\(x\\)](/orders/A%5B1%5D%28x%29)'
    """
    text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", order_id)
    return f"[{text}]({order_href(order_id, lang)})"


def status_label(status: str, lang: str) -> str:
    return t(f"status.{status}", lang)


def card_label(card, lang: str) -> str:
    return t(f"clock.card.{card}", lang) if card else ""

