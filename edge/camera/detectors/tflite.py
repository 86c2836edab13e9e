"""TFLite detectors through ``ai_edge_litert``, falling back to the older ``tflite_runtime`` wheel.

Two output layouts, chosen by ``output_format``:

- ``ssd`` (default): the model ends in the standard ``TFLite_Detection_PostProcess`` op (SSD
  MobileNet, EfficientDet-Lite): boxes, classes, scores, count; see :func:`parsers.parse_ssd`.
- ``raw_ssd``: the model emits raw anchor regressors and score logits (MediaPipe BlazeFace and
  the other Blaze* detectors); ``anchors`` describes the anchor grid and decoding plus NMS run
  here, see :func:`parsers.parse_raw_ssd`.
- ``nanodet``: NanoDet's per-stride class scores and distance distributions (the converted
  NanoDet-m takes an NCHW input: ``input_layout: nchw``); see :func:`nanodet.parse_nanodet`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from edge.camera.detectors.base import DetectorError, DetectorUnavailableError, Image
from edge.camera.detectors.nanodet import check_outputs, parse_nanodet
from edge.camera.detectors.parsers import parse_raw_ssd, parse_ssd, ssd_anchors
from edge.camera.detectors.preprocess import (
    InputFit,
    InputScale,
    Resize,
    normalise,
    to_frame_detections,
    to_input_rgb,
)
from edge.camera.models import COCO80
from edge.config import StrictModel
from edge.vision.boxes import Box, Detection

KEY = "tflite"
RUNTIMES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")

log = logging.getLogger(__name__)


class AnchorConfig(StrictModel):
    """The anchor grid of a ``raw_ssd`` model (MediaPipe ``SsdAnchorsCalculator`` options with
    fixed anchor size). BlazeFace short range: strides [8, 16, 16, 16], 2 per layer."""

    strides: list[Annotated[int, Field(ge=1, le=1024)]] = Field(min_length=1, max_length=16)
    anchors_per_layer: Annotated[int, Field(ge=1, le=16)] = 2
    offset: Annotated[float, Field(ge=0, le=1)] = 0.5


class Config(StrictModel):
    type: Literal["tflite"] = "tflite"
    model: Path
    output_format: Literal["ssd", "raw_ssd", "nanodet"] = "ssd"
    anchors: AnchorConfig | None = Field(default=None, description="raw_ssd only")
    input_layout: Literal["nhwc", "nchw"] = "nhwc"
    resize: Resize = Field(default="stretch",
                           description="stretch to the input size, or letterbox (keep aspect)")
    input_scale: InputScale = Field(
        default="signed", description="float inputs: signed -1..1, unit 0..1, byte 0..255")
    labels: list[str] = Field(default_factory=list, description="index -> class name")
    labels_file: Path | None = None
    keep_labels: list[str] = Field(default_factory=lambda: ["person"])
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.5
    nms_iou: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.3, description="raw_ssd and nanodet: the ssd op already suppresses overlaps")
    num_threads: Annotated[int, Field(ge=1, le=64)] = 2

    @model_validator(mode="after")
    def _anchors_go_with_raw_ssd(self) -> Config:
        if self.output_format == "raw_ssd" and self.anchors is None:
            raise ValueError("output_format raw_ssd needs anchors (strides, anchors_per_layer) "
                             "to decode the model's regressors")
        if self.output_format != "raw_ssd" and self.anchors is not None:
            raise ValueError("anchors are only used with output_format raw_ssd; the ssd "
                             "post-processing op decodes its own anchors, and nanodet heads "
                             "have none (their grid follows from the strides)")
        return self


def _preload_runtime() -> None:
    """Import the first TFLite runtime with the plugin, i.e. before GStreamer is initialised:
    a runtime first imported into a process where cv2 is loaded and Gst.init() has run aborts
    the whole process on the first C++ exception it throws (a corrupt model, a bad input)."""
    for name in RUNTIMES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return


_preload_runtime()


def load_interpreter_class() -> tuple[Any, str]:
    """The first installed TFLite runtime's ``Interpreter`` class and that runtime's module."""
    errors = []
    for name in RUNTIMES:
        try:
            return importlib.import_module(name).Interpreter, name
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


def labels_for_format(labels: list[str], output_format: str) -> list[str]:
    """NanoDet heads are COCO-80 unless the config names other labels."""
    if labels or output_format != "nanodet":
        return labels
    return list(COCO80)


def describe(details: Sequence[dict[str, Any]]) -> str:
    """``'name' [1, 896, 16] float32, ...`` for a list of tensor details."""
    return ", ".join(f"{d['name']!r} {[int(v) for v in d['shape']]} {np.dtype(d['dtype']).name}"
                     for d in details)


def looks_like_raw_anchor_heads(details: Sequence[dict[str, Any]]) -> bool:
    """Two outputs ``[1, N, 4 + 2K]`` and ``[1, N, C]``: regressors and scores per anchor."""
    if len(details) != 2:
        return False
    shapes = [[int(v) for v in d["shape"]] for d in details]
    return (all(len(s) == 3 and s[0] == 1 for s in shapes) and shapes[0][1] == shapes[1][1]
            and max(shapes[0][2], shapes[1][2]) >= 4)


def _dequantize(tensor: Any, detail: dict[str, Any]) -> Any:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if scale and np.issubdtype(np.asarray(tensor).dtype, np.integer):
        return (np.asarray(tensor, dtype=np.float64) - zero_point) * scale
    return tensor


class TfliteDetector:
    name = KEY

    def __init__(self, config: Config) -> None:
        self.config = config
        if not config.model.is_file():
            raise DetectorError(f"TFLite model {config.model} not found: run "
                                "`gridward edge camera models fetch` on a connected machine")
        interpreter_cls, self.runtime = load_interpreter_class()
        try:
            self._interp = interpreter_cls(model_path=str(config.model),
                                           num_threads=config.num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise DetectorError(f"TFLite could not load {config.model}: {err}") from err
        inputs = self._interp.get_input_details()
        inp = inputs[0]
        shape = [int(v) for v in inp["shape"]]
        channels = 1 if config.input_layout == "nchw" else 3
        if len(inputs) != 1 or len(shape) != 4 or shape[0] != 1 or shape[channels] != 3:
            want = "[1, 3, height, width]" if channels == 1 else "[1, height, width, 3]"
            raise DetectorError(f"{config.model} takes {describe(inputs)}; a detector here takes "
                                f"one {want} image (input_layout {config.input_layout})")
        self._input_index = inp["index"]
        self._input_dtype = np.dtype(inp["dtype"])
        if self._input_dtype not in (np.float32, np.float16, np.uint8, np.int8):
            raise DetectorError(f"{config.model} takes {self._input_dtype.name} input; float32, "
                                "float16, uint8 and int8 are supported")
        q_scale, q_zero = inp.get("quantization", (0.0, 0))
        self._quant = (float(q_scale), int(q_zero))
        self.input_h, self.input_w = (shape[2], shape[3]) if channels == 1 else (shape[1],
                                                                                 shape[2])
        self._outputs: list[dict[str, Any]] = list(self._interp.get_output_details())
        self.labels = labels_for_format(read_labels(config.labels, config.labels_file),
                                        config.output_format)
        self._keep = set(config.keep_labels) if config.keep_labels else None
        self._anchors: Any = None
        if config.output_format == "ssd":
            self._check_ssd_outputs()
        elif config.output_format == "raw_ssd":
            self._check_raw_outputs()
        else:
            try:
                check_outputs([[int(v) for v in o["shape"]] for o in self._outputs],
                              input_size=(self.input_w, self.input_h),
                              n_classes=len(self.labels))
            except ValueError as err:
                raise DetectorError(f"{config.model} is not a NanoDet head for output_format "
                                    f"nanodet: {err}") from err
        self._fit: InputFit | None = None
        log.info("tflite detector %s on %s: input %dx%d %s, outputs %s", config.model.name,
                 self.runtime, self.input_w, self.input_h, self._input_dtype.name,
                 config.output_format)

    def _check_ssd_outputs(self) -> None:
        outs, model = self._outputs, self.config.model
        if looks_like_raw_anchor_heads(outs):
            raise DetectorError(
                f"{model} is not SSD post-processed: its outputs are {describe(outs)}, raw anchor "
                "regressors and scores without the TFLite_Detection_PostProcess op. Set "
                "output_format: raw_ssd with the model's anchors (strides, anchors_per_layer) "
                "to decode them here")
        shapes = [[int(v) for v in o["shape"]] for o in outs]
        if len(outs) not in (3, 4) or shapes[0][-1:] != [4]:
            raise DetectorError(
                f"{model} has outputs {describe(outs)}; output_format ssd expects the "
                "TFLite_Detection_PostProcess outputs boxes [1, N, 4], classes [1, N], scores "
                "[1, N] and count [1] in that order")
        n = int(np.prod(shapes[0])) // 4
        for what, s in (("classes", shapes[1]), ("scores", shapes[2])):
            if int(np.prod(s)) != n:
                raise DetectorError(f"{model}: {what} output {s} does not match {n} boxes "
                                    f"(outputs {describe(outs)})")

    def _check_raw_outputs(self) -> None:
        outs, model, anchors = self._outputs, self.config.model, self.config.anchors
        if anchors is None:  # the config validator refuses this; kept for direct callers
            raise DetectorError("output_format raw_ssd needs anchors")
        if not looks_like_raw_anchor_heads(outs):
            raise DetectorError(
                f"{model} has outputs {describe(outs)}; output_format raw_ssd expects two, "
                "regressors [1, N, 4 + 2K] and scores [1, N, C]")
        shapes = [[int(v) for v in o["shape"]] for o in outs]
        # the regressors carry at least 4 values per anchor; with one class the scores carry 1
        self._reg, self._score = (0, 1) if shapes[0][2] >= shapes[1][2] else (1, 0)
        self._anchors = ssd_anchors((self.input_w, self.input_h), anchors.strides,
                                    anchors_per_layer=anchors.anchors_per_layer,
                                    offset=anchors.offset)
        n = shapes[0][1]
        if len(self._anchors) != n:
            raise DetectorError(
                f"{model} scores {n} anchors but anchors {anchors.strides} x "
                f"{anchors.anchors_per_layer} on a {self.input_w}x{self.input_h} input make "
                f"{len(self._anchors)}: check the model's anchor options")

    def _fit_for(self, frame: Image) -> InputFit:
        size = (int(frame.shape[1]), int(frame.shape[0]))
        fit = self._fit
        if fit is None or (fit.frame_w, fit.frame_h) != size:
            fit = self._fit = InputFit.compute(size, (self.input_w, self.input_h),
                                               self.config.resize)
        return fit

    def detect(self, frame: Image, regions: Sequence[Box] | None = None) -> list[Detection]:
        # the model sees the whole frame at its input size; regions only gate whether it runs
        cfg = self.config
        fit = self._fit_for(frame)
        x = normalise(to_input_rgb(frame, fit), cfg.input_scale, self._input_dtype, self._quant)
        if cfg.input_layout == "nchw":
            x = x.transpose(2, 0, 1)
        self._interp.set_tensor(self._input_index, np.ascontiguousarray(x[np.newaxis]))
        self._interp.invoke()
        tensors = [self._interp.get_tensor(o["index"]) for o in self._outputs]
        size = (self.input_w, self.input_h)
        if cfg.output_format == "ssd":
            count = int(np.asarray(tensors[3]).reshape(-1)[0]) if len(tensors) > 3 else None
            dets = parse_ssd(tensors[0], tensors[1], tensors[2], count, frame_size=size,
                             labels=self.labels, min_score=cfg.min_score, keep=self._keep)
        elif cfg.output_format == "nanodet":
            dets = parse_nanodet([_dequantize(t, o) for t, o in zip(tensors, self._outputs,
                                                                       strict=True)],
                                 input_size=size, labels=self.labels, min_score=cfg.min_score,
                                 nms_iou=cfg.nms_iou, keep=self._keep)
        else:
            dets = parse_raw_ssd(
                _dequantize(tensors[self._reg], self._outputs[self._reg]),
                _dequantize(tensors[self._score], self._outputs[self._score]),
                self._anchors, input_size=size, labels=self.labels, min_score=cfg.min_score,
                nms_iou=cfg.nms_iou, keep=self._keep)
        return to_frame_detections(dets, fit)

    def close(self) -> None:
        return None


TfliteSsdDetector = TfliteDetector  # the name before raw_ssd existed


def create(config: Config) -> TfliteDetector:
    return TfliteDetector(config)
