"""Parameterised families of indicators: a base indicator restricted to one event category, department, channel,
event type or sensor kind of the reference lists (:mod:`layers.reference`).

A member is an ordinary :class:`~metrics.spec.Indicator` (its formula is the base formula with ``where=`` set), so
it can be computed, shown and catalogued alone; the engine computes all members of a family from one run of the
base formula (:func:`metrics.engine.family_sums`). Members are not headline figures (the KPI cards show the base
indicators) and weigh little in the composite score, so that 48 event types do not outvote the on-time rate.
"""
from __future__ import annotations

import dataclasses
import functools

from layers import reference
from metrics.spec import Family, Indicator

MEMBER_WEIGHT = 0.1

# Which topic an event category's figures belong to.
CATEGORY_TOPICS = {
    "city_appearance": "grid_management",
    "environment": "environment",
    "traffic": "traffic",
    "municipal": "municipal",
    "housing": "housing",
    "labour": "economy",
    "market": "economy",
    "public_safety": "public_safety",
    "social": "government_services",
}
# Event types whose figures belong to a topic other than their category's.
EVENT_TYPE_TOPICS = {
    "waterlogging": "flooding", "drain_blocked": "flooding", "water_supply_outage": "flooding",
    "fire_hazard": "fire_safety", "blocked_fire_exit": "fire_safety", "e_bike_indoor_charging": "fire_safety",
    "gas_leak": "emergency", "slope_risk": "emergency", "epidemic_prevention": "emergency",
}
CHANNEL_TOPICS = {"grid_patrol": "grid_management", "ai_camera": "grid_management", "iot_alarm": "sensors"}
SENSOR_KIND_TOPICS = {
    "pm25": "environment", "noise": "environment", "water_level": "flooding", "traffic_flow": "traffic",
    "smoke": "fire_safety", "electrical_safety": "fire_safety", "manhole_cover": "municipal",
    "streetlight": "municipal",
}


def member(base: Indicator, column: str, value: str, slug: str, label: str, label_zh: str, topic: str | None = None,
           owner: str | None = None) -> Indicator:
    """``base`` restricted to the rows whose ``column`` equals ``value``; its id is ``{base}__{column}_{slug}``."""
    return dataclasses.replace(
        base,
        id=f"{base.id}__{column}_{slug}",
        name=f"{base.name}: {label}",
        name_zh=f"{label_zh}{base.name_zh}",
        topic=topic or base.topic,
        owner=owner or base.owner,
        description=f"{base.description} Only {_what(column)} “{label}”.",
        description_zh=f"{base.description_zh}仅统计{_what_zh(column).format(label=label_zh)}。" if base.description_zh else "",
        formula=functools.partial(base.formula, where={column: value}),
        family=Family(base=base.id, column=column, key=value),
        headline=False,
        weight=MEMBER_WEIGHT,
    )


def _what(column: str) -> str:
    return {"category": "orders of the category", "department": "orders assigned to", "channel":
            "orders received through", "event_type": "orders of the type", "kind": "sensors of the kind"}[column]


def _what_zh(column: str) -> str:
    return {"category": "类别为“{label}”的工单", "department": "派给“{label}”的工单", "channel":
            "经“{label}”受理的工单", "event_type": "类型为“{label}”的工单", "kind": "类型为“{label}”的设备"}[column]


def category_members(bases: list[Indicator]) -> list[Indicator]:
    return [member(base, "category", code, code, name, name_zh, topic=CATEGORY_TOPICS[code])
            for base in bases for code, (name, name_zh) in reference.CATEGORIES.items()]


def department_members(bases: list[Indicator]) -> list[Indicator]:
    return [member(base, "department", name, key, name, name_zh, owner=name)
            for base in bases for key, (name, name_zh) in reference.DEPARTMENTS.items()]


def channel_members(bases: list[Indicator]) -> list[Indicator]:
    return [member(base, "channel", code, code, name, name_zh, topic=CHANNEL_TOPICS.get(code))
            for base in bases for code, name, name_zh, _share in reference.CHANNELS]


def event_type_members(bases: list[Indicator]) -> list[Indicator]:
    return [member(base, "event_type", code, code, name, name_zh,
                   topic=EVENT_TYPE_TOPICS.get(code, CATEGORY_TOPICS[category]),
                   owner=reference.DEPARTMENTS[department][0])
            for base in bases
            for code, category, name, name_zh, department, *_rest in reference.EVENT_TYPES]


def sensor_kind_members(bases: list[Indicator]) -> list[Indicator]:
    return [member(base, "kind", code, code, name, name_zh, topic=SENSOR_KIND_TOPICS[code])
            for base in bases for code, name, name_zh, *_rest in reference.SENSOR_KINDS]
