"""Foreground points to objects: neighbours in scan order join when close, then clusters whose
centres are close merge (two legs, or a body split by an occluding post)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.lidar.geometry import FloatArray


@dataclass(frozen=True, slots=True)
class ClusterParams:
    join_m: float = 0.35
    merge_m: float = 0.5
    min_points: int = 3
    max_extent_m: float = 2.0


@dataclass(frozen=True, slots=True)
class Cluster:
    x_m: float
    y_m: float
    n_points: int
    extent_m: float


def cluster_points(xs: FloatArray, ys: FloatArray, p: ClusterParams) -> list[Cluster]:
    """``xs``/``ys``: foreground points in site metres, in scan (angle) order."""
    n = len(xs)
    if n == 0:
        return []
    gaps = np.hypot(np.diff(xs), np.diff(ys))
    breaks = np.flatnonzero(gaps > p.join_m) + 1
    groups = [list(range(a, b)) for a, b in
              zip([0, *breaks.tolist()], [*breaks.tolist(), n], strict=True)]
    # The scan is circular: the last run may continue the first one across 0 degrees.
    if len(groups) > 1 and math.hypot(xs[-1] - xs[0], ys[-1] - ys[0]) <= p.join_m:
        groups[0] = groups.pop() + groups[0]
    merged = _merge([np.array(g) for g in groups], xs, ys, p.merge_m)
    out: list[Cluster] = []
    for idx in merged:
        if len(idx) < p.min_points:
            continue
        cx, cy = float(np.mean(xs[idx])), float(np.mean(ys[idx]))
        extent = float(np.max(np.hypot(xs[idx] - cx, ys[idx] - cy))) * 2
        if extent <= p.max_extent_m:
            out.append(Cluster(cx, cy, len(idx), extent))
    return out


def _merge(groups: list[np.ndarray], xs: FloatArray, ys: FloatArray,
           merge_m: float) -> list[np.ndarray]:
    centres = [(float(np.mean(xs[g])), float(np.mean(ys[g]))) for g in groups]
    changed = True
    while changed and len(groups) > 1:
        changed = False
        best: tuple[float, int, int] | None = None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                d = math.hypot(centres[i][0] - centres[j][0], centres[i][1] - centres[j][1])
                if d <= merge_m and (best is None or d < best[0]):
                    best = (d, i, j)
        if best is not None:
            _, i, j = best
            groups[i] = np.concatenate([groups[i], groups[j]])
            centres[i] = (float(np.mean(xs[groups[i]])), float(np.mean(ys[groups[i]])))
            del groups[j], centres[j]
            changed = True
    return groups
