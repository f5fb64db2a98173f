"""The map page's redraws share one helper (dashboard/components/layer_panel.redraw): a restyle, playback and the
live refresh draw the same layers for a view, and the live refresh on a new generation redraws the layer panel's
freshness badges too (issue 11: they stayed as the page was first drawn while the as-of moved on)."""
from __future__ import annotations

import json

import dash
import pandas as pd
import pytest

from dashboard import ids, services
from conftest import app_in_process, built_test_city  # tests/ is on sys.path (rootdir conftest)
from tests.callback_requests import body, callback_name, server_callbacks


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return app_in_process(built_test_city(tmp_path_factory, "refresh"), jobs=False)


def call(app, name: str, values: list) -> dict:
    key, entry = next((k, e) for k, e in server_callbacks(app).items() if callback_name(e) == name)
    response = app.server.test_client().post("/_dash-update-component", json=body(key, entry, values))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_json()["response"]


def badges(options: list[dict]) -> dict[str, str]:
    """Layer id → the text of its freshness badge, from the toggles' options as Dash sends them."""
    found = {}
    for option in options:
        title, badge = option["label"]["props"]["children"]
        found[option["value"]] = badge["props"]["children"]
    return found


def test_a_new_generation_redraws_the_freshness_badges(app, monkeypatch):
    service = services.get()
    drawn_at_start = service.layer_freshness()
    # Later, in live mode: every layer's newest record is three hours old (the clock moved on, nothing came in).
    now = pd.Timestamp.now(tz=service.city().as_of.tz)
    monkeypatch.setattr(type(service), "layer_freshness",
                        lambda self: {layer: now - pd.Timedelta(hours=3) for layer in drawn_at_start})
    answer = call(app, "dashboard.pages.overview.follow_the_city",
                  ["a-new-generation", "?unit=440304", ["base", "units", "sensors"], "use", None])
    toggles = answer[ids.LAYER_TOGGLES]["options"]
    assert set(badges(toggles).values()) == {"3 h"}
    assert [o["value"] for o in toggles][:3] == ["base", "units", "buildings"]
    # and the rest of the screen, as before
    assert {ids.MAP, ids.LAYER_LEGENDS, ids.KPI_PANEL, ids.RANKING, ids.AS_OF} <= set(answer)


def test_while_playback_shows_a_past_hour_the_refresh_keeps_the_screen(app):
    key, entry = next((k, e) for k, e in server_callbacks(app).items()
                      if callback_name(e) == "dashboard.pages.overview.follow_the_city")
    response = app.server.test_client().post("/_dash-update-component", json=body(
        key, entry, ["a-new-generation", "?unit=440304", ["units"], "use", 5]))
    assert response.status_code in (200, 204)
    assert not (response.get_json(silent=True) or {}).get("response")  # nothing to update


def test_restyle_playback_and_refresh_draw_the_same_layers(app):
    values = ["?unit=440304", ["base", "units", "incidents"], "state"]
    restyled = call(app, "dashboard.pages.overview.restyle_map", [values[1], values[2], values[0]])
    refreshed = call(app, "dashboard.pages.overview.follow_the_city", ["next", values[0], values[1], values[2], None])
    played = call(app, "dashboard.components.playback.control_playback", [1, 24, "normal", None, *values])
    layer_ids = [layer["id"] for layer in restyled[ids.MAP]["layers"]]
    assert layer_ids == [layer["id"] for layer in refreshed[ids.MAP]["layers"]]
    played_ids = [layer["id"] for layer in played[ids.MAP]["layers"]]
    # The day's layers join the same map under its text (no marker covers a name).
    assert [i for i in played_ids if not i.startswith("playback-")] == layer_ids
    text = [layer["id"] for layer in played[ids.MAP]["layers"] if layer["@@type"] == "TextLayer"]
    assert text and played_ids[-len(text):] == text and {"playback-orders", "playback-alarms"} <= set(played_ids)
    assert "incidents" in layer_ids and "units" in layer_ids
    assert json.dumps(restyled[ids.LAYER_LEGENDS]) == json.dumps(refreshed[ids.LAYER_LEGENDS])


@pytest.mark.parametrize("layers, color", [("units", ["use"]), ([None, 3, {"a": 1}], {"x": []}),
                                           (["units", "no-such-layer"], "height")])
def test_hostile_toggles_and_colours_are_left_out(app, layers, color):
    answer = call(app, "dashboard.pages.overview.restyle_map", [layers, color, "?unit=440304"])
    drawn = [layer["id"] for layer in answer[ids.MAP]["layers"]]
    assert all("color=use" in layer.get("data", "") for layer in answer[ids.MAP]["layers"]
               if layer["id"] == "buildings")
    assert "no-such-layer" not in drawn


PAGE_BODY = {
    "output": ".._pages_content.children..._pages_store.data..",
    "outputs": [{"id": "_pages_content", "property": "children"}, {"id": "_pages_store", "property": "data"}],
    "inputs": [{"id": "_pages_location", "property": "pathname", "value": "/"},
               {"id": "_pages_location", "property": "search", "value": "?unit=440304001"}],
    "changedPropIds": ["_pages_location.pathname"],
}


def test_screens_on_the_same_view_share_one_answer_per_generation(app, monkeypatch):
    """Every screen that opens or follows a view in the same generation gets the answer the first one made
    (Services.shared_answer): the page and the live refresh are drawn once; another screen scale (another camera)
    or another view is drawn for itself, and a new generation draws them all again."""
    import inspect

    from dashboard.view import SCALE_COOKIE

    # The helpers as the registered page and callback see them: in a process that made several apps, Dash imported
    # the page module once per app, and the callbacks are the first import's.
    page = next(p for p in dash.page_registry.values() if p["path"] == "/")["layout"]
    follow = next(e["callback"] for e in server_callbacks(app).values()
                  if callback_name(e) == "dashboard.pages.overview.follow_the_city")
    drawn = []
    for function, name in ((page, "_page"), (inspect.unwrap(follow), "_followed")):
        original = function.__globals__[name]
        monkeypatch.setitem(function.__globals__, name,
                            lambda *args, _f=original, _n=name: drawn.append(_n) or _f(*args))
    service = services.get()
    service._gen = service._next_generation(service.generation(), service.city())  # nothing drawn for it yet
    follow = ["a-new-generation", "?unit=440304001", ["base", "units"], "use", None]
    screens = [app.server.test_client() for _ in range(3)]
    answers = [screen.post("/_dash-update-component", json=PAGE_BODY).get_data() for screen in screens]
    assert drawn == ["_page"] and answers[0] == answers[1] == answers[2]
    for _ in screens:
        call(app, "dashboard.pages.overview.follow_the_city", follow)
    assert drawn == ["_page", "_followed"]
    wall = app.server.test_client()
    wall.set_cookie(SCALE_COOKIE, "2")  # a 4K wall: the same view, its own camera
    assert wall.post("/_dash-update-component", json=PAGE_BODY).status_code == 200
    other = json.loads(json.dumps(PAGE_BODY))
    other["inputs"][1]["value"] = "?unit=440304"
    assert screens[0].post("/_dash-update-component", json=other).status_code == 200
    assert drawn == ["_page", "_followed", "_page", "_page"]
    service._gen = service._next_generation(service.generation(), service.city())
    screens[0].post("/_dash-update-component", json=PAGE_BODY)
    call(app, "dashboard.pages.overview.follow_the_city", follow)
    assert drawn[4:] == ["_page", "_followed"]


def test_a_shared_answer_is_encoded_once_per_generation_and_sent_as_the_same_bytes(app, monkeypatch):
    """dashboard/replies.py: the screens after the first get the body Dash encoded for the first (encoding was most
    of such a request), and a new generation's answer is encoded for itself: a body is never sent for another
    generation. A request that names other outputs is not answered with a body made for these."""
    import dash._callback as dash_callback

    encoded = []
    original = dash_callback.to_json
    monkeypatch.setattr(dash_callback, "to_json", lambda value: encoded.append(1) or original(value))
    service = services.get()
    service._gen = service._next_generation(service.generation(), service.city())
    screens = [app.server.test_client() for _ in range(3)]
    answers = [screen.post("/_dash-update-component", json=PAGE_BODY) for screen in screens]
    assert [(a.status_code, a.mimetype) for a in answers] == [(200, "application/json")] * 3
    assert len(encoded) == 1 and answers[0].get_data() == answers[1].get_data() == answers[2].get_data()
    assert answers[0].get_json()["response"]["_pages_content"]["children"]["props"]["className"] == "screen"
    reordered = {**PAGE_BODY, "outputs": PAGE_BODY["outputs"][::-1]}  # hand-made: Dash refuses it, not the body
    assert screens[0].post("/_dash-update-component", json=reordered).status_code == 400
    service._gen = service._next_generation(service.generation(), service.city())
    assert screens[0].post("/_dash-update-component", json=PAGE_BODY).status_code == 200
    assert len(encoded) == 2


def test_a_shared_answer_goes_compressed_as_the_browser_accepts_and_the_same_for_every_screen(app):
    """The kept body is sent brotli- or gzip-compressed as the request accepts (compressed once per generation):
    each decompresses to the plain answer, which a request accepting neither gets as it is."""
    import gzip

    import brotli

    service = services.get()
    service._gen = service._next_generation(service.generation(), service.city())
    client = app.server.test_client()

    def asked(encoding):
        return client.post("/_dash-update-component", json=PAGE_BODY, headers={"Accept-Encoding": encoding})

    first_br, plain, again_br, gzipped = asked("br, gzip"), asked("identity"), asked("gzip, br"), asked("gzip")
    assert plain.headers.get("Content-Encoding") is None and plain.get_json()["response"]["_pages_content"]
    assert (first_br.headers["Content-Encoding"], gzipped.headers["Content-Encoding"]) == ("br", "gzip")
    assert first_br.get_data() == again_br.get_data()
    assert brotli.decompress(first_br.get_data()) == plain.get_data() == gzip.decompress(gzipped.get_data())
    assert "Accept-Encoding" in first_br.headers["Vary"]
