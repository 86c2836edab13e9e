"""Test clips made from real footage (vtest.avi, OpenCV's pedestrian video), decoded once.

- :func:`standing_person_clip`: the scene keeps moving (people walk by), but one person is
  frozen in place: the rectangle around them is the same crop of one frame in every frame. To
  the camera that is a person standing perfectly still while the street moves behind.
- :func:`panning_clip`: a window sliding across the frames, which is what a camera panning over
  the scene sees.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]

# vtest frame 200: one walker stands out for HOG at (611, 256)-(658, 377); the crop keeps
# them ~120 px tall (HOG's window wants ~100 px people) in a 384 x 288 view of the street.
STILL_FRAME = 200
VIEW = (384, 200, 768, 488)  # x1, y1, x2, y2 in vtest pixels
FROZEN = (585, 230, 690, 400)  # the rectangle kept still, vtest pixels


@cache
def vtest_frames(path: Path) -> tuple[Image, ...]:
    cap = cv2.VideoCapture(str(path))
    frames: list[Image] = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(np.asarray(frame, dtype=np.uint8))
    finally:
        cap.release()
    assert len(frames) == 795, f"vtest.avi decoded to {len(frames)} frames"
    return tuple(frames)


def standing_person_clip(path: Path, n: int, step: int = 2) -> list[Image]:
    """``n`` frames of the street (every ``step``-th source frame) with one person frozen."""
    frames = vtest_frames(path)
    fx1, fy1, fx2, fy2 = FROZEN
    still = frames[STILL_FRAME][fy1:fy2, fx1:fx2]
    vx1, vy1, vx2, vy2 = VIEW
    out = []
    for i in range(n):
        frame = frames[(STILL_FRAME + i * step) % len(frames)].copy()
        frame[fy1:fy2, fx1:fx2] = still
        out.append(np.ascontiguousarray(frame[vy1:vy2, vx1:vx2]))
    return out


def frozen_box_in_view() -> tuple[float, float, float, float]:
    vx1, vy1 = VIEW[0], VIEW[1]
    fx1, fy1, fx2, fy2 = FROZEN
    return (float(fx1 - vx1), float(fy1 - vy1), float(fx2 - vx1), float(fy2 - vy1))


def panning_clip(path: Path, n: int, speed_px: int = 4, start: int = 100,
                 size: tuple[int, int] = (384, 288)) -> list[Image]:
    """A ``size`` window moving right by ``speed_px`` per frame over successive frames."""
    frames = vtest_frames(path)
    w, h = size
    top = 150
    out = []
    for i in range(n):
        x = min(i * speed_px, frames[0].shape[1] - w)
        out.append(np.ascontiguousarray(frames[start + i][top:top + h, x:x + w]))
    return out
