"""The one local map projection of the edge (and of hub fusion): WGS84 lon/lat <-> metres east
and north of a site reference point.

A local tangent-plane (equirectangular) projection around ``(lon0, lat0)`` scaled by the WGS84
ellipsoid's radii of curvature *at lat0*::

    x_m = (lon - lon0) * pi/180 * N(lat0) * cos(lat0)      (east)
    y_m = (lat - lat0) * pi/180 * M(lat0)                  (north)
    N = a / sqrt(1 - e2 sin^2 lat0)   (prime vertical),  M = a (1 - e2) / (1 - e2 sin^2 lat0)^1.5

Using the ellipsoid's local radii instead of one spherical constant matters: a sphere is off by
up to 0.7 % in north-south scale (metres at 500 m). With them, the error against WGS84 geodesics
is a few centimetres at 500 m and grows with the square of the distance (tests check it against
Vincenty's formulae), well inside every sensor's own noise over a site of a few hundred metres.
It is not for kilometre-scale distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import overload

import numpy as np
from numpy.typing import NDArray

WGS84_A_M = 6_378_137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)

FloatArray = NDArray[np.float64]


def metres_per_degree(lat_deg: float) -> tuple[float, float]:
    """(east, north) metres per degree of longitude and latitude at ``lat_deg``."""
    phi = math.radians(lat_deg)
    w = 1.0 - WGS84_E2 * math.sin(phi) ** 2
    n = WGS84_A_M / math.sqrt(w)
    m = WGS84_A_M * (1.0 - WGS84_E2) / w**1.5
    return math.radians(1.0) * n * math.cos(phi), math.radians(1.0) * m


@dataclass(frozen=True, slots=True)
class LocalProjection:
    lon0: float
    lat0: float
    kx: float = field(init=False, repr=False)
    ky: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (-180.0 <= self.lon0 <= 180.0 and -89.0 <= self.lat0 <= 89.0):
            raise ValueError(f"projection origin ({self.lon0}, {self.lat0}) is not a usable "
                             "lon/lat (latitude must be within 89 degrees of the equator)")
        kx, ky = metres_per_degree(self.lat0)
        object.__setattr__(self, "kx", kx)
        object.__setattr__(self, "ky", ky)

    @overload
    def to_xy(self, lon: float, lat: float) -> tuple[float, float]: ...

    @overload
    def to_xy(self, lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]: ...

    def to_xy(self, lon: float | FloatArray, lat: float | FloatArray
              ) -> tuple[float | FloatArray, float | FloatArray]:
        """lon/lat (scalars or arrays) to metres east/north of the origin."""
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    def to_site(self, lon: float, lat: float) -> tuple[float, float]:
        """Scalar :meth:`to_xy` (the LiDAR's name for it: site metres)."""
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    @overload
    def to_lonlat(self, x: float, y: float) -> tuple[float, float]: ...

    @overload
    def to_lonlat(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]: ...

    def to_lonlat(self, x: float | FloatArray, y: float | FloatArray
                  ) -> tuple[float | FloatArray, float | FloatArray]:
        """Metres east/north of the origin (scalars or arrays) to lon/lat."""
        return self.lon0 + x / self.kx, self.lat0 + y / self.ky

    def offset(self, east_m: float, north_m: float) -> tuple[float, float]:
        """The lon/lat ``east_m``/``north_m`` from the origin (for placing things in demos)."""
        return self.lon0 + east_m / self.kx, self.lat0 + north_m / self.ky


def local_distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Metres between two nearby lon/lat points, in the projection around the first."""
    x, y = LocalProjection(*a).to_site(*b)
    return math.hypot(x, y)
