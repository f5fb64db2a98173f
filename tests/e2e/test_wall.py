"""The wall page in real headless Chromium against a real server, at 1920×1080 and 3840×2160: it fits without
scrolling, scales as one picture, the clock ticks, the playlist rotates, the ticker counts the active alarms,
kiosk mode hides the top bar and the cursor, the data refresh without a reload, and nothing leaves the machine.
The render helpers are checked without a browser at the end."""
from __future__ import annotations

import datetime as dt
import json
import re
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from tests.e2e.conftest import wait_for_frames, wait_for_ticks

from dashboard.components.wall_map import NOMINAL_MAP_SIZE, paint, repaint
from dashboard.components.wall_playlist import PLAYLIST, lead_indicator, playlist_topic, topic_indicators
from dashboard.components.wall_ticker import MAX_ALARMS, MAX_HOTSPOTS, active_alarms, ticker, ticker_items
from dashboard.services import Services
from layers.specs import CITY_TIMEZONE
from layers.store import Store
from metrics.registry import INDICATORS, TOPICS
from metrics.spec import FRESHNESS_MINUTES, named_window

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
SIZES = [(1920, 1080), (3840, 2160)]
# Boxes that the grid sizes (not the text inside): on a 3840×2160 wall each must be exactly twice the 1920×1080 one.
SCALED = ["header.wall-header", "#wall-clock", ".wall-topic", "#wall-map-frame", ".wall-card >> nth=0",
          ".wall-card >> nth=-1", "#wall-ranking", ".wall-score-ring", ".wall-tile >> nth=3", "footer.wall-ticker",
          ".wall-seg >> nth=13"]
NO_OVERFLOW = """() => {
    const w = innerWidth, h = innerHeight, out = [];
    for (const el of document.querySelectorAll('.wall-screen *')) {
        if (el.closest('.wall-tick-window')) continue;  // the ticker's track scrolls inside its clipped window
        const r = el.getBoundingClientRect();
        if (r.width && r.height && (r.left < -0.5 || r.top < -0.5 || r.right > w + 0.5 || r.bottom > h + 0.5))
            out.push(el.tagName + '.' + el.className + ' ' + JSON.stringify([r.left, r.top, r.right, r.bottom]));
    }
    return out;
}"""


def _watch(page):
    """Record requests that leave the machine and console errors, like the ``page`` fixture does."""
    page.external_requests, page.console_errors = [], []

    def on_request(request):
        url = urlparse(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and (url.hostname or "") not in LOCAL_HOSTS:
            page.external_requests.append(request.url)

    page.on("request", on_request)
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.console_errors.append(f"uncaught: {e}"))
    return page


def _open(page, url: str):
    page.goto(url, wait_until="networkidle")
    page.wait_for_selector("canvas")
    page.wait_for_function("/\\d\\d:\\d\\d:\\d\\d/.test(document.querySelector('#wall-clock').innerText)")
    wait_for_frames(page)  # deck.gl draws on the next animation frames


@pytest.fixture(scope="module")
def expected(city_db):
    """What the wall must show, from the services the page uses (not computed by the test)."""
    services = Services(Store(city_db))
    view = services.unit_view(None, "overdue_orders", "7d")
    city = services.city()
    end = named_window("7d", view.as_of).end
    alarms = active_alarms(city["alarms"], city.hierarchy["district"], city.units["name"], end)
    return {"services": services, "view": view, "alarms": alarms, "hotspots": services.hotspots("7d")}


@pytest.mark.browser
def test_fits_and_scales_as_one_picture(serve_app, city_db, browser):
    base = serve_app(city_db)
    boxes = {}
    for width, height in SIZES:
        page = _watch(browser.new_page(viewport={"width": width, "height": height}))
        try:
            _open(page, base + "/wall?kiosk=1&rotate=0")
            scroll = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight,"
                                   " innerWidth, innerHeight]")
            assert scroll == [width, height, width, height]
            assert page.evaluate(NO_OVERFLOW) == []
            boxes[width] = {s: page.locator(s).bounding_box() for s in SCALED}
            boxes[width]["clock font"] = page.eval_on_selector("#wall-clock", "e => getComputedStyle(e).fontSize")
            # One map, as large as the layout says on a 1920×1080 wall (the camera is fitted for that size).
            assert page.locator("canvas").count() == 1
            if width == 1920:
                frame = boxes[width]["#wall-map-frame"]
                assert abs(frame["width"] - NOMINAL_MAP_SIZE[0]) < 2 and abs(frame["height"] - NOMINAL_MAP_SIZE[1]) < 2
            assert page.external_requests == []
            assert page.console_errors == []
        finally:
            page.close()
    for selector in SCALED:
        small, large = boxes[1920][selector], boxes[3840][selector]
        for key in ("x", "y", "width", "height"):
            assert large[key] == pytest.approx(2 * small[key], abs=1.5), (selector, key, small, large)
    assert float(boxes[3840]["clock font"][:-2]) == 2 * float(boxes[1920]["clock font"][:-2])


@pytest.mark.browser
def test_clock_ticks_in_city_time_and_freshness_is_judged(serve_app, city_db, expected, page):
    base = serve_app(city_db)
    _open(page, base + "/wall?kiosk=1&rotate=0")
    first = page.locator("#wall-clock").inner_text()
    assert re.fullmatch(r"\d\d:\d\d:\d\d", first)
    now = dt.datetime.now(ZoneInfo(CITY_TIMEZONE))
    shown = dt.datetime.combine(now.date(), dt.time.fromisoformat(first), now.tzinfo)
    assert abs((shown - now).total_seconds()) < 5 or abs((shown - now).total_seconds()) > 86_390  # around midnight
    page.wait_for_function(f"document.querySelector('#wall-clock').innerText !== '{first}'")
    assert now.strftime("%Y-%m-%d") in page.locator("#wall-date").inner_text()

    as_of = expected["view"].as_of
    assert page.locator("#wall-as-of").inner_text() == as_of.strftime("%Y-%m-%d %H:%M")
    age_hours = (pd.Timestamp.now(tz=CITY_TIMEZONE) - as_of) / pd.Timedelta(hours=1)
    state = FRESHNESS_MINUTES.state(age_hours * 60)  # the steps the map's badges judge with (metrics/spec.py)
    assert f"state-{state}" in page.locator("#wall-freshness").get_attribute("class")
    assert "ago" in page.locator("#wall-age").inner_text() or "just now" in page.locator("#wall-age").inner_text()
    # The clock costs the server nothing: it ticks in the browser. (The wall does ask for changed alerts every few
    # seconds, dashboard/components/refresh.py; that request is not the clock's.)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if "_dash-update-component" in r.url
            and "wall-clock" in (r.post_data or "") else None)
    wait_for_ticks(page, "#wall-clock", 2)  # two seconds ticked by on the wall, with no request
    assert posts == []
    assert page.external_requests == []
    assert page.console_errors == []


@pytest.mark.browser
def test_playlist_rotates_and_repaints_the_map_without_geometry(serve_app, city_db, expected, page):
    base = serve_app(city_db)
    rotations = []
    page.on("response", lambda r: rotations.append(r) if "_dash-update-component" in r.url
            and "wall-rotate" in (r.request.post_data or "") else None)
    page.goto(base + "/wall?kiosk=1&rotate=3", wait_until="domcontentloaded")
    title = page.locator(".wall-topic-title")
    current = title.get_attribute("data-topic")  # the first topic, unless the interval has already fired
    assert current in PLAYLIST[:2]
    topic = PLAYLIST[PLAYLIST.index(current) + 1]
    page.wait_for_function(f"document.querySelector('.wall-topic-title')?.dataset.topic === '{topic}'")
    assert TOPICS[topic][0] in title.inner_text()
    kpis = expected["services"].unit_view(None, "on_time_rate", "7d").kpis
    cards = topic_indicators(topic)
    assert page.locator(".wall-card").count() == len(cards)
    for indicator in cards:
        value = kpis.at[indicator.id, "value"]
        shown = page.locator(f".wall-card-value[data-indicator='{indicator.id}']").inner_text()
        assert shown == indicator.format_value(None if pd.isna(value) else float(value))
    lead = lead_indicator(topic, kpis)
    assert lead.name.partition(": ")[0] in page.locator(".wall-map-indicator").inner_text()
    assert page.locator(".wall-card.lead .wall-card-value").get_attribute("data-indicator") == lead.id
    assert page.locator(".wall-seg.current").evaluate("e => [...e.parentNode.children].indexOf(e)") == \
        PLAYLIST.index(topic)
    assert page.locator(".wall-rank-row").count() == 8

    # The rotation repaints the districts: colours and labels travel, their geometry never does.
    assert rotations
    for response in rotations:
        body = response.text()
        assert '"coordinates"' not in body and "geometry" not in body
    assert page.external_requests == []
    assert page.console_errors == []


@pytest.mark.browser
def test_a_pinned_topic_stays(serve_app, city_db, page):
    base = serve_app(city_db)
    _open(page, base + "/wall?kiosk=1&rotate=0&topic=sensors")
    wait_for_ticks(page, "#wall-clock", 2)  # the wall's timers have run
    assert page.locator(".wall-topic-title").get_attribute("data-topic") == "sensors"
    assert page.locator(".wall-seg.current").evaluate("e => [...e.parentNode.children].indexOf(e)") == \
        PLAYLIST.index("sensors")
    # Nonsense in the URL falls back to the defaults.
    _open(page, base + "/wall?kiosk=1&rotate=soon&topic=<b>x</b>&window=year")
    assert page.locator(".wall-topic-title").get_attribute("data-topic") == PLAYLIST[0]
    assert page.console_errors == []


@pytest.mark.browser
def test_ticker_counts_the_active_alarms_and_scrolls(serve_app, city_db, expected, page):
    base = serve_app(city_db)
    _open(page, base + "/wall?kiosk=1&rotate=0")
    view, alarms, hotspots = expected["view"], expected["alarms"], expected["hotspots"]
    active = int(view.kpis.at["active_alarms", "value"])
    assert active == len(alarms) > 0
    ticker_box = page.locator("#wall-ticker")
    assert page.locator(".wall-tick-count").get_attribute("data-active-alarms") == str(active)
    assert f"{active:,}" in ticker_box.inner_text()
    assert "active alarms" in ticker_box.inner_text().lower()
    # The track holds every item twice (a seamless loop).
    shown_alarms = min(MAX_ALARMS, active)
    assert page.locator(".wall-tick-item.warning, .wall-tick-item.critical").count() == 2 * shown_alarms
    red_districts = int((view.children["value"].fillna(0) > 0).sum())
    assert page.locator(".wall-tick-item.red_card").count() == 2 * red_districts
    assert page.locator(".wall-tick-item.hotspot").count() == 2 * min(MAX_HOTSPOTS, len(hotspots))
    first_alarm = alarms.iloc[0]
    assert first_alarm["message"] in ticker_box.inner_text()
    # It moves, by a CSS animation.
    track = page.locator(".wall-tick-track")
    assert track.evaluate("e => getComputedStyle(e).animationName") == "wall-scroll"
    before = track.evaluate("e => getComputedStyle(e).transform")
    page.wait_for_function("([e, b]) => getComputedStyle(e).transform !== b",
                           arg=[track.element_handle(), before])
    assert page.external_requests == []
    assert page.console_errors == []


@pytest.mark.browser
def test_kiosk_hides_the_top_bar_and_the_cursor(serve_app, city_db, page):
    base = serve_app(city_db)
    _open(page, base + "/wall?rotate=0")
    assert page.locator(".topbar").is_visible()
    assert page.locator(".page-link.current").inner_text().startswith("Wall")
    assert page.locator(".wall-card").first.evaluate("e => getComputedStyle(e).cursor") != "none"
    assert page.evaluate("document.documentElement.scrollHeight") == 1080  # with the top bar, still no scrolling
    assert page.evaluate(NO_OVERFLOW) == []
    page.locator(".wall-kiosk-link").click()
    page.wait_for_function("document.querySelector('#wall')?.classList.contains('kiosk')")
    assert page.locator(".topbar").count() == 0
    for selector in ("#wall", ".wall-card >> nth=0", "#wall-map-frame canvas", "#wall-ticker"):
        assert page.locator(selector).evaluate("e => getComputedStyle(e).cursor") == "none"
    assert page.console_errors == []


@pytest.mark.browser
def test_data_refresh_without_reloading_the_page(serve_app, city_db, expected, page):
    base = serve_app(city_db)
    _open(page, base + "/wall?kiosk=1&rotate=0&refresh=5")
    page.evaluate("window.__still_the_same_page = true")
    refreshed = []
    page.on("response", lambda r: refreshed.append(r) if "_dash-update-component" in r.url
            and "wall-refresh" in (r.request.post_data or "") else None)
    while len(refreshed) < 2:  # the interval fires after 5 s; both the status and the topic follow it
        page.wait_for_event("response", predicate=lambda r: "_dash-update-component" in r.url, timeout=60_000)
    assert len(refreshed) >= 2 and all(r.ok for r in refreshed)
    outputs = set().union(*(json.loads(r.text())["response"] for r in refreshed))
    assert {"wall-ticker", "wall-score", "wall-as-of-store", "wall-cards", "wall-map"} <= outputs
    assert page.evaluate("window.__still_the_same_page") is True
    assert page.locator(".wall-tick-count").get_attribute("data-active-alarms") == \
        str(int(expected["view"].kpis.at["active_alarms", "value"]))
    assert page.external_requests == []
    assert page.console_errors == []


# --- without a browser ------------------------------------------------------------------------------------------

def test_every_topic_has_cards_and_a_lead():
    assert len(PLAYLIST) == 14
    for topic in PLAYLIST:
        cards = topic_indicators(topic)
        assert 1 <= len(cards) <= 8
        headline = [i for i in cards if i.headline]
        assert headline == cards or len(cards) <= 6
        lead = lead_indicator(topic)
        assert lead in cards
        assert lead.thresholds is not None or all(i.thresholds is None for i in cards)
    assert playlist_topic(14) == PLAYLIST[0] and playlist_topic(1, "sensors") == PLAYLIST[0]


def test_critical_alarms_come_first_and_pulse():
    end = pd.Timestamp("2026-11-20 16:00", tz=CITY_TIMEZONE)
    alarms = pd.DataFrame({
        "kind": ["noise", "smoke", "water_level", "pm25"],
        "severity": ["warning", "critical", "warning", "critical"],
        "message": ["noise 75 over limit 70", "smoke detected", "level 2.6 m", "cleared before"],
        "raised_at": [end - pd.Timedelta(hours=h) for h in (1, 3, 2, 5)],
        "cleared_at": [pd.NaT, pd.NaT, end + pd.Timedelta(hours=1), end - pd.Timedelta(hours=1)],
        "grid_code": ["g1", "g2", "g1", "g2"],
    })
    district_of_grid = pd.Series({"g1": "440304", "g2": "440303"})
    names = pd.Series({"440304": "Futian", "440303": "Luohu"})
    active = active_alarms(alarms, district_of_grid, names, end)
    assert list(active["message"]) == ["smoke detected", "noise 75 over limit 70", "level 2.6 m"]
    overdue = pd.DataFrame({"name": ["Futian", "Luohu"], "name_zh": ["福田区", "罗湖区"], "value": [0.0, 60.0],
                            "state": ["good", "critical"]})
    hotspots = pd.DataFrame(columns=["event_name", "place", "start_hour", "end_hour", "days_seen", "days", "orders",
                                     "ratio"])
    items = ticker_items(active, overdue, hotspots)
    assert [(i.kind, i.critical) for i in items] == [("critical", True), ("warning", False), ("warning", False),
                                                     ("red_card", True)]
    assert "Smoke and fire detector" in items[0].text and "Luohu" in items[0].text
    assert items[-1].text == "Luohu: 60 red-card orders"  # one language at a time (English by default)
    summary, track = ticker(items, len(active), critical_count=1)
    rendered = json.dumps(track.to_plotly_json(), default=lambda o: o.to_plotly_json())
    # Each item is twice in the loop; critical ones (an alarm, a district's red cards) pulse.
    assert rendered.count('"wall-tick-item critical"') == 2
    assert rendered.count('"wall-tick-item red_card critical"') == 2
    assert summary.children[0].children == "3"


def test_repainting_sends_no_geometry(city_db):
    services = Services(Store(city_db))
    view = services.unit_view(None, "pm25_exceedance_hours", "7d")
    assert len(view.children_geojson["features"]) == 8
    painted = paint(view.children_geojson, view.children, INDICATORS["pm25_exceedance_hours"])
    assert [p["code"] for p in painted] == [f["properties"]["code"] for f in view.children_geojson["features"]]
    patch = json.dumps(repaint(view.children_geojson, painted).to_plotly_json())
    assert "coordinates" not in patch and "geometry" not in patch
    # A volume without thresholds still shows where it is: a darker fill for a smaller value.
    volume = services.unit_view(None, "order_volume", "7d")
    fills = paint(volume.children_geojson, volume.children, INDICATORS["order_volume"])
    alphas = {p["code"]: p["fill"][3] for p in fills}
    largest = volume.children.sort_values("value").iloc[-1]["code"]
    assert alphas[largest] == max(alphas.values()) and len(set(alphas.values())) > 1
