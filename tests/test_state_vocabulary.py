"""One state vocabulary and one threshold shape: the state of the same value is the same on the map (its units
layer, its score badge, its freshness badges), on the wall (its map, its score ring, its clock's freshness), in the
catalogue (the thresholds it prints) and in the API (the KPI export), because every one of them judges with the
steps declared once in metrics/."""
from __future__ import annotations

import csv
import io
import math
import re

import pandas as pd
import pytest

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
    from sample_data.__main__ import build
    path = tmp_path_factory.mktemp("states") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False)
    service = Services(Store(f"sqlite:///{path}"))
    previous = services_module._services
    services_module._services = service
    yield service
    services_module._services = previous


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
