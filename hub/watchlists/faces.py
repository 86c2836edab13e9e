"""The hub's face pipeline for enrolment: one photo in, one embedding (or a refusal) out.

YuNet finds the faces and SFace embeds the one face of the photo, through OpenCV's
``FaceDetectorYN`` / ``FaceRecognizerSF`` - the default backend of the edges ("yunet-sface"),
so the embeddings the hub computes compare with the ones the cameras compute. ``FaceEngine``
is the one place to swap for ``edge.faces.backends.load_backend`` + ``edge.faces.quality``
once those land: its contract (``enrol(data) -> EnrolledFace`` raising
``EnrolmentRefusedError``) stays.

Nothing here logs or keeps the photo or the embedding.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.faces.types import (
    BgrImage,
    EnrolmentRefusedError,
    FaceModelMissingError,
    QualityReason,
)
from hub.watchlists.config import FaceQualityConfig

MODEL = "sface-2021dec"  # what bundles carry; an edge with another embedder refuses them
DIM = 128
YUNET_FILE = "face_detection_yunet_2023mar.onnx"
SFACE_FILE = "face_recognition_sface_2021dec.onnx"
MAX_SIDE_PX = 1280  # bigger photos are scaled down first: the detector's time grows with area
FETCH_HINT = "run `python scripts/fetch_test_data.py` or set watchlists.models_dir"


def default_models_dir() -> Path:
    cache = os.environ.get("GRIDWARD_CACHE")
    base = Path(cache) if cache else Path(__file__).resolve().parents[2] / ".cache"
    return base / "models" / "faces"


@dataclass(frozen=True, slots=True)
class EnrolledFace:
    embedding: NDArray[np.float32]  # (DIM,), L2-normalised
    model: str
    quality: dict[str, float]


def decode_photo(data: bytes) -> BgrImage:
    """The photo's pixels (BGR). The caller has checked the size and the pixel count."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if image is None or image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise EnrolmentRefusedError(
            QualityReason.UNREADABLE, "the photo cannot be decoded as an image"
        )
    decoded: BgrImage = image.astype(np.uint8, copy=False)
    return decoded


class FaceEngine:
    """YuNet + SFace, loaded on first use; one enrolment at a time (OpenCV's DNN objects
    keep per-call state such as the input size)."""

    def __init__(self, models_dir: Path | None, quality: FaceQualityConfig) -> None:
        self.models_dir = models_dir or default_models_dir()
        self.quality = quality
        self._lock = threading.Lock()
        self._detector: Any = None
        self._recognizer: Any = None

    def _load(self) -> None:
        if self._detector is not None:
            return
        paths = [self.models_dir / YUNET_FILE, self.models_dir / SFACE_FILE]
        for path in paths:
            if not path.is_file():
                raise FaceModelMissingError(f"face model {path.name} is missing: {FETCH_HINT}")
        self._detector = cv2.FaceDetectorYN.create(
            str(paths[0]), "", (320, 320), self.quality.detector_score, 0.3, 5000
        )
        self._recognizer = cv2.FaceRecognizerSF.create(str(paths[1]), "")

    def enrol(self, data: bytes) -> EnrolledFace:
        image = decode_photo(data)
        height, width = image.shape[:2]
        scale = min(1.0, MAX_SIDE_PX / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
        with self._lock:
            self._load()
            return self._enrol(image)

    def _enrol(self, image: BgrImage) -> EnrolledFace:
        q = self.quality
        height, width = image.shape[:2]
        self._detector.setInputSize((width, height))
        _, found = self._detector.detect(image)
        faces = [] if found is None else sorted(found, key=lambda f: -float(f[2] * f[3]))
        if not faces:
            raise EnrolmentRefusedError(
                QualityReason.NO_FACE, "no face was found in the photo: use a frontal portrait"
            )
        largest = float(faces[0][2] * faces[0][3])
        others = [f for f in faces[1:] if float(f[2] * f[3]) >= q.other_face_area_ratio * largest]
        if others:
            raise EnrolmentRefusedError(
                QualityReason.SEVERAL_FACES,
                f"the photo shows {len(others) + 1} faces: crop it to the one person",
            )
        face = faces[0]
        face_w, face_h = float(face[2]), float(face[3])
        if min(face_w, face_h) < q.min_face_px:
            raise EnrolmentRefusedError(
                QualityReason.TOO_SMALL,
                f"the face is {min(face_w, face_h):.0f} pixels; at least {q.min_face_px} "
                "are needed (use a larger or closer photo)",
            )
        right_eye_x, left_eye_x, nose_x = float(face[4]), float(face[6]), float(face[8])
        eye_span = left_eye_x - right_eye_x
        yaw = abs((nose_x - right_eye_x) / eye_span - 0.5) if abs(eye_span) > 1 else 1.0
        if yaw > q.max_yaw_ratio:
            raise EnrolmentRefusedError(
                QualityReason.EXTREME_POSE,
                "the face is turned too far to the side: use a frontal portrait",
            )
        aligned = self._recognizer.alignCrop(image, face)
        gray = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
        sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
        if sharpness < q.min_sharpness:
            raise EnrolmentRefusedError(
                QualityReason.TOO_BLURRED,
                "the face is too blurred: use a sharper photo",
            )
        raw = np.asarray(self._recognizer.feature(aligned), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(raw))
        if raw.shape != (DIM,) or not np.isfinite(norm) or norm == 0:
            raise EnrolmentRefusedError(
                QualityReason.UNREADABLE, "no usable face features could be computed"
            )
        return EnrolledFace(
            embedding=(raw / norm).astype(np.float32),
            model=MODEL,
            quality={
                "face_px": round(min(face_w, face_h), 1),
                "detector_score": round(float(face[14]), 3),
                "sharpness": round(sharpness, 1),
                "yaw_ratio": round(yaw, 3),
            },
        )
