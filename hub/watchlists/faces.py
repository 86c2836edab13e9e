"""The hub's face pipeline for enrolment: one photo in, one embedding (or a refusal) out.

The backend (``edge.faces.backends.load_backend``, by default YuNet + SFace, the edges'
default too, so the embeddings the hub computes compare with the ones the cameras compute)
and the quality checks (``edge.faces.quality``: one face, large enough, frontal, sharp) are the
edge's own code; this module loads the backend once, on first use, and runs one enrolment at
a time (OpenCV's DNN objects keep per-call state such as the input size).

Nothing here logs or keeps the photo or the embedding.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge.faces.backends import FaceBackendConfig, load_backend
from edge.faces.quality import QualityConfig, check_enrolment, decode_photo
from edge.faces.types import FaceBackend


@dataclass(frozen=True, slots=True)
class EnrolledFace:
    embedding: NDArray[np.float32]  # (dim,), L2-normalised
    model: str  # the embedder's name: bundles carry it, edges with another embedder refuse
    quality: dict[str, float]


class FaceEngine:
    def __init__(self, backend: FaceBackendConfig, quality: QualityConfig) -> None:
        self.backend_config = backend
        self.quality = quality
        self._lock = threading.Lock()
        self._backend: FaceBackend | None = None

    def _load(self) -> FaceBackend:
        if self._backend is None:
            # FaceModelMissingError (naming the fetch command) or ConfigError propagate.
            self._backend = load_backend(self.backend_config)
        return self._backend

    def enrol(self, data: bytes) -> EnrolledFace:
        """Raises ``EnrolmentRefusedError`` (with its ``QualityReason``) for a photo that fails
        a check, ``FaceModelMissingError`` when the model files are not installed."""
        image = decode_photo(data, self.quality)
        with self._lock:
            backend = self._load()
            face = check_enrolment(image, backend, self.quality)
        vector = np.asarray(face.embedding, dtype=np.float32).reshape(-1)
        return EnrolledFace(vector, backend.embedder.name, dict(face.metrics))
