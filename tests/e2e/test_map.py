"""The map in a real browser: the drill path down to a building card and back (a building clicked on the map
opens its card), layer toggles from the registry, and 24-hour playback moving the clock, the map and the KPIs."""
from __future__ import annotations

import math
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import wait_for_frames

from dashboard.maps.registry import MAP_LAYERS

pytestmark = pytest.mark.browser


def unit_of(page) -> tuple[str, str]:
    title = page.locator("#unit-title")
    return title.get_attribute("data-level"), title.get_attribute("data-unit")


def wait_for_unit(page, code: str):
    page.wait_for_function(f"document.querySelector('#unit-title')?.dataset.unit === '{code}'")


def on_canvas(camera: dict, lon: float, lat: float, size: tuple[float, float]) -> tuple[float, float]:
    """Where deck.gl's Web Mercator camera (pitch, no bearing; its default altitude of 1.5 screen heights) draws a
    point on the ground, in a canvas of ``size``: the pitched counterpart of dashboard.maps.deck.project."""
    from dashboard.maps.deck import project
    flat_x, flat_y = project({**camera, "pitch": 0}, lon, lat, size)
    east, north = flat_x - size[0] / 2, size[1] / 2 - flat_y
    distance = 1.5 * size[1]
    pitch = math.radians(camera.get("pitch", 0))
    depth = distance + north * math.sin(pitch)
    return size[0] / 2 + east * distance / depth, size[1] / 2 - north * math.cos(pitch) * distance / depth


def click_a_building_on_the_map(page, city_db: str, grid: str) -> str:
    """Point at the grid cell's buildings where the map draws them (camera as the page sets it) until the map's
    tooltip names one under the pointer, click there, and return the building the tooltip named."""
    from dashboard.maps.deck import MAP_PAGE_INSETS, NOMINAL_MAP_SIZE, TILTED_LEVELS, fit_view
    from layers.city import load_city
    from layers.store import Store

    city = load_city(Store(city_db), layer_ids=("units", "buildings"))
    unit = city.units.loc[grid]
    camera = dict(fit_view(unit.geometry.bounds, NOMINAL_MAP_SIZE, **MAP_PAGE_INSETS), pitch=TILTED_LEVELS["grid"])
    buildings = city["buildings"][city["buildings"]["grid_code"] == grid]
    assert len(buildings), f"grid cell {grid} has no buildings"
    canvas = page.locator("#city-map canvas").first.bounding_box()
    size = (canvas["width"], canvas["height"])
    for point in buildings.geometry.representative_point().head(20):
        x, y = on_canvas(camera, point.x, point.y, size)
        if not (MAP_PAGE_INSETS["left"] < x < size[0] - 8 and 8 < y < size[1] - MAP_PAGE_INSETS["bottom"]):
            continue
        page.mouse.move(canvas["x"] + x - 4, canvas["y"] + y - 4)
        page.mouse.move(canvas["x"] + x, canvas["y"] + y)
        try:
            named = page.wait_for_function(
                """ids => { const tip = document.querySelector('.deck-tooltip');
                     const first = tip && tip.offsetParent !== null && tip.textContent.split(' · ')[0];
                     return ids.includes(first) ? first : null; }""",
                arg=list(buildings["building_id"]), timeout=15_000, polling=100).json_value()
        except Exception:  # noqa: BLE001 (nothing of ours under this point: the next building)
            continue
        page.mouse.click(canvas["x"] + x, canvas["y"] + y)
        return named
    raise AssertionError(f"no building of grid cell {grid} was named by the map's tooltip under the pointer")


def test_drill_down_to_a_building_card_and_back(serve_app, city_db, page):
    base = serve_app(city_db)
    tile_requests = []
    page.on("request", lambda r: tile_requests.append(r.url) if "/tiles/buildings/" in r.url else None)
    page.goto(base + "/", wait_until="networkidle")
    path = [unit_of(page)]
    # City → district → street → community → grid cell, each by the first row of the ranking.
    for level in ("district", "street", "community", "grid"):
        row = page.locator(".rank-row").first
        href = row.get_attribute("href")
        code = re.search(r"unit=(\d+)", href).group(1)
        row.click()
        wait_for_unit(page, code)
        assert unit_of(page) == (level, code)
        path.append((level, code))
    # In a grid cell the ranking lists its buildings; the map draws them in 3D, sent with the page (no tiles).
    # A building under the pointer is named by the map's tooltip, and a click on it opens its card.
    clicked = click_a_building_on_the_map(page, city_db, path[-1][1])
    page.wait_for_selector(f"#building-card[data-building='{clicked}']")
    assert f"building={clicked}" in page.url
    assert tile_requests == []
    page.go_back()
    page.wait_for_function("!document.querySelector('#building-card')")
    building_row = page.locator(".building-row").first
    building_id = building_row.locator(".rank-name").inner_text()
    building_row.click()
    page.wait_for_selector("#building-card")
    card = page.locator("#building-card")
    assert card.get_attribute("data-building") == building_id
    text = card.inner_text().lower()  # headings are upper-cased by the style sheet
    for fact in ("use", "height", "residents", "fire iot", "sensors", "open orders nearby"):
        assert fact in text
    assert f"building={building_id}" in page.url
    # The link reopens the card.
    page.goto(page.url, wait_until="networkidle")
    assert page.locator("#building-card").get_attribute("data-building") == building_id
    # Back walks up the path again: the grid cell without the card, then its community.
    page.go_back()
    page.wait_for_function("!document.querySelector('#building-card')")
    assert unit_of(page) == path[-1]
    page.go_back()
    wait_for_unit(page, path[-2][1])
    # Forward to the grid cell, then the card's × closes it.
    page.go_forward()
    wait_for_unit(page, path[-1][1])
    page.locator(".building-row").first.click()
    page.wait_for_selector("#building-card")
    page.locator("#card-close").click()
    page.wait_for_function("!document.querySelector('#building-card')")
    assert unit_of(page) == path[-1]
    assert page.external_requests == []
    assert page.console_errors == []


def test_layer_toggles_come_from_the_registry_and_keep_the_camera(serve_app, city_db, page):
    base = serve_app(city_db)
    page.goto(base + "/?unit=440304", wait_until="networkidle")
    options = page.locator("#layer-toggles input[type=checkbox]")
    assert options.count() == len(MAP_LAYERS)
    # Every layer has a freshness badge.
    assert page.locator("#layer-toggles .fresh-badge").count() == len(MAP_LAYERS)
    assert page.locator(".legend-block[data-layer=order_hexes]").count() == 0
    page.locator("#layer-toggles label", has_text="H3 hexagons").click()
    page.wait_for_selector(".legend-block[data-layer=order_hexes]")
    page.wait_for_function("location.search.includes('order_hexes')")
    # The page was not redrawn (the camera stays): the same title element, and no navigation happened.
    assert "unit=440304" in page.url
    page.locator("#layer-toggles label", has_text="IoT sensors").click()
    page.wait_for_selector(".legend-block[data-layer=sensors]")
    # A link with the layers reopens them.
    page.goto(page.url, wait_until="networkidle")
    checked = page.locator("#layer-toggles input:checked")
    expect(checked).to_have_count(6)  # the panel may be drawn after the network went idle (a loaded machine)
    values = sorted(checked.nth(i).get_attribute("value") for i in range(checked.count()))
    assert values == sorted(["base", "units", "buildings", "order_hexes", "sensors", "alerts"])
    assert page.external_requests == []
    assert page.console_errors == []


def map_pixels(page) -> str:
    """The map canvas's pixels (deck.gl's context keeps its drawing buffer, so it can be read back)."""
    return page.evaluate("document.querySelector('#city-map canvas, .map-panel canvas').toDataURL('image/png')")


def test_playback_moves_the_clock_the_map_and_the_kpis(serve_app, city_db, page):
    base = serve_app(city_db)
    page.goto(base + "/?layers=units", wait_until="networkidle")
    wait_for_frames(page)
    live_volume = page.locator(".kpi-card").first.locator(".kpi-value").inner_text()
    assert page.locator("#play-clock").inner_text().startswith("live")
    # Play: the clock runs, the cards follow hour by hour, the day's points appear on the map.
    before = map_pixels(page)
    page.locator("#play-button").click()
    page.wait_for_function("!document.querySelector('#play-clock').innerText.startsWith('live')")
    first = page.locator("#play-clock").inner_text()
    page.wait_for_function("t => document.querySelector('#play-clock').innerText !== t", arg=first)
    second = page.locator("#play-clock").inner_text()
    assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d", first) and first != second
    page.wait_for_function(
        f"document.querySelector('.kpi-card .kpi-value')?.innerText !== {live_volume!r}")
    after = map_pixels(page)
    assert len(before) > 10_000 and after != before  # the day's points are drawn
    page.locator("#play-button").click()  # pause
    page.wait_for_function("document.querySelector('#play-button').innerText.includes('Play')")
    assert page.external_requests == []
    assert page.console_errors == []


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, written by hand (no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


@pytest.fixture
def local_tile_server():
    """A raster tile server on this machine, as a command center's own network would have; it logs what it served."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    served = []
    tile = _png(256, 256, (40, 70, 60))

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(tile)))
            self.end_headers()
            self.wfile.write(tile)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", served
    finally:
        server.shutdown()


def test_base_map_is_drawn_offline_or_from_the_deployments_own_tile_server(serve_app, city_db, page, monkeypatch,
                                                                           local_tile_server):
    # Without a tile server: the land comes from the city's own boundaries, and nothing is fetched.
    base = serve_app(city_db)
    page.goto(base + "/?unit=440304", wait_until="networkidle")
    assert page.locator(".legend-block[data-layer=base]").count() == 1
    assert page.external_requests == []
    # With one configured, its tiles are drawn under the layers.
    tiles_url, served = local_tile_server
    monkeypatch.setenv("CITYTWIN_BASEMAP_URL", tiles_url + "/tiles/{z}/{x}/{y}.png")
    base = serve_app(city_db)
    page.goto(base + "/?unit=440304", wait_until="networkidle")
    if not served:
        page.wait_for_event("requestfinished", predicate=lambda r: r.url.startswith(tiles_url), timeout=60_000)
    assert served and all(re.fullmatch(r"/tiles/\d+/\d+/\d+\.png", path) for path in served)
    assert page.console_errors == []
