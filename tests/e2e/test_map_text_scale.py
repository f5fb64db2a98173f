"""What deck.gl draws in pixels on the map follows the screen (issue 15 item 8): on 3840×2160 the units' names are
twice as tall and wide as on 1920×1080 — four times the pixels — like every other part of the page, and no marker is
drawn over them. Before, a TextLayer's size was 1920's pixel size on every screen: half as large on 4K."""
from __future__ import annotations

import pytest

from dashboard.theme import PALETTE

pytestmark = pytest.mark.browser

TEXT = tuple(int(PALETTE["text"][i:i + 2], 16) for i in (1, 3, 5))  # the labels' fill colour

# The map canvas's pixels within 10 of the labels' colour (deck.gl keeps its drawing buffer). Synchronous:
# Playwright's wait_for_function takes a promise for a truthy answer.
TEXT_PIXELS = """([r, g, b]) => {
    const canvas = document.querySelector('#city-map canvas');
    if (!canvas || !canvas.width || !canvas.height) return 0;
    const copy = document.createElement('canvas');
    copy.width = canvas.width; copy.height = canvas.height;
    const context = copy.getContext('2d');
    context.drawImage(canvas, 0, 0);
    const data = context.getImageData(0, 0, copy.width, copy.height).data;
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i] - r) <= 10 && Math.abs(data[i + 1] - g) <= 10 && Math.abs(data[i + 2] - b) <= 10) count++;
    }
    return count;
}"""

# The count once the labels are drawn and the picture stands still: the same non-zero count three polls in a row.
SETTLED_TEXT_PIXELS = f"""([colour]) => {{
    const count = ({TEXT_PIXELS})(colour);
    const seen = window.__textPixels || (window.__textPixels = {{last: -1, same: 0}});
    seen.same = count > 0 && count === seen.last ? seen.same + 1 : 0;
    seen.last = count;
    return seen.same >= 2 ? count : false;
}}"""


def label_pixels(browser, url: str, width: int, height: int) -> tuple[int, float]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(120_000)  # a loaded machine (see patient_page in conftest.py)
    try:
        page.goto(url, wait_until="networkidle")
        count = page.wait_for_function(SETTLED_TEXT_PIXELS, arg=[list(TEXT)], polling=500).json_value()
        scale = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize) / 16")
        return count, scale
    finally:
        context.close()


def test_the_units_names_on_the_map_are_twice_as_large_on_4k(serve_app, city_db, browser):
    base = serve_app(city_db)
    url = base + "/?unit=440304&layers=units"  # a district's streets, named, with no other layer
    small, small_scale = label_pixels(browser, url, 1920, 1080)
    large, large_scale = label_pixels(browser, url, 3840, 2160)
    assert (small_scale, large_scale) == (1, 2)
    # Twice the size each way: four times the pixels (a glyph's antialiased edge is a smaller share of a larger
    # glyph, hence a little more). Drawn at 1920's size, the names and outlines made 1.5 times the pixels.
    assert 3.5 < large / small < 5.5, (small, large)
