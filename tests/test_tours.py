"""Tour files: what a valid one gives, and a clear message naming the file, the step and the problem otherwise."""
from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from dashboard import tours
from dashboard.tours import TourError, load_tour, parse_tour

PAGES = {"/", "/hotspots", "/catalogue", "/wall", "/building/<building_id>"}
CAPTION = {"en": "Futian", "zh": "福田"}


def tour_data(**changes) -> dict:
    step = {"path": "/?unit=440304&indicator=on_time_rate&window=7d", "seconds": 8, "caption": CAPTION}
    data = {"title": {"en": "Demo", "zh": "演示"}, "steps": [step, {**step, "path": "/hotspots?window=30d"}]}
    data.update(changes)
    return data


def with_step(**changes) -> dict:
    data = tour_data()
    data["steps"][1] = {**data["steps"][1], **changes}
    return data


def test_a_valid_tour():
    tour = parse_tour(tour_data(), "demo.json", page_paths=PAGES)
    assert tour.name == "demo"
    assert [s.path for s in tour.steps] == ["/?unit=440304&indicator=on_time_rate&window=7d", "/hotspots?window=30d"]
    assert tour.total_seconds == 16.0
    assert tour.loop is False
    assert parse_tour(with_step(path="/building/B123"), "demo.json", page_paths=PAGES).steps[1].path == "/building/B123"


@pytest.mark.parametrize("data, message", [
    ([], "demo.json: a tour is a JSON object"),
    (tour_data(title=None) | {"title": {"en": "Demo"}}, "demo.json: title: missing 'zh' text"),
    ({k: v for k, v in tour_data().items() if k != "title"}, 'demo.json: missing "title"'),
    (tour_data(steps=[]), '"steps" must be a non-empty list'),
    (tour_data(loop="yes"), '"loop" must be true or false'),
    (tour_data(pages=[]), "unknown field(s) 'pages'"),
    (with_step(seconds=0), 'demo.json: step 2: "seconds" must be a positive number, got 0'),
    (with_step(seconds=-3), 'step 2: "seconds" must be a positive number, got -3'),
    (with_step(seconds="8"), "step 2: \"seconds\" must be a positive number, got '8'"),
    (with_step(seconds=True), '"seconds" must be a positive number, got True'),
    (with_step(seconds=86400), "at most 3600 per step"),
    (with_step(path="/nowhere"), "step 2: unknown page '/nowhere'"),
    (with_step(path="hotspots"), 'step 2: "path" must be a page path starting with "/"'),
    (with_step(path="//evil.example/x"), "step 2: \"path\" must stay on this app"),
    (with_step(path="/?indicator=bogus"), "step 2: unknown indicator 'bogus'"),
    (with_step(path="/?window=1y"), "step 2: unknown window '1y'"),
    (with_step(path="/?tour=demo"), "step 2: a step cannot start a tour"),
    (with_step(caption={"en": "only English"}), "step 2: caption: missing 'zh' text"),
    (with_step(caption="Futian"), "step 2: caption: expected an object"),
    (with_step(caption={"en": "a", "zh": "b", "fr": "c"}), "unknown language(s) 'fr'"),
    (with_step(secs=8), "step 2: unknown field(s) 'secs'"),
    (with_step(incident="earthquake"), "step 2: unknown incident 'earthquake' (incidents: pm25_episode, fire,"),
    (with_step(incident="fire:../x"), "step 2: incident place '../x': letters, digits"),
    (with_step(incident=["fire"]), 'step 2: "incident" must be text like "fire"'),
])
def test_a_bad_tour_is_named_with_its_problem(data, message):
    with pytest.raises(TourError) as error:
        parse_tour(data, "demo.json", page_paths=PAGES)
    assert message in str(error.value)


def test_missing_fields_of_a_step_are_named():
    data = tour_data()
    del data["steps"][0]["seconds"]
    with pytest.raises(TourError, match='demo.json: step 1: missing "seconds"'):
        parse_tour(data, "demo.json")


def test_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"title": {"en": "x", "zh": "y"},\n "steps": [}', encoding="utf-8")
    with pytest.raises(TourError, match=r"bad.json: not valid JSON: .* at line 2, column"):
        load_tour(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(tour_data()), encoding="utf-8")
    found, problems = tours.available_tours(tmp_path, PAGES)
    assert [t.name for t in found] == ["good"]
    assert len(problems) == 1 and problems[0].startswith(str(bad))
    assert tours.tour_path("good", tmp_path) == good
    with pytest.raises(TourError, match="tour 'nope': no file .* \\(tours: bad, good\\)"):
        tours.tour_path("nope", tmp_path)
    with pytest.raises(TourError, match="only letters, digits"):
        tours.tour_path("../good", tmp_path)
    assert tours.main([str(good)]) == 0
    assert tours.main([str(bad)]) == 1


def test_the_folder_setting(tmp_path, monkeypatch):
    assert tours.tours_folder() == tours.DEFAULT_FOLDER
    monkeypatch.setenv("CITYTWIN_TOURS", str(tmp_path))
    assert tours.tours_folder() == tmp_path


def test_the_shipped_shenzhen_tour(city_units):
    tour = load_tour(tours.DEFAULT_FOLDER / "shenzhen.json", PAGES)
    paths = [step.path.split("?")[0] for step in tour.steps]
    # city → Futian → one of its streets → hotspots → the wall
    assert paths == ["/", "/", "/", "/hotspots", "/wall"]
    units = [dict(parse_qsl(urlsplit(step.path).query)).get("unit") for step in tour.steps]
    assert units[:3] == [None, "440304", "440304001"]  # Futian 01 Street is one of Futian's streets
    assert tours.unknown_units(tour, city_units) == []
    assert tours.unknown_units(parse_tour(with_step(path="/?unit=999"), "x.json"), city_units) == [
        "tour 'x': step 2: unknown unit '999' in this city"]


def test_a_step_may_play_an_incident_of_the_simulator():
    from sample_data.simulate import INCIDENT_KINDS
    assert tours.INCIDENT_KINDS == INCIDENT_KINDS  # the file's check and the simulator know the same incidents
    tour = parse_tour(with_step(incident="storm:440306"), "demo.json", page_paths=PAGES)
    assert [s.incident for s in tour.steps] == [None, "storm:440306"]
    # The shipped drill starts the high-rise fire on its first step, on the wall, then shows the alerts.
    drill = load_tour(tours.DEFAULT_FOLDER / "fire-drill.json", PAGES | {"/alerts"})
    assert drill.steps[0].incident == "fire" and drill.steps[0].path.startswith("/wall")
    assert [s.path.split("?")[0] for s in drill.steps] == ["/wall", "/alerts", "/"]
    assert not any(s.incident for s in drill.steps[1:])


def test_a_running_tour_moves_and_ends():
    state = tours.start(parse_tour(tour_data(), "demo.json"), language="zh")
    assert state["step"] == 0 and state["language"] == "zh"
    assert tours.step_href(state) == "/?unit=440304&indicator=on_time_rate&window=7d&lang=zh"
    state = tours.move(state, 1)
    assert tours.step_href(state) == "/hotspots?window=30d&lang=zh"
    assert tours.move(state, -5)["step"] == 0
    assert tours.move(state, 1) is None  # past the last step of a tour that does not loop
    looping = tours.start(parse_tour(tour_data(loop=True), "demo.json"))
    assert tours.move(tours.move(looping, 1), 1)["step"] == 0
    assert tours.step_href(looping) == "/?unit=440304&indicator=on_time_rate&window=7d"  # no language: as written
    assert tours.start(parse_tour(tour_data(), "demo.json"), language="<b>")["language"] is None


@pytest.fixture(scope="module")
def city_units(tmp_path_factory):
    from sample_data.generator import SCALES, build_units

    import numpy as np
    units = build_units(SCALES["test"], np.random.default_rng(20231))
    return set(units["code"])
