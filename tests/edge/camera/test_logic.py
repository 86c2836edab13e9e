"""Pure camera logic: tracker, zones, homography, detector output parsers, snapshots, config."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.camera import detectors
from edge.camera.config import CameraConfig
from edge.camera.detectors.parsers import parse_ssd, parse_yolo
from edge.camera.homography import (
    CameraHomography,
    GroundPoint,
    HomographyConfig,
    apply,
    fit_homography,
)
from edge.camera.zones import IntrusionZone, LineZone, LoiteringZone, ZoneEngine, point_in_polygon
from edge.config import ConfigError, parse_config
from edge.protocol import AlertKind
from edge.tracking import TrackIds
from edge.vision.boxes import Detection, iou, nms
from edge.vision.snapshot import SnapshotConfig, render_snapshot
from edge.vision.tracker import Tracker, TrackerConfig


def person(x: float, y: float, w: float = 20, h: float = 50, score: float = 1.0) -> Detection:
    return Detection((x, y, x + w, y + h), score)


# -- tracker ---------------------------------------------------------------------------------

def test_tracker_keeps_ids_for_two_walkers_crossing_paths() -> None:
    tr = Tracker(TrackerConfig(min_hits=2))
    ids_a, ids_b = set(), set()
    for f in range(40):
        a = person(10 + 8 * f, 100)
        b = person(330 - 8 * f, 110)
        tracks = tr.update([a, b], f * 0.1)
        for t in tracks:
            (ids_a if t.box[1] < 105 else ids_b).add(t.id)
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_tracker_bridges_missed_detections_with_its_motion_model() -> None:
    tr = Tracker(TrackerConfig(max_missed_frames=5))
    seen = set()
    for f in range(30):
        dets = [] if 10 <= f < 14 else [person(10 + 12 * f, 100)]
        seen |= {t.id for t in tr.update(dets, f * 0.1)}
    assert len(seen) == 1


def test_tracker_drops_stale_tracks_and_starts_new_ids() -> None:
    tr = Tracker(TrackerConfig(max_missed_frames=2), ids=TrackIds("t"))
    tr.update([person(0, 0)], 0)
    tr.update([person(0, 0)], 0.1)
    for f in range(5):
        tr.update([], 0.2 + f)
    assert tr.tracks == []
    tr.update([person(0, 0)], 9)
    assert tr.tracks[0].id == "t2"


# -- zones -----------------------------------------------------------------------------------

class _T:
    def __init__(self, tid: int, foot: tuple[float, float], score: float = 1.0,
                 label: str = "person") -> None:
        self.id, self.score, self.label = tid, score, label
        self.foot = foot


def test_line_crossing_directions_counts_and_hysteresis() -> None:
    line = LineZone(id="l", a=(100, 200), b=(100, 0), cooldown_s=0, min_offset_px=5)
    eng = ZoneEngine([line])
    xs = [50, 80, 97, 103, 98, 104, 130, 160, 120, 60]  # wobble on the line, then back
    events = [e for i, x in enumerate(xs) for e in eng.update([_T(1, (x, 100))], i)]  # type: ignore[list-item]
    assert [e.direction for e in events] == ["left_to_right", "right_to_left"]
    assert eng.counts["l"] == {"left_to_right": 1, "right_to_left": 1}


def test_line_ignores_passing_beyond_its_ends_and_filters_direction() -> None:
    line = LineZone(id="l", a=(100, 200), b=(100, 100), alert_direction="right_to_left",
                    cooldown_s=0)
    eng = ZoneEngine([line])
    for i, (x, y) in enumerate([(50, 50), (150, 50), (150, 150), (50, 150), (150, 150)]):
        events = eng.update([_T(1, (x, y))], i)  # type: ignore[list-item]
        if i == 3:
            assert [e.direction for e in events] == ["right_to_left"]
        else:
            assert events == []
    assert eng.counts["l"]["left_to_right"] == 1


def test_intrusion_once_per_track_with_cooldown_and_filters() -> None:
    zone = IntrusionZone(id="z", polygon=[(0, 0), (100, 0), (100, 100), (0, 100)],
                         min_frames_inside=2, cooldown_s=10, min_confidence=0.5)
    eng = ZoneEngine([zone])
    out = []
    for i in range(6):
        tracks = [_T(1, (50, 50)), _T(2, (50, 50), score=0.1), _T(3, (50, 50), label="car")]
        out += eng.update(tracks, float(i))  # type: ignore[arg-type]
        if i == 2:  # track 1 leaves and comes back within the cool-down
            out += eng.update([_T(1, (500, 50))], 2.5)  # type: ignore[list-item]
    assert [(e.kind, e.track_id) for e in out] == [(AlertKind.INTRUSION, 1)]
    assert eng.counts["z"]["suppressed_by_cooldown"] == 1


def test_loitering_after_dwell_time() -> None:
    zone = LoiteringZone(id="z", polygon=[(0, 0), (100, 0), (100, 100), (0, 100)], dwell_s=5,
                         cooldown_s=100)
    eng = ZoneEngine([zone])
    events = [e for t in range(12) for e in eng.update([_T(7, (10, 10))], float(t))]  # type: ignore[list-item]
    assert len(events) == 1 and events[0].kind is AlertKind.LOITERING
    assert events[0].dwell_s == 5.0 and events[0].ts == 5.0


@given(st.floats(-1000, 1000), st.floats(-1000, 1000))
def test_point_in_rectangle_matches_bounds(x: float, y: float) -> None:
    rect = [(0.0, 0.0), (100.0, 0.0), (100.0, 50.0), (0.0, 50.0)]
    if 0 < x < 100 and 0 < y < 50:
        assert point_in_polygon((x, y), rect)
    if not (0 <= x <= 100 and 0 <= y <= 50):
        assert not point_in_polygon((x, y), rect)


# -- homography ------------------------------------------------------------------------------

@given(st.lists(st.floats(-5, 5), min_size=8, max_size=8), st.floats(0, 767), st.floats(0, 575))
def test_homography_fit_recovers_a_known_projective_map(noise: list[float], x: float,
                                                         y: float) -> None:
    true_h = np.array([[0.05, 0.01, -3], [0.002, -0.07, 40], [0.0, 0.0004, 1.0]])
    src = [(0, 0), (767, 0), (767, 575), (0, 575), (383, 287)]
    dst = [apply(true_h, *p) for p in src]
    h = fit_homography(src, dst)
    u1, v1 = apply(true_h, x, y)
    u2, v2 = apply(h, x, y)
    assert math.isclose(u1, u2, abs_tol=1e-6) and math.isclose(v1, v2, abs_tol=1e-6)


def test_camera_homography_hits_its_ground_points_and_rejects_collinear() -> None:
    pts = [GroundPoint(px=(0, 0), lon=114.0560, lat=22.5440),
           GroundPoint(px=(640, 0), lon=114.0570, lat=22.5440),
           GroundPoint(px=(640, 480), lon=114.0568, lat=22.5432),
           GroundPoint(px=(0, 480), lon=114.0562, lat=22.5432)]
    cam = CameraHomography(HomographyConfig(points=pts))
    for p in pts:
        lon, lat = cam.to_lonlat(*p.px)
        assert abs(lon - p.lon) < 1e-9 and abs(lat - p.lat) < 1e-9
    lon, lat = cam.to_lonlat(320, 240)
    assert 114.0562 < lon < 114.0568 and 22.5432 < lat < 22.5440
    line = [GroundPoint(px=(i * 10, i * 10), lon=114 + i * 1e-4, lat=22 + i * 1e-4)
            for i in range(4)]
    with pytest.raises(ValueError, match="degenerate"):
        HomographyConfig(points=line)


# -- parsers ---------------------------------------------------------------------------------

def test_parse_ssd_scales_filters_and_honours_count() -> None:
    boxes = np.array([[[0.1, 0.2, 0.5, 0.4], [0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.3, 0.3]]])
    classes = np.array([[0, 2, 0]], dtype=np.float32)
    scores = np.array([[0.9, 0.95, 0.8]], dtype=np.float32)
    dets = parse_ssd(boxes, classes, scores, 2, frame_size=(640, 480),
                     labels=["person", "bicycle", "car"], min_score=0.5, keep={"person"})
    assert dets == [Detection((128.0, 48.0, 256.0, 240.0), pytest.approx(0.9), "person")]
    all_dets = parse_ssd(boxes, classes, scores, None, frame_size=(640, 480),
                         labels=["person"], min_score=0.0)
    assert [d.label for d in all_dets] == ["person", "class_2", "person"]


def test_parse_yolo_both_layouts_with_nms() -> None:
    # two overlapping person boxes and one car, in [N, 4 + C] for classes (person, car)
    rows = np.array([[100, 100, 40, 80, 0.9, 0.1], [102, 101, 40, 80, 0.8, 0.1],
                     [300, 200, 60, 40, 0.2, 0.7]], dtype=np.float32)
    for out in (rows[np.newaxis], rows.T[np.newaxis]):
        dets = parse_yolo(out, input_size=(640, 640), frame_size=(1280, 640),
                          labels=["person", "car"], min_score=0.5, nms_iou=0.5)
        assert sorted(d.label for d in dets) == ["car", "person"]
        p = next(d for d in dets if d.label == "person")
        assert p.box == pytest.approx((160, 60, 240, 140)) and p.score == pytest.approx(0.9)


@given(st.integers(0, 40), st.floats(0, 1))
def test_parse_ssd_never_leaves_the_frame(n: int, min_score: float) -> None:
    rng = np.random.default_rng(n)
    boxes = rng.uniform(-0.5, 1.5, size=(n, 4))
    dets = parse_ssd(boxes, rng.integers(0, 3, n).astype(float), rng.uniform(0, 1, n), n,
                     frame_size=(320, 240), labels=["person", "a", "b"], min_score=min_score)
    for d in dets:
        assert 0 <= d.box[0] < d.box[2] <= 320 and 0 <= d.box[1] < d.box[3] <= 240
        assert d.score >= min_score


def test_nms_and_iou() -> None:
    a, b = person(0, 0), person(2, 0, score=0.5)
    assert iou(a.box, a.box) == 1.0 and iou(a.box, person(100, 100).box) == 0.0
    assert nms([b, a], 0.5) == [a]


# -- snapshots -------------------------------------------------------------------------------

def test_snapshot_stays_under_its_byte_bound_even_for_noise() -> None:
    noise = np.random.default_rng(1).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    cfg = SnapshotConfig(max_bytes=20_000, max_width_px=1280)
    snap = render_snapshot(noise, [((10, 10, 200, 300), "#1")], cfg, highlight=0)
    assert len(snap.jpeg) <= 20_000 and snap.width <= 1280
    ev = snap.evidence()
    assert ev.jpeg() == snap.jpeg and ev.width == snap.width


# -- config and registry ---------------------------------------------------------------------

def test_detector_registry_and_config_union_come_from_one_list() -> None:
    union_keys = {m.Config.model_fields["type"].default for m in detectors.PLUGINS}
    assert union_keys == set(detectors.REGISTRY) == {"hog", "tflite", "onnx"}
    cfg = CameraConfig.model_validate({"site": "s", "device": "d", "source": {"type": "test"},
                                       "detector": {"type": "onnx", "model": "/x.onnx"}})
    assert cfg.detector.type == "onnx"


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = CameraConfig.model_validate({"site": "s", "device": "d", "source": {"type": "test"},
                                       "detector": {"type": "tflite",
                                                    "model": str(tmp_path / "m.tflite")}})
    with pytest.raises(detectors.DetectorError, match="models fetch"):
        detectors.build_detector(cfg.detector)


CONFIG_WITH_MISTAKES = """\
site: demo
device: cam-1
source:
  type: rtsp
  url: http://not-rtsp
zones:
  - type: line
    id: gate
    a: [10, 10]
    b: [9000, 10]
detector:
  type: hog
  colour: red
"""


def test_config_errors_name_key_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG_WITH_MISTAKES, CameraConfig, "cam.yaml")
    text = str(info.value)
    # A discriminated union's tag ("rtsp", "hog") is in the error path but not in the file:
    # the loader skips it and names the line of the offending key itself.
    assert "cam.yaml:line 5: source.rtsp.url" in text
    assert "cam.yaml:line 13: detector.hog.colour" in text


def test_zone_outside_the_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the 640x480 frame"):
        CameraConfig.model_validate({"site": "s", "device": "d", "source": {"type": "test"},
                                     "zones": [{"type": "line", "id": "g", "a": [0, 0],
                                                "b": [900, 0]}]})
