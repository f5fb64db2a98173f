"""What the work-order screens show, without a browser: filters to and from the URL, AG Grid block requests to SQL
pages, rows with their clocks, swim-lanes, the action buttons, and the unit directory that names places."""
from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from hypothesis import given, strategies as st

from dashboard.components.order_views import swim_lanes, ui_actions
from dashboard.order_screens import (filters_search, grid_rows, normalise_filters, order_query, parse_filters)
from dashboard.services import Services
from dashboard.settings import Settings
from layers.city import load_city
from layers.lifecycle import STATUSES
from layers.store import Store
from layers.workorders import OrderQuery, TimelineEntry, WorkOrders
from sample_data.__main__ import build
from sample_data.generator import DEFAULT_END

NOW = DEFAULT_END + pd.Timedelta(hours=1)
HOSTILE = '<img src=x onerror=alert(1)> & "q"'


@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('screens') / 'city.sqlite'}"
    build("test", url, progress=False)
    return url


@pytest.fixture(scope="module")
def work_orders(city_url):
    return WorkOrders(Store(city_url), clock=lambda: NOW)


# --- filters ------------------------------------------------------------------------------------------------------

names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: "," not in s and s.strip() == s)


@given(status=st.lists(st.sampled_from(STATUSES), unique=True), department=st.lists(names, unique=True, max_size=3),
       unit=st.one_of(st.none(), names), overdue=st.booleans(), escalated=st.booleans(),
       lang=st.sampled_from(["en", "zh"]))
def test_filters_survive_the_url(status, department, unit, overdue, escalated, lang):
    filters = normalise_filters(status=status, department=department, unit=unit, overdue="1" if overdue else None,
                                escalated="1" if escalated else None, lang=lang)
    assert parse_filters(filters_search(filters)) == filters


def test_unknown_statuses_are_dropped_and_empty_filters_leave_the_url():
    assert parse_filters("?status=received,<b>,closed&overdue=yes")["status"] == ["received", "closed"]
    assert filters_search(normalise_filters()) == ""
    assert filters_search(normalise_filters(lang="zh", q=" sz1 ")) == "?q=sz1&lang=zh"


def test_a_block_request_is_one_sql_page():
    filters = normalise_filters(status="received", department="Water Affairs Bureau", unit="440304", overdue="1",
                                q="sz20261120000001")
    query = order_query(filters, {"startRow": 200, "endRow": 300, "sortModel": [{"colId": "deadline_at",
                                                                                   "sort": "asc"}]}, NOW)
    assert query == OrderQuery(status=["received"], event_type=[], department=["Water Affairs Bureau"], channel=[],
                               unit="440304", overdue_at=NOW, order_ids=["SZ20261120000001"], sort="deadline_at",
                               descending=False, offset=200, limit=100)
    # A computed column (the card) is not a stored one: the newest first.
    fallback = order_query(normalise_filters(), {"startRow": 0, "endRow": 100,
                                                 "sortModel": [{"colId": "card", "sort": "asc"}]}, NOW)
    assert (fallback.sort, fallback.descending, fallback.overdue_at, fallback.escalated) == \
        ("received_at", True, None, None)


def test_the_pages_of_a_filtered_list_are_the_filtered_orders(work_orders):
    filters = normalise_filters(status="accepted,dispatched")
    seen = []
    for start in range(0, 300, 100):
        page = work_orders.list_orders(order_query(filters, {"startRow": start, "endRow": start + 100}, NOW))
        seen += page.orders
    assert len({o.order_id for o in seen}) == len(seen) == min(300, page.total)
    assert {o.status for o in seen} <= {"accepted", "dispatched"}
    received = [o.received_at for o in seen]
    assert received == sorted(received, reverse=True)


def test_rows_carry_the_clock_and_keep_text_as_text(work_orders):
    grids = work_orders.store.read_frame("units", ["code", "level"]).query("level == 'grid'")["code"]
    lon, lat = _inside(work_orders, grids.iloc[3])
    order = work_orders.file_request(event_type="garbage_overflow", lon=lon, lat=lat, description=HOSTILE * 40,
                                     actor="intake", at=NOW - pd.Timedelta(hours=30))
    page = work_orders.list_orders(OrderQuery(order_ids=[order.order_id]))
    rules = work_orders.responsibility_list()
    [row] = grid_rows(page, rules, {order.grid_code: "Futian · " + order.grid_code}, NOW, "en")
    assert row["order_link"] == f"[{order.order_id}](/orders/{order.order_id})"
    assert row["description"].startswith(HOSTILE) and row["description"].endswith("…")
    assert (row["card_code"], row["card"], row["status"]) == ("red", "Red", "Received")  # not dispatched in 24 h
    assert row["event_type"] == rules.rules["garbage_overflow"].name
    [zh] = grid_rows(page, rules, {}, NOW, "zh")
    assert (zh["status"], zh["card"], zh["event_type"]) == ("已受理", "红牌", rules.rules["garbage_overflow"].name_zh)
    assert zh["order_link"].endswith("?lang=zh)")


def _inside(work_orders, grid_code):
    import shapely
    units = work_orders.store.read_frame("units", ["code", "geometry"]).set_index("code")
    point = shapely.from_wkb(units.at[grid_code, "geometry"]).representative_point()
    return point.x, point.y


# --- one order ----------------------------------------------------------------------------------------------------

def entry(seq, action, department=None, actor="someone"):
    return TimelineEntry(seq, NOW + pd.Timedelta(minutes=seq), actor, action, None, "accepted", "", department, 1,
                         None, None, seq)


def test_swim_lanes_put_each_step_in_the_lane_of_who_did_it():
    steps = [entry(1, "file"), entry(2, "dispatch", "Transport Bureau"), entry(3, "reject", "Transport Bureau"),
             entry(4, "dispatch", "Traffic Police"), entry(5, "accept", "Traffic Police"),
             entry(6, "escalate", "Traffic Police"), entry(7, "handle", "Traffic Police"),
             entry(8, "reopen", "Traffic Police")]
    lanes = swim_lanes(steps, "en").children[1]
    titles = [c.children for c in lanes.children if c.className == "lane-title"]
    assert titles == ["Intake", "Dispatch center", "Transport Bureau", "Traffic Police", "Citizen", "Supervision"]
    placed = [(c.style["gridRow"], c.style["gridColumn"]) for c in lanes.children if "lane-step" in c.className]
    assert placed == [(1, 2), (2, 3), (3, 4), (2, 5), (4, 6), (6, 7), (4, 8), (5, 9)]


def test_buttons_are_the_lifecycle_with_the_evaluation_split(work_orders):
    order = work_orders.list_orders(OrderQuery(status=["feedback"], limit=1)).orders[0]
    assert ui_actions(order) == ["evaluate:satisfied", "evaluate:unsatisfied", "close"]
    closed = work_orders.list_orders(OrderQuery(status=["closed"], limit=1)).orders[0]
    assert ui_actions(closed) == []


# --- naming places without loading the city -----------------------------------------------------------------------

def test_the_directory_names_places_as_the_city_does(city_url):
    store = Store(city_url)
    directory = Services(store).directory()
    city = load_city(store)
    grids = city.units.index[city.units["level"] == "grid"][::37]
    for grid in grids:
        assert [u["code"] for u in directory.lineage(grid)] == list(city.lineage(grid))
    districts = directory.ancestor(pd.Series(list(grids) + ["nowhere"]), "district")
    assert list(districts[:-1]) == [city.hierarchy["district"][g] for g in grids]
    assert districts.iloc[-1] is None
    assert directory.city["level"] == "city" and directory.lineage("nowhere") == []


# --- an action costs the dashboard the orders it touched, not the city ----------------------------------------------

def test_after_actions_the_dashboard_reads_only_the_orders_they_touched(tmp_path, monkeypatch):
    from dashboard import services as services_module
    from metrics.engine import compare
    from metrics.spec import named_window

    url = f"sqlite:///{tmp_path / 'city.sqlite'}"
    store = build("test", url, progress=False)
    service = Services(store, settings=Settings(version_check_seconds=0))
    before = service.city()
    work_orders = service.work_orders()
    received = work_orders.list_orders(OrderQuery(status=["received"], limit=2)).orders
    first = work_orders.dispatch(received[0].order_id, expected_version=received[0].version, actor="t")
    work_orders.accept(first.order_id, expected_version=first.version, actor="t")
    work_orders.cancel(received[1].order_id, expected_version=received[1].version, actor="t", reason="duplicate")
    lon, lat = _inside(work_orders, before.hierarchy["grid"].iloc[5])
    filed = work_orders.file_request(event_type="garbage_overflow", lon=lon, lat=lat, actor="t")

    def no_full_load(*_args, **_kwargs):
        raise AssertionError("the whole city was loaded again")

    monkeypatch.setattr(services_module, "load_city", no_full_load)
    after = service.city()
    assert after is not before and len(after["orders"]) == len(before["orders"]) + 1
    monkeypatch.undo()
    loaded = load_city(store)
    assert after.versions == loaded.versions
    by_id = lambda city: city["orders"].set_index("order_id").sort_index()  # noqa: E731
    columns = [c for c in loaded["orders"].columns if c not in ("geometry",)]
    pd.testing.assert_frame_equal(by_id(after)[columns[1:]], by_id(loaded)[columns[1:]], check_like=True)
    assert by_id(after).at[filed.order_id, "status"] == "received"
    window = named_window("today", loaded.as_of)
    assert after.as_of == loaded.as_of
    pd.testing.assert_frame_equal(compare(after, window).sort_values(["code", "indicator"]).reset_index(drop=True),
                                  compare(loaded, window).sort_values(["code", "indicator"]).reset_index(drop=True))


def test_an_import_that_replaces_the_orders_loads_the_city_again(tmp_path, monkeypatch):
    from dashboard import services as services_module
    from layers.load import encode_frame, load_layer

    url = f"sqlite:///{tmp_path / 'city.sqlite'}"
    store = build("test", url, progress=False)
    service = Services(store, settings=Settings(version_check_seconds=0))
    service.city()
    orders = load_layer(store, "orders").iloc[:500]
    store.replace_layers({"orders": encode_frame("orders", orders)}, source="tests")
    assert len(service.city()["orders"]) == 500


def make_the_check_due(service, services_module) -> None:
    """The check interval has passed, without waiting for it: the last check is moved one interval back."""
    service._checked_at -= service.settings.version_check_seconds


def test_with_a_check_interval_the_change_is_read_in_the_background(tmp_path, monkeypatch, capsys):
    """Requests go on with the city as it was while the change is read; then the new city comes in whole, with the
    tables and sparklines that were in use already computed on it."""
    from dashboard import services as services_module

    store = build("test", f"sqlite:///{tmp_path / 'city.sqlite'}", progress=False)
    # A check only when the test makes one due (a short interval let a request start a second, unawaited refresh
    # while the broken one was being replaced).
    service = Services(store, settings=Settings(version_check_seconds=3600))
    before = service.city()
    table_before = service.table("today")
    service.series("today")
    work_orders = service.work_orders()
    lon, lat = _inside(work_orders, before.hierarchy["grid"].iloc[5])
    work_orders.file_request(event_type="garbage_overflow", lon=lon, lat=lat, actor="t")

    reading = threading.Event()
    release = threading.Event()
    reloaded = services_module.with_orders_read_again

    def slow_read(*args, **kwargs):
        reading.set()
        assert release.wait(30)
        return reloaded(*args, **kwargs)

    monkeypatch.setattr(services_module, "with_orders_read_again", slow_read)
    make_the_check_due(service, services_module)
    assert service.city() is before  # the check starts the refresh and answers at once
    assert reading.wait(30)
    assert service.city() is before and service.table("today") is table_before  # still the old one, whole
    release.set()
    service.wait_for_refresh(60)
    after = service.city()
    assert after is not before and len(after["orders"]) == len(before["orders"]) + 1
    assert "today" in service._current().tables and "today" in service._current().series  # computed in the refresh
    pd.testing.assert_frame_equal(service.table("today"), services_module.window_table(load_city(store), "today"))

    # A refresh that fails leaves the city being served as it was, says why, and the next check tries again.
    work_orders.file_request(event_type="garbage_overflow", lon=lon, lat=lat, actor="t")

    def broken(*_args, **_kwargs):
        raise OSError("disk unplugged")

    monkeypatch.setattr(services_module, "with_orders_read_again", broken)
    make_the_check_due(service, services_module)
    assert service.city() is after
    service.wait_for_refresh(60)
    assert service.city() is after
    assert "disk unplugged" in capsys.readouterr().err
    monkeypatch.setattr(services_module, "with_orders_read_again", reloaded)
    make_the_check_due(service, services_module)
    service.city()
    service.wait_for_refresh(60)
    assert len(service.city()["orders"]) == len(after["orders"]) + 1
