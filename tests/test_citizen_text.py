"""The sample city's orders carry what the citizen said (issue 15 item 13): realistic requests by event type, in
Chinese and in English, and the README's example order id exists in the reproducible demo city."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from layers import reference
from sample_data.citizen_text import ENGLISH_SHARE, REQUESTS, citizen_requests
from sample_data.generator import DEFAULT_END, generate

README = Path(__file__).resolve().parent.parent / "README.md"
HAN = re.compile(r"[\u4e00-\u9fff]")
# Words each event type's request must use, in Chinese and in English: the text is about that event.
ABOUT = {"gas_leak": ("气", "gas"), "elevator_fault": ("电梯", "lift"), "streetlight_out": ("路灯", "streetlight"),
         "garbage_overflow": ("垃圾", "bins"), "wage_arrears": ("工资", "wages"),
         "night_construction_noise": ("施工", "night")}


def test_every_event_type_has_requests_in_both_languages():
    assert set(REQUESTS) == {code for code, *_ in reference.EVENT_TYPES}
    for code, (chinese, english) in REQUESTS.items():
        assert chinese and english, code
        assert all(HAN.search(sentence) for sentence in chinese), code
        assert not any(HAN.search(sentence) for sentence in english), code
        assert all("{place}" in sentence for sentence in chinese + english), code


@pytest.fixture(scope="module")
def test_city():
    return generate("test")


def test_every_generated_order_says_something_about_its_event(test_city):
    orders = test_city["orders"] if isinstance(test_city, dict) else test_city.orders
    texts = orders["description"]
    assert texts.notna().all() and (texts.str.len() > 10).all()
    assert not texts.str.contains(r"[{}<>]").any()  # every slot filled; plain text
    chinese = texts.map(lambda text: bool(HAN.search(text)))
    assert abs((~chinese).mean() - ENGLISH_SHARE) < 0.03  # both languages, in the documented share
    assert texts.nunique() > len(texts) / 5  # not a handful of strings
    for code, (word_zh, word_en) in ABOUT.items():
        of_type = orders.loc[orders["event_type"] == code, "description"]
        assert len(of_type), code
        for text in of_type:
            assert (word_zh in text) if HAN.search(text) else (word_en in text.lower()), (code, text)


def test_the_text_is_reproducible_and_draws_from_its_own_stream():
    types = np.array(["gas_leak", "waterlogging", "not_a_type"] * 50)
    first = citizen_requests(types, np.random.default_rng(3))
    assert list(first) == list(citizen_requests(types, np.random.default_rng(3)))
    assert first[2] is None  # a type without sentences gets no invented text


def test_the_readme_example_order_exists_in_the_reproducible_demo_city():
    ids = set(re.findall(r"/orders/(SZ\d+)", README.read_text()))
    assert ids, "the README names no example order"
    city = generate("demo", end=DEFAULT_END)
    orders = city["orders"] if isinstance(city, dict) else city.orders
    assert ids <= set(orders["order_id"]), ids - set(orders["order_id"])


def test_the_citizens_words_are_marked_in_the_language_they_were_written_in():
    # Shown as written on pages of either language (an English request stays English on a Chinese page), and marked
    # so that the browser draws them with their own fonts: the order page's text carries this ``lang``.
    from dashboard.i18n import written_language

    texts = citizen_requests(np.array(sorted(REQUESTS) * 20), np.random.default_rng(7))
    expected = ["zh-CN" if HAN.search(text) else "en" for text in texts]
    assert [written_language(text) for text in texts] == expected and set(expected) == {"zh-CN", "en"}
    assert written_language(None) is None and written_language("  ") is None
