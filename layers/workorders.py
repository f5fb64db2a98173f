"""Work orders as a service: file a request, act on an order, read its timeline, keep the responsibility list.

This is the Python API that the Open311 GeoReport v2 endpoints and the operators' screens are built on. It has no
web framework in it; every function takes and returns plain values, and raises one of the errors below, each with
a message that names the problem and says what is allowed.

Writing
-------
Every change is ONE transaction that (1) updates the order row with ``UPDATE … WHERE order_id = :id AND version =
:expected`` (optimistic concurrency: two operators acting on the same version, one wins, the other gets a
:class:`VersionConflict` and nothing of theirs is written), (2) appends one row to the append-only log
``order_transitions`` (who, when, from, to, action, note, department, rules version; never updated or deleted,
except when a whole new city replaces every order), and (3) bumps the ``orders`` entry of ``layer_versions`` so the
dashboard's caches reload. Bad input raises :class:`InvalidRequest` naming the field before anything is written.

The lifecycle (statuses, actions, the allowed-transition table) is :mod:`layers.lifecycle`. What each action does
to the row is declared there too (``Action.stamps`` / ``Action.clears``), plus these rules kept here:

- stage times hold the last time the order entered the stage; a reopen clears ``handled_at``/``feedback_at`` (the
  handling that did not satisfy is in the log), counts ``reopen_count`` and gives the order a fresh deadline: the
  reopen time plus its event type's time limit;
- the deadline is set at intake (received + the type's time limit in the current list) and kept through
  re-dispatches: a dispute between units does not restart the citizen's clock;
- ``supervised_at`` is the first escalation to supervision; later escalations are logged only;
- ``on_time`` is known once handled (handled by the deadline);
- an order keeps the responsibility-list version it was (last) dispatched under (``rules_version``).

Dispatch
--------
By the list: the event type's department in the current version of the responsibility list. By place: the order's
point lies in a grid cell; :meth:`WorkOrders.place_of` gives that cell, its community and its street (office),
and the ``unit=`` filter of :meth:`WorkOrders.list_orders` finds a street office's orders. A "fast ruling"
(:meth:`WorkOrders.fast_ruling`) assigns a disputed (or new) event type to one department and writes version N+1
of the list; orders already dispatched keep their version.

Reading
-------
:meth:`WorkOrders.get`, :meth:`WorkOrders.list_orders` (filters, sort and paging done in SQL, with a total count),
:meth:`WorkOrders.timeline` (the log; orders generated or imported without a log get a timeline synthesised from
their stage times, marked ``source="row"``), :meth:`WorkOrders.responsibility_list`,
:meth:`WorkOrders.responsibility_versions`, :meth:`WorkOrders.open_orders_frame` (what the clocks of
:mod:`metrics.clocks` need for yellow/red cards and the supervision board).

>>> from layers.store import Store
>>> service = WorkOrders(Store("sqlite://"))       # doctest: +SKIP
>>> order = service.file_request(event_type="garbage_overflow", lon=114.06, lat=22.54,
...                              description="Bins overflowing", actor="12345 operator 7")   # doctest: +SKIP
>>> order = service.dispatch(order.order_id, expected_version=order.version, actor="dispatcher 2")  # doctest: +SKIP
>>> order.status, order.department, order.rules_version                                # doctest: +SKIP
('dispatched', 'Urban Management Bureau', 1)
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from layers import lifecycle, reference, store_health
from layers.city_settings import timezone as city_timezone
from layers.lifecycle import ACTIONS, MAX_REOPENS, OPEN_STATUSES, STATUSES, TransitionRefused
from layers.specs import ORDER_STAGES, ORDERS
from layers.store import METADATA, Store
from layers.store_health import StoreUnavailable

__all__ = [
    "WorkOrders", "Order", "OrderQuery", "OrderPage", "TimelineEntry", "Rule", "ResponsibilityList",
    "RulesVersion", "Place", "WorkOrderError", "InvalidRequest", "UnknownOrder", "VersionConflict",
    "TransitionRefused", "StoreUnavailable", "MAX_DESCRIPTION_CHARS", "MAX_NOTE_CHARS", "DEFAULT_CHANNEL",
]

MAX_DESCRIPTION_CHARS = 4_000
MAX_NOTE_CHARS = 4_000
MAX_ACTOR_CHARS = 200
MAX_REQUEST_KEY_CHARS = 300
MAX_PAGE_ROWS = 1_000
DEFAULT_CHANNEL = "hotline_12345"
DEFAULT_TIME_LIMIT_HOURS = 72  # for a type missing from the list version an order was dispatched under
ORDER_ID_PREFIX = "SZ"

STAGE_COLUMNS = tuple(f"{stage}_at" for stage in ORDER_STAGES)
TIME_COLUMNS = STAGE_COLUMNS + ("supervised_at", "deadline_at")
SORTABLE = frozenset(c.name for c in ORDERS.columns if c.name not in ("description", "address"))


# --- errors -------------------------------------------------------------------------------------------------------

class WorkOrderError(ValueError):
    """Base of the errors of this module. ``code`` is what an HTTP layer maps to a status."""

    code = "error"


class InvalidRequest(WorkOrderError):
    """Bad input (HTTP 400). ``field`` names what is wrong; nothing was stored."""

    code = "invalid"

    def __init__(self, field: str, message: str, message_id: str | None = None, **params):
        # message_id/params: the same refusal as a message id with its values, for screens in other languages
        self.field, self.message_id, self.params = field, message_id, params
        super().__init__(f"{field}: {message}")


class UnknownOrder(WorkOrderError, LookupError):
    """No order has this id (HTTP 404)."""

    code = "not_found"

    def __init__(self, order_id: str):
        self.order_id = order_id
        super().__init__(f"no work order {order_id!r}")


class VersionConflict(WorkOrderError):
    """Someone else acted on the order first (HTTP 409): reload it and decide again. Nothing was written."""

    code = "conflict"

    def __init__(self, order_id: str, expected: int, actual: int, last: TimelineEntry | None):
        self.order_id, self.expected, self.actual, self.last = order_id, expected, actual, last
        by = (f": {last.actor} did {last.action!r} at {last.at:%Y-%m-%d %H:%M:%S} (now {last.to_status})"
              if last is not None else "")
        super().__init__(f"order {order_id} changed since you loaded it (you had version {expected}, it is now "
                         f"version {actual}){by}; reload it and try again")


# --- values -------------------------------------------------------------------------------------------------------

def _from_epoch(seconds) -> pd.Timestamp | None:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return None
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").tz_convert(city_timezone())


def _to_epoch(instant) -> int:
    stamp = pd.Timestamp(instant)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(city_timezone())
    return int(stamp.tz_convert("UTC").timestamp())


@dataclass(frozen=True)
class Order:
    """One work order as stored. Times are tz-aware (Asia/Shanghai) or None; ``version`` is what to pass back as
    ``expected_version`` when acting on it."""

    order_id: str
    event_type: str
    channel: str
    department: str
    grid_code: str
    status: str
    received_at: pd.Timestamp
    dispatched_at: pd.Timestamp | None
    accepted_at: pd.Timestamp | None
    handled_at: pd.Timestamp | None
    feedback_at: pd.Timestamp | None
    evaluated_at: pd.Timestamp | None
    closed_at: pd.Timestamp | None
    supervised_at: pd.Timestamp | None
    deadline_at: pd.Timestamp
    satisfied: bool | None
    reopen_count: int
    on_time: bool | None
    lon: float
    lat: float
    description: str | None
    address: str | None
    version: int
    rules_version: int | None

    @classmethod
    def from_row(cls, row) -> Order:
        values = dict(row)
        for name in TIME_COLUMNS:
            values[name] = _from_epoch(values[name])
        for name in ("satisfied", "on_time"):
            values[name] = None if values[name] is None else bool(values[name])
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def allowed_actions(self) -> list[str]:
        """The actions the lifecycle allows now (``evaluate`` covers reopen: see :meth:`WorkOrders.evaluate`)."""
        allowed = lifecycle.allowed_actions(self.status)
        if "reopen" in allowed and self.reopen_count >= MAX_REOPENS:
            allowed.remove("reopen")
        return allowed

    def as_dict(self) -> dict:
        """JSON-ready: times as ISO 8601 strings with offset."""
        out = asdict(self)
        for name in TIME_COLUMNS:
            out[name] = None if out[name] is None else out[name].isoformat()
        return out


@dataclass(frozen=True)
class TimelineEntry:
    """One transition of an order. ``source`` is ``"log"`` (written by this module) or ``"row"`` (synthesised from
    the stage times of an order generated or imported without a log)."""

    seq: int
    at: pd.Timestamp
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str
    department: str | None
    rules_version: int | None
    satisfied: bool | None
    deadline_at: pd.Timestamp | None
    order_version: int | None
    source: str = "log"

    def as_dict(self) -> dict:
        out = asdict(self)
        for name in ("at", "deadline_at"):
            out[name] = None if out[name] is None else out[name].isoformat()
        return out


@dataclass(frozen=True)
class Rule:
    """One line of the responsibility list (职责清单)."""

    event_type: str
    category: str
    name: str
    name_zh: str
    department: str
    time_limit_hours: int


@dataclass(frozen=True)
class RulesVersion:
    version: int
    created_at: pd.Timestamp
    decided_by: str
    note: str
    changed_event_type: str | None


@dataclass(frozen=True)
class ResponsibilityList:
    """One version of the list: event type → rule."""

    version: int
    rules: dict[str, Rule]
    info: RulesVersion

    def rule(self, event_type: str) -> Rule:
        try:
            return self.rules[event_type]
        except KeyError:
            raise InvalidRequest("event_type", f"unknown event type {event_type!r}; the responsibility list "
                                               f"(version {self.version}) has {len(self.rules)} types, e.g. "
                                               f"{', '.join(sorted(self.rules)[:5])}") from None

    @property
    def departments(self) -> list[str]:
        return sorted({r.department for r in self.rules.values()})


@dataclass(frozen=True)
class Place:
    """Where an order is: its grid cell and the community, street (office) and district above it."""

    grid_code: str
    community_code: str | None
    street_code: str | None
    district_code: str | None


@dataclass(frozen=True)
class OrderQuery:
    """Filters, sort and page of :meth:`WorkOrders.list_orders`. Empty filters match everything; several values in
    one filter match any of them."""

    status: Sequence[str] = ()
    event_type: Sequence[str] = ()
    department: Sequence[str] = ()
    channel: Sequence[str] = ()
    unit: str | None = None                  # an administrative unit code: orders in its grid cells
    received_from: pd.Timestamp | None = None  # inclusive
    received_to: pd.Timestamp | None = None    # exclusive
    overdue_at: pd.Timestamp | None = None     # only orders with a red card at this instant (metrics/clocks.py)
    escalated: bool | None = None              # True: escalated to supervision; False: never escalated
    order_ids: Sequence[str] = ()
    sort: str = "received_at"
    descending: bool = True
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    total: int          # rows matching the filters, all pages together
    offset: int
    limit: int


class _StaleVersion(Exception):
    """The guarded update matched no row: the order moved on since it was read."""


# --- the service --------------------------------------------------------------------------------------------------

class WorkOrders:
    """Work orders in one store. Thread-safe; create one per process and share it.

    ``clock`` returns "now" (a tz-aware Timestamp); tests pass a frozen one. Every writing method also takes
    ``at=`` to record an explicit instant (imports, replays).
    """

    def __init__(self, store: Store, clock: Callable[[], pd.Timestamp] | None = None):
        self.store = store
        self.clock = clock or (lambda: pd.Timestamp.now(tz=city_timezone()))
        self.orders = METADATA.tables["orders"]
        self.transitions = METADATA.tables["order_transitions"]
        self.rules = METADATA.tables["responsibility_rules"]
        self.rule_versions = METADATA.tables["responsibility_versions"]
        self.layer_versions = METADATA.tables["layer_versions"]
        self._places_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._counts: dict[tuple, int] = {}
        self._places: tuple[int, shapely.STRtree, np.ndarray, dict[str, str | None]] | None = None
        store.create_schema()

    # --- intake -------------------------------------------------------------------------------------------------

    def file_request(self, *, event_type: str, lon: float | None, lat: float | None, description: str | None = "",
                     channel: str = DEFAULT_CHANNEL, address: str | None = None, actor: str = "intake",
                     at=None, auto_dispatch: bool = False) -> Order:
        """File a citizen's request: a new order in status ``received`` (and ``dispatched`` by the list when
        ``auto_dispatch``). Raises :class:`InvalidRequest` for an unknown event type or channel, a description over
        4,000 characters, or a location that is missing or outside the city's grid cells; :class:`StoreUnavailable`
        when the store does not answer (its ``outcome`` says whether the order may have been saved)."""
        return self._file_request(event_type=event_type, lon=lon, lat=lat, description=description,
                                  channel=channel, address=address, actor=actor, at=at,
                                  auto_dispatch=auto_dispatch, request_key=None)[0]

    def file_request_once(self, request_key: str, **request) -> tuple[Order, bool]:
        """:meth:`file_request` under a client's key for this one request: the first time it files the order and
        returns ``(order, True)``; the same key again returns ``(the order filed then, False)`` and writes nothing,
        so a client that lost our answer can send again without filing a duplicate."""
        key = _text("request_key", request_key, MAX_REQUEST_KEY_CHARS, required=True)
        return self._file_request(**request, request_key=key)

    def _file_request(self, *, event_type, lon, lat, description="", channel=DEFAULT_CHANNEL, address=None,
                      actor="intake", at=None, auto_dispatch=False, request_key=None) -> tuple[Order, bool]:
        actor = _text("actor", actor, MAX_ACTOR_CHARS, required=True)
        description = _text("description", description, MAX_DESCRIPTION_CHARS)
        address = _text("address", address, MAX_NOTE_CHARS) or None
        rules = self.responsibility_list()
        rule = rules.rule(_text("event_type", event_type, 200, required=True))
        if channel not in self.channels():
            raise InvalidRequest("channel", f"unknown channel {channel!r}; channels: {', '.join(self.channels())}")
        place = self.place_of(lon, lat)
        received = self._now(at)
        deadline = received + rule.time_limit_hours * 3600
        row = {c: None for c in STAGE_COLUMNS}
        row.update(event_type=rule.event_type, channel=channel, department="", grid_code=place.grid_code,
                   status="received", received_at=received, supervised_at=None, deadline_at=deadline, satisfied=None, reopen_count=0, on_time=None, lon=float(lon),
                   lat=float(lat), description=description or None, address=address, version=1,
                   rules_version=None)
        order, created = self._file(row, received, actor, request_key)
        if auto_dispatch and created:
            order = self.dispatch(order.order_id, expected_version=order.version, actor=actor,
                                  note="automatic dispatch by the responsibility list", at=at)
        return order, created

    def _file(self, row: dict, received: int, actor: str, request_key: str | None) -> tuple[Order, bool]:
        """The one write of an intake. The order's id is the day's next number: the transaction first bumps the
        orders' layer version (PostgreSQL: a row lock that queues concurrent intakes; SQLite: the write lock is
        taken at BEGIN), so the next number is read after the previous intake committed and two never take the
        same id. The unique index on the id stays the last guard (an import writing meanwhile): retried."""
        keys = METADATA.tables["request_keys"]
        for attempt in range(5):
            try:
                with self.store.write() as conn:
                    self._bump_orders_version(conn)
                    if request_key is not None:
                        known = conn.execute(select(keys.c.order_id).where(keys.c.request_key == request_key)
                                             ).scalar_one_or_none()
                        if known is not None:
                            conn.rollback()
                            return self.get(known), False
                    row["order_id"] = self._next_order_id(conn, received)
                    conn.execute(insert(self.orders), row)
                    self._log(conn, row, seq=1, at=received, actor=actor, action="file", from_status=None, note="")
                    if request_key is not None:
                        conn.execute(insert(keys), dict(request_key=request_key, order_id=row["order_id"],
                                                        created_at=received))
                break
            except IntegrityError:  # another intake took the id (or the key) meanwhile: read again
                if attempt == 4:
                    raise
            except StoreUnavailable as error:
                # The id is named so that an "unknown" outcome can be checked (GET it) before sending again.
                raise store_health.unavailable(error, order_id=row.get("order_id") if error.outcome == "unknown"
                                               else None) from error
        # Built from what was committed, not read back: once the commit returned, the answer is "filed" even if
        # the store stops answering right now.
        return Order.from_row(row), True

    # --- acting -------------------------------------------------------------------------------------------------

    def act(self, order_id: str, action: str, *, expected_version: int, actor: str, note: str = "",
            department: str | None = None, satisfied: bool | None = None, at=None) -> Order:
        """Apply ``action`` to the order if it is still at ``expected_version``; returns the order after it.

        Raises :class:`UnknownOrder`, :class:`VersionConflict` (someone acted first), :class:`TransitionRefused`
        (the lifecycle does not allow the action in the order's status), or :class:`InvalidRequest` (a missing
        note, an unknown department, …). On any error nothing is written.
        """
        actor = _text("actor", actor, MAX_ACTOR_CHARS, required=True)
        note = _text("note", note, MAX_NOTE_CHARS)
        if not isinstance(expected_version, (int, np.integer)) or isinstance(expected_version, bool):
            raise InvalidRequest("expected_version", f"must be the order's version (an integer), got "
                                                     f"{expected_version!r}")
        current = self._row(order_id)
        if current["version"] != expected_version:
            raise VersionConflict(order_id, int(expected_version), current["version"], self._last_entry(order_id))
        if action == "evaluate":
            if not isinstance(satisfied, (bool, np.bool_)):
                raise InvalidRequest("satisfied", "an evaluation says whether the citizen is satisfied (true/false)")
            if not satisfied and current["reopen_count"] < MAX_REOPENS:
                action = "reopen"  # the unsatisfied answer sends the order back to the unit (不满意重办)
        step = lifecycle.transition(current["status"], action, reopen_count=current["reopen_count"])
        spec = ACTIONS[action]
        if spec.note_required and not note:
            raise InvalidRequest("note", f"{action} needs a note saying why", "refusal.note_required", action=action)
        when = self._now(at)
        changes: dict = {"status": step.to_status, "version": current["version"] + 1}
        if spec.stamps and not (action == "escalate" and current["supervised_at"] is not None):
            changes[spec.stamps] = when
        for column in spec.clears:
            changes[column] = None
        if spec.needs_department:
            rules = self.responsibility_list()
            rules.rule(current["event_type"])  # a type removed from the list cannot be dispatched by it
            changes["department"] = self._department(department, rules, current["event_type"])
            changes["rules_version"] = rules.version
            if action == "redispatch" and changes["department"] == current["department"]:
                raise InvalidRequest("department", f"the order is already with {current['department']}; "
                                                   "re-dispatch it to another department", "refusal.same_department",
                                     department=current["department"])
        elif department is not None:
            raise InvalidRequest("department", f"{action} does not take a department", "refusal.no_department",
                                 action=action)
        if action == "handle":
            changes["on_time"] = when <= current["deadline_at"]
        if action in ("evaluate", "reopen"):
            changes["satisfied"] = bool(satisfied)
        if action == "reopen":
            changes["reopen_count"] = current["reopen_count"] + 1
            changes["on_time"] = None
            changes["deadline_at"] = when + self._time_limit_hours(current) * 3600
        after = {**current, **changes}
        try:
            with self.store.write() as conn:
                self._write_transition(conn, current, changes, after, when=when, actor=actor, action=action,
                                       note=note)
        except _StaleVersion:
            actual = self._row(order_id)["version"]
            raise VersionConflict(order_id, int(expected_version), actual, self._last_entry(order_id)) from None
        return Order.from_row(after)

    def _write_transition(self, conn, current: dict, changes: dict, after: dict, *, when: int, actor: str,
                          action: str, note: str) -> None:
        """The one write of an action, inside the caller's transaction: guarded row update, log row, layer
        version. Raises _StaleVersion when the row is no longer at the version read."""
        # The guard: only the version the operator saw may be changed. Whoever commits first wins; on PostgreSQL
        # the loser's UPDATE waits for the winner's row lock, then finds the version changed and matches nothing.
        result = conn.execute(update(self.orders)
                              .where(self.orders.c.order_id == current["order_id"],
                                     self.orders.c.version == current["version"])
                              .values(**changes))
        if result.rowcount != 1:
            raise _StaleVersion()
        seq = conn.execute(select(func.coalesce(func.max(self.transitions.c.seq), 0) + 1)
                           .where(self.transitions.c.order_id == current["order_id"])).scalar_one()
        history = []
        if seq == 1:
            # An order generated or imported without a log: its history so far (intake included) goes into the
            # log first, from its stage times, so that the log tells the whole story and replays to the order.
            history = _synthesised_timeline(Order.from_row(current))
            if history[-1].to_status != current["status"]:  # the stage times do not tell (a reopen clears them)
                history[-1] = replace(history[-1], to_status=current["status"])
            for entry in history:
                conn.execute(insert(self.transitions), dict(
                    order_id=current["order_id"], seq=entry.seq, at=_to_epoch(entry.at), actor=entry.actor,
                    action=entry.action, from_status=entry.from_status, to_status=entry.to_status,
                    note=entry.note, department=entry.department, rules_version=entry.rules_version,
                    satisfied=entry.satisfied, deadline_at=current["deadline_at"],
                    order_version=current["version"]))
            seq += len(history)
        self._log(conn, after, seq=seq, at=when, actor=actor, action=action, from_status=current["status"],
                  note=note)
        # One version step per log row: changed_since() counts on it to reload only the orders touched.
        self._bump_orders_version(conn, steps=1 + len(history))

    def escalate_overdue(self, now, *, actor: str, response_hours: float, notes: dict[str, str]) -> int:
        """The supervision sweep (督办) as one set-based write: every unhandled order never escalated that is past
        its deadline (note ``notes["overdue"]``) or still undispatched ``response_hours`` after intake
        (``notes["no_first_response"]``) is escalated, each with its own row in the log, exactly as
        :meth:`escalate` one by one would write them. Returns how many were escalated.

        One UPDATE and one INSERT … SELECT in one transaction (PostgreSQL: one statement, the UPDATE's RETURNING
        feeding the log), so memory does not grow with the number of orders and an order an operator changes
        meanwhile is judged on what it is at the moment of the write (the operator's change is kept). The orders'
        layer version moves by the number escalated, one step per log row like every other write."""
        actor = _text("actor", actor, MAX_ACTOR_CHARS, required=True)
        when = self._now(now)
        unhandled = sorted(lifecycle.UNHANDLED_STATUSES)
        params = dict(now=when, actor=actor, late=when - int(round(response_hours * 3600)),
                      overdue_note=notes["overdue"], response_note=notes["no_first_response"])
        status_list = ", ".join(f"'{s}'" for s in unhandled)  # constants of the lifecycle, not input
        red = (f"o.status IN ({status_list}) AND o.supervised_at IS NULL "
               f"AND (o.deadline_at <= :now OR (o.status = 'received' AND o.received_at <= :late))")
        columns = ("order_id, seq, at, actor, action, from_status, to_status, note, department, rules_version, "
                   "satisfied, deadline_at, order_version")
        logged = ("{a}.order_id, COALESCE((SELECT MAX(t.seq) FROM order_transitions t "
                  "WHERE t.order_id = {a}.order_id), 0) + 1, :now, :actor, 'escalate', {a}.status, {a}.status, "
                  "CASE WHEN {a}.deadline_at <= :now THEN :overdue_note ELSE :response_note END, "
                  "NULLIF({a}.department, ''), {a}.rules_version, {a}.satisfied, {a}.deadline_at, {version_after}")
        with self.store.write() as conn:
            if self.store.dialect == "postgresql":
                result = conn.execute(text(
                    f"WITH escalated AS (UPDATE orders o SET version = o.version + 1, supervised_at = :now "
                    f"WHERE {red} RETURNING o.order_id, o.status, o.department, o.rules_version, o.satisfied, "
                    f"o.deadline_at, o.version) "
                    f"INSERT INTO order_transitions ({columns}) SELECT {logged.format(a='e', version_after='e.version')} "
                    f"FROM escalated e "
                    f"ORDER BY e.order_id"), params)
            else:
                # BEGIN IMMEDIATE holds the write lock: nothing changes between the log's SELECT and the UPDATE.
                result = conn.execute(text(
                    f"INSERT INTO order_transitions ({columns}) SELECT {logged.format(a='o', version_after='o.version + 1')} "
                    f"FROM orders o "
                    f"WHERE {red} ORDER BY o.order_id"), params)
                updated = conn.execute(text(
                    f"UPDATE orders SET version = version + 1, supervised_at = :now "
                    f"WHERE order_id IN (SELECT o.order_id FROM orders o WHERE {red})"), params)
                if updated.rowcount != result.rowcount:
                    raise RuntimeError(f"the sweep logged {result.rowcount} escalations but updated "
                                       f"{updated.rowcount} orders; nothing was written")
            escalated = int(result.rowcount)
            if escalated:
                self._bump_orders_version(conn, steps=escalated)
        return escalated

    def dispatch(self, order_id: str, *, expected_version: int, actor: str, department: str | None = None,
                 note: str = "", at=None) -> Order:
        """Dispatch a received order: to ``department`` (by code or name), or by the responsibility list."""
        return self.act(order_id, "dispatch", expected_version=expected_version, actor=actor, note=note,
                        department=department, at=at)

    def redispatch(self, order_id: str, *, expected_version: int, actor: str, department: str, note: str,
                   at=None) -> Order:
        """Send a dispatched or accepted order to another department (manual re-dispatch; a note says why)."""
        return self.act(order_id, "redispatch", expected_version=expected_version, actor=actor, note=note,
                        department=department, at=at)

    def reject(self, order_id: str, *, expected_version: int, actor: str, note: str, at=None) -> Order:
        """The unit returns an order that is not theirs to the dispatch center (status back to received)."""
        return self.act(order_id, "reject", expected_version=expected_version, actor=actor, note=note, at=at)

    def accept(self, order_id: str, *, expected_version: int, actor: str, note: str = "", at=None) -> Order:
        return self.act(order_id, "accept", expected_version=expected_version, actor=actor, note=note, at=at)

    def handle(self, order_id: str, *, expected_version: int, actor: str, note: str = "", at=None) -> Order:
        return self.act(order_id, "handle", expected_version=expected_version, actor=actor, note=note, at=at)

    def reply(self, order_id: str, *, expected_version: int, actor: str, note: str = "", at=None) -> Order:
        """Feedback to the citizen (反馈)."""
        return self.act(order_id, "reply", expected_version=expected_version, actor=actor, note=note, at=at)

    def evaluate(self, order_id: str, *, expected_version: int, satisfied: bool, actor: str = "citizen",
                 note: str = "", at=None) -> Order:
        """The citizen's evaluation. Unsatisfied, the order is reopened (back to the unit, status ``accepted``)
        unless it was already reopened :data:`~layers.lifecycle.MAX_REOPENS` times; then the answer is recorded
        and the order waits to be closed."""
        return self.act(order_id, "evaluate", expected_version=expected_version, actor=actor, note=note,
                        satisfied=satisfied, at=at)

    def close(self, order_id: str, *, expected_version: int, actor: str, note: str = "", at=None) -> Order:
        return self.act(order_id, "close", expected_version=expected_version, actor=actor, note=note, at=at)

    def cancel(self, order_id: str, *, expected_version: int, actor: str, reason: str, at=None) -> Order:
        """Cancel a duplicate or invalid order that is not handled yet (the reason is required)."""
        return self.act(order_id, "cancel", expected_version=expected_version, actor=actor, note=reason, at=at)

    def escalate(self, order_id: str, *, expected_version: int, actor: str, note: str, at=None) -> Order:
        """Escalate an unhandled order to supervision (督办); its status does not change."""
        return self.act(order_id, "escalate", expected_version=expected_version, actor=actor, note=note, at=at)

    # --- reading ------------------------------------------------------------------------------------------------

    def get(self, order_id: str) -> Order:
        """The order, or :class:`UnknownOrder`."""
        return Order.from_row(self._row(order_id))

    def list_orders(self, query: OrderQuery = OrderQuery()) -> OrderPage:
        """One page of orders matching ``query``, sorted (then by id, so pages are stable), with the total count.

        Filtering, sorting, counting and paging run in SQL on indexed columns (status, event type, department,
        grid, received and deadline times), so a page of a city's millions of orders costs a page, not a load.
        """
        conditions = self._conditions(query)
        if query.sort not in SORTABLE:
            raise InvalidRequest("sort", f"cannot sort by {query.sort!r}; sortable: {', '.join(sorted(SORTABLE))}")
        if not (1 <= query.limit <= MAX_PAGE_ROWS):
            raise InvalidRequest("limit", f"a page has 1 to {MAX_PAGE_ROWS:,} rows, not {query.limit}")
        if query.offset < 0:
            raise InvalidRequest("offset", f"must be 0 or more, not {query.offset}")
        column = self.orders.c[query.sort]
        order_by = [column.desc() if query.descending else column.asc(),
                    self.orders.c.order_id.desc() if query.descending else self.orders.c.order_id.asc()]
        count = select(func.count()).select_from(self.orders).where(*conditions)
        with self.store.engine.connect() as conn:
            total = self._count(conn, count)
            if self._walk_the_sort_index(conn, query, total):
                conditions = self._conditions(query, indexable=False)
            page = select(self.orders).where(*conditions).order_by(*order_by).offset(query.offset).limit(query.limit)
            rows = conn.execute(page).mappings().all()
        return OrderPage([Order.from_row(r) for r in rows], int(total), query.offset, query.limit)

    def _walk_the_sort_index(self, conn, query: OrderQuery, matching: int) -> bool:
        """Whether SQLite should find a page by walking the sort's index and testing each order against the
        filters, rather than by a filter's index and a sort of everything it matches.

        SQLite's planner takes any index on a filtered column, so "closed" meant sorting 2.7 million orders (4.3 s
        at the city scale). Walking visits about (offset + limit) × all / matching orders; the filter's index visits
        the ``matching`` ones and sorts them: walk when that is less. PostgreSQL's planner has statistics and
        decides for itself."""
        if self.store.engine.dialect.name != "sqlite" or query.sort not in ("received_at", "deadline_at"):
            return False
        if not matching:
            return False
        everything = self._count(conn, select(func.count()).select_from(self.orders))
        return (query.offset + query.limit) * everything < matching * matching

    def _count(self, conn, count) -> int:
        """The count of a filtered list, remembered until the orders change: every block of a scrolled list asks
        for it, and counting a city's 3 million orders is a scan (0.4 s) while a page is not."""
        compiled = count.compile(dialect=self.store.engine.dialect, compile_kwargs={"render_postcompile": True})
        version = conn.execute(select(self.layer_versions.c.version)
                               .where(self.layer_versions.c.layer_id == "orders")).scalar()
        key = (str(compiled), tuple(sorted(compiled.params.items())), version)
        with self._counts_lock:
            if key in self._counts:
                return self._counts[key]
        total = int(conn.execute(count).scalar_one())
        with self._counts_lock:
            if len(self._counts) >= 256:
                self._counts.clear()
            self._counts[key] = total
        return total

    def timeline(self, order_id: str) -> list[TimelineEntry]:
        """Every transition of the order, oldest first. An order without a log (generated or imported) gets one
        entry per stage time it has, ``source="row"``."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(self.transitions).where(self.transitions.c.order_id == order_id)
                                .order_by(self.transitions.c.seq)).mappings().all()
        if not rows:
            return _synthesised_timeline(self.get(order_id))
        logged = [_entry(r) for r in rows]
        if logged[0].action != "file":
            # Logged before its history was written with the first action (see _write_transition): what came
            # before the first logged action, from the stage times, so that the timeline keeps its start.
            logged = _history_before(self.get(order_id), logged[0]) + logged
        return logged

    def rebuilt_order(self, order_id: str) -> dict:
        """The order's lifecycle columns rebuilt from its log alone (:func:`replay`): equal to what is stored."""
        return replay(self.timeline(order_id))

    def last_transition(self) -> int:
        """The id of the newest row of the transition log (0 for none): a mark to ask :meth:`changed_since`."""
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(self.transitions.c.transition_id), 0)))
                       .scalar_one())

    def changed_since(self, mark: int) -> tuple[list[str], int, int]:
        """The orders acted on (or filed) after the log row ``mark``: their ids, the new mark and the number of
        log rows after ``mark``. Every write of this module is one log row and one step of the orders' layer
        version, so a caller that sees the version move by exactly that many knows these orders are all that
        changed (an import that replaced the orders would not add up)."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(self.transitions.c.transition_id, self.transitions.c.order_id)
                                .where(self.transitions.c.transition_id > mark)).all()
        newest = max((r[0] for r in rows), default=mark)
        return sorted({r[1] for r in rows}), newest, len(rows)

    def open_orders_frame(self, statuses: Iterable[str] = OPEN_STATUSES) -> pd.DataFrame:
        """The orders in ``statuses`` (default: every open one) as a frame of the orders layer's columns, times
        tz-aware, for the clocks of :mod:`metrics.clocks`. Open orders are a small part of all orders: read by the
        status index, not a load of the city."""
        from layers.load import decode_frame  # local: load imports the store, as this module does

        statuses = _known_values("status", statuses, STATUSES)
        names = [c.name for c in ORDERS.columns if c.name not in ("description", "address")]
        raw = self.store.read_frame("orders", names, where=lambda t: t.c.status.in_(statuses))
        return pd.DataFrame(decode_frame(ORDERS, raw))

    @staticmethod
    def open_orders_in(orders: pd.DataFrame) -> pd.DataFrame | None:
        """What :meth:`open_orders_frame` reads from the store, taken from an orders layer already loaded at the
        store's version instead (the same rows and columns); None when the frame lacks a column."""
        names = [c.name for c in ORDERS.columns if c.name not in ("description", "address")]
        if not set(names) <= set(orders.columns):
            return None
        return orders.loc[orders["status"].isin(list(OPEN_STATUSES)), names].reset_index(drop=True)

    def channels(self) -> list[str]:
        """Intake channel codes: the reference list and the stored channels layer."""
        stored = self.store.read_frame("channels", ["code"])["code"].tolist()
        return list(dict.fromkeys([c[0] for c in reference.CHANNELS] + stored))

    # --- place --------------------------------------------------------------------------------------------------

    def place_of(self, lon, lat) -> Place:
        """The grid cell (and its community, street and district) that holds the point; :class:`InvalidRequest`
        when the location is missing, not a number, or outside the city's grid cells."""
        for name, value, low, high in (("lon", lon, -180, 180), ("lat", lat, -90, 90)):
            if value is None or (isinstance(value, str) and not value.strip()):
                raise InvalidRequest("location", f"a location is required ({name} is missing)")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InvalidRequest("location", f"{name} must be a number, not {value!r}") from None
            if not math.isfinite(number) or not (low <= number <= high):
                raise InvalidRequest("location", f"{name} {value!r} is not a coordinate (WGS 84 degrees)")
        tree, codes, parents = self._grid_index()
        hits = tree.query(shapely.Point(float(lon), float(lat)), predicate="intersects")
        if len(hits) == 0:
            raise InvalidRequest("location", f"({float(lon):.6f}, {float(lat):.6f}) is outside the city: "
                                             "no grid cell holds it")
        grid = str(codes[int(min(hits))])
        community = parents.get(grid)
        street = parents.get(community) if community else None
        district = parents.get(street) if street else None
        return Place(grid, community, street, district)

    def warm(self) -> None:
        """Build the index of grid cells that places a request and filters a list by unit (seconds at the city
        scale), before the first request needs it."""
        self._grid_index()

    def _grid_index(self):
        version = self.store.layer_version("units")
        with self._places_lock:
            if self._places is None or self._places[0] != version:
                units = self.store.read_frame("units", ["code", "level", "parent_code", "geometry"])
                parents = dict(zip(units["code"], units["parent_code"]))
                grids = units[units["level"] == "grid"]
                geometries = shapely.from_wkb(grids["geometry"].to_numpy())
                # Each unit's grid cells, for the list's unit filter (one walk up from every cell, once).
                cells_under: dict[str, list[str]] = {}
                for code in grids["code"]:
                    node = code
                    while node is not None:
                        cells_under.setdefault(node, []).append(str(code))
                        node = parents.get(node)
                self._places = (version, shapely.STRtree(geometries), grids["code"].to_numpy(), parents, cells_under)
            return self._places[1:4]

    def _grid_codes_under(self, unit: str) -> list[str]:
        _tree, _codes, parents = self._grid_index()
        if unit not in parents:
            raise InvalidRequest("unit", f"unknown administrative unit {unit!r}")
        with self._places_lock:
            return self._places[4].get(unit, [])

    # --- the responsibility list ----------------------------------------------------------------------------------

    def responsibility_list(self, version: int | None = None) -> ResponsibilityList:
        """The list at ``version`` (default: the current, highest one). Seeded as version 1 from the stored
        ``event_types`` layer (else :data:`layers.reference.EVENT_TYPES`) the first time it is asked for."""
        if version is None:
            version = self._current_rules_version()
            if version == 0:
                self.reset_responsibility_list(decided_by="citytwin",
                                               note="version 1: the responsibility list as stored (event_types)")
                version = 1
        with self.store.engine.connect() as conn:
            info = conn.execute(select(self.rule_versions).where(self.rule_versions.c.version == version)
                                ).mappings().one_or_none()
            if info is None:
                raise InvalidRequest("version", f"the responsibility list has no version {version}")
            rows = conn.execute(select(self.rules).where(self.rules.c.version == version)).mappings().all()
        rules = {r["event_type"]: Rule(r["event_type"], r["category"], r["name"], r["name_zh"], r["department"],
                                       int(r["time_limit_hours"])) for r in rows}
        return ResponsibilityList(version, rules, _rules_version(info))

    def responsibility_versions(self) -> list[RulesVersion]:
        """Every version of the list, oldest first (who decided what, when)."""
        self.responsibility_list()  # seeds version 1 if needed
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(self.rule_versions).order_by(self.rule_versions.c.version)).mappings().all()
        return [_rules_version(r) for r in rows]

    def reset_responsibility_list(self, *, decided_by: str, note: str,
                                  event_types: pd.DataFrame | None = None) -> ResponsibilityList:
        """Replace every version with version 1 = ``event_types`` (the ``event_types`` layer's columns), default
        the stored layer, else :data:`layers.reference.EVENT_TYPES`. For a new city (the sample build)."""
        if event_types is None:
            event_types = self.store.read_frame("event_types")
        if event_types.empty:
            event_types = pd.DataFrame(
                [(code, category, name, name_zh, reference.DEPARTMENTS[dept][0], limit)
                 for code, category, name, name_zh, dept, limit, *_rest in reference.EVENT_TYPES],
                columns=["code", "category", "name", "name_zh", "department", "time_limit_hours"])
        rows = [dict(version=1, event_type=str(r.code), category=str(r.category), name=str(r.name),
                     name_zh=str(r.name_zh), department=str(r.department), time_limit_hours=int(r.time_limit_hours))
                for r in event_types.itertuples()]
        with self.store.engine.begin() as conn:
            conn.execute(delete(self.rules))
            conn.execute(delete(self.rule_versions))
            conn.execute(insert(self.rule_versions), dict(version=1, created_at=int(time.time()),
                                                          decided_by=decided_by, note=note, changed_event_type=None))
            conn.execute(insert(self.rules), rows)
        return self.responsibility_list(1)

    def fast_ruling(self, event_type: str, department: str, *, decided_by: str, note: str,
                    time_limit_hours: int | None = None, name: str | None = None, name_zh: str | None = None,
                    category: str | None = None, at=None) -> ResponsibilityList:
        """A fast ruling (快速裁定): ``event_type`` belongs to ``department`` from now on. Writes version N+1 of the
        list (a copy of N with this one line changed or added) and returns it. A new event type needs a ``name``
        and a ``time_limit_hours``. Orders keep the version they were dispatched under; re-dispatch one to apply the
        ruling to it."""
        decided_by = _text("decided_by", decided_by, MAX_ACTOR_CHARS, required=True)
        note = _text("note", note, MAX_NOTE_CHARS, required=True)
        event_type = _text("event_type", event_type, 200, required=True)
        current = self.responsibility_list()
        department = self._department(department, current, None)
        old = current.rules.get(event_type)
        if old is None and (not name or time_limit_hours is None):
            raise InvalidRequest("event_type", f"{event_type!r} is not in the list: a new type needs a name and a "
                                               "time limit (time_limit_hours)")
        if time_limit_hours is not None and (not isinstance(time_limit_hours, (int, np.integer))
                                             or isinstance(time_limit_hours, bool) or time_limit_hours <= 0):
            raise InvalidRequest("time_limit_hours", f"must be a whole number of hours above 0, not "
                                                     f"{time_limit_hours!r}")
        if category is not None and category not in reference.CATEGORIES and category != (old and old.category):
            raise InvalidRequest("category", f"unknown category {category!r}; categories: "
                                             f"{', '.join(reference.CATEGORIES)}")
        new_rule = Rule(event_type, category or (old.category if old else "other"),
                        name or old.name, name_zh or (old.name_zh if old else name or old.name), department,
                        int(time_limit_hours) if time_limit_hours is not None else old.time_limit_hours)
        if old == new_rule:
            raise InvalidRequest("department", f"{event_type!r} already belongs to {department} with these values "
                                               f"in version {current.version}: nothing to rule")
        rules = {**current.rules, event_type: new_rule}
        version = current.version + 1
        with self.store.engine.begin() as conn:
            # The primary key on the version makes two simultaneous rulings on version N fail but one.
            conn.execute(insert(self.rule_versions), dict(version=version, created_at=self._now(at),
                                                          decided_by=decided_by, note=note,
                                                          changed_event_type=event_type))
            conn.execute(insert(self.rules), [dict(version=version, **asdict(r)) for r in rules.values()])
        return self.responsibility_list(version)

    # --- internals ----------------------------------------------------------------------------------------------

    def _now(self, at) -> int:
        return _to_epoch(self.clock() if at is None else at)

    def _row(self, order_id: str) -> dict:
        if not isinstance(order_id, str) or not order_id:
            raise InvalidRequest("order_id", f"an order id is a non-empty text, not {order_id!r}")
        with self.store.engine.connect() as conn:
            row = conn.execute(select(self.orders).where(self.orders.c.order_id == order_id)).mappings().first()
        if row is None:
            raise UnknownOrder(order_id)
        return dict(row)

    def _last_entry(self, order_id: str) -> TimelineEntry | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(self.transitions).where(self.transitions.c.order_id == order_id)
                               .order_by(self.transitions.c.seq.desc()).limit(1)).mappings().first()
        return None if row is None else _entry(row)

    def _current_rules_version(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(self.rule_versions.c.version), 0))).scalar_one())

    def _department(self, department: str | None, rules: ResponsibilityList, event_type: str | None) -> str:
        """A department name: the given one (by code or name), or the list's for ``event_type``."""
        if department is None or (isinstance(department, str) and not department.strip()):
            if event_type is None:
                raise InvalidRequest("department", "a department is required", "refusal.department_required")
            return rules.rule(event_type).department
        names = {code: names[0] for code, names in reference.DEPARTMENTS.items()}
        known = sorted(set(names.values()) | set(rules.departments))
        department = names.get(department.strip(), department.strip())
        if department not in known:
            raise InvalidRequest("department", f"unknown department {department!r}; departments: "
                                               f"{', '.join(known)}", "refusal.unknown_department",
                                 department=department)
        return department

    def _time_limit_hours(self, current: dict) -> int:
        version = current["rules_version"]
        rules = self.responsibility_list(version) if version else self.responsibility_list()
        rule = rules.rules.get(current["event_type"])
        return rule.time_limit_hours if rule else DEFAULT_TIME_LIMIT_HOURS

    def _conditions(self, query: OrderQuery, indexable: bool = True) -> list:
        """The query's filters as SQL conditions. Not ``indexable``, the filtered columns are wrapped (``x || ''``,
        the same values) so that SQLite cannot use their indexes and walks the sort's (see _walk_the_sort_index)."""
        c = self.orders.c
        column = (lambda name: c[name]) if indexable else (lambda name: c[name].concat(""))
        conditions = []
        for name, values, known in (("status", query.status, STATUSES), ("event_type", query.event_type, None),
                                    ("department", query.department, None), ("channel", query.channel, None)):
            values = [values] if isinstance(values, str) else list(values)
            if values:
                conditions.append(column(name).in_(_known_values(name, values, known)))
        order_ids = [query.order_ids] if isinstance(query.order_ids, str) else list(query.order_ids)
        if order_ids:
            conditions.append(c.order_id.in_(order_ids))
        if query.unit is not None:
            _tree, _codes, parents = self._grid_index()
            if parents.get(query.unit, "") is None:  # the city itself: every order
                pass
            else:
                conditions.append(column("grid_code").in_(self._grid_codes_under(query.unit)))
        if query.received_from is not None:
            conditions.append(c.received_at >= _to_epoch(query.received_from))
        if query.received_to is not None:
            conditions.append(c.received_at < _to_epoch(query.received_to))
        if query.overdue_at is not None:  # a red card (metrics/clocks.py): at or past the deadline, or no response
            instant = _to_epoch(query.overdue_at)
            conditions += [column("status").in_(sorted(lifecycle.UNHANDLED_STATUSES)),
                           or_(c.deadline_at <= instant,
                               and_(column("status") == "received",
                                    c.received_at <= instant - lifecycle.RESPONSE_HOURS * 3600))]
        if query.escalated is not None:
            conditions.append(c.supervised_at.isnot(None) if query.escalated else c.supervised_at.is_(None))
        return conditions

    def _next_order_id(self, conn, received: int) -> str:
        day = _from_epoch(received).strftime("%Y%m%d")
        prefix = f"{ORDER_ID_PREFIX}{day}"
        last = conn.execute(select(func.max(self.orders.c.order_id))
                            .where(self.orders.c.order_id >= prefix, self.orders.c.order_id < prefix + "~")
                            ).scalar_one_or_none()
        number = int(last[len(prefix):]) + 1 if last and last[len(prefix):].isdigit() else 1
        return f"{prefix}{number:07d}"

    def _log(self, conn, row: dict, *, seq: int, at: int, actor: str, action: str, from_status: str | None,
             note: str) -> None:
        conn.execute(insert(self.transitions), dict(
            order_id=row["order_id"], seq=seq, at=at, actor=actor, action=action, from_status=from_status,
            to_status=row["status"], note=note, department=row["department"] or None,
            rules_version=row["rules_version"], satisfied=row["satisfied"], deadline_at=row["deadline_at"],
            order_version=row["version"]))

    def _bump_orders_version(self, conn, steps: int = 1) -> None:
        """Count the change in ``layer_versions`` (the dashboard reloads the orders when it changes): one step per
        row written to the log."""
        versions = self.layer_versions
        bumped = conn.execute(update(versions).where(versions.c.layer_id == "orders").values(
            version=versions.c.version + steps, written_at=int(time.time()), source="layers.workorders"))
        if bumped.rowcount == 0:
            rows = conn.execute(select(func.count()).select_from(self.orders)).scalar_one()
            conn.execute(insert(versions), dict(layer_id="orders", version=steps, rows=rows,
                                                written_at=int(time.time()), source="layers.workorders"))


# --- replaying the log --------------------------------------------------------------------------------------------

def replay(entries: Sequence[TimelineEntry]) -> dict:
    """The lifecycle columns of an order rebuilt from its transitions alone: status, stage times, supervised_at,
    department, rules_version, satisfied, reopen_count, on_time, deadline_at, version."""
    if not entries:
        raise ValueError("an empty log: an order's log starts with its intake (file)")
    if entries[0].action != "file":
        raise ValueError(f"the log starts with {entries[0].action!r}, not with the intake (file): take the "
                         f"entries from WorkOrders.timeline(), which completes such a log from the stage times")
    state: dict = {c: None for c in STAGE_COLUMNS + ("supervised_at",)}
    state.update(status=None, department=None, rules_version=None, satisfied=None, reopen_count=0, on_time=None,
                 deadline_at=None, version=None)
    for entry in entries:
        if entry.from_status != state["status"]:
            raise ValueError(f"entry {entry.seq} starts from {entry.from_status!r}, the order was {state['status']!r}")
        action = ACTIONS[entry.action]
        if action.stamps and not (entry.action == "escalate" and state["supervised_at"] is not None):
            state[action.stamps] = entry.at
        for column in action.clears:
            state[column] = None
        if entry.action == "reopen":
            state["reopen_count"] += 1
            state["on_time"] = None
        state["deadline_at"] = entry.deadline_at
        if entry.action == "handle":
            state["on_time"] = entry.at <= state["deadline_at"]
        state.update(status=entry.to_status, department=entry.department or "", rules_version=entry.rules_version,
                     satisfied=entry.satisfied, version=entry.order_version)
    return state


def _entry(row) -> TimelineEntry:
    return TimelineEntry(seq=int(row["seq"]), at=_from_epoch(row["at"]), actor=row["actor"], action=row["action"],
                         from_status=row["from_status"], to_status=row["to_status"], note=row["note"],
                         department=row["department"], rules_version=row["rules_version"],
                         satisfied=None if row["satisfied"] is None else bool(row["satisfied"]),
                         deadline_at=_from_epoch(row["deadline_at"]), order_version=int(row["order_version"]))


def _synthesised_timeline(order: Order) -> list[TimelineEntry]:
    """Entries for the stage times of an order that has no log (generated or imported): what happened and when,
    without who (``actor`` "unknown") nor intermediate reopens."""
    marks = [(order.received_at, "file")]
    for stage, action in (("dispatched_at", "dispatch"), ("accepted_at", "accept"), ("handled_at", "handle"),
                          ("feedback_at", "reply"), ("evaluated_at", "evaluate"), ("supervised_at", "escalate"),
                          ("closed_at", "cancel" if order.status == "cancelled" else "close")):
        when = getattr(order, stage)
        if when is not None:
            marks.append((when, action))
    marks.sort(key=lambda mark: mark[0])
    entries, status = [], None
    for seq, (when, action) in enumerate(marks, start=1):
        after = "received" if action == "file" else lifecycle.TRANSITIONS.get((status, action), status)
        entries.append(TimelineEntry(seq, when, "unknown", action, status, after, "", order.department or None,
                                     order.rules_version, order.satisfied if action == "evaluate" else None,
                                     order.deadline_at, None, source="row"))
        status = after
    return entries


def _history_before(order: Order, first: TimelineEntry) -> list[TimelineEntry]:
    """The stage-time entries of ``order`` before the ``first`` logged one, ending in the status it started from
    (an order whose log lacks its intake: the intake, then what the stage times say happened before the log)."""
    earlier = [e for e in _synthesised_timeline(order) if e.at < first.at or e.action == "file"]
    if earlier and earlier[-1].to_status != first.from_status:
        # The stage times do not say how the order got there (a reopen clears them): the last known step is
        # taken to have led to the status the log starts from.
        earlier[-1] = replace(earlier[-1], to_status=first.from_status)
    return earlier


def _rules_version(row) -> RulesVersion:
    return RulesVersion(int(row["version"]), _from_epoch(row["created_at"]), row["decided_by"], row["note"],
                        row["changed_event_type"])


def _text(name: str, value, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidRequest(name, f"must be text, not {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise InvalidRequest(name, "is required", "refusal.required")
    if len(value) > limit:
        raise InvalidRequest(name, f"is {len(value):,} characters long; at most {limit:,} are allowed",
                             "refusal.too_long", length=len(value), limit=limit)
    return value


def _known_values(name: str, values: Iterable[str], known: Iterable[str] | None) -> list[str]:
    values = [values] if isinstance(values, str) else list(values)
    if known is not None:
        unknown = [v for v in values if v not in set(known)]
        if unknown:
            raise InvalidRequest(name, f"unknown value(s) {', '.join(map(repr, unknown))}; known: "
                                       f"{', '.join(known)}")
    return values
