"""Weighted least-squares trilateration on a local metric plane (pure numpy)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Estimate:
    x: float
    y: float
    accuracy_m: float
    method: str  # "gnss" | "trilateration" | "nearest"


def trilaterate(anchors: NDArray[np.float64], distances: NDArray[np.float64],
                sigmas: NDArray[np.float64], iterations: int = 10) -> Estimate:
    """Minimise sum(((|p - a_i| - d_i) / sigma_i)^2) by Gauss-Newton from the weighted centroid.

    Needs three or more anchors that are not collinear; the accuracy is the 1-sigma radius from
    the estimate's covariance, floored by the weighted residual.
    """
    n = len(anchors)
    if n < 3 or len(distances) != n or len(sigmas) != n:
        raise ValueError("trilateration needs three or more anchors with distances and sigmas")
    w = 1.0 / np.maximum(sigmas, 0.1) ** 2
    p = (anchors * (w / w.sum())[:, None]).sum(axis=0)
    cov = np.eye(2) * 1e6
    for _ in range(iterations):
        delta = p - anchors
        ranges = np.maximum(np.hypot(delta[:, 0], delta[:, 1]), 1e-6)
        jac = delta / ranges[:, None]
        resid = distances - ranges
        jtw = jac.T * w
        normal = jtw @ jac
        if abs(np.linalg.det(normal)) < 1e-12:
            break
        cov = np.linalg.inv(normal)
        step = cov @ (jtw @ resid)
        p = p + step
        if float(np.hypot(step[0], step[1])) < 0.01:
            break
    ranges = np.hypot(*(p - anchors).T)
    rms = float(np.sqrt(np.sum(w * (distances - ranges) ** 2) / w.sum()))
    sigma = math.sqrt(max(float(np.trace(cov)), 0.0))
    return Estimate(float(p[0]), float(p[1]), max(min(sigma, 10_000.0), rms, 0.5), "trilateration")
