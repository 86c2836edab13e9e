"""Raster tiles the site provides, read from an MBTiles file (MBTiles 1.3: SQLite with a
``tiles`` table in TMS row order) or a ``z/x/y`` tile tree; the hub serves them behind the
login, so an offline site needs no tile server."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from hub.errors import NotFound

log = logging.getLogger(__name__)

MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


class TileNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class Tile:
    data: bytes
    media_type: str


def sniff_media_type(data: bytes) -> str | None:
    """The image type from the bytes themselves: an MBTiles file may hold vector tiles (gzip
    protobuf) or anything else, and a browser must never be told such bytes are an image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def mbtiles_tile(path: Path, z: int, x: int, y: int) -> Tile:
    """Tile ``z/x/y`` (XYZ, as Leaflet asks) from an MBTiles file, which stores TMS rows
    (row 0 at the south)."""
    row = (1 << z) - 1 - y
    try:
        # Read-only: the hub must never create an empty file where the site's file is missing.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        log.warning("ui.mbtiles_file %s cannot be opened: %s", path, err)
        raise TileNotFound(f"the MBTiles file cannot be opened: {err}") from err
    try:
        found = conn.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, row),
        ).fetchone()
    except sqlite3.Error as err:
        log.warning("ui.mbtiles_file %s is not a readable MBTiles file: %s", path, err)
        raise TileNotFound(f"the MBTiles file cannot be read: {err}") from err
    finally:
        conn.close()
    if found is None or not isinstance(found[0], bytes):
        raise TileNotFound(f"no tile {z}/{x}/{y}")
    media_type = sniff_media_type(found[0])
    if media_type is None:
        log.warning("ui.mbtiles_file %s: tile %s/%s/%s is not a PNG, JPEG or WebP", path, z, x, y)
        raise TileNotFound(f"tile {z}/{x}/{y} is not a raster image (PNG, JPEG or WebP)")
    return Tile(found[0], media_type)


def directory_tile(root: Path, z: int, x: int, y: int, ext: str) -> Tile:
    # z, x, y are validated integers and ext one of MEDIA_TYPES, so the path stays in root.
    path = root / str(z) / str(x) / f"{y}.{ext}"
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise TileNotFound(f"no tile {z}/{x}/{y}") from err
    except OSError as err:
        raise TileNotFound(f"tile {z}/{x}/{y} cannot be read: {err.strerror}") from err
    return Tile(data, MEDIA_TYPES[ext])
