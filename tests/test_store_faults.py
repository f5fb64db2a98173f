"""Writes under concurrency and the set-based sweep, on SQLite and PostgreSQL: order ids never collide, a client's
request key files one order however often it is sent, and the one-statement supervision sweep writes exactly what
escalating the orders one by one writes."""
from __future__ import annotations

import threading
from collections import Counter

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from layers.load import encode_frame
from layers.specs import CITY_TIMEZONE
from layers.store import METADATA, Store
from layers.workorders import WorkOrders
from metrics.clocks import ESCALATION, REASONS, order_clocks
from sample_data.generator import generate



POSTERS = 20
POSTS_EACH = 8
WRITTEN_LAYERS = ("units", "event_types", "channels", "orders")
# A city whose history ended two days before "now": thousands of its unhandled orders are red-carded now.
END = pd.Timestamp("2026-11-20 16:00", tz=CITY_TIMEZONE)
NOW = END + pd.Timedelta(days=2)


@pytest.fixture(scope="module")
def city_layers():
    return generate("test", seed=20231, end=END)


@pytest.fixture(scope="module")
def inside(city_layers):
    grids = city_layers["units"][city_layers["units"]["level"] == "grid"]
    point = grids.iloc[len(grids) // 2].geometry.representative_point()
    return point.x, point.y


def _build(url: str, layers) -> Store:
    store = Store(url)
    store.replace_layers({k: encode_frame(k, layers[k]) for k in WRITTEN_LAYERS}, source="tests")
    WorkOrders(store).reset_responsibility_list(decided_by="tests", note="version 1")
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, city_layers) -> str:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgis_db_url")
    _build(url, city_layers).engine.dispose()
    return url


def _orders_version(store: Store) -> int:
    return store.layer_version("orders")


def test_twenty_concurrent_posters_never_share_an_order_id(url, inside):
    """Each poster has its own store (its own connections, as separate worker processes would), all start at once."""
    before = _orders_version(Store(url))
    start = threading.Barrier(POSTERS)
    filed: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def poster(number: int):
        service = WorkOrders(Store(url))
        service.place_of(*inside)  # the grid index, before the race
        start.wait()
        for post in range(POSTS_EACH):
            try:
                order = service.file_request(event_type="garbage_overflow", lon=inside[0], lat=inside[1],
                                             description=f"poster {number} post {post}", channel="website")
            except BaseException as error:  # noqa: BLE001 — counted, and the test fails naming it
                with lock:
                    errors.append(error)
            else:
                with lock:
                    filed.append(order.order_id)
        service.store.engine.dispose()

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(POSTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, f"{len(errors)} of {POSTERS * POSTS_EACH} posts failed, e.g. {errors[0]!r}"
    assert len(filed) == POSTERS * POSTS_EACH
    assert len(set(filed)) == len(filed), Counter(filed).most_common(3)
    store = Store(url)
    orders, log = METADATA.tables["orders"], METADATA.tables["order_transitions"]
    with store.engine.connect() as conn:
        stored = conn.execute(select(orders.c.order_id, orders.c.description)
                              .where(orders.c.order_id.in_(filed))).all()
        intakes = conn.execute(select(func.count()).select_from(log)
                               .where(log.c.order_id.in_(filed), log.c.action == "file", log.c.seq == 1)).scalar()
    assert len(stored) == len(filed) and intakes == len(filed)
    assert len({description for _id, description in stored}) == len(filed)  # each post is its own order
    assert _orders_version(store) == before + len(filed)  # one step per write, as the refresh counts them
    store.engine.dispose()


def test_a_request_key_files_one_order_however_often_it_is_sent(url, inside):
    store = Store(url)
    service = WorkOrders(store)
    before = _orders_version(store)
    results: list = []
    start = threading.Barrier(6)

    def send():
        start.wait()
        results.append(WorkOrders(Store(url)).file_request_once(
            "website:retry-7", event_type="road_damage", lon=inside[0], lat=inside[1], channel="website",
            description="pothole"))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 6
    assert len({order.order_id for order, _created in results}) == 1
    assert sorted(created for _order, created in results) == [False] * 5 + [True]
    assert _orders_version(store) == before + 1
    # Another key is another request.
    other, created = service.file_request_once("website:retry-8", event_type="road_damage", lon=inside[0],
                                               lat=inside[1], channel="website")
    assert created and other.order_id != results[0][0].order_id
    store.engine.dispose()


# --- the supervision sweep ------------------------------------------------------------------------------------------

def _escalate_one_by_one(service: WorkOrders, now: pd.Timestamp, actor: str) -> int:
    """The sweep as it was: the clocks in pandas, then one guarded action per red card, in id order."""
    orders = service.open_orders_frame(["received", "dispatched", "accepted"])
    clocks = order_clocks(orders, now)
    due = orders.assign(reason=clocks["reason"])[clocks["escalate"].to_numpy()].sort_values("order_id")
    for row in due.itertuples():
        service.escalate(row.order_id, expected_version=int(row.version), actor=actor,
                         note=f"red card: {REASONS[row.reason][1]}", at=now)
    return len(due)


def _written(store: Store) -> tuple[list, list, int]:
    orders, log = METADATA.tables["orders"], METADATA.tables["order_transitions"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(orders).order_by(orders.c.order_id)).all()
        entries = conn.execute(select(*[c for c in log.columns if c.name != "transition_id"])
                               .order_by(log.c.order_id, log.c.seq)).all()
    return rows, entries, store.layer_version("orders")


def _copy(url: str, tmp_path, name: str) -> str:
    """A second database holding the same city."""
    if url.startswith("sqlite"):
        import shutil

        target = tmp_path / f"{name}.sqlite"
        Store(url).engine.dispose()
        shutil.copyfile(url.removeprefix("sqlite:///"), target)
        return f"sqlite:///{target}"
    from sqlalchemy.engine import make_url

    from conftest import _admin_engine

    source = make_url(url)
    copy = f"{source.database}_{name}"
    admin = _admin_engine(source.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{source.database}"'))
    admin.dispose()
    return source.set(database=copy).render_as_string(hide_password=False)


def test_the_one_statement_sweep_writes_what_one_by_one_escalations_write(url, tmp_path):
    one_by_one_url = _copy(url, tmp_path, "one_by_one")
    try:
        reference = Store(one_by_one_url)
        expected_count = _escalate_one_by_one(WorkOrders(reference), NOW, "supervision sweep")
        expected = _written(reference)
        reference.engine.dispose()

        store = Store(url)
        service = WorkOrders(store)
        count = service.escalate_overdue(NOW, actor="supervision sweep", **ESCALATION)
        assert expected_count > 100, "the city should have red cards to escalate"
        assert count == expected_count
        rows, entries, version = _written(store)
        # The same escalations: the same orders escalated, by the same actor, with the same notes, statuses and
        # times. (One by one, an order generated without a log first gets its history written, one log row and
        # one version step each (its timeline keeps its start); the one-statement sweep does not write that
        # history yet — the timeline completes it when read — so versions, seq and the history rows differ.)
        def escalations(log):
            return sorted((e.order_id, e.at, e.actor, e.action, e.from_status, e.to_status, e.note)
                          for e in log if e.action == "escalate")

        def states(orders):
            return [tuple(v for k, v in row._mapping.items() if k != "version") for row in orders]

        assert escalations(entries) == escalations(expected[1])
        assert states(rows) == states(expected[0])
        assert version - expected_count >= 0
        assert {e.note for e in entries if e.action == "escalate" and e.actor == "supervision sweep"} == {
            ESCALATION["notes"]["overdue"], ESCALATION["notes"]["no_first_response"]}
        # Nothing left to escalate: a second sweep writes nothing.
        assert service.escalate_overdue(NOW + pd.Timedelta(minutes=10), actor="supervision sweep",
                                        **ESCALATION) == 0
        assert _written(store) == (rows, entries, version)
        store.engine.dispose()
    finally:
        if not one_by_one_url.startswith("sqlite"):
            from sqlalchemy.engine import make_url

            from conftest import _admin_engine

            target = make_url(one_by_one_url)
            admin = _admin_engine(target.set(database="postgres").render_as_string(hide_password=False))
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            admin.dispose()


# --- what counts as an unavailable store --------------------------------------------------------------------------

def test_a_bug_is_not_an_unavailable_store_but_a_locked_file_is(tmp_path):
    """SQLite reports "no such table" and "database is locked" with the same class: only the second may answer 503,
    and neither may open the circuit that refuses every request for a second."""
    import sqlite3

    from sqlalchemy import exc as sa_exc

    from layers.store_health import is_unavailability

    store = Store(f"sqlite:///{tmp_path / 'city.sqlite'}")
    with pytest.raises(sa_exc.OperationalError) as missing:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table"))
    assert not is_unavailability(missing.value)
    assert store.health.available
    locked = sa_exc.OperationalError("UPDATE …", {}, sqlite3.OperationalError("database is locked"))
    assert is_unavailability(locked)
    # A write waiting for another writer's lock past the busy timeout is refused as unavailable, not a 500.
    store.create_schema()
    blocker = sqlite3.connect(tmp_path / "city.sqlite")
    blocker.execute("BEGIN IMMEDIATE")
    try:
        from layers import store_health

        with pytest.raises(store_health.StoreUnavailable):
            # A pool wait of 1 s: SQLite's wait for the write lock
            with Store(f"sqlite:///{tmp_path / 'city.sqlite'}",
                       timeouts=store_health.StoreTimeouts(pool=1.0)).write() as conn:
                conn.execute(text("UPDATE layer_versions SET version = version + 1"))
    finally:
        blocker.rollback()
        blocker.close()
