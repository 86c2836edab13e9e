"""Axis-aligned boxes in image pixels: ``(x1, y1, x2, y2)`` with x1 < x2, y1 < y2."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Detection:
    """One detector output in frame pixels. ``label`` is a class name such as "person"."""

    box: Box
    score: float
    label: str = "person"


def area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def foot_point(b: Box) -> tuple[float, float]:
    """Bottom centre: where a standing person touches the ground (what zones and maps use)."""
    return ((b[0] + b[2]) / 2.0, b[3])


def center(b: Box) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)


def clip(b: Box, width: float, height: float) -> Box:
    return (min(max(b[0], 0.0), width), min(max(b[1], 0.0), height),
            min(max(b[2], 0.0), width), min(max(b[3], 0.0), height))


def nms(detections: Sequence[Detection], iou_threshold: float) -> list[Detection]:
    """Greedy non-maximum suppression per label, highest score first."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(k.label != det.label or iou(k.box, det.box) <= iou_threshold for k in kept):
            kept.append(det)
    return kept
