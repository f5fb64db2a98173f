"""What the Open311 endpoints say, as plain dicts: services, service definitions, requests, discovery.

No Flask here: :mod:`dashboard.open311.views` reads the work orders and renders these records as JSON or XML
(:mod:`dashboard.open311.formats`).

Status mapping. GeoReport v2 knows two statuses; an order has seven stages (plus cancelled). Every stage of
:data:`layers.lifecycle.OPEN_STATUSES` is ``open``, the final ones (closed, cancelled) are ``closed``; the stage itself
is told in words in ``status_notes`` and as data in the extension fields below.

Extension fields (the public schemas allow properties they do not name; in XML they are elements in the namespace
:data:`NAMESPACE`, prefix ``citytwin``):

``citytwin:stage``         the order's status (received, dispatched, accepted, handled, feedback, evaluated, closed,
                           cancelled)
``citytwin:department``    the department the order is with (empty until dispatched; also ``agency_responsible``)
``citytwin:version``       the order's version: +1 on every action (what an operator passes back to act on it)
``citytwin:channel``       the intake channel
``citytwin:grid_code``     the grid cell that holds the location
``citytwin:reopen_count``  times the citizen's unsatisfied evaluation sent the order back
``citytwin:escalated``     escalated to supervision (督办)
``citytwin:satisfied``     the citizen's evaluation (null until evaluated)
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from layers import reference
from layers.lifecycle import OPEN_STATUSES
from layers.workorders import Order, ResponsibilityList, Rule

NAMESPACE = "https://citytwin.example.org/open311/extensions"
PREFIX = "citytwin"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-22T00:00:00+08:00"  # when the service list's shape (not its contents) last changed
MAX_DESCRIPTION_CHARS = 4_000

STAGE_NUMBERS = {status: n for n, status in enumerate(
    ("received", "dispatched", "accepted", "handled", "feedback", "evaluated", "closed"), start=1)}


# --- attributes of every service ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attribute:
    """One attribute of a service definition (the same ones for every service)."""

    code: str
    datatype: str            # string | text | singlevaluelist
    label: str               # how the value is introduced in the stored description
    description: str
    datatype_description: str
    max_chars: int = 0       # for string/text
    values: tuple[tuple[str, str], ...] = ()  # (key, name) for singlevaluelist
    required: bool = False

    def as_record(self, order: int) -> dict:
        record = {"variable": True, "code": self.code, "datatype": self.datatype, "required": self.required,
                  "datatype_description": self.datatype_description, "order": order,
                  "description": self.description}
        if self.values:
            record["values"] = [{"key": key, "name": name} for key, name in self.values]
        return record


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("urgency", "singlevaluelist", "Urgency",
              "How urgent is it? Choose the closest.",
              "One of the listed keys.",
              values=(("danger", "Danger to people now"), ("today", "Needs attention today"),
                      ("normal", "Normal"), ("low", "Low: whenever possible"))),
    Attribute("location_detail", "string", "Where exactly",
              "Where exactly: building, floor, entrance, landmark.",
              "Text, at most 200 characters.", max_chars=200),
    Attribute("recurring", "singlevaluelist", "Seen before",
              "Has this happened here before?",
              "One of the listed keys.",
              values=(("first", "First time"), ("again", "It happened before"), ("ongoing", "It goes on"))),
)
"""Every service has these attributes (GET services/{code}). Posted values (``attribute[code]=key``) are checked and
written at the end of the order's description, one line each: the work-order core keeps no other free field, and
the description is what the handling unit reads."""

ATTRIBUTES_BY_CODE = {a.code: a for a in ATTRIBUTES}


def attribute_lines(values: dict[str, str]) -> str:
    """The text appended to the description for posted attribute values (already checked), in attribute order."""
    lines = []
    for attribute in ATTRIBUTES:
        if attribute.code in values:
            value = values[attribute.code]
            shown = dict(attribute.values).get(value, value) if attribute.values else value
            lines.append(f"{attribute.label}: {shown}")
    return "\n".join(lines)


# --- services -----------------------------------------------------------------------------------------------------

def service_record(rule: Rule) -> dict:
    """One service of the list: the public part of one line of the responsibility list."""
    group = reference.CATEGORIES.get(rule.category, (rule.category,))[0]
    return {
        "service_code": rule.event_type,
        "service_name": rule.name,
        "description": f"{rule.name} ({rule.name_zh}): handled by {rule.department} within "
                       f"{rule.time_limit_hours} hours.",
        "metadata": True,
        "type": "realtime",
        "keywords": ", ".join(dict.fromkeys(k for k in (rule.name_zh, rule.category, group, rule.department) if k)),
        "group": group,
    }


def service_records(rules: ResponsibilityList) -> list[dict]:
    return [service_record(rules.rules[code]) for code in sorted(rules.rules)]


def service_definition(rule: Rule) -> dict:
    return {"service_code": rule.event_type,
            "attributes": [a.as_record(n) for n, a in enumerate(ATTRIBUTES, start=1)]}


# --- requests -----------------------------------------------------------------------------------------------------

def iso(instant: pd.Timestamp | None) -> str | None:
    """ISO 8601 / RFC 3339 with the city's offset, to the second."""
    return None if instant is None else instant.floor("s").isoformat()


def open311_status(status: str) -> str:
    return "open" if status in OPEN_STATUSES else "closed"


def status_notes(order: Order) -> str:
    """The stage in words: what happened last and what the order waits for."""
    department = order.department or "the responsible department"
    stage = STAGE_NUMBERS.get(order.status)
    where = f"Stage {stage} of {len(STAGE_NUMBERS)}: {order.status}." if stage else f"Stage: {order.status}."
    reopened = (f"; reopened {order.reopen_count} time{'s' if order.reopen_count > 1 else ''} after an "
                "unsatisfied evaluation" if order.reopen_count else "")
    evaluation = {True: "the citizen was satisfied", False: "the citizen was not satisfied",
                  None: "the citizen did not evaluate it"}[order.satisfied]
    text = {
        "received": "Received; waiting to be dispatched",
        "dispatched": f"Dispatched to {department}; waiting for the unit to accept it",
        "accepted": f"Accepted by {department}; being handled",
        "handled": f"Handled by {department}; the reply to the citizen is being prepared",
        "feedback": f"{department} replied to the citizen; waiting for the citizen's evaluation",
        "evaluated": f"Evaluated ({evaluation}); waiting to be closed",
        "closed": f"Closed ({evaluation})",
        "cancelled": "Cancelled as a duplicate or invalid request",
    }.get(order.status, order.status)
    escalated = "; escalated to supervision" if order.supervised_at is not None and order.is_open else ""
    return f"{text}{reopened}{escalated}. {where}"


def service_notice(rule: Rule | None) -> str | None:
    if rule is None:
        return None
    return f"Handled by {rule.department} within {rule.time_limit_hours} hours of receipt."


def request_record(order: Order, rule: Rule | None) -> dict:
    """One service request (GET requests, GET requests/{id}) from one work order."""
    times = [t for t in (order.received_at, order.dispatched_at, order.accepted_at, order.handled_at,
                         order.feedback_at, order.evaluated_at, order.closed_at, order.supervised_at) if t is not None]
    return {
        "service_request_id": order.order_id,
        "status": open311_status(order.status),
        "status_notes": status_notes(order),
        "service_name": rule.name if rule else None,
        "service_code": order.event_type,
        "description": order.description,
        "agency_responsible": order.department or None,
        "service_notice": service_notice(rule),
        "requested_datetime": iso(order.received_at),
        "updated_datetime": iso(max(times)),
        "expected_datetime": iso(order.deadline_at),
        "address": order.address,
        "address_id": None,
        "zipcode": None,
        "lat": float(order.lat),
        "long": float(order.lon),
        "media_url": None,
        f"{PREFIX}:stage": order.status,
        f"{PREFIX}:department": order.department or None,
        f"{PREFIX}:version": int(order.version),
        f"{PREFIX}:channel": order.channel,
        f"{PREFIX}:grid_code": order.grid_code,
        f"{PREFIX}:reopen_count": int(order.reopen_count),
        f"{PREFIX}:escalated": order.supervised_at is not None,
        f"{PREFIX}:satisfied": order.satisfied,
    }


def created_record(order: Order, rule: Rule) -> dict:
    """The answer to a POST: the new request's id and what will happen to it (no accounts: account_id is null)."""
    return {
        "service_request_id": order.order_id,
        "service_notice": (f"Received as work order {order.order_id}. {service_notice(rule)[:-1]}, by "
                           f"{order.deadline_at:%Y-%m-%d %H:%M} (Shenzhen time)."),
        "account_id": None,
    }


def discovery_record(base_url: str) -> dict:
    return {
        "changeset": CHANGESET,
        "contact": "The city's 12345 citizen hotline operators (citytwin).",
        "key_service": "API keys are issued by the city's operators (an admin of the dashboard, /admin/api-keys).",
        "endpoints": [{"specification": SPECIFICATION, "url": base_url, "changeset": CHANGESET,
                       "type": "production", "formats": ["text/xml", "application/json"]}],
    }
