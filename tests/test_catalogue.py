"""docs/indicators.md is generated from the registry and must not drift from it."""
from metrics.catalogue import CATALOGUE_FILE, markdown
from metrics.registry import INDICATORS
from metrics.spec import Thresholds


def test_committed_catalogue_matches_the_registry():
    assert CATALOGUE_FILE.read_text(encoding="utf-8") == markdown(), \
        "docs/indicators.md is stale: run .venv/bin/python -m metrics.catalogue --write"


def test_catalogue_lists_every_indicator_once():
    text = markdown()
    for indicator_id in INDICATORS:
        assert text.count(f"`{indicator_id}`") == 1


def test_thresholds_in_words():
    steps = Thresholds.of("critical", (95, "warning"), (99, "good"))
    assert steps.describe() == "below 95 critical · 95 to 99 warning · from 99 good"
