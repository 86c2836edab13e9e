"""YuNet 2023mar (OpenCV model zoo, MIT): boxes, a score and the five landmarks in the order of
edge.faces.types.

Two runtimes give the same rows (a test checks them to 1e-3 px): ``cv2.FaceDetectorYN``, or
the same network on onnxruntime with FaceDetectorYN's decoding and NMS written out here
(:class:`YuNetOnnx`), about 0.55x the CPU time at 640x480 (bench/faces.py)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge.faces.backends.onnx_graph import session_options
from edge.faces.types import BgrImage, FaceBox

if TYPE_CHECKING:
    from edge.faces.backends import BackendSpec, FaceBackendConfig
    from edge.faces.types import FaceBackend

NAME = "yunet-2023mar"
MIN_SIDE_PX = 32
STRIDES = (8, 16, 32)  # YuNet's three output scales; the input is padded to a multiple of 32
Runtime = Literal["onnxruntime", "opencv"]
log = logging.getLogger(__name__)


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


def _has_onnx() -> bool:
    try:
        import onnx  # noqa: F401  (the graph's input size is edited with it)
    except ImportError:
        return False
    return True


class YuNetOnnx:
    """YuNet on onnxruntime, its output decoded as ``cv2.FaceDetectorYN`` (OpenCV 4.8+)
    decodes it: rows of x, y, w, h, five landmark points, score."""

    def __init__(self, model: Path, *, min_score: float, nms_iou: float, max_faces: int,
                 threads: int) -> None:
        import onnx
        import onnxruntime as ort

        graph = onnx.load(str(model))
        # the file fixes its input at 640x640; the network is fully convolutional (its
        # reshapes are (1, -1, k)), so any size that is a multiple of 32 runs
        dims = graph.graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_param, dims[3].dim_param = "height", "width"
        for out in graph.graph.output:
            out.type.tensor_type.shape.dim[1].dim_param = "anchors"
        del graph.graph.value_info[:]
        self._session = ort.InferenceSession(graph.SerializeToString(),
                                             sess_options=session_options(threads),
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._min_score, self._nms_iou, self._max_faces = min_score, nms_iou, max_faces

    def rows(self, image: BgrImage) -> NDArray[np.float32] | None:
        import cv2

        h, w = image.shape[:2]
        pad_h, pad_w = -(-h // STRIDES[-1]) * STRIDES[-1], -(-w // STRIDES[-1]) * STRIDES[-1]
        padded = cv2.copyMakeBorder(image, 0, pad_h - h, 0, pad_w - w, cv2.BORDER_CONSTANT,
                                    value=(0, 0, 0))
        blob = np.ascontiguousarray(padded.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
        out = dict(zip(self._outputs, self._session.run(None, {self._input: blob}),
                       strict=True))
        decoded = [self._decode(out, stride, pad_h // stride, pad_w // stride)
                   for stride in STRIDES]
        found = np.concatenate(decoded)
        found = found[found[:, 14] >= self._min_score]  # NMSBoxes drops these first anyway
        if len(found) == 0:
            return None
        # FaceDetectorYN runs NMS on integer boxes (cv::Rect2i); the same here, so the same
        # faces survive
        boxes = [(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in found]
        keep = cv2.dnn.NMSBoxes(boxes, found[:, 14].tolist(), self._min_score, self._nms_iou,
                                1.0, self._max_faces)
        kept: NDArray[np.float32] = found[np.asarray(keep, dtype=np.int64).reshape(-1)]
        return kept

    @staticmethod
    def _decode(out: dict[str, Any], stride: int, rows: int,
                cols: int) -> NDArray[np.float32]:
        cls = np.clip(np.asarray(out[f"cls_{stride}"]).reshape(-1), 0.0, 1.0)
        obj = np.clip(np.asarray(out[f"obj_{stride}"]).reshape(-1), 0.0, 1.0)
        box = np.asarray(out[f"bbox_{stride}"]).reshape(-1, 4)
        kps = np.asarray(out[f"kps_{stride}"]).reshape(-1, 10)
        r, c = np.divmod(np.arange(rows * cols), cols)
        cx, cy = (c + box[:, 0]) * stride, (r + box[:, 1]) * stride
        bw, bh = np.exp(box[:, 2]) * stride, np.exp(box[:, 3]) * stride
        points = np.empty((len(c), 10), dtype=np.float32)
        points[:, 0::2] = (kps[:, 0::2] + c[:, np.newaxis]) * stride
        points[:, 1::2] = (kps[:, 1::2] + r[:, np.newaxis]) * stride
        decoded: NDArray[np.float32] = np.column_stack(
            (cx - bw / 2, cy - bh / 2, bw, bh, points, np.sqrt(cls * obj))).astype(np.float32)
        return decoded


class YuNetDetector:
    name = NAME

    def __init__(self, model: Path, *, min_score: float, nms_iou: float, max_faces: int,
                 max_side_px: int, runtime: Runtime = "onnxruntime", threads: int = 1) -> None:
        import cv2

        if runtime == "onnxruntime" and not _has_onnx():
            log.warning("the onnx package is not installed: YuNet runs on OpenCV, about 1.8x "
                        "slower (install gridward[camera])")
            runtime = "opencv"
        self.runtime = runtime
        if runtime == "onnxruntime":
            self._onnx: YuNetOnnx | None = YuNetOnnx(
                model, min_score=min_score, nms_iou=nms_iou, max_faces=max_faces,
                threads=threads)
        else:
            self._onnx = None
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
            if self._onnx is not None:
                rows: object = self._onnx.rows(small)
            else:
                if size != self._size:
                    self._detector.setInputSize(size)
                    self._size = size
                # OpenCV's stubs omit that no face gives None
                rows = self._detector.detect(small)[1]
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
                             max_faces=config.max_faces, max_side_px=config.detect_max_side_px,
                             runtime=config.detector_runtime, threads=config.threads)
    return spec.assemble(detector, build_embedder(config))
