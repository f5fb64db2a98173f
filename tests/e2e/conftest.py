"""Fixtures shared by the browser tests: one test-scale sample city per session."""
from __future__ import annotations

import uuid

import pytest

from sample_data.__main__ import build

try:
    from playwright.sync_api import expect
except ImportError:  # the browser tests are not run without Playwright
    expect = None
else:
    # An expect() retries its condition until it holds; Playwright gives up after 5 s, which a page on a loaded
    # machine may need more than (the pages' own waits get two minutes, see patient_page).
    expect.set_options(timeout=120_000)


@pytest.fixture(scope="session")
def city_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("e2e") / "citytwin.sqlite"
    url = f"sqlite:///{path}"
    build("test", url, progress=False)
    return url


@pytest.fixture
def own_city_db(city_db, tmp_path):
    """A copy of the shared test city for a test that writes to it: an action moves the orders' time to now, and
    every later test on the shared city would see its windows end there (no orders in 7 days, no hotspots)."""
    import shutil

    source = city_db.removeprefix("sqlite:///")
    target = tmp_path / "own-city.sqlite"
    shutil.copy(source, target)
    return f"sqlite:///{target}"


# deck.gl draws on animation frames after its data arrive: a test that looks at the map waits for frames to have been
# drawn since the canvas exists (a condition that holds as soon as the browser has drawn, on an idle machine or a
# busy one), never for a fixed time. Playwright calls the condition once per animation frame and takes any promise
# for a truthy answer (it does not wait for it), so the frames are counted by the calls, per wait (``token``), and
# the count starts again when the page puts a new canvas in place.
FRAMES_DRAWN = """([frames, token, onTheMap]) => {
    const canvas = onTheMap ? document.querySelector('canvas') : document.documentElement;
    const counts = window.__framesDrawn || (window.__framesDrawn = {});
    if (onTheMap && (!canvas || !canvas.width || !canvas.height)) { delete counts[token]; return false; }
    const seen = counts[token];
    if (!seen || seen.canvas !== canvas) { counts[token] = {canvas, frames: 0}; return false; }
    return ++seen.frames >= frames;
}"""


def wait_for_frames(page, frames: int = 3, timeout: float = 120_000, *, on_the_map: bool = True) -> None:
    """Wait until the map's canvas exists and ``frames`` animation frames have been drawn since (``on_the_map=False``:
    ``frames`` frames of a page that may have no map)."""
    page.wait_for_function(FRAMES_DRAWN, arg=[frames, uuid.uuid4().hex, on_the_map], polling="raf",
                           timeout=timeout)


def wait_for_ticks(page, selector: str, ticks: int = 2, timeout: float = 60_000) -> None:
    """Wait until the text of ``selector`` (a clock) has changed ``ticks`` times: time has passed on the page."""
    for _ in range(ticks):
        before = page.locator(selector).inner_text()
        page.wait_for_function("([s, t]) => document.querySelector(s)?.innerText !== t", arg=[selector, before],
                               timeout=timeout)


@pytest.fixture(autouse=True)
def patient_page(request):
    """On a loaded machine (two cores shared by many processes, or a CPU hog on both) a page can take more than
    Playwright's default 30 s to settle: the browser tests wait for their conditions up to two minutes."""
    if "page" in request.fixturenames:
        page = request.getfixturevalue("page")
        page.set_default_timeout(120_000)
        page.set_default_navigation_timeout(120_000)
    yield


def click_unit_on_map(page, view, code: str) -> None:
    """Click the child ``code`` of the unit shown (``view``: its dashboard.services.UnitView) where the map page
    draws it: at its label point, projected with the camera the server fitted (dashboard.maps.deck.fit_view). As a
    hand does: hover first, let the map draw (deck.gl picks what is under the pointer as it moves), then click."""
    from dashboard.maps.deck import MAP_PAGE_INSETS, NOMINAL_MAP_SIZE, fit_view, project

    feature = next(f for f in view.children_geojson["features"] if f["properties"]["code"] == code)
    canvas = page.locator("canvas").first.bounding_box()
    camera = fit_view(view.bounds, NOMINAL_MAP_SIZE, **MAP_PAGE_INSETS)
    x, y = project(camera, *feature["properties"]["label_point"], (canvas["width"], canvas["height"]))
    page.mouse.move(canvas["x"] + x - 5, canvas["y"] + y - 5)
    wait_for_frames(page)
    page.mouse.click(canvas["x"] + x, canvas["y"] + y)
