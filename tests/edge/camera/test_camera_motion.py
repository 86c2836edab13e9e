"""A moving camera (pan, shake, cut) is recognised; the detector then runs on the periodic
full frame only instead of on every frame. Clips are cut from real footage (vtest.avi)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.camera.config import CameraConfig
from edge.camera.detectors.hog import (
    Config as HogConfig,  # the clip's boxes and ids were drawn from HOG's
)
from edge.camera.motion import MotionConfig, MotionGate
from edge.camera.pipeline import FrameProcessor
from edge.camera.zones import LineZone
from edge.tracking import TrackIds
from edge.vision.ingest import IngestConfig, TestPatternSource
from tests.edge.camera.clips import panning_clip, vtest_frames


def test_a_panning_camera_does_not_run_the_detector_on_every_frame(vtest: Path,
                                                                   tmp_path: Path) -> None:
    clip = panning_clip(vtest, 90, speed_px=4)  # 9 s at 10 fps
    config = CameraConfig(site="s", device="d", mqtt={"host": "127.0.0.1"}, data_dir=tmp_path,
                          source=TestPatternSource(), detector=HogConfig(),
                          ingest=IngestConfig(width_px=384, height_px=288),
                          zones=[LineZone(id="kerb", a=(260, 10), b=(260, 278), cooldown_s=0)])
    proc = FrameProcessor(config, track_ids=TrackIds("t"))
    results = []
    boxes: list[dict[str, tuple[float, float, float, float]]] = []  # tracks are mutable
    try:
        for i, frame in enumerate(clip):
            results.append(proc.process(frame, i * 0.1))
            boxes.append({t.id: t.box for t in results[-1].tracks})
    finally:
        proc.close()
    warmup = config.motion.warmup_frames
    moving = [r.camera_motion for r in results[warmup:]]
    assert sum(moving) >= 0.95 * len(moving)
    # warm-up frames, then one full frame every 2 s (the default), not every frame
    assert proc.detector_runs <= warmup + 5 + 1
    assert {r.mode for r in results[warmup:]} <= {"camera_motion", "full"}
    # tracks ride along with the pan between two full looks: a box moves by the window's
    # 4 px a frame to the left, so the person's next detection still lands on it
    moves = [boxes[i][tid][0] - boxes[i - 1][tid][0]
             for i in range(1, len(results)) if results[i].mode == "camera_motion"
             for tid in boxes[i] if tid in boxes[i - 1]]
    assert len(moves) >= 10
    assert all(-5.0 < dx < -2.5 for dx in moves), moves  # phase correlation's estimate
    assert -4.4 < float(np.median(moves)) < -3.6
    # ... across the kerb line, which is the camera's doing: no crossing is reported
    assert not any(r.events for r in results[warmup:])
    # the pan is measured: content moves left by the window's 4 px a frame
    gate = MotionGate(MotionConfig())
    shifts = [gate.assess(f).shift_px[0] for f in clip[:20]]
    assert -4.6 < float(np.median(shifts[warmup:])) < -3.4


def test_shake_and_a_cut_are_camera_motion_and_a_still_camera_is_not(vtest: Path) -> None:
    frames = vtest_frames(vtest)
    rng = np.random.default_rng(7)
    offsets = rng.integers(-4, 5, size=(40, 2))
    shake = [frames[100 + i][50 + dy:338 + dy, 100 + dx:484 + dx]
             for i, (dx, dy) in enumerate(offsets)]
    gate = MotionGate(MotionConfig())
    shaking = [gate.assess(np.ascontiguousarray(f)).camera_motion for f in shake]
    assert sum(shaking[5:]) >= 0.9 * len(shaking[5:])

    view_a = [np.ascontiguousarray(f[0:288, 0:384]) for f in frames[100:140]]
    view_b = [np.ascontiguousarray(f[288:576, 384:768]) for f in frames[140:180]]
    gate = MotionGate(MotionConfig())
    decisions = [gate.assess(f) for f in view_a + view_b]
    warmup = gate.config.warmup_frames
    assert not any(d.camera_motion for d in decisions[warmup:40])  # people walk, camera still
    assert decisions[40].camera_motion and decisions[40].cause == "mask"
    # the background is relearnt from the new view; then the gate trusts its mask again
    assert all(d.camera_motion for d in decisions[41:41 + warmup])
    assert not any(d.camera_motion for d in decisions[41 + warmup:])
    assert any(d.regions for d in decisions[41 + warmup:])
