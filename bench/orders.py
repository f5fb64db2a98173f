"""City-scale benchmark of the operators' work-order screens (issue 5), against the map's budgets (an interaction
under 300 ms and 2 MB on the wire).

    .venv/bin/python bench/orders.py                    # a copy of data/bench-city.sqlite (build: bench/run.py)
    .venv/bin/python bench/orders.py --repeat 7

It acts on orders, so it works on a copy of the database (in the system's temp folder), never on the bench city
itself. Everything goes through the app's real endpoints with Flask's test client, in process: the page layouts
(``/orders``, ``/orders/<id>``, ``/supervision``), AG Grid's block requests (the first block, a block a million rows
down, filtered, sorted by deadline), an action on an order (the callback a button click posts), and the sweep that
escalates every red card. A row shows the first call and the median of ``--repeat`` warm ones.

Last, what an action costs the rest of the dashboard: the first map page after it, with
``CITYTWIN_VERSION_CHECK_SECONDS`` at 0 (the change is read before that page is answered), then with an interval (the
default 30 s: the page is answered from the city as it was while a background thread reads the change), how long that
refresh takes, and the page after it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Check the store on every request (read when the dashboard's modules are imported): the last row measures what an
# action costs the next map page, which must be that page, not one 30 s later.
os.environ["CITYTWIN_VERSION_CHECK_SECONDS"] = "0"
os.environ.setdefault("CITYTWIN_ESCALATION_MINUTES", "0")  # the sweep is measured below, not run by a timer

from maps import INTERACTION_BYTES, INTERACTION_MS, Callbacks, Row, first_and_median, ms, print_table  # noqa: E402
from capture import captured_for, pages_request  # noqa: E402
from signin import signed_in_client  # noqa: E402

DEFAULT_DATABASE = ROOT / "data" / "bench-city.sqlite"


def action_body(callbacks: Callbacks, action: str, state: dict, actor: str) -> dict:
    """The body a click on an action button posts (a pattern-matching input: every button, one clicked)."""
    dependency = next(d for d in callbacks.dependencies if "order-body.children" in d["output"])
    button = {"action": action, "type": "order-action"}
    outputs = []
    for part in dependency["output"].strip(".").split("..."):
        component, _, prop = part.partition(".")
        outputs.append({"id": component, "property": prop})
    return {
        "output": dependency["output"], "outputs": outputs,
        "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
        # The actor is the signed-in account (the bench's own), no longer a field of the form.
        "state": [{"id": "order-state", "property": "data", "value": state},
                  {"id": "order-note", "property": "value", "value": "bench"},
                  {"id": "order-department-select", "property": "value", "value": None}],
        "changedPropIds": [json.dumps(button, separators=(",", ":"), sort_keys=True) + ".n_clicks"],
    }


def run(app, repeat: int) -> list[Row]:
    from dashboard import services
    from layers.workorders import OrderQuery

    rows: list[Row] = []
    # create_app warms in a thread; measuring beside it would time the GIL, not the screens.
    for thread in threading.enumerate():
        if thread.name == "warm-windows":
            started = time.perf_counter()
            thread.join()
            print(f"  (waited {time.perf_counter() - started:.1f} s for the app's warm-up)", flush=True)
    client = signed_in_client(app)
    callbacks = Callbacks(client)
    service = services.get()
    work_orders = service.work_orders()

    def add(row: Row) -> None:
        rows.append(row)
        print(f"{row.name:<78} first {ms(row.first):>7} ms  median {ms(row.median):>7} ms  "
              f"{'' if row.size is None else f'{row.size:>11,} B'}  {row.verdict}", flush=True)

    def measure(name: str, body: dict, times: int = repeat) -> dict:
        first, median, (size, parsed) = first_and_median(lambda: callbacks.post(body), times)
        add(Row("orders", name, median, first, size, INTERACTION_MS, INTERACTION_BYTES))
        return parsed

    total = work_orders.list_orders(OrderQuery(limit=1)).total
    print(f"  {total:,} orders", flush=True)
    measure("page: /orders", pages_request("", "/orders"))
    no_filters = {"status": [], "event_type": [], "department": [], "channel": [], "unit": None, "overdue": False,
                  "escalated": False, "q": None, "lang": "en"}

    def block(request: dict, filters: dict = no_filters) -> dict:
        return callbacks.body(f"{'order-grid'}.getRowsResponse", {"order-grid.getRowsRequest": request},
                              {"order-filters.data": filters}, "order-grid.getRowsRequest")

    measure("list: first block of 100, newest first", block({"startRow": 0, "endRow": 100}))
    deep = min(1_000_000, total - 100)
    measure(f"list: block at row {deep:,}", block({"startRow": deep, "endRow": deep + 100}))
    measure("list: sorted by deadline, oldest first",
            block({"startRow": 0, "endRow": 100, "sortModel": [{"colId": "deadline_at", "sort": "asc"}]}))
    busiest = work_orders.responsibility_list().rules["garbage_overflow"].department
    filtered = dict(no_filters, status=["received", "dispatched", "accepted"], department=[busiest], unit="440304")
    measure(f"list: open orders of {busiest} in Futian", block({"startRow": 0, "endRow": 100}, filtered))
    measure("list: closed orders (most of the city's), newest first",
            block({"startRow": 0, "endRow": 100}, dict(no_filters, status=["closed"])))
    measure("list: two departments, by deadline",
            block({"startRow": 0, "endRow": 100, "sortModel": [{"colId": "deadline_at", "sort": "asc"}]},
                  dict(no_filters, department=[busiest, "Traffic Police"])))
    measure("list: overdue (red card), every department",
            block({"startRow": 0, "endRow": 100}, dict(no_filters, overdue=True)))
    measure("page: /supervision (cards of every open order)", pages_request("", "/supervision"))

    received = work_orders.list_orders(OrderQuery(status=["received"], limit=repeat + 2)).orders
    assert len(received) == repeat + 2, "the city has too few received orders to act on"
    measure(f"page: /orders/{received[0].order_id}", pages_request("", f"/orders/{received[0].order_id}"))
    # An action: each run dispatches another received order (an action is never repeated on one order).
    bodies = iter([action_body(callbacks, "dispatch", {"order_id": o.order_id, "version": o.version, "lang": "en"},
                               "bench") for o in received])
    first, median, (size, parsed) = first_and_median(lambda: callbacks.post(next(bodies)), repeat)
    add(Row("orders", "action: dispatch an order (write, then the order redrawn)", median, first, size,
            INTERACTION_MS, INTERACTION_BYTES))
    message = parsed.get("response", {}).get("order-message", {}).get("className")
    if message != "order-message done":
        raise SystemExit(f"the action did not succeed: {parsed.get('response', {}).get('order-message')}")

    started = time.perf_counter()
    _size, _parsed = callbacks.post(pages_request("", "/"))
    add(Row("after an action", "the next map page, interval 0 (the change read before answering)", None,
            time.perf_counter() - started, _size, INTERACTION_MS, INTERACTION_BYTES))

    # With an interval (30 s by default) the change is read in the background: the next page is answered from the
    # city as it was, and the new one is swapped in when ready (the interval is shortened so the check is now).
    service.settings = service.settings.but(version_check_seconds=0.001)
    order = received[-1]
    work_orders.dispatch(order.order_id, expected_version=order.version, actor="bench")
    time.sleep(0.01)
    started = time.perf_counter()
    _size, _parsed = callbacks.post(pages_request("", "/"))
    add(Row("after an action", "the next map page, interval > 0 (answered while the change is read)", None,
            time.perf_counter() - started, _size, INTERACTION_MS, INTERACTION_BYTES))
    service.wait_for_refresh()
    add(Row("after an action", "the background refresh (orders read again, tables and sparklines in use)", None,
            time.perf_counter() - started, None))
    started = time.perf_counter()
    _size, _parsed = callbacks.post(pages_request("", "/"))
    add(Row("after an action", "the map page after the refresh", None, time.perf_counter() - started, _size,
            INTERACTION_MS, INTERACTION_BYTES))
    print_table(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=str(DEFAULT_DATABASE), help="SQLite file of the city (copied)")
    parser.add_argument("--repeat", type=int, default=5, help="warm runs per median (at least 5)")
    parser.add_argument("--capture", type=Path, default=ROOT / "data" / "bench-capture.json",
                        help="the browser's requests as bench/run.py captured them (captured anew if missing)")
    args = parser.parse_args(argv)
    if not Path(args.database).exists():
        raise SystemExit(f"error: no {args.database}; build it: .venv/bin/python -m sample_data build --scale city "
                         f"--db {args.database}")
    with tempfile.TemporaryDirectory(prefix="citytwin-bench-") as folder:
        copy = Path(folder) / "city.sqlite"
        started = time.perf_counter()
        shutil.copyfile(args.database, copy)
        print(f"citytwin work-order bench — a copy of {args.database} ({time.perf_counter() - started:.1f} s)",
              flush=True)
        from app import create_app
        started = time.perf_counter()
        app = create_app(f"sqlite:///{copy}")
        print(f"app start {time.perf_counter() - started:.1f} s", flush=True)
        captured_for(app, args.capture if args.capture.exists() else None)
        run(app, max(args.repeat, 5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
