"""Small things users notice (issue 15 item 13, the screens' part)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang,words", [("en", "has no unit"), ("zh", "没有编号为")])
def test_an_unknown_unit_says_so_instead_of_silently_showing_the_city(serve_app, city_db, page, lang, words):
    base = serve_app(city_db)
    page.goto(f"{base}/?unit=999999&lang={lang}", wait_until="networkidle")
    notice = page.locator("#unit-missing")
    notice.wait_for(timeout=60_000)
    assert words in notice.inner_text() and "999999" in notice.inner_text()
    # A known unit has no such notice.
    page.goto(f"{base}/?unit=440304&lang={lang}", wait_until="networkidle")
    page.wait_for_function("document.querySelector('#unit-title')?.dataset.unit === '440304'", timeout=60_000)
    assert page.locator("#unit-missing").count() == 0
