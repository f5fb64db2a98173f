"""A city its own GIS team imported, in a real browser (issue 15): nothing measured shows as "no data", never as a
good score (item 4); the city's own time zone runs its clocks and names its exports (item 3)."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from layers.importer import ImportSources, import_city
from layers.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from test_importer import buildings_frame, districts_frame  # noqa: E402  the importer tests' city (Lyon)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lyon_without_measurements(tmp_path_factory):
    """Two districts and six low buildings with no residents: no orders, no sensors, nothing measured."""
    folder = tmp_path_factory.mktemp("lyon")
    districts, buildings = folder / "districts.gpkg", folder / "buildings.gpkg"
    districts_frame().to_file(districts)
    buildings_frame().assign(floors=pd.array([4, None, 8, None, 2, 1], dtype="Int64")).to_file(buildings)
    url = f"sqlite:///{folder / 'city.sqlite'}"
    store = Store(url)
    import_city(ImportSources(boundaries={"district": districts}, buildings=buildings), store, city_name="Lyon",
                settings={"timezone": "Europe/Paris", "holidays": "none"})
    store.engine.dispose()
    return url


def test_a_city_with_nothing_measured_has_no_score(serve_app, lyon_without_measurements, page):
    base = serve_app(lyon_without_measurements)
    for lang, no_data in (("en", "no data"), ("zh", "无数据")):
        page.goto(f"{base}/?lang={lang}", wait_until="networkidle")
        badge = page.locator("#vital-score")
        badge.wait_for(timeout=90_000)
        assert badge.locator(".score-value").inner_text().strip() == "—"
        badge.locator("summary").click()
        basis = page.locator("#vital-score-basis")
        basis.wait_for()
        assert no_data in basis.inner_text()
        assert "every judged indicator is good" not in badge.inner_text()
        assert "所有评价指标均正常" not in badge.inner_text()
    # The exports name their files in the city's time zone.
    assert page.locator("#export-png").get_attribute("data-timezone") == "Europe/Paris"

    # The wall's clock runs on Lyon's time, not Shenzhen's.
    page.goto(f"{base}/wall", wait_until="networkidle")
    page.wait_for_function("/^\\d\\d:\\d\\d:\\d\\d$/.test(document.querySelector('#wall-clock')?.innerText.trim())")
    shown = page.locator("#wall-clock").inner_text().strip()
    now = pd.Timestamp.now(tz="Europe/Paris")
    clock = pd.Timestamp(f"{now:%Y-%m-%d} {shown}", tz="Europe/Paris")
    distance = min(abs(clock - now), abs(clock + pd.Timedelta(days=1) - now), abs(clock - pd.Timedelta(days=1) - now))
    assert distance < pd.Timedelta(minutes=2), (shown, now)
    assert page.console_errors == []
