"""Cheap motion detection that gates the detector: it runs only where something moved.

A MOG2 background model on a small grey copy of the frame gives foreground blobs; their boxes,
grown by a margin and merged where they overlap, are the regions handed to the detector. On a
quiet scene the detector does not run at all, which is how several streams fit on a small box.

A moving camera (pan, shake, a cut to another view) makes the whole background "move", so the
mask says nothing about people and would send the detector over the whole frame on every frame.
The gate recognises that from two cheap signals on the same small grey frame: the global shift
between consecutive frames (phase correlation) and the fraction of the frame the mask covers.
While the camera moves, and for ``warmup_frames`` after (the background model relearns the new
view from scratch), :meth:`MotionGate.assess` reports camera motion and no regions; the pipeline
then relies on its periodic full-frame detection instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from edge.config import StrictModel
from edge.vision.boxes import Box


class MotionConfig(StrictModel):
    enabled: bool = True
    analysis_width_px: Annotated[int, Field(ge=80, le=1920)] = 320
    min_area_frac: Annotated[float, Field(gt=0, lt=1)] = 0.0008
    history_frames: Annotated[int, Field(ge=10, le=10_000)] = 300
    var_threshold: Annotated[float, Field(gt=0, le=1000)] = 24.0
    margin_frac: Annotated[float, Field(ge=0, le=2)] = 0.35
    warmup_frames: Annotated[int, Field(ge=0, le=10_000)] = 5
    # The detector also runs on the whole frame at least this often, motion or not: a person
    # standing still (absorbed by the background model) is looked at again, and a track whose
    # person left unseen ages out at this pace (see docs/camera.md, "Stillness").
    full_frame_interval_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    camera_motion: bool = Field(default=True, description="detect pan, shake and cuts")
    # global shift between consecutive frames, in pixels of the analysis frame
    camera_shift_px: Annotated[float, Field(gt=0, le=100)] = 1.5
    # phase-correlation peak below this = no reliable shift (a cut or a featureless view)
    camera_min_response: Annotated[float, Field(ge=0, le=1)] = 0.1
    # mask covering more than this fraction of the frame = the view itself changed
    camera_mask_frac: Annotated[float, Field(gt=0, le=1)] = 0.4


CameraMotionCause = Literal["", "shift", "mask"]


@dataclass(frozen=True, slots=True)
class GateDecision:
    """What the gate says about one frame.

    ``regions`` is None while the model warms up (look everywhere), ``[]`` on a still scene.
    While ``camera_motion`` is set the regions are ``[]``: the mask is not about people then.
    ``shift_px`` is the estimated global image shift since the previous frame in frame pixels
    (content moving right = positive x), usable to carry track boxes along with a pan.
    """

    regions: list[Box] | None
    camera_motion: bool = False
    cause: CameraMotionCause = ""
    shift_px: tuple[float, float] = (0.0, 0.0)
    motion_fraction: float = 0.0


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Union boxes that overlap until none do."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for b in merged:
            for i, o in enumerate(out):
                if b[0] <= o[2] and o[0] <= b[2] and b[1] <= o[3] and o[1] <= b[3]:
                    out[i] = (min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]),
                              max(b[3], o[3]))
                    changed = True
                    break
            else:
                out.append(b)
        merged = out
    return merged


class MotionGate:
    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._bg = cv2.createBackgroundSubtractorMOG2(
            history=self.config.history_frames, varThreshold=self.config.var_threshold,
            detectShadows=True,
        )
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self.frames = 0
        self.motion_fraction = 0.0
        self.camera_motion_frames = 0
        self._prev: NDArray[np.float32] | None = None
        self._window: NDArray[np.float32] | None = None
        self._settle = 0  # frames left before the mask is trusted again

    def regions(self, frame: NDArray[np.uint8]) -> list[Box]:
        """Regions (frame pixels) with motion; the whole frame while the model warms up."""
        decision = self.assess(frame)
        if decision.regions is None:
            h, w = frame.shape[:2]
            return [(0.0, 0.0, float(w), float(h))]
        return decision.regions

    def assess(self, frame: NDArray[np.uint8]) -> GateDecision:
        """Motion regions of ``frame`` and whether the camera itself moved."""
        cfg = self.config
        h, w = frame.shape[:2]
        scale = min(1.0, cfg.analysis_width_px / w)
        small = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1.0 else frame
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        shift, response = self._global_shift(grey) if cfg.camera_motion else ((0.0, 0.0), 1.0)
        moved = abs(shift[0]) >= cfg.camera_shift_px or abs(shift[1]) >= cfg.camera_shift_px
        cause: CameraMotionCause = "shift" if moved and response >= cfg.camera_min_response \
            else ""
        # While the view moves, relearn the background from each frame (learning rate 1): the
        # old view's model would mark everything as foreground for ``history_frames`` frames.
        mask = self._bg.apply(grey, learningRate=1.0 if cause or self._settle else -1.0)
        self.frames += 1
        full_px = (shift[0] / scale, shift[1] / scale)
        if self.frames <= cfg.warmup_frames:
            self.motion_fraction = 1.0
            return GateDecision(None, motion_fraction=1.0)
        # MOG2 marks shadows 127: only confident foreground (255) counts as motion
        _, fg = cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        fg = cv2.dilate(fg, self._kernel, iterations=2)
        self.motion_fraction = float(np.count_nonzero(fg)) / fg.size
        if cfg.camera_motion and not cause and self.motion_fraction >= cfg.camera_mask_frac:
            cause = "mask"
            # the mask came from the old view: relearn from this frame
            self._bg.apply(grey, learningRate=1.0)
        if cause:
            self._settle = cfg.warmup_frames
            self.camera_motion_frames += 1
            return GateDecision([], True, cause, full_px, self.motion_fraction)
        if self._settle:
            self._settle -= 1
            self.camera_motion_frames += 1
            return GateDecision([], True, "", full_px, self.motion_fraction)
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        min_area = cfg.min_area_frac * fg.size
        boxes: list[Box] = []
        for i in range(1, n):
            x, y, bw, bh, a = (int(v) for v in stats[i])
            if a < min_area:
                continue
            mx, my = bw * cfg.margin_frac, bh * cfg.margin_frac
            boxes.append((max(0.0, (x - mx) / scale), max(0.0, (y - my) / scale),
                          min(float(w), (x + bw + mx) / scale),
                          min(float(h), (y + bh + my) / scale)))
        return GateDecision(merge_boxes(boxes), shift_px=full_px,
                            motion_fraction=self.motion_fraction)

    def _global_shift(self, grey: NDArray[Any]) -> tuple[tuple[float, float], float]:
        """Shift of ``grey`` against the previous frame (phase correlation) and its peak."""
        cur = np.asarray(grey, dtype=np.float32)
        prev, self._prev = self._prev, cur
        if prev is None or prev.shape != cur.shape:
            return (0.0, 0.0), 1.0
        if self._window is None or self._window.shape != cur.shape:
            # a Hann window keeps the frame's borders from dominating the spectrum
            self._window = np.asarray(cv2.createHanningWindow(cur.shape[::-1], cv2.CV_32F),
                                      dtype=np.float32)
        (dx, dy), response = cv2.phaseCorrelate(prev, cur, self._window)
        return (float(dx), float(dy)), float(response)
