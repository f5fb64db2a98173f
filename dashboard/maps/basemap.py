"""A vector base map from a PMTiles file the city produced itself (``CITYTWIN_BASEMAP_PMTILES``), served by our server.

A PMTiles archive is one file: a header, a directory of tile ids and the tiles (Mapbox Vector Tiles, usually
gzip-compressed). The server reads a tile's bytes from the memory-mapped file and answers
``/basemap/{z}/{x}/{y}.mvt`` (dashboard/maps/routes.py); the map draws them with deck.gl's ``MVTLayer`` like the
building tiles, styled dark in :func:`dashboard.maps.deck.vector_basemap_layer`. Why the server and not a PMTiles
reader in the browser: the map's deck.gl comes bundled in deckgl-dash, whose JSON layers cannot take a custom tile
loader; the server already serves vector tiles, so one more route is all it takes, and the browser needs no new
script (offline: every file it loads is ours).

The file is read with the ``pmtiles`` package's header and directory decoders; the directories a lookup walks are
remembered (the package's own ``Reader.get`` decodes the root directory again for every tile, a few milliseconds
each for a city-sized archive).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "empty.pmtiles"
>>> _ = path.write_bytes(b"not a pmtiles file")
>>> PMTilesBaseMap.open(path)
Traceback (most recent call last):
...
ValueError: ... is not a PMTiles archive (version 3): no PMTiles header
"""
from __future__ import annotations

import gzip
import hashlib
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

from pmtiles.tile import (Compression, MagicNumberNotFound, SpecVersionUnsupported, TileType, deserialize_directory,
                          deserialize_header, find_tile, zxy_to_tileid)

MAX_ZOOM = 30
"""Deeper than any tile a PMTiles archive can address (its tile ids are 64-bit); a request beyond is refused."""
DIRECTORY_DEPTH = 4  # root + up to three levels of leaf directories, as the PMTiles v3 specification allows
ENCODINGS = {Compression.NONE: None, Compression.GZIP: "gzip"}
"""Tile compressions served: none, and gzip (what tippecanoe, planetiler and ``pmtiles convert`` write). The bytes
go out as stored, with ``Content-Encoding: gzip``; a browser that does not accept gzip gets them unpacked."""


@dataclass
class PMTilesBaseMap:
    """An open PMTiles archive of vector tiles: its zoom range, bounds, layer names and tiles."""

    path: Path
    header: dict
    layer_names: tuple[str, ...]
    version: str  # names the file's content (size, modification time): a tile URL carries it, so caches follow
    _bytes: mmap.mmap = field(repr=False)
    _directories: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path) -> "PMTilesBaseMap":
        """Open ``path``; a ValueError says what is wrong with it (missing, not PMTiles, not vector tiles, a
        compression we do not serve)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path} does not exist or is not a file")
        with open(path, "rb") as file:
            if os.fstat(file.fileno()).st_size < 127:
                raise ValueError(f"{path} is not a PMTiles archive (version 3): no PMTiles header")
            data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            header = deserialize_header(data[:127])
        except (MagicNumberNotFound, UnicodeDecodeError):
            raise ValueError(f"{path} is not a PMTiles archive (version 3): no PMTiles header") from None
        except SpecVersionUnsupported:
            raise ValueError(f"{path} is a PMTiles archive of version {data[7]}, not 3: convert it with "
                             "`pmtiles convert` (docs/basemap.md)") from None
        except ValueError as error:  # an unknown compression or tile type code
            raise ValueError(f"{path} has a PMTiles header this server cannot read: {error}") from None
        if header["tile_type"] != TileType.MVT:
            raise ValueError(f"{path} holds {header['tile_type'].name} tiles, not vector tiles (MVT); a raster base "
                             "map is served by a tile server named by CITYTWIN_BASEMAP_URL")
        if header["tile_compression"] not in ENCODINGS:
            raise ValueError(f"{path} compresses its tiles with {header['tile_compression'].name}; this server "
                             "serves uncompressed or gzip tiles (tippecanoe's and planetiler's default)")
        if header["internal_compression"] != Compression.GZIP:
            raise ValueError(f"{path} compresses its directories with {header['internal_compression'].name}; "
                             "the pmtiles reader takes gzip (the default of every PMTiles writer)")
        stat = path.stat()
        version = hashlib.sha1(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
        archive = cls(path=path, header=header, layer_names=(), version=version, _bytes=data)
        archive.layer_names = archive._layer_names()
        return archive

    @property
    def min_zoom(self) -> int:
        return self.header["min_zoom"]

    @property
    def max_zoom(self) -> int:
        return self.header["max_zoom"]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        h = self.header
        return (h["min_lon_e7"] / 1e7, h["min_lat_e7"] / 1e7, h["max_lon_e7"] / 1e7, h["max_lat_e7"] / 1e7)

    @property
    def encoding(self) -> str | None:
        """The tiles' ``Content-Encoding`` as stored (None: not compressed)."""
        return ENCODINGS[self.header["tile_compression"]]

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The stored bytes of tile z/x/y (compressed as :attr:`encoding` says), or None when the archive has no
        tile there (outside its bounds or zooms, or empty: tippecanoe leaves empty tiles out)."""
        if not (0 <= z <= MAX_ZOOM and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
            raise ValueError(f"no tile {z}/{x}/{y}")
        if not self.min_zoom <= z <= self.max_zoom:
            return None
        tile_id = zxy_to_tileid(z, x, y)
        h = self.header
        offset, length = h["root_offset"], h["root_length"]
        for _depth in range(DIRECTORY_DEPTH):
            entry = find_tile(self._directory(offset, length), tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                start = h["tile_data_offset"] + entry.offset
                return self._bytes[start:start + entry.length]
            offset, length = h["leaf_directory_offset"] + entry.offset, entry.length
        return None

    def decoded(self, data: bytes) -> bytes:
        """A stored tile's MVT bytes, unpacked."""
        return gzip.decompress(data) if self.encoding == "gzip" else data

    def _directory(self, offset: int, length: int):
        """A decoded directory (entries sorted by tile id), remembered: a city's root directory holds thousands of
        entries, and every tile request walks it. Directories are few (the root and its leaves), so all are kept;
        two threads decoding the same one at once both store the same entries."""
        key = (offset, length)
        entries = self._directories.get(key)
        if entries is None:
            entries = self._directories[key] = deserialize_directory(self._bytes[offset:offset + length])
        return entries

    def _layer_names(self) -> tuple[str, ...]:
        """The vector layers the archive's metadata lists (tippecanoe and planetiler write ``vector_layers``)."""
        import json

        h = self.header
        raw = self._bytes[h["metadata_offset"]:h["metadata_offset"] + h["metadata_length"]]
        try:
            metadata = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw or b"{}")
        except (ValueError, OSError):
            return ()
        layers = metadata.get("vector_layers") if isinstance(metadata, dict) else None
        return tuple(str(layer["id"]) for layer in layers or () if isinstance(layer, dict) and "id" in layer)

