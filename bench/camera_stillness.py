"""What the stillness and camera-motion handling of issue 17 costs and saves (CPU seconds).

    .venv/bin/python bench/camera_stillness.py [--frames N]

On the real pedestrian video (vtest.avi, 768x576, HOG, 10 fps stream time), each line is the
frame processor's CPU time over the same frames, as a ratio to the first line of its group
(measured in the same run):
- busy street: the motion gate alone (the periodic full look off, which is how the gate worked
  before), then with the full look every 2 s (the default) and every 1 s;
- panning camera (a 384x288 window sliding 4 px a frame across the video): camera-motion
  detection off (the old gate: the moving background is "motion" everywhere, the detector runs
  on every frame), then on (detector only at the periodic full look).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.camera.config import CameraConfig
from edge.camera.motion import MotionConfig
from edge.camera.pipeline import FrameProcessor
from edge.camera.testdata import fetch_vtest
from edge.tracking import TrackIds
from edge.vision.ingest import IngestConfig, TestPatternSource
from tests.edge.camera.clips import Image, panning_clip, vtest_frames


def run(frames: list[Image] | tuple[Image, ...], motion: MotionConfig, size: tuple[int, int],
        data_dir: Path) -> tuple[float, int, int]:
    cfg = CameraConfig(site="bench", device="bench", data_dir=data_dir,
                       source=TestPatternSource(),
                       ingest=IngestConfig(width_px=size[0], height_px=size[1]), motion=motion)
    proc = FrameProcessor(cfg, track_ids=TrackIds("b"))
    t0 = time.process_time()
    for i, frame in enumerate(frames):
        proc.process(frame, i * 0.1)
    cpu = time.process_time() - t0
    proc.close()
    return cpu, proc.detector_runs, proc.full_frame_runs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    video = fetch_vtest()
    street = vtest_frames(video)[: args.frames]
    pan = panning_clip(video, min(90, args.frames))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        groups = {
            f"busy street, {len(street)} frames 768x576": (street, (768, 576), [
                ("gate only, no periodic full look (before)",
                 MotionConfig(full_frame_interval_s=3600)),
                ("full look every 2 s (default)", MotionConfig()),
                ("full look every 1 s", MotionConfig(full_frame_interval_s=1.0))]),
            f"panning camera, {len(pan)} frames 384x288": (pan, (384, 288), [
                ("camera-motion detection off (before)", MotionConfig(camera_motion=False)),
                ("camera-motion detection on (default)", MotionConfig())]),
        }
        for title, (frames, size, variants) in groups.items():
            print(f"{title}: CPU s, ratio, detector runs (full frame)")
            base = None
            for name, motion in variants:
                cpu, runs, full = run(frames, motion, size, d)
                base = base or cpu
                print(f"  {name:44} {cpu:7.2f} s  {cpu / base:5.2f}  {runs:4d} ({full})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
