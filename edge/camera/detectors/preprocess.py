"""Frame -> model input, and model input pixels -> frame pixels: pure numpy/OpenCV, no runtime.

Every tensor plugin resizes a BGR frame to its model's input size, either by stretching it
(``stretch``: what most COCO exports are trained on) or by keeping its aspect ratio and padding
with black (``letterbox``: what MediaPipe and Ultralytics feed their models). :class:`InputFit`
records that geometry once per frame size so detections map back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.boxes import Box, Detection

Resize = Literal["stretch", "letterbox"]
InputScale = Literal["signed", "unit", "byte", "nanodet"]
"""How float inputs are normalised: signed -1..1, unit 0..1, byte 0..255, or ``nanodet``:
NanoDet's own convention, channels in BGR order and ``(pixel - mean) / std`` per channel."""

# NanoDet's training normalisation (BGR order), as in its configs' pipeline.normalize
NANODET_MEAN_BGR = (103.53, 116.28, 123.675)
NANODET_STD_BGR = (57.375, 57.12, 58.395)


@dataclass(frozen=True, slots=True)
class InputFit:
    """Where a frame lands inside the model input: ``x_in = x_frame * scale_x + pad_x``."""

    frame_w: int
    frame_h: int
    input_w: int
    input_h: int
    content_w: int
    content_h: int
    pad_x: int
    pad_y: int

    @classmethod
    def compute(cls, frame_size: tuple[int, int], input_size: tuple[int, int],
                resize: Resize) -> InputFit:
        fw, fh = frame_size
        iw, ih = input_size
        if min(fw, fh, iw, ih) <= 0:
            raise ValueError(f"sizes must be positive, got frame {frame_size}, input {input_size}")
        if resize == "stretch":
            return cls(fw, fh, iw, ih, iw, ih, 0, 0)
        s = min(iw / fw, ih / fh)
        cw, ch = min(iw, max(1, round(fw * s))), min(ih, max(1, round(fh * s)))
        return cls(fw, fh, iw, ih, cw, ch, (iw - cw) // 2, (ih - ch) // 2)

    @property
    def scale_x(self) -> float:
        return self.content_w / self.frame_w

    @property
    def scale_y(self) -> float:
        return self.content_h / self.frame_h

    def to_frame(self, box: Box) -> Box:
        """A box in model input pixels to frame pixels, clipped to the frame."""
        x1 = (box[0] - self.pad_x) / self.scale_x
        y1 = (box[1] - self.pad_y) / self.scale_y
        x2 = (box[2] - self.pad_x) / self.scale_x
        y2 = (box[3] - self.pad_y) / self.scale_y
        fw, fh = float(self.frame_w), float(self.frame_h)
        return (min(max(x1, 0.0), fw), min(max(y1, 0.0), fh),
                min(max(x2, 0.0), fw), min(max(y2, 0.0), fh))

    def to_input(self, box: Box) -> Box:
        """The inverse of :meth:`to_frame` (without clipping)."""
        return (box[0] * self.scale_x + self.pad_x, box[1] * self.scale_y + self.pad_y,
                box[2] * self.scale_x + self.pad_x, box[3] * self.scale_y + self.pad_y)


def to_input_rgb(frame: NDArray[np.uint8], fit: InputFit) -> NDArray[np.uint8]:
    """The BGR frame resized into an ``input_h x input_w`` RGB image (black padding)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a BGR frame of shape [H, W, 3], got {frame.shape}")
    if (frame.shape[1], frame.shape[0]) != (fit.frame_w, fit.frame_h):
        raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the fit was computed "
                         f"for {fit.frame_w}x{fit.frame_h}")
    content = cv2.resize(frame, (fit.content_w, fit.content_h), interpolation=cv2.INTER_LINEAR)
    rgb = np.asarray(cv2.cvtColor(content, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    if (fit.content_w, fit.content_h) == (fit.input_w, fit.input_h):
        return rgb
    out = np.zeros((fit.input_h, fit.input_w, 3), dtype=np.uint8)
    out[fit.pad_y:fit.pad_y + fit.content_h, fit.pad_x:fit.pad_x + fit.content_w] = rgb
    return out


def normalise(rgb: NDArray[np.uint8], scale: InputScale, dtype: Any,
              quantization: tuple[float, int] = (0.0, 0)) -> NDArray[Any]:
    """RGB bytes to the model's input dtype. uint8 inputs take the raw bytes (quantised SSD and
    EfficientDet-Lite exports expect them); float inputs get ``scale``; int8 inputs get ``scale``
    and then the tensor's own quantisation ``(scale, zero_point)``."""
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return rgb
    if dt.kind != "f" and dt != np.int8:
        raise ValueError(f"unsupported model input dtype {dt}: float16/32, uint8 and int8 are")
    x = rgb.astype(np.float32)
    if scale == "signed":
        x = x / 127.5 - 1.0
    elif scale == "unit":
        x = x / 255.0
    elif scale == "nanodet":
        mean = np.asarray(NANODET_MEAN_BGR, dtype=np.float32)
        std = np.asarray(NANODET_STD_BGR, dtype=np.float32)
        x = np.asarray((x[..., ::-1] - mean) / std, dtype=np.float32)
    if dt == np.int8:
        q_scale, zero_point = quantization
        if q_scale <= 0:
            raise ValueError("an int8 model input needs quantisation parameters; it has none")
        return np.clip(np.round(x / q_scale + zero_point), -128, 127).astype(np.int8)
    return x.astype(dt, copy=False)


def to_frame_detections(detections: list[Detection], fit: InputFit) -> list[Detection]:
    """Detections in model input pixels to frame pixels; boxes that fall wholly in the
    letterbox padding (empty once clipped to the frame) are dropped."""
    out = []
    for det in detections:
        box = fit.to_frame(det.box)
        if box[2] > box[0] and box[3] > box[1]:
            out.append(Detection(box, det.score, det.label))
    return out
