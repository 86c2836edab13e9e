"""TFLite SSD-style detectors (SSD MobileNet, EfficientDet-Lite) through ``ai_edge_litert``,
falling back to the older ``tflite_runtime`` wheel. The model must end in the standard
post-processing op (boxes, classes, scores, count); see :func:`parsers.parse_ssd`."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import cv2
import numpy as np
from pydantic import Field

from edge.camera.boxes import Box, Detection
from edge.camera.detectors.base import DetectorError, DetectorUnavailableError, Image
from edge.camera.detectors.parsers import parse_ssd
from edge.config import StrictModel

KEY = "tflite"
RUNTIMES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


class Config(StrictModel):
    type: Literal["tflite"] = "tflite"
    model: Path
    labels: list[str] = Field(default_factory=list, description="index -> class name")
    labels_file: Path | None = None
    keep_labels: list[str] = Field(default_factory=lambda: ["person"])
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.5
    num_threads: Annotated[int, Field(ge=1, le=64)] = 2


def load_interpreter_class() -> Any:
    """The first installed TFLite runtime's ``Interpreter`` class."""
    errors = []
    for name in RUNTIMES:
        try:
            return importlib.import_module(name).Interpreter
        except ImportError as err:
            errors.append(f"{name}: {err}")
    raise DetectorUnavailableError(
        "no TFLite runtime: pip install ai-edge-litert (or tflite-runtime on numpy<2); "
        + "; ".join(errors)
    )


def read_labels(config_labels: Sequence[str], labels_file: Path | None) -> list[str]:
    if labels_file is None:
        return list(config_labels)
    try:
        return [line.strip() for line in labels_file.read_text(encoding="utf-8").splitlines()]
    except OSError as err:
        raise DetectorError(f"cannot read labels file {labels_file}: {err.strerror}") from err


class TfliteSsdDetector:
    name = KEY

    def __init__(self, config: Config) -> None:
        self.config = config
        if not config.model.is_file():
            raise DetectorError(f"TFLite model {config.model} not found: run "
                                "`gridward edge camera models fetch` on a connected machine")
        interpreter_cls = load_interpreter_class()
        try:
            self._interp = interpreter_cls(model_path=str(config.model),
                                           num_threads=config.num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise DetectorError(f"TFLite could not load {config.model}: {err}") from err
        inp = self._interp.get_input_details()[0]
        self._input_index = inp["index"]
        self._input_dtype = inp["dtype"]
        self._quant = inp.get("quantization", (0.0, 0))
        _, self.input_h, self.input_w, _ = (int(v) for v in inp["shape"])
        self._outputs = self._interp.get_output_details()
        if len(self._outputs) < 3:
            raise DetectorError(f"{config.model} has {len(self._outputs)} outputs; an SSD-style "
                                "model with the post-processing op has 4")
        self.labels = read_labels(config.labels, config.labels_file)
        self._keep = set(config.keep_labels) if config.keep_labels else None

    def _prepare(self, frame: Image) -> Any:
        rgb = cv2.cvtColor(cv2.resize(frame, (self.input_w, self.input_h)), cv2.COLOR_BGR2RGB)
        if self._input_dtype == np.float32:
            return (rgb.astype(np.float32) / 127.5 - 1.0)[np.newaxis]
        return rgb.astype(self._input_dtype)[np.newaxis]

    def detect(self, frame: Image, regions: Sequence[Box] | None = None) -> list[Detection]:
        # SSD heads see the whole frame at their input size; regions only gate whether it runs
        self._interp.set_tensor(self._input_index, self._prepare(frame))
        self._interp.invoke()
        tensors = [self._interp.get_tensor(o["index"]) for o in self._outputs]
        boxes, classes, scores = tensors[0], tensors[1], tensors[2]
        count = int(np.asarray(tensors[3]).reshape(-1)[0]) if len(tensors) > 3 else None
        return parse_ssd(boxes, classes, scores, count,
                         frame_size=(frame.shape[1], frame.shape[0]), labels=self.labels,
                         min_score=self.config.min_score, keep=self._keep)

    def close(self) -> None:
        return None


def create(config: Config) -> TfliteSsdDetector:
    return TfliteSsdDetector(config)
