"""Alert rules as data: what fires an alert, how serious it is, and how long a condition must hold (or stay clear)
before the alert fires (or resolves). Rules come from a TOML file (``metrics/rules/shenzhen.toml`` for the sample
city), are validated on load with errors naming the file and line, and are kept versioned in the store
(:mod:`layers.alerts`), where an administrator adds, changes and disables them.

A rule is one ``[[rule]]`` table::

    [[rule]]
    id = "pm25_high"                 # unique; letters, digits, _ and -
    title = "PM2.5 over 75 µg/m³"
    title_zh = "PM2.5超过75微克/立方米"
    kind = "reading_threshold"       # see KINDS below
    severity = "warning"             # watch | warning | critical (metrics.spec.SEVERITIES)
    pending_minutes = 10             # the condition must hold this long before the alert fires
    keep_firing_minutes = 30         # … and be clear this long before it resolves by itself
    event_type = "air_pollution_odour"  # the work order an assignment files (layers.reference.EVENT_TYPES)
    sensor_kind = "pm25"             # kind-specific fields, below
    above = 75.0
    hysteresis = 10.0

Kinds and their fields (:data:`KINDS`):

- ``reading_threshold``: the newest reading of each sensor of ``sensor_kind`` is ``above`` (or ``below``) a limit;
  once firing, it stays so until the value is back past the limit by ``hysteresis`` (no flapping around the limit).
  Readings older than ``max_age_minutes`` are not judged (that is the ``sensor_silent`` rule's business).
- ``indicator_state``: an indicator's state at each unit of ``level`` over ``window`` is ``at_least`` a state.
- ``sensor_silent``: a sensor (of ``sensor_kind``, or any) is offline or faulty, or has sent nothing for
  ``silent_minutes``.
- ``anomaly``: the early-warning score (metrics/early_warning.py) of ``series`` (``orders`` or a sensor kind) at a
  unit of ``level`` in the last complete hour is above ``min_score`` (upwards only: a quiet hour is not an alert).
- ``fire_alarm``: a smoke detector reports a fire (an open smoke alarm, or a reading of 1).
- ``order_burst``: ``min_orders`` or more orders of one event type were received in one grid cell within
  ``window_minutes`` (a new hotspot).
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from metrics.spec import SEVERITIES, STATES, WINDOWS

RULES_DIR = Path(__file__).resolve().parent / "rules"
SAMPLE_RULES = RULES_DIR / "shenzhen.toml"
LEVELS = ("city", "district", "street", "community", "grid")

COMMON_REQUIRED = {"id": str, "title": str, "kind": str, "severity": str}
COMMON_OPTIONAL = {"title_zh": str, "pending_minutes": float, "keep_firing_minutes": float, "event_type": str,
                   "enabled": bool, "description": str}
KINDS: dict[str, tuple[dict, dict]] = {
    # kind: (required fields, optional fields) with their types
    "reading_threshold": ({"sensor_kind": str}, {"above": float, "below": float, "hysteresis": float,
                                                 "max_age_minutes": float}),
    "indicator_state": ({"indicator": str, "at_least": str}, {"level": str, "window": str}),
    "sensor_silent": ({}, {"sensor_kind": str, "silent_minutes": float}),
    "anomaly": ({"series": str}, {"level": str, "min_score": float}),
    "fire_alarm": ({}, {}),
    "order_burst": ({"min_orders": int}, {"window_minutes": float, "event_type_filter": str}),
}
DEFAULTS = {"pending_minutes": 0.0, "keep_firing_minutes": 0.0, "enabled": True, "hysteresis": 0.0,
            "max_age_minutes": 180.0, "level": "district", "window": "7d", "silent_minutes": 180.0,
            "min_score": 4.0, "window_minutes": 60.0, "title_zh": "", "event_type": "", "description": ""}
RULE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class RuleError(ValueError):
    """A rule that cannot be used: the message names the file, the line and the field."""


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    kind: str
    severity: str
    title_zh: str = ""
    pending_minutes: float = 0.0
    keep_firing_minutes: float = 0.0
    event_type: str = ""
    enabled: bool = True
    description: str = ""
    params: dict = field(default_factory=dict)  # the kind's own fields, defaults filled in

    def param(self, name: str):
        return self.params.get(name, DEFAULTS.get(name))

    def as_dict(self) -> dict:
        """The rule as the file would have it (what the store keeps as a version's body)."""
        out = asdict(self)
        out.update(out.pop("params"))
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True)


def _typed(value, wanted: type, where: str, name: str):
    if wanted is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RuleError(f"{where}: {name} must be a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise RuleError(f"{where}: {name} must be a finite number, got {value!r}")
        return float(value)
    if wanted is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RuleError(f"{where}: {name} must be a whole number, got {value!r}")
        return value
    if not isinstance(value, wanted):
        raise RuleError(f"{where}: {name} must be {'true or false' if wanted is bool else 'text'}, got {value!r}")
    return value


def rule_from_dict(raw: dict, where: str = "rule", known=None) -> Rule:
    """A :class:`Rule` from its fields, or :class:`RuleError` naming ``where`` (``file:line``) and the field.
    ``known`` (optional) holds the names the city has: ``sensor_kinds``, ``indicators``, ``event_types``."""
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a rule is a table of fields, got {raw!r}")
    rule_id = raw.get("id")
    if isinstance(rule_id, str):
        where = f"{where}: rule {rule_id!r}"
    for name, wanted in COMMON_REQUIRED.items():
        if name not in raw:
            raise RuleError(f"{where}: missing {name}")
        _typed(raw[name], wanted, where, name)
    if not RULE_ID.match(raw["id"]):
        raise RuleError(f"{where}: id must be 1 to 64 letters, digits, _ or -, got {raw['id']!r}")
    kind = raw["kind"]
    if kind not in KINDS:
        raise RuleError(f"{where}: unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    if raw["severity"] not in SEVERITIES:
        raise RuleError(f"{where}: unknown severity {raw['severity']!r}; severities: {', '.join(SEVERITIES)}")
    required, optional = KINDS[kind]
    allowed = {**COMMON_REQUIRED, **COMMON_OPTIONAL, **required, **optional}
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise RuleError(f"{where}: unknown field {unknown[0]!r} for a {kind} rule; fields: {', '.join(allowed)}")
    for name in required:
        if name not in raw:
            raise RuleError(f"{where}: a {kind} rule needs {name}")
    values = {name: _typed(raw[name], allowed[name], where, name) for name in raw}
    for name in ("pending_minutes", "keep_firing_minutes", "hysteresis", "max_age_minutes", "silent_minutes",
                 "window_minutes"):
        if name in values and values[name] < 0:
            raise RuleError(f"{where}: {name} cannot be negative, got {values[name]:g}")
    if kind == "reading_threshold" and ("above" in values) == ("below" in values):
        raise RuleError(f"{where}: a reading_threshold rule needs exactly one of above or below")
    if kind == "indicator_state" and values["at_least"] not in STATES[1:]:
        raise RuleError(f"{where}: at_least must be one of {', '.join(STATES[1:])}, got {values['at_least']!r}")
    if "level" in values and values["level"] not in LEVELS:
        raise RuleError(f"{where}: unknown level {values['level']!r}; levels: {', '.join(LEVELS)}")
    if "window" in values and values["window"] not in WINDOWS:
        raise RuleError(f"{where}: unknown window {values['window']!r}; windows: {', '.join(WINDOWS)}")
    if kind == "order_burst" and values["min_orders"] < 2:
        raise RuleError(f"{where}: min_orders must be at least 2, got {values['min_orders']}")
    known = known or {}
    for name, catalogue in (("sensor_kind", "sensor_kinds"), ("indicator", "indicators"),
                            ("event_type", "event_types"), ("event_type_filter", "event_types")):
        names = known.get(catalogue)
        if values.get(name) and names is not None and values[name] not in names:
            raise RuleError(f"{where}: unknown {name} {values[name]!r}; known: {', '.join(sorted(names))}")
    if kind == "anomaly" and known.get("sensor_kinds") is not None and values["series"] != "orders" \
            and values["series"] not in known["sensor_kinds"]:
        raise RuleError(f"{where}: series must be 'orders' or a sensor kind, got {values['series']!r}")
    common = {name: values[name] for name in (*COMMON_REQUIRED, *COMMON_OPTIONAL) if name in values}
    params = {name: values[name] for name in (*required, *optional) if name in values}
    return Rule(**common, params=params)


def default_known() -> dict:
    """The names the sample city's reference data know (sensor kinds, indicators, event types)."""
    from layers.reference import EVENT_TYPES, SENSOR_KINDS
    from metrics.registry import INDICATORS
    return {"sensor_kinds": {k[0] for k in SENSOR_KINDS}, "indicators": set(INDICATORS),
            "event_types": {e[0] for e in EVENT_TYPES}}


def parse_rules(text: str, source: str = "<rules>", known=None) -> list[Rule]:
    """Every ``[[rule]]`` of a TOML text, validated (see the module's doc); :class:`RuleError` names
    ``source:line`` of the first problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RuleError(f"{source}: not valid TOML: {error}") from None
    extra = sorted(set(document) - {"rule"})
    if extra:
        raise RuleError(f"{source}:{_line_of(text, extra[0])}: unknown top-level key {extra[0]!r}; "
                        "rules are [[rule]] tables")
    raws = document.get("rule", [])
    if not isinstance(raws, list):
        raise RuleError(f"{source}: rule must be an array of tables ([[rule]])")
    lines = [number for number, line in enumerate(text.splitlines(), start=1)
             if line.strip().startswith("[[rule]]")]
    rules, seen = [], {}
    for index, raw in enumerate(raws):
        where = f"{source}:{lines[index] if index < len(lines) else '?'}"
        rule = rule_from_dict(raw, where, known)
        if rule.id in seen:
            raise RuleError(f"{where}: rule {rule.id!r}: the id is used already at line {seen[rule.id]}")
        seen[rule.id] = lines[index] if index < len(lines) else "?"
        rules.append(rule)
    return rules


def load_rules(path: Path = SAMPLE_RULES, known=None) -> list[Rule]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RuleError(f"{path}: cannot read the rules: {error.strerror}") from None
    return parse_rules(text, str(path), default_known() if known is None else known)


def _line_of(text: str, key: str) -> int | str:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(key):
            return number
    return "?"
