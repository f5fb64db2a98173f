"""The KPI cards' footers stay inside their cards (issue 15 item 12): at street level and below the footer's state,
rank ("#12 of 16", "第12名/共16") and change ("▲ 3.37个百分点") ran past the card's right edge, in Chinese most of all.

The shared test city has 7 days of orders, so its 7-day window has no previous one and every footer reads a short
"no previous", and its few orders a street give rates of 100 both weeks ("= previous"): these tests build the test
city with 14 days of orders, four times as many a day, whose footers carry changes such as the demo city's."""
from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import text

from layers.store import Store
from sample_data.__main__ import build
from sample_data.generator import SCALES

pytestmark = pytest.mark.browser

# Every footer, and every piece of it, lies inside its card's padding box (a rounding pixel allowed).
SPILLS = r"""() => {
    const out = [];
    for (const card of document.querySelectorAll('.kpi-card')) {
        const box = card.getBoundingClientRect(), style = getComputedStyle(card);
        const left = box.left + parseFloat(style.borderLeftWidth) - 1;
        const right = box.right - parseFloat(style.borderRightWidth) + 1;
        const bottom = box.bottom - parseFloat(style.borderBottomWidth) + 1;
        const foot = card.querySelector('.kpi-foot');
        for (const part of [foot, ...foot.querySelectorAll('*')]) {
            const r = part.getBoundingClientRect();
            if (!r.width) continue;
            if (r.left < left || r.right > right || r.bottom > bottom || part.scrollWidth > part.clientWidth + 1)
                out.push(`${card.querySelector('.kpi-name').innerText}: "${part.innerText}" ` +
                         `${Math.round(r.left)}–${Math.round(r.right)} in ${Math.round(left)}–${Math.round(right)}`);
        }
    }
    return out;
}"""


@pytest.fixture(scope="module")
def fortnight_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fortnight') / 'citytwin.sqlite'}"
    scale = dataclasses.replace(SCALES["test"], order_days=14, orders_per_day=2_400)
    build(scale, url, progress=False).engine.dispose()
    return url


@pytest.fixture(scope="module")
def units(fortnight_db):
    """A street, a community and a grid cell, each of the parent with the most children (the longest ranks)."""
    store = Store(fortnight_db)
    with store.engine.connect() as conn:
        codes = [conn.execute(text(
            "SELECT code FROM units WHERE level = :level AND parent_code = (SELECT parent_code FROM units "
            "WHERE level = :level GROUP BY parent_code ORDER BY count(*) DESC, parent_code LIMIT 1) "
            "ORDER BY code DESC LIMIT 1"), {"level": level}).scalar_one() for level in ("street", "community", "grid")]
    store.engine.dispose()
    return codes


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_kpi_footers_stay_inside_their_cards(serve_app, fortnight_db, page, units, lang):
    base = serve_app(fortnight_db)
    spilled = {}
    for code in units:
        page.goto(f"{base}/?unit={code}&lang={lang}", wait_until="domcontentloaded")
        page.wait_for_function("(code) => document.querySelector('#unit-title')?.dataset.unit === code "
                               "&& document.querySelectorAll('.kpi-card .kpi-foot').length > 3", arg=code)
        changes = page.locator(".kpi-card .kpi-change:not(.muted)")
        assert changes.count() > 3  # the footers carry their changes
        if spills := page.evaluate(SPILLS):
            spilled[code] = spills
    assert spilled == {}
