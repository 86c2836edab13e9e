"""OpenCV's built-in HOG + linear SVM people detector: always available, no model file, the
offline default. It wants people at least ~100 px tall, so motion regions are cropped and scaled
up to ``roi_height_px`` before the search; that also keeps it cheap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import cv2
import numpy as np
from pydantic import Field

from edge.camera.detectors.base import Image
from edge.config import StrictModel
from edge.vision.boxes import Box, Detection, nms

KEY = "hog"


class Config(StrictModel):
    type: Literal["hog"] = "hog"
    min_score: Annotated[float, Field(ge=-5, le=10)] = 0.2
    win_stride_px: Annotated[int, Field(ge=4, le=32, multiple_of=4)] = 8
    scale_step: Annotated[float, Field(gt=1.0, le=2.0)] = 1.06
    roi_height_px: Annotated[int, Field(ge=128, le=1024)] = 200
    max_roi_upscale: Annotated[float, Field(ge=1, le=8)] = 3.0
    nms_iou: Annotated[float, Field(gt=0, le=1)] = 0.3
    tighten: bool = Field(default=True, description="shrink the 64x128 window to the body")


class HogPeopleDetector:
    name = KEY

    def __init__(self, config: Config) -> None:
        self.config = config
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(
            np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32))

    def _search(self, image: Image) -> list[tuple[Box, float]]:
        cfg = self.config
        if image.shape[0] < 128 or image.shape[1] < 64:
            return []
        rects, weights = self._hog.detectMultiScale(
            image, hitThreshold=0.0, winStride=(cfg.win_stride_px, cfg.win_stride_px),
            padding=(8, 8), scale=cfg.scale_step,
        )
        out = []
        for (x, y, w, h), score in zip(rects, np.asarray(weights).reshape(-1), strict=True):
            out.append(((float(x), float(y), float(x + w), float(y + h)), float(score)))
        return out

    def detect(self, frame: Image, regions: Sequence[Box] | None = None) -> list[Detection]:
        cfg = self.config
        h, w = frame.shape[:2]
        found: list[Detection] = []
        for region in regions if regions is not None else [(0.0, 0.0, float(w), float(h))]:
            x1, y1 = max(0, int(region[0])), max(0, int(region[1]))
            x2, y2 = min(w, int(np.ceil(region[2]))), min(h, int(np.ceil(region[3])))
            if x2 - x1 < 8 or y2 - y1 < 16:
                continue
            crop = frame[y1:y2, x1:x2]
            scale = min(cfg.max_roi_upscale, max(1.0, cfg.roi_height_px / (y2 - y1)))
            # a crop narrower than the window after scaling is padded, not skipped
            cw, ch = round((x2 - x1) * scale), round((y2 - y1) * scale)
            img: Image = np.asarray(
                cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_LINEAR) if scale > 1 else crop,
                dtype=np.uint8)
            if img.shape[1] < 72 or img.shape[0] < 136:
                px = max(0, 72 - img.shape[1])
                py = max(0, 136 - img.shape[0])
                img = np.asarray(cv2.copyMakeBorder(img, py // 2, py - py // 2, px // 2,
                                                    px - px // 2, cv2.BORDER_REPLICATE),
                                 dtype=np.uint8)
                offx, offy = px // 2, py // 2
            else:
                offx = offy = 0
            for (bx1, by1, bx2, by2), score in self._search(img):
                if score < cfg.min_score:
                    continue
                box = ((bx1 - offx) / scale + x1, (by1 - offy) / scale + y1,
                       (bx2 - offx) / scale + x1, (by2 - offy) / scale + y1)
                if cfg.tighten:
                    bw, bh = box[2] - box[0], box[3] - box[1]
                    box = (box[0] + 0.18 * bw, box[1] + 0.09 * bh, box[2] - 0.18 * bw,
                           box[3] - 0.09 * bh)
                found.append(Detection(box, score, "person"))
        return nms(found, cfg.nms_iou)

    def close(self) -> None:
        return None


def create(config: Config) -> HogPeopleDetector:
    return HogPeopleDetector(config)
