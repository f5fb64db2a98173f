"""A tour that plays an incident, in a real browser against a real server in live mode with the built-in simulator:
the shipped fire drill's first step starts a fire alarm in the city's tallest high-rise, the rule fires a critical
alert, the wall's cue shows it while the tour's caption says the drill started, and the next step's alerts page
lists it. (Who may start a drill, and what a replay server says: tests/test_simulate.py.)"""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from playwright.sync_api import expect

from dashboard import tours
from layers.alerts import OPEN_STATUSES, AlertBook
from layers.specs import CITY_TIMEZONE
from layers.store import Store
from sample_data.__main__ import build

pytestmark = pytest.mark.browser

WAIT_MS = 90_000


def test_the_fire_drill_starts_its_fire_and_the_alert_is_on_the_wall_and_the_alerts_page(serve_app, page, tmp_path,
                                                                                          monkeypatch):
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    build("test", url, progress=False, end=pd.Timestamp.now(tz=CITY_TIMEZONE).floor("h"))
    # The shipped drill, its steps held until the test moves on: the test waits for what it checks, not for time.
    drill = json.loads((tours.DEFAULT_FOLDER / "fire-drill.json").read_text(encoding="utf-8"))
    for step in drill["steps"]:
        step["seconds"] = 3600
    folder = tmp_path / "tours"
    folder.mkdir()
    (folder / "fire-drill.json").write_text(json.dumps(drill), encoding="utf-8")
    for name, value in {"CITYTWIN_TOURS": str(folder), "CITYTWIN_MODE": "live", "CITYTWIN_SIMULATE": "20",
                        "CITYTWIN_ALERT_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)
    base = serve_app(url, roles=("supervisor",))

    page.goto(base + "/wall?tour=fire-drill", wait_until="domcontentloaded")
    note = page.locator("#tour-note")
    expect(note).to_contain_text("Drill: a fire alarm in a high-rise started at", timeout=WAIT_MS)
    expect(note).to_contain_text("演练：已启动高层建筑火灾报警")
    building = re.search(r"started at (\S+)", note.inner_text()).group(1)
    cue = page.locator("#wall-alert-cue")
    expect(cue).to_have_class(re.compile(r"\bon\b"), timeout=WAIT_MS)
    expect(cue).to_contain_text("Fire alarm in a building")

    fired = AlertBook(Store(url)).frame(OPEN_STATUSES)
    fired = fired[fired["rule_id"] == "high_rise_fire"]
    assert fired["building_id"].tolist() == [building] and fired["severity"].tolist() == ["critical"]
    alert_id = fired["alert_id"].iloc[0]
    expect(cue).to_contain_text(alert_id)

    page.locator("#tour-next").click()  # step 2: the alerts page, critical ones
    expect(page.locator("#tour-count")).to_have_text("2 / 3", timeout=WAIT_MS)
    row = page.locator(f"tr.alert-row[data-alert='{alert_id}']")
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_have_class(re.compile("unacknowledged-critical"))
    expect(page.locator("#tour-note")).to_have_count(0)  # the drill's note belongs to its own step
    assert page.external_requests == []
    assert page.console_errors == []
