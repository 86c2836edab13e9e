"""Output parsers for common detector heads: pure numpy, tensors in, detections out.

- SSD-style post-processed outputs (TFLite ``TFLite_Detection_PostProcess``, TF Object
  Detection API exports, EfficientDet-Lite): boxes ``[N, 4]`` as normalised
  ``ymin, xmin, ymax, xmax``, class indices ``[N]``, scores ``[N]``, and a valid count.
- YOLO-style raw heads (``[1, 4 + C, N]`` or ``[1, N, 4 + C]``): centre x/y, width, height in
  input pixels, then one score per class; these need non-maximum suppression here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from edge.camera.boxes import Detection, nms

Floats = NDArray[np.floating]


def label_for(index: int, labels: Sequence[str]) -> str:
    return labels[index] if 0 <= index < len(labels) else f"class_{index}"


def parse_ssd(boxes: Floats, classes: Floats, scores: Floats, count: int | None, *,
              frame_size: tuple[int, int], labels: Sequence[str], min_score: float,
              keep: set[str] | None = None) -> list[Detection]:
    """Post-processed SSD outputs (batch dimension optional) to detections in frame pixels."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    c = np.asarray(classes, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not len(b) == len(c) == len(s):
        raise ValueError(f"SSD outputs disagree in length: {len(b)}, {len(c)}, {len(s)}")
    n = len(s) if count is None else max(0, min(int(count), len(s)))
    width, height = frame_size
    out: list[Detection] = []
    for i in range(n):
        score = float(s[i])
        if not np.isfinite(score) or score < min_score:
            continue
        label = label_for(round(float(c[i])), labels)
        if keep is not None and label not in keep:
            continue
        ymin, xmin, ymax, xmax = (float(v) for v in np.clip(b[i], 0.0, 1.0))
        if xmax <= xmin or ymax <= ymin:
            continue
        out.append(Detection((xmin * width, ymin * height, xmax * width, ymax * height),
                             score, label))
    return out


def parse_yolo(output: Floats, *, input_size: tuple[int, int], frame_size: tuple[int, int],
               labels: Sequence[str], min_score: float, nms_iou: float,
               keep: set[str] | None = None) -> list[Detection]:
    """Raw YOLO head (v5 without objectness / v8 layout) to detections in frame pixels."""
    arr = np.asarray(output, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[0]
    n_attr = 4 + len(labels) if labels else None
    if arr.ndim != 2 or max(arr.shape) < 5 or (n_attr is not None and n_attr not in arr.shape):
        raise ValueError(f"YOLO output must be [4 + classes, N] or [N, 4 + classes], got "
                         f"{np.asarray(output).shape}")
    if (n_attr is not None and arr.shape[0] == n_attr and arr.shape[1] != n_attr) or (
            n_attr is None and arr.shape[0] < arr.shape[1]):
        arr = arr.T
    class_scores = arr[:, 4:]
    best = class_scores.argmax(axis=1)
    best_score = class_scores[np.arange(len(arr)), best]
    sx = frame_size[0] / input_size[0]
    sy = frame_size[1] / input_size[1]
    dets: list[Detection] = []
    for i in np.nonzero(best_score >= min_score)[0]:
        label = label_for(int(best[i]), labels)
        if keep is not None and label not in keep:
            continue
        cx, cy, w, h = (float(v) for v in arr[i, :4])
        if w <= 0 or h <= 0:
            continue
        dets.append(Detection(((cx - w / 2) * sx, (cy - h / 2) * sy, (cx + w / 2) * sx,
                               (cy + h / 2) * sy), float(best_score[i]), label))
    return nms(dets, nms_iou)
