"""Small things users notice (issue 15 item 13), in a real browser: a tour that cannot run names its file, never the
server's folder; the PNG export's file name carries the time in the city's time zone, as the CSV and HTML exports
do (it used UTC)."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from dashboard import tours
from layers.specs import CITY_TIMEZONE

pytestmark = pytest.mark.browser


def test_tour_errors_hide_the_servers_folder_and_png_names_use_city_time(serve_app, city_db, page, tmp_path,
                                                                        monkeypatch):
    folder = tmp_path / "private-tours-folder"
    folder.mkdir()
    (folder / "broken.json").write_text('{"title": {"en": "x", "zh": "y"},\n "steps": [}', encoding="utf-8")
    (folder / "fine.json").write_text(json.dumps({"title": {"en": "Fine", "zh": "好"}, "steps": [
        {"path": "/", "seconds": 5, "caption": {"en": "City", "zh": "全市"}}]}), encoding="utf-8")
    monkeypatch.setenv(tours.FOLDER_SETTING, str(folder))
    base = serve_app(city_db)

    for name, says in (("nosuch", "tour 'nosuch': no file nosuch.json (tours: broken, fine)"),
                       ("broken", "broken.json: not valid JSON")):
        page.goto(f"{base}/?tour={name}", wait_until="networkidle")
        page.wait_for_selector("#tour-overlay.error", timeout=60_000)
        text = page.locator("#tour-overlay").inner_text()
        assert says in text
        assert str(folder) not in text and "private-tours-folder" not in text

    page.goto(base + "/", wait_until="networkidle")
    page.wait_for_selector("#export-menu summary", timeout=60_000)
    before = pd.Timestamp.now(tz=CITY_TIMEZONE).floor("min")
    page.locator("#export-menu summary").click()
    with page.expect_download(timeout=60_000) as info:
        page.locator("#export-png").click()
    after = pd.Timestamp.now(tz=CITY_TIMEZONE).floor("min")
    stamp = re.search(r"-(\d{8}-\d{4})\.png$", info.value.suggested_filename).group(1)
    assert stamp in {f"{before:%Y%m%d-%H%M}", f"{after:%Y%m%d-%H%M}"}, (stamp, before)
    assert page.console_errors == []
