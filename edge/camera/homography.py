"""Per-camera homography from image pixels to WGS84 lon/lat.

The operator measures at least four ground points visible in the image (pixel, lon/lat). We fit
the plane-to-plane homography in a local east/north metre frame around the first point (well
conditioned, unlike raw degrees) with the normalised direct linear transform, then map foot
points of tracks to metres and on to lon/lat. Only points on the ground plane map correctly,
which is why trackers hand over foot points, not box centres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from edge.config import StrictModel
from edge.projection import LocalProjection

Matrix = NDArray[np.float64]


class GroundPoint(StrictModel):
    px: Annotated[tuple[float, float], Field(description="[x, y] in frame pixels")]
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]


class HomographyConfig(StrictModel):
    points: list[GroundPoint] = Field(min_length=4, max_length=64)
    accuracy_m: Annotated[float, Field(ge=0, le=10_000)] = 2.0

    @model_validator(mode="after")
    def _solvable(self) -> HomographyConfig:
        try:
            CameraHomography(self)
        except HomographyError as err:
            raise ValueError(str(err)) from err
        return self


class HomographyError(ValueError):
    """Ground points that do not define a usable mapping."""


def _normaliser(pts: Matrix) -> Matrix:
    mean = pts.mean(axis=0)
    spread = np.sqrt(((pts - mean) ** 2).sum(axis=1)).mean()
    s = math.sqrt(2) / spread if spread > 0 else 1.0
    return np.array([[s, 0, -s * mean[0]], [0, s, -s * mean[1]], [0, 0, 1]], dtype=np.float64)


def fit_homography(src: Sequence[tuple[float, float]],
                   dst: Sequence[tuple[float, float]]) -> Matrix:
    """3x3 H with dst ~ H @ src (least squares for more than four pairs)."""
    if len(src) != len(dst) or len(src) < 4:
        raise HomographyError("a homography needs at least four point pairs")
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    ts, td = _normaliser(s), _normaliser(d)
    sh = (ts @ np.c_[s, np.ones(len(s))].T).T
    dh = (td @ np.c_[d, np.ones(len(d))].T).T
    rows = []
    for (x, y, _), (u, v, _) in zip(sh, dh, strict=True):
        rows.append([-x, -y, -1, 0, 0, 0, u * x, u * y, u])
        rows.append([0, 0, 0, -x, -y, -1, v * x, v * y, v])
    a = np.asarray(rows, dtype=np.float64)
    _, sv, vt = np.linalg.svd(a)
    if sv[-2] < 1e-9 * sv[0]:
        raise HomographyError("ground points are degenerate (three or more on one line?)")
    hn = vt[-1].reshape(3, 3)
    h: Matrix = np.linalg.inv(td) @ hn @ ts
    if abs(h[2, 2]) < 1e-12:
        raise HomographyError("ground points give a homography at infinity")
    return np.asarray(h / h[2, 2], dtype=np.float64)


def apply(h: Matrix, x: float, y: float) -> tuple[float, float]:
    u, v, w = h @ np.array([x, y, 1.0])
    if abs(w) < 1e-12:
        raise HomographyError(f"pixel ({x:.0f}, {y:.0f}) maps to the horizon")
    return float(u / w), float(v / w)


class CameraHomography:
    def __init__(self, config: HomographyConfig) -> None:
        self.config = config
        ref = config.points[0]
        self.ref_lon, self.ref_lat = ref.lon, ref.lat
        self.projection = LocalProjection(ref.lon, ref.lat)
        metres = [self.projection.to_site(p.lon, p.lat) for p in config.points]
        self.matrix = fit_homography([p.px for p in config.points], metres)
        worst = max(
            math.dist(apply(self.matrix, *p.px), m)
            for p, m in zip(config.points, metres, strict=True)
        )
        self.residual_m = worst

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        return self.projection.offset(*apply(self.matrix, x, y))

    def to_metres(self, x: float, y: float) -> tuple[float, float]:
        return apply(self.matrix, x, y)
