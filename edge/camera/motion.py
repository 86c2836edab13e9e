"""Cheap motion detection that gates the detector: it runs only where something moved.

A MOG2 background model on a small grey copy of the frame gives foreground blobs; their boxes,
grown by a margin and merged where they overlap, are the regions handed to the detector. On a
quiet scene the detector does not run at all, which is how several streams fit on a small box.
"""

from __future__ import annotations

from typing import Annotated

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from edge.camera.boxes import Box
from edge.config import StrictModel


class MotionConfig(StrictModel):
    enabled: bool = True
    analysis_width_px: Annotated[int, Field(ge=80, le=1920)] = 320
    min_area_frac: Annotated[float, Field(gt=0, lt=1)] = 0.0008
    history_frames: Annotated[int, Field(ge=10, le=10_000)] = 300
    var_threshold: Annotated[float, Field(gt=0, le=1000)] = 24.0
    margin_frac: Annotated[float, Field(ge=0, le=2)] = 0.35
    warmup_frames: Annotated[int, Field(ge=0, le=10_000)] = 5


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

    def regions(self, frame: NDArray[np.uint8]) -> list[Box]:
        """Regions (frame pixels) with motion; the whole frame while the model warms up."""
        cfg = self.config
        h, w = frame.shape[:2]
        scale = min(1.0, cfg.analysis_width_px / w)
        small = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1.0 else frame
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        mask = self._bg.apply(grey)
        self.frames += 1
        if self.frames <= cfg.warmup_frames:
            self.motion_fraction = 1.0
            return [(0.0, 0.0, float(w), float(h))]
        # MOG2 marks shadows 127: only confident foreground (255) counts as motion
        _, fg = cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        fg = cv2.dilate(fg, self._kernel, iterations=2)
        self.motion_fraction = float(np.count_nonzero(fg)) / fg.size
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
        return merge_boxes(boxes)
