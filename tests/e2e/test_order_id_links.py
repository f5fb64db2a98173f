"""Order ids in links (issue 15 item 15): imported ids may hold ``[ ] ( ) / # ?``. Every link to an order — the
/orders grid's Order column, the supervision board, a building card's nearby orders — shows the id as written and
opens that order, not a garbled Markdown link or a path cut at ``#`` or ``?``."""
from __future__ import annotations

import sqlite3
from urllib.parse import urlencode

import pandas as pd
import pytest

from layers.load import load_layer
from layers.specs import CITY_TIMEZONE
from layers.store import Store
from sample_data.__main__ import build

pytestmark = pytest.mark.browser

# Appended to every order id of the city: Markdown's link brackets, a path separator, a fragment and a query.
HOSTILE_SUFFIX = "[1](x)/a#b?c=d e"


@pytest.fixture(scope="module")
def city_with_hostile_ids(tmp_path_factory):
    path = tmp_path_factory.mktemp("ids") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False, end=pd.Timestamp.now(tz=CITY_TIMEZONE).floor("h"))
    url = f"sqlite:///{path}"
    building = load_layer(Store(url), "buildings").iloc[0]
    spot = building.geometry.representative_point()
    with sqlite3.connect(path) as connection:
        for table in ("orders", "order_transitions"):
            connection.execute(f"UPDATE {table} SET order_id = order_id || ?", (HOSTILE_SUFFIX,))
        # One open order on the first building, whose year of construction is unknown (as imports often leave it).
        open_order = connection.execute("SELECT order_id FROM orders WHERE status = 'received' LIMIT 1").fetchone()[0]
        connection.execute("UPDATE orders SET lon = ?, lat = ?, grid_code = ? WHERE order_id = ?",
                           (spot.x, spot.y, building["grid_code"], open_order))
        connection.execute("UPDATE buildings SET year_built = NULL WHERE building_id = ?", (building["building_id"],))
    return url, building["building_id"], building["grid_code"], open_order


def order_page_shows(page, order_id: str) -> None:
    page.wait_for_function("id => document.querySelector('#order-id')?.innerText.includes(id)", arg=order_id)


def test_order_links_keep_ids_with_brackets_slashes_and_hashes(serve_app, city_with_hostile_ids, page):
    url, building_id, grid_code, open_order = city_with_hostile_ids
    base = serve_app(url)

    page.goto(base + "/orders", wait_until="networkidle")
    link = page.locator(".ag-row[row-index='0'] [col-id='order_id'] a")
    link.wait_for()
    order_id = link.inner_text().strip()
    assert order_id.endswith(HOSTILE_SUFFIX), order_id
    link.click()
    order_page_shows(page, order_id)
    # What the citizen said (issue 15 item 13): the sample's generated text, not "—".
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        (said,) = connection.execute("SELECT description FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    assert said and page.locator("#order-description").inner_text() == said
    page.reload(wait_until="networkidle")  # the encoded URL opens the same order on its own
    order_page_shows(page, order_id)

    page.goto(base + "/supervision", wait_until="networkidle")
    board_link = page.locator("#carded-orders tbody tr a").first
    board_link.wait_for()
    carded_id = board_link.inner_text().strip()
    assert carded_id.endswith(HOSTILE_SUFFIX), carded_id
    board_link.click()
    order_page_shows(page, carded_id)

    # The building card lists the open order next to it as a link, and an unknown year as unknown, not "<NA>".
    page.goto(base + "/?" + urlencode({"unit": grid_code, "building": building_id}), wait_until="networkidle")
    card = page.locator("#building-card")
    card.wait_for()
    assert "<NA>" not in card.inner_text() and "nan" not in card.inner_text().lower().split()
    card_link = card.get_by_role("link", name=open_order, exact=True)
    card_link.click()
    order_page_shows(page, open_order)
    assert page.console_errors == []
