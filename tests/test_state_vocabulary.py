"""One state vocabulary and one threshold shape: the state of the same value is the same on the map (its units
layer, its score badge, its freshness badges, its alert pins), on the wall (its map, its score ring, its clock's
freshness, its alert ticker), in the catalogue (the thresholds it prints) and in the APIs (the KPI export and
GET /api/alerts), because every one of them judges with the steps declared once in metrics/."""
from __future__ import annotations

import csv
import io
import math
import re

import pandas as pd
import pytest

from conftest import built_test_city, serving
from dashboard import services as services_module
from dashboard.components.layer_panel import freshness_badge
from dashboard.components.wall_map import paint
from dashboard.components.wall_panels import score_panel
from dashboard.exports import kpi_csv
from dashboard.maps.registry import MAP_LAYERS, MapView
from dashboard.services import Services
from layers.store import Store
from metrics.catalogue import thresholds_text
from metrics.clocks import CLOCK_STATES
from metrics.registry import INDICATORS
from metrics.score import SCORE_STATES, STATE_POINTS
from metrics.spec import FRESHNESS_MINUTES, STATE_RANK, STATES, Thresholds

JUDGED = ["on_time_rate", "pm25_mean", "overdue_orders", "noise_mean", "sensor_online_rate"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with serving(Services(Store(built_test_city(tmp_path_factory, "states")))) as service:
        yield service


def catalogue_steps(text: str) -> Thresholds:
    """The thresholds as the catalogue prints them ("below 95 critical · 95 to 98 warning · from 99 good"), read
    back: what a reader of the catalogue would conclude."""
    parts = text.split(" · ")
    first = re.fullmatch(r"below (\S+) (\w+)", parts[0])
    steps = [(float(re.match(r"(?:from )?(\S+) ", p).group(1)), p.rsplit(" ", 1)[1]) for p in parts[1:]]
    return Thresholds.of(first.group(2), *steps)


def api_states(service, code: str) -> dict:
    view = service.unit_view(code, "on_time_rate", "7d")
    rows = csv.DictReader(io.StringIO(kpi_csv(view, "7d").lstrip("\ufeff")))
    return {row["indicator"]: row["state"] for row in rows}


@pytest.mark.parametrize("indicator_id", JUDGED)
def test_an_indicator_value_has_one_state_on_the_map_the_wall_the_catalogue_and_the_api(service, indicator_id):
    indicator = INDICATORS[indicator_id]
    view = service.unit_view(None, indicator_id, "7d")
    districts = view.children.set_index("code")
    map_layer = MAP_LAYERS["units"].build(MapView(service, view, indicator_id, "7d"))[0]
    on_map = {f["properties"]["code"]: f["properties"]["state"] for f in map_layer["data"]["features"]}
    on_wall = {p["code"]: p["state"] for p in paint(view.children_geojson, view.children, indicator)}
    steps = catalogue_steps(thresholds_text(indicator))
    judged = 0
    for code, row in districts.iterrows():
        value = row["value"]
        expected = indicator.thresholds.state(value)
        in_catalogue = steps.state(value)
        in_api = api_states(service, code)[indicator_id]
        assert (row["state"], on_map[code], on_wall[code], in_catalogue, in_api) == (expected,) * 5, (code, value)
        judged += expected in STATES
    assert judged, "the test city judges this indicator somewhere"


def test_a_score_has_one_state_on_the_map_page_and_the_wall(service, monkeypatch):
    import sys

    from app import create_app
    monkeypatch.setenv("CITYTWIN_ALERT_SECONDS", "0")
    monkeypatch.setenv("CITYTWIN_ESCALATION_MINUTES", "0")
    app = create_app(service.store.url)  # Dash loads the pages (a page module is never imported by hand)
    score_badge = next(m.score_badge for name, m in list(sys.modules.items())
                       if name.endswith("overview") and hasattr(m, "score_badge"))
    service = services_module.get()
    for code in [None, *service.unit_view(None, "on_time_rate", "7d").children["code"]]:
        data = service.unit_view(code, "on_time_rate", "7d")
        expected = SCORE_STATES.state(data.score)
        badge = score_badge(data).className
        ring = score_panel(data.score, data.score_explanation)
        ring_class = re.search(r"wall-score-ring state-(\w+)", str(ring)).group(1)
        assert badge == f"score-badge state-{expected}" and ring_class == expected
    assert app is not None
    # The cut-offs, once: a score of 74.9 is a warning everywhere, 75 is watch.
    assert [SCORE_STATES.state(s) for s in (49.9, 50, 74.9, 75, 89.9, 90, math.nan)] == [
        "critical", "warning", "warning", "watch", "watch", "good", "no_data"]


def _wall_clock_state(minutes: float, steps: list) -> str:
    """What the wall's clock script does with the steps it is sent (dashboard/pages/wall.py): the last step whose
    value the age reaches."""
    found = steps[0][1]
    for value, state in steps:
        if value is None or minutes >= value:
            found = state
    return found


@pytest.mark.parametrize("minutes", [0, 30, 59.9, 60, 600, 1439, 1440, 5000, 10079, 10080, 50000])
def test_the_age_of_data_has_one_state_on_the_map_and_the_wall(minutes):
    from dashboard.pages.wall import parse_config
    now = pd.Timestamp("2026-11-20 12:00", tz="Asia/Shanghai")
    badge = freshness_badge(now - pd.Timedelta(minutes=minutes), now).className
    on_wall = _wall_clock_state(minutes, parse_config()["freshness_steps"])
    assert badge == f"fresh-badge state-{on_wall}" == f"fresh-badge state-{FRESHNESS_MINUTES.state(minutes)}"
    # A day of staleness is the same word everywhere (it was "watch" on the map and "critical" on the wall).
    assert FRESHNESS_MINUTES.state(1440) == "warning"
    # Data an hour old are not "live" (issue 15 item 13: the badge stayed green on hour-old data).
    assert [FRESHNESS_MINUTES.state(m) for m in (0, 14.9, 15, 45, 59.9)] == ["good", "good", "watch", "watch", "watch"]


def test_one_vocabulary():
    assert tuple(STATE_POINTS) == STATES
    assert [STATE_RANK[s] for s in STATES] == sorted(STATE_RANK[s] for s in STATES)
    assert {s.state for s in CLOCK_STATES.steps} <= set(STATES)


def test_an_alerts_value_and_severity_have_one_state_on_the_map_the_wall_the_catalogue_and_the_alerts_api(service):
    """An indicator-state rule fires for every district whose on-time rate is at least "watch": the alerts API gives
    each alert's value the state the map, the wall, the catalogue and the KPI export give that district's value;
    and an alert's severity is the same word on the map's pin, the wall's ticker, the alerts page and the API."""
    from dashboard.alerts_api import alerts_answer
    from dashboard.components.wall_alerts import alert_ticker_items
    from dashboard.settings import Settings
    from dashboard.theme import STATE_COLORS, rgba
    from metrics.alert_runner import save_rule, seed_rules

    fresh = Services(service.store, settings=Settings(version_check_seconds=0))  # sees the alerts at once
    previous, services_module._services = services_module._services, fresh
    try:
        book = fresh.alerts()
        seed_rules(book)
        save_rule(book, {"id": "on_time_watch", "title": "On-time completion to watch", "title_zh": "按时办结率需关注",
                         "kind": "indicator_state", "indicator": "on_time_rate", "level": "district", "window": "7d",
                         "at_least": "watch", "severity": "warning", "pending_minutes": 0,
                         "keep_firing_minutes": 0}, changed_by="test admin", note="a state every district may have")
        fresh.evaluate_alerts(fresh.city().as_of)
        answer = alerts_answer({"kind": "indicator_state"})
        mine = [a for a in answer["alerts"] if a["rule_id"] == "on_time_watch"]
        assert mine, "some district of the test city is at least 'watch' on on-time completion"

        indicator = INDICATORS["on_time_rate"]
        view = fresh.unit_view(None, "on_time_rate", "7d")
        map_layer = MAP_LAYERS["units"].build(MapView(fresh, view, "on_time_rate", "7d"))[0]
        on_map = {f["properties"]["code"]: f["properties"]["state"] for f in map_layer["data"]["features"]}
        on_wall = {p["code"]: p["state"] for p in paint(view.children_geojson, view.children, indicator)}
        steps = catalogue_steps(thresholds_text(indicator))
        for alert in mine:
            code, value = alert["unit_code"], alert["value"]
            expected = indicator.thresholds.state(value)
            assert STATE_RANK[expected] >= STATE_RANK["watch"]  # why it fired
            assert (alert["value_state"], on_map[code], on_wall[code], steps.state(value),
                    api_states(fresh, code)["on_time_rate"]) == (expected,) * 5, (code, value)

        # The severity: the pin's colour on the map, the ticker's mark on the wall, the page's class, the API's word.
        every = alerts_answer({"state": "open"})["alerts"]
        pins = {p["alert_id"]: p["fill"] for layer in MAP_LAYERS["alerts"].build(MapView(fresh, view, "on_time_rate",
                                                                                          "7d"))
                for p in layer["data"]}
        frame = fresh.open_alerts().set_index("alert_id")
        for alert in every:
            severity = alert["severity"]
            assert severity in STATES and frame.at[alert["alert_id"], "severity"] == severity
            if alert["alert_id"] in pins:
                assert pins[alert["alert_id"]] == rgba(STATE_COLORS[severity], 240)
            item = alert_ticker_items(frame.loc[[alert["alert_id"]]].reset_index(), {}, "en")[0]
            assert item.critical == (severity == "critical")
        assert len(pins) >= len(mine)
    finally:
        services_module._services = previous


def test_the_alerts_page_marks_each_alert_with_the_apis_severity(service, monkeypatch):
    from dashboard.alerts_api import alerts_answer
    from dashboard.settings import Settings
    from app import create_app

    monkeypatch.setenv("CITYTWIN_ALERT_SECONDS", "0")
    monkeypatch.setenv("CITYTWIN_ESCALATION_MINUTES", "0")
    create_app(service.store.url)  # Dash loads the pages
    import sys
    page = next(m for name, m in list(sys.modules.items()) if name.endswith("pages.alerts") and hasattr(m, "alert_rows"))
    fresh = Services(service.store, settings=Settings(version_check_seconds=0))
    monkeypatch.setattr(services_module, "_services", fresh)
    every = alerts_answer({"state": "all"})["alerts"]
    filters = page.normalise_filters(status="all")
    table = page.alert_rows(page.filtered_alerts(filters), filters)
    on_page = {}
    for row in table.children[1].children:  # the table's body: one row per alert
        props = row.to_plotly_json()["props"]
        on_page[props["data-alert"]] = row.children[0].children.className  # "alert-severity state-<severity>"
    assert every
    for alert in every[:page.MAX_ROWS]:
        assert on_page[alert["alert_id"]] == f"alert-severity state-{alert['severity']}", alert["alert_id"]
