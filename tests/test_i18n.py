"""The message catalogue and the language helpers (dashboard/i18n.py), without a browser: every message exists in
both languages, every key the code asks for is declared with the fields the code fills in, and the helpers pick one
language, falling back to English only where a name has no Chinese."""
from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pandas as pd
import pytest

from dashboard.components.labels import short_name
from dashboard.components.wall_ticker import ticker, ticker_items
from dashboard.i18n import (LANGUAGES, MESSAGES, UNITS_ZH, field, indicator_name, normalise_language, pick,
                            state_label, t, thresholds_text, unit_of_measure, window_label, with_language)
from dashboard.theme import STATE_LABELS
from metrics.registry import INDICATORS, TOPICS
from metrics.spec import WINDOWS

ROOT = Path(__file__).resolve().parents[1]
CJK = re.compile(r"[\u3400-\u9fff]")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _t_calls():
    """Every ``t(key, lang, **fields)`` and ``both(key, **fields)`` call in dashboard/: (where, key or key pattern,
    keyword names)."""
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("t", "both") \
                    and node.args:
                key = node.args[0]
                if isinstance(key, ast.Constant):
                    pattern = re.escape(key.value)
                elif isinstance(key, ast.JoinedStr):  # t(f"page.{name}", …): any key of that shape
                    pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else r"[\w-]+"
                                      for v in key.values)
                else:
                    pattern = None  # t("a" if … else "b", …): both names are checked
                yield f"{path.relative_to(ROOT)}:{node.lineno}", pattern, {k.arg for k in node.keywords}, key


def test_every_message_has_both_languages():
    assert LANGUAGES == ("en", "zh")
    for key, messages in MESSAGES.items():
        assert isinstance(messages, tuple) and len(messages) == 2, key
        english, chinese = messages
        assert english.strip() and chinese.strip(), key
        assert not CJK.search(english) or key == "language.zh", f"{key}: Chinese in the English column"
        # A Chinese message is in Chinese (the language names and pure symbols aside).
        assert CJK.search(chinese) or key in ("language.en",), f"{key}: no Chinese in {chinese!r}"


def test_every_key_the_code_uses_exists_with_the_fields_it_fills():
    calls = list(_t_calls())
    assert len(calls) > 60  # the pages do say things
    used = set()
    for where, pattern, keywords, node in calls:
        if pattern is None and isinstance(node, ast.Name) and where.startswith("dashboard/i18n.py"):
            continue  # frequency_label: a key it checks against MESSAGES first
        if pattern is None and isinstance(node, ast.Name) and where.startswith("dashboard/components/order_views.py"):
            continue  # refusal_text: the message id a refusal carries (checked below)
        if pattern is None:
            assert isinstance(node, ast.IfExp), f"{where}: a key t() cannot be checked for"
            names = [branch.value for branch in (node.body, node.orelse) if isinstance(branch, ast.Constant)]
            assert len(names) == 2 and all(n in MESSAGES for n in names), f"{where}: unknown key among {names}"
            used.update(names)
            continue
        matching = [k for k in MESSAGES if re.fullmatch(pattern, k)]
        assert matching, f"{where}: no message for {pattern}"
        used.update(matching)
        for key in matching:
            wanted = _fields(MESSAGES[key][0]) | _fields(MESSAGES[key][1])
            assert wanted <= keywords, f"{where}: {key} needs {sorted(wanted - keywords)}"
    # The browser-side words of the wall's clock are used through their prefix (dashboard/pages/wall.py).
    used |= {k for k in MESSAGES if k.startswith(("age.", "fresh."))}
    # Refusals carry their message id from where they are raised (layers/, dashboard/): each one named exists.
    named = {m for path in [*(ROOT / "layers").rglob("*.py"), *(ROOT / "dashboard").rglob("*.py")]
             for m in re.findall(r"[\"'](refusal\.\w+|order\.actor_missing)[\"']", path.read_text(encoding="utf-8"))}
    assert named - set(MESSAGES) == set(), "refusals with no message"
    used |= named | {"refusal.nothing"}
    # A dropdown's own words go to the component whole (dashboard.i18n.dropdown_labels).
    used |= {k for k in MESSAGES if k.startswith("dropdown.")}
    # The wall ticker's known alarm texts are looked up by the alarm's own message (dashboard/i18n.py).
    used |= {k for k in MESSAGES if k.startswith("alarm.")}
    # frequency_label looks the registry's update frequencies up by name: each has its message.
    frequencies = {f"frequency.{i.frequency}" for i in INDICATORS.values()}
    assert frequencies <= set(MESSAGES)
    used |= frequencies
    assert set(MESSAGES) - used == set(), "messages nobody uses"


def test_an_unknown_key_fails_loudly():
    with pytest.raises(KeyError):
        t("no.such.message", "zh")


def test_language_from_the_url():
    assert normalise_language("zh") == normalise_language("zh-CN") == normalise_language(" ZH ") == "zh"
    for value in (None, "", "en", "fr", "<script>alert(1)</script>", 7):
        assert normalise_language(value) == "en"
    assert with_language("/?unit=440304&indicator=on_time_rate", "zh") == "/?unit=440304&indicator=on_time_rate&lang=zh"
    assert with_language("/wall?kiosk=1&lang=zh", "en") == "/wall?kiosk=1"
    assert with_language("/wall?lang=en&kiosk=1", "zh") == "/wall?kiosk=1&lang=zh"


def test_registry_fields_in_one_language():
    indicator = INDICATORS["on_time_rate"]
    assert indicator_name(indicator, "en") == indicator.name and indicator_name(indicator, "zh") == indicator.name_zh
    for state, (english, chinese) in STATE_LABELS.items():
        assert (state_label(state, "en"), state_label(state, "zh")) == (english, chinese)
    for window in WINDOWS:
        assert window_label(window, "en") != window_label(window, "zh")
    # An imported unit without a Chinese name keeps its own (never an empty label, never "nan").
    for missing in (None, float("nan"), "", pd.NA):
        assert field({"name": "Zürich", "name_zh": missing}, "name", "zh") == "Zürich"
    assert pick("<b>x</b>", None, "zh") == "<b>x</b>"
    assert unit_of_measure("orders", "zh") == UNITS_ZH["orders"] and unit_of_measure("%", "zh") == "%"
    assert {i.unit for i in INDICATORS.values()} - {"%", "µg/m³", "dB(A)"} <= set(UNITS_ZH)
    assert all(CJK.search(title_zh) for _, title_zh in TOPICS.values())


def test_thresholds_in_words_in_both_languages():
    indicator = INDICATORS["on_time_rate"]
    english, chinese = thresholds_text(indicator, "en"), thresholds_text(indicator, "zh")
    assert english == indicator.thresholds.describe()  # the same words as metrics/catalogue.py
    assert all(state_label(s.state, "zh") in chinese for s in indicator.thresholds.steps)
    assert not re.search(r"[A-Za-z]", chinese)


def test_chinese_short_names_drop_the_parent():
    assert short_name("福田第1街道1号社区", "福田第1街道") == "1号社区"
    assert short_name("Futian 01 Street · Community 1", "Futian 01 Street") == "Community 1"
    assert short_name("福田区", "深圳市") == "福田区"
    assert short_name("Futian 01 Street", "Futian") == "Futian 01 Street"
    assert short_name("深圳市", "深圳市") == "深圳市"


def test_the_ticker_speaks_one_language():
    overdue = pd.DataFrame({"name": ["Luohu"], "name_zh": ["罗湖区"], "value": [60.0], "state": ["critical"]})
    no_alarms = pd.DataFrame(columns=["severity", "kind", "message", "raised_at", "grid_code", "district"])
    no_hotspots = pd.DataFrame(columns=["event_name", "place", "start_hour", "end_hour", "days_seen", "days",
                                        "orders", "ratio"])
    english = ticker_items(no_alarms, overdue, no_hotspots, "en")
    chinese = ticker_items(no_alarms, overdue, no_hotspots, "zh")
    assert english[0].text == "Luohu: 60 red-card orders"
    assert chinese[0].text == "罗湖区：60件红牌工单"
    assert english[0].tag("en") == "RED CARD" and chinese[0].tag("zh") == "红牌"
    summary, _track = ticker(chinese, 0, 0, "zh")
    assert summary.children[1].children == t("ticker.active_alarms", "zh")


def test_the_order_services_refusals_are_said_in_chinese_on_chinese_screens():
    """Issue 15 item 12: a refusal of the lifecycle (every status × action it refuses, the reopen limit) and of the
    work-order service's checks reaches a zh screen in Chinese, with statuses and actions named in Chinese."""
    from dashboard.components.order_views import refusal_text
    from layers import lifecycle
    from layers.workorders import InvalidRequest, UnknownOrder, _text

    refusals = []
    for status in lifecycle.STATUSES:
        for action in lifecycle.ACTIONS:
            if action == "file":
                continue
            try:
                lifecycle.transition(status, action, reopen_count=lifecycle.MAX_REOPENS)
            except lifecycle.TransitionRefused as refused:
                refusals.append(refused)
    for name, value in (("note", "x" * 10_000), ("actor", "")):
        with pytest.raises(InvalidRequest) as refused:
            _text(name, value, 100, required=True)
        refusals.append(refused.value)
    refusals.append(UnknownOrder("SZ-1"))
    assert len(refusals) > 40
    for refused in refusals:
        english, chinese = refusal_text(refused, "en"), refusal_text(refused, "zh")
        assert english == str(refused)
        assert CJK.search(chinese) and not re.search(r"[A-Za-z]{3,}", chinese), chinese


def _text_of(component, class_name: str) -> str:
    """The text of the first component with ``class_name`` in a Dash component tree."""
    found = []

    def walk(node):
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
        elif hasattr(node, "to_plotly_json"):
            if class_name in (getattr(node, "className", None) or "").split() and not found:
                found.append(node)
            walk(getattr(node, "children", None))

    walk(component)
    assert found, class_name

    def text(node):
        if isinstance(node, (list, tuple)):
            return "".join(text(c) for c in node)
        if hasattr(node, "to_plotly_json"):
            return text(getattr(node, "children", None))
        return "" if node is None else str(node)

    return text(found[0])


def test_every_level_of_the_data_has_its_words():
    from dashboard.i18n import LEVEL_WORDS, level_label, level_noun
    from layers.specs import ALL_LEVELS

    assert tuple(LEVEL_WORDS) == ALL_LEVELS
    for level in ALL_LEVELS:
        for lang in LANGUAGES:
            assert level_label(level, lang) and level_noun(level, lang) and level_noun(level, lang, many=True)
            assert t(f"wall.center.{level}", lang) and t(f"brand.sub.{level}", lang, city="X", city_zh="X")
    assert (level_noun("city", "en"), level_noun("city", "en", many=True), level_noun("city", "zh")) == \
        ("city", "cities", "市")


GUANGDONG = {"code": "440000", "level": "province", "name": "Guangdong", "name_zh": "广东省"}
SHENZHEN = {"code": "440300", "level": "city", "name": "Shenzhen", "name_zh": "深圳市"}


@pytest.mark.parametrize("top,lang,expected", [
    (GUANGDONG, "en", "Guangdong province operations"), (GUANGDONG, "zh", "广东省运行指挥中心"),
    (SHENZHEN, "en", "Shenzhen city operations"), (SHENZHEN, "zh", "深圳市城市运行指挥中心"),
])
def test_the_top_bar_names_the_top_unit_by_its_level(top, lang, expected):
    from dashboard.components.topbar import topbar

    bar = topbar([top], "on_time_rate", "7d", pd.Timestamp("2026-12-01 10:00"), controls=[], page="orders",
                 lang=lang)
    assert _text_of(bar, "brand-sub") == expected


@pytest.mark.parametrize("level,lang,kicker,ranking", [
    ("city", "en", "Cities by", "City ranking"), ("city", "zh", "各市分布", "各市排名"),
    ("district", "en", "Districts by", "District ranking"), ("district", "zh", "各区分布", "各区排名"),
    ("street", "en", "Streets by", "Street ranking"), ("street", "zh", "各街道分布", "各街道排名"),
])
def test_the_wall_names_the_units_on_its_map_by_their_level(level, lang, kicker, ranking):
    from dashboard.components.wall_panels import children_ranking, map_caption

    children = pd.DataFrame({"code": ["a", "b"], "name": ["A", "B"], "name_zh": ["甲", "乙"],
                             "value": [0.9, 0.99], "state": ["critical", "good"]})
    indicator = INDICATORS["on_time_rate"]
    assert _text_of(map_caption(indicator, "7d", children, lang, level), "wall-map-kicker") == kicker
    assert _text_of(children_ranking(indicator, children, lang, level), "wall-h3").startswith(ranking)


def test_every_indicator_and_map_layer_says_what_it_measures_in_chinese():
    """Issue 15 item 12: the catalogue's formula column, the KPI cards' and the layer toggles' tooltips were English
    on Chinese pages. Each of the 37 base indicators declares ``description_zh``; a family member's follows its base's."""
    from dashboard.i18n import indicator_description
    from dashboard.maps.registry import MAP_LAYERS

    for indicator in INDICATORS.values():
        assert CJK.search(indicator.description_zh), indicator.id
        assert indicator_description(indicator, "zh") == indicator.description_zh
        assert indicator_description(indicator, "en") == indicator.description
        # Chinese prose: no English words left in it (units, standards' codes and acronyms are fine).
        assert not re.search(r"[A-Za-z]{3,}", re.sub(r"PM2\.5|CITYTWIN_\w+|PMTiles", "", indicator.description_zh)), \
            indicator.id
    member = INDICATORS["on_time_rate__department_traffic_police"]
    assert member.description_zh.startswith(INDICATORS["on_time_rate"].description_zh) and "公安交警" in \
        member.description_zh
    for layer in MAP_LAYERS.values():
        assert CJK.search(layer.description_zh), layer.id


def test_what_the_server_writes_in_an_orders_log_is_said_in_the_pages_language():
    """The supervision sweep's name and its red-card notes were English on a Chinese order page (seen in the zh
    screenshots); what people wrote stays as written."""
    from types import SimpleNamespace

    from dashboard.components.order_views import _actor, _note
    from metrics.clocks import ESCALATION

    sweep = SimpleNamespace(source="log", actor="supervision sweep")
    assert CJK.search(_actor(sweep, "zh")) and _actor(sweep, "en") == "supervision sweep"
    assert _actor(SimpleNamespace(source="log", actor="wang.li"), "zh") == "wang.li"
    for note in ESCALATION["notes"].values():
        assert CJK.search(_note(note, "zh")) and _note(note, "en") == note
    assert _note("called the citizen back", "zh") == "called the citizen back"
