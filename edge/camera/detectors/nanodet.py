"""NanoDet heads: pure numpy, tensors in, detections out (no runtime, no I/O).

NanoDet-m (RangiLyu, Apache-2.0) predicts, for every cell of a stride-8, -16 and -32 grid over
its input, one score per COCO class (already passed through a sigmoid in the exported graph)
and, per box side (left, top, right, bottom), a distribution over ``reg_max + 1`` distance bins
(Generalised Focal Loss). A side's distance is the expectation of the softmaxed distribution
times the stride; taking the argmax bin instead quantises boxes to whole strides and misplaces
them. Cells are centred at ``(col + 0.5, row + 0.5) * stride``, row-major.

Two output layouts are accepted, told apart by their shapes (runtimes reorder outputs):

- per stride, a pair ``[1, cells, classes]`` scores and ``[1, cells, 4 * bins]`` distributions
  (the TensorFlow.js export that ``gridward edge camera models build nanodet-m`` converts);
- one ``[1, all cells, classes + 4 * bins]`` tensor, strides in increasing order (the upstream
  ONNX export).

The model takes NanoDet's own normalisation: BGR, ``(pixel - mean) / std`` per channel, NCHW;
``input_scale: nanodet`` in :mod:`edge.camera.detectors.preprocess` does that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from edge.camera.detectors.parsers import label_for
from edge.vision.boxes import Detection, nms

Floats = NDArray[np.floating]

STRIDES = (8, 16, 32)
INPUT_SIZE = (416, 416)
MAX_CANDIDATES = 1000  # per level before NMS, as upstream's nms_pre: bounds the NMS cost


def grid_cells(input_size: tuple[int, int], stride: int) -> tuple[int, int]:
    """(columns, rows) of one level's grid."""
    return math.ceil(input_size[0] / stride), math.ceil(input_size[1] / stride)


def distances(distributions: Floats, bins: int) -> NDArray[np.float64]:
    """``[N, 4 * bins]`` logits to ``[N, 4]`` expected distances in bins (softmax expectation)."""
    d = np.asarray(distributions, dtype=np.float64).reshape(-1, 4, bins)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite in, NaN out: callers drop it
        d = np.exp(d - d.max(axis=2, keepdims=True))
        d /= d.sum(axis=2, keepdims=True)
        return np.asarray(d @ np.arange(bins, dtype=np.float64), dtype=np.float64)


def _levels(outputs: Sequence[Floats], input_size: tuple[int, int], strides: Sequence[int],
            n_classes: int) -> list[tuple[int, NDArray[np.float64], NDArray[np.float64]]]:
    """(stride, scores [cells, classes], distributions [cells, 4 * bins]) per level."""
    arrays = [np.asarray(o, dtype=np.float64) for o in outputs]
    arrays = [a[0] if a.ndim == 3 and a.shape[0] == 1 else a for a in arrays]
    shapes = [list(a.shape) for a in arrays]
    if not arrays or any(a.ndim != 2 for a in arrays):
        raise ValueError(f"NanoDet outputs must be [1, cells, channels] tensors, got {shapes}")
    cells = [math.prod(grid_cells(input_size, s)) for s in strides]
    if len(arrays) == 1:  # upstream ONNX layout: every level concatenated, scores first
        a = arrays[0]
        extra = a.shape[1] - n_classes
        if a.shape[0] != sum(cells) or extra <= 0 or extra % 4:
            raise ValueError(f"NanoDet output {shapes[0]} is not [{sum(cells)} cells, "
                             f"{n_classes} classes + 4 x bins] for strides {list(strides)} on "
                             f"a {input_size[0]}x{input_size[1]} input")
        bounds = np.cumsum([0, *cells])
        return [(s, a[lo:hi, :n_classes], a[lo:hi, n_classes:])
                for s, lo, hi in zip(strides, bounds[:-1], bounds[1:], strict=True)]
    levels = []
    for stride, n in zip(strides, cells, strict=True):
        score = [a for a in arrays if a.shape == (n, n_classes)]
        dist = [a for a in arrays if a.shape[0] == n and a.shape[1] != n_classes
                and a.shape[1] % 4 == 0]
        if len(score) != 1 or len(dist) != 1:
            raise ValueError(
                f"NanoDet outputs {shapes}: stride {stride} on a {input_size[0]}x"
                f"{input_size[1]} input needs one [{n}, {n_classes}] score tensor and one "
                f"[{n}, 4 x bins] distance tensor")
        levels.append((stride, score[0], dist[0]))
    if len(arrays) != 2 * len(levels):
        raise ValueError(f"NanoDet outputs {shapes}: expected {2 * len(levels)} tensors "
                         f"(scores and distances for strides {list(strides)})")
    return levels


def check_outputs(shapes: Sequence[Sequence[int]], *, input_size: tuple[int, int],
                  n_classes: int, strides: Sequence[int] = STRIDES) -> None:
    """Raise ValueError (saying what was expected) unless output tensors of these shapes are a
    NanoDet head for this input size; plugins call it when they load a model."""
    _levels([np.zeros([int(v) for v in s], dtype=np.float32) for s in shapes], input_size,
            strides, n_classes)


def parse_nanodet(outputs: Sequence[Floats], *, input_size: tuple[int, int],
                  labels: Sequence[str], min_score: float, nms_iou: float,
                  keep: set[str] | None = None, strides: Sequence[int] = STRIDES,
                  max_candidates: int = MAX_CANDIDATES) -> list[Detection]:
    """NanoDet head outputs to detections in model input pixels (the caller maps them to the
    frame). Scores must be probabilities (the exported graph applies the sigmoid)."""
    if not labels:
        raise ValueError("NanoDet decoding needs the label list (the classes of the head)")
    if not strides or min(strides) <= 0 or max_candidates <= 0:
        raise ValueError(f"strides must be positive, got {list(strides)}")
    wanted = np.array([i for i, name in enumerate(labels) if keep is None or name in keep],
                      dtype=np.intp)
    dets: list[Detection] = []
    if wanted.size == 0:
        return dets
    for stride, scores, dist in _levels(outputs, input_size, strides, len(labels)):
        if scores.size and not (np.nanmin(scores) >= 0.0 and np.nanmax(scores) <= 1.0):
            raise ValueError(f"NanoDet stride {stride} scores leave 0..1 "
                             f"({np.nanmin(scores):.3g}..{np.nanmax(scores):.3g}): these are "
                             "logits, not the sigmoided scores this decoder takes")
        sub = scores[:, wanted]
        best = sub.argmax(axis=1)
        best_score = sub[np.arange(len(sub)), best]
        idx = np.nonzero(best_score >= min_score)[0]
        if idx.size > max_candidates:
            idx = idx[np.argsort(-best_score[idx], kind="stable")[:max_candidates]]
        if idx.size == 0:
            continue
        columns = grid_cells(input_size, stride)[0]
        cx = (idx % columns + 0.5) * stride
        cy = (idx // columns + 0.5) * stride
        d = distances(dist[idx], dist.shape[1] // 4) * stride
        x1, y1, x2, y2 = cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]
        # a NaN/inf logit makes a NaN box, which no comparison below would reject
        finite = np.asarray(np.isfinite(d).all(axis=1), dtype=bool)
        for k, i in enumerate(idx):
            score = float(best_score[i])
            if not (finite[k] and math.isfinite(score)) or x2[k] <= x1[k] or y2[k] <= y1[k]:
                continue
            dets.append(Detection((float(x1[k]), float(y1[k]), float(x2[k]), float(y2[k])),
                                  score, label_for(int(wanted[best[i]]), labels)))
    return nms(dets, nms_iou)


__all__ = ["INPUT_SIZE", "STRIDES", "check_outputs", "distances", "grid_cells",
           "parse_nanodet"]
