"""Face detection + embedding throughput on one core, at 640x480.

    .venv/bin/python bench/faces.py [--rounds 5] [--frames 20]

The frame is the six-face group photo (t1.jpg) letterboxed to 640x480 (faces ~50 px wide, a
camera's view of a small group), plus obama.jpg letterboxed (one large face). OpenCV runs on
one thread (cv2.setNumThreads(1)) and onnxruntime on one intra-op thread.

Measured in the same run, interleaved round by round so the machine's load hits all alike:
- the baseline: what any detector pays before inference (cv2.resize of the frame to 640x480
  and cv2.dnn.blobFromImage), and the raw SFace session run on a prepared tensor;
- YuNet detect per frame on each runtime (OpenCV FaceDetectorYN, onnxruntime);
- SFace embed per face (align + network) on OpenCV FaceRecognizerSF, on onnxruntime with the
  PRelus kept (the graph before edge/faces/backends/onnx_graph.py's rewrite) and rewritten;
- the whole yunet-sface backend: detect + embed every face found, as faces/s (target >= 30),
  as it ran before (YuNet on OpenCV, SFace's PRelus kept: the baseline of this run) and as it
  runs by default (both on onnxruntime, PRelus rewritten); and the lowest cosine between their
  embeddings.
It then runs bench/faces_search.py (the 1:N gallery search, facebundle's) when it exists, as
its own process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "firmware-bridges"))

import cv2
import numpy as np

from edge.faces.align import align_face
from edge.faces.backends import FaceBackendConfig, load_backend
from edge.faces.backends.models import SFACE_MODEL
from edge.faces.backends.sface import SFaceEmbedder, crop_blob, ort_session
from edge.faces.testdata import fetch_face_models, fetch_face_photos
from edge.faces.types import BgrImage, FaceDetector, FaceEmbedder

PRE = "baseline: resize + blobFromImage (ms/frame)"
RAW = "baseline: raw SFace ORT run, PRelus kept, on a tensor (ms/face)"
DETECT_CV = "YuNet detect, opencv (ms/frame)"
DETECT_ORT = "YuNet detect, onnxruntime (ms/frame)"
EMBED_CV = "SFace embed, opencv (ms/face)"
EMBED_KEPT = "SFace embed, onnxruntime, PRelus kept (ms/face)"
EMBED_ORT = "SFace embed, onnxruntime, PRelus rewritten (ms/face)"


def letterbox(image: BgrImage, size: tuple[int, int] = (640, 480)) -> BgrImage:
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    frame = np.zeros((h, w, 3), dtype=np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame


def per_call_ms(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(wall, CPU) milliseconds per call. Everything runs on one thread, so this process's CPU
    time is what the call costs one dedicated core even when other work shares the machine."""
    fn()  # warm-up outside the timing
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1000 / n, (time.process_time() - c0) * 1000 / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=20, help="per measurement per round")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    load_before = os.getloadavg()
    fetch_face_models()
    photos = fetch_face_photos()
    group = letterbox(np.asarray(cv2.imread(str(photos["group"])), dtype=np.uint8))
    portrait = letterbox(np.asarray(cv2.imread(str(photos["obama"])), dtype=np.uint8))
    raw = np.asarray(cv2.imread(str(photos["group"])), dtype=np.uint8)

    backend = load_backend(FaceBackendConfig())
    before = load_backend(FaceBackendConfig(detector_runtime="opencv"))
    opencv_embedder = load_backend(FaceBackendConfig(embedder_runtime="opencv")).embedder
    kept = SFaceEmbedder(SFACE_MODEL.path(), "onnxruntime", 1, rewrite_prelu=False)
    faces = backend.detector.detect(group)
    if len(before.detector.detect(group)) != len(faces):
        print("the two YuNet runtimes find different faces", file=sys.stderr)
        return 1
    face = faces[0]
    crop = align_face(group, face.landmarks)
    session = ort_session(SFACE_MODEL.path(), 1, rewrite_prelu=False)
    blob = crop_blob(crop)
    name = session.get_inputs()[0].name
    cosine = min(float(backend.embedder.embed(group, f) @ kept.embed(group, f)) for f in faces)

    def baseline_pre() -> object:
        return cv2.dnn.blobFromImage(cv2.resize(raw, (640, 480)), 1.0, (640, 480))

    def whole(frame: BgrImage, detector: FaceDetector,
              embedder: FaceEmbedder) -> Callable[[], int]:
        def run() -> int:
            found = detector.detect(frame)
            for f in found:
                embedder.embed(frame, f)
            return len(found)
        return run

    n_group, n_portrait = len(faces), len(backend.detector.detect(portrait))
    group_before = f"detect + embed, group frame {n_group} faces, before (ms/frame)"
    group_default = f"detect + embed, group frame {n_group} faces (ms/frame)"
    results: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for key, fn in (
                (PRE, baseline_pre),
                (RAW, lambda: session.run(None, {name: blob})),
                (DETECT_CV, lambda: before.detector.detect(group)),
                (DETECT_ORT, lambda: backend.detector.detect(group)),
                (EMBED_CV, lambda: opencv_embedder.embed(group, face)),
                (EMBED_KEPT, lambda: kept.embed(group, face)),
                (EMBED_ORT, lambda: backend.embedder.embed(group, face)),
                (group_before, whole(group, before.detector, kept)),
                (group_default, whole(group, backend.detector, backend.embedder)),
                (f"detect + embed, portrait frame {n_portrait} face (ms/frame)",
                 whole(portrait, backend.detector, backend.embedder))):
            w, c = per_call_ms(fn, args.frames)
            wall.setdefault(key, []).append(w)
            results.setdefault(key, []).append(c)
    med = {k: statistics.median(v) for k, v in results.items()}
    load = os.getloadavg()
    print(f"faces bench: {args.rounds} rounds x {args.frames} calls, one thread, 640x480; "
          f"load average before {load_before[0]:.1f}, after {load[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"  {'median of rounds, CPU ms (wall ms)':64} {'CPU':>8}  wall")
    for key, value in med.items():
        print(f"  {key:64} {value:8.2f}  {statistics.median(wall[key]):8.2f}")
    for label, key in (("before (the baseline)", group_before), ("default", group_default)):
        print(f"  faces/s on one core, group frame, {label} (detect + embed, from CPU time): "
              f"{n_group * 1000 / med[key]:.1f} (target >= 30); from wall time on this "
              f"machine: {n_group * 1000 / statistics.median(wall[key]):.1f}")
    print(f"  default / before: group frame {med[group_default] / med[group_before]:.2f}x, "
          f"YuNet {med[DETECT_ORT] / med[DETECT_CV]:.2f}x, SFace "
          f"{med[EMBED_ORT] / med[EMBED_KEPT]:.2f}x; lowest cosine between their embeddings "
          f"of the {n_group} faces: {cosine:.7f}")
    print(f"  frame / baseline pre-processing: {med[group_default] / med[PRE]:.1f}x; "
          f"embed with PRelus kept / raw session: {med[EMBED_KEPT] / med[RAW]:.2f}x")
    print(f"  onnxruntime (rewritten) / opencv embed: {med[EMBED_ORT] / med[EMBED_CV]:.2f}x")

    return run_search()


def run_search() -> int:
    """facebundle's gallery search bench, as its own process (whatever its arguments are)."""
    search = ROOT / "bench" / "faces_search.py"
    if not search.is_file():
        print("bench/faces_search.py is not here (facebundle's): gallery search not run")
        return 0
    print("--- bench/faces_search.py ---", flush=True)
    return subprocess.run([sys.executable, str(search)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
