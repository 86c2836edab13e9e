"""Geometry of the perimeter: scanner polar samples to site metres and the polygon and segment
tests the zones and counting lines use. Site metres <-> WGS84 is the shared
:class:`edge.projection.LocalProjection` (re-exported here for older imports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.projection import LocalProjection

__all__ = ["FloatArray", "LocalProjection", "Mount", "Point", "point_in_polygon",
           "segments_intersect", "side_of_line"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Mount:
    """Scanner pose in the site frame (see :class:`edge.lidar.config.MountPose`)."""

    x_m: float
    y_m: float
    yaw_deg: float
    clockwise: bool = True

    def site_bearing_rad(self, scanner_deg: FloatArray) -> FloatArray:
        """Site-frame direction (radians counter-clockwise from east) of scanner angles."""
        sign = -1.0 if self.clockwise else 1.0
        result: FloatArray = np.radians(self.yaw_deg + sign * scanner_deg)
        return result

    def scanner_deg(self, site_bearing_rad: FloatArray) -> FloatArray:
        """Inverse of :meth:`site_bearing_rad`, in [0, 360)."""
        sign = -1.0 if self.clockwise else 1.0
        result: FloatArray = np.mod(sign * (np.degrees(site_bearing_rad) - self.yaw_deg), 360.0)
        return result

    def to_site(self, scanner_deg: FloatArray, range_m: FloatArray) -> tuple[FloatArray,
                                                                              FloatArray]:
        bearing = self.site_bearing_rad(scanner_deg)
        return self.x_m + range_m * np.cos(bearing), self.y_m + range_m * np.sin(bearing)


Point = tuple[float, float]


def point_in_polygon(p: Point, polygon: list[Point]) -> bool:
    """Even-odd rule; points exactly on an edge may fall either way."""
    x, y = p
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_cross:
                inside = not inside
    return inside


def side_of_line(p: Point, a: Point, b: Point) -> float:
    """Signed distance (m) of ``p`` from the infinite line a->b: positive on the left."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy)
    return (dx * (p[1] - a[1]) - dy * (p[0] - a[0])) / length


def segments_intersect(p1: Point, p2: Point, a: Point, b: Point) -> bool:
    """Whether segment p1-p2 meets segment a-b (touching counts)."""

    def orient(o: Point, q: Point, r: Point) -> float:
        return (q[0] - o[0]) * (r[1] - o[1]) - (q[1] - o[1]) * (r[0] - o[0])

    d1, d2 = orient(a, b, p1), orient(a, b, p2)
    d3, d4 = orient(p1, p2, a), orient(p1, p2, b)
    if ((d1 > 0) != (d2 > 0) or d1 == 0 or d2 == 0) and (
        (d3 > 0) != (d4 > 0) or d3 == 0 or d4 == 0
    ):
        return _within(p1, p2, a, b)
    return False


def _within(p1: Point, p2: Point, a: Point, b: Point) -> bool:
    def overlap(u1: float, u2: float, v1: float, v2: float) -> bool:
        return max(min(u1, u2), min(v1, v2)) <= min(max(u1, u2), max(v1, v2)) + 1e-12

    return overlap(p1[0], p2[0], a[0], b[0]) and overlap(p1[1], p2[1], a[1], b[1])
