"""A small vector base map as a city would make one (docs/basemap.md), built by the tests themselves: a few features
in the layers of the usual schemas (earth, water, park, roads, buildings), cut into Mapbox Vector Tiles with
mapbox-vector-tile and written into a PMTiles archive with the ``pmtiles`` package's writer."""
from __future__ import annotations

import gzip
from pathlib import Path

import mapbox_vector_tile
import numpy as np
import shapely
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import write
from shapely.geometry import LineString, box

from dashboard.maps.tiles import EXTENT, tile_bounds, world_xy

# Futian (440304) of the sample city and around it.
BOUNDS = (113.95, 22.48, 114.15, 22.62)


def sample_features(bounds=BOUNDS) -> dict[str, list]:
    """Land everywhere, a water body in the south, a park in the middle, two roads crossing, a block of buildings."""
    west, south, east, north = bounds
    mid_x, mid_y = (west + east) / 2, (south + north) / 2
    return {
        "earth": [box(*bounds)],
        "water": [box(west, south, east, south + (north - south) * 0.2)],
        "park": [box(mid_x - 0.03, mid_y - 0.02, mid_x + 0.03, mid_y + 0.02)],
        "roads": [LineString([(west, mid_y), (east, mid_y)]), LineString([(mid_x, south), (mid_x, north)])],
        "buildings": [box(mid_x + 0.035 + i * 0.002, mid_y + 0.025, mid_x + 0.036 + i * 0.002, mid_y + 0.026)
                      for i in range(10)],
    }


def _tile_range(bounds, z):
    west, south, east, north = bounds
    x0, y0 = world_xy([west], [north])
    x1, y1 = world_xy([east], [south])
    n = 2 ** z
    return range(int(x0[0] * n), int(x1[0] * n) + 1), range(int(y0[0] * n), int(y1[0] * n) + 1)


def _to_tile(geometry, z, x, y):
    """Lon/lat → this tile's integer grid (y down), clipped a little beyond its edges."""
    west, south, east, north = tile_bounds(z, x, y)
    pad_x, pad_y = (east - west) / 16, (north - south) / 16
    clipped = shapely.clip_by_rect(geometry, west - pad_x, south - pad_y, east + pad_x, north + pad_y)
    if clipped.is_empty:
        return None

    def transform(coords):
        wx, wy = world_xy(coords[:, 0], coords[:, 1])
        return np.column_stack([np.round((wx * 2 ** z - x) * EXTENT), np.round((wy * 2 ** z - y) * EXTENT)])

    return shapely.transform(clipped, transform)


def build_pmtiles(path: Path, features: dict[str, list] | None = None, zooms=range(8, 15), bounds=BOUNDS,
                  compression: Compression = Compression.GZIP) -> Path:
    """Write ``features`` (layer name → shapely geometries in lon/lat) as vector tiles over ``bounds`` at
    ``zooms`` into a PMTiles archive at ``path``."""
    features = features or sample_features(bounds)
    tiles = {}
    for z in zooms:
        xs, ys = _tile_range(bounds, z)
        for x in xs:
            for y in ys:
                layers = []
                for name, geometries in features.items():
                    drawn = [g for g in (_to_tile(geom, z, x, y) for geom in geometries) if g is not None]
                    if drawn:
                        layers.append({"name": name, "features": [
                            {"geometry": g, "properties": {"kind": name}} for g in drawn]})
                if layers:
                    data = mapbox_vector_tile.encode(layers, default_options={"y_coord_down": True,
                                                                              "extents": EXTENT})
                    tiles[zxy_to_tileid(z, x, y)] = gzip.compress(data) if compression == Compression.GZIP else data
    west, south, east, north = bounds
    with write(path) as writer:
        for tile_id in sorted(tiles):
            writer.write_tile(tile_id, tiles[tile_id])
        writer.finalize({
            "tile_type": TileType.MVT, "tile_compression": compression,
            "min_lon_e7": int(west * 1e7), "min_lat_e7": int(south * 1e7),
            "max_lon_e7": int(east * 1e7), "max_lat_e7": int(north * 1e7),
            "center_zoom": min(zooms), "center_lon_e7": int((west + east) / 2 * 1e7),
            "center_lat_e7": int((south + north) / 2 * 1e7),
        }, {"name": "test base map", "vector_layers": [{"id": name, "fields": {"kind": "String"}}
                                                        for name in features]})
    return path


def tile_count(bounds=BOUNDS, zooms=range(8, 15)) -> int:
    return sum(len(xs) * len(ys) for xs, ys in (_tile_range(bounds, z) for z in zooms))

