"""Alerts as a service, like work orders (:mod:`layers.workorders`): the lifecycle as data, an append-only log, and
one transaction per action with optimistic concurrency.

    firing ──acknowledge──▶ acknowledged ──assign──▶ assigned ──resolve──▶ resolved
       │ └──────────────assign──────────────────────▲    ▲
       └──────────────────────resolve───────────────┴────┘   (from any open status; by hand with a note, or by
                                                              the rule once clear for its keep-firing time)

- **fire**: a rule's condition held at a place for its pending period (:mod:`metrics.alerting`); at most one open
  alert per rule and place (deduplicated: a rule that keeps breaching updates the same alert).
- **acknowledge**: someone has seen it (who, when, an optional note).
- **assign**: to a department, which *files a work order* through the same :class:`~layers.workorders.WorkOrders`
  service as a citizen's request (channel ``iot_alarm``, dispatched to that department): the alert keeps the order's
  id, the order's intake log names the alert, and the order's clocks run from the assignment.
- **resolve**: by hand with a note, or by the rule (actor ``rule``) once its condition has been clear for the
  keep-firing time. The condition's own moves (``clearing``, ``recur``) are logged too, without changing the status.

Every action appends one row to ``alert_transitions`` (never updated or deleted) and updates the ``alerts`` row with
``… WHERE version = :expected``. Rules are kept here as versioned JSON bodies (``alert_rule_versions``); their
meaning and validation live in :mod:`metrics.alert_rules`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields

import pandas as pd
from sqlalchemy import and_, func, insert, select, update

from layers.specs import CITY_TIMEZONE
from layers.store import METADATA, Store, bump_layer_versions

STATUSES = ("firing", "acknowledged", "assigned", "resolved")
OPEN_STATUSES = frozenset(STATUSES) - {"resolved"}
CONDITIONS = ("active", "clearing", "clear")
TRANSITIONS: dict[tuple[str, str], str] = {
    ("firing", "acknowledge"): "acknowledged",
    ("firing", "assign"): "assigned",
    ("acknowledged", "assign"): "assigned",
    ("firing", "resolve"): "resolved",
    ("acknowledged", "resolve"): "resolved",
    ("assigned", "resolve"): "resolved",
}
"""(status, action) → the status after it; a pair that is not here is refused. ``fire`` creates an alert."""
CONDITION_EVENTS = {"clearing": "clearing", "recur": "active"}
"""The condition's moves (logged, the status unchanged): event → the alert's ``condition`` after it."""
MAX_NOTE_CHARS = 2_000
MAX_ACTOR_CHARS = 200
RULE_ACTOR = "rule"
ALERTS_VERSION = "alerts"
"""The entry of ``layer_versions`` that counts the alerts' changes (rows: alerts fired). Not a layer of the city:
see :data:`layers.city.NOT_LOADED`."""


class AlertError(ValueError):
    code = "error"


class AlertRefused(AlertError):
    """An action the lifecycle does not allow in the alert's status."""

    code = "refused"


class UnknownAlert(AlertError, LookupError):
    code = "not_found"


class AlertConflict(AlertError):
    """Someone acted on the alert first: reload it and decide again (nothing was written)."""

    code = "conflict"


def allowed_actions(status: str) -> list[str]:
    """The actions allowed in ``status``, in declaration order (what the alerts page offers)."""
    return [action for (state, action) in TRANSITIONS if state == status]


def next_status(status: str, action: str) -> str:
    """The status ``action`` leads to from ``status``, or :class:`AlertRefused` naming both and what is allowed."""
    if status not in STATUSES:
        raise AlertRefused(f"unknown status {status!r}; statuses: {', '.join(STATUSES)}")
    known = sorted({a for _, a in TRANSITIONS})
    if action not in known:
        raise AlertRefused(f"unknown action {action!r}; actions: {', '.join(known)}")
    target = TRANSITIONS.get((status, action))
    if target is None:
        allowed = ", ".join(allowed_actions(status)) or "none (a resolved alert is final)"
        raise AlertRefused(f"cannot {action} an alert that is {status}; allowed here: {allowed}")
    return target


def _epoch(instant) -> int:
    stamp = pd.Timestamp(instant)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(CITY_TIMEZONE)
    return int(stamp.timestamp())


def _instant(seconds) -> pd.Timestamp | None:
    if seconds is None or seconds != seconds:
        return None
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").tz_convert(CITY_TIMEZONE)


def _text(name: str, value, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise AlertError(f"{name}: must be text")
    value = value.strip()
    if required and not value:
        raise AlertError(f"{name}: required")
    if len(value) > limit:
        raise AlertError(f"{name}: at most {limit:,} characters, got {len(value):,}")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise AlertError(f"{name}: control characters are not allowed")
    return value


@dataclass(frozen=True)
class Alert:
    alert_id: str
    rule_id: str
    rule_version: int
    kind: str
    severity: str
    title: str
    title_zh: str
    place: str
    sensor_id: str | None
    building_id: str | None
    grid_code: str | None
    unit_code: str | None
    lon: float | None
    lat: float | None
    value: float | None
    evidence: str
    evidence_zh: str
    status: str
    condition: str
    fired_at: pd.Timestamp
    acknowledged_at: pd.Timestamp | None
    acknowledged_by: str | None
    assigned_at: pd.Timestamp | None
    department: str | None
    order_id: str | None
    resolved_at: pd.Timestamp | None
    resolved_by: str | None
    version: int

    @classmethod
    def from_row(cls, row) -> "Alert":
        values = dict(row)
        for name in ("fired_at", "acknowledged_at", "assigned_at", "resolved_at"):
            values[name] = _instant(values[name])
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def allowed_actions(self) -> list[str]:
        return allowed_actions(self.status)


@dataclass(frozen=True)
class AlertEntry:
    alert_id: str
    seq: int
    at: pd.Timestamp
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str
    department: str | None
    order_id: str | None


class AlertBook:
    """Read and write alerts, their log, the rules' versions and the evaluation state in one store."""

    def __init__(self, store: Store, work_orders=None, clock=None):
        self.store = store
        self._work_orders = work_orders
        self.clock = clock or (lambda: pd.Timestamp.now(tz=CITY_TIMEZONE))
        self.alerts = METADATA.tables["alerts"]
        self.log = METADATA.tables["alert_transitions"]
        self.rules = METADATA.tables["alert_rule_versions"]
        self.instances = METADATA.tables["alert_instances"]
        for table in (self.alerts, self.log, self.rules, self.instances, METADATA.tables["layer_versions"]):
            table.create(store.engine, checkfirst=True)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """A database whose alert tables an earlier release made gets the columns added since (text columns empty,
        others null), so that reading it never fails on a column it lacks."""
        from sqlalchemy import text
        with self.store.engine.begin() as conn:
            for table in (self.alerts, self.log, self.rules, self.instances):
                present = set(conn.execute(text(f'SELECT * FROM "{table.name}" LIMIT 0')).keys())
                for column in table.columns:
                    if column.name in present:
                        continue
                    sql_type = column.type.compile(dialect=self.store.engine.dialect)
                    default = " NOT NULL DEFAULT ''" if sql_type.upper() == "TEXT" and not column.nullable else ""
                    conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {sql_type}{default}'))

    @property
    def work_orders(self):
        if self._work_orders is None:
            from layers.workorders import WorkOrders
            self._work_orders = WorkOrders(self.store)
        return self._work_orders

    # --- rules: versioned bodies -------------------------------------------------------------------------------

    def rule_bodies(self, include_disabled: bool = True) -> list[dict]:
        """The current (latest) version of each rule: its body plus ``version``, ``changed_at``, ``changed_by``,
        ``note``."""
        latest = (select(self.rules.c.rule_id, func.max(self.rules.c.version).label("version"))
                  .group_by(self.rules.c.rule_id).subquery())
        query = select(self.rules).join(latest, and_(self.rules.c.rule_id == latest.c.rule_id,
                                                     self.rules.c.version == latest.c.version))
        with self.store.engine.connect() as conn:
            rows = conn.execute(query.order_by(self.rules.c.rule_id)).mappings().all()
        out = []
        for row in rows:
            body = json.loads(row["body"])
            body.update(enabled=bool(row["enabled"]), version=row["version"], changed_at=_instant(row["changed_at"]),
                        changed_by=row["changed_by"], note=row["note"])
            if include_disabled or body["enabled"]:
                out.append(body)
        return out

    def rule_history(self, rule_id: str) -> list[dict]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(self.rules).where(self.rules.c.rule_id == rule_id)
                                .order_by(self.rules.c.version)).mappings().all()
        return [dict(row, body=json.loads(row["body"]), changed_at=_instant(row["changed_at"])) for row in rows]

    def save_rule_version(self, rule_id: str, body: dict, *, enabled: bool, changed_by: str, note: str,
                          at=None) -> int:
        """Write version N+1 of a rule (1 for a new rule); the body is already validated by the caller
        (metrics.alert_runner.save_rule). Returns the new version."""
        changed_by = _text("changed_by", changed_by, MAX_ACTOR_CHARS, required=True)
        note = _text("note", note, MAX_NOTE_CHARS)
        when = _epoch(at if at is not None else self.clock())
        with self.store.engine.begin() as conn:
            current = conn.execute(select(func.max(self.rules.c.version))
                                   .where(self.rules.c.rule_id == rule_id)).scalar_one_or_none() or 0
            conn.execute(insert(self.rules), dict(rule_id=rule_id, version=current + 1,
                                                  body=json.dumps(body, ensure_ascii=False, sort_keys=True),
                                                  enabled=bool(enabled), changed_at=when, changed_by=changed_by,
                                                  note=note))
        return current + 1

    def has_rules(self) -> bool:
        with self.store.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(self.rules)).scalar_one() > 0

    # --- evaluation state --------------------------------------------------------------------------------------

    def instance_rows(self) -> list[dict]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(self.instances)).mappings().all()
        return [dict(row, since=_instant(row["since"])) for row in rows]

    def set_instance(self, conn, rule_id: str, place: str, state: str, since, alert_id: str | None) -> None:
        values = dict(state=state, since=None if since is None else _epoch(since), alert_id=alert_id)
        done = conn.execute(update(self.instances).where(and_(self.instances.c.rule_id == rule_id,
                                                              self.instances.c.place == place)).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(self.instances), dict(rule_id=rule_id, place=place, **values))

    # --- the rule's events -------------------------------------------------------------------------------------

    def fire(self, conn, *, rule: dict, place: dict, at) -> str:
        """A new alert for ``rule`` (its body with ``version``) at ``place`` (sensor_id, building_id, grid_code,
        unit_code, lon, lat, value, evidence), or the open one already there (deduplicated per rule and place):
        its id."""
        existing = conn.execute(select(self.alerts.c.alert_id).where(and_(
            self.alerts.c.rule_id == rule["id"], self.alerts.c.place == place["place"],
            self.alerts.c.status.in_(sorted(OPEN_STATUSES))))).scalar_one_or_none()
        if existing is not None:
            self._condition(conn, existing, "recur", at, note=place.get("evidence", ""))
            return existing
        when = _epoch(at)
        count = conn.execute(select(func.count()).select_from(self.alerts)).scalar_one()
        alert_id = f"AL{count + 1:06d}"
        while conn.execute(select(self.alerts.c.alert_id).where(self.alerts.c.alert_id == alert_id)).first():
            count += 1
            alert_id = f"AL{count + 1:06d}"
        row = dict(alert_id=alert_id, rule_id=rule["id"], rule_version=int(rule.get("version", 1)),
                   kind=rule["kind"], severity=rule["severity"], title=rule["title"],
                   title_zh=rule.get("title_zh") or rule["title"], place=place["place"],
                   sensor_id=place.get("sensor_id"), building_id=place.get("building_id"),
                   grid_code=place.get("grid_code"), unit_code=place.get("unit_code"), lon=place.get("lon"),
                   lat=place.get("lat"), value=place.get("value"), evidence=place.get("evidence") or "",
                   evidence_zh=place.get("evidence_zh") or place.get("evidence") or "",
                   status="firing", condition="active", fired_at=when, acknowledged_at=None,
                   acknowledged_by=None, assigned_at=None, department=None, order_id=None, resolved_at=None,
                   resolved_by=None, version=1)
        conn.execute(insert(self.alerts), row)
        self._append(conn, alert_id, 1, when, RULE_ACTOR, "fire", None, "firing", row["evidence"])
        return alert_id

    def _condition(self, conn, alert_id: str, event: str, at, note: str = "") -> None:
        row = conn.execute(select(self.alerts).where(self.alerts.c.alert_id == alert_id)).mappings().one()
        seq = self._next_seq(conn, alert_id)
        conn.execute(update(self.alerts).where(self.alerts.c.alert_id == alert_id)
                     .values(condition=CONDITION_EVENTS[event], version=row["version"] + 1))
        self._append(conn, alert_id, seq, _epoch(at), RULE_ACTOR, event, row["status"], row["status"], note)

    def condition_event(self, conn, alert_id: str, event: str, at, note: str = "") -> None:
        """The condition cleared (``clearing``) or came back (``recur``): logged; the status is unchanged."""
        self._condition(conn, alert_id, event, at, note)

    def rule_resolve(self, conn, alert_id: str, at, note: str) -> None:
        """The condition has been clear for the keep-firing time: resolve (an alert resolved by hand already
        only records that its condition is clear)."""
        row = conn.execute(select(self.alerts).where(self.alerts.c.alert_id == alert_id)).mappings().one()
        seq = self._next_seq(conn, alert_id)
        when = _epoch(at)
        if row["status"] == "resolved":
            conn.execute(update(self.alerts).where(self.alerts.c.alert_id == alert_id)
                         .values(condition="clear", version=row["version"] + 1))
            self._append(conn, alert_id, seq, when, RULE_ACTOR, "clear", "resolved", "resolved", note)
            return
        conn.execute(update(self.alerts).where(self.alerts.c.alert_id == alert_id).values(
            status="resolved", condition="clear", resolved_at=when, resolved_by=RULE_ACTOR,
            version=row["version"] + 1))
        self._append(conn, alert_id, seq, when, RULE_ACTOR, "resolve", row["status"], "resolved", note)

    # --- operators' actions ------------------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, *, actor: str, note: str = "", expected_version: int | None = None,
                    at=None) -> Alert:
        return self._act(alert_id, "acknowledge", actor=actor, note=note, expected_version=expected_version,
                         at=at)

    def resolve(self, alert_id: str, *, actor: str, note: str, expected_version: int | None = None,
                at=None) -> Alert:
        """Resolve by hand: a note saying why is required."""
        _text("note", note, MAX_NOTE_CHARS, required=True)
        return self._act(alert_id, "resolve", actor=actor, note=note, expected_version=expected_version, at=at)

    def assign(self, alert_id: str, *, department: str, actor: str, note: str = "", event_type: str | None = None,
               expected_version: int | None = None, at=None) -> Alert:
        """Assign to ``department``: file a work order for the alert's place (channel ``iot_alarm``), dispatch it
        to that department, and link the two. The order's event type is ``event_type``, else the rule's, else the
        burst's own type; an alert without a point cannot be assigned (the order needs a place)."""
        alert = self.get(alert_id)
        next_status(alert.status, "assign")  # refused before any order is filed
        if expected_version is not None and expected_version != alert.version:
            raise AlertConflict(f"alert {alert_id} changed since you loaded it (you had version {expected_version}, "
                                f"it is now version {alert.version}); reload it and try again")
        actor = _text("actor", actor, MAX_ACTOR_CHARS, required=True)
        note = _text("note", note, MAX_NOTE_CHARS)
        department = _text("department", department, 200, required=True)
        orders = self.work_orders
        departments = orders.responsibility_list().departments
        if department not in departments:
            raise AlertError(f"department: unknown department {department!r}; departments: "
                             f"{', '.join(departments)}")
        rule = next((r for r in self.rule_bodies() if r["id"] == alert.rule_id), {})
        event_type = event_type or rule.get("event_type") or (
            alert.place.split(":", 2)[2] if alert.kind == "order_burst" else None)
        if not event_type:
            raise AlertError(f"event_type: rule {alert.rule_id!r} names no event type for its work orders; "
                             "choose one")
        if alert.lon is None or alert.lat is None:
            raise AlertError(f"alert {alert_id} has no point on the map, so no work order can be filed for it")
        channel = "iot_alarm" if "iot_alarm" in orders.channels() else orders.channels()[0]
        description = f"Alert {alert.alert_id}: {alert.title} — {alert.evidence}"
        if note:
            description += f"\n{note}"
        order = orders.file_request(event_type=event_type, lon=alert.lon, lat=alert.lat, channel=channel,
                                    description=description[:4000], actor=actor, at=at)
        order = orders.dispatch(order.order_id, expected_version=order.version, actor=actor, department=department,
                                note=f"from alert {alert.alert_id}", at=at)
        return self._act(alert_id, "assign", actor=actor, note=note, expected_version=alert.version, at=at,
                         department=department, order_id=order.order_id)

    def _act(self, alert_id: str, action: str, *, actor: str, note: str, expected_version: int | None, at,
             department: str | None = None, order_id: str | None = None) -> Alert:
        actor = _text("actor", actor, MAX_ACTOR_CHARS, required=True)
        note = _text("note", note, MAX_NOTE_CHARS)
        when = _epoch(at if at is not None else self.clock())
        with self.store.engine.begin() as conn:
            row = conn.execute(select(self.alerts).where(self.alerts.c.alert_id == alert_id)).mappings().first()
            if row is None:
                raise UnknownAlert(f"no alert {alert_id!r}")
            target = next_status(row["status"], action)
            expected = row["version"] if expected_version is None else int(expected_version)
            values = dict(status=target, version=row["version"] + 1)
            if action == "acknowledge":
                values.update(acknowledged_at=when, acknowledged_by=actor)
            elif action == "assign":
                values.update(assigned_at=when, department=department, order_id=order_id)
                if row["acknowledged_at"] is None:
                    values.update(acknowledged_at=when, acknowledged_by=actor)  # assigning is seeing it
            elif action == "resolve":
                values.update(resolved_at=when, resolved_by=actor)
            done = conn.execute(update(self.alerts).where(and_(self.alerts.c.alert_id == alert_id,
                                                               self.alerts.c.version == expected)).values(**values))
            if done.rowcount != 1:
                raise AlertConflict(f"alert {alert_id} changed since you loaded it (you had version {expected}, it "
                                    f"is now version {row['version']}); reload it and try again")
            self._append(conn, alert_id, self._next_seq(conn, alert_id), when, actor, action, row["status"],
                         target, note, department, order_id)
        return self.get(alert_id)

    def _next_seq(self, conn, alert_id: str) -> int:
        return (conn.execute(select(func.max(self.log.c.seq)).where(self.log.c.alert_id == alert_id))
                .scalar_one_or_none() or 0) + 1

    def _append(self, conn, alert_id, seq, at, actor, action, from_status, to_status, note, department=None,
                order_id=None) -> None:
        conn.execute(insert(self.log), dict(alert_id=alert_id, seq=seq, at=at, actor=actor, action=action,
                                            from_status=from_status, to_status=to_status, note=note or "",
                                            department=department, order_id=order_id))
        # In the same transaction: the dashboard's generation counts the alerts' version, so every screen that
        # follows the city redraws its alerts with the change, and reads them once per generation, not per draw.
        bump_layer_versions(conn, {ALERTS_VERSION: 1 if action == "fire" else 0}, "layers.alerts")

    # --- reading -----------------------------------------------------------------------------------------------

    def get(self, alert_id: str) -> Alert:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(self.alerts).where(self.alerts.c.alert_id == alert_id)).mappings().first()
        if row is None:
            raise UnknownAlert(f"no alert {alert_id!r}")
        return Alert.from_row(row)

    def for_order(self, order_id: str) -> Alert | None:
        """The alert a work order was filed for (None for a citizen's request)."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(self.alerts).where(self.alerts.c.order_id == order_id)).mappings().first()
        return None if row is None else Alert.from_row(row)

    def timeline(self, alert_id: str) -> list[AlertEntry]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(self.log).where(self.log.c.alert_id == alert_id)
                                .order_by(self.log.c.seq)).mappings().all()
        return [AlertEntry(**{**{f.name: row[f.name] for f in fields(AlertEntry)}, "at": _instant(row["at"])})
                for row in rows]

    def frame(self, statuses=None, limit: int = 2_000) -> pd.DataFrame:
        """Alerts as a frame (newest first), optionally only those in ``statuses``; times tz-aware."""
        query = select(self.alerts)
        if statuses:
            query = query.where(self.alerts.c.status.in_(sorted(statuses)))
        query = query.order_by(self.alerts.c.fired_at.desc(), self.alerts.c.alert_id.desc()).limit(limit)
        return self._frame_of(query)

    def _frame_of(self, query) -> pd.DataFrame:
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        frame = pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in self.alerts.columns])
        for name in ("fired_at", "acknowledged_at", "assigned_at", "resolved_at"):
            frame[name] = pd.to_datetime(frame[name], unit="s", utc=True).dt.tz_convert(CITY_TIMEZONE)
        return frame

    def for_building(self, building_id: str, sensor_ids=(), limit: int = 20) -> pd.DataFrame:
        """The alerts of a building and of its sensors, open ones first, then the newest (at most ``limit``)."""
        condition = self.alerts.c.building_id == building_id
        if len(sensor_ids):
            condition = condition | self.alerts.c.sensor_id.in_(sorted(set(sensor_ids)))
        query = (select(self.alerts).where(condition)
                 .order_by((self.alerts.c.status == "resolved").asc(), self.alerts.c.fired_at.desc(),
                           self.alerts.c.alert_id.desc()).limit(limit))
        return self._frame_of(query)

    def mark(self) -> int:
        """A number that changes whenever an alert does (for screens that refresh only on change)."""
        with self.store.engine.connect() as conn:
            return conn.execute(select(func.max(self.log.c.transition_id))).scalar_one_or_none() or 0


def now_epoch() -> int:
    return int(time.time())
