"""Photos and voice notes of field reports (pure: bytes in, checked bytes out).

A photo is decoded with Pillow and written again as a fresh baseline JPEG: what is stored is
an image and nothing else. Before the pixels are rewritten, the EXIF GPS position is read (it
may become the report's location) and the EXIF orientation applied; every other EXIF, XMP,
ICC, comment and trailing byte is dropped, because a phone photo carries the camera's serial
number, the owner's name and the exact time, which the report does not need.

Voice notes are sniffed by their magic bytes (Ogg, WebM/Matroska, MP4/M4A, MP3, WAV) and
stored as they came: no audio codec library on these registries decodes all five without a
native toolchain, and a voice note is served back only with its sniffed type, ``nosniff``
and as an attachment, never rendered by the hub.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from hub.errors import Invalid, TooLarge

PHOTO_FORMATS = ["JPEG", "PNG", "WEBP"]
VOICE_TYPES = {
    "ogg": "audio/ogg",
    "webm": "audio/webm",
    "mp4": "audio/mp4",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
}


class PhotoRefused(Invalid):
    """Not a photo the hub can decode (a text file named .jpg, a truncated JPEG, a bomb)."""


class PhotoTooLarge(TooLarge):
    pass


class VoiceRefused(Invalid):
    pass


class VoiceTooLarge(TooLarge):
    pass


@dataclass(frozen=True, slots=True)
class PhotoLimits:
    max_bytes: int
    max_side_px: int
    max_pixels: int
    stored_side_px: int
    jpeg_quality: int


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
    sha256: str
    width: int
    height: int
    gps: tuple[float, float] | None  # (lon, lat) from EXIF, when plausible


@dataclass(frozen=True, slots=True)
class Voice:
    data: bytes
    sha256: str
    container: str  # a key of VOICE_TYPES
    content_type: str


def _check_dimensions(width: int, height: int, limits: PhotoLimits, label: str) -> None:
    if width > limits.max_side_px or height > limits.max_side_px:
        raise PhotoRefused(
            f"{label} is {width}x{height} px; the limit is {limits.max_side_px} px a side"
        )
    if width * height > limits.max_pixels:
        raise PhotoRefused(
            f"{label} is {width}x{height} px; the limit is {limits.max_pixels} pixels in all"
        )


def _rational(value: object) -> float:
    number = float(value)  # type: ignore[arg-type]  # IFDRational, int or float
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _degrees(parts: object, ref: object, negative: str) -> float:
    if not isinstance(parts, tuple | list) or len(parts) != 3:
        raise ValueError("a GPS coordinate has three parts")
    deg, minutes, seconds = (_rational(p) for p in parts)
    value = deg + minutes / 60 + seconds / 3600
    ref_text = ref.decode("ascii", "replace") if isinstance(ref, bytes) else str(ref)
    return -value if ref_text.strip().upper() == negative else value


def exif_position(img: Image.Image) -> tuple[float, float] | None:
    """(lon, lat) from the EXIF GPS block, or None (absent, garbled, out of range, 0/0)."""
    try:
        gps = img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        if not gps:
            return None
        lat = _degrees(
            gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef, "N"), "S"
        )
        lon = _degrees(
            gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef, "E"), "W"
        )
    except (ValueError, TypeError, ZeroDivisionError, KeyError, AttributeError, OSError):
        return None  # a garbled GPS block is no location, not a reason to refuse the photo
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None  # 0/0: what phones write when they had no fix
    return (round(lon, 7), round(lat, 7))


def _stored_size(width: int, height: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def reencode_photo(raw: bytes, limits: PhotoLimits, label: str = "photo") -> Photo:
    """The photo as a fresh JPEG, with its EXIF position; or PhotoRefused / PhotoTooLarge."""
    if len(raw) > limits.max_bytes:
        raise PhotoTooLarge(f"{label} is {len(raw)} bytes; the limit is {limits.max_bytes} bytes")
    if not raw:
        raise PhotoRefused(f"{label} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=PHOTO_FORMATS) as img:
                # Checked from the header, before any pixel is decoded into memory.
                _check_dimensions(img.width, img.height, limits, label)
                gps = exif_position(img)
                if img.format == "JPEG":
                    # Decode at a reduced DCT scale when the photo is at least twice what is
                    # stored: a 12 Mpx phone photo then costs a quarter of the decoding.
                    img.draft("RGB", _stored_size(img.width, img.height, limits.stored_side_px))
                img.load()
                ImageOps.exif_transpose(img, in_place=True)
                rgb = img.convert("RGB")
    except PhotoRefused:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise PhotoRefused(
            f"{label} refused: its dimensions are too large (the limit is "
            f"{limits.max_side_px} px a side and {limits.max_pixels} pixels in all)"
        ) from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
        # SyntaxError: Pillow's report of a malformed header; OSError: a truncated image.
        raise PhotoRefused(
            f"{label} is not a complete JPEG, PNG or WebP image the hub can decode"
        ) from err
    rgb.thumbnail(
        (limits.stored_side_px, limits.stored_side_px),
        Image.Resampling.BICUBIC,
        reducing_gap=3.0,  # a box reduction first when far larger, then bicubic
    )
    # Pillow's JPEG writer falls back to the image's own info for some blocks (the comment,
    # XMP): emptied, nothing of the original (EXIF, ICC, XMP, comments) can follow.
    rgb.info.clear()
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=limits.jpeg_quality)
    data = out.getvalue()
    return Photo(data, hashlib.sha256(data).hexdigest(), rgb.width, rgb.height, gps)


def sniff_container(raw: bytes) -> str | None:
    """The audio container named by ``raw``'s magic bytes, or None."""
    if raw.startswith(b"OggS"):
        return "ogg"
    if raw.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"  # EBML: WebM or Matroska audio
    if len(raw) >= 12 and raw[4:8] == b"ftyp":
        return "mp4"
    if raw.startswith(b"RIFF") and raw[8:12] == b"WAVE":
        return "wav"
    if raw.startswith(b"ID3") or (len(raw) >= 2 and raw[0] == 0xFF and raw[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def check_voice(raw: bytes, max_bytes: int, allowed: list[str]) -> Voice:
    if len(raw) > max_bytes:
        raise VoiceTooLarge(f"voice note is {len(raw)} bytes; the limit is {max_bytes} bytes")
    container = sniff_container(raw) if len(raw) >= 16 else None
    if container is None or container not in allowed:
        names = ", ".join(allowed)
        raise VoiceRefused(f"voice note is not an audio file of an accepted kind ({names})")
    return Voice(raw, hashlib.sha256(raw).hexdigest(), container, VOICE_TYPES[container])
