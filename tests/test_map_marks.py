"""The safety and grid-management map layers (incidents, enterprises, cameras, patrols): their marks are the unit's
records only, clusters above the community add up to them and show the worst class inside, and each layer is
declared once in the registry with names in both languages (dashboard/maps/sources.py, registry.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.maps import sources
from dashboard.maps.registry import MAP_LAYERS
from layers.city import load_city
from layers.store import Store
from sample_data.__main__ import build

EXTRA = ("incidents", "enterprises", "cameras", "patrols")


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('marks') / 'city.sqlite'}"
    build("test", url, progress=False)
    return load_city(Store(url))


def _district(city):
    return city.units.index[city.units["level"] == "district"][0]


def test_marks_are_the_units_records_only(city):
    district = _district(city)
    in_district = lambda frame: frame["grid_code"].map(city.hierarchy["district"]) == district  # noqa: E731
    assert len(sources.enterprise_marks(city, district)) == in_district(city["enterprises"]).sum() > 0
    assert len(sources.camera_marks(city, district)) == in_district(city["cameras"]).sum() > 0
    cells = (city.hierarchy["district"] == district).sum()
    points = sources.grid_points(city)
    start, end = city.as_of - pd.Timedelta(days=7), city.as_of
    patrols = sources.patrol_marks(city, district, start, end, points)
    assert len(patrols) == cells  # every cell, patrolled or not
    started = city["patrols"]["started_at"]
    expected = (in_district(city["patrols"]) & (started >= start) & (started < end)).sum()
    assert patrols["weight"].sum() == expected > 0


def test_incident_classes_follow_level_and_resolution(city):
    start, end = city["incidents"]["reported_at"].min(), city.as_of + pd.Timedelta(seconds=1)
    code = city.units.index[city.units["level"] == "city"][0]
    marks = sources.incident_marks(city, code, start, end)
    incidents = city["incidents"].dropna(subset=["lon", "lat"])
    assert len(marks) == len(incidents)
    open_ = incidents["resolved_at"].isna() | (incidents["resolved_at"] >= end)
    major = incidents["severity"] != "general"
    assert (marks["cls"] == "open_major").sum() == (open_ & major).sum()
    assert (marks["cls"] == "resolved").sum() == (~open_).sum()


def test_clusters_add_up_and_show_the_worst_class_inside():
    marks = pd.DataFrame({"lon": [114.05, 114.0501, 114.0502, 114.3], "lat": [22.55, 22.5501, 22.5502, 22.7],
                          "cls": ["online", "offline", "ai", "online"], "weight": [1, 1, 1, 1],
                          "name": "a", "name_zh": "甲", "detail": "d", "detail_zh": "乙"})
    clusters = sources.mark_clusters(marks, sources.CAMERA_CLASSES, 7, ("cameras", "路视频"), "en")
    assert sorted(c["count"] for c in clusters) == [1, 3]
    three = next(c for c in clusters if c["count"] == 3)
    assert three["cls"] == "offline" and three["tip_name"] == "3 cameras"
    assert sum(c["count"] for c in sources.mark_clusters(marks, sources.CAMERA_CLASSES, 6, ("", ""), "zh")) == 4
    assert sources.mark_clusters(marks.iloc[:0], sources.CAMERA_CLASSES, 7, ("", ""), "en") == []
    one_by_one = sources.mark_points(marks, sources.CAMERA_CLASSES, "zh")
    assert len(one_by_one) == 4 and one_by_one[-1]["cls"] == "offline"  # the worst on top
    assert one_by_one[0]["tip_name"] == "甲"


def test_names_from_data_are_escaped(city):
    hostile = city["cameras"].copy()
    hostile.loc[hostile.index[0], "camera_id"] = "<img src=x onerror=alert(1)>"
    city.layers["cameras"], original = hostile, city.layers["cameras"]
    try:
        marks = sources.camera_marks(city, city.units.index[city.units["level"] == "city"][0])
    finally:
        city.layers["cameras"] = original
    assert not marks["name"].str.contains("<img").any()
    assert marks["name"].str.contains("&lt;img").any()


@pytest.mark.parametrize("layer_id", EXTRA)
def test_each_layer_is_declared_once_in_both_languages(layer_id):
    layer = MAP_LAYERS[layer_id]
    assert layer.title and layer.title_zh and layer.title != layer.title_zh
    assert layer.sources and not layer.default
    classes = {"incidents": sources.INCIDENT_CLASSES, "enterprises": sources.ENTERPRISE_CLASSES,
               "cameras": sources.CAMERA_CLASSES, "patrols": sources.PATROL_CLASSES}[layer_id]
    assert all(c.label and c.label_zh and c.label != c.label_zh for c in classes.values())
    assert len({c.color for c in classes.values()}) == len(classes)
    assert np.all([c.color.startswith("#") for c in classes.values()])


def test_sensor_clusters_count_the_units_sensors_and_show_the_worst_state_inside(city):
    """Each cluster: the unit's sensors in its H3 cell, the worst state among them and how many are in alarm, as a
    groupby of the sensors by cell says; with the cells kept from an earlier generation, the same clusters."""
    import h3.api.numpy_int as h3_int
    states = sources.sensor_states(city)
    # Every state present, so the worst of a mixed cell is tested (the test city's alarms give some).
    states = states.assign(state=np.resize(["good", "watch", "warning", "critical"], len(states)))
    district = _district(city)
    rows = states[sources.unit_grid_mask(city, district, states)]
    cells = [h3_int.latlng_to_cell(lat, lon, 7) for lat, lon in zip(rows["lat"], rows["lon"])]
    rank = rows["state"].map(sources.STATE_RANK)
    expected = (rows.assign(cell=cells, rank=rank).groupby("cell")
                .agg(count=("sensor_id", "size"), rank=("rank", "max"), alarms=("rank", lambda r: int((r >= 3).sum()))))
    clusters = sources.sensor_clusters(city, states, district, 7)
    assert [c["count"] for c in clusters] == expected["count"].tolist() and sum(expected["count"]) == len(rows) > 0
    assert [c["state"] for c in clusters] == [sources.RANKED_STATES[r] for r in expected["rank"]]
    assert [c["tip_value"].split(" · ")[1] for c in clusters] == [f"{n} in alarm" for n in expected["alarms"]]
    assert expected["count"].max() > 1 and any(c["state"] != "good" for c in clusters)
    kept = {}
    all_cells = sources.sensor_cells(states, 7, kept)
    assert sources.sensor_clusters(city, states, district, 7, all_cells) == clusters
    # The next generation: the same sensors rewritten (new frame, same positions) take the kept cells; moved ones not.
    assert sources.sensor_cells(states.copy(), 7, kept) is all_cells
    moved = states.assign(lat=states["lat"] + 0.05)
    assert sources.sensor_cells(moved, 7, kept) is not all_cells
