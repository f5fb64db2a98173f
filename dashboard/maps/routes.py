"""HTTP routes the map needs beside Dash's callbacks: building vector tiles, the city's own vector base map, and the
MVT worker served locally.

``GET /tiles/buildings/{z}/{x}/{y}.pbf?color=use|state|alarms&indicator=…&window=…`` returns one Mapbox Vector
Tile (layer ``buildings``; properties ``building_id``, ``height``, ``use``, ``r``, ``g``, ``b``). Tiles below
:data:`~dashboard.maps.tiles.MIN_ZOOM` are empty: the map shows aggregates there. A tile is cached until the city
changes its colours; its ETag (and the ``v`` in its URL) names the buildings' version and colours, so that a browser
revalidates cheaply and a new generation that recoloured the buildings is asked for again.

``GET /basemap/{z}/{x}/{y}.mvt`` returns one tile of the PMTiles file named by ``CITYTWIN_BASEMAP_PMTILES``
(dashboard/maps/basemap.py), as stored (gzip-compressed tiles go out with ``Content-Encoding: gzip``); a tile the
file does not have is an empty tile (200, no body), an address outside the tile pyramid a 404 that names it, and
without a base map file every tile is a 404 that says so. Tiles of a file do not change: a browser keeps them a
day, and the layer's URL names the file's version.

An account bound to a unit gets only the buildings of that unit, also in a tile that straddles its edge: its tiles
come from an index of its own buildings, and the tile cache and the ETag are keyed by the scope too, so a tile cut for
one scope is never served to another (nor the city's to a district).
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
from flask import Flask, Response, abort, request, send_file
from werkzeug.exceptions import NotFound

from dashboard import auth, services
from dashboard.services import kept, remembered
from layers.snapshot import read_computed, write_computed
from dashboard.maps import sources
from dashboard.maps.tiles import MIN_ZOOM, BuildingTiles
from metrics.registry import INDICATORS
from metrics.spec import WINDOWS

STATIC = Path(__file__).parent / "static"
TILE_CACHE_SIZE = 4096
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


class TileCache:
    """The last few thousand tiles served, by (colouring version, tile)."""

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


def building_tile(gen, z: int, x: int, y: int, color: str, indicator: str, window: str,
                  scope: str | None = None) -> bytes:
    """The MVT bytes of one building tile of generation ``gen`` (see the module docstring); ``scope``: only that
    unit's buildings."""
    return tile_index(gen, scope).encode(z, x, y, tile_properties(gen, color, indicator, window, scope))


def scope_rows(gen, scope: str) -> np.ndarray:
    """The positions of the buildings inside unit ``scope`` (in the city's building frame)."""
    def compute():
        grid_codes = gen.city["buildings"]["grid_code"]
        return np.flatnonzero(grid_codes.isin(gen.city.units_within(scope)).to_numpy())
    return kept(gen.memo, "building_scope_rows", scope, compute)


def unit_footprints(gen, code: str) -> sources.Footprints:
    """The outlines of unit ``code``'s buildings (aligned with :func:`scope_rows`), for the map of a small unit."""
    return kept(gen.memo, "unit_footprints", code, lambda: sources.footprints(
        gen.city["buildings"].geometry.values[scope_rows(gen, code)]))


def tile_index(gen, scope: str | None = None) -> BuildingTiles:
    if scope is None:
        return remembered(gen.memo, "building_tiles", lambda: BuildingTiles.build(gen.city["buildings"]))
    return kept(gen.memo, "scoped_building_tiles", scope, lambda: BuildingTiles.build(
        gen.city["buildings"].iloc[scope_rows(gen, scope)]))


def _colouring_key(name: str, color: str, indicator: str, window: str) -> tuple:
    # Only "state" depends on the indicator and window; "use" depends on the buildings alone, so its memos carry
    # over to the next generation while the buildings are unchanged (services.MEMO_LAYERS).
    return (f"{name}:{color}",) + ((indicator, window) if color == "state" else ())


def tile_properties(gen, color: str, indicator: str, window: str,
                    scope: str | None = None) -> dict[str, np.ndarray]:
    """The tiles' properties for a colouring in generation ``gen``, remembered there; for a scope, aligned with its
    own buildings."""
    key = _colouring_key("building_properties", color, indicator, window)
    city_wide = remembered(gen.memo, key, lambda: building_properties(gen, color, indicator, window))
    if scope is None:
        return city_wide
    rows = scope_rows(gen, scope)
    return kept(gen.memo, f"scoped_{key[0]}", (key[1:], scope),
                lambda: {name: values[rows] for name, values in city_wide.items()})


def colouring_version(gen, color: str, indicator: str, window: str) -> str:
    """A short name for what the tiles of a colouring hold in ``gen``: the buildings' version and the colours
    themselves. It is in the tiles' URL and ETag, so a new generation that recoloured the buildings (an alarm, an
    indicator's state at the clock) makes the map ask for new tiles, and one that did not keeps them cached."""
    def compute() -> str:
        props = tile_properties(gen, color, indicator, window)
        digest = hashlib.sha1(repr((gen.city.versions.get("buildings"), color, indicator if color == "state" else
                                    None, window if color == "state" else None)).encode())
        for name in ("r", "g", "b"):
            digest.update(np.ascontiguousarray(props[name]).tobytes())
        return digest.hexdigest()[:16]

    return remembered(gen.memo, _colouring_key("building_colouring_version", color, indicator, window), compute)


def building_properties(gen, color: str, indicator: str, window: str) -> dict[str, np.ndarray]:
    city = gen.city
    buildings = city["buildings"]
    grid_states = None
    states = None
    if color == "state":
        table = services.Services.table_of(gen, window)
        rows = table[(table["indicator"] == indicator) & (table["level"] == "grid")]
        grid_states = rows.set_index("code")["state"]
    elif color == "alarms":
        states = services.Services.sensor_states_of(gen)
    colors = sources.building_colors(city, color, grid_states=grid_states, states=states)
    return {"building_id": buildings["building_id"].to_numpy(), "height": buildings["height_m"].round(1).to_numpy(),
            "use": buildings["use"].to_numpy(), "r": colors[:, 0], "g": colors[:, 1], "b": colors[:, 2]}


TILE_INDEX_CODE = hashlib.sha1((Path(__file__).parent / "tiles.py").read_bytes()).hexdigest()[:12]


def _tile_index_tag(gen) -> str:
    """What a kept tile index was made from: the buildings' version and count, and the code that cuts tiles."""
    return repr((gen.city.versions.get("buildings"), len(gen.city["buildings"]), TILE_INDEX_CODE))


def restore_tile_index(service, gen) -> None:
    """The city's tile index as a start before kept it beside the snapshot (:func:`keep_tile_index`), if it was
    made from these same buildings by this same code: 5-6 s of a start at the city scale, before the workers fork."""
    if not service.settings.snapshots or "building_tiles" in gen.memo:
        return
    frames = {part: read_computed(service.store, f"tile-index-{part}", _tile_index_tag(gen))
              for part in ("buildings", "rings", "vertices")}
    if all(frame is not None for frame in frames.values()):
        remembered(gen.memo, "building_tiles", lambda: BuildingTiles.from_frames(frames))


def keep_tile_index(service, gen) -> None:
    """Keep the city's tile index beside its snapshot for the next start (nothing if it was kept already)."""
    if not service.settings.snapshots:
        return
    for part, frame in tile_index(gen).to_frames().items():
        write_computed(service.store, f"tile-index-{part}", frame, _tile_index_tag(gen))


def warm(service, indicator: str = "on_time_rate", window: str = "7d") -> None:
    """Build the tile index (or read it from beside the snapshot), the three colourings (the default indicator's
    for "state") and the order cells, so that the first tile and the first hexagons do not wait for them (2–4 s
    each at the city scale)."""
    gen = service.generation()
    restore_tile_index(service, gen)
    tile_index(gen)
    for color in sources.BUILDING_COLOR_MODES:
        colouring_version(gen, color, indicator, window)
    if "orders" in gen.city.layers:
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
        # One generation for the whole answer: the ETag names what the tile holds in it (and for whom), so an
        # answer made for one generation or scope is never taken for another's (the URL's ``v`` is the colouring's
        # name, see registry.building_tile_url).
        gen = services.get().generation()
        scope = auth.scope_unit()  # the gate refused a unit outside it; here the tile is cut at its edge
        version = colouring_version(gen, color, indicator, window)
        etag = '"' + (version if scope is None else
                      hashlib.sha1(repr((version, scope)).encode()).hexdigest()[:16]) + '"'
        if request.if_none_match and etag.strip('"') in request.if_none_match:
            return Response(status=304, headers={"ETag": etag})
        key = (version, scope, z, x, y)
        tile = _cache.get(key)
        if tile is None:
            tile = b"" if z < MIN_ZOOM else building_tile(gen, z, x, y, color, indicator, window, scope)
            _cache.put(key, tile)
        return Response(tile, mimetype=MVT_MEDIA_TYPE, headers={"ETag": etag, "Cache-Control": "private, no-cache"})

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
