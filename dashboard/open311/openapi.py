"""The OpenAPI 3 document of the Open311 GeoReport v2 endpoints (``GET /open311/v2/openapi.json``).

Written by hand beside the views of :mod:`dashboard.open311`; tests/test_open311.py checks that every route of the
blueprint is described here and that the documented limits are the ones the code applies.
"""
from __future__ import annotations

from dashboard.open311 import records

_FORMAT = {"name": "format", "in": "path", "required": True, "description": "json or xml",
           "schema": {"type": "string", "enum": ["json", "xml"]}}
_NULLABLE_TEXT = {"type": "string", "nullable": True}
# Rules the server enforces, stated so that clients (and schemathesis) see the same contract.
STATUS_LIST = "^ *(open|closed) *(, *(open|closed) *)*$"
# Citizens' text: no control character but tab, line feed and carriage return (XML cannot carry them).
PLAIN_TEXT = "^[^\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*$"
INSIDE_THE_CITY = ("the point must lie inside the city (in one of its grid cells); a point outside is refused "
                   "with 400")


def _content(schema_ref: str) -> dict:
    return {"application/json": {"schema": {"$ref": schema_ref}},
            "text/xml": {"schema": {"type": "string",
                                    "description": "the same structure as XML (see docs/open311.md)"}}}


def _error(description: str) -> dict:
    return {"description": description, "content": _content("#/components/schemas/Errors")}


def document(base_url: str, service_codes: list[str] | None = None) -> dict:
    """The document; ``service_codes`` (the current responsibility list) become the POST's enum of codes."""
    from dashboard.open311 import (CONTACT_FIELDS, DEFAULT_WINDOW, DEV_KEY, DEV_KEY_ENV, KEYS_ENV, MAX_IDS,
                                   MAX_RESULTS)

    attribute_params = {
        f"attribute[{a.code}]": ({"type": "string", "enum": [k for k, _n in a.values], "description": a.description}
                                 if a.values else
                                 {"type": "string", "maxLength": a.max_chars, "pattern": PLAIN_TEXT,
                                  "description": a.description})
        for a in records.ATTRIBUTES}
    contact = {name: {"type": "string", "maxLength": limit, "pattern": PLAIN_TEXT,
                      "description": "accepted and checked, not stored (the order has no private field)"}
               for name, limit in CONTACT_FIELDS.items() if name not in ("address_id", "jurisdiction_id")}
    contact["email"] = {**contact["email"], "format": "email",
                        "description": "an e-mail address (name@domain.tld); accepted and checked, not stored"}
    contact["phone"] = {**contact["phone"], "pattern": "^[0-9+()\\- ]*$",
                        "description": "digits, spaces, +, - and parentheses; accepted and checked, not stored"}
    contact["media_url"] = {**contact["media_url"], "pattern": "^(https?://[^\\s]+)?$",
                            "description": "an http(s) URL; accepted and checked, not stored"}
    extension_props = {f"{records.PREFIX}:{name}": schema for name, schema in (
        ("stage", {"type": "string", "enum": ["received", "dispatched", "accepted", "handled", "feedback",
                                              "evaluated", "closed", "cancelled"]}),
        ("department", _NULLABLE_TEXT), ("version", {"type": "integer"}), ("channel", {"type": "string"}),
        ("grid_code", {"type": "string"}), ("reopen_count", {"type": "integer"}),
        ("escalated", {"type": "boolean"}), ("satisfied", {"type": "boolean", "nullable": True}))}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "citytwin Open311 GeoReport v2",
            "version": "2",
            "description": (
                "Citizens' requests in, work orders' status out (GeoReport v2, " + records.SPECIFICATION + "). "
                "Every path ends in .json or .xml. Errors are a list of {code, description}. "
                "Statuses: every stage before closed is 'open', closed and cancelled are 'closed'; the stage is "
                "in status_notes and in the extension fields citytwin:* (XML namespace " + records.NAMESPACE
                + "). POST needs an api_key: one an admin created (/admin/api-keys), or from " + KEYS_ENV
                + " (comma list of key or key=channel); a missing or unknown key is 403; a key past its POSTs a "
                "minute is 429 with Retry-After. " + DEV_KEY_ENV + "=1 enables the development key '" + DEV_KEY + "'."),
        },
        "servers": [{"url": base_url}],
        "paths": {
            "/discovery.{format}": {"get": {
                "summary": "Discovery: the endpoint, its formats and contact",
                "parameters": [_FORMAT],
                "responses": {"200": {"description": "discovery",
                                      "content": _content("#/components/schemas/Discovery")},
                              "404": _error("unknown format")}}},
            "/services.{format}": {"get": {
                "summary": "Services: one per event type of the current responsibility list",
                "parameters": [_FORMAT, {"name": "jurisdiction_id", "in": "query", "required": False,
                                         "schema": {"type": "string"}, "description": "accepted, ignored"}],
                "responses": {"200": {"description": "the services",
                                      "content": _content("#/components/schemas/Services")},
                              "404": _error("unknown format")}}},
            "/services/{service_code}.{format}": {"get": {
                "summary": "Service definition: the attributes a request of this service may carry",
                "parameters": [{"name": "service_code", "in": "path", "required": True,
                                "schema": {"type": "string"}}, _FORMAT],
                "responses": {"200": {"description": "the definition",
                                      "content": _content("#/components/schemas/ServiceDefinition")},
                              "404": _error("unknown service code or format")}}},
            "/requests.{format}": {
                "get": {
                    "summary": f"Requests, newest first, at most {MAX_RESULTS:,}",
                    "description": (
                        "service_request_id overrides every other filter (the others must still be well "
                        "formed). Without dates the window is the last "
                        f"{DEFAULT_WINDOW.days} days; with one date it is {DEFAULT_WINDOW.days} days from (or up to) "
                        f"it; a window wider than {DEFAULT_WINDOW.days} days is refused. The header "
                        "X-Citytwin-Total-Count gives how many requests match (all pages)."),
                    "parameters": [
                        _FORMAT,
                        {"name": "service_request_id", "in": "query", "schema": {"type": "string"},
                         "description": f"comma list of ids (at most {MAX_IDS:,})"},
                        {"name": "service_code", "in": "query", "schema": {"type": "string"},
                         "description": "comma list of service codes"},
                        {"name": "start_date", "in": "query",
                         "schema": {"type": "string", "format": "date-time", "minLength": 1},
                         "description": "earliest requested_datetime (ISO 8601; a date alone is its midnight; no "
                                        "offset: the city's time); empty is refused: leave it out instead"},
                        {"name": "end_date", "in": "query",
                         "schema": {"type": "string", "format": "date-time", "minLength": 1},
                         "description": "latest requested_datetime, included; empty is refused"},
                        {"name": "status", "in": "query", "schema": {"type": "string", "pattern": STATUS_LIST},
                         "description": "open, closed, or both as a comma list (open,closed); any other word or an "
                                        "empty item is refused"},
                        {"name": "jurisdiction_id", "in": "query", "schema": {"type": "string"},
                         "description": "accepted, ignored"},
                    ],
                    "responses": {"200": {"description": "the requests",
                                          "headers": {"X-Citytwin-Total-Count": {"schema": {"type": "integer"}}},
                                          "content": _content("#/components/schemas/Requests")},
                                  "400": _error("a bad filter (each problem named)"),
                                  "404": _error("unknown format")}},
                "post": {
                    "summary": "File a request: a new work order (status received)",
                    "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                        "type": "object",
                        "required": ["api_key", "service_code", "lat", "long"],
                        "properties": {
                            "api_key": {"type": "string"},
                            "jurisdiction_id": {"type": "string", "description": "accepted, ignored"},
                            "service_code": {"type": "string", **({"enum": service_codes} if service_codes else {}),
                                             "description": "one of the codes GET services lists"},
                            "lat": {"type": "number", "minimum": -90, "maximum": 90, "description": INSIDE_THE_CITY},
                            "long": {"type": "number", "minimum": -180, "maximum": 180,
                                     "description": INSIDE_THE_CITY},
                            "address_string": {"type": "string", "maxLength": 4000, "pattern": PLAIN_TEXT,
                                               "description": "stored with the order; alone it is refused (no "
                                                              "geocoder)"},
                            "address_id": {"type": "string", "description": "accepted, not stored"},
                            "description": {"type": "string", "maxLength": records.MAX_DESCRIPTION_CHARS,
                                            "pattern": PLAIN_TEXT,
                                            "description": "stored as written (shown as text everywhere); the "
                                                           "attribute values are appended to it, one line each"},
                            **contact,
                            **attribute_params,
                        }}}}},
                    "parameters": [_FORMAT],
                    "responses": {"201": {"description": "filed",
                                          "content": _content("#/components/schemas/Created")},
                                  "400": _error("bad input (each problem named); nothing stored"),
                                  "403": _error("missing or unknown api_key; nothing stored"),
                                  "404": _error("unknown format"),
                                  "429": {**_error("this api_key made its POSTs for the minute; nothing stored"),
                                          "headers": {"Retry-After": {
                                              "description": "seconds until the key may post again",
                                              "schema": {"type": "integer", "minimum": 1}}}}}}},
            "/requests/{service_request_id}.{format}": {"get": {
                "summary": "One request",
                "parameters": [{"name": "service_request_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}, _FORMAT],
                "responses": {"200": {"description": "a list of one request",
                                      "content": _content("#/components/schemas/Requests")},
                              "404": _error("unknown request or format")}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3",
                                                            "content": {"application/json": {}}}}}},
        },
        "components": {"schemas": {
            "Errors": {"type": "array", "items": {"type": "object", "required": ["code", "description"],
                                                  "properties": {"code": {"type": "integer"},
                                                                 "description": {"type": "string"}}}},
            "Discovery": {"type": "object", "properties": {
                "changeset": {"type": "string"}, "contact": {"type": "string"}, "key_service": {"type": "string"},
                "endpoints": {"type": "array", "items": {"type": "object", "properties": {
                    "specification": {"type": "string"}, "url": {"type": "string"},
                    "changeset": {"type": "string"}, "type": {"type": "string"},
                    "formats": {"type": "array", "items": {"type": "string"}}}}}}},
            "Services": {"type": "array", "items": {"type": "object", "required": [
                "service_code", "service_name", "metadata", "type"], "properties": {
                "service_code": {"type": "string"}, "service_name": {"type": "string"},
                "description": _NULLABLE_TEXT, "metadata": {"type": "boolean"},
                "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
                "keywords": _NULLABLE_TEXT, "group": _NULLABLE_TEXT}}},
            "ServiceDefinition": {"type": "object", "required": ["service_code", "attributes"], "properties": {
                "service_code": {"type": "string"},
                "attributes": {"type": "array", "items": {"type": "object", "required": [
                    "variable", "code", "datatype", "required"], "properties": {
                    "variable": {"type": "boolean"}, "code": {"type": "string"},
                    "datatype": {"type": "string", "enum": ["string", "number", "datetime", "text",
                                                            "singlevaluelist", "multivaluelist"]},
                    "required": {"type": "boolean"}, "datatype_description": _NULLABLE_TEXT,
                    "order": {"type": "integer"}, "description": _NULLABLE_TEXT,
                    "values": {"type": "array", "items": {"type": "object", "properties": {
                        "key": {"type": "string"}, "name": {"type": "string"}}}}}}}}},
            "Requests": {"type": "array", "items": {"type": "object", "required": [
                "service_request_id", "status", "service_code", "requested_datetime"], "properties": {
                "service_request_id": {"type": "string"},
                "status": {"type": "string", "enum": ["open", "closed"]},
                "status_notes": _NULLABLE_TEXT, "service_name": _NULLABLE_TEXT, "service_code": {"type": "string"},
                "description": {"type": "string", "nullable": True, "maxLength": records.MAX_DESCRIPTION_CHARS},
                "agency_responsible": _NULLABLE_TEXT, "service_notice": _NULLABLE_TEXT,
                "requested_datetime": {"type": "string", "format": "date-time"},
                "updated_datetime": {"type": "string", "format": "date-time", "nullable": True},
                "expected_datetime": {"type": "string", "format": "date-time", "nullable": True},
                "address": _NULLABLE_TEXT, "address_id": _NULLABLE_TEXT, "zipcode": _NULLABLE_TEXT,
                "lat": {"type": "number"}, "long": {"type": "number"}, "media_url": _NULLABLE_TEXT,
                **extension_props}}},
            "Created": {"type": "array", "items": {"type": "object", "required": ["service_request_id"],
                                                   "properties": {"service_request_id": {"type": "string"},
                                                                  "service_notice": _NULLABLE_TEXT,
                                                                  "account_id": _NULLABLE_TEXT}}},
        }},
    }
