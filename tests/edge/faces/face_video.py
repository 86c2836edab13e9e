"""A short test video made of the real face photos: each photo (head and shoulders) slides
across a plain 640x480 background for a few frames, with empty frames between photos so every
person's track ends before the next one appears. Written as MJPG AVI with cv2.VideoWriter; the
camera agent reads it through its real GStreamer file ingest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.faces.testdata import face_photo_path

WIDTH, HEIGHT = 640, 480
FPS = 10
Image = NDArray[np.uint8]


@dataclass(frozen=True)
class Segment:
    photo: str
    first_frame: int
    frames: int


def _figure(photo: str) -> Image:
    """The photo scaled so the person fills most of the frame's height (faces 60-100 px)."""
    img = cv2.imread(str(face_photo_path(photo)))
    assert img is not None, photo
    scale = (WIDTH - 40) / img.shape[1] if photo == "group" else 420 / img.shape[0]
    out = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                     interpolation=cv2.INTER_AREA)
    if out.shape[1] > 330 and photo != "group":
        x0 = (out.shape[1] - 330) // 2
        out = out[:, x0:x0 + 330]
    return np.asarray(out, dtype=np.uint8)


def background() -> Image:
    ramp = np.linspace(70, 130, WIDTH, dtype=np.float32)
    bg = np.broadcast_to(ramp[None, :, None], (HEIGHT, WIDTH, 3)).astype(np.uint8)
    return np.ascontiguousarray(bg)


def compose(photo: str, x: int = 20) -> tuple[Image, tuple[float, float, float, float]]:
    """One frame with ``photo`` at ``x``, and the figure's box (a person detector's stand-in
    for the stage's unit tests)."""
    figure = _figure(photo)
    fh, fw = figure.shape[:2]
    frame = background().copy()
    y = HEIGHT - fh
    frame[y:y + fh, x:x + fw] = figure
    return frame, (float(x), float(y), float(x + fw), float(HEIGHT))


def build_face_video(path: Path, photos: Sequence[str], *, frames_each: int = 8,
                     gap_frames: int = 5) -> list[Segment]:
    """Write the video; returns where each photo appears (frame numbers from 0)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    bg = background()
    segments: list[Segment] = []
    n = 0
    try:
        for _ in range(2):
            writer.write(bg)
            n += 1
        for photo in photos:
            figure = _figure(photo)
            fh, fw = figure.shape[:2]
            segments.append(Segment(photo, n, frames_each))
            travel = max(0, WIDTH - fw - 40)
            for i in range(frames_each):
                frame = bg.copy()
                x = 20 + (travel * i) // max(1, frames_each - 1)
                y = HEIGHT - fh
                frame[y:y + fh, x:x + fw] = figure
                writer.write(frame)
                n += 1
            for _ in range(gap_frames):
                writer.write(bg)
                n += 1
    finally:
        writer.release()
    return segments
