"""Photo re-encoding and voice sniffing (pure)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from hub.fieldreports.config import FieldReportsConfig
from hub.fieldreports.media import (
    PhotoLimits,
    PhotoRefused,
    PhotoTooLarge,
    VoiceRefused,
    check_voice,
    reencode_photo,
    sniff_container,
)
from tests.hub.fieldreports.photos import jpeg_with_exif, png_bomb, scene, wav_voice

CONFIG = FieldReportsConfig()
LIMITS = PhotoLimits(
    max_bytes=CONFIG.max_photo_bytes,
    max_side_px=CONFIG.max_photo_side_px,
    max_pixels=CONFIG.max_photo_pixels,
    stored_side_px=CONFIG.stored_photo_side_px,
    jpeg_quality=CONFIG.photo_jpeg_quality,
)


def test_orientation_is_applied_before_the_exif_goes() -> None:
    # Orientation 6: the camera was turned; without applying it, the stored photo (which
    # no longer says so) would show sideways.
    photo = reencode_photo(jpeg_with_exif(orientation=6), LIMITS)
    assert (photo.width, photo.height) == (240, 320)


def test_southern_and_western_coordinates_and_no_fix() -> None:
    assert reencode_photo(jpeg_with_exif(lon=-43.2, lat=-22.9), LIMITS).gps == (-43.2, -22.9)
    assert reencode_photo(jpeg_with_exif(lon=0.0, lat=0.0), LIMITS).gps is None  # no fix
    assert reencode_photo(jpeg_with_exif(lon=None, lat=None), LIMITS).gps is None


def test_large_photos_are_scaled_to_the_stored_size() -> None:
    out = io.BytesIO()
    scene(3000, 2000).save(out, format="JPEG")
    small = PhotoLimits(LIMITS.max_bytes, 8192, 40_000_000, 1000, 85)
    photo = reencode_photo(out.getvalue(), small)
    assert max(photo.width, photo.height) == 1000
    with Image.open(io.BytesIO(photo.data)) as img:
        assert img.size == (photo.width, photo.height)


def test_dimension_limits_name_the_limit() -> None:
    out = io.BytesIO()
    scene(900, 100).save(out, format="PNG")
    tight = PhotoLimits(LIMITS.max_bytes, 800, 40_000_000, 800, 85)
    with pytest.raises(PhotoRefused, match="800 px a side"):
        reencode_photo(out.getvalue(), tight)
    with pytest.raises(PhotoRefused, match="too large"):
        reencode_photo(png_bomb(), LIMITS)
    with pytest.raises(PhotoTooLarge, match="limit is 1024 bytes"):
        reencode_photo(b"x" * 2000, PhotoLimits(1024, 800, 10_000, 800, 85))
    with pytest.raises(PhotoRefused, match="empty"):
        reencode_photo(b"", LIMITS)


def test_an_svg_or_html_posing_as_a_photo_is_refused() -> None:
    for fake in (
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        b"GIF89a" + b"\x00" * 100,
        b"\xff\xd8\xff" + b"\x00" * 50,
    ):
        with pytest.raises(PhotoRefused):
            reencode_photo(fake, LIMITS)


def test_voice_containers_by_magic_bytes() -> None:
    assert sniff_container(wav_voice()) == "wav"
    assert sniff_container(b"\x1a\x45\xdf\xa3" + b"\x00" * 20) == "webm"
    assert sniff_container(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 20) == "mp4"
    assert sniff_container(b"ID3\x04" + b"\x00" * 20) == "mp3"
    assert sniff_container(b"RIFF\x00\x00\x00\x00AVI " + b"\x00" * 20) is None  # RIFF, not WAVE
    with pytest.raises(VoiceRefused, match="ogg"):
        check_voice(wav_voice(), 10**6, ["ogg"])  # a type the config does not accept
    with pytest.raises(VoiceRefused):
        check_voice(b"OggS", 10**6, ["ogg"])  # too short to be audio
