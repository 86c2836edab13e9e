"""ONNX detectors through onnxruntime (CPU provider by default): SSD-style post-processed
outputs, raw YOLO heads or NanoDet heads, chosen by ``output_format``.

The input tensor's layout (``input_layout``), float scaling (``input_scale``) and resize mode
(``resize``) come from the config; its dtype (float32, float16 or uint8) and size come from the
model, or from ``input_size_px`` when the model was exported with dynamic height and width.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from edge.camera.detectors.base import DetectorError, DetectorUnavailableError, Image
from edge.camera.detectors.nanodet import check_outputs, parse_nanodet
from edge.camera.detectors.parsers import parse_ssd, parse_yolo
from edge.camera.detectors.preprocess import (
    InputFit,
    InputScale,
    Resize,
    normalise,
    to_frame_detections,
    to_input_rgb,
)
from edge.camera.detectors.tflite import labels_for_format, read_labels
from edge.config import StrictModel
from edge.vision.boxes import Box, Detection

KEY = "onnx"
INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                "tensor(uint8)": np.uint8}

log = logging.getLogger(__name__)

# Imported with the plugin, i.e. before GStreamer is initialised: onnxruntime first imported
# into a process where cv2 is loaded and Gst.init() has run aborts the whole process on the
# first exception it throws (a bad model, a bad input) instead of raising it.
try:
    import onnxruntime as _ort
except ImportError:  # reported when an onnx detector is built, not fatal to other plugins
    _ort = None

Size = tuple[Annotated[int, Field(ge=1, le=4096)], Annotated[int, Field(ge=1, le=4096)]]


class Config(StrictModel):
    type: Literal["onnx"] = "onnx"
    model: Path
    output_format: Literal["ssd", "yolo", "nanodet"] = "yolo"
    output_names: list[str] = Field(
        default_factory=list, max_length=4,
        description="outputs in the order boxes, classes, scores[, count] (ssd) or the head "
                    "(yolo); empty: the model's own order (nanodet takes them all, by shape)")
    input_layout: Literal["nchw", "nhwc"] = "nchw"
    input_scale: InputScale = Field(
        default="unit", description="float inputs: unit 0..1, byte 0..255, signed -1..1")
    input_size_px: Size | None = Field(
        default=None, description="[width, height] for a model with dynamic input size")
    resize: Resize = "stretch"
    labels: list[str] = Field(default_factory=list)
    labels_file: Path | None = None
    keep_labels: list[str] = Field(default_factory=lambda: ["person"])
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.4
    nms_iou: Annotated[float, Field(gt=0, le=1)] = 0.45
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_threads: Annotated[int, Field(ge=0, le=64)] = 2


MODEL_GRAPH_FIELD = 7  # ModelProto.graph in onnx.proto


def _varint(data: Any, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("a varint runs past the end")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def framing_problem(data: Any) -> str | None:
    """Why ``data`` cannot be a serialised ONNX ModelProto, judged by its top-level protobuf
    framing alone (no parsing of the graph), or None. This catches garbage and truncated files
    before onnxruntime sees them, with a sentence that says what is wrong with the file."""
    pos, fields = 0, set()
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            field, wire = key >> 3, key & 7
            if field == 0 or wire not in (0, 1, 2, 5):
                return f"byte {pos}: field {field} with wire type {wire} is not protobuf"
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 2:
                size, pos = _varint(data, pos)
                pos += size
            else:
                pos += 8 if wire == 1 else 4
            if pos > len(data):
                return f"truncated: a field of {field} ends at byte {pos} of {len(data)}"
            fields.add(field)
    except ValueError as err:
        return f"truncated: {err}"
    if MODEL_GRAPH_FIELD not in fields:
        return "no graph in it"
    return None


def _dim(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _describe(args: Sequence[Any]) -> str:
    return ", ".join(f"{a.name!r} {list(a.shape)} {a.type}" for a in args)


class OnnxDetector:
    name = KEY

    def __init__(self, config: Config) -> None:
        self.config = config
        ort: Any = _ort
        if ort is None:
            raise DetectorUnavailableError("onnxruntime is not installed: pip install "
                                           "onnxruntime")
        if not config.model.is_file():
            raise DetectorError(f"ONNX model {config.model} not found: run "
                                "`gridward edge camera models fetch` on a connected machine")
        try:
            with config.model.open("rb") as fh, mmap.mmap(fh.fileno(), 0,
                                                          access=mmap.ACCESS_READ) as data:
                problem = framing_problem(data)
        except (OSError, ValueError) as err:  # mmap refuses an empty file with ValueError
            problem = str(err)
        if problem is not None:
            raise DetectorError(f"{config.model} is not an ONNX model ({problem}): fetch it "
                                "again and check its sha256")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = config.intra_op_threads
        try:
            self._session: Any = ort.InferenceSession(str(config.model), sess_options=opts,
                                                      providers=config.providers)
        except Exception as err:  # onnxruntime raises its own untyped exception classes
            raise DetectorError(f"onnxruntime could not load {config.model}: {err}") from err
        self._check_input()
        self._output_names = self._pick_outputs()
        self.labels = labels_for_format(read_labels(config.labels, config.labels_file),
                                        config.output_format)
        self._keep = set(config.keep_labels) if config.keep_labels else None
        if config.output_format == "nanodet":
            self._check_nanodet_outputs()
        self._fit: InputFit | None = None
        log.info("onnx detector %s: input %dx%d %s %s, outputs %s (%s)", config.model.name,
                 self.input_w, self.input_h, config.input_layout, self._input_dtype.name,
                 self._output_names, config.output_format)

    def _check_input(self) -> None:
        cfg, inputs = self.config, self._session.get_inputs()
        shape = list(inputs[0].shape)
        if len(inputs) != 1 or len(shape) != 4:
            raise DetectorError(f"{cfg.model} takes {_describe(inputs)}; a detector here takes "
                                "one image tensor of rank 4")
        self._input_name: str = inputs[0].name
        channels, h, w = ((shape[1], shape[2], shape[3]) if cfg.input_layout == "nchw"
                          else (shape[3], shape[1], shape[2]))
        if _dim(channels) not in (3, None):
            other = "nhwc" if cfg.input_layout == "nchw" else "nchw"
            raise DetectorError(f"{cfg.model} takes {_describe(inputs)}: that is not a 3-channel "
                                f"{cfg.input_layout} image; is it {other}? (input_layout)")
        if cfg.input_size_px is not None:
            if (_dim(w), _dim(h)) not in ((None, None), cfg.input_size_px):
                raise DetectorError(f"{cfg.model} takes a fixed {w}x{h} input; input_size_px "
                                    f"{list(cfg.input_size_px)} disagrees (remove it)")
            self.input_w, self.input_h = cfg.input_size_px
        elif _dim(w) is None or _dim(h) is None:
            raise DetectorError(f"{cfg.model} has a dynamic input size ({_describe(inputs)}): "
                                "set input_size_px: [width, height] to the size it was "
                                "trained at")
        else:
            self.input_w, self.input_h = int(w), int(h)
        dtype = INPUT_DTYPES.get(inputs[0].type)
        if dtype is None:
            raise DetectorError(f"{cfg.model} takes {inputs[0].type} input; float, float16 "
                                "and uint8 are supported")
        self._input_dtype = np.dtype(dtype)

    def _pick_outputs(self) -> list[str]:
        cfg, outputs = self.config, self._session.get_outputs()
        names = [o.name for o in outputs]
        if cfg.output_names:
            unknown = [n for n in cfg.output_names if n not in names]
            if unknown:
                raise DetectorError(f"{cfg.model} has no output {unknown}; its outputs are "
                                    f"{_describe(outputs)}")
            names = list(cfg.output_names)
        if cfg.output_format == "ssd" and len(names) < 3:
            raise DetectorError(f"{cfg.model} has outputs {_describe(outputs)}; output_format "
                                "ssd needs boxes, classes and scores (and optionally count); "
                                "name them in output_names if the order differs")
        if cfg.output_format == "nanodet":
            return names
        return names[:4] if cfg.output_format == "ssd" else names[:1]

    def _check_nanodet_outputs(self) -> None:
        outputs = self._session.get_outputs()
        shapes = [list(o.shape) for o in outputs]
        if not all(isinstance(v, int) for s in shapes for v in s):
            return  # dynamic shapes: only the first frame can tell
        try:
            check_outputs(shapes, input_size=(self.input_w, self.input_h),
                          n_classes=len(self.labels))
        except ValueError as err:
            raise DetectorError(f"{self.config.model} is not a NanoDet head for "
                                f"output_format nanodet: {err}") from err

    def _fit_for(self, frame: Image) -> InputFit:
        size = (int(frame.shape[1]), int(frame.shape[0]))
        fit = self._fit
        if fit is None or (fit.frame_w, fit.frame_h) != size:
            fit = self._fit = InputFit.compute(size, (self.input_w, self.input_h),
                                               self.config.resize)
        return fit

    def prepare(self, frame: Image) -> Any:
        """The input tensor this model gets for ``frame`` (batch of one)."""
        x = normalise(to_input_rgb(frame, self._fit_for(frame)), self.config.input_scale,
                      self._input_dtype)
        if self.config.input_layout == "nchw":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[np.newaxis])

    def detect(self, frame: Image, regions: Sequence[Box] | None = None) -> list[Detection]:
        # the model sees the whole frame at its input size; regions only gate whether it runs
        x = self.prepare(frame)
        outputs = self._session.run(self._output_names, {self._input_name: x})
        size = (self.input_w, self.input_h)
        cfg = self.config
        if cfg.output_format == "ssd":
            count = int(np.asarray(outputs[3]).reshape(-1)[0]) if len(outputs) > 3 else None
            dets = parse_ssd(outputs[0], outputs[1], outputs[2], count, frame_size=size,
                             labels=self.labels, min_score=cfg.min_score, keep=self._keep)
        elif cfg.output_format == "nanodet":
            dets = parse_nanodet(outputs, input_size=size, labels=self.labels,
                                 min_score=cfg.min_score, nms_iou=cfg.nms_iou, keep=self._keep)
        else:
            dets = parse_yolo(outputs[0], input_size=size, frame_size=size, labels=self.labels,
                              min_score=cfg.min_score, nms_iou=cfg.nms_iou, keep=self._keep)
        return to_frame_detections(dets, self._fit_for(frame))

    def close(self) -> None:
        self._session = None


def create(config: Config) -> OnnxDetector:
    return OnnxDetector(config)
