"""Output parsers for common detector heads: pure numpy, tensors in, detections out.

- SSD-style post-processed outputs (TFLite ``TFLite_Detection_PostProcess``, TF Object
  Detection API exports, EfficientDet-Lite): boxes ``[N, 4]`` as normalised
  ``ymin, xmin, ymax, xmax``, class indices ``[N]``, scores ``[N]``, and a valid count.
- YOLO-style raw heads (``[1, 4 + C, N]`` or ``[1, N, 4 + C]``): centre x/y, width, height in
  input pixels, then one score per class; these need non-maximum suppression here.
- Raw anchor heads of MediaPipe-style SSDs (BlazeFace and the other Blaze* detectors):
  regressors ``[1, N, 4 + 2K]`` (box centre offset and size in input pixels relative to
  fixed-size anchors, then K keypoints that are ignored here) and score logits ``[1, N, C]``;
  the anchors come from :func:`ssd_anchors`, and non-maximum suppression runs here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from edge.vision.boxes import Detection, nms

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


def ssd_anchors(input_size: tuple[int, int], strides: Sequence[int], *,
                anchors_per_layer: int = 2, offset: float = 0.5) -> NDArray[np.float64]:
    """Anchor centres ``[N, 2]`` (x, y normalised to the input) as MediaPipe's
    ``SsdAnchorsCalculator`` makes them with ``fixed_anchor_size``: consecutive layers of equal
    stride share one grid and each adds ``anchors_per_layer`` anchors per cell (2 when
    ``interpolated_scale_aspect_ratio`` is 1.0 with one aspect ratio, else 1)."""
    if not strides or min(strides) <= 0 or anchors_per_layer <= 0:
        raise ValueError(f"strides must be positive and non-empty, got {list(strides)}")
    width, height = input_size
    parts: list[NDArray[np.float64]] = []
    i = 0
    while i < len(strides):
        j, per_cell = i, 0
        while j < len(strides) and strides[j] == strides[i]:
            per_cell += anchors_per_layer
            j += 1
        grid_h, grid_w = math.ceil(height / strides[i]), math.ceil(width / strides[i])
        ys, xs = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
        centres = np.stack([(xs.reshape(-1) + offset) / grid_w,
                            (ys.reshape(-1) + offset) / grid_h], axis=1)
        parts.append(np.repeat(centres, per_cell, axis=0))
        i = j
    return np.concatenate(parts).astype(np.float64)


def parse_raw_ssd(regressors: Floats, scores: Floats, anchors: Floats, *,
                  input_size: tuple[int, int], labels: Sequence[str], min_score: float,
                  nms_iou: float, keep: set[str] | None = None, logits: bool = True,
                  logit_clip: float = 80.0) -> list[Detection]:
    """Raw anchor head to detections in model input pixels (the caller maps them to the frame).

    Box ``i`` is centred at ``anchor_i * input_size + (dx, dy)`` with size ``(w, h)``, all in
    input pixels (MediaPipe's ``TensorsToDetectionsCalculator`` with x/y/w/h scale equal to the
    input size and fixed anchors). Scores are logits unless ``logits`` is False; they are
    clipped to ``logit_clip`` first, as MediaPipe does, so the sigmoid cannot overflow."""
    anc = np.asarray(anchors, dtype=np.float64).reshape(-1, 2)
    n = len(anc)
    reg = np.asarray(regressors, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    if reg.ndim < 2 or reg.shape[-1] < 4 or reg.size != n * reg.shape[-1]:
        raise ValueError(f"regressors {reg.shape} do not hold 4+ values for each of {n} anchors")
    classes = sc.shape[-1] if sc.ndim >= 2 and sc.size != n else 1
    if sc.size == 0 or sc.size != n * classes:
        raise ValueError(f"scores {sc.shape} do not hold the scores of {n} anchors")
    reg = reg.reshape(n, -1)
    sc = sc.reshape(n, classes)
    if logits:
        sc = 1.0 / (1.0 + np.exp(-np.clip(sc, -logit_clip, logit_clip)))
    best = sc.argmax(axis=1)
    best_score = sc[np.arange(n), best]
    width, height = input_size
    dets: list[Detection] = []
    for i in np.nonzero(best_score >= min_score)[0]:
        label = label_for(int(best[i]), labels)
        if keep is not None and label not in keep:
            continue
        w, h = float(reg[i, 2]), float(reg[i, 3])
        if not (w > 0 and h > 0):
            continue
        cx = float(anc[i, 0]) * width + float(reg[i, 0])
        cy = float(anc[i, 1]) * height + float(reg[i, 1])
        dets.append(Detection((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
                              float(best_score[i]), label))
    return nms(dets, nms_iou)
