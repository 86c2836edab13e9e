"""Enrolment photo checks: the hub runs them on every photo before an entry is created.

A watchlist entry is only as good as its photo: a blurred, tiny, turned or shared photo gives
an embedding that matches the wrong people or nobody. Each check refuses with a
:class:`~edge.faces.types.QualityReason` and a sentence that tells the enrolling user what to
fix. The measured values come back in ``EnrolmentFace.metrics`` (stored with the entry; no
image data in it).

Pose is estimated from the five landmarks alone (no 3D model): roll is the angle of the eye
line; yaw combines the nose's offset from the eyes' midpoint (a turned head moves the nose
tip towards one eye) and the foreshortening of the eye distance against the eye-mouth
distance (a turned head narrows the face); pitch is the nose tip's height between the eye
line and the mouth line against the template's. They are rough (a few degrees) but
monotonic, which is what a limit needs.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import Field

from edge.config import StrictModel
from edge.faces.align import ARCFACE_TEMPLATE, align_face
from edge.faces.types import (
    BgrImage,
    Embedding,
    EnrolmentRefusedError,
    FaceBackend,
    FaceBox,
    QualityReason,
)

_T = ARCFACE_TEMPLATE
# the template's eye distance over its eye-to-mouth distance, and its nose height (0 at the
# eye line, 1 at the mouth line)
_EYE_MID_Y = (_T[0, 1] + _T[1, 1]) / 2
_MOUTH_MID_Y = (_T[3, 1] + _T[4, 1]) / 2
TEMPLATE_WIDTH_RATIO = float((_T[1, 0] - _T[0, 0]) / (_MOUTH_MID_Y - _EYE_MID_Y))
TEMPLATE_NOSE_HEIGHT = float((_T[2, 1] - _EYE_MID_Y) / (_MOUTH_MID_Y - _EYE_MID_Y))
FORMATS = ("JPEG", "PNG")


class QualityConfig(StrictModel):
    """Limits of the enrolment checks (defaults calibrated on the test photos, docs/faces.md)."""

    max_photo_bytes: Annotated[int, Field(ge=1024, le=100_000_000)] = 15_000_000
    max_photo_pixels: Annotated[int, Field(ge=10_000, le=200_000_000)] = 40_000_000
    max_photo_side_px: Annotated[int, Field(ge=100, le=30_000)] = 12_000
    min_face_width_px: Annotated[int, Field(ge=16, le=2000)] = 80
    min_sharpness: Annotated[float, Field(ge=0, le=10_000, description=(
        "variance of the Laplacian of the aligned grey 112x112 crop"))] = 80.0
    max_yaw_deg: Annotated[float, Field(gt=0, le=90)] = 35.0
    max_pitch_deg: Annotated[float, Field(gt=0, le=90)] = 30.0
    max_roll_deg: Annotated[float, Field(gt=0, le=180)] = 25.0


@dataclass(frozen=True, slots=True)
class EnrolmentFace:
    """The one face of an accepted photo."""

    embedding: Embedding
    box: FaceBox
    metrics: dict[str, float]


def decode_photo(data: bytes, config: QualityConfig | None = None) -> BgrImage:
    """JPEG or PNG bytes -> a BGR image, EXIF orientation applied. The header is read first:
    a file that would decode to more than ``max_photo_pixels`` (a decompression bomb: a few
    kilobytes that inflate to gigabytes) is refused before any pixel is decoded."""
    cfg = config or QualityConfig()
    if not data:
        raise EnrolmentRefusedError(QualityReason.UNREADABLE, "The photo is empty.")
    if len(data) > cfg.max_photo_bytes:
        raise EnrolmentRefusedError(
            QualityReason.UNREADABLE,
            f"The photo is {len(data)} bytes; at most {cfg.max_photo_bytes} are accepted.")
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            _check_header(img.format, img.size, cfg)
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except EnrolmentRefusedError:
        raise
    except Image.DecompressionBombError as err:  # Pillow's own limit, far above ours
        raise EnrolmentRefusedError(
            QualityReason.UNREADABLE,
            f"The photo claims more than {cfg.max_photo_pixels} pixels; it is refused "
            "unread.") from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise EnrolmentRefusedError(
            QualityReason.UNREADABLE,
            "The photo cannot be read as a JPEG or PNG image (it is damaged or not an "
            "image).") from err
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[:, :, ::-1])


def _check_header(fmt: str | None, size: tuple[int, int], cfg: QualityConfig) -> None:
    if fmt not in FORMATS:
        raise EnrolmentRefusedError(
            QualityReason.UNREADABLE,
            f"The photo is {fmt or 'of an unknown format'}; send a JPEG or PNG.")
    w, h = size
    if w * h > cfg.max_photo_pixels or max(w, h) > cfg.max_photo_side_px:
        raise EnrolmentRefusedError(
            QualityReason.UNREADABLE,
            f"The photo is {w}x{h} pixels; at most {cfg.max_photo_pixels} pixels and "
            f"{cfg.max_photo_side_px} per side are accepted.")


def pose_of(landmarks: tuple[tuple[float, float], ...]) -> dict[str, float]:
    """Yaw, pitch and roll in degrees (absolute values) from the five landmarks."""
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    right_eye, left_eye, nose = p[0], p[1], p[2]
    eye_vec = left_eye - right_eye
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    # rotate into the frame of the eye line (x along it, y down the face)
    c, s = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    rot = np.array([[c, -s], [s, c]])
    eye_mid = (right_eye + left_eye) / 2
    q = (p - eye_mid) @ rot.T
    eye_dist = float(np.linalg.norm(eye_vec))
    mouth_mid = (q[3] + q[4]) / 2
    vertical = float(mouth_mid[1])
    if eye_dist <= 1e-6 or vertical <= 1e-6:  # eyes on top of each other, mouth above eyes
        return {"yaw_deg": 90.0, "pitch_deg": 90.0, "roll_deg": abs(roll)}
    offset = float(q[2][0]) / (eye_dist / 2)
    yaw_nose = math.degrees(math.asin(min(1.0, abs(offset))))
    narrowing = (eye_dist / vertical) / TEMPLATE_WIDTH_RATIO
    yaw_width = math.degrees(math.acos(min(1.0, narrowing)))
    height = float(q[2][1]) / vertical - TEMPLATE_NOSE_HEIGHT
    pitch = math.degrees(math.asin(min(1.0, abs(height) / 0.5)))
    del nose
    return {"yaw_deg": max(yaw_nose, yaw_width), "pitch_deg": pitch, "roll_deg": abs(roll)}


def sharpness_of(crop: BgrImage) -> float:
    """Variance of the Laplacian of the grey crop: low when edges are smeared."""
    import cv2

    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def check_enrolment(image: BgrImage, backend: FaceBackend,
                    config: QualityConfig | None = None) -> EnrolmentFace:
    """The embedding of the photo's one face, or EnrolmentRefusedError saying what is wrong."""
    cfg = config or QualityConfig()
    faces = backend.detector.detect(image)
    if not faces:
        raise EnrolmentRefusedError(
            QualityReason.NO_FACE,
            "No face was found in the photo. Use a photo where the face is clearly visible.")
    if len(faces) > 1:
        raise EnrolmentRefusedError(
            QualityReason.SEVERAL_FACES,
            f"The photo shows {len(faces)} faces; an enrolment photo must show exactly one "
            "person. Crop it to the person to enrol.")
    face = faces[0]
    if len(face.landmarks) != 5:
        raise EnrolmentRefusedError(
            QualityReason.NO_FACE, "The face's eyes, nose and mouth could not be located.")
    metrics: dict[str, float] = {"face_width_px": round(face.w, 1),
                                 "detector_score": round(face.score, 3)}
    if face.w < cfg.min_face_width_px:
        raise EnrolmentRefusedError(
            QualityReason.TOO_SMALL,
            f"The face is {face.w:.0f} pixels wide; at least {cfg.min_face_width_px} are "
            "needed. Use a larger or closer photo.")
    pose = pose_of(face.landmarks)
    metrics.update({k: round(v, 1) for k, v in pose.items()})
    for key, limit, what in (("yaw_deg", cfg.max_yaw_deg, "turned sideways"),
                             ("pitch_deg", cfg.max_pitch_deg, "tilted up or down"),
                             ("roll_deg", cfg.max_roll_deg, "tilted to one side")):
        if pose[key] > limit:
            raise EnrolmentRefusedError(
                QualityReason.EXTREME_POSE,
                f"The face is {what} (about {pose[key]:.0f} degrees, at most {limit:.0f} "
                "allowed). Use a photo looking straight at the camera.")
    crop = align_face(image, face.landmarks)
    sharpness = sharpness_of(crop)
    metrics["sharpness"] = round(sharpness, 1)
    if sharpness < cfg.min_sharpness:
        raise EnrolmentRefusedError(
            QualityReason.TOO_BLURRED,
            f"The face is too blurred (sharpness {sharpness:.0f}, at least "
            f"{cfg.min_sharpness:.0f} needed). Use a sharper photo.")
    return EnrolmentFace(backend.embedder.embed(image, face), face, metrics)
