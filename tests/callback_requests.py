"""Dash callback requests built from an app's own callback map, as the browser's renderer sends them
(``POST /_dash-update-component``): for the access matrix and the fuzz test."""
from __future__ import annotations

import json

from dash._utils import split_callback_id


def server_callbacks(app) -> dict[str, dict]:
    """Output key → callback-map entry, for every callback that runs on the server (clientside ones do not)."""
    return {key: entry for key, entry in app.callback_map.items() if entry.get("callback")}


def callback_name(entry: dict) -> str:
    function = entry["callback"]
    return f"{function.__module__}.{function.__name__}"


def _concrete(spec_id: str, wildcard: str):
    """A component id for one item of a spec: a pattern's ALL / MATCH / ALLSMALLER replaced by ``wildcard``."""
    if not spec_id.startswith("{"):
        return spec_id, False
    pattern = json.loads(spec_id)
    return {k: (wildcard if isinstance(v, list) else v) for k, v in pattern.items()}, True


def _prop_id(component_id, prop: str) -> str:
    if isinstance(component_id, dict):
        return json.dumps(component_id, sort_keys=True, separators=(",", ":")) + "." + prop
    return f"{component_id}.{prop}"


def body(key: str, entry: dict, values: list | None = None, wildcard: str = "x") -> dict:
    """The request body for the callback writing ``key`` with ``values`` for its inputs then its states (None
    where missing); the first input is the one that changed."""
    specs = list(entry["inputs"]) + list(entry.get("state", []))
    values = list(values or []) + [None] * (len(specs) - len(values or []))
    items = []
    for spec, value in zip(specs, values):
        component_id, pattern = _concrete(spec["id"], wildcard)
        item = {"id": component_id, "property": spec["property"], "value": value}
        items.append([item] if pattern else item)
    inputs, state = items[:len(entry["inputs"])], items[len(entry["inputs"]):]
    outputs = split_callback_id(key)
    changed = []
    if inputs:
        first = inputs[0][0] if isinstance(inputs[0], list) else inputs[0]
        changed = [_prop_id(first["id"], first["property"])]
    return {"output": key, "outputs": outputs, "inputs": inputs, "state": state, "changedPropIds": changed}
