"""An answer never contradicts what was stored (issue 12, faults): once an operator's action is committed, the order
page answers "Done" even if the store stops answering while the page is redrawn after it.

Found by tests/test_faults.py: an action committed just after the database came back, then the redraw's second read
met a pooled connection the restart had closed, and the page answered 503 ("not saved") for a saved action. Here the
store fails on purpose at the k-th statement after the commit, for every k the redraw reaches, in process."""
from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import event

from callback_requests import body, callback_name, server_callbacks
from conftest import app_in_process, built_test_city
from layers.store import Store
from layers.store_health import StoreUnavailable
from layers.workorders import OrderQuery, WorkOrders


@pytest.fixture(scope="module")
def city_url(tmp_path_factory):
    return built_test_city(tmp_path_factory, "saved")


@pytest.fixture(scope="module")
def app(city_url):
    return app_in_process(city_url)


@contextlib.contextmanager
def store_fails_after_commit(engine, statement: int):
    """The ``statement``-th statement after the next commit raises as a store that stopped answering; yields a
    list that holds True once it did."""
    state = {"committed": False, "count": 0}
    fired: list[bool] = []

    def after_commit(_conn):
        state["committed"] = True

    def before_execute(*_args):
        if not state["committed"] or fired:
            return
        state["count"] += 1
        if state["count"] == statement:
            fired.append(True)
            raise StoreUnavailable("the store did not answer (injected after the commit)")

    event.listen(engine, "commit", after_commit)
    event.listen(engine, "before_cursor_execute", before_execute)
    try:
        yield fired
    finally:
        event.remove(engine, "commit", after_commit)
        event.remove(engine, "before_cursor_execute", before_execute)


def test_a_committed_action_is_answered_done_whichever_read_after_it_fails(app, city_url):
    from dashboard import services

    engine = services.get().store.engine
    work_orders = WorkOrders(Store(city_url))
    received = work_orders.list_orders(OrderQuery(status=["received"], limit=20)).orders
    act_key = next(k for k, e in server_callbacks(app).items() if callback_name(e).endswith("act_on_order"))
    client = app.server.test_client()
    injected = 0
    for statement, order in enumerate(received, start=1):
        state = {"order_id": order.order_id, "version": order.version, "lang": "en"}
        with store_fails_after_commit(engine, statement) as fired:
            answer = client.post("/_dash-update-component", json=body(
                act_key, app.callback_map[act_key], [1, state, f"operator test #{statement}", None],
                wildcard="dispatch"))
        saved = work_orders.get(order.order_id)
        assert saved.version == order.version + 1 and saved.status == "dispatched", statement
        assert answer.status_code == 200, (statement, answer.status_code, answer.get_data(as_text=True)[:300])
        assert "order-message done" in answer.get_data(as_text=True), (statement, answer.get_data(as_text=True)[:300])
        if not fired:
            break  # the redraw reads fewer statements than this: every one of them has failed once
        injected += 1
    assert injected >= 2, "the redraw after an action should read the store (its body, then its buttons)"
