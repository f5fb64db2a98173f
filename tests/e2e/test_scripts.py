"""Letters of every city (issue 15 item 5): names in Czech, Hungarian, Polish and Chinese are each drawn in one font
that has their letters, Latin first and CJK as the fallback, and a decomposed "č" (c + combining caron, as some GIS
files store it) is drawn as one letter, not a "c" with a loose "ˇ"."""
from __future__ import annotations

import subprocess
import sys
import unicodedata
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from tests.e2e.fonts import fonts_of

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
LATIN_NAMES = ["Žižkov", "Győr", "Łódź", unicodedata.normalize("NFD", "Dvořák")]
CHINESE_NAME = "福田区"


@pytest.fixture(scope="module")
def many_scripts_city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scripts")
    districts = folder / "districts.geojson"
    names = [*LATIN_NAMES, CHINESE_NAME]
    gpd.GeoDataFrame({"code": [f"D{i}" for i in range(len(names))], "name": names},
                     geometry=[box(14.40 + 0.05 * i, 50.05, 14.45 + 0.05 * i, 50.10) for i in range(len(names))],
                     crs="EPSG:4326").to_file(districts)
    url = f"sqlite:///{folder / 'city.sqlite'}"
    done = subprocess.run([sys.executable, "-m", "layers.importer", "--boundaries", f"district={districts}",
                           "--city-name", "Praha", "--database-url", url], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return url


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_names_in_several_scripts_draw_in_one_font_each(serve_app, page, many_scripts_city, lang):
    base = serve_app(many_scripts_city)
    page.goto(f"{base}/?lang={lang}", wait_until="networkidle")
    page.wait_for_selector(".rank-name")
    fonts = fonts_of(page, ".rank-name")
    for name in LATIN_NAMES:
        used = fonts[name]
        # One font for the whole word, a Latin one: with the CJK font first, "Győr" came out in two (the CJK font
        # has no "ő") and the CJK font drew the Latin letters around it.
        assert len(used) == 1 and "CJK" not in used[0], (name, used)
    assert fonts[CHINESE_NAME] == ("Noto Sans CJK SC",), fonts[CHINESE_NAME]
    # The decomposed "Dvořák" takes the width of the composed one: the caron sits on the "r", not after it.
    widths = page.evaluate("""(names) => names.map(name => {
        const probe = document.createElement('span');
        probe.className = 'rank-name'; probe.style.flex = 'none'; probe.textContent = name;
        document.querySelector('.rank-row').appendChild(probe);
        const width = probe.getBoundingClientRect().width; probe.remove(); return width; })""",
                           [unicodedata.normalize("NFD", "Dvořák"), "Dvořák"])
    assert abs(widths[0] - widths[1]) < 0.5, widths
    assert page.console_errors == []


def test_map_labels_are_composed_and_in_the_font_atlas():
    """deck.gl draws each code point of a label on its own from its font atlas: labels are NFC and every letter of
    them is in the atlas (else "Łódź" is drawn "ód")."""
    from dashboard.maps.deck import label_layer

    names = [*LATIN_NAMES, CHINESE_NAME]
    geojson = {"features": [{"properties": {"name": n, "name_zh": n, "label_point": [0, 0]}} for n in names]}
    for lang in ("en", "zh"):
        layer = label_layer("labels", geojson, lang)
        texts = [label["text"] for label in layer["data"]]
        assert "Dvořák" in texts and unicodedata.normalize("NFD", "Dvořák") not in texts
        assert all(c in layer["characterSet"] for text in texts for c in text)
        assert layer["fontFamily"].startswith('"Noto Sans", "Liberation Sans"')


def test_grid_labels_are_short_and_drawn_over_the_tilted_cell():
    """Issue 15 item 12: a grid cell's label drops what the breadcrumb already says (its community's name) and is
    drawn over the cell and its buildings (it was half hidden by depth on the tilted map, and too long in Chinese)."""
    from dashboard.maps.deck import label_layer

    cell = {"name": "Luohu 01 Street · Community 1 · Grid 1", "name_zh": "罗湖第1街道1号社区1号网格",
            "parent_name": "Luohu 01 Street · Community 1", "parent_name_zh": "罗湖第1街道1号社区", "label_point": [0, 0]}
    assert [label["text"] for label in label_layer("l", {"features": [{"properties": cell}]}, "zh")["data"]] == \
        ["1号网格"]
    layer = label_layer("l", {"features": [{"properties": cell}]}, "en")
    assert [label["text"] for label in layer["data"]] == ["Grid 1"]
    assert layer["parameters"]["depthCompare"] == "always"


def test_the_map_sends_each_label_with_its_parents_name(tmp_path):
    from dashboard.services import children_geojson
    from layers.city import load_city
    from sample_data.__main__ import build

    city = load_city(build("test", f"sqlite:///{tmp_path / 'c.sqlite'}", progress=False))
    grid = city.units[city.units["level"] == "grid"].iloc[0]
    (feature,) = children_geojson(city, grid["code"])["features"]
    parent = city.units.loc[grid["parent_code"]]
    assert (feature["properties"]["parent_name"], feature["properties"]["parent_name_zh"]) == \
        (parent["name"], parent["name_zh"])
