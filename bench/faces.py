"""Face detection + embedding throughput on one core, at 640x480.

    .venv/bin/python bench/faces.py [--rounds 5] [--frames 20]

The frame is the six-face group photo (t1.jpg) letterboxed to 640x480 (faces ~50 px wide, a
camera's view of a small group), plus obama.jpg letterboxed (one large face). OpenCV runs on
one thread (cv2.setNumThreads(1)) and onnxruntime on one intra-op thread.

Measured in the same run, interleaved round by round so the machine's load hits all alike:
- the baseline: what any detector pays before inference (cv2.resize of the frame to 640x480
  and cv2.dnn.blobFromImage), and the raw SFace session run on a prepared tensor;
- YuNet detect per frame;
- SFace embed per face (align + network) on each runtime (OpenCV FaceRecognizerSF, onnxruntime);
- the whole yunet-sface backend: detect + embed every face found, as faces/s (target >= 30).
It then runs bench/faces_search.py (the 1:N gallery search, facebundle's) when it exists.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
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
from edge.faces.backends.sface import crop_blob, ort_session
from edge.faces.testdata import fetch_face_models, fetch_face_photos
from edge.faces.types import BgrImage


def letterbox(image: BgrImage, size: tuple[int, int] = (640, 480)) -> BgrImage:
    w, h = size
    scale = min(w / image.shape[1], h / image.shape[0])
    small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    frame = np.zeros((h, w, 3), dtype=np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame


def per_call_ms(fn: Callable[[], object], n: int) -> float:
    fn()  # warm-up outside the timing
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1000 / n


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

    backends = {rt: load_backend(FaceBackendConfig(embedder_runtime=rt))
                for rt in ("opencv", "onnxruntime")}
    default_runtime = FaceBackendConfig().embedder_runtime
    backend = backends[default_runtime]
    faces = backend.detector.detect(group)
    face = faces[0]
    crop = align_face(group, face.landmarks)
    session = ort_session(SFACE_MODEL.path(), 1)
    blob = crop_blob(crop)
    name = session.get_inputs()[0].name

    def baseline_pre() -> object:
        return cv2.dnn.blobFromImage(cv2.resize(raw, (640, 480)), 1.0, (640, 480))

    def whole(frame: BgrImage) -> Callable[[], int]:
        def run() -> int:
            found = backend.detector.detect(frame)
            for f in found:
                backend.embedder.embed(frame, f)
            return len(found)
        return run

    n_group, n_portrait = len(faces), len(backend.detector.detect(portrait))
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for key, fn in (
                ("baseline: resize + blobFromImage (ms/frame)", baseline_pre),
                ("baseline: raw SFace ORT run on a prepared tensor (ms/face)",
                 lambda: session.run(None, {name: blob})),
                ("YuNet detect (ms/frame)", lambda: backend.detector.detect(group)),
                ("SFace embed, opencv (ms/face)",
                 lambda: backends["opencv"].embedder.embed(group, face)),
                ("SFace embed, onnxruntime (ms/face)",
                 lambda: backends["onnxruntime"].embedder.embed(group, face)),
                (f"detect + embed, group frame {n_group} faces (ms/frame)", whole(group)),
                (f"detect + embed, portrait frame {n_portrait} face (ms/frame)",
                 whole(portrait))):
            results.setdefault(key, []).append(per_call_ms(fn, args.frames))
    med = {k: statistics.median(v) for k, v in results.items()}
    load = os.getloadavg()
    print(f"faces bench: {args.rounds} rounds x {args.frames} calls, one thread, 640x480, "
          f"default runtime {default_runtime}; load average before {load_before[0]:.1f}, "
          f"after {load[0]:.1f} on {os.cpu_count()} cores")
    for key, value in med.items():
        print(f"  {key:60} {value:8.2f}  (min {min(results[key]):.2f})")
    keys = list(med)
    group_ms = med[keys[5]]
    faces_per_s = n_group * 1000 / group_ms
    print(f"  faces/s on the group frame (detect + embed): {faces_per_s:.1f} (target >= 30)")
    embed_ms = med[keys[3 if default_runtime == "opencv" else 4]]
    print(f"  frame / baseline pre-processing: {group_ms / med[keys[0]]:.1f}x; "
          f"embed / raw session: {embed_ms / med[keys[1]]:.2f}x")
    print(f"  onnxruntime / opencv embed: {med[keys[4]] / med[keys[3]]:.2f}x")

    search = ROOT / "bench" / "faces_search.py"
    if search.is_file():
        spec = importlib.util.spec_from_file_location("faces_search", search)
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            print("--- bench/faces_search.py ---")
            rc = module.main([])
            return int(rc or 0)
    else:
        print("bench/faces_search.py is not here (facebundle's): gallery search not run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
