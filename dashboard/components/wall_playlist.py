"""The wall's topic playlist, generated from the registry: which topic a rotation step shows, which of its
indicators get a card, which one colours the map, and how each topic stands overall.

>>> PLAYLIST[0], len(PLAYLIST)
('requests', 14)
>>> [i.id for i in topic_indicators("sensors")]
['sensor_online_rate', 'active_alarms']
>>> lead_indicator("fire_safety").id        # the first card with thresholds, not the building count
'high_rise_smoke_coverage'
>>> playlist_topic(15, start="requests")    # step 15 of 14 topics: the second one again
'public_safety'
"""
from __future__ import annotations

import pandas as pd

from metrics.registry import INDICATORS, TOPICS
from metrics.spec import Indicator

PLAYLIST: list[str] = list(TOPICS)
CARDS_WITHOUT_HEADLINE = 6  # a topic without headline indicators shows its first ones, in registry order
# Worst first: a topic takes the state of its worst card.
STATE_ORDER = ("critical", "warning", "watch", "good", "neutral", "no_data")


def topic_indicators(topic: str) -> list[Indicator]:
    """The topic's headline indicators, else its first six by registry order."""
    members = [i for i in INDICATORS.values() if i.topic == topic]
    headline = [i for i in members if i.headline]
    return headline or members[:CARDS_WITHOUT_HEADLINE]


def lead_indicator(topic: str, kpis: pd.DataFrame | None = None) -> Indicator:
    """The indicator that colours the map: the topic's first card that has thresholds and (given the city's
    ``kpis``) a value, else its first card with thresholds, else its first card."""
    cards = topic_indicators(topic)
    judged = [i for i in cards if i.thresholds is not None]
    if kpis is not None:
        with_data = [i for i in judged if i.id in kpis.index and pd.notna(kpis.at[i.id, "value"])]
        judged = with_data or judged
    return judged[0] if judged else cards[0]


def playlist_topic(step: int | None, start: str | None = None) -> str:
    """The topic shown at rotation ``step`` (0 = the first screen), starting from ``start``."""
    offset = PLAYLIST.index(start) if start in PLAYLIST else 0
    return PLAYLIST[(offset + int(step or 0)) % len(PLAYLIST)]


def topic_state(topic: str, kpis: pd.DataFrame) -> str:
    """The worst state among the topic's cards for one unit (``kpis``: one row per indicator, column ``state``)."""
    states = {kpis.at[i.id, "state"] if i.id in kpis.index else None for i in topic_indicators(topic)}
    states = {s if isinstance(s, str) else "no_data" for s in states}
    return next((s for s in STATE_ORDER if s in states), "no_data")
