"""Exports of the current view in real headless Chromium against a real server: the KPI CSV matches the cards, the 3D
scene opens from a file:// URL with the network blocked and draws, and the PNG of the screen has the screen's size
with the map drawn in it (not a blank canvas)."""
from __future__ import annotations

import base64
import csv
import io
import struct
import time

import pytest

from tests.e2e.conftest import wait_for_frames

from dashboard.maps.registry import LAND_COLOR
from dashboard.theme import STATE_COLORS, rgba
from metrics.registry import INDICATORS

pytestmark = pytest.mark.browser

FUTIAN = "440304"
VIEW = f"/?unit={FUTIAN}&indicator=on_time_rate&window=7d"
MEASURED: dict[str, str] = {}

# Statistics of the pixels of a rectangle of an image given as a data URL, decoded by the browser: the variance of
# their brightness and the share of them within `tolerance` of one of `colors` (RGB).
PIXEL_STATS = """async ([url, rect, colors, tolerance]) => {
  const image = new Image();
  image.src = url;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const [x, y, w, h] = rect.map(Math.round);
  const data = context.getImageData(x, y, w, h).data;
  let sum = 0, squares = 0, matching = 0;
  const n = data.length / 4;
  for (let i = 0; i < data.length; i += 4) {
    const brightness = (data[i] + data[i + 1] + data[i + 2]) / 3;
    sum += brightness; squares += brightness * brightness;
    if (colors.some(c => Math.abs(c[0] - data[i]) <= tolerance && Math.abs(c[1] - data[i + 1]) <= tolerance
                          && Math.abs(c[2] - data[i + 2]) <= tolerance)) matching += 1;
  }
  const mean = sum / n;
  return {width: image.naturalWidth, height: image.naturalHeight, variance: squares / n - mean * mean,
          matching: matching / n};
}"""


def blended(color: str, alpha: int) -> list[float]:
    """A state colour at ``alpha`` over the base map's land, as the map draws a unit."""
    over, under = rgba(color)[:3], rgba(LAND_COLOR)[:3]
    return [alpha / 255 * o + (1 - alpha / 255) * u for o, u in zip(over, under)]


MAP_FILLS = [blended(color, 150) for color in STATE_COLORS.values()]  # dashboard.maps.deck.choropleth_layer


@pytest.fixture(scope="module", autouse=True)
def report_measured(request):
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\nexports, measured on the test city:")
        for name, figure in MEASURED.items():
            print(f"  {name}: {figure}")


def download(page, selector: str, menu: bool = True):
    if menu:
        page.locator("#export-menu summary").click()
    started = time.perf_counter()
    with page.expect_download(timeout=60_000) as info:
        page.locator(selector).click()
    path = info.value.path()
    return info.value, path, time.perf_counter() - started


def open_view(page, base: str) -> None:
    page.goto(base + VIEW, wait_until="networkidle")
    page.wait_for_selector("canvas")
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.unit === '440304'")
    wait_for_frames(page)  # deck.gl draws on the next animation frames


def test_kpi_csv_matches_the_cards(serve_app, city_db, page):
    base = serve_app(city_db)
    open_view(page, base)
    shown = dict(page.locator(".kpi-value[data-indicator]").evaluate_all(
        "values => values.map(v => [v.dataset.indicator, v.textContent])"))
    assert len(shown) >= 12

    done, path, seconds = download(page, "#export-csv")
    assert done.suggested_filename.startswith(f"citytwin-kpis-{FUTIAN}-7d-") and done.suggested_filename.endswith(".csv")
    raw = open(path, "rb").read()
    MEASURED["KPI CSV"] = f"{len(raw):,} bytes in {seconds:.2f} s"
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [row["indicator"] for row in rows] == list(INDICATORS)
    by_id = {row["indicator"]: row for row in rows}
    for indicator_id, text in shown.items():
        row = by_id[indicator_id]
        assert row["display"] == text, indicator_id
        value = float(row["value"]) if row["value"] else None
        assert INDICATORS[indicator_id].format_value(value) == text, indicator_id
    # The cards' states and names are the CSV's.
    for card in page.locator(".kpi-card").all()[:6]:
        indicator_id = card.locator(".kpi-value").get_attribute("data-indicator")
        assert f"state-{by_id[indicator_id]['state']}" in card.get_attribute("class")
        assert by_id[indicator_id]["name_en"] in card.inner_text()  # the page is in English
    assert {row["unit_code"] for row in rows} == {FUTIAN}
    assert {row["unit_name"] for row in rows} == {"Futian"}
    assert {row["window"] for row in rows} == {"7d"}
    assert page.external_requests == []
    assert page.console_errors == []


def test_scene_html_opens_offline_and_draws(serve_app, city_db, page, browser, tmp_path):
    base = serve_app(city_db)
    open_view(page, base)
    done, path, seconds = download(page, "#export-scene")
    assert done.suggested_filename.endswith(".html")
    scene = tmp_path / "scene.html"
    scene.write_bytes(open(path, "rb").read())
    MEASURED["3D scene HTML"] = f"{scene.stat().st_size:,} bytes in {seconds:.2f} s"

    # Away from the server: a file:// URL in a browser whose every other request fails.
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    try:
        offline = context.new_page()
        leaving, failed, errors = [], [], []

        def only_files(route):
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                leaving.append(route.request.url)
                route.abort()

        context.route("**/*", only_files)
        offline.on("requestfailed", lambda request: failed.append(request.url))
        offline.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        offline.on("pageerror", lambda error: errors.append(str(error)))
        offline.goto(scene.as_uri(), wait_until="load")
        offline.wait_for_selector("canvas")
        wait_for_frames(offline, 10)
        assert leaving == [] and failed == [] and errors == []
        assert offline.evaluate("!!document.querySelector('canvas').getContext('webgl2')")
        # Drawn: the canvas holds the districts' streets in their state colours, not an empty frame.
        box = offline.locator("canvas").bounding_box()
        pixels = offline.evaluate("document.querySelector('canvas').toDataURL()")
        stats = offline.evaluate(PIXEL_STATS, [pixels, [0, 0, box["width"], box["height"]],
                                               [rgba(c)[:3] for c in STATE_COLORS.values()], 70])
        assert stats["variance"] > 50, stats
        assert stats["matching"] > 0.03, stats
        assert "Futian" in offline.locator("body").inner_text()
    finally:
        context.close()
    assert page.external_requests == []
    assert page.console_errors == []


def test_png_of_the_screen_shows_the_map(serve_app, city_db, page):
    base = serve_app(city_db)
    open_view(page, base)
    done, path, seconds = download(page, "#export-png")
    assert done.suggested_filename.endswith(".png")
    raw = open(path, "rb").read()
    MEASURED["screen PNG (1920×1080)"] = f"{len(raw):,} bytes in {seconds:.2f} s"
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])  # IHDR
    assert (width, height) == (1920, 1080)

    # Decoded by the browser: the map's area of the picture holds the units in their state colours.
    box = page.locator("canvas").first.bounding_box()
    url = "data:image/png;base64," + base64.b64encode(raw).decode()
    stats = page.evaluate(PIXEL_STATS, [url, [box["x"], box["y"], box["width"], box["height"]], MAP_FILLS, 10])
    assert (stats["width"], stats["height"]) == (1920, 1080)
    assert stats["variance"] > 50, stats
    assert stats["matching"] > 0.2, stats  # a blank canvas would leave the page's background there
    # The same share as on the live screen (Playwright's own screenshot of the page).
    live = "data:image/png;base64," + base64.b64encode(page.screenshot()).decode()
    live_stats = page.evaluate(PIXEL_STATS, [live, [box["x"], box["y"], box["width"], box["height"]], MAP_FILLS, 10])
    assert abs(stats["matching"] - live_stats["matching"]) < 0.05, (stats, live_stats)
    assert page.locator("#export-png").get_attribute("data-error") is None
    assert page.external_requests == []
    assert page.console_errors == []


def test_an_unknown_unit_is_refused_with_its_name(serve_app, city_db, page):
    base = serve_app(city_db)
    response = page.request.get(base + "/export/kpis.csv?unit=nowhere&window=7d")
    assert response.status == 400
    assert "unknown unit 'nowhere'" in response.text()
    response = page.request.get(base + f"/export/scene.html?unit={FUTIAN}&indicator=bogus")
    assert response.status == 400
    assert "unknown indicator 'bogus'" in response.text()
