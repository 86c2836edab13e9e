"""Camera benchmark: decode, detect and track cost per detector on this machine.

    .venv/bin/python bench/camera.py [--frames N] [--ungated-frames M] [--only NAME]

For the real pedestrian video (vtest.avi), at 640x480 and at its native 768x576, prints:
- decode: GStreamer file -> BGR frames, frames/s (the baseline every other figure is set against)
- per detector (HOG; NanoDet-m on onnxruntime and on LiteRT where `gridward edge camera models
  build nanodet-m` has built it), the whole per-frame work (motion gate -> detector -> tracker
  -> zones), motion-gated and ungated: frames/s, its ratio to decode alone, latency p50/p95,
  detector runs, CPU seconds per video second (1.0 = one core) and streams per core at 10 fps
  (CPU-bound, decode included)
- edge-first ratio: bytes the agent would send over MQTT per hour of video (alerts with
  snapshots, positions at 1 Hz, health every 10 s, encoded with the wire contract) against the
  bytes of the video itself at its own bitrate.
Ungated HOG is slow (~0.1-1 s a frame): it runs on the first --ungated-frames frames only.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.camera.config import CameraConfig
from edge.camera.detectors import Detector, build_detector
from edge.camera.evaluate import Candidate, candidates
from edge.camera.models import models_dir
from edge.camera.motion import MotionConfig
from edge.camera.pipeline import FrameProcessor
from edge.camera.testdata import fetch_vtest
from edge.camera.zones import LineZone
from edge.protocol import (
    Alert,
    AlertKind,
    EntityKind,
    Health,
    Location,
    Position,
    PositionBatch,
    Severity,
    encode,
)
from edge.validators import utcnow
from edge.vision.ingest import FileSource, FrameSource, IngestConfig
from edge.vision.snapshot import SnapshotConfig, render_snapshot

W, H = 640, 480
NATIVE = (768, 576)
VIDEO_FPS = 10.0
# the footpath line of the crossing labels (tests/data/vtest_line_crossings.yaml), native px
LINE_A, LINE_B = (200, 340), (200, 140)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def decode_all(video: Path, limit: int, size: tuple[int, int]) -> tuple[list[object], float,
                                                                      float]:
    src = FrameSource(FileSource(path=video),
                      IngestConfig(width_px=size[0], height_px=size[1], policy="all"))
    frames = []
    t0, c0 = time.perf_counter(), cpu_s()
    src.start()
    try:
        while len(frames) < limit:
            f = src.read(0.5)
            if f is None:
                if src.ended.is_set():
                    break
                continue
            frames.append(f)
    finally:
        src.stop()
    return frames, time.perf_counter() - t0, cpu_s() - c0


def process(frames: list[object], motion: bool, detector: Detector,
            size: tuple[int, int]) -> dict[str, float]:
    sx, sy = size[0] / NATIVE[0], size[1] / NATIVE[1]
    line = LineZone(id="l", a=(LINE_A[0] * sx, LINE_A[1] * sy), b=(LINE_B[0] * sx, LINE_B[1] * sy),
                    cooldown_s=0)
    cfg = CameraConfig(site="bench", device="bench", source=FileSource(path=Path("x")),
                       ingest=IngestConfig(width_px=size[0], height_px=size[1]),
                       motion=MotionConfig(enabled=motion), zones=[line])
    proc = FrameProcessor(cfg, detector=detector)
    lat = []
    events = 0
    t0, c0 = time.perf_counter(), cpu_s()
    for f in frames:
        s = time.perf_counter()
        r = proc.process(f.image, f.pts_s or 0.0)  # type: ignore[attr-defined]
        lat.append((time.perf_counter() - s) * 1000)
        events += len(r.events)
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    lat.sort()
    return {"fps": len(frames) / wall, "p50_ms": statistics.median(lat),
            "p95_ms": lat[max(0, int(len(lat) * 0.95) - 1)],
            "cpu_per_video_s": cpu / (len(frames) / VIDEO_FPS), "events": events,
            "detector_runs": proc.detector_runs, "frames": len(frames)}


def edge_first_ratio(video: Path, frames: list[object], events_per_video: int) -> dict[str, float]:
    hours_of_video = len(frames) / VIDEO_FPS / 3600
    video_bytes_per_h = video.stat().st_size / (795 / VIDEO_FPS) * 3600
    image = frames[len(frames) // 2].image  # type: ignore[attr-defined]
    snap = render_snapshot(image, [((100, 100, 140, 200), "#1")], SnapshotConfig())
    alert = Alert(site="demo", device="camera-vtest", kind=AlertKind.LINE_CROSSING,
                  severity=Severity.MEDIUM, title="person crossed footpath", zone="footpath",
                  entity="camera-vtest-t12", evidence=snap.evidence(),
                  location=Location(lon=114.0570, lat=22.5430, accuracy_m=2.0),
                  details={"track_id": 12, "direction": "left_to_right", "x_px": 1.0,
                           "y_px": 2.0})
    alert_b = len(encode(alert))
    batch = PositionBatch(site="demo", device="camera-vtest", positions=[
        Position(entity=f"camera-vtest-t{i}", entity_kind=EntityKind.TRACK, lon=114.057,
                 lat=22.543, accuracy_m=2.0, ts=utcnow()) for i in range(4)])
    pos_b = len(encode(batch))
    health_b = len(encode(Health(site="demo", device="camera-vtest", uptime_s=1.0, fps=10.0,
                                 inference_ms=5.0, metrics={f"m{i}": 1.0 for i in range(10)})))
    alerts_per_h = events_per_video / hours_of_video
    sent_per_h = alerts_per_h * alert_b + 3600 * pos_b + 360 * health_b
    return {"video_bytes_per_h": video_bytes_per_h, "mqtt_bytes_per_h": sent_per_h,
            "alert_bytes": alert_b, "alerts_per_h": alerts_per_h,
            "ratio": sent_per_h / video_bytes_per_h}


def detectors_here(only: list[str] | None) -> tuple[dict[str, Detector], dict[str, str]]:
    built: dict[str, Detector] = {}
    skipped: dict[str, str] = {}
    for name, cand in candidates(models_dir()).items():
        if only and name not in only:
            continue
        if not isinstance(cand, Candidate):
            skipped[name] = cand
            continue
        # the operating threshold, as the agent runs it (the evaluation lowers it for AP)
        built[name] = build_detector(cand.config.model_copy(
            update={"min_score": cand.operating_min_score}))
    return built, skipped


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=795)
    ap.add_argument("--ungated-frames", type=int, default=100,
                    help="frames for ungated HOG (slow); the tensor detectors run all")
    ap.add_argument("--only", action="append", default=None)
    args = ap.parse_args()
    video = fetch_vtest()
    dets, skipped = detectors_here(args.only)
    for name, why in skipped.items():
        print(f"{name}: skipped: {why}")
    gated_hog_events = 0
    e: dict[str, float] = {}
    for size in ((W, H), NATIVE):
        frames, dec_wall, dec_cpu = decode_all(video, args.frames, size)
        dec_fps = len(frames) / dec_wall
        dec_cpu_per_s = dec_cpu / (len(frames) / VIDEO_FPS)
        print(f"\n{size[0]}x{size[1]}, {len(frames)} frames of vtest.avi")
        print(f"  decode (baseline)         {dec_fps:8.1f} fps   CPU {dec_cpu_per_s:.3f} s per "
              "video s")
        for name, det in dets.items():
            for gated in (True, False):
                sample = frames if gated or name != "hog" else frames[: args.ungated_frames]
                r = process(sample, gated, det, size)
                cpu_total = r["cpu_per_video_s"] + dec_cpu_per_s
                label = f"{name} {'gated' if gated else 'ungated'}"
                print(f"  {label:<25} {r['fps']:8.1f} fps ({r['fps'] / dec_fps:.3f} x decode)  "
                      f"p50 {r['p50_ms']:.1f} ms p95 {r['p95_ms']:.1f} ms  detector runs "
                      f"{r['detector_runs']:.0f}/{r['frames']:.0f}  CPU {r['cpu_per_video_s']:.3f}"
                      f" s per video s  streams/core at 10 fps {1 / cpu_total:.1f}")
                if name == "hog" and gated and size == (W, H):
                    gated_hog_events = int(r["events"])
        if size == (W, H):
            e = edge_first_ratio(video, frames, gated_hog_events)
        del frames
    for det in dets.values():
        det.close()
    print(f"\nedge-first: video {e['video_bytes_per_h'] / 1e6:.1f} MB/h vs MQTT "
          f"{e['mqtt_bytes_per_h'] / 1e6:.3f} MB/h ({e['alerts_per_h']:.0f} alerts/h of "
          f"{e['alert_bytes']} B each, positions 1 Hz, health 0.1 Hz): ratio {e['ratio']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
