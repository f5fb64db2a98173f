"""Retention: raw readings for a window, hourly aggregates for ever after — a year of a city on one disk.

The stream (:mod:`layers.ingest`) stores every reading; a sensor reporting once a minute is 525,600 rows a year,
270,000 of them 142 billion. :func:`fold` keeps the raw readings of the last ``CITYTWIN_RAW_READINGS_DAYS`` days
(default 7) and folds older ones into ``readings_hourly``: one row per sensor and hour with count, min, max and mean,
in one transaction per fold (the hourly rows are written and the raw ones removed together, or neither).

The hourly table is a continuous aggregate: the ingest's writer adds each reading it stores to its hour's row in the
same transaction (a late reading for an old hour too), so a fold only has to aggregate the rows that did not come
through it — a bulk load or an import, which have no arrival number (``seq``) — before removing the raw rows.

On PostgreSQL the raw readings of a new database are partitioned by day (``readings_p<YYYYMMDD>``, see
:func:`ensure_day_partitions`): a fold drops the partitions of whole days past the window — a catalogue change, no
dead rows to vacuum — and deletes only what sits in the default partition (a bulk load, a late reading). SQLite and
older PostgreSQL databases delete the folded rows by the ``ts`` index.

The indicators count and average *hourly* readings (metrics/sensors.py). :func:`hourly_readings` is the readings
layer as they read it: one row per sensor and hour, from the hourly table and the bulk-loaded raw rows not yet in it
(a sample city's hourly readings come back as they are).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import select, text

from layers.load import check_frame, decode_frame
from layers.specs import LAYERS
from layers.store import METADATA, Store

RAW_DAYS_ENV = "CITYTWIN_RAW_READINGS_DAYS"
DEFAULT_RAW_DAYS = 7.0
HOUR = 3600
DAY = 86400


def raw_days(environ=None) -> float:
    """The raw-readings window in days from ``CITYTWIN_RAW_READINGS_DAYS`` (default 7); a bad value is refused by
    name. The server reads it once at start (dashboard.settings); the command line here when it runs."""
    environ = os.environ if environ is None else environ
    value = (environ.get(RAW_DAYS_ENV) or "").strip()
    if not value:
        return DEFAULT_RAW_DAYS
    try:
        days = float(value)
    except ValueError:
        raise ValueError(f"{RAW_DAYS_ENV}={value!r} is not a number of days") from None
    if not 0 < days < float("inf"):
        raise ValueError(f"{RAW_DAYS_ENV}={value!r}: the raw window must be a number of days above 0")
    return days


@dataclass
class FoldResult:
    cutoff: int          # UTC epoch seconds: raw readings before this were folded
    folded: int          # raw readings folded
    hours: int           # hourly rows written or merged
    dropped_partitions: list[str]
    seconds: float


def fold(store: Store, now: float | None = None, days: float = DEFAULT_RAW_DAYS) -> FoldResult:
    """Fold the raw readings older than ``days`` (the server's ``CITYTWIN_RAW_READINGS_DAYS``) before ``now`` into hourly aggregates,
    in one transaction. The cutoff is on an hour boundary, so no hour is split between the two tables."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    cutoff = int(now - days * DAY) // HOUR * HOUR
    store.create_schema()
    dialect = store.dialect
    smaller, larger = ("MIN", "MAX") if dialect == "sqlite" else ("LEAST", "GREATEST")
    with store.engine.begin() as conn:
        hours = conn.execute(text(f"""
            INSERT INTO readings_hourly (sensor_id, hour, count, min, max, mean)
            SELECT sensor_id, ts - (ts % {HOUR}), COUNT(*), MIN(value), MAX(value), AVG(value)
            FROM readings WHERE ts < :cutoff AND seq IS NULL GROUP BY sensor_id, ts - (ts % {HOUR})
            ON CONFLICT (sensor_id, hour) DO UPDATE SET
                mean = (readings_hourly.mean * readings_hourly.count + excluded.mean * excluded.count)
                       / (readings_hourly.count + excluded.count),
                count = readings_hourly.count + excluded.count,
                min = {smaller}(readings_hourly.min, excluded.min),
                max = {larger}(readings_hourly.max, excluded.max)
        """), {"cutoff": cutoff}).rowcount
        dropped, folded = [], 0
        if dialect == "postgresql" and _is_partitioned(conn):
            for name, upper in _day_partitions(conn):
                if upper <= cutoff:
                    folded += conn.execute(text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one()
                    conn.execute(text(f'ALTER TABLE readings DETACH PARTITION "{name}"'))
                    conn.execute(text(f'DROP TABLE "{name}"'))
                    dropped.append(name)
        folded += conn.execute(text("DELETE FROM readings WHERE ts < :cutoff"), {"cutoff": cutoff}).rowcount
        if folded:
            versions = METADATA.tables["layer_versions"]
            conn.execute(versions.update().where(versions.c.layer_id == "readings").values(
                version=versions.c.version + 1, rows=versions.c.rows - folded, written_at=int(time.time()),
                source="retention"))
    return FoldResult(cutoff, folded, max(hours or 0, 0), dropped, time.perf_counter() - started)


# --- PostgreSQL day partitions ----------------------------------------------------------------------------------

def _is_partitioned(conn) -> bool:
    return conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'readings' "
                             "AND relnamespace = current_schema()::regnamespace")).scalar() == "p"


def _day_partitions(conn) -> list[tuple[str, int]]:
    """The day partitions of readings and the (exclusive) upper bound of each, from their names."""
    names = conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                              "WHERE i.inhparent = 'readings'::regclass AND c.relname LIKE 'readings_p%'")).scalars()
    out = []
    for name in names:
        day = datetime.strptime(name.removeprefix("readings_p"), "%Y%m%d").replace(tzinfo=timezone.utc)
        out.append((name, int((day + timedelta(days=1)).timestamp())))
    return sorted(out, key=lambda item: item[1])


_known_days: set[tuple[str, int]] = set()


def ensure_day_partitions(conn, instants) -> None:
    """Make sure each UTC day of ``instants`` has its own partition (PostgreSQL, partitioned readings only). A day
    the default partition already holds rows of stays there (PostgreSQL refuses the new partition); that is only
    correctness-neutral: those rows are deleted, not dropped, when folded."""
    if conn.dialect.name != "postgresql":
        return
    database = str(conn.engine.url)
    days = {int(t) // DAY * DAY for t in instants} - {d for (db, d) in _known_days if db == database}
    if not days:
        return
    if not _is_partitioned(conn):
        _known_days.update((database, d) for d in days)
        return
    for day in sorted(days):
        name = "readings_p" + datetime.fromtimestamp(day, timezone.utc).strftime("%Y%m%d")
        savepoint = conn.begin_nested()
        try:
            conn.execute(text(f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF readings '
                              f"FOR VALUES FROM ({day}) TO ({day + DAY})"))
            savepoint.commit()
        except Exception:
            savepoint.rollback()
        _known_days.add((database, day))


# --- what the indicators read -----------------------------------------------------------------------------------

def hourly_readings(store: Store, since: int | None = None) -> pd.DataFrame:
    """The readings layer as the indicators read it: one row per sensor and hour (``ts`` the hour's start), its
    value the hour's mean — over the hourly table (what the ingest stored, what was folded) and the bulk-loaded
    raw readings not folded yet (an hour with both gets the mean of all its readings). ``since`` (epoch seconds,
    on the hour): only the hours from then on (what a refresh reads again)."""
    spec = LAYERS["readings"]
    if since is not None and since % HOUR:
        raise ValueError(f"since={since} is not on the hour")
    # From ``since`` on, "seq + 0" keeps the planner off the index on seq (every bulk-loaded reading has none, so it
    # selects them all) and on the one on ts: the last hours of 1.3 million readings in 0.09 s instead of 0.33 s.
    raw = store.read_frame("readings", spec.column_names,
                           where=(lambda t: t.c.seq.is_(None)) if since is None else
                           (lambda t: (t.c.seq + 0).is_(None) & (t.c.ts >= since)))
    hourly = _read_hourly(store, since)
    on_the_hour = (pd.to_numeric(raw["ts"]) % HOUR == 0).all()
    if not len(hourly) and on_the_hour:
        # Already one reading per sensor and hour, stamped with its hour (the sample city, an hourly import).
        frame = decode_frame(spec, raw)
        check_frame(spec, frame)
        return frame
    return _hourly_means(raw, hourly)


def _hourly_means(raw: pd.DataFrame, hourly: pd.DataFrame) -> pd.DataFrame:
    """The readings layer's rows (one per sensor and hour, its mean) from raw readings and hourly aggregates."""
    spec = LAYERS["readings"]
    raw_ts = pd.to_numeric(raw["ts"]).astype("int64")
    parts = pd.concat([
        pd.DataFrame({"sensor_id": raw["sensor_id"], "hour": raw_ts // HOUR * HOUR,
                      "total": raw["value"].astype(float), "count": 1}),
        pd.DataFrame({"sensor_id": hourly["sensor_id"], "hour": hourly["hour"].astype("int64"),
                      "total": hourly["mean"].astype(float) * hourly["count"].astype(float),
                      "count": hourly["count"].astype("int64")}),
    ], ignore_index=True)
    sums = parts.groupby(["sensor_id", "hour"], sort=True)[["total", "count"]].sum().reset_index()
    frame = decode_frame(spec, pd.DataFrame({"sensor_id": sums["sensor_id"], "ts": sums["hour"],
                                             "value": sums["total"] / sums["count"]}))
    check_frame(spec, frame)
    return frame


def hourly_readings_arrived(store: Store, seq: int) -> pd.DataFrame:
    """The rows of :func:`hourly_readings` of every (sensor, hour) that a reading numbered after ``seq`` fell in
    (the stream's readings since a follower's mark, :meth:`Store.arrival_mark`), whole: each hour's mean over all
    of its readings, as a full read gives it. A batch of a thousand readings touches about a thousand of them; a
    refresh reads those instead of the last hours of every sensor."""
    arrived = store.read_frame("readings", ["sensor_id", "ts"], where=lambda t: t.c.seq > int(seq))
    if not len(arrived):
        return _hourly_means(pd.DataFrame(columns=["sensor_id", "ts", "value"]),
                             pd.DataFrame(columns=["sensor_id", "hour", "count", "mean"]))
    hours = pd.to_numeric(arrived["ts"]).astype("int64") // HOUR * HOUR
    touched = pd.MultiIndex.from_arrays([arrived["sensor_id"], hours]).unique()
    sensors = sorted(set(arrived["sensor_id"]))
    first, last = int(hours.min()), int(hours.max()) + HOUR
    # Of the touched sensors' hours in that span, the touched pairs: what was aggregated (every reading the stream
    # stored) and the bulk-loaded raw readings of those hours not folded yet (as hourly_readings reads them).
    hourly = _read_hourly(store, since=first, until=last, sensors=sensors)
    raw = store.read_frame("readings", ["sensor_id", "ts", "value"],
                           where=lambda t: t.c.seq.is_(None) & (t.c.ts >= first) & (t.c.ts < last)
                           & t.c.sensor_id.in_(sensors))
    hourly = hourly[pd.MultiIndex.from_arrays([hourly["sensor_id"], hourly["hour"].astype("int64")]).isin(touched)]
    raw_hours = pd.to_numeric(raw["ts"]).astype("int64") // HOUR * HOUR
    raw = raw[pd.MultiIndex.from_arrays([raw["sensor_id"], raw_hours]).isin(touched)]
    return _hourly_means(raw.reset_index(drop=True), hourly.reset_index(drop=True))


def _read_hourly(store: Store, since: int | None = None, until: int | None = None, sensors=None) -> pd.DataFrame:
    """The hourly aggregates from the hour ``since`` on (all without it), before ``until``, of ``sensors``."""
    hourly = METADATA.tables["readings_hourly"]
    query = select(hourly.c.sensor_id, hourly.c.hour, hourly.c["count"], hourly.c.mean)
    if since is not None:
        query = query.where(hourly.c.hour >= int(since))
    if until is not None:
        query = query.where(hourly.c.hour < int(until))
    if sensors is not None:
        query = query.where(hourly.c.sensor_id.in_(list(sensors)))
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    # As plain tuples: pandas probes each SQLAlchemy Row for attributes, and every probe is a failed key lookup
    # (thousands of rows a live refresh: more time than the query).
    return pd.DataFrame.from_records([tuple(row) for row in rows], columns=["sensor_id", "hour", "count", "mean"])


def main(argv=None) -> int:
    import argparse

    from layers.store import default_database_url
    parser = argparse.ArgumentParser(prog="python -m layers.retention",
                                     description="Fold raw readings older than the window into hourly aggregates.")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--days", type=float, default=None, help=f"raw window in days (default ${RAW_DAYS_ENV} or 7)")
    args = parser.parse_args(argv)
    from layers.store_health import StoreTimeouts

    store = Store(args.database_url or default_database_url(), timeouts=StoreTimeouts.from_environ())
    result = fold(store, days=raw_days() if args.days is None else args.days)
    print(f"folded {result.folded:,} raw readings before {pd.Timestamp(result.cutoff, unit='s', tz='UTC')} into "
          f"{result.hours:,} hourly rows; dropped {len(result.dropped_partitions)} day partitions "
          f"({result.seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
