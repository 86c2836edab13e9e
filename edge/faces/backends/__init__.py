"""Face backends, registered by convention like the camera detectors: one module per model
family with a ``build(config, spec)``, one :class:`BackendSpec` per backend in
:data:`BACKENDS`; the config's ``backend`` literal and the runtime registry come from that one
tuple (a test checks they agree). A backend's module is imported by name when it is selected:
the hub runs ``yunet-sface`` for enrolment and must not load the camera agent's TFLite code
that ``blazeface-sface`` builds on, nor insightface (a test checks what the hub imports).

``load_backend(config)`` builds a :class:`~edge.faces.types.FaceBackend`. A missing model
file raises :class:`~edge.faces.types.FaceModelMissingError` naming the fetch command; a
file whose digest differs, an unaccepted licence or an unusable pack raise
:class:`~edge.config.ConfigError` with a sentence.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from edge.config import ConfigError, StrictModel
from edge.faces.backends.models import (
    BACKEND_MODELS,
    INSIGHTFACE_LICENCE,
    FaceModel,
    default_models_dir,
    fetch_command,
    verify,
)
from edge.faces.types import FaceBackend, FaceDetector, FaceEmbedder, FaceModelMissingError

BackendKey = Literal["yunet-sface", "blazeface-sface", "insightface"]
_PACK = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class FaceBackendConfig(StrictModel):
    """Which detector + embedder pair runs, and the detector's settings."""

    backend: BackendKey = "yunet-sface"
    models_dir: Path | None = Field(default=None, description=(
        "where the model files are; default <cache>/models/faces (BlazeFace: the camera "
        "cache's blazeface directory)"))
    insightface_pack: str | None = Field(default=None, description=(
        "insightface only: the pack directory under <models_dir>/insightface/"))
    accept_insightface_licence: bool = Field(default=False, description=(
        "insightface only: the operator accepts the packs' non-commercial licence"))
    min_detector_score: Annotated[float, Field(gt=0, lt=1)] = 0.8
    nms_iou: Annotated[float, Field(gt=0, le=1)] = 0.3
    max_faces: Annotated[int, Field(ge=1, le=500)] = 50
    detect_max_side_px: Annotated[int, Field(ge=64, le=8192, description=(
        "frames whose longer side is bigger are shrunk before detection (YuNet)"))] = 1280
    insightface_input_px: Annotated[int, Field(ge=128, le=1280, multiple_of=32)] = 640
    detector_runtime: Literal["onnxruntime", "opencv"] = Field(default="onnxruntime", description=(
        "YuNet runtime; both give the same faces, bench/faces.py measures which is faster"))
    embedder_runtime: Literal["onnxruntime", "opencv"] = Field(default="onnxruntime", description=(
        "SFace runtime; both give the same embedding, bench/faces.py measures which is faster"))
    threads: Annotated[int, Field(ge=1, le=64)] = 1
    match_threshold: Annotated[float, Field(gt=0, lt=1)] | None = Field(default=None, description=(
        "cosine similarity a match needs; default the backend's default_threshold; never "
        "below the backend's validated floor"))

    @model_validator(mode="after")
    def _check(self) -> FaceBackendConfig:
        if self.backend == "insightface":
            if self.insightface_pack is None:
                raise ValueError("backend insightface needs insightface_pack (the pack "
                                 "directory under <models_dir>/insightface/, e.g. buffalo_s)")
            if not _PACK.match(self.insightface_pack) or self.insightface_pack in (".", ".."):
                raise ValueError(f"insightface_pack {self.insightface_pack!r} must be a "
                                 "directory name (letters, digits, _ . -), not a path")
        elif self.insightface_pack is not None or self.accept_insightface_licence:
            raise ValueError("insightface_pack and accept_insightface_licence only apply to "
                             "backend insightface")
        floor = SPECS[self.backend].floor
        if self.match_threshold is not None and self.match_threshold < floor:
            raise ValueError(f"match_threshold {self.match_threshold} is below the validated "
                             f"floor {floor} of backend {self.backend}: a lower threshold "
                             "would raise false matches beyond what was evaluated")
        return self

    def threshold(self) -> float:
        return (SPECS[self.backend].default_threshold if self.match_threshold is None
                else self.match_threshold)


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One backend: its models, thresholds (from ``gridward faces eval``, docs/faces.md) and
    how to build it."""

    key: str
    models: tuple[FaceModel, ...]
    default_threshold: float
    floor: float
    licence: str
    module: str  # its ``build(config, spec) -> FaceBackend``; imported when selected

    def build(self, config: FaceBackendConfig) -> FaceBackend:
        plugin = importlib.import_module(self.module)
        builder: Callable[[FaceBackendConfig, BackendSpec], FaceBackend] = plugin.build
        return builder(config, self)

    def assemble(self, detector: FaceDetector, embedder: FaceEmbedder) -> FaceBackend:
        """The backend of these two models, with this spec's thresholds and licence."""
        return FaceBackend(self.key, detector, embedder, self.default_threshold, self.floor,
                           self.licence)


def threshold_floor(backend: str) -> float:
    """The validated floor of a backend (faces configs elsewhere check their thresholds)."""
    return SPECS[backend].floor


def model_path(config: FaceBackendConfig, model: FaceModel) -> Path:
    """The verified file of ``model``: FaceModelMissingError when absent, ConfigError when
    its digest is not the pinned one (a swapped model changes every score)."""
    path = model.path(config.models_dir)
    state = verify(model, config.models_dir)
    if state == "missing":
        raise FaceModelMissingError(f"face model {model.name} ({path}) is missing: run "
                                    f"{fetch_command()} on a connected machine")
    if state != "ok":
        raise ConfigError(f"face model {path} does not have the pinned sha256 "
                          f"{model.sha256}: fetch it again with {fetch_command()}")
    return path


def insightface_pack_dir(config: FaceBackendConfig) -> Path:
    base = config.models_dir if config.models_dir is not None else default_models_dir()
    return base / "insightface" / str(config.insightface_pack)


# Thresholds (cosine similarity), from `gridward faces eval --builtin` (docs/faces.md): on the
# built-in pairs SFace scores genuine pairs 0.71-0.80 and impostors at most 0.313 (YuNet crops;
# 0.310 with BlazeFace's), so the validated floor there is 0.32. The floor is the larger of that
# and OpenCV's own SFace threshold (0.363, from its LFW evaluation, a far larger set), on the
# 0.01 grid: 0.37. The default keeps a margin above it. insightface packs cannot be evaluated
# offline here (no weights): their numbers are the usual ArcFace values, to be replaced by an
# evaluation of the operator's pack on the operator's pairs.
SFACE_FLOOR = 0.37
SFACE_DEFAULT_THRESHOLD = 0.40
BACKENDS: tuple[BackendSpec, ...] = (
    BackendSpec("yunet-sface", BACKEND_MODELS["yunet-sface"], SFACE_DEFAULT_THRESHOLD,
                SFACE_FLOOR, "YuNet 2023mar: MIT; SFace 2021dec: Apache-2.0",
                "edge.faces.backends.yunet"),
    BackendSpec("blazeface-sface", BACKEND_MODELS["blazeface-sface"], SFACE_DEFAULT_THRESHOLD,
                SFACE_FLOOR, "BlazeFace: Apache-2.0; SFace 2021dec: Apache-2.0",
                "edge.faces.backends.blazeface"),
    BackendSpec("insightface", (), 0.45, 0.35, INSIGHTFACE_LICENCE,
                "edge.faces.backends.insightface_pack"),
)
SPECS: dict[str, BackendSpec] = {s.key: s for s in BACKENDS}
if set(SPECS) != set(get_args(BackendKey)):  # the config literal and the registry are one list
    raise RuntimeError("BACKENDS and BackendKey disagree")


def load_backend(config: FaceBackendConfig) -> FaceBackend:
    """The detector + embedder of ``config.backend``, models verified."""
    return SPECS[config.backend].build(config)


__all__ = ["BACKENDS", "SPECS", "BackendKey", "BackendSpec", "FaceBackendConfig",
           "insightface_pack_dir", "load_backend", "model_path", "threshold_floor"]
