"""Test photos: real JPEGs with EXIF GPS, a camera model and a comment; fakes; bombs."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

from PIL import ExifTags, Image, ImageDraw

CAMERA_MODEL = "SnoopCam-9000-SN12345"
COMMENT = b"owner: Zhang San, phone 13800000000"


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    value = abs(value)
    deg = int(value)
    minutes_full = (value - deg) * 60
    minutes = int(minutes_full)
    seconds = Fraction((minutes_full - minutes) * 60).limit_denominator(10_000)
    return Fraction(deg), Fraction(minutes), seconds


def scene(width: int = 320, height: int = 240) -> Image.Image:
    img = Image.new("RGB", (width, height), (30, 120, 60))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(220, 40, 40))
    return img


def jpeg_with_exif(
    lon: float | None = 114.0575, lat: float | None = 22.5431, *, orientation: int = 1
) -> bytes:
    """A JPEG carrying GPS (when given), a camera model, a comment, XMP and an ICC profile."""
    img = scene()
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = CAMERA_MODEL
    exif[ExifTags.Base.Make] = "Snoop"
    exif[ExifTags.Base.Orientation] = orientation
    if lon is not None and lat is not None:
        gps = {
            ExifTags.GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
            ExifTags.GPS.GPSLatitude: _dms(lat),
            ExifTags.GPS.GPSLongitudeRef: "E" if lon >= 0 else "W",
            ExifTags.GPS.GPSLongitude: _dms(lon),
        }
        exif[ExifTags.IFD.GPSInfo] = gps
    out = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>creator=Zhang</rdf:RDF></x:xmpmeta>'
    icc = b"\x00\x00\x02\x0cICCFAKEPROFILE-" + b"x" * 64
    img.save(out, format="JPEG", exif=exif, comment=COMMENT, xmp=xmp, icc_profile=icc)
    return out.getvalue()


def png_bytes() -> bytes:
    out = io.BytesIO()
    scene(100, 80).save(out, format="PNG")
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = jpeg_with_exif()
    return data[: len(data) // 2]


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims a huge image (3.6 Gpx): a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def ogg_voice() -> bytes:
    """The start of an Ogg/Opus file (the hub sniffs the container; it does not decode)."""
    return b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead\x01\x01" + b"\x00" * 200


def wav_voice() -> bytes:
    body = b"\x00\x00" * 800
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(body))
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )
