"""Real face photos (from the test-data cache) and hostile images for watchlist tests."""

from __future__ import annotations

import io
import os
import struct
import zlib
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from hub.auth import Principal, Role

REPO = Path(__file__).resolve().parents[3]


def cache_root() -> Path:
    return Path(os.environ.get("GRIDWARD_CACHE", str(REPO / ".cache")))


def models_dir() -> Path:
    return cache_root() / "models" / "faces"


@cache
def photo(label: str) -> bytes:
    """A face photo fetched by scripts/fetch_test_data.py (obama, obama2, obama3, biden, t1)."""
    path = cache_root() / "faces" / f"{label}.jpg"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python scripts/fetch_test_data.py`")
    return path.read_bytes()


def _decoded(label: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(photo(label), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, np.uint8)


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return bytes(buf)


@cache
def blurred(label: str = "obama", sigma: float = 6.0) -> bytes:
    image = _decoded(label)
    return _jpeg(cv2.GaussianBlur(image, (0, 0), sigma))


@cache
def shrunk(label: str = "obama", width: int = 180) -> bytes:
    image = _decoded(label)
    height = round(image.shape[0] * width / image.shape[1])
    return _jpeg(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))


@cache
def as_png(label: str = "obama") -> bytes:
    out = io.BytesIO()
    with Image.open(io.BytesIO(photo(label))) as img:
        img.save(out, format="PNG")
    return out.getvalue()


@cache
def faceless() -> bytes:
    rng = np.random.default_rng(7)
    return _jpeg(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def png_bomb(side: int = 6000) -> bytes:
    """A real, valid PNG of ``side`` x ``side`` black grey pixels: a few tens of kB that
    decode to ``side``² bytes (x3 in BGR)."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + one byte per pixel
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )


def principal(username: str, role: Role) -> Principal:
    return Principal(username=username, role=role, token_id="t-" + username, token_kind="session")
