"""The work-order service (layers.workorders) on a real store: SQLite and PostgreSQL/PostGIS.

One order followed through the whole loop with a reopen; every action through the service; the timeline rebuilt
from the log equals the stored row; dispatch by the versioned responsibility list and fast rulings; bad input leaves
everything stored as it was (row counts and a checksum); two operators racing on one order (threads with their own
connections, and a transaction held open while the other waits on it): one wins, the other gets a conflict.
"""
from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from sqlalchemy import func, select

from layers.load import encode_frame, load_layer
from layers.store import METADATA, Store
from layers.workorders import (
    MAX_DESCRIPTION_CHARS,
    InvalidRequest,
    OrderQuery,
    TransitionRefused,
    UnknownOrder,
    VersionConflict,
    WorkOrders,
    replay,
)
from metrics.clocks import ESCALATION
from sample_data.generator import DEFAULT_END, generate

from conftest import work_order_snapshot  # tests/ is on sys.path (rootdir conftest)

SEED = 20231
WRITTEN_LAYERS = ("units", "event_types", "channels", "orders")


class FrozenClock:
    """Now is what the test says it is."""

    def __init__(self, now: pd.Timestamp):
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now

    def advance(self, **delta) -> pd.Timestamp:
        self.now = self.now + pd.Timedelta(**delta)
        return self.now


@pytest.fixture(scope="module")
def city_layers():
    return generate("test", seed=SEED)


@pytest.fixture(scope="module")
def inside(city_layers):
    """A point inside a grid cell of the city, and that cell's code."""
    grids = city_layers["units"][city_layers["units"]["level"] == "grid"]
    cell = grids.iloc[len(grids) // 2]
    point = cell.geometry.representative_point()
    return point.x, point.y, cell["code"]


def _build(url: str, layers) -> Store:
    store = Store(url)
    store.replace_layers({k: encode_frame(k, layers[k]) for k in WRITTEN_LAYERS}, source="tests")
    WorkOrders(store).reset_responsibility_list(decided_by="tests", note="version 1")
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, city_layers) -> Store:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgis_db_url")
    built = _build(url, city_layers)
    yield built
    built.engine.dispose()


@pytest.fixture
def sqlite_store(sqlite_url, city_layers) -> Store:
    return _build(sqlite_url, city_layers)


@pytest.fixture
def clock():
    return FrozenClock(DEFAULT_END + pd.Timedelta(hours=1))


def _log_count(store: Store, order_id: str | None = None) -> int:
    table = METADATA.tables["order_transitions"]
    query = select(func.count()).select_from(table)
    if order_id is not None:
        query = query.where(table.c.order_id == order_id)
    with store.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def _assert_row_is_its_log(service: WorkOrders, order_id: str) -> None:
    order = service.get(order_id)
    rebuilt = service.rebuilt_order(order_id)
    for name, value in rebuilt.items():
        assert getattr(order, name) == value, f"{name}: row {getattr(order, name)!r}, log {value!r}"


# --- the whole loop -----------------------------------------------------------------------------------------------

def test_one_order_from_intake_to_evaluation_with_a_reopen(store, clock, inside):
    service = WorkOrders(store, clock=clock)
    lon, lat, grid = inside
    orders_version = store.layer_version("orders")
    order = service.file_request(event_type="garbage_overflow", lon=lon, lat=lat, channel="wechat",
                                 description="<script>alert(1)</script> bins overflowing", actor="operator 7")
    assert (order.status, order.version, order.grid_code, order.department) == ("received", 1, grid, "")
    assert order.description.startswith("<script>")  # stored as written; shown as text by every screen
    limit = service.responsibility_list().rule("garbage_overflow").time_limit_hours
    assert order.deadline_at == clock.now + pd.Timedelta(hours=limit)

    steps = [("dispatch", {}), ("accept", {}), ("handle", {}), ("reply", {"note": "cleared at 10:00"}),
             ("evaluate", {"satisfied": False}),
             ("handle", {}), ("reply", {}), ("evaluate", {"satisfied": True}), ("close", {})]
    statuses = []
    for action, extra in steps:
        clock.advance(hours=1)
        order = service.act(order.order_id, action, expected_version=order.version, actor=f"{action}er", **extra)
        statuses.append(order.status)
        _assert_row_is_its_log(service, order.order_id)
        if action == "evaluate" and not extra["satisfied"]:
            # Unsatisfied: back to the unit, handling cleared, a fresh deadline from now.
            assert (order.status, order.reopen_count, order.satisfied) == ("accepted", 1, False)
            assert order.handled_at is None and order.feedback_at is None and order.on_time is None
            assert order.deadline_at == clock.now + pd.Timedelta(hours=limit)
    assert statuses == ["dispatched", "accepted", "handled", "feedback", "accepted", "handled", "feedback",
                        "evaluated", "closed"]
    assert order.department == "Urban Management Bureau" and order.rules_version == 1
    assert order.satisfied is True and order.on_time is True and order.version == 1 + len(steps)
    assert order.closed_at == clock.now
    timeline = service.timeline(order.order_id)
    assert [e.action for e in timeline] == ["file", "dispatch", "accept", "handle", "reply", "reopen", "handle",
                                            "reply", "evaluate", "close"]
    assert [e.seq for e in timeline] == list(range(1, 11))
    assert timeline[4].note == "cleared at 10:00" and timeline[1].actor == "dispatcher"
    assert all(e.source == "log" for e in timeline)
    # Every write was counted for the dashboard's caches.
    assert store.layer_version("orders") == orders_version + 1 + len(steps)
    # The order is there for the dashboard's loader too.
    loaded = load_layer(store, "orders", where=lambda t: t.c.order_id == order.order_id)
    assert loaded.iloc[0]["status"] == "closed" and loaded.iloc[0]["reopen_count"] == 1


def test_unsatisfied_after_the_reopen_limit_is_recorded_not_reopened(sqlite_store, clock, inside):
    service = WorkOrders(sqlite_store, clock=clock)
    order = service.file_request(event_type="illegal_parking", lon=inside[0], lat=inside[1], auto_dispatch=True)
    order = service.accept(order.order_id, expected_version=order.version, actor="unit")
    for _ in range(2):
        order = service.handle(order.order_id, expected_version=order.version, actor="unit")
        order = service.reply(order.order_id, expected_version=order.version, actor="unit")
        order = service.evaluate(order.order_id, expected_version=order.version, satisfied=False)
        assert order.status == "accepted"
    order = service.handle(order.order_id, expected_version=order.version, actor="unit")
    order = service.reply(order.order_id, expected_version=order.version, actor="unit")
    order = service.evaluate(order.order_id, expected_version=order.version, satisfied=False)
    assert (order.status, order.reopen_count, order.satisfied) == ("evaluated", 2, False)
    assert "reopen" not in order.allowed_actions
    _assert_row_is_its_log(service, order.order_id)


def test_reject_redispatch_cancel_escalate(sqlite_store, clock, inside):
    service = WorkOrders(sqlite_store, clock=clock)
    order = service.file_request(event_type="neighbour_noise", lon=inside[0], lat=inside[1])
    order = service.dispatch(order.order_id, expected_version=order.version, actor="dispatcher",
                             department="environment")  # a code works as well as a name
    assert order.department == "Ecology and Environment Bureau"
    with pytest.raises(InvalidRequest, match="note: reject needs a note"):
        service.act(order.order_id, "reject", expected_version=order.version, actor="unit")
    order = service.reject(order.order_id, expected_version=order.version, actor="unit", note="not ours")
    assert (order.status, order.dispatched_at) == ("received", None)
    order = service.dispatch(order.order_id, expected_version=order.version, actor="dispatcher")
    assert order.department == "Street Office"  # by the list
    order = service.accept(order.order_id, expected_version=order.version, actor="unit")
    with pytest.raises(InvalidRequest, match="already with Street Office"):
        service.redispatch(order.order_id, expected_version=order.version, actor="d", department="street_office",
                           note="again")
    order = service.redispatch(order.order_id, expected_version=order.version, actor="d", department="police",
                               note="a fight, not noise")
    assert (order.status, order.department, order.accepted_at) == ("dispatched", "Public Security Bureau", None)
    first = clock.now
    order = service.escalate(order.order_id, expected_version=order.version, actor="supervisor", note="slow")
    clock.advance(hours=2)
    order = service.escalate(order.order_id, expected_version=order.version, actor="supervisor", note="still")
    assert order.supervised_at == first and order.status == "dispatched"  # the first escalation is kept
    order = service.cancel(order.order_id, expected_version=order.version, actor="d", reason="duplicate of X")
    assert (order.status, order.closed_at, order.is_open) == ("cancelled", clock.now, False)
    assert order.allowed_actions == []
    _assert_row_is_its_log(service, order.order_id)
    assert [e.action for e in service.timeline(order.order_id)] == [
        "file", "dispatch", "reject", "dispatch", "accept", "redispatch", "escalate", "escalate", "cancel"]


def test_refused_actions_change_nothing(store, clock, inside):
    service = WorkOrders(store, clock=clock)
    order = service.file_request(event_type="road_damage", lon=inside[0], lat=inside[1])
    before = work_order_snapshot(store)
    for action in ("accept", "handle", "reply", "close", "reopen", "reject"):
        with pytest.raises(TransitionRefused, match=f"cannot {action} an order that is received"):
            service.act(order.order_id, action, expected_version=order.version, actor="x", note="n")
    with pytest.raises(TransitionRefused, match="cannot evaluate an order that is received"):
        service.evaluate(order.order_id, expected_version=order.version, satisfied=True)
    assert work_order_snapshot(store) == before


# --- the responsibility list --------------------------------------------------------------------------------------

def test_fast_ruling_writes_a_new_version_and_orders_keep_theirs(store, clock, inside):
    service = WorkOrders(store, clock=clock)
    stored = load_layer(store, "event_types").set_index("code")
    first = service.responsibility_list()
    assert first.version == 1
    assert {k: (r.department, r.time_limit_hours) for k, r in first.rules.items()} == {
        k: (row.department, row.time_limit_hours) for k, row in stored.iterrows()}
    old = service.file_request(event_type="shared_bike_clutter", lon=inside[0], lat=inside[1], auto_dispatch=True)
    assert (old.department, old.rules_version) == ("Transport Bureau", 1)

    second = service.fast_ruling("shared_bike_clutter", "urban_management", decided_by="ruling board",
                                 note="bikes on pavements are city appearance")
    assert second.version == 2 and second.rule("shared_bike_clutter").department == "Urban Management Bureau"
    assert {k: v for k, v in second.rules.items() if k != "shared_bike_clutter"} == {
        k: v for k, v in first.rules.items() if k != "shared_bike_clutter"}
    assert service.responsibility_list(1).rule("shared_bike_clutter").department == "Transport Bureau"
    new = service.file_request(event_type="shared_bike_clutter", lon=inside[0], lat=inside[1], auto_dispatch=True)
    assert (new.department, new.rules_version) == ("Urban Management Bureau", 2)
    assert service.get(old.order_id).rules_version == 1  # kept

    # A new, disputed type gets its unit in version 3.
    with pytest.raises(InvalidRequest, match="a new type needs a name and a time limit"):
        service.fast_ruling("drone_noise", "police", decided_by="board", note="new")
    third = service.fast_ruling("drone_noise", "police", decided_by="board", note="new", name="Drone noise",
                                time_limit_hours=48, category="public_safety")
    assert third.rule("drone_noise").time_limit_hours == 48
    versions = service.responsibility_versions()
    assert [(v.version, v.changed_event_type) for v in versions] == [
        (1, None), (2, "shared_bike_clutter"), (3, "drone_noise")]
    assert versions[1].decided_by == "ruling board"
    before = work_order_snapshot(store)
    with pytest.raises(InvalidRequest, match="nothing to rule"):
        service.fast_ruling("drone_noise", "police", decided_by="board", note="again")
    with pytest.raises(InvalidRequest, match="unknown department 'Ministry of Magic'"):
        service.fast_ruling("drone_noise", "Ministry of Magic", decided_by="board", note="x")
    assert work_order_snapshot(store) == before


def test_the_list_seeds_itself_from_the_stored_event_types(sqlite_url, city_layers):
    store = Store(sqlite_url)
    store.replace_layers({k: encode_frame(k, city_layers[k]) for k in WRITTEN_LAYERS}, source="importer-like")
    service = WorkOrders(store)
    assert service.responsibility_list().version == 1
    assert len(service.responsibility_list().rules) == len(city_layers["event_types"])


# --- bad input ------------------------------------------------------------------------------------------------------

def test_bad_requests_are_refused_and_change_nothing(store, clock, inside):
    service = WorkOrders(store, clock=clock)
    lon, lat, _grid = inside
    before = work_order_snapshot(store)
    good = dict(event_type="garbage_overflow", lon=lon, lat=lat, description="ok")
    cases = [
        ({"description": "x" * (MAX_DESCRIPTION_CHARS + 1)}, "description", "4,001 characters long; at most 4,000"),
        ({"lon": None}, "location", "a location is required"),
        ({"lat": None}, "location", "a location is required"),
        ({"lon": "east"}, "location", "lon must be a number"),
        ({"lon": float("nan")}, "location", "is not a coordinate"),
        ({"lon": 113.0, "lat": 21.0}, "location", "outside the city"),
        ({"event_type": "alien_landing"}, "event_type", "unknown event type 'alien_landing'"),
        ({"event_type": ""}, "event_type", "is required"),
        ({"channel": "pigeon"}, "channel", "unknown channel 'pigeon'"),
        ({"actor": ""}, "actor", "is required"),
    ]
    for change, field, message in cases:
        with pytest.raises(InvalidRequest, match=message) as error:
            service.file_request(**{**good, **change})
        assert error.value.field == field
    assert service.file_request(**{**good, "description": "x" * MAX_DESCRIPTION_CHARS}).description
    order = service.file_request(**good)
    before = work_order_snapshot(store)
    with pytest.raises(UnknownOrder, match="no work order 'SZ0'"):
        service.dispatch("SZ0", expected_version=1, actor="d")
    with pytest.raises(InvalidRequest, match="unknown department"):
        service.dispatch(order.order_id, expected_version=order.version, actor="d", department="nobody")
    with pytest.raises(InvalidRequest, match="expected_version"):
        service.dispatch(order.order_id, expected_version="1", actor="d")
    with pytest.raises(InvalidRequest, match="note: is 4,001 characters"):
        service.dispatch(order.order_id, expected_version=order.version, actor="d", note="n" * 4001)
    with pytest.raises(InvalidRequest, match="cancel does not take a department"):
        service.act(order.order_id, "cancel", expected_version=order.version, actor="d", note="dup",
                    department="police")
    assert work_order_snapshot(store) == before


# --- reading ------------------------------------------------------------------------------------------------------

def test_list_orders_filters_sorts_and_pages_in_sql(store, city_layers):
    service = WorkOrders(store)
    orders = city_layers["orders"]
    query = OrderQuery(status=("accepted", "dispatched"), sort="deadline_at", descending=False, limit=50)
    expected = orders[orders["status"].isin(["accepted", "dispatched"])].sort_values(
        ["deadline_at", "order_id"])["order_id"].tolist()
    seen = []
    offset = 0
    while True:
        page = service.list_orders(OrderQuery(**{**query.__dict__, "offset": offset}))
        assert page.total == len(expected)
        seen += [o.order_id for o in page.orders]
        offset += page.limit
        if offset >= page.total:
            break
    assert seen == expected

    district = "440304"
    in_district = orders[orders["grid_code"].str.startswith(district)]
    page = service.list_orders(OrderQuery(unit=district, event_type=["illegal_parking"], limit=5))
    assert page.total == int((in_district["event_type"] == "illegal_parking").sum()) > 0
    assert [o.received_at for o in page.orders] == sorted((o.received_at for o in page.orders), reverse=True)
    assert service.list_orders(OrderQuery(unit="440300", limit=1)).total == len(orders)

    at = DEFAULT_END
    overdue = orders["handled_at"].isna() & orders["status"].isin(["received", "dispatched", "accepted"]) & (
        orders["deadline_at"] < at)
    assert service.list_orders(OrderQuery(overdue_at=at)).total == int(overdue.sum())
    assert service.list_orders(OrderQuery(escalated=True)).total == int(orders["supervised_at"].notna().sum())

    for bad, field in ((OrderQuery(status=["lost"]), "status"), (OrderQuery(sort="description"), "sort"),
                       (OrderQuery(limit=0), "limit"), (OrderQuery(offset=-1), "offset"),
                       (OrderQuery(unit="nowhere"), "unit")):
        with pytest.raises(InvalidRequest) as error:
            service.list_orders(bad)
        assert error.value.field == field


@pytest.mark.parametrize("walk", [True, False])
def test_walking_the_sort_index_finds_the_same_pages(sqlite_store, city_layers, monkeypatch, walk):
    """SQLite walks the sort's index for broad filters and uses a filter's index for narrow ones: either way, a page
    is the same orders in the same order as pandas finds them."""
    service = WorkOrders(sqlite_store)
    orders = city_layers["orders"]
    monkeypatch.setattr(WorkOrders, "_walk_the_sort_index", lambda *_args: walk)
    district = "440304"
    cases = [
        (OrderQuery(status=["closed"], limit=30, offset=40), orders["status"] == "closed"),
        (OrderQuery(status=["received", "accepted"], department=["Traffic Police", "Street Office"], unit=district,
                    sort="deadline_at", descending=False, limit=25),
         orders["status"].isin(["received", "accepted"]) & orders["department"].isin(["Traffic Police", "Street Office"])
         & orders["grid_code"].str.startswith(district)),
        (OrderQuery(channel=["wechat"], event_type=["garbage_overflow"], limit=10),
         (orders["channel"] == "wechat") & (orders["event_type"] == "garbage_overflow")),
        (OrderQuery(overdue_at=DEFAULT_END, limit=20),
         orders["handled_at"].isna() & orders["status"].isin(["received", "dispatched", "accepted"])
         & (orders["deadline_at"] < DEFAULT_END)),
    ]
    for query, matches in cases:
        key = [query.sort, "order_id"]
        expected = orders[matches].sort_values(key, ascending=not query.descending)["order_id"].tolist()
        page = service.list_orders(query)
        assert page.total == len(expected) > query.offset
        assert [o.order_id for o in page.orders] == expected[query.offset:query.offset + query.limit]


def test_the_walk_is_chosen_for_broad_filters_only(sqlite_store, city_layers):
    service = WorkOrders(sqlite_store)
    orders = city_layers["orders"]
    broad, narrow = OrderQuery(status=["closed"], limit=20), OrderQuery(unit=orders["grid_code"].iloc[0], limit=20)
    with sqlite_store.engine.connect() as conn:
        assert service._walk_the_sort_index(conn, broad, int((orders["status"] == "closed").sum()))
        assert not service._walk_the_sort_index(conn, narrow, int((orders["grid_code"] == narrow.unit).sum()))
        assert not service._walk_the_sort_index(conn, OrderQuery(status=["closed"], sort="event_type"), len(orders))


def test_generated_orders_get_a_timeline_from_their_stage_times(sqlite_store, city_layers):
    service = WorkOrders(sqlite_store)
    orders = city_layers["orders"]
    closed = orders[(orders["status"] == "closed") & orders["evaluated_at"].notna()].iloc[0]
    timeline = service.timeline(closed["order_id"])
    assert [e.action for e in timeline] == ["file", "dispatch", "accept", "handle", "reply", "evaluate", "close"]
    assert [e.to_status for e in timeline][-1] == "closed"
    assert all(e.source == "row" for e in timeline)
    assert timeline[3].at == closed["handled_at"].floor("s")  # stored to the second



def test_acting_on_a_generated_order_keeps_its_history_and_replays(sqlite_store, city_layers, clock):
    """Issue 15 item 9: a generated order has no log; its first action writes its history (intake first) before
    the action, so the timeline keeps its start, the log replays to the row, and the orders' version moves by the
    rows written (an incremental reload stays exact)."""
    service = WorkOrders(sqlite_store, clock=clock)
    orders = city_layers["orders"]
    waiting = orders[orders["status"] == "dispatched"].iloc[0]
    order_id = waiting["order_id"]
    assert _log_count(sqlite_store, order_id) == 0
    mark, version = service.last_transition(), sqlite_store.layer_versions()["orders"]["version"]
    order = service.get(order_id)
    service.accept(order_id, expected_version=order.version, actor="operator")
    timeline = service.timeline(order_id)
    assert [e.action for e in timeline] == ["file", "dispatch", "accept"]
    assert [e.source for e in timeline] == ["log", "log", "log"]
    assert timeline[0].at == waiting["received_at"].floor("s") and timeline[-1].actor == "operator"
    _assert_row_is_its_log(service, order_id)
    changed, _new_mark, rows = service.changed_since(mark)
    assert changed == [order_id] and rows == 3
    assert sqlite_store.layer_versions()["orders"]["version"] == version + rows


def test_a_log_that_lacks_its_intake_is_completed_from_the_stage_times(sqlite_store, city_layers, clock):
    """A log written before that fix starts with the first action: the timeline puts the intake (and what the stage
    times say came before) in front, and replaying it works instead of raising."""
    service = WorkOrders(sqlite_store, clock=clock)
    orders = city_layers["orders"]
    order_id = orders[orders["status"] == "dispatched"].iloc[1]["order_id"]
    service.accept(order_id, expected_version=service.get(order_id).version, actor="operator")
    table = METADATA.tables["order_transitions"]
    with sqlite_store.engine.begin() as conn:  # as the old code left it: the accept alone
        conn.execute(table.delete().where(table.c.order_id == order_id, table.c.action != "accept"))
    timeline = service.timeline(order_id)
    assert [e.action for e in timeline] == ["file", "dispatch", "accept"]
    assert [e.source for e in timeline] == ["row", "row", "log"]
    assert service.rebuilt_order(order_id)["status"] == "accepted"
    with pytest.raises(ValueError, match="starts with 'accept'"):
        replay(timeline[2:])

# --- clocks against the store ---------------------------------------------------------------------------------------

def test_the_supervision_sweep_escalates_red_cards_once(sqlite_store, clock, inside):
    service = WorkOrders(sqlite_store, clock=clock)
    order = service.file_request(event_type="illegal_parking", lon=inside[0], lat=inside[1], auto_dispatch=True)
    clock.advance(hours=25)  # past its 24-hour limit
    assert service.escalate_overdue(clock.now, actor="supervision", **ESCALATION) >= 1
    escalated = service.get(order.order_id)
    assert escalated.supervised_at == clock.now and escalated.status == "dispatched"
    assert service.timeline(order.order_id)[-1].note.startswith("red card: past its deadline")
    service.escalate_overdue(clock.advance(hours=1), actor="supervision", **ESCALATION)
    assert [e.action for e in service.timeline(order.order_id)].count("escalate") == 1


# --- many hands -----------------------------------------------------------------------------------------------------

def test_a_stale_version_is_a_conflict_naming_who_acted(store, clock, inside):
    service = WorkOrders(store, clock=clock)
    order = service.file_request(event_type="garbage_overflow", lon=inside[0], lat=inside[1])
    service.dispatch(order.order_id, expected_version=order.version, actor="operator A")
    before = work_order_snapshot(store)
    with pytest.raises(VersionConflict) as conflict:
        service.cancel(order.order_id, expected_version=order.version, actor="operator B", reason="dup")
    message = str(conflict.value)
    assert "you had version 1, it is now version 2" in message and "operator A did 'dispatch'" in message
    assert work_order_snapshot(store) == before


def test_two_operators_race_one_wins(store, clock, inside):
    """Eight threads, each with its own connection, act on the same version at once: exactly one wins."""
    service = WorkOrders(store, clock=clock)
    order = service.file_request(event_type="garbage_overflow", lon=inside[0], lat=inside[1], auto_dispatch=True)
    racers = 8
    barrier = threading.Barrier(racers)
    outcomes: list = [None] * racers

    def operator(k: int) -> None:
        mine = WorkOrders(Store(store.url), clock=clock)  # its own engine, its own connections
        barrier.wait()
        try:
            if k % 2:
                outcomes[k] = mine.accept(order.order_id, expected_version=order.version, actor=f"unit {k}")
            else:
                outcomes[k] = mine.redispatch(order.order_id, expected_version=order.version, actor=f"disp {k}",
                                              department="police", note=f"operator {k}")
        except VersionConflict as error:
            outcomes[k] = error
        finally:
            mine.store.engine.dispose()

    threads = [threading.Thread(target=operator, args=(k,)) for k in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [o for o in outcomes if not isinstance(o, VersionConflict)]
    losers = [o for o in outcomes if isinstance(o, VersionConflict)]
    assert len(winners) == 1 and len(losers) == racers - 1, outcomes
    final = service.get(order.order_id)
    assert final.version == order.version + 1 and final.status == winners[0].status
    assert _log_count(store, order.order_id) == 3  # file, dispatch, the winner's action: nothing lost or doubled
    _assert_row_is_its_log(service, order.order_id)


def test_the_second_writer_waits_for_the_first_then_gets_a_conflict(store, clock, inside):
    """A transaction holds the order (its guarded update done, not yet committed) while a second operator acts:
    the second waits on the database's lock, and once the first commits it finds the version changed."""
    service = WorkOrders(store, clock=clock)
    order = service.file_request(event_type="garbage_overflow", lon=inside[0], lat=inside[1], auto_dispatch=True)
    current = service._row(order.order_id)
    changes = {"status": "accepted", "version": current["version"] + 1, "accepted_at": service._now(None)}
    result: dict = {}

    def second_operator():
        other = WorkOrders(Store(store.url), clock=clock)
        try:
            other.redispatch(order.order_id, expected_version=order.version, actor="B", department="police",
                             note="mine")
            result["outcome"] = "won"
        except VersionConflict as error:
            result["outcome"] = error
        result["finished"] = time.monotonic()
        other.store.engine.dispose()

    with store.engine.begin() as conn:
        service._write_transition(conn, current, changes, {**current, **changes}, when=changes["accepted_at"],
                                  actor="A", action="accept", note="")
        thread = threading.Thread(target=second_operator)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the second operator did not wait for the first one's transaction"
        committing = time.monotonic()
    thread.join(30)
    assert isinstance(result["outcome"], VersionConflict), result
    assert result["finished"] >= committing  # it could only finish once the first had committed
    final = service.get(order.order_id)
    assert (final.status, final.version, final.department) == ("accepted", order.version + 1,
                                                               "Urban Management Bureau")
    _assert_row_is_its_log(service, order.order_id)


def test_a_store_from_before_work_orders_gets_the_new_columns(sqlite_store, city_layers):
    """A database written by an older release lacks the new order columns: opening it adds them (version 1, the
    rest empty) instead of failing on a city the user already has."""
    from sqlalchemy import text

    with sqlite_store.engine.begin() as conn:
        for column in ("version", "rules_version", "accepted_at", "closed_at", "description"):
            conn.execute(text(f'ALTER TABLE orders DROP COLUMN "{column}"'))
    reopened = Store(sqlite_store.url)
    reopened.create_schema()
    orders = load_layer(reopened, "orders")
    assert len(orders) == len(city_layers["orders"])
    assert (orders["version"] == 1).all() and orders["rules_version"].isna().all()
    assert orders["accepted_at"].isna().all() and orders["description"].isna().all()
    reopened.engine.dispose()
