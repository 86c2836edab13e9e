"""The one local projection, checked against WGS84 geodesics (Vincenty's inverse formula,
written out here independently of the code under test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.projection import LocalProjection, local_distance_m, metres_per_degree

A = 6_378_137.0
F = 1 / 298.257223563
B = A * (1 - F)


def vincenty_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Ellipsoidal distance in metres (Vincenty 1975, inverse problem)."""
    u1 = math.atan((1 - F) * math.tan(math.radians(lat1)))
    u2 = math.atan((1 - F) * math.tan(math.radians(lat2)))
    big_l = math.radians(lon2 - lon1)
    lam = big_l
    for _ in range(200):
        sin_l, cos_l = math.sin(lam), math.cos(lam)
        sin_s = math.hypot(math.cos(u2) * sin_l,
                           math.cos(u1) * math.sin(u2) - math.sin(u1) * math.cos(u2) * cos_l)
        if sin_s == 0:
            return 0.0
        cos_s = math.sin(u1) * math.sin(u2) + math.cos(u1) * math.cos(u2) * cos_l
        sigma = math.atan2(sin_s, cos_s)
        sin_a = math.cos(u1) * math.cos(u2) * sin_l / sin_s
        cos2_a = 1 - sin_a**2
        cos_2sm = cos_s - 2 * math.sin(u1) * math.sin(u2) / cos2_a if cos2_a else 0.0
        c = F / 16 * cos2_a * (4 + F * (4 - 3 * cos2_a))
        prev = lam
        lam = big_l + (1 - c) * F * sin_a * (
            sigma + c * sin_s * (cos_2sm + c * cos_s * (-1 + 2 * cos_2sm**2)))
        if abs(lam - prev) < 1e-13:
            break
    u_sq = cos2_a * (A**2 - B**2) / B**2
    k_a = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
    k_b = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
    d_sigma = k_b * sin_s * (cos_2sm + k_b / 4 * (
        cos_s * (-1 + 2 * cos_2sm**2)
        - k_b / 6 * cos_2sm * (-3 + 4 * sin_s**2) * (-3 + 4 * cos_2sm**2)))
    return B * k_a * (sigma - d_sigma)


def test_scale_matches_published_wgs84_degree_lengths() -> None:
    # Standard tables: at 45 degrees, 1 degree of latitude is 111,132 m, of longitude 78,847 m;
    # at the equator 110,574 m and 111,320 m.
    east, north = metres_per_degree(45.0)
    assert (round(east), round(north)) == (78_847, 111_132)
    east, north = metres_per_degree(0.0)
    assert (round(east), round(north)) == (111_319, 110_574)


@pytest.mark.parametrize("lat0", [0.0, 22.543, 39.9, 60.0])
@pytest.mark.parametrize("bearing_deg", [0, 45, 90, 135, 200, 300])
def test_distances_within_five_cm_of_geodesics_at_500_m(lat0: float, bearing_deg: float) -> None:
    proj = LocalProjection(114.057, lat0)
    b = math.radians(bearing_deg)
    lon, lat = proj.to_lonlat(500 * math.sin(b), 500 * math.cos(b))
    assert abs(vincenty_m(114.057, lat0, lon, lat) - 500.0) < 0.05


def test_a_single_spherical_constant_would_be_metres_off() -> None:
    """Why the projection uses the ellipsoid: the old 111,320 m/degree constant was ~2.6 m off
    over 500 m north at the demo latitude, well above the LiDAR's 0.3 m accuracy claim."""
    lat0 = 22.543
    sphere_lat = lat0 + 500 / 111_320.0
    assert abs(vincenty_m(114.057, lat0, 114.057, sphere_lat) - 500.0) > 2.0
    lon, lat = LocalProjection(114.057, lat0).to_lonlat(0.0, 500.0)
    assert abs(vincenty_m(114.057, lat0, lon, lat) - 500.0) < 0.01


coords = st.floats(min_value=-2000, max_value=2000, allow_nan=False)


@given(coords, coords)
def test_round_trip_scalar_and_array(x: float, y: float) -> None:
    proj = LocalProjection(114.057, 22.543)
    lon, lat = proj.to_lonlat(x, y)
    bx, by = proj.to_xy(lon, lat)
    assert bx == pytest.approx(x, abs=1e-6) and by == pytest.approx(y, abs=1e-6)
    xs, ys = proj.to_xy(np.array([lon]), np.array([lat]))
    assert xs[0] == pytest.approx(x, abs=1e-6) and ys[0] == pytest.approx(y, abs=1e-6)


def test_local_distance_and_offset() -> None:
    proj = LocalProjection(114.057, 22.543)
    there = proj.offset(30.0, 40.0)
    assert local_distance_m((114.057, 22.543), there) == pytest.approx(50.0, abs=1e-9)


@pytest.mark.parametrize("origin", [(0.0, 90.0), (200.0, 0.0), (0.0, float("nan"))])
def test_unusable_origins_are_refused(origin: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="usable"):
        LocalProjection(*origin)


def test_every_copy_is_the_same_projection() -> None:
    """The geofence engine, the LiDAR, hub fusion and the camera homography use this module."""
    from edge import geofence
    from edge.camera.homography import CameraHomography, HomographyConfig
    from edge.lidar import geometry
    from hub import fusion

    assert geofence.LocalProjection is LocalProjection
    assert geometry.LocalProjection is LocalProjection
    assert fusion.LocalProjection is LocalProjection
    proj = LocalProjection(114.057, 22.543)
    pts = [((0.0, 0.0), proj.offset(0, 0)), ((100.0, 0.0), proj.offset(10, 0)),
           ((100.0, 100.0), proj.offset(10, -10)), ((0.0, 100.0), proj.offset(0, -10))]
    h = CameraHomography(HomographyConfig.model_validate(
        {"points": [{"px": px, "lon": ll[0], "lat": ll[1]} for px, ll in pts]}))
    assert h.to_lonlat(50.0, 50.0) == pytest.approx(proj.offset(5.0, -5.0), abs=1e-9)
