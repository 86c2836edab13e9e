"""hub.snapshots: the stored bytes are a fresh JPEG; anything else is refused with a reason."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hub.snapshots import MAX_SIDE_PX, SnapshotRefusedError, reencode_jpeg
from tests.support.images import decoded_size, small_jpeg


def _encoded(fmt: str, size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, format=fmt)
    return out.getvalue()


def test_a_jpeg_is_reencoded_without_what_trails_it() -> None:
    raw = small_jpeg(40, 30) + b"<svg onload=alert(1)>"
    snap = reencode_jpeg(raw)
    assert decoded_size(snap.data) == (40, 30) == (snap.width, snap.height)
    assert b"<svg" not in snap.data


@pytest.mark.parametrize(
    "raw",
    [
        b"<!doctype html><script>alert(1)</script>",
        b"\xff\xd8\xff\xe0<html></html>\xff\xd9",
        b"",
        small_jpeg()[:40],  # a truncated JPEG header
    ],
)
def test_non_images_are_refused(raw: bytes) -> None:
    with pytest.raises(SnapshotRefusedError) as err:
        reencode_jpeg(raw)
    assert err.value.reason == "evidence_not_jpeg"


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP"])
def test_other_image_formats_are_not_jpeg(fmt: str) -> None:
    with pytest.raises(SnapshotRefusedError) as err:
        reencode_jpeg(_encoded(fmt))
    assert err.value.reason == "evidence_not_jpeg"


def test_oversized_dimensions_are_refused() -> None:
    with pytest.raises(SnapshotRefusedError) as err:
        reencode_jpeg(_encoded("JPEG", (MAX_SIDE_PX + 1, 4)))
    assert err.value.reason == "evidence_too_large"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_property_garbage_is_refused_never_crashes(raw: bytes) -> None:
    try:
        snap = reencode_jpeg(small_jpeg()[:20] + raw)
    except SnapshotRefusedError as err:
        assert err.reason in ("evidence_not_jpeg", "evidence_too_large")
    else:
        assert decoded_size(snap.data) == (snap.width, snap.height)
