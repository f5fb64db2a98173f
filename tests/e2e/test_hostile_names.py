"""Names come from files users import: they are shown as text everywhere, never run (map tooltip included)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest

from tests.e2e.conftest import wait_for_frames
from shapely.geometry import box

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = '<img src=x onerror="window.__pwned=1">'


def test_imported_names_are_shown_as_text(serve_app, page, tmp_path):
    districts = tmp_path / "districts.geojson"
    gpd.GeoDataFrame({"code": ["D1", "D2"], "name": [HOSTILE, "<script>window.__pwned=2</script>"]},
                     geometry=[box(8.50, 47.36, 8.55, 47.39), box(8.55, 47.36, 8.60, 47.39)],
                     crs="EPSG:4326").to_file(districts)
    url = f"sqlite:///{tmp_path / 'city.sqlite'}"
    done = subprocess.run([sys.executable, "-m", "layers.importer", "--boundaries", f"district={districts}",
                           "--city-name", HOSTILE, "--database-url", url], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    base = serve_app(url)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(base + "/", wait_until="networkidle")
    page.wait_for_selector("canvas")
    # The names read back as the literal text that was imported …
    assert HOSTILE in page.locator(".rank-rows").inner_text()
    assert HOSTILE in page.locator("#unit-title").inner_text()
    # … and hovering a district (the map's HTML tooltip) runs nothing.
    canvas = page.locator("canvas").first.bounding_box()
    for x in (0.3, 0.5, 0.7):
        page.mouse.move(canvas["x"] + canvas["width"] * x, canvas["y"] + canvas["height"] * 0.5)
        wait_for_frames(page)
    assert page.locator("img[src='x']").count() == 0
    assert page.evaluate("window.__pwned === undefined")
    # In Chinese too: an imported city without Chinese names shows its own, as text.
    page.goto(base + "/?lang=zh", wait_until="networkidle")
    page.wait_for_selector("canvas")
    assert HOSTILE in page.locator(".rank-rows").inner_text()
    assert HOSTILE in page.locator("#unit-title").inner_text()
    for path in ("/catalogue", "/hotspots", "/wall?kiosk=1", "/catalogue?lang=zh", "/hotspots?lang=zh",
                 "/wall?kiosk=1&lang=zh", "/wall?lang=zh"):
        page.goto(base + path, wait_until="networkidle")
        page.wait_for_selector(".topbar, .wall-screen")
        wait_for_frames(page, on_the_map=False)
        assert page.locator("img[src='x']").count() == 0, path
        assert page.evaluate("window.__pwned === undefined"), path
    assert dialogs == []
    assert page.external_requests == []
