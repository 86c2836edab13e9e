"""YuNet 2023mar (OpenCV model zoo, MIT) through ``cv2.FaceDetectorYN``: boxes, a score and
the five landmarks in the order of edge.faces.types."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from edge.faces.types import BgrImage, FaceBackend, FaceBox

if TYPE_CHECKING:
    from edge.faces.backends import BackendSpec, FaceBackendConfig

NAME = "yunet-2023mar"
MIN_SIDE_PX = 32


def scale_to(image: BgrImage, max_side_px: int) -> tuple[BgrImage, float]:
    """The image shrunk so its longer side is at most ``max_side_px``, and the factor that
    maps its coordinates back (detectors cost grows with the pixel count; faces worth
    matching stay large enough at a few hundred pixels)."""
    import cv2

    h, w = image.shape[:2]
    side = max(h, w)
    if side <= max_side_px:
        return image, 1.0
    factor = max_side_px / side
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))),
                                 interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8), 1.0 / factor


def plausible(row: NDArray[np.float64], size: tuple[int, int]) -> bool:
    """A finite box of positive size overlapping the frame, with a score in 0..1: anything
    else is a runtime fault, never a face."""
    if row.shape[0] < 15 or not np.all(np.isfinite(row[:15])):
        return False
    x, y, w, h, score = row[0], row[1], row[2], row[3], row[14]
    return bool(w > 0 and h > 0 and 0.0 <= score <= 1.0 and x < size[0] and y < size[1]
                and x + w > 0 and y + h > 0)


class YuNetDetector:
    name = NAME

    def __init__(self, model: Path, *, min_score: float, nms_iou: float, max_faces: int,
                 max_side_px: int) -> None:
        import cv2

        self._detector = cv2.FaceDetectorYN.create(str(model), "", (320, 320), min_score,
                                                   nms_iou, max_faces)
        self._size = (320, 320)
        self._max_side_px = max_side_px
        self._lock = threading.Lock()

    def detect(self, image: BgrImage) -> list[FaceBox]:
        import cv2

        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
            raise ValueError(f"a BGR image is H x W x 3, got shape {image.shape}")
        small, back = scale_to(image, self._max_side_px)
        if min(small.shape[:2]) < MIN_SIDE_PX:
            # YuNet's coarsest stride is 32 px: smaller inputs leave its output maps empty and
            # it has been seen to return uninitialised rows (inf boxes) for them
            small = np.asarray(cv2.copyMakeBorder(
                small, 0, max(0, MIN_SIDE_PX - small.shape[0]), 0,
                max(0, MIN_SIDE_PX - small.shape[1]), cv2.BORDER_CONSTANT, value=(0, 0, 0)),
                dtype=np.uint8)
        size = (int(small.shape[1]), int(small.shape[0]))
        with self._lock:
            if size != self._size:
                self._detector.setInputSize(size)
                self._size = size
            _, found = self._detector.detect(small)
        rows: object = found  # OpenCV's stubs omit that no face gives None
        if rows is None:
            return []
        faces = [FaceBox(float(r[0]) * back, float(r[1]) * back, float(r[2]) * back,
                         float(r[3]) * back, float(r[14]),
                         tuple((float(r[4 + 2 * k]) * back, float(r[5 + 2 * k]) * back)
                               for k in range(5)))
                 for r in np.asarray(rows, dtype=np.float64) if plausible(r, size)]
        faces.sort(key=lambda f: -f.score)
        return faces


def build(config: FaceBackendConfig, spec: BackendSpec) -> FaceBackend:
    """yunet-sface: YuNet finds faces and their landmarks, SFace embeds them."""
    from edge.faces.backends import model_path
    from edge.faces.backends.models import YUNET_MODEL
    from edge.faces.backends.sface import build_embedder

    detector = YuNetDetector(model_path(config, YUNET_MODEL),
                             min_score=config.min_detector_score, nms_iou=config.nms_iou,
                             max_faces=config.max_faces, max_side_px=config.detect_max_side_px)
    return FaceBackend(spec.key, detector, build_embedder(config), spec.default_threshold,
                       spec.floor, spec.licence)
