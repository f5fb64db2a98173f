"""The stream ingest: sensor readings, device status and alarms from an MQTT broker into the store, in batches.

Run it as its own process::

    python -m layers.ingest --broker mqtt://127.0.0.1:1883 --database-url sqlite:///data/citytwin.sqlite

What it guarantees (tests/test_ingest.py checks each against a real Mosquitto):

* **Nothing lost.** It subscribes with QoS 1 on a persistent session (MQTT 5, ``clean_start`` off, a fixed client
  id, a session that outlives a restart) and acknowledges a message (PUBACK, paho's manual ack) only after the
  batch holding it is committed. Killed mid-batch, broker restarted, database down: the broker still holds every
  unacknowledged message and delivers it again.
* **Nothing twice.** Redelivery is idempotent: a reading is keyed by (sensor, observation time), an alarm by its
  id (unique indexes, ``INSERT … ON CONFLICT DO NOTHING``), a status is an update.
* **Never stopped by input.** A malformed or unknown message (bad JSON, wrong types, unknown sensor or topic,
  NaN/inf, a body over :data:`MAX_PAYLOAD_BYTES`) goes to ``dead_letters`` with the reason and is acknowledged.
* **Database down → backpressure.** A batch that cannot be committed is retried with backoff and nothing is
  acknowledged meanwhile; the broker stops sending once the unacknowledged window is full (receive maximum).

Each committed batch numbers its rows (``seq``, see :func:`arrived_since`), bumps the versions of the layers it
changed, and adds to the counters :func:`status` reads. Topics and payloads: docs/ingest.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import bindparam, exc, func, insert, select, text, update

from layers import fiware
from layers.retention import ensure_day_partitions
from layers import store_health
from layers.city_settings import timezone as city_timezone
from layers.specs import LAYERS
from layers.store import METADATA, READINGS_BATCHES, Store, bump_layer_versions, insert_ignoring_duplicates

log = logging.getLogger("citytwin.ingest")

TOPIC_PREFIX = "citytwin"
"""Our compact topics: ``citytwin/<sensor_id>/reading|status|alarm``; FIWARE entities on ``citytwin/fiware/…``."""
MAX_PAYLOAD_BYTES = 64 * 1024
"""A body larger than this is refused unread (a reading is ~50 bytes; a FIWARE entity ~2 kB)."""
EXCERPT_CHARS = 200
"""How much of a refused body the dead letter keeps: enough to recognise it, never a 1 MB blob."""
SENSOR_STATUSES = ("online", "offline", "fault")
ALARM_SEVERITIES = ("warning", "critical")
MEASURING_KINDS = ("pm25", "noise", "water_level", "traffic_flow")
EARLIEST_TS = 946_684_800       # 2000-01-01: older observation times are a sensor's clock reset, not data
FUTURE_TOLERANCE_S = 24 * 3600  # a clock a day ahead is wrong, not early
HOUR_SECONDS = 3600
COUNTERS = ("received", "stored", "duplicates", "dead_lettered", "batches", "last_commit_at")


# --- records ----------------------------------------------------------------------------------------------------

@dataclass
class Batch:
    """What one transaction writes: plain tuples, the cheapest thing to build at thousands a second."""

    readings: list[tuple[str, int, float]] = field(default_factory=list)          # sensor_id, ts, value
    statuses: list[tuple[str, int, str]] = field(default_factory=list)            # sensor_id, ts, status
    alarms: list[dict] = field(default_factory=list)                               # the alarms layer's columns
    dead_letters: list[dict] = field(default_factory=list)                         # dead_letters columns
    received: int = 0                                                              # messages this batch holds

    def extend(self, other: "Batch") -> None:
        self.readings += other.readings
        self.statuses += other.statuses
        self.alarms += other.alarms
        self.dead_letters += other.dead_letters
        self.received += other.received


@dataclass
class BatchResult:
    stored: int          # readings and alarms newly stored, alarms cleared
    duplicates: int      # readings and alarms already stored (a redelivery)
    dead_lettered: int
    statuses: int
    seconds: float


class Rejected(ValueError):
    """A message the ingest refuses; the message is the dead letter's reason."""


# --- decoding ---------------------------------------------------------------------------------------------------

def parse_instant(value) -> int:
    """An observation time as UTC epoch seconds: ISO 8601 (without offset: the city's time zone) or epoch seconds
    (milliseconds when above 10^11)."""
    if isinstance(value, bool):
        raise Rejected(f"time {value!r} is not an instant")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise Rejected(f"time {value!r} is not finite")
        seconds = value / 1000 if abs(value) > 1e11 else value
    elif isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Rejected(f"time {value[:40]!r} is not ISO 8601") from None
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=ZoneInfo(city_timezone()))  # the city's own zone
        seconds = instant.timestamp()
    else:
        raise Rejected(f"time has type {type(value).__name__}, expected an ISO 8601 string or epoch seconds")
    if seconds < EARLIEST_TS or seconds > time.time() + FUTURE_TOLERANCE_S:
        raise Rejected(f"time {value!r} is out of range (before 2000 or more than a day ahead)")
    return int(seconds)


def parse_value(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Rejected(f"value has type {type(value).__name__}, expected a number")
    value = float(value)
    if not math.isfinite(value):
        raise Rejected(f"value {value!r} is not finite")
    return value


def _json(payload: bytes):
    # NaN, Infinity and -Infinity are not JSON, but Python's parser takes them: refuse them here, by name.
    def refuse_constant(name):
        raise Rejected(f"{name} is not a number JSON allows")
    try:
        return json.loads(payload, parse_constant=refuse_constant)
    except Rejected:
        raise
    except (ValueError, UnicodeDecodeError) as error:
        raise Rejected(f"not JSON: {error}") from None


class SensorDirectory:
    """The known sensors and their kinds, read from the sensors layer; re-read on a miss at most every
    ``refresh_seconds`` (a sensor added by an import becomes known without a restart)."""

    def __init__(self, store: Store, refresh_seconds: float = 30.0):
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.kinds: dict[str, str] = {}
        self.loaded_at = -math.inf
        self.refresh()

    def refresh(self) -> None:
        frame = self.store.read_frame("sensors", ["sensor_id", "kind"])
        self.kinds = dict(zip(frame["sensor_id"], frame["kind"]))
        self.loaded_at = time.monotonic()

    def kind(self, sensor_id: str) -> str:
        kind = self.kinds.get(sensor_id)
        if kind is None and time.monotonic() - self.loaded_at > self.refresh_seconds:
            try:
                self.refresh()
            except exc.SQLAlchemyError:
                log.warning("could not re-read the sensors; keeping the %d known", len(self.kinds))
            kind = self.kinds.get(sensor_id)
        if kind is None:
            raise Rejected(f"unknown sensor {sensor_id[:64]!r}")
        return kind


def decode(topic: str, payload: bytes, sensors: SensorDirectory) -> Batch:
    """The records one message carries, or :class:`Rejected` saying what is wrong with it."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected(f"body of {len(payload):,} bytes is over the {MAX_PAYLOAD_BYTES:,}-byte limit")
    parts = topic.split("/")
    if len(parts) < 2 or parts[0] != TOPIC_PREFIX:
        raise Rejected(f"unknown topic (expected {TOPIC_PREFIX}/<sensor_id>/reading|status|alarm or "
                       f"{TOPIC_PREFIX}/fiware/…)")
    body = _json(payload)
    if parts[1] == "fiware":
        entities = body if isinstance(body, list) else [body]
        batch = Batch()
        for entity in entities:
            batch.extend(decode_entity(entity, sensors))
        return batch
    if len(parts) != 3 or parts[2] not in ("reading", "status", "alarm"):
        raise Rejected("unknown topic (expected citytwin/<sensor_id>/reading|status|alarm)")
    sensor_id, what = parts[1], parts[2]
    kind = sensors.kind(sensor_id)
    items = body if isinstance(body, list) else [body]
    batch = Batch()
    for item in items:
        if not isinstance(item, dict):
            raise Rejected(f"{what} must be a JSON object (or a list of them), got {type(item).__name__}")
        if what == "reading":
            batch.readings.append(_reading(sensor_id, kind, item.get("ts"), item.get("value")))
        elif what == "status":
            batch.statuses.append(_status(sensor_id, item.get("ts"), item.get("status", "online")))
        else:
            batch.alarms.append(_alarm(sensor_id, kind, item))
    return batch


def _reading(sensor_id: str, kind: str, ts, value) -> tuple[str, int, float]:
    if kind not in MEASURING_KINDS:
        raise Rejected(f"sensor {sensor_id!r} is a {kind} sensor, which reports status and alarms, not readings")
    if ts is None or value is None:
        raise Rejected("a reading needs 'ts' and 'value'")
    return sensor_id, parse_instant(ts), parse_value(value)


def _status(sensor_id: str, ts, status) -> tuple[str, int, str]:
    if status not in SENSOR_STATUSES:
        raise Rejected(f"status {str(status)[:40]!r} is not one of {', '.join(SENSOR_STATUSES)}")
    if ts is None:
        raise Rejected("a status needs 'ts'")
    return sensor_id, parse_instant(ts), status


def _alarm(sensor_id: str, kind: str, item: dict) -> dict:
    raised_at = parse_instant(item.get("raised_at", item.get("ts")))
    cleared = item.get("cleared_at")
    cleared_at = None if cleared is None else parse_instant(cleared)
    if cleared_at is not None and cleared_at < raised_at:
        raise Rejected("cleared_at is before raised_at")
    severity = item.get("severity", "warning")
    if severity not in ALARM_SEVERITIES:
        raise Rejected(f"severity {str(severity)[:40]!r} is not one of {', '.join(ALARM_SEVERITIES)}")
    message = item.get("message", "")
    alarm_id = item.get("id", f"{sensor_id}@{raised_at}")
    if not isinstance(message, str) or not isinstance(alarm_id, str) or not alarm_id:
        raise Rejected("alarm 'message' and 'id' must be text")
    alarm_kind = item.get("kind", kind)
    if not isinstance(alarm_kind, str) or not alarm_kind:
        raise Rejected("alarm 'kind' must be text")
    return dict(alarm_id=alarm_id[:128], sensor_id=sensor_id, kind=alarm_kind[:64], severity=severity,
                raised_at=raised_at, cleared_at=cleared_at, message=message[:1000])


def decode_entity(entity, sensors: SensorDirectory) -> Batch:
    """One FIWARE entity (keyValues or normalized) as records; see :mod:`layers.fiware`."""
    if not fiware.is_entity(entity):
        raise Rejected("not a FIWARE entity (needs 'id' and 'type')")
    try:
        flat = fiware.flatten(entity)
        model = flat["type"]
        sensor_id = fiware.sensor_of(flat)
        batch = Batch()
        if model in fiware.OBSERVED:
            expected_kind, attribute, conversion = fiware.OBSERVED[model]
            kind = sensors.kind(sensor_id)
            if kind != expected_kind:
                raise Rejected(f"{model} for sensor {sensor_id!r}, which is a {kind} sensor")
            if attribute not in flat:
                raise Rejected(f"{model} has no {attribute!r}")
            ts = parse_instant(fiware.observation_time(flat))
            value = parse_value(flat[attribute])
            if conversion == "per_hour":
                period = fiware.period_seconds(flat, parse_instant)
                value = value * 3600.0 / period if period else value
            batch.readings.append(_reading(sensor_id, kind, ts, value))
        elif model == "Device":
            sensors.kind(sensor_id)
            state = flat.get("deviceState", "ok")
            status = fiware.DEVICE_STATES.get(str(state).lower())
            if status is None:
                raise Rejected(f"Device deviceState {str(state)[:40]!r} is not one of "
                               f"{', '.join(fiware.DEVICE_STATES)}")
            ts = flat.get("dateLastValueReported") or flat.get("dateObserved") or flat.get("dateModified")
            if ts is None:
                raise Rejected("Device has no dateLastValueReported")
            batch.statuses.append((sensor_id, parse_instant(ts), status))
        elif model == "Alert":
            kind = sensors.kind(sensor_id)
            severity = fiware.ALERT_SEVERITIES.get(str(flat.get("severity", "medium")).lower())
            if severity is None:
                raise Rejected(f"Alert severity {str(flat.get('severity'))[:40]!r} is not one of "
                               f"{', '.join(fiware.ALERT_SEVERITIES)}")
            text = " — ".join(str(flat[n]) for n in ("subCategory", "description") if flat.get(n))
            batch.alarms.append(_alarm(sensor_id, kind, {
                "id": str(flat["id"]), "raised_at": flat.get("dateIssued"), "severity": severity,
                "message": text, "cleared_at": flat.get("validTo") if flat.get("alertStatus") == "solved" else None,
            }))
        else:
            raise Rejected(f"FIWARE type {model[:60]!r} is not one we read (AirQualityObserved, NoiseLevelObserved, "
                           "TrafficFlowObserved, WaterObserved, Device, Alert)")
        return batch
    except fiware.EntityError as error:
        raise Rejected(str(error)) from None


def dead_letter(topic: str, payload: bytes, reason: str, received_at: float) -> dict:
    excerpt = payload[:EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    return dict(topic=topic[:500], payload_excerpt=excerpt, payload_bytes=len(payload), reason=reason[:500],
                received_at=int(received_at))


def decode_message(topic: str, payload: bytes, sensors: SensorDirectory, received_at: float) -> Batch:
    """:func:`decode`, with a refusal (or any surprise: the service never stops on input) as a dead letter."""
    try:
        batch = decode(topic, payload, sensors)
    except Rejected as error:
        batch = Batch(dead_letters=[dead_letter(topic, payload, str(error), received_at)])
    except Exception as error:  # a bug of ours must not stop the stream either: keep the message to look at
        log.exception("decoding a message on %r failed", topic)
        batch = Batch(dead_letters=[dead_letter(topic, payload, f"could not be read: {error!r}", received_at)])
    batch.received = 1
    return batch


# --- writing ----------------------------------------------------------------------------------------------------

class BatchWriter:
    """Writes a :class:`Batch` in one transaction: readings, alarms, sensor status, dead letters, the arrival
    numbers, the layer versions and the counters. The simulator writes through this too (no broker needed)."""

    def __init__(self, store: Store, source: str = "ingest"):
        self.store = store
        self.source = source
        store.create_schema()
        t = METADATA.tables
        self.readings, self.alarms, self.sensors = t["readings"], t["alarms"], t["sensors"]
        # The stream's rows go to the driver's own executemany as plain tuples: SQLAlchemy's per-row parameter
        # processing (and RETURNING every row) was a quarter of the writer's CPU at 4,500 readings a second.
        self.insert_readings = _DriverStatement(insert_ignoring_duplicates(self.readings, store.dialect), store,
                                                ("sensor_id", "ts", "value", "seq"))
        r = self.readings
        hour = (r.c.ts - r.c.ts % HOUR_SECONDS).label("hour")
        # The hours of the readings this batch stored (numbered first..last; a duplicate was not stored and has no
        # number in the table), aggregated by the database in one statement.
        stored_hours = (select(r.c.sensor_id, hour, func.count().label("count"), func.min(r.c.value).label("min"),
                               func.max(r.c.value).label("max"), func.avg(r.c.value).label("mean"))
                        .where(r.c.seq.between(bindparam("first"), bindparam("last")))
                        .group_by(r.c.sensor_id, hour))
        self.count_stored = (select(func.count()).select_from(r)
                             .where(r.c.seq.between(bindparam("first"), bindparam("last"))))
        hourly = METADATA.tables["readings_hourly"]
        upsert_hourly = insert_ignoring_duplicates(hourly, store.dialect).__class__(hourly).from_select(
            ["sensor_id", "hour", "count", "min", "max", "mean"], stored_hours)
        new, smaller, larger = upsert_hourly.excluded, (func.min if store.dialect == "sqlite" else func.least), \
            (func.max if store.dialect == "sqlite" else func.greatest)
        # The hour's aggregate grows with each reading stored (a continuous aggregate): the indicators read hours,
        # and a full reload reads sensors × hours, not a row a minute. Every SET sees the row as it was.
        self.upsert_hourly = upsert_hourly.on_conflict_do_update(
            index_elements=["sensor_id", "hour"],
            set_=dict(count=hourly.c.count + new.count, min=smaller(hourly.c.min, new.min),
                      max=larger(hourly.c.max, new.max),
                      mean=(hourly.c.mean * hourly.c.count + new.mean * new.count) / (hourly.c.count + new.count)))
        newest = "MAX" if store.dialect == "sqlite" else "GREATEST"
        # Heard from later than stored: newer last_seen_at. A reported status wins; a reading revives an offline one.
        self.update_sensors = _DriverStatement(text(
            f"UPDATE sensors SET last_seen_at = {newest}(last_seen_at, CAST(:seen AS BIGINT)), "
            "status = CASE WHEN CAST(:status AS TEXT) IS NOT NULL AND CAST(:seen AS BIGINT) >= last_seen_at "
            "THEN CAST(:status AS TEXT) "
            "WHEN CAST(:status AS TEXT) IS NULL AND status = 'offline' THEN 'online' ELSE status END, "
            "seq = :seq WHERE sensor_id = :sid"), store, ("seen", "status", "seq", "sid"))
        dialect_insert = insert_ignoring_duplicates(self.alarms, store.dialect).__class__
        upsert = dialect_insert(self.alarms)
        # A repeated alarm changes nothing; its clear (cleared_at given where the stored one has none) does.
        self.upsert_alarms = upsert.on_conflict_do_update(
            index_elements=["alarm_id"],
            set_=dict(cleared_at=upsert.excluded.cleared_at, seq=upsert.excluded.seq),
            where=self.alarms.c.cleared_at.is_(None) & upsert.excluded.cleared_at.is_not(None),
        ).returning(self.alarms.c.alarm_id)

    def write(self, batch: Batch) -> BatchResult:
        started = time.perf_counter()
        stored = duplicates = 0
        added: dict[str, int] = {}
        with self.store.engine.begin() as conn:
            if batch.readings:
                ensure_day_partitions(conn, {ts for _s, ts, _v in batch.readings})
                first = _take_sequence(conn, "readings", len(batch.readings))
                numbers = dict(first=first, last=first + len(batch.readings) - 1)
                self.insert_readings.execute_many(conn, [(s, t, v, first + i)
                                                         for i, (s, t, v) in enumerate(batch.readings)])
                new = conn.execute(self.count_stored, numbers).scalar_one()
                if new:
                    conn.execute(self.upsert_hourly, numbers)
                    # One number per batch that moves the readings' version (by one, below): a follower whose
                    # mark's version moved as far as this number did knows that every change since came from the
                    # stream, and reads only the readings numbered since (layers.city.with_sensor_layers_read_again).
                    _take_sequence(conn, READINGS_BATCHES, 1)
                stored += new
                duplicates += len(batch.readings) - new
                added["readings"] = new
            if batch.alarms:
                first = _take_sequence(conn, "alarms", len(batch.alarms))
                rows = [dict(alarm, seq=first + i) for i, alarm in enumerate(batch.alarms)]
                changed = len(conn.execute(self.upsert_alarms, rows).all())
                stored += changed
                duplicates += len(rows) - changed
                added["alarms"] = changed
            seen = self._sensor_updates(batch)
            if seen:
                # One number per batch, as the sensors' version moves by one: a follower reads the sensors this
                # batch reported on, not all of them (layers.city.with_sensor_layers_read_again).
                number = _take_sequence(conn, "sensors", 1)
                self.update_sensors.execute_many(conn, [(update["seen"], update["status"], number, update["sid"])
                                                        for update in seen])
                added["sensors"] = 0
            if batch.dead_letters:
                conn.execute(insert(METADATA.tables["dead_letters"]), batch.dead_letters)
            changed_layers = {k: v for k, v in added.items() if v or k == "sensors"}
            bump_layer_versions(conn, changed_layers, self.source)
            _add_counters(conn, dict(received=batch.received, stored=stored, duplicates=duplicates,
                                     dead_lettered=len(batch.dead_letters), batches=1),
                          last_commit_at=int(time.time()))
        return BatchResult(stored, duplicates, len(batch.dead_letters), len(batch.statuses),
                           time.perf_counter() - started)

    @staticmethod
    def _sensor_updates(batch: Batch) -> list[dict]:
        """Per sensor: the newest instant it was heard from, and the status it reported last (a reading says the
        sensor is up: an offline sensor comes back online; a fault stays until a status says otherwise)."""
        newest: dict[str, list] = {}
        for sensor_id, ts, _value in batch.readings:
            entry = newest.setdefault(sensor_id, [ts, None])
            entry[0] = max(entry[0], ts)
        for sensor_id, ts, status in batch.statuses:
            entry = newest.setdefault(sensor_id, [ts, None])
            entry[0] = max(entry[0], ts)
            entry[1] = status
        return [dict(sid=s, seen=ts, status=status) for s, (ts, status) in newest.items()]


class _DriverStatement:
    """A statement compiled once for the store's driver and run with its own ``executemany`` on plain tuples (in
    ``names`` order), without SQLAlchemy's per-row parameter processing: for the stream's thousands of rows a
    second, whose values are already the driver's types (str, int, float, None)."""

    def __init__(self, statement, store: Store, names: tuple[str, ...]):
        compiled = statement.compile(dialect=store.engine.dialect)
        self.sql = str(compiled)
        self.names = names
        # Positional drivers (SQLite's ?) take tuples in the compiled order, which may repeat a name; named ones
        # (psycopg's %(name)s) take dicts.
        self.order = [names.index(name) for name in compiled.positiontup] if compiled.positional else None

    def execute_many(self, conn, rows: list[tuple]) -> None:
        if not rows:
            return
        if self.order is None:
            params = [dict(zip(self.names, row)) for row in rows]
        else:
            params = [tuple(row[i] for i in self.order) for row in rows]
        conn.exec_driver_sql(self.sql, params)


def _take_sequence(conn, layer_id: str, count: int) -> int:
    """Reserve ``count`` arrival numbers for ``layer_id``; returns the first. The counter's row stays locked until
    the transaction ends, so numbers are handed out in commit order and a follower never skips a row."""
    sequences = METADATA.tables["arrival_sequences"]
    conn.execute(insert_ignoring_duplicates(sequences, conn.dialect.name), [dict(layer_id=layer_id, last_seq=0)])
    last = conn.execute(update(sequences).where(sequences.c.layer_id == layer_id)
                        .values(last_seq=sequences.c.last_seq + count).returning(sequences.c.last_seq)).scalar_one()
    return last - count + 1


def _add_counters(conn, increments: dict[str, int], last_commit_at: int) -> None:
    counters = METADATA.tables["ingest_counters"]
    conn.execute(insert_ignoring_duplicates(counters, conn.dialect.name),
                 [dict(name=name, value=0) for name in COUNTERS])
    for name, amount in increments.items():
        if amount:
            conn.execute(update(counters).where(counters.c.name == name).values(value=counters.c.value + amount))
    conn.execute(update(counters).where(counters.c.name == "last_commit_at").values(value=last_commit_at))


# --- reading back -----------------------------------------------------------------------------------------------

def status(store: Store, recent: int = 20) -> dict:
    """The ingest's counters (received, stored, duplicates, dead_lettered, batches, last_commit_at), the number of
    dead letters by reason, and the most recent ones: what an admin view shows."""
    counters_table = METADATA.tables["ingest_counters"]
    letters = METADATA.tables["dead_letters"]
    with store.engine.connect() as conn:
        counters = {name: 0 for name in COUNTERS}
        counters.update({r.name: r.value for r in conn.execute(select(counters_table))})
        by_reason = conn.execute(select(letters.c.reason, func.count()).group_by(letters.c.reason)
                                 .order_by(func.count().desc()).limit(recent)).all()
        latest = conn.execute(select(letters).order_by(letters.c.letter_id.desc()).limit(recent)).mappings().all()
    counters["last_commit_at"] = (pd.Timestamp(counters["last_commit_at"], unit="s", tz="UTC")
                                  .tz_convert(city_timezone()) if counters["last_commit_at"] else None)
    counters["dead_letters_by_reason"] = {reason: n for reason, n in by_reason}
    counters["recent_dead_letters"] = [dict(row) for row in latest]
    return counters


def arrived_since(store: Store, layer_id: str, seq: int) -> tuple[pd.DataFrame, int]:
    """The rows of ``readings`` or ``alarms`` committed by the ingest after arrival number ``seq`` (an alarm comes
    again when it is cleared), decoded like :func:`layers.load.load_layer`, and the newest number among them (``seq``
    itself when nothing arrived). Start from 0; rows written by a bulk load or import have no number."""
    from layers.load import decode_frame
    from layers.store import ARRIVAL_LAYERS

    if layer_id not in ARRIVAL_LAYERS:
        raise KeyError(f"layer {layer_id!r} has no arrival numbers; those that do: {', '.join(ARRIVAL_LAYERS)}")
    spec = LAYERS[layer_id]
    raw = store.read_frame(layer_id, [*spec.column_names, "seq"], where=lambda t: t.c.seq > int(seq))
    raw = raw.sort_values("seq", kind="stable").reset_index(drop=True)
    newest = int(raw["seq"].max()) if len(raw) else int(seq)
    frame = decode_frame(spec, raw)
    frame["seq"] = raw["seq"].astype("int64")
    return frame, newest


def newest_readings(store: Store, since: int, until: int) -> pd.DataFrame:
    """Each sensor's newest reading at or before ``until`` (epoch seconds), if it is at ``since`` or later: columns
    ``sensor_id``, ``ts`` (epoch seconds), ``value``; one row per sensor of the sensors layer that has one.

    One index seek per sensor (the readings' unique index on sensor and instant), not a scan of the window: the
    alert rules ask every 15 s with a 3-hour window, and a stream at the seed's rate (4,500 readings a second) keeps
    48 million raw readings in 3 hours."""
    readings, sensors = METADATA.tables["readings"], METADATA.tables["sensors"]
    # Both bounds in the seek: PostgreSQL then looks only in the days' partitions the window touches.
    newest = (select(readings.c.ts).where(readings.c.sensor_id == sensors.c.sensor_id,
                                          readings.c.ts >= int(since), readings.c.ts <= int(until))
              .order_by(readings.c.ts.desc()).limit(1).scalar_subquery())
    heard = select(sensors.c.sensor_id, newest.label("ts")).subquery()
    query = (select(readings.c.sensor_id, readings.c.ts, readings.c.value)
             .join(heard, (readings.c.sensor_id == heard.c.sensor_id) & (readings.c.ts == heard.c.ts)))
    frame = pd.DataFrame(store.read_query(query), columns=["sensor_id", "ts", "value"])
    frame = frame.drop_duplicates("sensor_id", ignore_index=True)  # a sensor listed twice: one row, as the scan gave
    return frame.astype({"ts": "int64", "value": "float64"})


# --- the MQTT service -------------------------------------------------------------------------------------------

@dataclass
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int   # which connection delivered it: an ack belongs to that connection only
    received_at: float


def _is_transient(error: Exception) -> bool:
    """A database that is down, locked or read-only (retry later) as opposed to a batch it refuses."""
    return isinstance(error, (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError, exc.TimeoutError)) \
        or getattr(error, "connection_invalidated", False) or store_health.is_unavailability(error)


class IngestService:
    """Subscribe, batch, commit, then acknowledge. :meth:`run` blocks until :meth:`stop`."""

    def __init__(self, store: Store, broker: str = "mqtt://127.0.0.1:1883", *, client_id: str = "citytwin-ingest",
                 topics: Iterable[str] = (f"{TOPIC_PREFIX}/#",), batch_size: int = 1000, batch_seconds: float = 0.2,
                 session_expiry_s: int = 7 * 24 * 3600, max_backoff_s: float = 5.0):
        import paho.mqtt.client as mqtt

        parsed = urlparse(broker)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ValueError(f"broker {broker!r}: expected mqtt://host:port")
        self.host, self.port = parsed.hostname, parsed.port or 1883
        self.store = store
        self.writer = BatchWriter(store)
        self.sensors = SensorDirectory(store)
        self.topics = list(topics)
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.session_expiry_s = session_expiry_s
        self.max_backoff_s = max_backoff_s
        self.inbox: queue.Queue[_Inbound] = queue.Queue()
        self.generation = 0
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.waiting_for_database = False
        self.acknowledged = 0  # messages acknowledged to the broker (every one of them committed first)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.manual_ack_set(True)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        if parsed.username:
            self.client.username_pw_set(parsed.username, parsed.password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # paho's network thread: keep these short, never raise.
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        self.generation += 1
        client.subscribe([(topic, 1) for topic in self.topics])
        self.connected.set()
        log.info("connected to %s:%s (session present: %s)", self.host, self.port, flags.session_present)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self.stopping.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message):
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = repr(message._topic)[:200]
        self.inbox.put(_Inbound(topic, bytes(message.payload), message.mid, message.qos, self.generation,
                                time.time()))

    # the ingest thread
    def run(self) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        # How many unacknowledged messages the broker may send us: two batches' worth keeps the pipe full while
        # one commits; when the database is down it caps what waits in memory.
        properties.ReceiveMaximum = min(65535, 2 * self.batch_size)
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=properties)
        self.client.loop_start()
        last_report = time.monotonic()
        try:
            while not self.stopping.is_set():
                held = self._collect()
                if held:
                    self._commit(held)
                if time.monotonic() - last_report > 10:
                    last_report = time.monotonic()
                    log.info("counters: %s", {k: v for k, v in status(self.store, recent=0).items()
                                              if k in COUNTERS})
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def start(self) -> threading.Thread:
        """:meth:`run` in a daemon thread (an engine process that hosts the ingest); :meth:`stop` ends it."""
        thread = threading.Thread(target=self.run, name="citytwin-ingest", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()

    def _collect(self) -> list[_Inbound]:
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        held = [first]
        deadline = time.monotonic() + self.batch_seconds
        while len(held) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                held.append(self.inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return held

    def _commit(self, held: list[_Inbound]) -> None:
        batch = Batch()
        for message in held:
            batch.extend(decode_message(message.topic, message.payload, self.sensors, message.received_at))
        backoff = 0.2
        while True:
            try:
                result = self.writer.write(batch)
                break
            except Exception as error:
                if _is_transient(error):
                    # Hold the batch, acknowledge nothing: the broker keeps every message until we can store it.
                    if not self.waiting_for_database:
                        log.warning("database unavailable (%s); holding %d messages, retrying",
                                    str(error).splitlines()[0][:200], len(held))
                    self.waiting_for_database = True
                    if self.stopping.wait(backoff):
                        return  # stopping: unacknowledged, so the broker delivers them again to the next run
                    backoff = min(self.max_backoff_s, backoff * 2)
                    continue
                # The database refuses this batch (not down): store the messages one by one, dead-lettering those
                # it refuses, rather than retry forever or drop the good ones with the bad.
                log.exception("a batch of %d messages was refused; writing them one by one", len(held))
                self._commit_one_by_one(held)
                return
        if self.waiting_for_database:
            log.info("database back; batch of %d messages stored", len(held))
            self.waiting_for_database = False
        self._acknowledge(held)

    def _commit_one_by_one(self, held: list[_Inbound]) -> None:
        for message in held:
            batch = decode_message(message.topic, message.payload, self.sensors, message.received_at)
            try:
                self.writer.write(batch)
            except Exception as error:
                if _is_transient(error):
                    return  # unacknowledged from here on: redelivered, retried
                self.writer.write(Batch(received=1, dead_letters=[dead_letter(
                    message.topic, message.payload, f"the store refused it: {str(error).splitlines()[0][:300]}",
                    message.received_at)]))
            self._acknowledge([message])

    def _acknowledge(self, held: list[_Inbound]) -> None:
        generation = self.generation
        for message in held:
            # A message delivered on an earlier connection is delivered again on this one (same session): that
            # copy is the one to acknowledge; acking the old packet id could acknowledge another message.
            if message.qos > 0 and message.generation == generation:
                self.client.ack(message.mid, message.qos)
                self.acknowledged += 1


def main(argv: list[str] | None = None) -> int:
    from layers.store import default_database_url
    from layers.store_health import StoreTimeouts

    parser = argparse.ArgumentParser(prog="python -m layers.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://host:port of the MQTT broker")
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: $CITYTWIN_DATABASE_URL or "
                                                               "the embedded data/citytwin.sqlite)")
    parser.add_argument("--client-id", default="citytwin-ingest",
                        help="fixed MQTT client id: the broker keeps this session's messages while we are away")
    parser.add_argument("--topic", action="append", default=None, help=f"topic filter (default {TOPIC_PREFIX}/#)")
    parser.add_argument("--batch-size", type=int, default=1000, help="messages per transaction at most")
    parser.add_argument("--batch-ms", type=int, default=200, help="longest wait for a batch to fill")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    store = Store(args.database_url or default_database_url(), timeouts=StoreTimeouts.from_environ())
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    backoff = 0.5
    while True:  # a database that is not up yet (started together with us) is waited for, not a reason to exit
        try:
            built = store.layer_version("units") > 0
            break
        except (exc.OperationalError, store_health.StoreUnavailable) as error:
            log.warning("database unavailable (%s); retrying in %.1f s", str(error).splitlines()[0][:200], backoff)
            if stopping.wait(backoff):
                return 1
            backoff = min(10.0, backoff * 2)
        except exc.SQLAlchemyError:
            built = False
            break
    if not built:
        print(f"the database {store.url} has no city: run `make sample` or import one first", file=sys.stderr)
        return 2
    service = IngestService(store, args.broker, client_id=args.client_id,
                            topics=args.topic or (f"{TOPIC_PREFIX}/#",), batch_size=args.batch_size,
                            batch_seconds=args.batch_ms / 1000)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: service.stop())
    if not stopping.is_set():
        service.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
