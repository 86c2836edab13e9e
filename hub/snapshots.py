"""Evidence snapshots are decoded and re-encoded as JPEG at the hub before they are stored.

What a device sends is only bytes it calls a JPEG: HTML, SVG or a polyglot posing as one would
reach every browser that opens the evidence. Decoding with Pillow and writing a fresh baseline
JPEG means the stored bytes are an image and nothing else (no comments, no EXIF, no trailing
payload); anything Pillow cannot decode as a JPEG, or whose dimensions exceed the limits, is
refused with a counted reason.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

MAX_SIDE_PX = 4096
MAX_PIXELS = 16_000_000
JPEG_QUALITY = 85


class SnapshotRefusedError(ValueError):
    """A snapshot the hub will not store; ``reason`` is the counted rejection reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Snapshot:
    data: bytes
    sha256: str
    width: int
    height: int


def _check_size(width: int, height: int) -> None:
    if width > MAX_SIDE_PX or height > MAX_SIDE_PX or width * height > MAX_PIXELS:
        raise SnapshotRefusedError(
            "evidence_too_large",
            f"snapshot is {width}x{height} px; the limit is {MAX_SIDE_PX} px a side and "
            f"{MAX_PIXELS} px in all",
        )


def reencode_jpeg(raw: bytes) -> Snapshot:
    """The snapshot decoded and written again as JPEG, or :class:`SnapshotRefusedError`."""
    try:
        with warnings.catch_warnings():
            # A decompression-bomb warning is an error here: the size check below decides.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=["JPEG"]) as img:
                width, height = img.size
                # Checked from the header, before the pixels are decoded into memory.
                _check_size(width, height)
                img.load()
                rgb = img.convert("RGB")
    except SnapshotRefusedError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise SnapshotRefusedError("evidence_too_large", f"snapshot refused: {err}") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        # SyntaxError: Pillow's own report of a malformed JPEG header.
        raise SnapshotRefusedError(
            "evidence_not_jpeg", "snapshot is not a decodable JPEG image"
        ) from err
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    data = out.getvalue()
    return Snapshot(data, hashlib.sha256(data).hexdigest(), width, height)
