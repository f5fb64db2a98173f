"""Mapbox Vector Tiles of the city's buildings, cut on request from an in-memory index.

640,000 footprints cannot go through a callback (237 MB of GeoJSON); deck.gl's ``MVTLayer`` instead asks the app for
the tiles in view, ``/tiles/buildings/{z}/{x}/{y}.pbf``, each a few hundred kB at most.

How a tile is cut fast: each building belongs to exactly one tile per zoom, the one holding its bounding-box centre
(no clipping, and no building drawn twice where it straddles an edge: MVT allows coordinates outside the extent).
The buildings are sorted once by the Morton code of their tile at :data:`INDEX_ZOOM`, so every tile at that zoom or
below is one contiguous run of the sorted arrays, found by two binary searches. The ring coordinates are kept as
Web-Mercator world coordinates; a tile quantises its run in one numpy pass and writes the MVT geometry commands
vectorised. Only the protobuf messages are built per feature.

This module is pure (numpy, shapely, protobuf): the route that serves tiles lives in ``dashboard/maps/routes.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2

EXTENT = 4096
INDEX_ZOOM = 16
MIN_ZOOM = 15
"""Below this zoom the map shows aggregates, not buildings (as Mapbox's styles start their 3D buildings at 15). At
14 a street's view drew tens of thousands of extruded buildings: with software WebGL each frame of them took 1-2 s and
the page settled after 19-22 s, against 7-9 s with the street's communities alone (bench/browser.py, city scale)."""

_MOVE_TO, _LINE_TO, _CLOSE_PATH = 1, 2, 7


def _command(command: int, count: int) -> int:
    return (count << 3) | command


def _zigzag(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.int64)
    return (values << 1) ^ (values >> 63)


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Interleave zeros between the bits of 16-bit integers (the Morton-code helper)."""
    v = v.astype(np.uint64) & np.uint64(0xFFFF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
    v = (v | (v << np.uint64(1))) & np.uint64(0x55555555)
    return v


def morton(tile_x: np.ndarray, tile_y: np.ndarray) -> np.ndarray:
    return _spread_bits(tile_x) | (_spread_bits(tile_y) << np.uint64(1))


def world_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Web-Mercator world coordinates in [0, 1) (x east, y south), as tiles count them."""
    lat = np.clip(lat, -85.05112878, 85.05112878)
    x = (np.asarray(lon) + 180.0) / 360.0
    y = (1.0 - np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) / np.pi) / 2.0
    return x, y


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a tile in degrees."""
    n = 2 ** z

    def lat(row):
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)


@dataclass
class BuildingTiles:
    """The index: buildings sorted by their :data:`INDEX_ZOOM` tile, with their rings as flat arrays.

    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> frame = gpd.GeoDataFrame({"building_id": ["a"]}, geometry=[box(114.05, 22.54, 114.0505, 22.5405)],
    ...                          crs="EPSG:4326")
    >>> tiles = BuildingTiles.build(frame)
    >>> tiles.tile_of(114.0502, 22.5402, 15)
    (26766, 14272)
    >>> len(tiles.rows_in(15, 26766, 14272))
    1
    """

    order: np.ndarray  # positions in the source frame, sorted by tile
    keys: np.ndarray  # Morton code of each sorted building's INDEX_ZOOM tile
    ring_offsets: np.ndarray  # per sorted building: its first ring in ring_starts (len n + 1)
    ring_starts: np.ndarray  # per ring: its first vertex in xs/ys (len rings + 1)
    xs: np.ndarray  # world x of every vertex, rings without their closing vertex
    ys: np.ndarray

    @classmethod
    def build(cls, buildings) -> "BuildingTiles":
        if buildings.crs is not None and buildings.crs.to_epsg() != 4326:
            raise ValueError(f"buildings must be in EPSG:4326 for tiling, not {buildings.crs}")
        # MVT wants exterior rings clockwise in tile space (y down), i.e. counter-clockwise in lon/lat.
        geoms = shapely.orient_polygons(np.asarray(buildings.geometry.values), exterior_cw=False)
        bounds = shapely.bounds(geoms)
        cx, cy = world_xy((bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2)
        scale = 2 ** INDEX_ZOOM
        tx = np.clip((cx * scale).astype(np.int64), 0, scale - 1)
        ty = np.clip((cy * scale).astype(np.int64), 0, scale - 1)
        codes = morton(tx, ty)
        order = np.argsort(codes, kind="stable")
        geoms = geoms[order]
        # Rings of every polygon in order (exterior then holes); a multipolygon's parts become separate rings.
        parts, part_of = shapely.get_parts(geoms, return_index=True)
        rings, ring_of_part = shapely.get_rings(parts, return_index=True)
        ring_owner = part_of[ring_of_part]
        coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
        vertices_per_ring = np.bincount(coord_ring, minlength=len(rings))
        keep = np.ones(len(coords), dtype=bool)
        keep[np.cumsum(vertices_per_ring) - 1] = False  # the closing vertex repeats the first: ClosePath does it
        coords = coords[keep]
        ring_starts = np.concatenate([[0], np.cumsum(vertices_per_ring - 1)])
        ring_offsets = np.searchsorted(ring_owner, np.arange(len(geoms) + 1))
        xs, ys = world_xy(coords[:, 0], coords[:, 1])
        return cls(order=order, keys=codes[order], ring_offsets=ring_offsets, ring_starts=ring_starts, xs=xs, ys=ys)

    def __len__(self) -> int:
        return len(self.order)

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """The index as three frames (per building, per ring, per vertex), to be kept beside the city's snapshot:
        building it takes 5-6 s at the city scale, reading it back a fraction of a second."""
        return {"buildings": pd.DataFrame({"order": self.order, "keys": self.keys,
                                           "ring_offsets": self.ring_offsets[:-1]}),
                "rings": pd.DataFrame({"ring_starts": self.ring_starts[:-1]}),
                "vertices": pd.DataFrame({"xs": self.xs, "ys": self.ys})}

    @classmethod
    def from_frames(cls, frames: dict[str, pd.DataFrame]) -> "BuildingTiles":
        """The index :meth:`to_frames` kept (each array's closing entry is the next array's length)."""
        buildings, rings, vertices = frames["buildings"], frames["rings"], frames["vertices"]
        return cls(order=buildings["order"].to_numpy(), keys=buildings["keys"].to_numpy(),
                   ring_offsets=np.append(buildings["ring_offsets"].to_numpy(), len(rings)),
                   ring_starts=np.append(rings["ring_starts"].to_numpy(), len(vertices)),
                   xs=vertices["xs"].to_numpy(), ys=vertices["ys"].to_numpy())

    @staticmethod
    def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
        x, y = world_xy(np.array([lon]), np.array([lat]))
        return int(x[0] * 2 ** z), int(y[0] * 2 ** z)

    def _run(self, z: int, x: int, y: int) -> tuple[int, int]:
        """The sorted positions [start, stop) of the buildings whose tile at zoom z is (x, y)."""
        if z > INDEX_ZOOM:  # deeper tiles: the INDEX_ZOOM ancestor's run, the client clips what it draws
            shift = z - INDEX_ZOOM
            z, x, y = INDEX_ZOOM, x >> shift, y >> shift
        shift = np.uint64(2 * (INDEX_ZOOM - z))
        first = int(morton(np.array([x]), np.array([y]))[0]) << int(shift)
        last = (int(morton(np.array([x]), np.array([y]))[0]) + 1) << int(shift)
        return (int(np.searchsorted(self.keys, first, side="left")),
                int(np.searchsorted(self.keys, last, side="left")))

    def rows_in(self, z: int, x: int, y: int) -> np.ndarray:
        """Positions in the source frame of the buildings in tile (z, x, y)."""
        start, stop = self._run(z, x, y)
        return self.order[start:stop]

    def encode(self, z: int, x: int, y: int, properties: dict[str, np.ndarray], layer_name: str = "buildings",
               ) -> bytes:
        """The MVT bytes of tile (z, x, y); ``properties`` maps a name to an array aligned with the source frame."""
        start, stop = self._run(z, x, y)
        tile = vector_tile_pb2.tile()
        if stop == start:
            return tile.SerializeToString()
        first_ring, last_ring = self.ring_offsets[start], self.ring_offsets[stop]
        v0, v1 = self.ring_starts[first_ring], self.ring_starts[last_ring]
        scale = 2 ** z
        qx = np.floor((self.xs[v0:v1] * scale - x) * EXTENT + 0.5).astype(np.int64)
        qy = np.floor((self.ys[v0:v1] * scale - y) * EXTENT + 0.5).astype(np.int64)
        ring_starts = self.ring_starts[first_ring:last_ring + 1] - v0
        ring_sizes = np.diff(ring_starts)
        feature_rings = self.ring_offsets[start:stop + 1] - first_ring
        # The cursor starts at (0, 0) for each feature and then follows every vertex, across rings.
        dx, dy = np.diff(qx, prepend=0), np.diff(qy, prepend=0)
        feature_first_vertex = ring_starts[feature_rings[:-1]]
        dx[feature_first_vertex] = qx[feature_first_vertex]
        dy[feature_first_vertex] = qy[feature_first_vertex]
        # Each ring of n vertices: MoveTo(1) x y, LineTo(n-1) 2(n-1) deltas, ClosePath: 2n + 3 integers.
        ring_lengths = 2 * ring_sizes + 3
        ring_out = np.concatenate([[0], np.cumsum(ring_lengths)])
        out = np.empty(ring_out[-1], dtype=np.int64)
        vertex_ring = np.repeat(np.arange(len(ring_sizes)), ring_sizes)
        vertex_rank = np.arange(len(qx)) - ring_starts[vertex_ring]
        # Vertex k of a ring sits after MoveTo (k=0) or after MoveTo, x, y, LineTo (k>0).
        slot = ring_out[vertex_ring] + 1 + 2 * vertex_rank + np.where(vertex_rank > 0, 1, 0)
        out[slot] = _zigzag(dx)
        out[slot + 1] = _zigzag(dy)
        out[ring_out[:-1]] = _command(_MOVE_TO, 1)
        out[ring_out[:-1] + 3] = (np.maximum(ring_sizes - 1, 0) << 3) | _LINE_TO
        out[ring_out[1:] - 1] = _command(_CLOSE_PATH, 1)
        feature_out = ring_out[feature_rings]

        layer = tile.layers.add()
        layer.name, layer.version, layer.extent = layer_name, 2, EXTENT
        rows = self.order[start:stop]
        tag_columns = []
        value_base = 0
        for key_index, (name, column) in enumerate(properties.items()):
            layer.keys.append(name)
            codes, uniques = pd.factorize(pd.Series(np.asarray(column)[rows]), use_na_sentinel=True)
            for value in uniques:
                _set_value(layer.values.add(), value)
            tag_columns.append((key_index, codes, value_base))
            value_base += len(uniques)
        tags = np.empty((stop - start, 2 * len(tag_columns)), dtype=np.int64)
        present = np.ones((stop - start, len(tag_columns)), dtype=bool)
        for column, (key_index, codes, base) in enumerate(tag_columns):
            tags[:, 2 * column] = key_index
            tags[:, 2 * column + 1] = base + codes
            present[:, column] = codes >= 0
        out_list = out.tolist()
        bounds = feature_out.tolist()
        tags_list = tags.tolist()
        all_present = bool(present.all())
        for i in range(stop - start):
            feature = layer.features.add()
            feature.id = int(rows[i]) + 1
            feature.type = 3  # POLYGON
            row_tags = tags_list[i]
            if not all_present:  # a missing value is a missing tag, not a "nan" string
                row_tags = [t for c, keep in enumerate(present[i]) if keep for t in row_tags[2 * c:2 * c + 2]]
            feature.tags.extend(row_tags)
            feature.geometry.extend(out_list[bounds[i]:bounds[i + 1]])
        return tile.SerializeToString()


def _set_value(message, value) -> None:
    if isinstance(value, (bool, np.bool_)):
        message.bool_value = bool(value)
    elif isinstance(value, (int, np.integer)):
        if value >= 0:
            message.uint_value = int(value)
        else:
            message.sint_value = int(value)
    elif isinstance(value, (float, np.floating)):
        message.double_value = float(value)
    else:
        message.string_value = str(value)
