"""RSSI ranging and weighted least-squares trilateration on a local metric plane (pure numpy).

Shared by the wristband gateway (its own receivers) and the hub (sightings of every gateway of a
site, :mod:`hub.fusion`). Coordinates are metres on a plane such as
:class:`edge.geofence.LocalProjection`; nothing here knows about lon/lat, MQTT or clocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MIN_ANCHORS = 3
MAX_ACCURACY_M = 10_000.0


@dataclass(frozen=True, slots=True)
class Calibration:
    """Log-distance path loss: rssi(d) = tx_power_1m_dbm - 10 * n * log10(d / 1 m)."""

    tx_power_1m_dbm: float = -59.0
    path_loss_exponent: float = 2.0

    def distance_m(self, rssi_dbm: float) -> float:
        return float(10 ** ((self.tx_power_1m_dbm - rssi_dbm) / (10 * self.path_loss_exponent)))

    def rssi_dbm(self, distance_m: float) -> float:
        return self.tx_power_1m_dbm - 10 * self.path_loss_exponent * math.log10(
            max(distance_m, 0.1))

    def distance_sigma_m(self, distance_m: float, rssi_sigma_db: float) -> float:
        # Shadowing is log-normal: a dB error scales the distance, so sigma grows with d.
        return distance_m * math.log(10) / (10 * self.path_loss_exponent) * rssi_sigma_db


@dataclass(frozen=True, slots=True)
class Estimate:
    x: float
    y: float
    accuracy_m: float
    method: str  # "gnss" | "trilateration" | "nearest"


@dataclass(frozen=True, slots=True)
class RangeReading:
    """One anchor (receiver) at (x, y) metres with a smoothed RSSI of the band."""

    x: float
    y: float
    rssi_dbm: float
    calibration: Calibration
    rssi_sigma_db: float


def trilaterate(anchors: NDArray[np.float64], distances: NDArray[np.float64],
                sigmas: NDArray[np.float64], iterations: int = 10) -> Estimate:
    """Minimise sum(((|p - a_i| - d_i) / sigma_i)^2) by Gauss-Newton from the weighted centroid.

    Needs three or more anchors that are not collinear; the accuracy is the 1-sigma radius from
    the estimate's covariance, floored by the weighted residual.
    """
    n = len(anchors)
    if n < MIN_ANCHORS or len(distances) != n or len(sigmas) != n:
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
    return Estimate(float(p[0]), float(p[1]), max(min(sigma, MAX_ACCURACY_M), rms, 0.5),
                    "trilateration")


def locate(readings: Sequence[RangeReading]) -> Estimate:
    """Range every reading with its own calibration and trilaterate (3+ readings)."""
    if len(readings) < MIN_ANCHORS:
        raise ValueError("trilateration needs three or more readings")
    anchors = np.array([[r.x, r.y] for r in readings], dtype=np.float64)
    dist = np.array([r.calibration.distance_m(r.rssi_dbm) for r in readings], dtype=np.float64)
    sigma = np.array([r.calibration.distance_sigma_m(d, r.rssi_sigma_db)
                      for r, d in zip(readings, dist, strict=True)], dtype=np.float64)
    return trilaterate(anchors, dist, sigma)
