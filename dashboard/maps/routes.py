"""HTTP routes the map needs beside Dash's callbacks: building vector tiles, the city's own vector base map, and the
MVT worker served locally.

``GET /tiles/buildings/{z}/{x}/{y}.pbf?color=use|state|alarms&indicator=…&window=…`` returns one Mapbox Vector
Tile (layer ``buildings``; properties ``building_id``, ``height``, ``use``, ``r``, ``g``, ``b``). Tiles below
:data:`~dashboard.maps.tiles.MIN_ZOOM` are empty: the map shows aggregates there. A tile is cached until the city
is reloaded; its ETag is the city's version so that a browser revalidates cheaply.

``GET /basemap/{z}/{x}/{y}.mvt`` returns one tile of the PMTiles file named by ``CITYTWIN_BASEMAP_PMTILES``
(dashboard/maps/basemap.py), as stored (gzip-compressed tiles go out with ``Content-Encoding: gzip``); a tile the
file does not have is an empty tile (200, no body), an address outside the tile pyramid a 404 that names it, and
without a base map file every tile is a 404 that says so. Tiles of a file do not change: a browser keeps them a
day, and the layer's URL names the file's version.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
from flask import Flask, Response, abort, request, send_file
from werkzeug.exceptions import NotFound

from dashboard import services
from dashboard.maps import sources
from dashboard.maps.tiles import MIN_ZOOM, BuildingTiles
from metrics.registry import INDICATORS
from metrics.spec import WINDOWS

STATIC = Path(__file__).parent / "static"
TILE_CACHE_SIZE = 4096
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


class TileCache:
    """The last few thousand tiles served, by (city version, tile, colouring)."""

    def __init__(self, size: int = TILE_CACHE_SIZE):
        self.size = size
        self._tiles: OrderedDict = OrderedDict()

    def get(self, key):
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
        return tile

    def put(self, key, tile: bytes) -> None:
        self._tiles[key] = tile
        if len(self._tiles) > self.size:
            self._tiles.popitem(last=False)


_cache = TileCache()


def building_tile(service, z: int, x: int, y: int, color: str, indicator: str, window: str) -> bytes:
    """The MVT bytes of one building tile (see the module docstring)."""
    return tile_index(service).encode(z, x, y, tile_properties(service, color, indicator, window))


def tile_index(service) -> BuildingTiles:
    return service.memo("building_tiles", lambda: BuildingTiles.build(service.city()["buildings"]))


def tile_properties(service, color: str, indicator: str, window: str) -> dict[str, np.ndarray]:
    """The tiles' properties for a colouring, remembered (only "state" depends on the indicator and window)."""
    key = ("building_properties", color) + ((indicator, window) if color == "state" else ())
    return service.memo(key, lambda: building_properties(service, color, indicator, window))


def building_properties(service, color: str, indicator: str, window: str) -> dict[str, np.ndarray]:
    city = service.city()
    buildings = city["buildings"]
    grid_states = None
    states = None
    if color == "state":
        table = service.table(window)
        rows = table[(table["indicator"] == indicator) & (table["level"] == "grid")]
        grid_states = rows.set_index("code")["state"]
    elif color == "alarms":
        states = service.sensor_states()
    colors = sources.building_colors(city, color, grid_states=grid_states, states=states)
    return {"building_id": buildings["building_id"].to_numpy(), "height": buildings["height_m"].round(1).to_numpy(),
            "use": buildings["use"].to_numpy(), "r": colors[:, 0], "g": colors[:, 1], "b": colors[:, 2]}


def warm(service, indicator: str = "on_time_rate", window: str = "7d") -> None:
    """Build the tile index, the three colourings (the default indicator's for "state") and the order cells, so
    that the first tile and the first hexagons do not wait for them (2–4 s each at the city scale)."""
    tile_index(service)
    for color in sources.BUILDING_COLOR_MODES:
        tile_properties(service, color, indicator, window)
    if "orders" in service.city().layers:
        service.order_cells()
    service.sensor_states()


def register(server: Flask) -> None:
    @server.get("/tiles/buildings/<int:z>/<int:x>/<int:y>.pbf")
    def buildings_tile(z: int, x: int, y: int):
        color = request.args.get("color", "use")
        indicator = request.args.get("indicator", "on_time_rate")
        window = request.args.get("window", "7d")
        if color not in sources.BUILDING_COLOR_MODES:
            abort(400, f"unknown color {color!r}; expected one of {', '.join(sources.BUILDING_COLOR_MODES)}")
        if indicator not in INDICATORS:
            abort(400, f"unknown indicator {indicator!r}")
        if window not in WINDOWS:
            abort(400, f"unknown window {window!r}; expected one of {', '.join(WINDOWS)}")
        if not (0 <= z <= 24 and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
            abort(404, f"no tile {z}/{x}/{y}")
        service = services.get()
        city = service.city()
        etag = '"' + hashlib.sha1(repr((city.version_key, color, indicator, window)).encode()).hexdigest()[:16] + '"'
        if request.if_none_match and etag.strip('"') in request.if_none_match:
            return Response(status=304, headers={"ETag": etag})
        key = (city.version_key, z, x, y, color, indicator if color == "state" else None,
               window if color == "state" else None)
        tile = _cache.get(key)
        if tile is None:
            tile = b"" if z < MIN_ZOOM else building_tile(service, z, x, y, color, indicator, window)
            _cache.put(key, tile)
        return Response(tile, mimetype=MVT_MEDIA_TYPE, headers={"ETag": etag, "Cache-Control": "no-cache"})

    @server.get("/basemap/<int:z>/<int:x>/<int:y>.mvt")
    def basemap_tile(z: int, x: int, y: int):
        return basemap_answer(services.get().basemap(), z, x, y, request.accept_encodings)

    @server.get("/_citytwin/workers/mvt-worker.js")
    def mvt_worker():
        return send_file(STATIC / "mvt-worker.js", mimetype="text/javascript", max_age=86400)


BASEMAP_CACHE = "public, max-age=86400"


def basemap_answer(basemap, z: int, x: int, y: int, accept_encodings) -> Response:
    """The answer to ``/basemap/z/x/y.mvt`` (see the module docstring)."""
    if basemap is None:
        raise NotFound("no base map: CITYTWIN_BASEMAP_PMTILES names no PMTiles file (docs/basemap.md)")
    try:
        data = basemap.tile(z, x, y)
    except ValueError as error:  # outside the pyramid: x or y beyond 2**z, or z beyond any archive's
        raise NotFound(str(error)) from None
    headers = {"Cache-Control": BASEMAP_CACHE, "ETag": f'"{basemap.version}-{z}-{x}-{y}"', "Vary": "Accept-Encoding"}
    if data is None:
        return Response(b"", mimetype=MVT_MEDIA_TYPE, headers=headers)
    if basemap.encoding and accept_encodings[basemap.encoding]:
        headers["Content-Encoding"] = basemap.encoding  # as stored: no work for the server
    else:
        data = basemap.decoded(data)
    return Response(data, mimetype=MVT_MEDIA_TYPE, headers=headers)
