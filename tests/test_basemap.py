"""The city's own vector base map: a PMTiles file (CITYTWIN_BASEMAP_PMTILES) checked at start, served by our server
as /basemap/{z}/{x}/{y}.mvt, and drawn by the map's base layer (dashboard/maps/basemap.py, routes.py, registry.py).
The PMTiles files are built here, from a few features (tests/basemap_fixture.py)."""
from __future__ import annotations

import gzip
import json
from types import SimpleNamespace
from unittest import mock

import mapbox_vector_tile
import pytest
from flask import Flask
from pmtiles.tile import Compression

from dashboard import services
from dashboard.maps import routes
from dashboard.maps.basemap import PMTilesBaseMap
from dashboard.maps.tiles import BuildingTiles
from dashboard.settings import Settings
from tests.basemap_fixture import BOUNDS, build_pmtiles, tile_count

CENTRE = ((BOUNDS[0] + BOUNDS[2]) / 2, (BOUNDS[1] + BOUNDS[3]) / 2)


@pytest.fixture(scope="module")
def pmtiles_path(tmp_path_factory):
    return build_pmtiles(tmp_path_factory.mktemp("basemap") / "city.pmtiles")


@pytest.fixture
def client(pmtiles_path, monkeypatch):
    """Only the map's routes, over a stand-in for the services that owns the base map."""
    archive = PMTilesBaseMap.open(pmtiles_path)
    monkeypatch.setattr(services, "_services", SimpleNamespace(basemap=lambda: archive))
    server = Flask(__name__)
    routes.register(server)
    return server.test_client()


def test_the_archive_reads_its_header_layers_and_tiles(pmtiles_path):
    archive = PMTilesBaseMap.open(pmtiles_path)
    assert (archive.min_zoom, archive.max_zoom) == (8, 14)
    assert archive.bounds == pytest.approx(BOUNDS)
    assert archive.layer_names == ("earth", "water", "park", "roads", "buildings")
    assert archive.encoding == "gzip"
    found = sum(archive.tile(z, x, y) is not None for z in range(8, 15)
                for x, y in [BuildingTiles.tile_of(*CENTRE, z)])
    assert found == 7
    assert tile_count() > 100  # the fixture is a pyramid, not one tile


def test_a_tile_is_served_as_stored_and_decodes_to_its_layers(client):
    x, y = BuildingTiles.tile_of(*CENTRE, 12)
    response = client.get(f"/basemap/12/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    assert response.headers["Content-Encoding"] == "gzip"
    assert "max-age" in response.headers["Cache-Control"] and response.headers["ETag"]
    layers = mapbox_vector_tile.decode(gzip.decompress(response.data))
    assert {"earth", "water", "park", "roads"} <= set(layers)
    assert layers["roads"]["features"][0]["geometry"]["type"] == "LineString"


def test_a_browser_without_gzip_gets_the_tile_unpacked(client):
    x, y = BuildingTiles.tile_of(*CENTRE, 13)
    response = client.get(f"/basemap/13/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    assert "park" in mapbox_vector_tile.decode(response.data)


def test_uncompressed_archives_are_served_too(tmp_path, monkeypatch):
    archive = PMTilesBaseMap.open(build_pmtiles(tmp_path / "plain.pmtiles", zooms=range(10, 12),
                                                compression=Compression.NONE))
    assert archive.encoding is None
    monkeypatch.setattr(services, "_services", SimpleNamespace(basemap=lambda: archive))
    server = Flask(__name__)
    routes.register(server)
    x, y = BuildingTiles.tile_of(*CENTRE, 11)
    response = server.test_client().get(f"/basemap/11/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in response.headers
    assert "water" in mapbox_vector_tile.decode(response.data)


@pytest.mark.parametrize("path", ["/basemap/5/3/3.mvt", "/basemap/16/0/0.mvt", "/basemap/12/0/0.mvt"])
def test_a_tile_the_file_does_not_have_is_empty(client, path):
    """Outside its zooms, outside its bounds: an empty tile (deck.gl draws nothing there and logs no error)."""
    response = client.get(path)
    assert response.status_code == 200 and response.data == b""


@pytest.mark.parametrize("path, message", [
    ("/basemap/3/9/1.mvt", "no tile 3/9/1"),
    ("/basemap/3/1/8.mvt", "no tile 3/1/8"),
    ("/basemap/31/0/0.mvt", "no tile 31/0/0"),
    (f"/basemap/{10 ** 30}/0/0.mvt", "no tile"),  # never computes 2 ** 10 ** 30
])
def test_addresses_outside_the_tile_pyramid_are_refused_with_a_reason(client, path, message):
    response = client.get(path)
    assert response.status_code == 404
    assert message in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/basemap/-1/0/0.mvt", "/basemap/a/b/c.mvt", "/basemap/1/0/0.pbf",
                                  "/basemap/1/0/0/0.mvt", "/basemap/../../etc/passwd"])
def test_malformed_addresses_are_not_found(client, path):
    assert client.get(path).status_code == 404


def test_without_a_base_map_file_every_tile_says_so(monkeypatch):
    monkeypatch.setattr(services, "_services", SimpleNamespace(basemap=lambda: None))
    server = Flask(__name__)
    routes.register(server)
    response = server.test_client().get("/basemap/12/3346/1784.mvt")
    assert response.status_code == 404
    assert "CITYTWIN_BASEMAP_PMTILES" in response.get_data(as_text=True)


def test_the_setting_is_checked_at_start(pmtiles_path, tmp_path):
    assert Settings.from_environ({"CITYTWIN_BASEMAP_PMTILES": str(pmtiles_path)}).basemap_pmtiles == str(
        pmtiles_path)
    assert Settings.from_environ({}).basemap_pmtiles is None
    not_pmtiles = tmp_path / "city.mbtiles"
    not_pmtiles.write_bytes(b"SQLite format 3\x00" + bytes(200))
    raster = bytearray(pmtiles_path.read_bytes())
    raster[99] = 2  # tile type PNG
    (tmp_path / "raster.pmtiles").write_bytes(bytes(raster))
    zstd = bytearray(pmtiles_path.read_bytes())
    zstd[98] = 4  # tiles compressed with zstd
    (tmp_path / "zstd.pmtiles").write_bytes(bytes(zstd))
    version2 = bytearray(pmtiles_path.read_bytes())
    version2[7] = 2
    (tmp_path / "v2.pmtiles").write_bytes(bytes(version2))
    for path, reason in [(tmp_path / "missing.pmtiles", "does not exist"),
                         (tmp_path, "does not exist or is not a file"),
                         (not_pmtiles, "is not a PMTiles archive"),
                         (tmp_path / "raster.pmtiles", "PNG tiles, not vector tiles"),
                         (tmp_path / "zstd.pmtiles", "ZSTD"),
                         (tmp_path / "v2.pmtiles", "version 2, not 3")]:
        with pytest.raises(SystemExit) as stopped:
            Settings.from_environ({"CITYTWIN_BASEMAP_PMTILES": str(path)})
        message = str(stopped.value)
        assert message.startswith("error: CITYTWIN_BASEMAP_PMTILES=") and reason in message, message
        assert "Traceback" not in message


@pytest.mark.parametrize("value", ["tiles.local/{z}/{x}/{y}.png", "http://tiles.local/{z}/{x}.png"])
def test_a_raster_tile_url_must_name_z_x_and_y(value):
    with pytest.raises(SystemExit, match="CITYTWIN_BASEMAP_URL=.*is not a tile URL"):
        Settings.from_environ({"CITYTWIN_BASEMAP_URL": value})


def test_the_base_layer_draws_the_vector_map_and_keeps_the_district_outlines(pmtiles_path):
    """The registry's base layer with a PMTiles file: the vector tiles from our route (named by the file's
    version), styled by layer name, then the districts as outlines only; no schematic roads."""
    from dashboard.maps.registry import MAP_LAYERS, MapView

    archive = PMTilesBaseMap.open(pmtiles_path)
    city = SimpleNamespace(layers={"roads": object()})
    fake = SimpleNamespace(basemap=lambda: archive, settings=Settings(),
                           base_geojson=lambda: {"type": "FeatureCollection", "features": []})
    view = MapView(fake, SimpleNamespace(code="440304", level="district"), "on_time_rate", "7d")
    with mock.patch.object(MapView, "city", new=property(lambda self: city)):  # the city of the stand-in
        layers = MAP_LAYERS["base"].build(view)
    ids = [layer["id"] for layer in layers]
    assert ids == ["basemap-vector", "base-land"]
    vector = layers[0]
    assert vector["@@type"] == "MVTLayer" and vector["data"].startswith("/basemap/{z}/{x}/{y}.mvt?v=")
    assert (vector["minZoom"], vector["maxZoom"]) == (8, 14) and vector["extent"] == pytest.approx(list(BOUNDS))
    assert "properties.layerName === 'water'" in vector["getFillColor"]
    assert layers[1]["getFillColor"][3] == 0  # the drawn land is transparent over the city's own map
    json.dumps(layers)  # what goes to the browser is plain JSON

