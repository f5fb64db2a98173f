"""Small things users notice (issue 15 item 13, the screens' part)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from layers.store import Store

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang,words", [("en", "has no unit"), ("zh", "没有编号为")])
def test_an_unknown_unit_says_so_instead_of_silently_showing_the_city(serve_app, city_db, page, lang, words):
    base = serve_app(city_db)
    page.goto(f"{base}/?unit=999999&lang={lang}", wait_until="networkidle")
    notice = page.locator("#unit-missing")
    notice.wait_for(timeout=60_000)
    assert words in notice.inner_text() and "999999" in notice.inner_text()
    # A known unit has no such notice.
    page.goto(f"{base}/?unit=440304&lang={lang}", wait_until="networkidle")
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.unit === '440304'", timeout=60_000)
    assert page.locator("#unit-missing").count() == 0


def test_ranks_and_times_mean_one_thing_each(serve_app, city_db, page):
    """Issue 15 item 10: the ranking lists the worst first but numbers by rank with #1 the best (as the KPI cards'
    "#1 of 8"); the top bar's time is the data's on the map pages and the clock's on the order pages, and says so."""
    base = serve_app(city_db)
    page.goto(f"{base}/?indicator=on_time_rate", wait_until="networkidle")
    page.wait_for_selector(".rank-row")
    positions = [int(p) for p in page.locator(".rank-pos").all_inner_texts()]
    values = [float(v.replace(",", "")) for v in page.locator(".rank-value").all_inner_texts()]
    assert values == sorted(values)  # on-time completion: the lowest (worst) first
    assert positions[0] == len(positions) and positions[-1] == 1  # … and the best is #1
    assert "#1 is best" in page.locator("#ranking .topic").text_content()  # (shown upper-cased)
    assert page.locator("#as-of").get_attribute("data-time") == "as_of"
    assert "data as of" in page.locator("#as-of").inner_text()
    page.goto(f"{base}/orders", wait_until="networkidle")
    page.wait_for_selector("#as-of")
    assert page.locator("#as-of").get_attribute("data-time") == "now"
    assert "time now" in page.locator("#as-of").inner_text()


# Where the tail of a figure's comma is drawn (its baseline plus the comma's descent in the figure's font), and the
# bottom of the nearest ancestor that cuts what is drawn below it: "28,048" read "28.048" when the tail was cut.
COMMA_TAILS_CUT = r"""() => {
    const out = [], ctx = document.createElement('canvas').getContext('2d');
    for (const value of document.querySelectorAll('.wall-card-value, .wall-tile-value')) {
        if (!/[,.]/.test(value.innerText)) continue;
        let clip = value.parentElement;
        while (clip && getComputedStyle(clip).overflowY === 'visible') clip = clip.parentElement;
        const mark = document.createElement('span');
        mark.style.cssText = 'display: inline-block; width: 0; height: 0; vertical-align: baseline';
        value.appendChild(mark);
        const baseline = mark.getBoundingClientRect().bottom;
        mark.remove();
        const style = getComputedStyle(value);
        ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        const tail = baseline + ctx.measureText(',').actualBoundingBoxDescent;
        if (clip && tail + 1 > clip.getBoundingClientRect().bottom)
            out.push(`${value.innerText}: tail at ${tail.toFixed(1)}, cut at ${clip.getBoundingClientRect().bottom.toFixed(1)}`);
    }
    return out;
}"""


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_wall_without_kiosk_draws_its_figures_whole(serve_app, city_db, page, lang):
    """Issue 15 item 13: in a browser window (the wall with its top bar, not in kiosk mode) the topic's title takes two
    lines and the cards get short; their figures were cut at the baseline, and a comma's tail with them."""
    base = serve_app(city_db)
    for width, height in ((1536, 864), (1920, 1080)):  # a 1920×1080 laptop at 125 %, and a full-HD screen
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{base}/wall?rotate=0&lang={lang}", wait_until="networkidle")
        page.wait_for_function("() => document.querySelectorAll('.wall-card-value').length > 3 "
                               "&& [...document.querySelectorAll('.wall-card-value')].some(v => /,/.test(v.innerText))")
        page.evaluate("() => document.fonts.ready.then(() => true)")
        assert page.evaluate(COMMA_TAILS_CUT) == [], f"{width}×{height}"


def test_typing_right_after_opening_the_picker_searches_it(serve_app, city_db, page):
    """Issue 15 item 13: the indicator picker, opened on its chosen indicator, put the focus on that option, and what
    was typed next went nowhere until the search box inside was clicked."""
    base = serve_app(city_db)
    page.goto(f"{base}/?indicator=on_time_rate", wait_until="domcontentloaded")
    picker = page.locator("#indicator-select")
    picker.wait_for(timeout=300_000)  # the picker's script comes late on a loaded machine
    picker.click()
    search = page.locator(".dash-dropdown-content input.dash-dropdown-search")
    search.wait_for()
    # Dash moves the focus into the open list (to the chosen option) a moment after it opens: type once it has.
    page.wait_for_function("() => !!document.activeElement.closest('.dash-dropdown-content')")
    page.keyboard.type("PM2.5")
    expect(search).to_have_value("PM2.5")
    options = page.locator(".dash-dropdown-content .dash-options-list-option-text")
    expect(options.first).to_contain_text("PM2.5")
    assert all("PM2.5" in text for text in options.all_inner_texts())
    page.keyboard.press("Escape")


@pytest.mark.parametrize("lang,heading,back", [("en", "404 · Not found", "Back to the map"),
                                               ("zh", "404 · 未找到", "返回地图")])
def test_an_unknown_page_is_the_styled_404_in_its_language(serve_app, city_db, page, lang, heading, back):
    """Issue 15 item 13: the 404 page was the server's bare white one; it is the sign-in page's card, dark as the rest,
    with the way back to the map."""
    base = serve_app(city_db)
    answer = page.goto(f"{base}/no-such-page?lang={lang}", wait_until="networkidle")
    assert answer.status == 404
    card = page.locator("#error-page")
    expect(card.locator("h1")).to_have_text(heading)
    assert page.evaluate("document.documentElement.lang") == ("zh-CN" if lang == "zh" else "en")
    assert "/no-such-page" in page.locator("#error-reason").inner_text()
    expect(card.locator("a[href='/']")).to_have_text(back)
    # Styled by the theme: the dark page and a panel-coloured card (a bare page is white with no background).
    colours = page.evaluate("""() => [getComputedStyle(document.body).backgroundColor,
                                      getComputedStyle(document.querySelector('#error-page')).backgroundColor,
                                      getComputedStyle(document.querySelector('#error-page')).color]""")
    rgb = [tuple(int(v) for v in re.findall(r"\d+", colour)[:3]) for colour in colours]
    assert sum(rgb[0]) < 150 and sum(rgb[1]) < 200 and colours[1] not in ("rgba(0, 0, 0, 0)", "transparent")
    assert sum(rgb[2]) > 450  # light text on it
    assert page.external_requests == []
    # The one error is the page's own status; its stylesheets and favicon loaded.
    assert [e for e in page.console_errors if "/no-such-page" not in e] == []


@pytest.mark.parametrize("lang,built", [("en", "built"), ("zh", "建成")])
def test_a_building_without_a_year_says_so_with_a_dash(serve_app, own_city_db, page, lang, built):
    """Issue 15 item 13: an imported building without its year of construction (or residents) read "built <NA>"."""
    store = Store(own_city_db)
    with store.engine.begin() as conn:
        building = conn.execute(text("SELECT building_id FROM buildings ORDER BY building_id LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE buildings SET year_built = NULL, residents = NULL WHERE building_id = :b"),
                     {"b": building})
    store.engine.dispose()
    base = serve_app(own_city_db)
    page.goto(f"{base}/?building={building}&lang={lang}", wait_until="domcontentloaded")
    card = page.locator(f"#building-card[data-building='{building}']")
    card.wait_for(timeout=300_000)
    facts = dict(tuple(fact.locator("span").all_inner_texts()) for fact in card.locator(".fact").all())
    assert facts[built] == "—"
    assert "NA" not in card.inner_text() and "nan" not in card.inner_text().lower()
