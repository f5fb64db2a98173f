"""The store: SQLAlchemy 2 over an embedded SQLite file by default, PostgreSQL/PostGIS given a URL.

One code path serves both back ends. Tables are built from the layer registry (:mod:`layers.specs`). Polygon
geometry is a real ``geometry(Geometry, 4326)`` column on PostGIS and WKB in a BLOB on SQLite; the difference is
confined to :class:`Geometry` below (the SQL it compiles to, and the expressions that convert to and from WKB), so
the rest of the code only ever sees WKB bytes.

Every write of a layer is one transaction: the old rows are replaced only if the new ones were all written, so a
failed import leaves what was stored untouched. ``layer_versions`` counts the writes of each layer; caches key on it.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import UserDefinedType

from layers import store_health
from layers.specs import LAYERS, LayerSpec
from layers.store_health import StoreHealth, StoreUnavailable

DEFAULT_DATABASE = Path(__file__).resolve().parent.parent / "data" / "citytwin.sqlite"
DATABASE_URL_ENV = "CITYTWIN_DATABASE_URL"
INSERT_CHUNK_ROWS = 50_000


def default_database_url() -> str:
    """The URL in ``CITYTWIN_DATABASE_URL``, else the embedded file ``data/citytwin.sqlite``."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{DEFAULT_DATABASE}"


# --- geometry column: PostGIS geometry or SQLite WKB ------------------------------------------------------------

class geometry_from_wkb(GenericFunction):
    inherit_cache = True


class geometry_as_wkb(GenericFunction):
    inherit_cache = True


@compiles(geometry_from_wkb)
def _from_wkb_plain(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(geometry_from_wkb, "postgresql")
def _from_wkb_postgis(element, compiler, **kw):
    return f"ST_GeomFromWKB({compiler.process(element.clauses, **kw)}, 4326)"


@compiles(geometry_as_wkb)
def _as_wkb_plain(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(geometry_as_wkb, "postgresql")
def _as_wkb_postgis(element, compiler, **kw):
    return f"ST_AsBinary({compiler.process(element.clauses, **kw)})"


class Geometry(UserDefinedType):
    """A geometry in EPSG:4326 exchanged as WKB bytes; PostGIS geometry on PostgreSQL, BLOB elsewhere."""

    cache_ok = True

    def get_col_spec(self, **kw):
        return "BLOB"

    def bind_expression(self, bindvalue):
        return geometry_from_wkb(bindvalue, type_=self)

    def column_expression(self, col):
        return geometry_as_wkb(col, type_=self)

    def bind_processor(self, dialect):
        def process(value):
            return None if value is None else bytes(value)
        return process

    def result_processor(self, dialect, coltype):
        def process(value):
            return None if value is None else bytes(value)
        return process


@compiles(Geometry, "postgresql")
def _geometry_postgis(type_, compiler, **kw):
    return "geometry(Geometry, 4326)"


_SQL_TYPES = {
    "str": Text,
    "int": BigInteger,
    "float": Float,
    "bool": Boolean,
    "time": BigInteger,
    "polygon": Geometry,
    "line": Geometry,
}


def _build_metadata() -> MetaData:
    metadata = MetaData()
    for spec in LAYERS.values():
        columns = [
            Column(c.name, _SQL_TYPES[c.kind](), nullable=c.nullable)
            for c in spec.columns
        ]
        if spec.id in ARRIVAL_LAYERS:
            # Not a layer column (loaders and writers never see it): the order rows arrived in, for followers.
            columns.append(Column("seq", BigInteger, nullable=True))
        # On PostgreSQL the raw readings are partitioned by day, so retention drops a day instead of deleting it
        # row by row (layers/retention.py); the natural key (sensor_id, ts) holds the partition key, as it must.
        partitioned = {"postgresql_partition_by": "RANGE (ts)"} if spec.id == "readings" else {}
        table = Table(spec.table, metadata, *columns, **partitioned)
        for name in spec.indexes:
            Index(f"ix_{spec.table}_{name}", table.c[name])
        if spec.unique_key:
            Index(f"ux_{spec.table}_{spec.key}", table.c[spec.key], unique=True)
    # The work-order list pages through orders newest first, or by deadline, with the id as the tie-break: with the
    # id in the index, a page a million rows down is a skip along the index (30 ms at the city scale), not a sort.
    orders = metadata.tables[LAYERS["orders"].table]
    Index(f"ix_{orders.name}_received_at_order_id", orders.c.received_at, orders.c.order_id)
    Index(f"ix_{orders.name}_deadline_at_order_id", orders.c.deadline_at, orders.c.order_id)
    # A department's own list (the commonest filter), newest first, walks its part of this index: 1 ms instead of
    # sorting its 600,000 orders (300 ms).
    Index(f"ix_{orders.name}_department_received_at_order_id", orders.c.department, orders.c.received_at,
          orders.c.order_id)
    Table(
        "layer_versions",
        metadata,
        Column("layer_id", String(64), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("rows", BigInteger, nullable=False),
        Column("written_at", BigInteger, nullable=False),
        Column("source", Text, nullable=False),
    )
    _work_order_tables(metadata)
    _ingest_tables(metadata)
    # The city's own settings (layers.city_settings): name, time zone, holiday calendar, languages; key → text.
    Table("city_settings", metadata, Column("key", String(64), primary_key=True),
          Column("value", Text, nullable=False))
    _alert_tables(metadata)
    return metadata


ARRIVAL_LAYERS = ("readings", "alarms", "sensors")
"""Layers whose rows carry an arrival sequence ``seq`` (see :mod:`layers.ingest`): a stream writer numbers what it
commits, so a follower reads only what arrived since the last number it saw. Rows of a bulk write have none. A
sensor's ``seq`` is the number of the last batch that reported on it (one number per batch: the stream writes a
sensor's row again, it does not add one), so that the sensors' version and their numbers move together."""

READINGS_BATCHES = "readings_batches"
"""The arrival counter (a row of ``arrival_sequences`` beside the layers') that numbers the stream's batches that
stored readings: one number each, as the readings' version moves by one, while the readings' own counter moves by one
per reading. A follower whose mark's version moved as far as this counter did reads only the readings numbered
since (:func:`layers.city.with_sensor_layers_read_again`)."""

NATURAL_KEYS = {"readings": ("sensor_id", "ts"), "alarms": ("alarm_id",)}
"""What makes a row of these layers the same row: a sensor reports one value per instant, an alarm has one id. A
unique index holds them, so a message delivered twice (MQTT QoS 1 is at least once) is stored once."""


def _ingest_tables(metadata: MetaData) -> None:
    """The tables of the stream ingest (:mod:`layers.ingest`, :mod:`layers.retention`) that are not layers."""
    for layer_id in ARRIVAL_LAYERS:
        table = metadata.tables[LAYERS[layer_id].table]
        Index(f"ix_{table.name}_seq", table.c.seq)
    for layer_id, key in NATURAL_KEYS.items():
        table = metadata.tables[LAYERS[layer_id].table]
        Index(f"ux_{table.name}_{'_'.join(key)}", *(table.c[name] for name in key), unique=True)
    # The readings loaded in bulk (no arrival number: the sample, an import) and not folded yet, by sensor and
    # instant. A live refresh reads those of the hours the stream touched (layers.retention.hourly_readings_arrived);
    # through the unique index it visited the stream's own rows of those hours too: 1.6 s a refresh, in every worker,
    # 12 minutes into an hour at 4,500 readings a second, and growing to the hour's end. The stream's rows are not in
    # this index, so it costs their inserts nothing.
    readings = metadata.tables[LAYERS["readings"].table]
    unnumbered = readings.c.seq.is_(None)
    Index(f"ix_{readings.name}_unnumbered", readings.c.sensor_id, readings.c.ts, sqlite_where=unnumbered,
          postgresql_where=unnumbered)
    # The ingest updates a sensor's last_seen_at and status by id, a thousand sensors a batch.
    sensors = metadata.tables[LAYERS["sensors"].table]
    Index(f"ix_{sensors.name}_sensor_id", sensors.c.sensor_id)
    Table(
        "arrival_sequences",
        metadata,
        Column("layer_id", String(64), primary_key=True),
        Column("last_seq", BigInteger, nullable=False),
    )
    Table(
        "dead_letters",
        metadata,
        Column("letter_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("topic", Text, nullable=False),
        Column("payload_excerpt", Text, nullable=False),  # the first bytes, decoded leniently: never the whole body
        Column("payload_bytes", BigInteger, nullable=False),
        Column("reason", Text, nullable=False),
        Column("received_at", BigInteger, nullable=False),  # UTC epoch seconds
    )
    Table(
        "ingest_counters",
        metadata,
        Column("name", String(64), primary_key=True),
        Column("value", BigInteger, nullable=False),
    )
    hourly = Table(
        "readings_hourly",
        metadata,
        Column("sensor_id", Text, nullable=False),
        Column("hour", BigInteger, nullable=False),  # UTC epoch seconds of the hour's start
        Column("count", BigInteger, nullable=False),
        Column("min", Float, nullable=False),
        Column("max", Float, nullable=False),
        Column("mean", Float, nullable=False),
    )
    Index("ux_readings_hourly_sensor_hour", hourly.c.sensor_id, hourly.c.hour, unique=True)
    Index("ix_readings_hourly_hour", hourly.c.hour)


def _work_order_tables(metadata: MetaData) -> None:
    """The tables of :mod:`layers.workorders` that are not layers: the append-only log of every transition of an
    order, and the versioned responsibility list. They are written one action at a time, never replaced."""
    transitions = Table(
        "order_transitions",
        metadata,
        Column("transition_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("order_id", Text, nullable=False),
        Column("seq", Integer, nullable=False),           # 1, 2, … per order; unique with the order
        Column("at", BigInteger, nullable=False),         # UTC epoch seconds
        Column("actor", Text, nullable=False),
        Column("action", String(32), nullable=False),
        Column("from_status", String(32), nullable=True),  # empty for the intake
        Column("to_status", String(32), nullable=False),
        Column("note", Text, nullable=False),
        Column("department", Text, nullable=True),         # the order's department after the transition
        Column("rules_version", Integer, nullable=True),
        Column("satisfied", Boolean, nullable=True),       # the citizen's answer (evaluate, reopen)
        Column("deadline_at", BigInteger, nullable=False),  # the order's deadline after the transition
        Column("order_version", Integer, nullable=False),  # the order's version after the transition
    )
    Index("ux_order_transitions_order_seq", transitions.c.order_id, transitions.c.seq, unique=True)
    Index("ix_order_transitions_at", transitions.c.at)
    Table(
        "responsibility_versions",
        metadata,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("created_at", BigInteger, nullable=False),
        Column("decided_by", Text, nullable=False),
        Column("note", Text, nullable=False),
        Column("changed_event_type", Text, nullable=True),  # empty for a whole list (seeded or imported)
    )
    rules = Table(
        "responsibility_rules",
        metadata,
        Column("version", Integer, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("category", Text, nullable=False),
        Column("name", Text, nullable=False),
        Column("name_zh", Text, nullable=False),
        Column("department", Text, nullable=False),
        Column("time_limit_hours", Integer, nullable=False),
    )
    Index("ux_responsibility_rules_version_type", rules.c.version, rules.c.event_type, unique=True)
    # A client's key for one request (Open311's Idempotency-Key): the same key filed again returns the same order
    # instead of a second one, so a client that lost our answer can safely send again.
    Table(
        "request_keys",
        metadata,
        Column("request_key", Text, primary_key=True),   # the client's channel and its key
        Column("order_id", Text, nullable=False),
        Column("created_at", BigInteger, nullable=False),
    )


def _alert_tables(metadata: MetaData) -> None:
    """The tables of :mod:`layers.alerts`, like the work orders': the versioned alert rules (a change is a new
    version, never an update), each rule's evaluation state per place, the alerts, and the append-only log of every
    transition of an alert."""
    Table(
        "alert_rule_versions",
        metadata,
        Column("rule_id", String(64), primary_key=True),
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("body", Text, nullable=False),              # the rule as JSON (metrics.alert_rules.Rule.to_json)
        Column("enabled", Boolean, nullable=False),
        Column("changed_at", BigInteger, nullable=False),  # UTC epoch seconds
        Column("changed_by", Text, nullable=False),
        Column("note", Text, nullable=False),
    )
    Table(
        "alert_instances",
        metadata,
        Column("rule_id", String(64), primary_key=True),
        Column("place", String(256), primary_key=True),
        Column("state", String(16), nullable=False),       # normal | pending | alerting | recovering
        Column("since", BigInteger, nullable=True),
        Column("alert_id", String(32), nullable=True),
    )
    alerts = Table(
        "alerts",
        metadata,
        Column("alert_id", String(32), primary_key=True),
        Column("rule_id", String(64), nullable=False),
        Column("rule_version", Integer, nullable=False),
        Column("kind", String(32), nullable=False),
        Column("severity", String(16), nullable=False),
        Column("title", Text, nullable=False),
        Column("title_zh", Text, nullable=False),
        Column("place", String(256), nullable=False),
        Column("sensor_id", Text, nullable=True),
        Column("building_id", Text, nullable=True),
        Column("grid_code", Text, nullable=True),
        Column("unit_code", Text, nullable=True),
        Column("lon", Float, nullable=True),
        Column("lat", Float, nullable=True),
        Column("value", Float, nullable=True),
        Column("evidence", Text, nullable=False),
        Column("evidence_zh", Text, nullable=False),
        Column("status", String(16), nullable=False),      # firing | acknowledged | assigned | resolved
        Column("condition", String(16), nullable=False),   # active | clearing | clear
        Column("fired_at", BigInteger, nullable=False),
        Column("acknowledged_at", BigInteger, nullable=True),
        Column("acknowledged_by", Text, nullable=True),
        Column("assigned_at", BigInteger, nullable=True),
        Column("department", Text, nullable=True),
        Column("order_id", Text, nullable=True),
        Column("resolved_at", BigInteger, nullable=True),
        Column("resolved_by", Text, nullable=True),
        Column("version", Integer, nullable=False),
    )
    Index("ix_alerts_status", alerts.c.status)
    Index("ix_alerts_rule_place", alerts.c.rule_id, alerts.c.place)
    Index("ix_alerts_order_id", alerts.c.order_id)
    log = Table(
        "alert_transitions",
        metadata,
        Column("transition_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("alert_id", String(32), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("at", BigInteger, nullable=False),
        Column("actor", Text, nullable=False),
        Column("action", String(32), nullable=False),
        Column("from_status", String(16), nullable=True),  # empty when the alert fires
        Column("to_status", String(16), nullable=False),
        Column("note", Text, nullable=False),
        Column("department", Text, nullable=True),
        Column("order_id", Text, nullable=True),
    )
    Index("ux_alert_transitions_alert_seq", log.c.alert_id, log.c.seq, unique=True)


METADATA = _build_metadata()


class StoreError(RuntimeError):
    """A problem with the database that a user can act on."""


class Store:
    """Read and write layers in one database.

    >>> store = Store("sqlite://")          # in memory
    >>> store.create_schema()
    >>> store.layer_version("units")
    0
    """

    def __init__(self, url: str | None = None, engine: Engine | None = None,
                 timeouts: store_health.StoreTimeouts = store_health.StoreTimeouts(),
                 snapshot_dir: Path | None = None):
        self.url = url or default_database_url()
        self.timeouts = timeouts
        # Where the columnar snapshots of this store's city go (layers/snapshot.py); None: the default beside it.
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else None
        if engine is None:
            if self.url.startswith("sqlite:///") and not self.url.startswith("sqlite:///:memory:"):
                Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, future=True, **_timeouts(self.url, timeouts))
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
        self.engine = engine
        self.health = StoreHealth(self.url, timeouts.request)
        store_health.watch(engine, self.health)

    @contextlib.contextmanager
    def write(self):
        """One write transaction, yielding its connection. On SQLite it takes the write lock first (BEGIN
        IMMEDIATE), so that writers queue for up to the busy timeout instead of failing when one read before
        another committed. A store that does not answer raises :class:`StoreUnavailable`: ``outcome="not_stored"``
        if it failed before the commit was sent (the database rolls back a transaction whose connection is lost),
        ``"unknown"`` if it failed during the commit (it may have been saved)."""
        try:
            conn = self.engine.connect()
        except Exception as error:
            if store_health.is_unavailability(error):
                raise store_health.unavailable(error) from error
            raise
        with conn:
            try:
                if self.dialect == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    conn.begin()
                yield conn
            except Exception as error:
                with contextlib.suppress(Exception):
                    conn.rollback()
                if store_health.is_unavailability(error):
                    raise store_health.unavailable(error) from error
                raise
            try:
                conn.commit()
            except Exception as error:
                if store_health.is_unavailability(error):
                    raise store_health.unavailable(error, outcome="unknown") from error
                raise

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        if self.dialect == "postgresql":
            with self.engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        METADATA.create_all(self.engine)
        if self.dialect == "postgresql":
            with self.engine.begin() as conn:
                partitioned = conn.execute(text(
                    "SELECT relkind FROM pg_class WHERE relname = 'readings' "
                    "AND relnamespace = current_schema()::regnamespace")).scalar() == "p"
                if partitioned:  # rows of a day without its own partition (a bulk load, a late reading) land here
                    conn.execute(text("CREATE TABLE IF NOT EXISTS readings_default PARTITION OF readings DEFAULT"))
        self._add_missing_columns()
        self._allow_empty_where_declared()

    def _add_missing_columns(self) -> None:
        """Bring a database written by an older release up to the registry: add the columns a layer gained since
        (empty, or the column's declared default for rows already stored) and the indexes it lacks."""
        with self.engine.begin() as conn:
            for spec in LAYERS.values():
                # The names as the database has them (the inspector would warn about PostGIS's geometry type).
                present = set(conn.execute(text(f'SELECT * FROM "{spec.table}" LIMIT 0')).keys())
                table = METADATA.tables[spec.table]
                for column in spec.columns:
                    if column.name in present:
                        continue
                    sql_type = table.c[column.name].type.compile(dialect=self.engine.dialect)
                    clause = f'ALTER TABLE "{spec.table}" ADD COLUMN "{column.name}" {sql_type}'
                    if column.default is not None:
                        clause += f" NOT NULL DEFAULT {int(column.default)}"
                    elif not column.nullable:
                        raise StoreError(f"table {spec.table!r} lacks column {column.name!r}, which has no "
                                         "default: rebuild or re-import the city")
                    conn.execute(text(clause))
                for column in table.columns:
                    if column.name not in present and column.name not in spec.column_names:
                        # A column the store keeps beside the layer's own (``seq``): empty for older rows.
                        sql_type = column.type.compile(dialect=self.engine.dialect)
                        conn.execute(text(f'ALTER TABLE "{spec.table}" ADD COLUMN "{column.name}" {sql_type}'))
                if spec.id in NATURAL_KEYS:
                    _drop_duplicate_rows(conn, spec.table, NATURAL_KEYS[spec.id])
                for index in table.indexes:
                    index.create(conn, checkfirst=True)

    def _allow_empty_where_declared(self) -> None:
        """Drop NOT NULL from the columns the registry now declares nullable (``buildings.residents`` became
        "empty = unknown"), so that a database written by an older release takes an import that leaves them empty.
        PostgreSQL alters the column; SQLite cannot, so its table is rebuilt once, rows and indexes kept."""
        with self.engine.begin() as conn:
            for spec in LAYERS.values():
                nullable = {column.name for column in spec.columns if column.nullable}
                if self.dialect == "postgresql":
                    stale = [name for (name,) in conn.execute(text(
                        "SELECT column_name FROM information_schema.columns WHERE table_name = :table "
                        "AND table_schema = current_schema() AND is_nullable = 'NO'"), {"table": spec.table})
                        if name in nullable]
                    for name in stale:
                        conn.execute(text(f'ALTER TABLE "{spec.table}" ALTER COLUMN "{name}" DROP NOT NULL'))
                elif self.dialect == "sqlite":
                    info = conn.execute(text(f'PRAGMA table_info("{spec.table}")')).fetchall()
                    if any(row[1] in nullable and row[3] and not row[5] for row in info):
                        self._rebuild_sqlite_table(conn, spec.table, [row[1] for row in info])

    @staticmethod
    def _rebuild_sqlite_table(conn, table_name: str, columns: list[str]) -> None:
        old = f"{table_name}__before_rebuild"
        conn.execute(text(f'ALTER TABLE "{table_name}" RENAME TO "{old}"'))
        # The indexes move with the renamed table under their names; drop them so the new table can have them.
        for (index,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
                                          "AND sql IS NOT NULL"), {"t": old}).fetchall():
            conn.execute(text(f'DROP INDEX "{index}"'))
        METADATA.tables[table_name].create(conn)
        kept = ", ".join(f'"{name}"' for name in columns)
        conn.execute(text(f'INSERT INTO "{table_name}" ({kept}) SELECT {kept} FROM "{old}"'))
        conn.execute(text(f'DROP TABLE "{old}"'))

    def is_built(self) -> bool:
        """True when the schema exists and the units layer has rows."""
        try:
            return self.layer_version("units") > 0
        except Exception:
            return False

    def table(self, layer_id: str) -> Table:
        return METADATA.tables[LAYERS[layer_id].table]

    # --- writing ------------------------------------------------------------------------------------------------

    def city_settings(self) -> dict[str, str]:
        """The city's stored settings (key → text; empty for a city stored without them), read without creating
        anything."""
        try:
            with self.engine.connect() as conn:
                return dict(conn.execute(select(METADATA.tables["city_settings"])).all())
        except Exception:  # no such table yet: a city written by an older release has the default settings
            return {}

    def replace_layers(self, frames: Mapping[str, pd.DataFrame], source: str, progress=None,
                       settings: Mapping[str, str] | None = None) -> None:
        """Replace the rows of several layers in one transaction (all or nothing).

        ``frames`` maps a layer id to a frame holding the spec's columns, already encoded by :func:`encode_frame`
        (polygons as WKB bytes, times as epoch seconds). ``settings`` (the city's, key → text) are written in the
        same transaction, each replacing the stored one.
        """
        self.create_schema()
        versions = METADATA.tables["layer_versions"]
        with self.engine.begin() as conn:
            if settings:
                table = METADATA.tables["city_settings"]
                conn.execute(delete(table).where(table.c.key.in_(list(settings))))
                conn.execute(insert(table), [{"key": key, "value": str(value)} for key, value in settings.items()])
            if "orders" in frames:
                # The log belongs to the orders it describes: replacing every order (a new city) starts it anew.
                conn.execute(delete(METADATA.tables["order_transitions"]))
                conn.execute(delete(METADATA.tables["request_keys"]))
            if "readings" in frames:
                # So do the hourly aggregates (layers/retention.py) of the readings being replaced.
                conn.execute(delete(METADATA.tables["readings_hourly"]))
            for layer_id, frame in frames.items():
                table = self.table(layer_id)
                conn.execute(delete(table))
                statement = insert_ignoring_duplicates(table, self.dialect) if layer_id in NATURAL_KEYS \
                    else insert(table)
                for chunk in _record_chunks(frame, LAYERS[layer_id]):
                    conn.execute(statement, chunk)
                    if progress is not None:
                        progress(layer_id, len(chunk))
                current = conn.execute(
                    select(versions.c.version).where(versions.c.layer_id == layer_id)
                ).scalar_one_or_none()
                row = dict(layer_id=layer_id, version=(current or 0) + 1, rows=len(frame),
                           written_at=int(time.time()), source=source)
                if current is None:
                    conn.execute(insert(versions), row)
                else:
                    conn.execute(versions.update().where(versions.c.layer_id == layer_id).values(**row))

    # --- reading ------------------------------------------------------------------------------------------------

    def read_frame(self, layer_id: str, columns: Iterable[str] | None = None, where=None) -> pd.DataFrame:
        """The raw stored rows of a layer (geometry as WKB, times as epoch seconds)."""
        table = self.table(layer_id)
        names = list(columns) if columns is not None else [c.name for c in table.columns]
        query = select(*(table.c[n] for n in names))
        if where is not None:
            query = query.where(where(table))
        return pd.DataFrame.from_records(self.read_query(query), columns=names)

    def read_query(self, query) -> list[tuple]:
        """The rows of a SELECT as the driver's tuples; a store that does not answer raises as :meth:`read_frame`."""
        # Millions of rows: run the compiled query on the driver's cursor. SQLAlchemy's Row objects cost 4x the
        # driver's own tuples here, and the conversions they would do are done column-wise by the loader.
        # render_postcompile: expanding parameters (``column.in_(values)``) become plain ones the driver accepts.
        compiled = query.compile(dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.params
        if compiled.positional:
            params = tuple(params[name] for name in compiled.positiontup)
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(str(compiled), params)
            rows = cursor.fetchall()
            cursor.close()
            self.health.succeeded()
        except Exception as error:
            if store_health.is_unavailability(error) or _is_driver_disconnect(error):
                self.health.failed(error)
                connection.invalidate()
                raise store_health.unavailable(error) from error
            raise
        finally:
            connection.close()
        return rows

    def layer_version(self, layer_id: str) -> int:
        versions = METADATA.tables["layer_versions"]
        with self.engine.connect() as conn:
            version = conn.execute(
                select(versions.c.version).where(versions.c.layer_id == layer_id)
            ).scalar_one_or_none()
        return version or 0

    def arrival_mark(self, layer_id: str, *counters: str) -> tuple[int, ...]:
        """The layer's version and the last arrival number handed out for it, read together (one transaction): a
        follower that read the layer at this mark can later read only what arrived since, provided the version has
        moved by no more than the numbers have (every change since came numbered from the stream). ``counters``:
        other arrival counters read in the same transaction, their last numbers after the layer's (the readings'
        batches, :data:`READINGS_BATCHES`)."""
        versions, sequences = METADATA.tables["layer_versions"], METADATA.tables["arrival_sequences"]
        with self.engine.begin() as conn:
            version = conn.execute(select(versions.c.version).where(versions.c.layer_id == layer_id)).scalar()
            numbers = [conn.execute(select(sequences.c.last_seq).where(sequences.c.layer_id == name)).scalar()
                       for name in (layer_id, *counters)]
        return (int(version or 0), *(int(number or 0) for number in numbers))

    def layer_versions(self) -> dict[str, dict]:
        versions = METADATA.tables["layer_versions"]
        with self.engine.connect() as conn:
            rows = conn.execute(select(versions)).mappings().all()
        return {row["layer_id"]: dict(row) for row in rows}

    def count(self, layer_id: str) -> int:
        table = self.table(layer_id)
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()


def bump_layer_versions(conn, added: Mapping[str, int], source: str) -> None:
    """Count a write of each layer in ``added`` (layer id → rows added) in ``layer_versions``, inside the writer's
    transaction: every cache keyed on the versions (the dashboard's generation) sees the change with the data."""
    versions = METADATA.tables["layer_versions"]
    now = int(time.time())
    for layer_id, rows in added.items():
        result = conn.execute(update(versions).where(versions.c.layer_id == layer_id).values(
            version=versions.c.version + 1, rows=versions.c.rows + rows, written_at=now, source=source))
        if result.rowcount == 0:
            conn.execute(insert(versions), [dict(layer_id=layer_id, version=1, rows=rows, written_at=now,
                                                 source=source)])


def insert_ignoring_duplicates(table: Table, dialect: str):
    """An INSERT that skips rows whose natural key (:data:`NATURAL_KEYS`) is already stored, on either back end."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing()


def _drop_duplicate_rows(conn, table_name: str, key: tuple[str, ...]) -> None:
    """Before a database written by an older release gets its unique index: keep the first of rows sharing a key."""
    index_name = f"ux_{table_name}_{'_'.join(key)}"
    names = ", ".join(f'"{k}"' for k in key)
    if conn.dialect.name == "postgresql":
        exists = conn.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = :n"), {"n": index_name}).first()
        row_id = "ctid"
    else:
        exists = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :n"),
                              {"n": index_name}).first()
        row_id = "rowid"
    if exists:
        return
    conn.execute(text(f'DELETE FROM "{table_name}" WHERE {row_id} NOT IN '
                      f'(SELECT MIN({row_id}) FROM "{table_name}" GROUP BY {names})'))


def _timeouts(url: str, timeouts: store_health.StoreTimeouts) -> dict:
    """``create_engine`` arguments so that nothing waits on a database that does not answer (see
    :mod:`layers.store_health`): PostgreSQL's connect timeout and a server-side statement timeout (the longest
    lease: background work), the pool's wait for a free connection, SQLite's wait for the write lock."""
    if url.startswith("postgresql"):
        statement_ms = int(store_health.BACKGROUND_STATEMENT_SECONDS * 1000)
        return {"pool_timeout": timeouts.pool,
                "connect_args": {"connect_timeout": max(1, round(timeouts.connect)),
                                 "options": f"-c statement_timeout={statement_ms}"}}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": timeouts.pool}}
    return {}


def _is_driver_disconnect(error: BaseException) -> bool:
    """A driver's own error (raw cursors are not wrapped by SQLAlchemy) that means the connection is gone."""
    if not type(error).__module__.startswith("psycopg"):
        return False
    import psycopg  # the PostgreSQL driver, present whenever it raised

    # OperationalError covers its subclasses: AdminShutdown (a server stopped), a lost or cut connection, …
    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


def _sqlite_pragmas(dbapi_connection, _record):
    # WAL lets the dashboard read while an import writes; NORMAL sync is safe with WAL and much faster to write.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _record_chunks(frame: pd.DataFrame, spec: LayerSpec):
    """Yield lists of plain-Python row dicts (what DB drivers accept) in chunks."""
    names = spec.column_names
    for start in range(0, len(frame), INSERT_CHUNK_ROWS):
        part = frame.iloc[start:start + INSERT_CHUNK_ROWS]
        columns = {}
        for column in spec.columns:
            values = part[column.name]
            if column.kind in ("int", "time"):
                columns[column.name] = [None if pd.isna(v) else int(v) for v in values.to_numpy(dtype=object)]
            elif column.kind == "float":
                columns[column.name] = [None if v != v else float(v) for v in values.to_numpy(dtype=float)]
            elif column.kind == "bool":
                columns[column.name] = [None if pd.isna(v) else bool(v) for v in values.to_numpy(dtype=object)]
            elif column.kind == "str":
                columns[column.name] = [None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                                        else str(v) for v in values.to_numpy(dtype=object)]
            else:
                columns[column.name] = list(values.to_numpy(dtype=object))
        yield [dict(zip(names, row)) for row in zip(*(columns[n] for n in names))]
