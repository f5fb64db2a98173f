"""Rendering Open311 records as JSON or XML (GeoReport v2's two formats), errors included.

XML is built with :mod:`xml.etree.ElementTree`, which escapes every text it writes: a description holding
``<script>`` comes out as ``&lt;script&gt;``. The element names are the spec's: a list is an element holding one
child per item (``services``/``service``, ``service_requests``/``request``, ``attributes``/``attribute``, …);
``true``/``false`` for booleans; an empty element for null; extension fields in the ``citytwin`` namespace.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from flask import Response

from dashboard.open311.records import NAMESPACE, PREFIX

FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}

# Root element and item element of each list the API returns.
ROOTS = {"services": "service", "service_requests": "request", "errors": "error"}
# Child element of the items of each list-valued field.
LIST_ITEMS = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}

ET.register_namespace(PREFIX, NAMESPACE)


def _tag(key: str) -> str:
    if key.startswith(f"{PREFIX}:"):
        return f"{{{NAMESPACE}}}{key[len(PREFIX) + 1:]}"
    return key


# What XML 1.0 cannot carry, even escaped (outside its Char production): control characters but tab, line feed and
# carriage return; lone surrogates; U+FFFE and U+FFFF. Intake refuses them, but text stored before that (or
# imported) may hold them, and one such character makes the whole document unparseable.
NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT = "\ufffd"


def xml_safe(text: str) -> str:
    """``text`` with every character XML cannot carry replaced by U+FFFD, so that the document always parses.

    >>> xml_safe("pothole\x1b[31m")
    'pothole\ufffd[31m'
    """
    return NOT_XML_CHAR.sub(REPLACEMENT, text)


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return xml_safe(str(value))


def _fill(element: ET.Element, value) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, _tag(key)), item)
    elif isinstance(value, list):
        name = LIST_ITEMS[element.tag]
        for item in value:
            _fill(ET.SubElement(element, name), item)
    else:
        element.text = _text(value)


def to_xml(root: str, payload) -> bytes:
    """``payload`` (a list for the list roots, else a dict) as an XML document whose root element is ``root``."""
    element = ET.Element(root)
    if isinstance(payload, list):
        for item in payload:
            _fill(ET.SubElement(element, ROOTS[root]), item)
    else:
        _fill(element, payload)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def render(fmt: str, root: str, payload, status: int = 200, headers: dict | None = None) -> Response:
    """A response in ``fmt`` (json or xml). In JSON the root name is not written (a list is a list)."""
    if fmt == "xml":
        body = to_xml(root, payload)
    else:
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    response = Response(body, status=status, content_type=FORMATS.get(fmt, FORMATS["json"]))
    # User text is data: a browser must never sniff a response into HTML.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(fmt: str, status: int, *descriptions: str) -> Response:
    """The spec's error format: ``[{"code": 400, "description": "…"}]`` / ``<errors><error>…``, one per problem."""
    return render(fmt if fmt in FORMATS else "json", "errors",
                  [{"code": status, "description": d} for d in descriptions], status=status)
