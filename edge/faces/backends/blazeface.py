"""BlazeFace full range (MediaPipe, Apache-2.0) as a light face detector, through the camera
plugin's TFLite runtime and anchor grid.

BlazeFace gives six keypoints: right eye, left eye, nose tip, mouth centre, right and left ear
tragion. The ArcFace template needs five: the eyes and nose are taken as they are and the two
mouth corners are estimated from the mouth centre, half a template mouth width either side
along the eye line (the template's mouth is 0.828 eye distances wide). Fitting the similarity
transform to these five is the same as fitting it to eyes + nose + mouth centre with the
mouth weighted twice; the ear points are not used (they swing with yaw and would pull the
crop off the face). The estimate is documented in docs/faces.md.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.camera.detectors.parsers import ssd_anchors
from edge.camera.detectors.tflite import load_interpreter_class
from edge.faces.align import ARCFACE_TEMPLATE
from edge.faces.types import BgrImage, FaceBox
from edge.vision.boxes import iou

if TYPE_CHECKING:
    from edge.faces.backends import BackendSpec, FaceBackendConfig
    from edge.faces.types import FaceBackend

NAME = "blazeface-full-range"
INPUT_PX = 192
STRIDES = (4,)  # full range: one 48x48 layer, one anchor per cell (MediaPipe's pbtxt)
_T = ARCFACE_TEMPLATE
HALF_MOUTH_PER_EYE = float((_T[4, 0] - _T[3, 0]) / (_T[1, 0] - _T[0, 0])) / 2.0


def five_points(six: Any) -> tuple[tuple[float, float], ...]:
    """BlazeFace's six keypoints -> the five of the ArcFace template (see the module doc)."""
    p = np.asarray(six, dtype=np.float64).reshape(6, 2)
    right_eye, left_eye, nose, mouth = p[0], p[1], p[2], p[3]
    half = HALF_MOUTH_PER_EYE * (right_eye - left_eye)  # points towards the subject's right
    pts = (right_eye, left_eye, nose, mouth + half, mouth - half)
    return tuple((float(x), float(y)) for x, y in pts)


class BlazeFaceDetector:
    name = NAME

    def __init__(self, model: Path, *, min_score: float, nms_iou: float, max_faces: int,
                 threads: int = 1) -> None:
        interpreter_cls, _ = load_interpreter_class()
        self._interp = interpreter_cls(model_path=str(model), num_threads=threads)
        self._interp.allocate_tensors()
        inp = self._interp.get_input_details()[0]
        self._input_index = inp["index"]
        outs = self._interp.get_output_details()
        by_width = sorted(outs, key=lambda o: int(o["shape"][-1]))
        self._score_index, self._reg_index = by_width[0]["index"], by_width[1]["index"]
        self._anchors = ssd_anchors((INPUT_PX, INPUT_PX), STRIDES, anchors_per_layer=1)
        self._min_score, self._nms_iou, self._max_faces = min_score, nms_iou, max_faces
        self._lock = threading.Lock()

    def detect(self, image: BgrImage) -> list[FaceBox]:
        import cv2

        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
            raise ValueError(f"a BGR image is H x W x 3, got shape {image.shape}")
        h, w = image.shape[:2]
        side = max(h, w)
        # letterbox to a square so the model sees undistorted faces
        ox, oy = (side - w) // 2, (side - h) // 2
        square = cv2.copyMakeBorder(image, oy, side - h - oy, ox, side - w - ox,
                                    cv2.BORDER_CONSTANT, value=(0, 0, 0))
        x = cv2.resize(square, (INPUT_PX, INPUT_PX), interpolation=cv2.INTER_AREA)
        x = x[:, :, ::-1].astype(np.float32) / 127.5 - 1.0
        with self._lock:
            self._interp.set_tensor(self._input_index, np.ascontiguousarray(x[np.newaxis]))
            self._interp.invoke()
            reg = np.asarray(self._interp.get_tensor(self._reg_index), np.float64).reshape(-1, 16)
            logit = np.asarray(self._interp.get_tensor(self._score_index),
                               np.float64).reshape(-1)
        score = 1.0 / (1.0 + np.exp(-np.clip(logit, -80.0, 80.0)))
        scale = side / INPUT_PX
        found: list[FaceBox] = []
        for i in np.argsort(-score):
            if score[i] < self._min_score or len(found) >= self._max_faces:
                break
            r, (ax, ay) = reg[i], self._anchors[i] * INPUT_PX
            bw, bh = r[2] * scale, r[3] * scale
            if not (bw > 0 and bh > 0):
                continue
            cx, cy = (ax + r[0]) * scale - ox, (ay + r[1]) * scale - oy
            box = (cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2)
            if any(iou(box, (f.x, f.y, f.x + f.w, f.y + f.h)) > self._nms_iou for f in found):
                continue
            six = [((ax + r[4 + 2 * k]) * scale - ox, (ay + r[5 + 2 * k]) * scale - oy)
                   for k in range(6)]
            found.append(FaceBox(float(box[0]), float(box[1]), float(bw), float(bh),
                                 float(score[i]), five_points(six)))
        return found


def build(config: FaceBackendConfig, spec: BackendSpec) -> FaceBackend:
    """blazeface-sface: the light detector with the default embedder (same embedding space)."""
    from edge.faces.backends import model_path
    from edge.faces.backends.models import BLAZEFACE_MODEL
    from edge.faces.backends.sface import build_embedder

    detector = BlazeFaceDetector(model_path(config, BLAZEFACE_MODEL),
                                 min_score=config.min_detector_score, nms_iou=config.nms_iou,
                                 max_faces=config.max_faces, threads=config.threads)
    return spec.assemble(detector, build_embedder(config))
