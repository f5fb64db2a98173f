"""FIWARE Smart Data Models → the ingest's records (readings, device status, alarms).

An entity comes in either representation of NGSI-LD (and NGSI v2, which has the same shapes):

* **keyValues** (simplified): ``{"id": …, "type": "AirQualityObserved", "pm25": 42, "dateObserved": "…"}``
* **normalized**: every attribute an object, ``{"type": "Property", "value": 42}``, a relationship
  ``{"type": "Relationship", "object": "urn:…"}``, a date ``{"type": "Property", "value": {"@type": "DateTime",
  "@value": "…"}}`` (NGSI v2: ``{"type": "DateTime", "value": "…"}``).

:func:`flatten` turns a normalized entity into keyValues, so each model is read once. The sensor an observation
belongs to is its ``refDevice`` (``urn:ngsi-ld:Device:<sensor_id>``), else the last segment of the entity's id
(``urn:ngsi-ld:AirQualityObserved:<sensor_id>``). Which attribute each model gives, and in which unit, is
:data:`OBSERVED`; docs/ingest.md has the examples (tests/fixtures/fiware/).
"""
from __future__ import annotations

from typing import Any

OBSERVED = {
    # model: (sensor kind, attribute holding the value, unit conversion or None)
    "AirQualityObserved": ("pm25", "pm25", None),                # µg/m³
    "NoiseLevelObserved": ("noise", "LAeq", None),               # dB(A), equivalent level over the period
    "TrafficFlowObserved": ("traffic_flow", "intensity", "per_hour"),  # vehicles in the period → veh/h
    "WaterObserved": ("water_level", "height", None),            # m (dataModel.Environment WaterObserved)
}
"""The observation models we read, the sensor kind each feeds, and the attribute carrying its value."""

DEVICE_STATES = {"ok": "online", "online": "online", "connected": "online", "disconnected": "offline",
                 "offline": "offline", "error": "fault", "fault": "fault", "broken": "fault"}
"""Device.deviceState (free text in the model) → our sensor status; anything else is refused."""

ALERT_SEVERITIES = {"informational": "warning", "low": "warning", "medium": "warning", "high": "critical",
                    "critical": "critical"}
"""Alert.severity (the model's enumeration) → our alarm severity."""


class EntityError(ValueError):
    """An entity we cannot read; the message says what is wrong (it becomes the dead letter's reason)."""


def is_entity(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("type"), str) and "id" in payload


def flatten(entity: dict) -> dict:
    """A normalized entity as keyValues (a keyValues entity comes back unchanged)."""
    flat = {}
    for name, attribute in entity.items():
        if name in ("id", "type", "@context") or not isinstance(attribute, dict) or "type" not in attribute:
            flat[name] = attribute
            continue
        kind = attribute["type"]
        if kind == "Relationship":
            flat[name] = attribute.get("object")
        elif kind in ("Property", "GeoProperty", "DateTime", "Number", "Text", "geo:json", "StructuredValue",
                      "Integer", "Float", "Boolean", "URL") and "value" in attribute:
            value = attribute["value"]
            if isinstance(value, dict) and "@value" in value:  # NGSI-LD typed literal ({"@type": "DateTime"})
                value = value["@value"]
            flat[name] = value
        else:
            flat[name] = attribute  # a GeoJSON value in keyValues has "type" too: leave it as it is
    return flat


def sensor_of(entity: dict) -> str:
    """The sensor id an entity speaks for: refDevice's last segment, else the entity id's."""
    reference = entity.get("refDevice")
    if entity.get("type") == "Alert":
        reference = reference or entity.get("alertSource")
    if isinstance(reference, list):
        reference = reference[0] if reference else None
    source = reference if isinstance(reference, str) and reference else entity.get("id")
    if not isinstance(source, str) or not source:
        raise EntityError("entity has no usable id or refDevice")
    return source.rsplit(":", 1)[-1]


def observation_time(entity: dict) -> Any:
    """dateObserved, else the end of the observed period (dateObservedTo), else dateObservedFrom."""
    for name in ("dateObservedTo", "dateObserved", "dateObservedFrom"):
        value = entity.get(name)
        if isinstance(value, str) and "/" in value:  # an ISO 8601 interval "from/to": its end
            value = value.split("/", 1)[1]
        if value is not None:
            return value
    raise EntityError(f"{entity.get('type')} has no dateObserved")


def period_seconds(entity: dict, parse_time) -> float | None:
    start, end = entity.get("dateObservedFrom"), entity.get("dateObservedTo")
    if start is None and isinstance(entity.get("dateObserved"), str) and "/" in entity["dateObserved"]:
        start, end = entity["dateObserved"].split("/", 1)
    if start is None or end is None:
        return None
    seconds = parse_time(end) - parse_time(start)
    if seconds <= 0:
        raise EntityError("dateObservedTo is not after dateObservedFrom")
    return float(seconds)
