"""Exports without a browser: the KPI CSV is the unit's KPI table, imported names stay data (no spreadsheet
formulas, no HTML), the 3D scene page loads nothing from the network, and bad requests are named."""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import re

import pytest

from dashboard import exports, services
from dashboard.theme import STATE_COLORS, rgba
from metrics.registry import INDICATORS
from sample_data.__main__ import build

FUTIAN = "440304"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('exports') / 'citytwin.sqlite'}"
    build("test", url, progress=False)
    configured = services._services
    yield services.configure(url)
    services._services = configured  # other tests see the services they had


@pytest.fixture(scope="module")
def futian(service):
    return service.unit_view(FUTIAN, "on_time_rate", "7d")


def read_csv(text: str) -> list[dict]:
    assert text.startswith("\ufeff")  # spreadsheets then read the Chinese names as UTF-8
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_kpi_csv_is_the_units_kpi_table(futian):
    rows = read_csv(exports.kpi_csv(futian, "7d"))
    assert list(rows[0]) == exports.CSV_COLUMNS
    assert [r["indicator"] for r in rows] == list(INDICATORS)
    for row in rows:
        kpi = futian.kpis.loc[row["indicator"]]
        indicator = INDICATORS[row["indicator"]]
        if isinstance(kpi["value"], float) and math.isnan(kpi["value"]):
            assert row["value"] == "" and row["display"] == "—"
        else:
            assert float(row["value"]) == pytest.approx(kpi["value"], rel=1e-12)
            assert row["display"] == indicator.format_value(kpi["value"])
        assert row["state"] == (kpi["state"] if isinstance(kpi["state"], str) else "no_data")
        assert (row["name_en"], row["name_zh"], row["unit"]) == (indicator.name, indicator.name_zh, indicator.unit)
        assert row["rank"] == ("" if math.isnan(kpi["rank"]) else str(int(kpi["rank"])))
    assert {(r["unit_code"], r["unit_name"], r["window"]) for r in rows} == {(FUTIAN, "Futian", "7d")}
    assert {r["as_of"] for r in rows} == {futian.as_of.isoformat()}


def test_imported_names_stay_data(futian):
    hostile = dataclasses.replace(futian, name="=HYPERLINK(\"http://x\")", name_zh="@SUM(A1)")
    row = read_csv(exports.kpi_csv(hostile, "7d"))[0]
    assert row["unit_name"] == "'=HYPERLINK(\"http://x\")" and row["unit_name_zh"] == "'@SUM(A1)"
    tagged = dataclasses.replace(futian, name="<img src=x onerror=alert(1)>")
    page = exports.scene_html(tagged, "on_time_rate", "7d")
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_scene_page_loads_nothing_from_the_network(futian):
    deck = exports.scene_deck(futian, "on_time_rate", "7d")
    # Why offline_html exists: pydeck's own offline page still links CDNs.
    raw = deck.to_html(as_string=True, offline=True, notebook_display=False)
    assert exports.EXTERNAL_TAG.search(raw)
    page = exports.scene_html(futian, "on_time_rate", "7d")
    assert not exports.EXTERNAL_TAG.search(page)
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", page, re.IGNORECASE)
    assert all(not re.search(r"(?:src|href)\s*=", tag) for tag in tags), tags
    assert "createDeck" in page


def test_scene_units_are_coloured_by_state_and_raised_by_value(futian):
    layer = exports.scene_layer(futian, "on_time_rate")
    features = layer.data["features"]
    assert len(features) == len(futian.children) == 10
    by_name = {f["properties"]["name"]: f["properties"] for f in features}
    children = futian.children.set_index("name")
    for name, props in by_name.items():
        assert props["fill"] == rgba(STATE_COLORS[children.at[name, "state"]], 210)
    heights = {name: props["height"] for name, props in by_name.items()}
    values = children["value"]
    assert max(heights, key=heights.get) == values.idxmax() and min(heights, key=heights.get) == values.idxmin()


def test_export_requests_name_what_is_unknown(service):
    assert exports.export_view({}) == {"unit": service.resolve_unit(None), "indicator": "on_time_rate",
                                       "window": "7d"}
    with pytest.raises(exports.ExportError, match="unknown unit 'nowhere'"):
        exports.export_view({"unit": "nowhere"})
    with pytest.raises(exports.ExportError, match="unknown indicator 'x'"):
        exports.export_view({"indicator": "x"})
    with pytest.raises(exports.ExportError, match="unknown window '1y'"):
        exports.export_view({"window": "1y"})
