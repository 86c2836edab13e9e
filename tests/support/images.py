"""Real, small JPEG images for evidence tests (the hub decodes and re-encodes every snapshot,
so a few marker bytes posing as a JPEG are refused like any other non-image)."""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, ImageDraw


@cache
def small_jpeg(width: int = 64, height: int = 48) -> bytes:
    """A deterministic drawn scene, encoded as a baseline JPEG."""
    img = Image.new("RGB", (width, height), (40, 90, 160))
    draw = ImageDraw.Draw(img)
    draw.rectangle((width // 4, height // 4, width // 2, height - 4), fill=(230, 200, 40))
    draw.line((0, height - 1, width - 1, 0), fill=(250, 250, 250), width=2)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


def decoded_size(data: bytes) -> tuple[int, int]:
    """(width, height) of JPEG bytes, decoding them (fails on anything but a JPEG)."""
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
        img.load()
        return img.size
