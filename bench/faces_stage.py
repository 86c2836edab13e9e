"""What face matching adds to a camera frame, against the person detector of the same frame.

    .venv/bin/python bench/faces_stage.py [--rounds 3]

The frames: the face test video (obama2, biden, obama3, the six-face group photo, 640x480, 34
frames; tests/edge/faces/face_video.py), decoded once with OpenCV. For each round, interleaved
so the machine's load hits all alike, the process CPU time (one thread: OpenCV and onnxruntime
pinned to one) of:
- the baseline: the camera's FrameProcessor (NanoDet-m persons + tracker) over the frames;
- the face stage (edge/faces/stage.py) over the same frames and tracks, with obama.jpg
  enrolled, for ``detect_every_n_frames`` 1 and 2, ``search_region`` person_upper and frame;
- the same stage with no watchlist in force (what a camera without a bundle pays).
It prints each as ms per frame and as a ratio to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "firmware-bridges"))

import cv2
import numpy as np

from edge.camera.config import CameraConfig
from edge.camera.detectors.default import nanodet_onnx_config
from edge.camera.models import models_dir
from edge.camera.pipeline import FrameProcessor, FrameResult
from edge.faces.backends import FaceBackendConfig, load_backend
from edge.faces.bundle import BundleEntry, BundlePayload
from edge.faces.gallery import Gallery
from edge.faces.stage import FaceStage
from edge.faces.stage_config import FaceStageConfig
from edge.faces.testdata import face_photo_path
from edge.faces.types import BgrImage, FaceBackend
from edge.validators import utcnow
from edge.vision.ingest import FileSource
from edge.vision.tracker import TrackerConfig
from tests.edge.faces.face_video import build_face_video


def frames_of(video: Path) -> list[BgrImage]:
    cap = cv2.VideoCapture(str(video))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(np.asarray(frame, dtype=np.uint8))
    cap.release()
    return out


def obama_gallery(backend: FaceBackend) -> Gallery:
    image = np.asarray(cv2.imread(str(face_photo_path("obama"))), dtype=np.uint8)
    face = max(backend.detector.detect(image), key=lambda f: f.area)
    now = utcnow()
    payload = BundlePayload(version=1, issued_at=now, expires_at=now + timedelta(days=1),
                            model=backend.embedder.name, dim=backend.embedder.dim,
                            entries=(BundleEntry("obama", now + timedelta(days=1),
                                                 backend.embedder.embed(image, face)),))
    return Gallery.from_payload(payload)


def cpu_ms_per_frame(body: Callable[[], None], frames: int) -> float:
    t0 = time.process_time()
    body()
    return (time.process_time() - t0) * 1000.0 / frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "faces.avi"
        build_face_video(video, ("obama2", "biden", "obama3", "group"), frames_each=5,
                         gap_frames=3)
        frames = frames_of(video)
    config = CameraConfig.model_validate({
        "site": "bench", "device": "bench-cam", "data_dir": tempfile.gettempdir(),
        "source": FileSource(path=Path("unused.avi")),
        "detector": nanodet_onnx_config(models_dir() / "nanodet-m.onnx"),
        "motion": {"enabled": False}, "tracker": TrackerConfig(max_missed_frames=2, min_hits=1)})
    backend = load_backend(FaceBackendConfig(threads=1))
    gallery = obama_gallery(backend)
    empty = Gallery.empty(backend.embedder.name, backend.embedder.dim)

    results: list[FrameResult] = []
    live: list[set[str]] = []

    def persons() -> None:
        processor = FrameProcessor(config)
        results.clear()
        live.clear()
        for i, frame in enumerate(frames):
            results.append(processor.process(frame, i / 10.0))
            live.append({t.id for t in processor.tracker.tracks})
        processor.close()

    def stage_run(settings: dict[str, object], g: Gallery) -> None:
        stage = FaceStage(FaceStageConfig.model_validate(settings), backend, lambda: g)
        for frame, result, ids in zip(frames, results, live, strict=True):
            stage.process(frame, result.tracks, ids)

    variants: dict[str, tuple[dict[str, object], Gallery]] = {
        "faces, person_upper, every frame": ({}, gallery),
        "faces, person_upper, every 2nd frame": ({"detect_every_n_frames": 2}, gallery),
        "faces, whole frame, every frame": ({"search_region": "frame"}, gallery),
        "faces, no watchlist in force": ({}, empty),
    }
    times: dict[str, list[float]] = {"baseline: persons (NanoDet-m + tracker)": []}
    times.update({name: [] for name in variants})
    for _ in range(args.rounds):
        times["baseline: persons (NanoDet-m + tracker)"].append(
            cpu_ms_per_frame(persons, len(frames)))
        for name, (settings, g) in variants.items():
            times[name].append(cpu_ms_per_frame(partial(stage_run, settings, g), len(frames)))
    base = statistics.median(times["baseline: persons (NanoDet-m + tracker)"])
    print(f"{len(frames)} frames, {args.rounds} rounds, median CPU ms per frame (one thread)")
    print("| per frame | CPU ms | ratio to the person detector |")
    print("|---|---|---|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.1f} | {med / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
