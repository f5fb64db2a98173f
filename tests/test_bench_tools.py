"""The benches' own arithmetic (bench/capture.py, bench/browser.py, bench/load.py): a page's time split by the union
of intervals, the browser's waves of requests, the captured page body re-aimed at another URL, and what a returning
browser sends again."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import browser  # noqa: E402
import capture  # noqa: E402
import load  # noqa: E402


def recorded(url, start, end, resource_type="fetch", from_cache=False, body=None):
    return capture.Recorded("POST" if body else "GET", url, resource_type, {}, body, start, end, status=200,
                            from_cache=from_cache)


def test_union_of_intervals_counts_overlaps_once():
    assert browser.union_ms([]) == 0
    assert browser.union_ms([(0, 10), (5, 15), (20, 30)]) == 25
    assert browser.union_ms([(0, 10), (2, 3)]) == 10
    assert browser.union_ms([(5, 5), (7, 6)]) == 0  # empty or reversed intervals count nothing


def test_waves_group_what_was_in_flight_together():
    a, b = recorded("/a", 0, 100), recorded("/b", 10, 50)
    c = recorded("/c", 120, 200)  # started after a and b ended: it waited for them
    d = recorded("/d", 150, 160)
    assert [[r.url for r in wave] for wave in load.waves([c, a, d, b])] == [["/a", "/b"], ["/c", "/d"]]


def test_the_captured_page_body_is_reaimed_at_another_url():
    template = {"output": ".._pages_content.children..._pages_store.data..",
                "inputs": [{"id": "_pages_location", "property": "pathname", "value": "/"},
                           {"id": "_pages_location", "property": "search", "value": ""}],
                "changedPropIds": ["_pages_location.pathname"]}
    body = capture.page_request(template, "?unit=440304", "/wall")
    assert body["inputs"][0]["value"] == "/wall" and body["inputs"][1]["value"] == "?unit=440304"
    assert template["inputs"][1]["value"] == ""  # the template itself is untouched


def test_a_returning_browser_does_not_send_what_it_keeps():
    city = capture.Step("city", "map", requests=[
        recorded("/", 0, 10, "document"), recorded("/_dash-component-suites/x.v1m2.js", 10, 20, "script"),
        recorded("/_dash-update-component", 30, 40, body="{}")])
    street = capture.Step("street", "map", requests=[
        recorded("/_favicon.ico", 0, 1, "other", from_cache=True), recorded("/_dash-update-component", 2, 9, body="{}")])
    first, again = load.plan([city, street])
    assert [r.url for wave in first.steps[0] for r in wave] == ["/", "/_dash-component-suites/x.v1m2.js",
                                                                "/_dash-update-component"]
    assert [r.url for wave in again.steps[0] for r in wave] == ["/", "/_dash-update-component"]
    assert [r.url for wave in first.steps[1] for r in wave] == ["/_dash-update-component"]  # the cache answered it


def test_the_polls_and_the_redraws_they_call_go_at_the_pace_of_the_polls():
    """bench/load.py: a step's polls and the redraw a new generation called are not replayed in its waves; the
    redraw (the last of each callback) is the step's follow-up, and the page answer says which generation the page
    was drawn from."""
    follower = '{\\"page\\":\\"map\\",\\"type\\":\\"live-follower\\"}.data'
    redraw = ('{"output": "..city-map.layers..", "changedPropIds": ["%s"], "inputs": []}' % follower)
    page = '{"output": ".._pages_content.children..", "changedPropIds": ["_pages_location.pathname"]}'
    step = capture.Step("city", "map", requests=[
        recorded("/_dash-update-component", 0, 10, body=page), recorded("/api/generation", 20, 21),
        recorded("/_dash-update-component", 22, 30, body=redraw), recorded("/api/generation", 40, 41),
        recorded("/_dash-update-component", 42, 50, body=redraw)])
    first, _ = load.plan([step])
    assert [r.url for wave in first.steps[0] for r in wave] == ["/_dash-update-component"]
    assert [r.start_ms for r in first.follows[0]] == [42]
    answer = {"response": {"_pages_content": {"children": {"props": {"children": [
        {"props": {"id": {"type": "live-follower", "page": "map"}, "data": "7:3:2026-12-05T04:00"},
         "type": "Store"}]}}}}}
    assert load.drawn_key(answer) == "7:3:2026-12-05T04:00" and load.drawn_key({"response": {}}) is None


def test_the_map_click_is_the_one_with_a_picked_object():
    def step(*bodies):
        return capture.Step("s", "map", requests=[recorded("/_dash-update-component", 0, 1, body=b) for b in bodies])
    initial = ('{"output": "map-goto.data", "inputs": [{"id": "city-map", "property": "clickInfo", '
               '"value": null}]}')
    clicked = ('{"output": "map-goto.data", "inputs": [{"id": "city-map", "property": "clickInfo", '
               '"value": {"picked": true}}]}')
    assert capture.map_click([step(initial), step(clicked)])["inputs"][0]["value"] == {"picked": True}


def test_the_replayed_referer_and_origin_name_the_server_under_load():
    # The capture's server ran on another port; the same-origin check would refuse a callback naming it.
    assert load.rehome("http://127.0.0.1:39383/?unit=440304", "http://127.0.0.1:8050") == \
        "http://127.0.0.1:8050/?unit=440304"
    assert load.rehome("http://127.0.0.1:39383", "http://10.0.0.2:80") == "http://10.0.0.2:80"
    assert load.rehome("null", "http://127.0.0.1:8050") == "null"  # an opaque origin stays as it was


def test_the_redraw_bench_runs_to_the_end_on_a_small_city(tmp_path):
    """bench/follow.py drives the page's redraw and the generations' swap by hand: it must follow their changes
    (make bench once failed after 12 minutes on a stale request body)."""
    import subprocess

    from sample_data.__main__ import build

    url = f"sqlite:///{tmp_path / 'city.sqlite'}"
    build("test", url, progress=False)
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(root / "bench" / "follow.py"), "--database-url", url,
                           "--generations", "2"], capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert sum(" median " in line for line in lines) == 6 and "summed per generation" in lines[-1]


def test_the_breakdown_names_where_the_slow_requests_are():
    """bench/load.py --by-kind: each kind of request with its percentiles and its count of requests slower than the
    overall p95, the kinds holding most of that tail first."""
    page = recorded("/_dash-update-component", 0, 1, body='{"output": "..map-panel.children..", "inputs": []}')
    assert load.kind_of(page) == "callback ..map-panel.children.."
    assert load.kind_of(recorded("/tiles/buildings/15/1/2.pbf?v=3", 0, 1)) == "tile"
    assert load.kind_of(recorded("/api/generation", 0, 1)) == "poll"
    assert load.kind_of(recorded("/assets/x.css?m=1", 0, 1, "stylesheet")) == "static"
    assert load.kind_of(recorded("/orders?status=received", 0, 1, "document")) == "GET /orders"
    samples = ([load.Sample(0.010, 200, False, False, kind="poll", app_ms=1.0)] * 90
               + [load.Sample(0.900, 200, True, False, kind="callback a", app_ms=40.0)] * 8
               + [load.Sample(0.300, 200, True, False, kind="callback b")] * 2)
    rows = load.breakdown(samples, p95_ms=500)
    assert [row[0] for row in rows] == ["callback a", "callback b", "poll"]
    assert rows[0][1] == 8 and rows[0][5] == 8 and rows[1][5] == 0 and rows[2][3] == 10
    assert rows[0][6] == 40.0 and rows[1][6] != rows[1][6]  # the app's own p95; NaN where no answer said it
    assert load.server_timing_ms("app;dur=12.5") == 12.5
    assert load.server_timing_ms('cache;desc="x", app;dur=3') == 3.0
    assert load.server_timing_ms(None) is None and load.server_timing_ms("app;dur=x") is None
