"""YuNet 2023mar (OpenCV model zoo, MIT) through ``cv2.FaceDetectorYN``: boxes, a score and
the five landmarks in the order of edge.faces.types."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edge.faces.types import BgrImage, FaceBox

NAME = "yunet-2023mar"


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
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
            raise ValueError(f"a BGR image is H x W x 3, got shape {image.shape}")
        small, back = scale_to(image, self._max_side_px)
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
                 for r in np.asarray(rows, dtype=np.float64)]
        faces.sort(key=lambda f: -f.score)
        return faces
