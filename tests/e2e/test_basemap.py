"""The city's own vector base map in a real browser: a PMTiles file the test builds, served by our server, drawn
dark under the layers; nothing fetched from anywhere else."""
from __future__ import annotations

import pytest

from tests.basemap_fixture import build_pmtiles

pytestmark = pytest.mark.browser

PARK = (0x17, 0x30, 0x2F)  # dashboard.maps.registry.PARK_COLOR: only the vector base map draws it
LAND = (0x16, 0x23, 0x3A)  # dashboard.maps.registry.LAND_COLOR

# How many of the map canvas's pixels are within 3 of an RGB colour (the canvas keeps its drawing buffer). Synchronous:
# Playwright's wait_for_function does not wait for a promise, it takes one for a truthy answer.
COUNT_PIXELS = """([r, g, b]) => {
    const canvas = document.querySelector('#city-map canvas') || document.querySelector('canvas');
    if (!canvas || !canvas.width || !canvas.height) return 0;
    const copy = document.createElement('canvas');
    copy.width = canvas.width; copy.height = canvas.height;
    const context = copy.getContext('2d');
    context.drawImage(canvas, 0, 0);
    const data = context.getImageData(0, 0, copy.width, copy.height).data;
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i] - r) <= 3 && Math.abs(data[i + 1] - g) <= 3 && Math.abs(data[i + 2] - b) <= 3) count++;
    }
    return count;
}"""


def park_pixels_once_the_land_is_drawn(page) -> int:
    """The park pixels on the map, counted once its canvas has drawn the land (on a busy machine the map is drawn,
    and may be drawn again on a new canvas, seconds after the page's network went idle)."""
    count = f"""() => {{
        const pixels = {COUNT_PIXELS};
        return pixels({list(LAND)}) > 1000 ? pixels({list(PARK)}) + 1 : false;
    }}"""
    return page.wait_for_function(count, polling=500).json_value() - 1


def test_the_citys_own_vector_base_map_is_served_and_drawn(serve_app, city_db, page, monkeypatch, tmp_path):
    # Without a base map file: the land is drawn from the city's boundaries, and no park is on the map.
    base = serve_app(city_db)
    page.goto(base + "/?unit=440304&layers=base", wait_until="networkidle")
    assert park_pixels_once_the_land_is_drawn(page) == 0
    # With one: its tiles come from our server, and its park is drawn where the file has it. (The first page is left
    # first: signing in to the second server ends the account's session on the first, whose polls would be refused.)
    page.goto("about:blank")
    monkeypatch.setenv("CITYTWIN_BASEMAP_PMTILES", str(build_pmtiles(tmp_path / "city.pmtiles")))
    base = serve_app(city_db)
    answers = []
    page.on("response", lambda r: answers.append((r.url, r.status)) if "/basemap/" in r.url else None)
    page.goto(base + "/?unit=440304&layers=base", wait_until="networkidle")
    if not answers:
        page.wait_for_event("response", predicate=lambda r: "/basemap/" in r.url, timeout=60_000)
    page.wait_for_function(f"""() => ({COUNT_PIXELS})({list(PARK)}) > 1000""", polling=500)
    assert answers and all(url.startswith(base + "/basemap/") and status == 200 for url, status in answers)
    legend = page.locator(".legend-block[data-layer=base]").inner_text()
    assert "the city's base map" in legend and "parks" in legend
    assert page.external_requests == []
    assert page.console_errors == []
