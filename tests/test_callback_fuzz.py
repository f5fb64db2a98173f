"""Every server-side callback, called with values the UI never sends (hypothesis): no answer is a 5xx, no traceback
reaches the log, and nothing outside what the UI allows is written. In process, as an admin (who may call them all)."""
from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callback_requests import body, callback_name, server_callbacks
from test_access_matrix import app, city_url, client_as  # noqa: F401 — the same app and accounts

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**63) |
    st.floats(allow_nan=False, allow_infinity=False) |
    st.text(max_size=40) | st.sampled_from(["", "440304", "440300", "zh", "en", "xx", "7d", "-1", "../../etc",
                                            "on_time_rate", "no_such_indicator", "<img src=x>", "?unit=440303",
                                            "/orders/X", "/wall", "/nope"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)

NAMES = None


def names(app):
    return sorted(callback_name(entry) for entry in server_callbacks(app).values())


@pytest.fixture(scope="module")
def admin(app):  # noqa: F811
    return client_as(app, "only-admin")


@pytest.mark.parametrize("index", range(18))
def test_callbacks_survive_hostile_values(app, admin, index, caplog):  # noqa: F811
    callbacks = sorted(server_callbacks(app).items(), key=lambda kv: callback_name(kv[1]))
    assert len(callbacks) == 18, "a callback was added or removed: change range(18) to the new count"
    key, entry = callbacks[index]
    count = len(entry["inputs"]) + len(entry.get("state", []))
    statuses = []

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(values=st.lists(JSON, min_size=count, max_size=count), wildcard=JSON.filter(
        lambda v: isinstance(v, (str, int)) and not isinstance(v, bool)))
    def call(values, wildcard):
        request = body(key, entry, values, wildcard=wildcard)
        response = admin.post("/_dash-update-component", json=request)
        statuses.append(response.status_code)
        assert response.status_code < 500, (callback_name(entry), values, response.get_data(as_text=True)[:300])
        assert b"Traceback" not in response.data

    with caplog.at_level(logging.DEBUG):
        call()
    assert "Traceback" not in caplog.text, caplog.text[:2000]
    assert statuses and max(statuses) < 500


def test_malformed_callback_requests_are_400_not_500(admin):
    for payload in ({}, {"output": 1}, {"output": "map-goto.data"}, {"output": "map-goto.data", "inputs": "x"},
                    {"output": "map-goto.data", "inputs": [None], "state": [5]}, [], "text"):
        response = admin.post("/_dash-update-component", json=payload)
        assert 400 <= response.status_code < 500, (payload, response.status_code)
