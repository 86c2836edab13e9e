"""Camera zones and lines on the map: the zones a camera watches are drawn in image pixels; the
hub knows them (and the camera's pixel-to-ground homography) from the newest config push it
sent (``POST /api/v1/devices/{id}/config``), and maps them to lon/lat here for the dashboard.

A push is complete relative to the camera's own YAML file: a push without ``zones`` or without
``homography`` keeps the file's value, which the hub never sees, so such a camera's zones are
not drawn (the dashboard says how many cameras that leaves out). The hub never imports the
camera agent; the fit below is the plain least-squares plane homography over the installer's
ground points, in metres east/north of the first point (well conditioned, unlike degrees).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edge.projection import LocalProjection

ZONE_TYPES = ("intrusion", "loitering", "line")


class HomographyUnusableError(ValueError):
    """Ground points that do not pin down a mapping."""


def _fit(px: Sequence[tuple[float, float]], metres: Sequence[tuple[float, float]]) -> np.ndarray:
    src = np.asarray(px, dtype=float)
    dst = np.asarray(metres, dtype=float)
    if len(src) < 4:
        raise HomographyUnusableError("a homography needs at least four ground points")
    # Pixels scaled to about 1 keep the 8x8 normal equations well conditioned.
    mean = src.mean(axis=0)
    scale = float(np.abs(src - mean).max()) or 1.0
    s = (src - mean) / scale
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(s, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rhs.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.append(v)
    a = np.asarray(rows)
    if np.linalg.matrix_rank(a) < 8:
        raise HomographyUnusableError("the ground points are degenerate (three or more on a line?)")
    h, *_ = np.linalg.lstsq(a, np.asarray(rhs), rcond=None)
    norm = np.array([[1 / scale, 0, -mean[0] / scale], [0, 1 / scale, -mean[1] / scale], [0, 0, 1]])
    matrix: np.ndarray = np.append(h, 1.0).reshape(3, 3) @ norm
    return matrix


class PixelToMap:
    def __init__(self, points: Sequence[Mapping[str, Any]]) -> None:
        try:
            ref = points[0]
            self.projection = LocalProjection(float(ref["lon"]), float(ref["lat"]))
            px = [(float(p["px"][0]), float(p["px"][1])) for p in points]
            metres = [self.projection.to_site(float(p["lon"]), float(p["lat"])) for p in points]
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise HomographyUnusableError(f"the ground points are malformed: {err}") from err
        self.matrix = _fit(px, metres)

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        u, v, w = self.matrix @ np.array([x, y, 1.0])
        if abs(w) < 1e-12:
            raise HomographyUnusableError(f"pixel ({x}, {y}) lies on the horizon")
        lon, lat = self.projection.offset(float(u / w), float(v / w))
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise HomographyUnusableError(f"pixel ({x}, {y}) maps to no place")
        return round(lon, 7), round(lat, 7)


def crossing_arrow(
    to_map: PixelToMap, a: Sequence[float], b: Sequence[float], direction: str
) -> list[list[float]] | None:
    """The direction a line alerts on, as two lon/lat points across its middle (from the side
    a crossing starts on to the side it ends on). Sides are the camera's: walking from ``a``
    to ``b`` on the image, "left" is the left hand, i.e. ``(dy, -dx)`` with y pointing down
    (edge.camera.zones.line_side). Worked out in pixels, as the homography may mirror."""
    if direction not in ("left_to_right", "right_to_left"):
        return None
    dx, dy = float(b[0]) - float(a[0]), float(b[1]) - float(a[1])
    length = math.hypot(dx, dy)
    if length < 1.0:
        return None
    k = 0.15 * length  # the arrow's half-length, in pixels
    lx, ly = dy / length * k, -dx / length * k
    mx, my = (float(a[0]) + float(b[0])) / 2, (float(a[1]) + float(b[1])) / 2
    left, right = (mx + lx, my + ly), (mx - lx, my - ly)
    start, end = (left, right) if direction == "left_to_right" else (right, left)
    return [list(to_map.lonlat(*start)), list(to_map.lonlat(*end))]


def camera_zone_features(device: str, site: str, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """GeoJSON features of one camera's pushed zones (empty if the push cannot be mapped)."""
    zones = config.get("zones")
    homography = config.get("homography")
    if not isinstance(zones, list) or not isinstance(homography, Mapping):
        return []
    points = homography.get("points")
    if not isinstance(points, list):
        return []
    try:
        to_map = PixelToMap(points)
    except HomographyUnusableError:
        return []
    features = []
    for zone in zones:
        if not isinstance(zone, Mapping) or zone.get("type") not in ZONE_TYPES:
            continue
        crossing = None
        try:
            if zone["type"] == "line":
                coords = [list(to_map.lonlat(*zone["a"])), list(to_map.lonlat(*zone["b"]))]
                geometry: dict[str, Any] = {"type": "LineString", "coordinates": coords}
                direction = str(zone.get("alert_direction", "any"))
                crossing = crossing_arrow(to_map, zone["a"], zone["b"], direction)
            else:
                ring = [list(to_map.lonlat(*p)) for p in zone["polygon"]]
                geometry = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        except (KeyError, TypeError, ValueError):
            continue  # HomographyUnusableError too: a zone beyond the horizon is left out
        features.append(
            {
                "type": "Feature",
                "id": f"{device}:{zone.get('id', '')}",
                "geometry": geometry,
                "properties": {
                    "site": site,
                    "device": device,
                    "zone": str(zone.get("id", "")),
                    "type": zone["type"],
                    "alert_direction": zone.get("alert_direction", "any")
                    if zone["type"] == "line"
                    else None,
                    # Foreign member: [from, to] lon/lat of the alerting direction, or None.
                    "crossing": crossing,
                },
            }
        )
    return features
