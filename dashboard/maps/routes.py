"""HTTP routes the map needs beside Dash's callbacks: building vector tiles, and the MVT worker served locally.

``GET /tiles/buildings/{z}/{x}/{y}.pbf?color=use|state|alarms&indicator=…&window=…`` returns one Mapbox Vector
Tile (layer ``buildings``; properties ``building_id``, ``height``, ``use``, ``r``, ``g``, ``b``). Tiles below
:data:`~dashboard.maps.tiles.MIN_ZOOM` are empty: the map shows aggregates there. A tile is cached until the city
is reloaded; its ETag is the city's version so that a browser revalidates cheaply.

An account bound to a unit gets only the buildings of that unit, also in a tile that straddles its edge: its tiles
come from an index of its own buildings, and the tile cache and the ETag are keyed by the scope, so a tile cut for
one scope is never served to another (nor the city's to a district).
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
from flask import Flask, Response, abort, request, send_file

from dashboard import auth, services
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


def building_tile(service, z: int, x: int, y: int, color: str, indicator: str, window: str,
                  scope: str | None = None) -> bytes:
    """The MVT bytes of one building tile (see the module docstring); ``scope``: only that unit's buildings."""
    return tile_index(service, scope).encode(z, x, y, tile_properties(service, color, indicator, window, scope))


def scope_rows(service, scope: str) -> np.ndarray:
    """The positions of the buildings inside unit ``scope`` (in the city's building frame)."""
    def compute():
        grid_codes = service.city()["buildings"]["grid_code"]
        return np.flatnonzero(grid_codes.isin(service.city().units_within(scope)).to_numpy())
    return service.memo(("building_scope_rows", scope), compute)


def tile_index(service, scope: str | None = None) -> BuildingTiles:
    if scope is None:
        return service.memo("building_tiles", lambda: BuildingTiles.build(service.city()["buildings"]))
    return service.memo(("building_tiles", scope), lambda: BuildingTiles.build(
        service.city()["buildings"].iloc[scope_rows(service, scope)]))


def tile_properties(service, color: str, indicator: str, window: str,
                    scope: str | None = None) -> dict[str, np.ndarray]:
    """The tiles' properties for a colouring, remembered (only "state" depends on the indicator and window); for a
    scope, aligned with its own buildings."""
    key = ("building_properties", color) + ((indicator, window) if color == "state" else ())
    city_wide = service.memo(key, lambda: building_properties(service, color, indicator, window))
    if scope is None:
        return city_wide
    rows = scope_rows(service, scope)
    return service.memo(key + ("scope", scope), lambda: {name: values[rows] for name, values in city_wide.items()})


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
        scope = auth.scope_unit()  # the gate refused a unit outside it; here the tile is cut at its edge
        etag = '"' + hashlib.sha1(repr((city.version_key, color, indicator, window, scope)).encode()
                                  ).hexdigest()[:16] + '"'
        if request.if_none_match and etag.strip('"') in request.if_none_match:
            return Response(status=304, headers={"ETag": etag})
        key = (city.version_key, scope, z, x, y, color, indicator if color == "state" else None,
               window if color == "state" else None)
        tile = _cache.get(key)
        if tile is None:
            tile = b"" if z < MIN_ZOOM else building_tile(service, z, x, y, color, indicator, window, scope)
            _cache.put(key, tile)
        return Response(tile, mimetype=MVT_MEDIA_TYPE, headers={"ETag": etag, "Cache-Control": "private, no-cache"})

    @server.get("/_citytwin/workers/mvt-worker.js")
    def mvt_worker():
        return send_file(STATIC / "mvt-worker.js", mimetype="text/javascript", max_age=86400)
