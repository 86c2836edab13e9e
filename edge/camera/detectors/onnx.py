"""ONNX detectors through onnxruntime (CPU provider by default): SSD-style post-processed
outputs or raw YOLO heads, chosen by ``output_format``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import cv2
import numpy as np
from pydantic import Field

from edge.camera.boxes import Box, Detection
from edge.camera.detectors.base import DetectorError, DetectorUnavailableError, Image
from edge.camera.detectors.parsers import parse_ssd, parse_yolo
from edge.camera.detectors.tflite import read_labels
from edge.config import StrictModel

KEY = "onnx"


class Config(StrictModel):
    type: Literal["onnx"] = "onnx"
    model: Path
    output_format: Literal["ssd", "yolo"] = "yolo"
    input_layout: Literal["nchw", "nhwc"] = "nchw"
    input_scale: Literal["unit", "byte"] = Field(
        default="unit", description="unit: float 0..1, byte: float 0..255")
    labels: list[str] = Field(default_factory=list)
    labels_file: Path | None = None
    keep_labels: list[str] = Field(default_factory=lambda: ["person"])
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.4
    nms_iou: Annotated[float, Field(gt=0, le=1)] = 0.45
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_threads: Annotated[int, Field(ge=0, le=64)] = 2


class OnnxDetector:
    name = KEY

    def __init__(self, config: Config) -> None:
        self.config = config
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise DetectorUnavailableError("onnxruntime is not installed: pip install "
                                           "onnxruntime") from err
        if not config.model.is_file():
            raise DetectorError(f"ONNX model {config.model} not found: run "
                                "`gridward edge camera models fetch` on a connected machine")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = config.intra_op_threads
        try:
            self._session: Any = ort.InferenceSession(str(config.model), sess_options=opts,
                                                      providers=config.providers)
        except Exception as err:  # onnxruntime raises its own untyped exception classes
            raise DetectorError(f"onnxruntime could not load {config.model}: {err}") from err
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        shape = list(inp.shape)
        if config.input_layout == "nchw":
            self.input_h, self.input_w = int(shape[2]), int(shape[3])
        else:
            self.input_h, self.input_w = int(shape[1]), int(shape[2])
        self.labels = read_labels(config.labels, config.labels_file)
        self._keep = set(config.keep_labels) if config.keep_labels else None

    def _prepare(self, frame: Image) -> Any:
        rgb = cv2.cvtColor(cv2.resize(frame, (self.input_w, self.input_h)), cv2.COLOR_BGR2RGB)
        x = rgb.astype(np.float32)
        if self.config.input_scale == "unit":
            x /= 255.0
        if self.config.input_layout == "nchw":
            x = x.transpose(2, 0, 1)
        return x[np.newaxis]

    def detect(self, frame: Image, regions: Sequence[Box] | None = None) -> list[Detection]:
        outputs = self._session.run(None, {self._input_name: self._prepare(frame)})
        size = (frame.shape[1], frame.shape[0])
        cfg = self.config
        if cfg.output_format == "ssd":
            count = int(np.asarray(outputs[3]).reshape(-1)[0]) if len(outputs) > 3 else None
            return parse_ssd(outputs[0], outputs[1], outputs[2], count, frame_size=size,
                             labels=self.labels, min_score=cfg.min_score, keep=self._keep)
        return parse_yolo(outputs[0], input_size=(self.input_w, self.input_h), frame_size=size,
                          labels=self.labels, min_score=cfg.min_score, nms_iou=cfg.nms_iou,
                          keep=self._keep)

    def close(self) -> None:
        return None


def create(config: Config) -> OnnxDetector:
    return OnnxDetector(config)
