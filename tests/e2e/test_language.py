"""The language switch in real headless Chromium against a real server: EN | 中文 changes the labels of the map page
and of the wall, the choice survives a drill-down click and a breadcrumb link, and the Chinese wall fits
1920×1080 and 3840×2160 with no scrollbar, no text overflowing its box, no missing glyph, nothing fetched from
outside and no console error."""
from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import click_unit_on_map

from dashboard.components.wall_playlist import PLAYLIST, lead_indicator, topic_indicators
from dashboard.i18n import state_label, t, topic_title, unit_name
from dashboard.services import Services
from layers.store import Store
from metrics.registry import INDICATORS, TOPICS
from tests.e2e.fonts import fonts_of

pytestmark = pytest.mark.browser

FUTIAN = "440304"
PAGES = ("map", "hotspots", "catalogue", "wall")
# Wall elements whose text must fit the box the layout gives it (no clipping, no ellipsis).
FITTED = [".wall-city", ".wall-brand-sub", ".wall-fresh-label", ".wall-kicker", ".wall-topic-title", ".wall-topic-next",
          ".wall-card-head", ".wall-card-name", ".wall-card-figure", ".wall-card-foot", ".wall-card-tag",
          ".wall-card-steps", ".wall-map-kicker", ".wall-map-indicator", ".wall-legend-row", ".wall-h3",
          ".wall-rank-name", ".wall-score-state", ".wall-score-note", ".wall-cost-name", ".wall-tile-label",
          ".wall-tile-value", ".wall-tile-note", ".wall-tick-summary"]
OVERFLOWING = """(selectors) => {
    const out = [];
    for (const selector of selectors) {
        for (const el of document.querySelectorAll(selector)) {
            // Across: any clipping (an ellipsis). Down: a clipped line (a line-clamped title's third line); the
            // glyphs' own overhang of a couple of pixels beyond the line box (in both languages) is no overflow.
            if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight * 1.25 + 1)
                out.push(selector + ' "' + el.innerText.slice(0, 40) + '" '
                         + JSON.stringify([el.scrollWidth, el.clientWidth, el.scrollHeight, el.clientHeight]));
        }
    }
    return out;
}"""
OUTSIDE_SCREEN = """() => {
    const w = innerWidth, h = innerHeight, out = [];
    for (const el of document.querySelectorAll('.wall-screen *')) {
        if (el.closest('.wall-tick-window')) continue;  // the ticker's track scrolls inside its clipped window
        const r = el.getBoundingClientRect();
        if (r.width && r.height && (r.left < -0.5 || r.top < -0.5 || r.right > w + 0.5 || r.bottom > h + 0.5))
            out.push(el.className);
    }
    return out;
}"""


@pytest.fixture(scope="module")
def services(city_db):
    return Services(Store(city_db))


def _wait_for_unit(page, code: str):
    page.wait_for_function(f"document.querySelector('#unit-title')?.dataset.unit === '{code}'")


def _labels(page) -> dict:
    """The words the switch must change: top-bar page links, topic titles, KPI card names, state words."""
    return {
        "pages": [page.locator(f".page-link.page-{p}").inner_text() for p in PAGES],
        "topics": page.locator("#kpi-panel h3.topic").evaluate_all("hs => hs.map(h => h.textContent)"),
        "on_time": page.locator(".kpi-card").filter(has=page.locator("[data-indicator='on_time_rate']"))
                       .locator(".kpi-name").inner_text(),
        "states": page.locator("#kpi-panel .kpi-state").all_inner_texts(),
        "html": page.evaluate("document.documentElement.lang"),
    }


def test_switch_changes_the_map_page_and_survives_drilling_down(serve_app, city_db, services, page):
    base = serve_app(city_db)
    page.goto(base + "/?indicator=on_time_rate&window=7d", wait_until="networkidle")
    page.wait_for_selector("canvas")
    english = _labels(page)
    assert english["pages"] == [t(f"page.{p}", "en") for p in PAGES]
    assert english["on_time"] == INDICATORS["on_time_rate"].name
    assert english["topics"][0] == TOPICS["requests"][0]
    assert english["html"] == "en"
    city = services.unit_view(None, "on_time_rate", "7d")
    assert page.locator("#unit-title").inner_text() == city.name

    # EN | 中文: the same view, in Chinese.
    page.locator(".lang-link.lang-zh").click()
    page.wait_for_url(re.compile(r"lang=zh"))
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    page.wait_for_function("document.querySelector('.page-link.page-map')?.innerText === '地图'")
    chinese = _labels(page)
    assert chinese["pages"] == [t(f"page.{p}", "zh") for p in PAGES]
    assert chinese["on_time"] == INDICATORS["on_time_rate"].name_zh
    assert chinese["topics"][0] == TOPICS["requests"][1]
    states = {s: state_label(s, "zh") for s in ("good", "watch", "warning", "critical", "neutral", "no_data")}
    assert all(any(text.startswith(word) for word in states.values()) for text in chinese["states"])
    assert page.locator("#unit-title").inner_text() == city.name_zh
    assert "indicator=on_time_rate" in page.url and "window=7d" in page.url  # the rest of the view is kept
    # Only one language at a time: no English page link, indicator or state word is left.
    panel = page.locator("#kpi-panel").inner_text()
    assert INDICATORS["on_time_rate"].name not in panel and "Good" not in panel and "Watch" not in panel

    # A click on Futian on the map drills down, in Chinese.
    futian = next(f for f in city.children_geojson["features"] if f["properties"]["code"] == FUTIAN)
    click_unit_on_map(page, city, FUTIAN)
    _wait_for_unit(page, FUTIAN)
    assert "lang=zh" in page.url
    assert page.locator("#unit-title").inner_text() == unit_name(futian["properties"], "zh") == "福田区"
    assert page.locator(".page-link.page-map").inner_text() == "地图"
    # … and a row of the ranking one level further, still in Chinese.
    street = page.locator(".rank-row").first
    street.click()
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.level === 'street'")
    assert "lang=zh" in page.url
    assert re.search(r"[\u4e00-\u9fff]", page.locator("#unit-title").inner_text())
    # The breadcrumb back to the city keeps the language.
    page.locator("#breadcrumb a", has_text=city.name_zh).click()
    _wait_for_unit(page, city.code)
    assert "lang=zh" in page.url and page.locator(".page-link.page-map").inner_text() == "地图"
    # Every internal link the page draws carries the language.
    hrefs = page.locator("a[href^='/']:not(.lang-en)").evaluate_all("ls => ls.map(a => a.getAttribute('href'))")
    assert len(hrefs) > 10 and [h for h in hrefs if "lang=zh" not in h] == []
    assert "lang=" not in page.locator(".lang-link.lang-en").get_attribute("href")  # … but the way back to English
    # The top bar's pages open in Chinese too.
    page.locator(".page-link.page-catalogue").click()
    page.wait_for_selector("#catalogue-title")
    assert page.locator("#catalogue-title").inner_text().startswith("指标目录")
    # And back to English.
    page.locator(".lang-link.lang-en").click()
    page.wait_for_url(re.compile(r"/catalogue\?(?!.*lang=)"))
    # The catalogue draws all its indicators: on a busy machine that takes a while.
    page.wait_for_function("document.querySelector('#catalogue-title')?.innerText.startsWith('Indicator')",
                           timeout=60_000)
    assert "lang=" not in page.url and page.evaluate("document.documentElement.lang") == "en"
    assert page.external_requests == []
    assert page.console_errors == []


def test_switch_changes_the_wall(serve_app, city_db, services, page):
    base = serve_app(city_db)
    page.goto(base + "/wall?rotate=0&topic=sensors", wait_until="networkidle")
    page.wait_for_selector("canvas")
    kpis = services.unit_view(None, "on_time_rate", "7d").kpis
    lead = lead_indicator("sensors", kpis)

    def words():
        return {"title": page.locator(".wall-topic-title").inner_text(),
                "cards": page.locator(".wall-card-name").all_inner_texts(),
                "tiles": page.locator(".wall-tile-label").all_inner_texts(),
                "states": page.locator(".wall-card-state").all_inner_texts(),
                "map": page.locator(".wall-map-indicator").inner_text(),
                "ticker": page.locator(".wall-tick-label").inner_text()}

    english = words()
    assert english["title"] == topic_title("sensors", "en")
    assert english["cards"] == [i.name for i in topic_indicators("sensors")]
    assert english["tiles"] == [t(f"wall.tile.{k}", "en") for k in ("alarms", "red_cards", "open", "hotspots")]
    assert set(english["states"]) <= {state_label(s, "en") for s in ("good", "watch", "warning", "critical",
                                                                      "neutral", "no_data")}
    page.locator(".lang-link.lang-zh").click()
    page.wait_for_url(re.compile(r"/wall\?.*lang=zh"))
    page.wait_for_function("document.querySelector('.wall-topic-title')?.innerText === '物联感知'")
    assert "topic=sensors" in page.url and "rotate=0" in page.url  # the wall's own settings are kept
    chinese = words()
    assert chinese["title"] == TOPICS["sensors"][1]
    assert chinese["cards"] == [i.name_zh for i in topic_indicators("sensors")]
    assert chinese["tiles"] == [t(f"wall.tile.{k}", "zh") for k in ("alarms", "red_cards", "open", "hotspots")]
    assert set(chinese["states"]) <= {state_label(s, "zh") for s in ("good", "watch", "warning", "critical",
                                                                     "neutral", "no_data")}
    assert chinese["map"].startswith(lead.name_zh)
    assert chinese["ticker"] == "在途告警"
    assert re.search(r"\d+(分钟|小时|天)", page.locator("#wall-age").inner_text()) or \
        "刚刚" in page.locator("#wall-age").inner_text()
    # The kiosk link keeps the language.
    assert "lang=zh" in page.locator(".wall-kiosk-link").get_attribute("href")
    assert page.external_requests == []
    assert page.console_errors == []


@pytest.mark.parametrize("width,height", [(1920, 1080), (3840, 2160)])
def test_the_chinese_wall_fits_and_has_its_glyphs(serve_app, city_db, browser, width, height):
    base = serve_app(city_db)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    outside, errors = [], []
    page.on("request", lambda r: outside.append(r.url) if not re.match(r"(https?|wss?)://(127\.0\.0\.1|localhost)",
                                                                          r.url) and "://" in r.url
            and not r.url.startswith(("data:", "blob:")) else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        # Every topic of the playlist (their cards and names differ), pinned one after the other.
        topics = PLAYLIST if width == 1920 else PLAYLIST[:3]
        for topic in topics:
            page.goto(base + f"/wall?kiosk=1&lang=zh&rotate=0&topic={topic}", wait_until="networkidle")
            page.wait_for_selector("canvas")
            page.wait_for_function("/\\d\\d:\\d\\d:\\d\\d/.test(document.querySelector('#wall-clock').innerText)")
            assert page.locator(".wall-topic-title").inner_text() == TOPICS[topic][1]
            assert page.evaluate("document.documentElement.lang") == "zh-CN"
            assert page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]") \
                == [width, height]
            assert page.evaluate(OUTSIDE_SCREEN) == [], topic
            assert page.evaluate(OVERFLOWING, FITTED) == [], topic
        # The Chinese text is drawn with the CJK font, not with boxes: the font is there and is the one used.
        assert page.evaluate("document.fonts.check('16px \"Noto Sans CJK SC\"', '城市运行指挥中心')")
        # Latin first in the stack, the Simplified Chinese cut for the Chinese characters (issue 15 item 5).
        assert set(fonts_of(page, ".wall-topic-title").values()) == {("Noto Sans CJK SC",)}
        assert outside == []
        assert errors == []
    finally:
        context.close()
