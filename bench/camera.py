"""Camera benchmark: decode, detect and track throughput at 640x480 on this machine.

    .venv/bin/python bench/camera.py [--frames N]

Prints, for the real pedestrian video (vtest.avi scaled to 640x480):
- decode: GStreamer file -> BGR frames, frames/s (the baseline every other figure is set against)
- detect+track: motion-gated HOG + tracker + zones, frames/s, per-frame latency p50/p95, CPU
  seconds per video second (CPU use of one stream: 1.0 = one core)
- full-frame HOG without the motion gate, for the ratio the gate buys
- edge-first ratio: bytes the agent would send over MQTT per hour of video (alerts with
  snapshots, positions at 1 Hz, health every 10 s, encoded with the wire contract) against the
  bytes of the video itself at its own bitrate.
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
from edge.camera.ingest import FileSource, FrameSource, IngestConfig
from edge.camera.motion import MotionConfig
from edge.camera.pipeline import FrameProcessor
from edge.camera.snapshot import SnapshotConfig, render_snapshot
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

W, H = 640, 480
VIDEO_FPS = 10.0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def decode_all(video: Path, limit: int) -> tuple[list[object], float, float]:
    src = FrameSource(FileSource(path=video), IngestConfig(width_px=W, height_px=H, policy="all"))
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


def process(frames: list[object], motion: bool) -> dict[str, float]:
    cfg = CameraConfig(site="bench", device="bench", source=FileSource(path=Path("x")),
                       ingest=IngestConfig(width_px=W, height_px=H),
                       motion=MotionConfig(enabled=motion),
                       zones=[LineZone(id="l", a=(167, 283), b=(167, 117), cooldown_s=0)])
    proc = FrameProcessor(cfg)
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
            "p95_ms": lat[int(len(lat) * 0.95) - 1], "cpu_per_video_s": cpu / (len(frames)
                                                                                / VIDEO_FPS),
            "events": events, "detector_runs": proc.detector_runs}


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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=795)
    args = ap.parse_args()
    video = fetch_vtest()
    frames, dec_wall, dec_cpu = decode_all(video, args.frames)
    dec_fps = len(frames) / dec_wall
    print(f"frames: {len(frames)} of vtest.avi at {W}x{H}")
    dec_cpu_per_s = dec_cpu / (len(frames) / VIDEO_FPS)
    print(f"decode (baseline):     {dec_fps:8.1f} fps   CPU {dec_cpu_per_s:.3f} s per video s")
    gated = process(frames, motion=True)
    full = process(frames[: min(len(frames), 200)], motion=False)
    for name, r in (("detect+track (gated)", gated), ("detect+track (full) ", full)):
        print(f"{name}: {r['fps']:8.1f} fps   latency p50 {r['p50_ms']:.1f} ms "
              f"p95 {r['p95_ms']:.1f} ms   CPU {r['cpu_per_video_s']:.3f} s per video s   "
              f"({r['fps'] / dec_fps:.3f} x decode)")
    print(f"motion gate speed-up: {gated['fps'] / full['fps']:.2f} x full-frame HOG")
    print(f"streams per core at 10 fps (gated, CPU-bound): {1 / gated['cpu_per_video_s']:.1f}")
    e = edge_first_ratio(video, frames, int(gated["events"]))
    print(f"edge-first: video {e['video_bytes_per_h'] / 1e6:.1f} MB/h vs MQTT "
          f"{e['mqtt_bytes_per_h'] / 1e6:.3f} MB/h ({e['alerts_per_h']:.0f} alerts/h of "
          f"{e['alert_bytes']} B each, positions 1 Hz, health 0.1 Hz): ratio {e['ratio']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
