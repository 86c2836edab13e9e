"""Which detector runs when the camera config names none: NanoDet-m where set-up has built it
(ONNX on onnxruntime preferred, TFLite on LiteRT otherwise), OpenCV's HOG people detector as
the fallback. The reason string says which one and why, for the agent's start-up log."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edge.camera.detectors import hog, onnx, tflite
from edge.camera.detectors.nanodet import INPUT_SIZE
from edge.camera.models import models_dir

ONNX_FILE = "nanodet-m.onnx"
TFLITE_FILE = "nanodet-m.tflite"
BUILD_HINT = "build it with `gridward edge camera models build nanodet-m`"
# NanoDet-m scores persons in vtest.avi at 0.6-0.85; below ~0.35 duplicates and parts appear
MIN_SCORE = 0.4
NMS_IOU = 0.5

DefaultConfig = hog.Config | onnx.Config | tflite.Config


def nanodet_onnx_config(model: Path) -> onnx.Config:
    return onnx.Config(model=model, output_format="nanodet", input_layout="nchw",
                       input_scale="nanodet", resize="stretch", min_score=MIN_SCORE,
                       nms_iou=NMS_IOU)


def nanodet_tflite_config(model: Path) -> tflite.Config:
    return tflite.Config(model=model, output_format="nanodet", input_layout="nchw",
                         input_scale="nanodet", resize="stretch", min_score=MIN_SCORE,
                         nms_iou=NMS_IOU)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or half-imported
        return False


def choose_default(models_dir: Path) -> tuple[DefaultConfig, str]:
    """The default detector config for a camera whose config names none, and why it was
    chosen. Only presence is checked here (cheap, at every config load); the plugin checks the
    file when it loads it, and ``gridward edge camera models verify`` checks its sha256."""
    onnx_path, tflite_path = models_dir / ONNX_FILE, models_dir / TFLITE_FILE
    size = f"{INPUT_SIZE[0]}x{INPUT_SIZE[1]}"
    missing: list[str] = []
    if onnx_path.is_file():
        if _installed("onnxruntime"):
            return (nanodet_onnx_config(onnx_path),
                    f"NanoDet-m {size} on onnxruntime ({onnx_path}), the default where set-up "
                    "has built it")
        missing.append(f"{onnx_path} is there but onnxruntime is not installed")
    if tflite_path.is_file():
        if any(_installed(m) for m in ("ai_edge_litert", "tflite_runtime")):
            return (nanodet_tflite_config(tflite_path),
                    f"NanoDet-m {size} on LiteRT ({tflite_path}), the default where set-up "
                    "has built it" + (f" ({missing[0]})" if missing else ""))
        missing.append(f"{tflite_path} is there but no TFLite runtime (ai-edge-litert) is "
                       "installed")
    why = "; ".join(missing) if missing else f"no NanoDet-m model in {models_dir}: {BUILD_HINT}"
    return hog.Config(), f"HOG people detector (fallback, weak on small people): {why}"


def detector_reason(detector: DefaultConfig, *, configured: bool,
                    directory: Path | None = None) -> str:
    """The start-up sentence for the detector a camera runs: the configured one as such, the
    default one with :func:`choose_default`'s reason. ``configured`` is whether the config file
    named a detector (``"detector" in config.model_fields_set``)."""
    if configured:
        if isinstance(detector, hog.Config):
            return "hog detector as configured"
        return (f"{detector.type} detector as configured ({detector.model}, output_format "
                f"{detector.output_format})")
    return choose_default(directory or models_dir())[1]


def default_detector() -> DefaultConfig:
    """The camera config's ``detector`` default (the cache's models directory)."""
    return choose_default(models_dir())[0]


__all__ = ["BUILD_HINT", "ONNX_FILE", "TFLITE_FILE", "choose_default", "default_detector",
           "detector_reason", "nanodet_onnx_config", "nanodet_tflite_config"]
