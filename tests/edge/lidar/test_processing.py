"""Pure processing parts: projection and mount pose, polygon and line rules, background
learning/absorption, clustering, tracking, and the config's refusals."""

from __future__ import annotations

import math
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridges.lidar.drivers import MODELS
from edge.cli import main
from edge.config import ConfigError, parse_config
from edge.lidar.background import BackgroundModel, BackgroundParams
from edge.lidar.clustering import ClusterParams, cluster_points
from edge.lidar.config import LidarConfig, ScannerKey
from edge.lidar.geometry import (
    LocalProjection,
    Mount,
    point_in_polygon,
    segments_intersect,
    side_of_line,
)
from edge.lidar.scan import Scan
from edge.lidar.tracking import Track
from edge.lidar.zones import LineRule, ZoneRule

coords = st.floats(min_value=-500, max_value=500, allow_nan=False)


def test_config_keys_match_driver_registry() -> None:
    assert set(get_args(ScannerKey)) == set(MODELS)


@given(coords, coords)
def test_projection_round_trip(x: float, y: float) -> None:
    proj = LocalProjection(114.0570, 22.5430)
    lon, lat = proj.to_lonlat(x, y)
    back = proj.to_site(lon, lat)
    assert back[0] == pytest.approx(x, abs=1e-6) and back[1] == pytest.approx(y, abs=1e-6)


def test_projection_scale() -> None:
    proj = LocalProjection(114.0570, 22.5430)
    lon, lat = proj.to_lonlat(0.0, 1000.0)
    # WGS84 at 22.5 degrees north: ~110.74 km per degree of latitude, ~102.86 km of longitude
    assert 1000 / (lat - 22.5430) == pytest.approx(110_738, rel=1e-4)
    lon, _ = proj.to_lonlat(1000.0, 0.0)
    assert 1000 / (lon - 114.0570) == pytest.approx(102_864, rel=1e-4)


def test_mount_pose_clockwise_scanner() -> None:
    # Scanner at (10, 5), its 0-degree mark pointing north; angles grow clockwise.
    mount = Mount(10.0, 5.0, 90.0, clockwise=True)
    x, y = mount.to_site(np.array([0.0, 90.0, 180.0, 270.0]), np.array([2.0, 2.0, 2.0, 2.0]))
    assert np.allclose(x, [10, 12, 10, 8], atol=1e-9)
    assert np.allclose(y, [7, 5, 3, 5], atol=1e-9)
    ccw = Mount(0.0, 0.0, 0.0, clockwise=False)
    x, y = ccw.to_site(np.array([90.0]), np.array([1.0]))
    assert (x[0], y[0]) == pytest.approx((0.0, 1.0), abs=1e-9)


@given(st.floats(0, 359.9), st.floats(-360, 360), st.booleans())
def test_mount_bearing_inverse(scanner_deg: float, yaw: float, clockwise: bool) -> None:
    mount = Mount(0, 0, yaw, clockwise)
    back = mount.scanner_deg(mount.site_bearing_rad(np.array([scanner_deg])))[0]
    assert math.isclose(back % 360, scanner_deg, abs_tol=1e-6) or math.isclose(
        abs(back - scanner_deg), 360, abs_tol=1e-6)


@given(st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_point_in_square(u: float, v: float) -> None:
    square = [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]
    assert point_in_polygon((2 * u, 2 * v), square)
    assert not point_in_polygon((2 + u, 2 * v), square)
    assert not point_in_polygon((-u, 2 * v), square)


def test_segments_and_sides() -> None:
    a, b = (0.0, 0.0), (0.0, 4.0)
    assert side_of_line((-1.0, 1.0), a, b) == pytest.approx(1.0)  # left of a->b
    assert side_of_line((2.0, 1.0), a, b) == pytest.approx(-2.0)
    assert segments_intersect((-1, 1), (1, 1), a, b)
    assert not segments_intersect((-1, 5), (1, 5), a, b)
    assert segments_intersect((-1, 4), (1, 4), a, b)  # touching the end counts


def track(tid: str, x: float, y: float, t: float) -> Track:
    return Track(id=tid, x_m=x, y_m=y, t_s=t, first_t_s=0.0, confirmed=True)


def test_line_rule_counts_once_through_jitter() -> None:
    rule = LineRule("gate", (0.0, -2.0), (0.0, 2.0), hysteresis_m=0.2)
    xs = [-1.0, -0.5, -0.1, 0.1, -0.1, 0.15, -0.15, 0.3, 1.0, 0.1, -0.1, 0.1, 1.0]
    events = [e for i, x in enumerate(xs) for e in rule.update([track("a", x, 0.0, i)], i)]
    assert [e.direction for e in events] == ["in"]
    assert rule.counts == {"in": 1}
    back = [e for i, x in enumerate([0.5, -0.5]) for e in rule.update([track("a", x, 0, i)], i)]
    assert [e.direction for e in back] == ["out"]


def test_zone_rule_dwell_and_rearm() -> None:
    zone = ZoneRule("z", [(0, 0), (2, 0), (2, 2), (0, 2)], min_dwell_s=1.0)
    assert zone.update([track("a", 1, 1, 0.0)], 0.0) == []
    assert zone.update([track("a", 1, 1, 0.9)], 0.9) == []
    first = zone.update([track("a", 1, 1, 1.0)], 1.0)
    assert [e.track for e in first] == ["a"]
    assert zone.update([track("a", 1, 1, 5.0)], 5.0) == []  # alerts once per visit
    assert zone.update([track("a", 3, 1, 6.0)], 6.0) == []  # left: re-armed
    zone.update([track("a", 1, 1, 7.0)], 7.0)
    assert [e.track for e in zone.update([track("a", 1, 1, 8.0)], 8.0)] == ["a"]


def scan_at(t: float, ranges: np.ndarray) -> Scan:
    angles = np.arange(len(ranges), dtype=np.float64) * (360.0 / len(ranges))
    return Scan(t, angles, ranges.astype(np.float64))


def test_background_learns_then_flags_and_absorbs() -> None:
    bg = BackgroundModel(BackgroundParams(learn_s=1.0, bin_deg=1.0, margin_m=0.3,
                                          absorb_after_s=5.0, reveal_after_s=1.0))
    wall = np.full(360, 6.0)
    wall[200:] = np.nan  # open space on that side
    t = 0.0
    while not bg.ready:
        assert not bg.foreground(scan_at(t, wall)).any()
        t += 0.1
    box = wall.copy()
    box[50:55] = 3.0  # a parked object
    box[250:254] = 4.0  # something in open space
    mask = bg.foreground(scan_at(t, box))
    assert mask[50:55].all() and mask[250:254].all() and mask.sum() == 9
    for _ in range(60):
        t += 0.1
        mask = bg.foreground(scan_at(t, box))
    assert not mask.any()  # absorbed after 5 s
    assert bg.absorbed_bins == 9
    for _ in range(20):  # the object is driven away: its bins read the wall again
        t += 0.1
        bg.foreground(scan_at(t, wall))
    assert bg.revealed_bins == 5
    assert bg.foreground(scan_at(t, box))[50:55].all()


def test_clustering_joins_neighbours_and_drops_specks() -> None:
    xs = np.array([1.0, 1.05, 1.1, 1.15, 5.0, 5.05, 9.0])
    ys = np.array([1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 9.0])
    clusters = cluster_points(xs, ys, ClusterParams(join_m=0.3, merge_m=0.5, min_points=2))
    assert [(round(c.x_m, 3), c.n_points) for c in clusters] == [(1.075, 4), (5.025, 2)]


VALID = """\
site: demo
device: lidar-1
site_origin: {lon: 114.057, lat: 22.543}
scanner: {model: ld06, port: /dev/ttyUSB0}
zones:
  - id: yard
    polygon: [{x_m: 0, y_m: 0}, {x_m: 1, y_m: 0}, {x_m: 1, y_m: 1}]
lines:
  - id: gate
    a: {x_m: 0, y_m: 0}
    b: {x_m: 0, y_m: 0.05}
"""


def test_config_refuses_nonsense_with_line_numbers() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(VALID, LidarConfig)
    assert "at least 0.1 m apart" in str(err.value)
    bad_model = VALID.replace("model: ld06", "model: ld99").replace("0.05", "2")
    with pytest.raises(ConfigError, match=r"line 4: scanner.model"):
        parse_config(bad_model, LidarConfig)
    dup = VALID.replace("id: gate", "id: yard").replace("0.05", "2")
    with pytest.raises(ConfigError, match="unique"):
        parse_config(dup, LidarConfig)
    ok = parse_config(VALID.replace("0.05", "2"), LidarConfig)
    assert ok.range_m == (0.02, 12.0)


def test_cli_validate_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(VALID.replace("0.05", "2"))
    assert main(["edge", "lidar", "--config", str(good), "--validate-config"]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("lat: 22.543", "lat: 122.5"))
    assert main(["edge", "lidar", "--config", str(bad), "--validate-config"]) == 2
    assert "line 3" in capsys.readouterr().err
