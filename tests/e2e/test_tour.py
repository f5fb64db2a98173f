"""Tour mode in real headless Chromium against a real server: a tour started from the URL or the Tour menu moves
through its steps by itself (caption, step counter and URL change, across pages), can be stopped, and a tour that
cannot run says why."""
from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import wait_for_frames

pytestmark = pytest.mark.browser

# Long enough that a click on Next or Back lands within the step it was meant for on a loaded 2-core CI machine
# (at 2 s the tour once moved on by itself between the test seeing step 1 and its click on Next).
SECONDS = 5
STEPS = [
    {"path": "/?unit=440304&indicator=on_time_rate&window=7d", "seconds": SECONDS,
     "caption": {"en": "Futian's streets", "zh": "福田区各街道"}},
    {"path": "/hotspots?window=7d", "seconds": SECONDS,
     "caption": {"en": "Recurring hotspots <b>as text</b>", "zh": "高频问题热点"}},
    {"path": "/?unit=440303&indicator=overdue_orders&window=7d", "seconds": SECONDS,
     "caption": {"en": "Luohu by overdue orders", "zh": "罗湖区超期工单"}},
]
# What the screen shows, recorded at every change of the page (the tour moves on by itself, faster than a test can
# look): the step counter, the caption, the URL, the unit on the map and whether the hotspots page is shown.
RECORD_SCREEN = """
window.__screens = [];
new MutationObserver(() => {
  const overlay = document.querySelector('#tour-overlay');
  const screen = {
    count: overlay && !overlay.classList.contains('hidden') ? document.querySelector('#tour-count')?.textContent
                                                           || null : null,
    caption: document.querySelector('#tour-caption')?.textContent || null,
    url: location.pathname + location.search,
    unit: document.querySelector('#unit-title')?.dataset.unit || null,
    hotspots: !!document.querySelector('#hotspots-title'),
  };
  const last = window.__screens[window.__screens.length - 1];
  if (!last || JSON.stringify(last) !== JSON.stringify(screen)) window.__screens.push(screen);
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""


@pytest.fixture
def tours_folder(tmp_path, monkeypatch):
    folder = tmp_path / "tours"
    folder.mkdir()
    (folder / "demo.json").write_text(json.dumps({"title": {"en": "Test tour", "zh": "测试导览"}, "steps": STEPS}),
                                      encoding="utf-8")
    (folder / "broken.json").write_text(json.dumps({"title": {"en": "Broken", "zh": "坏"}, "steps": [
        {"path": "/nowhere", "seconds": 2, "caption": {"en": "x", "zh": "x"}}]}), encoding="utf-8")
    (folder / "strange.json").write_text(json.dumps({"title": {"en": "Strange", "zh": "怪"}, "steps": [
        {"path": "/?unit=999999", "seconds": 2, "caption": {"en": "x", "zh": "x"}}]}), encoding="utf-8")
    monkeypatch.setenv("CITYTWIN_TOURS", str(folder))  # the server started by serve_app inherits it
    return folder


def caption(page) -> str:
    return page.locator("#tour-caption").inner_text()


def wait_for_screen(page, condition: str, timeout: float = 120_000) -> list[dict]:
    """Wait until a recorded screen ``s`` meets ``condition`` (JavaScript); the screens recorded so far."""
    page.wait_for_function(f"(window.__screens || []).some(s => {condition})", timeout=timeout)
    return page.evaluate("window.__screens")


def wait_for_step(page, number: int, of: int = 3, timeout: float = 120_000) -> None:
    page.wait_for_function(f"document.querySelector('#tour-count')?.textContent === '{number} / {of}'",
                           timeout=timeout)


def shown(screens: list[dict], **wanted) -> list[int]:
    """The indexes of the recorded screens that show what is ``wanted``."""
    return [i for i, s in enumerate(screens) if all(s.get(k) == v for k, v in wanted.items())]


def test_tour_from_the_url_advances_by_itself_and_stops(serve_app, city_db, tours_folder, page):
    base = serve_app(city_db)
    page.add_init_script(RECORD_SCREEN)
    page.goto(base + "/catalogue?tour=demo", wait_until="domcontentloaded")

    # By itself (nothing clicked): step 1 on Futian's view, then step 2 on the hotspots page.
    screens = wait_for_screen(page, "s.count === '2 / 3' && s.hotspots")
    first = shown(screens, count="1 / 3", caption="Futian's streets", unit="440304",
                  url="/?unit=440304&indicator=on_time_rate&window=7d")
    second = shown(screens, count="2 / 3", caption="Recurring hotspots <b>as text</b>", hotspots=True,
                   url="/hotspots?window=7d")
    assert first and second and first[0] < second[0], screens
    assert page.locator("#tour-overlay b").count() == 0  # a caption is text, never HTML
    assert "Test tour" in page.locator("#tour-overlay .tour-title").text_content()

    # Stop: the overlay goes, the user keeps the view, and nothing moves any more.
    page.locator("#tour-stop").click()
    page.wait_for_selector("#tour-overlay.hidden", state="attached")
    url = page.url
    # Stopped: the tour's state is gone from the tab, so no step can come (its timer is driven by that state).
    page.wait_for_function("() => { const s = sessionStorage.getItem('tour-state'); return s === null || "
                           "s === 'null'; }")
    wait_for_frames(page, on_the_map=False)
    assert page.url == url and "/hotspots" in url
    assert not page.locator("#tour-overlay").is_visible()
    assert page.external_requests == []
    assert page.console_errors == []


def test_tour_from_the_menu_runs_to_its_end_and_gives_control_back(serve_app, city_db, tours_folder, page):
    base = serve_app(city_db)
    page.add_init_script(RECORD_SCREEN)
    page.goto(base + "/?window=7d", wait_until="networkidle")
    page.locator("#tour-menu summary").click()
    # The menu lists the valid tours, and says what is wrong with the others.
    assert page.locator(".tour-start").count() == 2
    assert "broken.json: step 1: unknown page '/nowhere'" in page.locator("#tour-menu").inner_text()
    page.locator(".tour-start", has_text="Test tour").click()
    wait_for_step(page, 1)
    # Next and back by hand.
    page.locator("#tour-next").click()
    wait_for_screen(page, "s.count === '2 / 3' && s.hotspots")
    page.locator("#tour-previous").click()
    wait_for_step(page, 1)

    # Then on by itself to the last step, after whose time the tour ends on the last view.
    screens = wait_for_screen(page, "s.count === null && s.unit === '440303'")
    last = shown(screens, count="3 / 3", caption="Luohu by overdue orders", unit="440303",
                 url="/?unit=440303&indicator=overdue_orders&window=7d")
    assert last, screens
    page.wait_for_selector("#tour-overlay.hidden", state="attached")
    assert page.url.endswith("/?unit=440303&indicator=overdue_orders&window=7d")
    assert page.external_requests == []
    assert page.console_errors == []


def test_tour_keeps_the_presenters_language(serve_app, city_db, tours_folder, page):
    base = serve_app(city_db)
    page.add_init_script(RECORD_SCREEN)
    page.goto(base + "/?tour=demo&lang=zh", wait_until="domcontentloaded")
    screens = wait_for_screen(page, "s.count === '2 / 3' && s.hotspots")
    assert shown(screens, count="1 / 3", caption="福田区各街道",
                 url="/?unit=440304&indicator=on_time_rate&window=7d&lang=zh"), screens
    assert shown(screens, count="2 / 3", caption="高频问题热点", url="/hotspots?window=7d&lang=zh"), screens
    # A reload in the middle of the tour shows its caption again (the tab keeps the tour; the overlay is drawn
    # hidden and follows the kept state), whichever step it has reached by then.
    page.reload(wait_until="domcontentloaded")
    screens = wait_for_screen(page, "s.count === '2 / 3' || s.count === '3 / 3'")
    assert any(s["caption"] in ("高频问题热点", "罗湖区超期工单") for s in screens if s["count"]), screens
    # Stop, whether or not the last step has ended by now (a hidden button is clicked all the same).
    page.evaluate("document.querySelector('#tour-stop').click()")
    page.wait_for_selector("#tour-overlay.hidden", state="attached")
    assert page.console_errors == []


def test_a_tour_that_cannot_run_says_why(serve_app, city_db, tours_folder, page):
    base = serve_app(city_db)
    page.goto(base + "/?tour=nosuch", wait_until="networkidle")
    page.wait_for_selector("#tour-overlay.error")
    assert "tour 'nosuch': no file" in page.locator("#tour-overlay").inner_text()
    assert "demo" in page.locator("#tour-overlay").inner_text()  # the tours there are
    page.goto(base + "/?tour=strange", wait_until="networkidle")
    page.wait_for_selector("#tour-overlay.error")
    assert "step 1: unknown unit '999999'" in page.locator("#tour-overlay").inner_text()
    page.goto(base + "/?tour=..%2Fsecrets", wait_until="networkidle")
    page.wait_for_selector("#tour-overlay.error")
    assert "a tour name has only letters" in page.locator("#tour-overlay").inner_text()
    page.locator("#tour-stop").click()
    page.wait_for_selector("#tour-overlay.hidden", state="attached")
    assert page.console_errors == []


def test_the_shipped_shenzhen_tour_runs(serve_app, city_db, page):
    base = serve_app(city_db)  # the tours shipped with the app (no CITYTWIN_TOURS)
    page.goto(base + "/?tour=shenzhen", wait_until="networkidle")
    wait_for_step(page, 1, of=5)
    assert "Shenzhen" in page.locator("#tour-overlay .tour-title").text_content()
    page.locator("#tour-next").click()
    wait_for_step(page, 2, of=5)
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.unit === '440304'")
    for number in (3, 4, 5):
        page.locator("#tour-next").click()
        wait_for_step(page, number, of=5)
    page.wait_for_url(re.compile(r"/wall\?kiosk=1"))
    page.wait_for_selector(".wall-screen.kiosk")
    page.locator("#tour-stop").click()
    page.wait_for_selector("#tour-overlay.hidden", state="attached")
    assert page.external_requests == []
    assert page.console_errors == []
