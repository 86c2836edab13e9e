"""Enrolment photo checks on the real test photos: each check refuses its bad photo and lets
the good one through (so every limit can fail both ways)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

from edge.faces.align import ARCFACE_TEMPLATE
from edge.faces.quality import QualityConfig, check_enrolment, decode_photo, pose_of
from edge.faces.types import BgrImage, EnrolmentRefusedError, FaceBackend, QualityReason

Photo = Callable[[str], BgrImage]


def u8(image: object) -> BgrImage:
    """OpenCV's stubs type every result as a generic array."""
    return np.asarray(image, dtype=np.uint8)


def refused(image: BgrImage, backend: FaceBackend) -> EnrolmentRefusedError:
    with pytest.raises(EnrolmentRefusedError) as info:
        check_enrolment(image, backend)
    assert str(info.value).endswith(".")  # a sentence for the enrolling user
    return info.value


def test_a_good_portrait_is_enrolled_with_its_metrics(face_backend: FaceBackend,
                                                      photo: Photo) -> None:
    face = check_enrolment(photo("obama"), face_backend)
    assert face.embedding.shape == (128,)
    assert face.box.w > 200
    assert set(face.metrics) == {"face_width_px", "detector_score", "yaw_deg", "pitch_deg",
                                 "roll_deg", "sharpness"}
    assert face.metrics["sharpness"] > QualityConfig().min_sharpness


def test_group_photo_is_several_faces(face_backend: FaceBackend, photo: Photo) -> None:
    err = refused(photo("group"), face_backend)
    assert err.reason is QualityReason.SEVERAL_FACES
    assert "6 faces" in str(err)


def test_blank_image_has_no_face(face_backend: FaceBackend) -> None:
    blank = np.full((480, 640, 3), 200, dtype=np.uint8)
    assert refused(blank, face_backend).reason is QualityReason.NO_FACE


def test_a_30_px_face_is_too_small(face_backend: FaceBackend, photo: Photo) -> None:
    image = photo("obama")
    face = check_enrolment(image, face_backend).box
    factor = 30 / face.w
    small = u8(cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA))
    canvas = np.full((400, 400, 3), 127, dtype=np.uint8)  # enough frame for the detector
    canvas[:small.shape[0], :small.shape[1]] = small[:400, :400]
    err = refused(canvas, face_backend)
    assert err.reason is QualityReason.TOO_SMALL
    # the same shrunk photo passes when the limit is below its face width
    assert check_enrolment(canvas, face_backend, QualityConfig(min_face_width_px=16)).box.w < 40


def test_a_gaussian_blurred_face_is_too_blurred(face_backend: FaceBackend, photo: Photo) -> None:
    blurred = u8(cv2.GaussianBlur(photo("obama"), (0, 0), 6))
    assert refused(blurred, face_backend).reason is QualityReason.TOO_BLURRED
    # a light blur (sigma 2) still passes: the limit refuses smeared faces, not soft ones
    check_enrolment(u8(cv2.GaussianBlur(photo("obama"), (0, 0), 2)), face_backend)


def test_a_squeezed_face_is_an_extreme_pose(face_backend: FaceBackend, photo: Photo) -> None:
    image = photo("obama")
    squeezed = u8(cv2.resize(image, (int(image.shape[1] * 0.45), image.shape[0])))
    err = refused(squeezed, face_backend)
    assert err.reason is QualityReason.EXTREME_POSE
    assert "sideways" in str(err)


def test_a_rotated_face_is_an_extreme_pose(face_backend: FaceBackend, photo: Photo) -> None:
    image = photo("obama")
    h, w = image.shape[:2]
    turned = u8(cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), 40, 1), (w, h)))
    err = refused(turned, face_backend)
    assert err.reason is QualityReason.EXTREME_POSE
    assert "one side" in str(err)


def test_pose_of_the_template_is_frontal_and_grows_with_turning() -> None:
    template = tuple((float(x), float(y)) for x, y in ARCFACE_TEMPLATE)
    frontal = pose_of(template)
    assert max(frontal.values()) < 3
    turned = list(template)
    turned[2] = (template[2][0] + 12, template[2][1])  # nose towards the left eye
    assert pose_of(tuple(turned))["yaw_deg"] > 35
    raised = list(template)
    raised[2] = (template[2][0], template[2][1] - 16)  # nose near the eye line: head tilted
    assert pose_of(tuple(raised))["pitch_deg"] > 30
    angle = np.radians(40)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = tuple((float(x), float(y)) for x, y in ARCFACE_TEMPLATE @ rot.T)
    assert pose_of(rolled)["roll_deg"] == pytest.approx(40, abs=0.5)


def _jpeg(image: BgrImage) -> bytes:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data)


def test_decode_photo_reads_jpeg_and_png(photo: Photo) -> None:
    image = photo("biden")
    decoded = decode_photo(_jpeg(image))
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    ok, png = cv2.imencode(".png", image[:64, :64])
    assert ok
    assert np.array_equal(decode_photo(bytes(png)), image[:64, :64])  # lossless, BGR order


def test_decode_photo_applies_exif_orientation(photo: Photo) -> None:
    rgb = Image.fromarray(photo("obama")[:, :, ::-1])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", exif=exif)
    decoded = decode_photo(buf.getvalue())
    assert decoded.shape[:2] == (rgb.width, rgb.height)


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge size: what a decompression bomb looks like up front."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND",
                                                                                       b"")


@pytest.mark.parametrize(("data", "needle"), [
    (b"", "empty"),
    (b"\x00garbage, not an image" * 100, "cannot be read"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 200, "cannot be read"),  # a JPEG header, no data
    (_png_header_only(60_000, 60_000), "pixels"),  # Pillow's own bomb limit
    (_png_header_only(8_000, 8_000), "pixels"),  # 64 MP: under Pillow's, over ours
    (_png_header_only(20_000, 1), "per side"),
])
def test_decode_photo_refuses_garbage_and_bombs(data: bytes, needle: str) -> None:
    with pytest.raises(EnrolmentRefusedError) as info:
        decode_photo(data)
    assert info.value.reason is QualityReason.UNREADABLE
    assert needle in str(info.value)


def test_decode_photo_refuses_other_formats_and_oversized_files(photo: Photo) -> None:
    buf = io.BytesIO()
    Image.fromarray(photo("obama")[:32, :32]).save(buf, "GIF")
    with pytest.raises(EnrolmentRefusedError, match="GIF"):
        decode_photo(buf.getvalue())
    data = _jpeg(photo("obama"))
    with pytest.raises(EnrolmentRefusedError, match="bytes"):
        decode_photo(data, QualityConfig(max_photo_bytes=len(data) - 1))
    truncated = data[: len(data) // 2]
    with pytest.raises(EnrolmentRefusedError, match="cannot be read"):
        decode_photo(truncated)
