"""Building vector tiles: every building in exactly one tile per zoom, geometry exact to the tile grid, decoded by an
independent decoder (mapbox-vector-tile), and the route's answers to bad requests."""
from __future__ import annotations

import json

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon, box

from dashboard.maps.tiles import EXTENT, INDEX_ZOOM, BuildingTiles, tile_bounds, world_xy


def frame_of(geometries, **columns):
    n = len(geometries)
    data = {"building_id": [f"B{i:04d}" for i in range(n)], **columns}
    return gpd.GeoDataFrame(data, geometry=list(geometries), crs="EPSG:4326")


def expected_ring(coords, z, x, y):
    """Tile coordinates of a ring, computed independently of the encoder (and y up, as the decoder returns)."""
    wx, wy = world_xy(np.array([c[0] for c in coords]), np.array([c[1] for c in coords]))
    qx = np.floor((wx * 2 ** z - x) * EXTENT + 0.5).astype(int)
    qy = np.floor((wy * 2 ** z - y) * EXTENT + 0.5).astype(int)
    return [[int(a), EXTENT - int(b)] for a, b in zip(qx, qy)]


def tile_containing(lon, lat, z):
    return (z, *BuildingTiles.tile_of(lon, lat, z))


def test_a_tile_decodes_to_its_buildings_with_their_properties():
    footprints = [box(114.0500, 22.5400, 114.0504, 22.5403), box(114.0508, 22.5406, 114.0511, 22.5410)]
    frame = frame_of(footprints, height=[12.5, 80.0], use=["office", "residential"])
    tiles = BuildingTiles.build(frame)
    z, x, y = tile_containing(114.0505, 22.5405, 15)
    data = tiles.encode(z, x, y, {"building_id": frame["building_id"].to_numpy(), "height": frame["height"].to_numpy(),
                                  "use": frame["use"].to_numpy()})
    layer = mapbox_vector_tile.decode(data)["buildings"]
    assert layer["extent"] == EXTENT
    features = sorted(layer["features"], key=lambda f: f["properties"]["building_id"])
    assert [f["properties"] for f in features] == [
        {"building_id": "B0000", "height": 12.5, "use": "office"},
        {"building_id": "B0001", "height": 80.0, "use": "residential"}]
    for feature, footprint in zip(features, footprints):
        assert feature["geometry"]["type"] == "Polygon"
        # The exterior ring, counter-clockwise in lon/lat as MVT wants it (clockwise in tile space).
        ring = shapely.orient_polygons(footprint).exterior.coords
        assert feature["geometry"]["coordinates"][0] == expected_ring(ring, z, x, y)


def test_holes_and_multipolygons_survive():
    outer = [(114.05, 22.54), (114.0512, 22.54), (114.0512, 22.5410), (114.05, 22.5410)]
    hole = [(114.0503, 22.5403), (114.0506, 22.5403), (114.0506, 22.5406), (114.0503, 22.5406)]
    courtyard = Polygon(outer, [hole])
    two_parts = shapely.MultiPolygon([box(114.0520, 22.54, 114.0522, 22.5402), box(114.0524, 22.54, 114.0526, 22.5402)])
    frame = frame_of([courtyard, two_parts])
    tiles = BuildingTiles.build(frame)
    z, x, y = tile_containing(114.0505, 22.5405, 16)
    decoded = {f["properties"]["building_id"]: f["geometry"] for f in mapbox_vector_tile.decode(
        tiles.encode(z, x, y, {"building_id": frame["building_id"].to_numpy()}))["buildings"]["features"]}
    assert decoded["B0000"]["type"] == "Polygon" and len(decoded["B0000"]["coordinates"]) == 2  # outer + hole
    assert decoded["B0001"]["type"] == "MultiPolygon" and len(decoded["B0001"]["coordinates"]) == 2


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(113.8, 114.6), st.floats(22.45, 22.85)), min_size=1, max_size=60),
       st.integers(12, INDEX_ZOOM + 2))
def test_every_building_is_in_exactly_one_tile_per_zoom(centres, z):
    frame = frame_of([box(lon, lat, lon + 0.0003, lat + 0.0002) for lon, lat in centres])
    tiles = BuildingTiles.build(frame)
    seen = []
    for lon, lat in centres:
        z_, x, y = tile_containing(lon + 0.00015, lat + 0.0001, z)
        seen.append(set(tiles.rows_in(z_, x, y).tolist()))
    for position, rows in enumerate(seen):
        assert position in rows
    # Counted over the distinct tiles that hold a centre, each building appears once.
    tiles_used = {tile_containing(lon + 0.00015, lat + 0.0001, z) for lon, lat in centres}
    counts = np.bincount(np.concatenate([tiles.rows_in(*t) for t in tiles_used]), minlength=len(centres))
    assert counts.tolist() == [1] * len(centres)


def test_a_tile_with_nothing_in_it_is_empty():
    tiles = BuildingTiles.build(frame_of([box(114.05, 22.54, 114.0503, 22.5403)]))
    assert tiles.encode(15, 0, 0, {"building_id": np.array(["B0000"])}) == b""
    assert mapbox_vector_tile.decode(b"") == {}


def test_missing_values_are_left_out_not_written_as_nan():
    frame = frame_of([box(114.05, 22.54, 114.0503, 22.5403)], use=[None])
    tiles = BuildingTiles.build(frame)
    z, x, y = tile_containing(114.0501, 22.5401, 15)
    feature = mapbox_vector_tile.decode(tiles.encode(z, x, y, {"building_id": frame["building_id"].to_numpy(),
                                                               "use": frame["use"].to_numpy()}))["buildings"]["features"][0]
    assert feature["properties"] == {"building_id": "B0000"}


def test_buildings_must_be_in_wgs84():
    frame = frame_of([box(0, 0, 10, 10)]).set_crs("EPSG:3857", allow_override=True)
    with pytest.raises(ValueError, match="EPSG:4326"):
        BuildingTiles.build(frame)


def test_tile_bounds_round_trip():
    west, south, east, north = tile_bounds(15, 26766, 14272)
    assert BuildingTiles.tile_of((west + east) / 2, (south + north) / 2, 15) == (26766, 14272)


# --- the route --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from app import create_app
    from sample_data.__main__ import build
    path = tmp_path_factory.mktemp("tiles") / "city.sqlite"
    build("test", f"sqlite:///{path}", progress=False)
    return create_app(f"sqlite:///{path}").server.test_client()


def densest_tile(z):
    from dashboard import services
    buildings = services.get().city()["buildings"]
    centres = shapely.centroid(buildings.geometry.to_numpy())
    keys = [BuildingTiles.tile_of(p.x, p.y, z) for p in centres]
    values, counts = np.unique(np.array(keys), axis=0, return_counts=True)
    x, y = values[counts.argmax()]
    return z, int(x), int(y), int(counts.max())


@pytest.mark.parametrize("color", ["use", "state", "alarms"])
def test_the_route_serves_decodable_tiles(client, color):
    z, x, y, count = densest_tile(15)
    response = client.get(f"/tiles/buildings/{z}/{x}/{y}.pbf?color={color}&indicator=on_time_rate&window=7d")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    features = mapbox_vector_tile.decode(response.data)["buildings"]["features"]
    assert len(features) >= count * 0.9  # centroid vs bbox centre may move a building across an edge
    assert {"building_id", "height", "r", "g", "b"} <= set(features[0]["properties"])
    # Revalidation: the same version answers 304.
    again = client.get(f"/tiles/buildings/{z}/{x}/{y}.pbf?color={color}",
                       headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code in (200, 304)


def test_low_zoom_tiles_are_empty(client):
    assert client.get("/tiles/buildings/10/836/445.pbf").data == b""


@pytest.mark.parametrize("query, message", [
    ("color=height", "unknown color"), ("indicator=nope", "unknown indicator"), ("window=1y", "unknown window")])
def test_bad_tile_requests_say_what_is_wrong(client, query, message):
    response = client.get(f"/tiles/buildings/15/26766/14272.pbf?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_tiles_outside_the_world_are_not_found(client):
    assert client.get("/tiles/buildings/3/9/1.pbf").status_code == 404


def test_the_mvt_worker_is_served_locally(client):
    response = client.get("/_citytwin/workers/mvt-worker.js")
    assert response.status_code == 200
    assert b"loaders.gl" in response.data or b"mvt" in response.data


def test_a_tile_made_for_one_generation_is_never_served_for_another(tmp_path):
    """A sensor in a building reports a fault: the next generation colours that building as "sensor down", so the
    "alarms" tiles get a new version (URL ``v`` and ETag): the old ETag no longer revalidates and the tile holds the
    new colour. The "use" colouring did not change, so its tiles keep their version (and stay cached)."""
    from app import create_app
    from dashboard import services
    from dashboard.maps.routes import colouring_version
    from dashboard.settings import Settings
    from layers.ingest import Batch, BatchWriter
    from layers.store import Store
    from sample_data.__main__ import build

    url = f"sqlite:///{tmp_path / 'city.sqlite'}"
    build("test", url, progress=False)
    client = create_app(url, settings=Settings(version_check_seconds=0)).server.test_client()
    service = services.get()
    gen = service.generation()
    sensors = service.sensor_states()
    healthy = sensors[sensors["building_id"].fillna("").ne("") & sensors["status"].eq("online")]
    sensor = healthy.iloc[0]
    building = service.city()["buildings"].set_index("building_id").loc[sensor["building_id"]]
    centre = building.geometry.representative_point()
    z, x, y = tile_containing(centre.x, centre.y, 15)

    def tile(color, etag=None):
        answer = client.get(f"/tiles/buildings/{z}/{x}/{y}.pbf?color={color}&indicator=on_time_rate&window=7d",
                            headers={"If-None-Match": etag} if etag else {})
        colour = None
        if answer.status_code == 200:
            features = mapbox_vector_tile.decode(answer.data)["buildings"]["features"]
            colour = next((f["properties"]["r"], f["properties"]["g"], f["properties"]["b"]) for f in features
                          if f["properties"]["building_id"] == sensor["building_id"])
        return answer, colour

    def layer_url():
        from dashboard.maps.registry import MAP_LAYERS, MapView
        view = service.unit_view(None, "on_time_rate", "7d")
        layer = MAP_LAYERS["buildings"].build(MapView(service, view, "on_time_rate", "7d", "alarms"))[0]
        return json.dumps(layer)

    url_before = layer_url()
    before, colour_before = tile("alarms")
    use_before, _ = tile("use")
    assert before.headers["ETag"].strip('"') == colouring_version(gen, "alarms", "on_time_rate", "7d")
    assert tile("alarms", before.headers["ETag"])[0].status_code == 304  # same generation: revalidated

    reported = int(service.city()["sensors"]["last_seen_at"].max().timestamp()) + 60
    BatchWriter(Store(url), source="test").write(Batch(statuses=[(sensor["sensor_id"], reported, "fault")]))
    new = service.generation()
    assert new is not gen and new.key != gen.key

    after, colour_after = tile("alarms", before.headers["ETag"])
    assert after.status_code == 200  # the old generation's ETag is not this generation's
    assert after.headers["ETag"] != before.headers["ETag"]
    assert colour_after != colour_before
    # The map's building layer asks for the new tiles (deck.gl keeps tiles by URL: the same URL would show the
    # old colours until a reload).
    assert layer_url() != url_before and after.headers["ETag"].strip('"') in layer_url()
    assert tile("use", use_before.headers["ETag"])[0].status_code == 304  # nothing about the use changed


def test_an_index_kept_as_frames_cuts_the_same_tiles():
    outer = [(114.05, 22.54), (114.0512, 22.54), (114.0512, 22.5410), (114.05, 22.5410)]
    hole = [(114.0503, 22.5403), (114.0506, 22.5403), (114.0506, 22.5406), (114.0503, 22.5406)]
    footprints = [Polygon(outer, [hole]), box(114.0600, 22.5500, 114.0603, 22.5503),
                  shapely.MultiPolygon([box(114.0520, 22.54, 114.0522, 22.5402), box(114.0524, 22.54, 114.0526, 22.5402)])]
    frame = frame_of(footprints)
    built = BuildingTiles.build(frame)
    kept = BuildingTiles.from_frames({part: table.copy() for part, table in built.to_frames().items()})
    for name in ("order", "keys", "ring_offsets", "ring_starts", "xs", "ys"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(built, name))
    properties = {"building_id": frame["building_id"].to_numpy()}
    for lon, lat in ((114.0505, 22.5405), (114.06, 22.55)):
        tile = tile_containing(lon, lat, 15)
        assert kept.encode(*tile, properties) == built.encode(*tile, properties)
