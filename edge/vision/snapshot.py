"""Evidence snapshots: a JPEG of the frame with the boxes drawn, bounded in bytes.

Quality steps down first, then the image shrinks, until the JPEG fits ``max_bytes`` (never more
than the contract's :data:`~edge.protocol.EVIDENCE_MAX_BYTES`). Raw video never leaves the box;
this small still is the only image an alert carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from edge.config import StrictModel
from edge.protocol import EVIDENCE_MAX_BYTES, Evidence
from edge.vision.boxes import Box

Image = NDArray[np.uint8]


class SnapshotConfig(StrictModel):
    max_bytes: Annotated[int, Field(ge=4096, le=EVIDENCE_MAX_BYTES)] = 48 * 1024
    max_width_px: Annotated[int, Field(ge=64, le=4096)] = 480
    quality: Annotated[int, Field(ge=20, le=100)] = 70
    min_quality: Annotated[int, Field(ge=5, le=100)] = 30


class SnapshotError(Exception):
    """The frame cannot be encoded within the size limit."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    jpeg: bytes
    width: int
    height: int

    def evidence(self) -> Evidence:
        return Evidence.from_jpeg(self.jpeg, width=self.width, height=self.height)


def draw_boxes(frame: Image, boxes: Sequence[tuple[Box, str]],
               highlight: int | None = None) -> Image:
    out = frame.copy()
    for i, (box, text) in enumerate(boxes):
        colour = (0, 0, 255) if i == highlight else (0, 200, 255)
        p1 = (int(box[0]), int(box[1]))
        p2 = (int(box[2]), int(box[3]))
        cv2.rectangle(out, p1, p2, colour, 2)
        if text:
            cv2.putText(out, text, (p1[0], max(12, p1[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        colour, 1, cv2.LINE_AA)
    return out


def encode_jpeg(image: Image, config: SnapshotConfig) -> Snapshot:
    img = image
    if img.shape[1] > config.max_width_px:
        scale = config.max_width_px / img.shape[1]
        img = np.asarray(cv2.resize(img, (config.max_width_px,
                                          max(1, round(img.shape[0] * scale))),
                                    interpolation=cv2.INTER_AREA), dtype=np.uint8)
    while True:
        quality = config.quality
        while quality >= config.min_quality:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise SnapshotError("OpenCV could not encode the snapshot as JPEG")
            if buf.size <= config.max_bytes:
                return Snapshot(buf.tobytes(), img.shape[1], img.shape[0])
            quality -= 10
        if img.shape[1] <= 64:
            raise SnapshotError(f"snapshot does not fit {config.max_bytes} bytes even at 64 px")
        img = np.asarray(cv2.resize(img, (max(64, img.shape[1] * 3 // 4),
                                          max(1, img.shape[0] * 3 // 4)),
                                    interpolation=cv2.INTER_AREA), dtype=np.uint8)


def render_snapshot(frame: Image, boxes: Sequence[tuple[Box, str]], config: SnapshotConfig,
                    highlight: int | None = None) -> Snapshot:
    return encode_jpeg(draw_boxes(frame, boxes, highlight), config)
