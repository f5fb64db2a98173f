"""Retention: raw readings folded into hourly aggregates (count/min/max/mean) in one transaction, on SQLite and on
PostgreSQL (day partitions dropped), and the indicators' hourly readings unchanged by a fold."""
from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy

from layers.ingest import Batch, BatchWriter
from layers.retention import RAW_DAYS_ENV, fold, hourly_readings, raw_days
from layers.store import Store

HOUR = 3600
DAY = 86400
NOW = (int(pd.Timestamp.now(tz="UTC").timestamp()) // DAY) * DAY + 12 * HOUR  # today 12:00 UTC


def minute_readings(sensor: str, start: int, hours: int, base: float = 10.0) -> list[tuple[str, int, float]]:
    """One reading a minute: value = base + minute of the hour (each hour's mean is base + 29.5)."""
    return [(sensor, start + m * 60, base + m % 60) for m in range(hours * 60)]


def stored(url: str) -> Store:
    store = Store(url)
    store.create_schema()
    return store


def hourly_rows(store: Store) -> pd.DataFrame:
    with store.engine.connect() as conn:
        return pd.DataFrame(conn.execute(sqlalchemy.text(
            "SELECT sensor_id, hour, count, min, max, mean FROM readings_hourly ORDER BY sensor_id, hour")).mappings()
            .all())


def raw_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sqlalchemy.text("SELECT COUNT(*) FROM readings")).scalar_one()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'retention.sqlite'}"
    return request.getfixturevalue("postgis_db_url")


def test_fold_keeps_the_window_raw_and_aggregates_what_is_older(database_url):
    store = stored(database_url)
    # A bulk load (the sample city, an import: rows without an arrival number, not in the hourly table yet) ...
    bulk = pd.DataFrame({"sensor_id": ["S3"] * 3, "ts": [NOW - 3 * DAY + h * HOUR for h in range(3)],
                         "value": [1.0, 2.0, 3.0]})
    store.replace_layers({"readings": bulk}, source="test")
    writer = BatchWriter(store)
    # ... and a stream: 48 hours of minute readings up to the cutoff (a day before NOW), 10 after it.
    old_start = NOW - 3 * DAY
    writer.write(Batch(readings=minute_readings("S1", old_start, 48) + minute_readings("S2", old_start, 2, 100.0)))
    writer.write(Batch(readings=minute_readings("S1", NOW - 10 * HOUR, 10)))
    before = hourly_readings(store).sort_values(["sensor_id", "ts"]).reset_index(drop=True)

    result = fold(store, now=NOW, days=1)

    cutoff = NOW - DAY
    assert result.cutoff == cutoff
    assert result.folded == 48 * 60 + 2 * 60 + 3
    with store.engine.connect() as conn:
        oldest = conn.execute(sqlalchemy.text("SELECT MIN(ts) FROM readings")).scalar_one()
    assert oldest == NOW - 10 * HOUR
    assert raw_count(store) == 10 * 60
    hourly = hourly_rows(store)
    assert len(hourly) == 48 + 2 + 10 + 3  # the stream's hours were aggregated as they came; the bulk's by the fold
    hourly = hourly[hourly["hour"] < cutoff]
    assert hourly[hourly["sensor_id"] == "S3"][["count", "mean"]].values.tolist() == [[1, 1.0], [1, 2.0], [1, 3.0]]
    s1 = hourly[hourly["sensor_id"] == "S1"]
    assert (s1["count"] == 60).all() and (s1["min"] == 10).all() and (s1["max"] == 69).all()
    assert s1["mean"].tolist() == pytest.approx([39.5] * 48)
    assert hourly[hourly["sensor_id"] == "S2"]["mean"].tolist() == pytest.approx([129.5, 129.5])
    # What the indicators read is the same hourly means, whichever table holds them now.
    after = hourly_readings(store).sort_values(["sensor_id", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    assert len(after) == 48 + 2 + 10 + 3 and (after["ts"].dt.minute == 0).all()
    versions = store.layer_versions()["readings"]
    assert versions["source"] == "retention"


def test_a_late_reading_for_a_folded_hour_joins_its_hour_once(database_url):
    store = stored(database_url)
    writer = BatchWriter(store)
    hour = NOW - 2 * DAY
    writer.write(Batch(readings=[("S1", hour + 60, 10.0), ("S1", hour + 120, 20.0)]))
    fold(store, now=NOW, days=1)
    writer.write(Batch(readings=[("S1", hour + 180, 60.0)]))  # arrives after its hour was folded
    writer.write(Batch(readings=[("S1", hour + 180, 60.0)]))  # and again (a redelivery): stored once
    row = hourly_rows(store).iloc[0]
    assert (row["count"], row["min"], row["max"], row["mean"]) == (3, 10.0, 60.0, pytest.approx(30.0))
    assert hourly_readings(store)["value"].tolist() == [pytest.approx(30.0)]
    fold(store, now=NOW, days=1)  # removes the late raw row without counting it a second time
    row = hourly_rows(store).iloc[0]
    assert (row["count"], row["mean"]) == (3, pytest.approx(30.0))
    assert raw_count(store) == 0


def test_postgresql_drops_whole_days_as_partitions(postgis_db_url):
    store = stored(postgis_db_url)
    writer = BatchWriter(store)
    writer.write(Batch(readings=minute_readings("S1", NOW - 4 * DAY - 12 * HOUR, 24 * 4)))
    with store.engine.connect() as conn:
        partitions = set(conn.execute(sqlalchemy.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'readings'::regclass")).scalars())
    days = [pd.Timestamp(NOW - d * DAY, unit="s").strftime("%Y%m%d") for d in (4, 3, 2, 1)]
    assert {f"readings_p{d}" for d in days} | {"readings_default"} <= partitions
    result = fold(store, now=NOW, days=1.5)  # cutoff: yesterday 00:00 UTC: the days 4, 3 and 2 back go whole
    assert sorted(result.dropped_partitions) == [f"readings_p{d}" for d in days[:3]]
    assert result.folded == 3 * 24 * 60
    assert raw_count(store) == 24 * 4 * 60 - result.folded
    hourly = hourly_rows(store)
    assert hourly["count"].sum() == 24 * 4 * 60
    assert hourly.loc[hourly["hour"] < result.cutoff, "count"].sum() == result.folded


def test_the_raw_window_setting_is_checked(monkeypatch):
    monkeypatch.setenv(RAW_DAYS_ENV, "3")
    assert raw_days() == 3.0
    monkeypatch.setenv(RAW_DAYS_ENV, "a week")
    with pytest.raises(ValueError, match="CITYTWIN_RAW_READINGS_DAYS='a week' is not a number"):
        raw_days()
    monkeypatch.setenv(RAW_DAYS_ENV, "0")
    with pytest.raises(ValueError, match="a number of days above 0"):
        raw_days()


def test_a_live_refresh_finds_the_bulk_loaded_readings_of_an_hour_without_visiting_the_streams(database_url):
    """layers.retention.hourly_readings_arrived reads the unnumbered (bulk-loaded) raw readings of the hours the
    stream touched through a partial index that holds only those: the stream's own rows of the hour (millions by its
    end at the seed's rate) are not visited. Made on a store an older release wrote, too. And the answer is right."""
    from layers.retention import hourly_readings_arrived

    store = stored(database_url)
    hour = NOW - NOW % HOUR
    store.replace_layers({"readings": pd.DataFrame({"sensor_id": ["S1", "S2"], "ts": [hour + 60, hour + 120],
                                                    "value": [10.0, 50.0]})}, source="test")
    writer = BatchWriter(store)
    writer.write(Batch(readings=[("S1", hour + 600 + s, 20.0) for s in range(100)]))
    mark = store.arrival_mark("readings")[1]
    writer.write(Batch(readings=[("S1", hour + 900, 30.0)]))
    arrived = hourly_readings_arrived(store, mark)
    # S1's hour: its bulk reading, the first batch's 100 and the last one, each counted once; S2 not touched.
    assert arrived[["sensor_id", "value"]].values.tolist() == [["S1", pytest.approx((10 + 2000 + 30) / 102)]]
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP INDEX ix_readings_unnumbered"))  # as an older release left the store
    store.create_schema()
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            plan = conn.execute(sqlalchemy.text(
                "EXPLAIN QUERY PLAN SELECT sensor_id, ts, value FROM readings WHERE seq IS NULL AND ts >= :a "
                "AND ts < :b AND sensor_id IN ('S1', 'S2')"), {"a": hour, "b": hour + HOUR}).all()
            assert "ix_readings_unnumbered" in " ".join(str(row) for row in plan)
        else:
            definition = conn.execute(sqlalchemy.text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_readings_unnumbered'")).scalar_one()
            assert "WHERE (seq IS NULL)" in definition
