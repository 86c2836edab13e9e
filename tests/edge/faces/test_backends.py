"""The face backends on the real models and photos."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from edge.faces.types import BgrImage, Embedding, FaceBackend


def test_default_backend_separates_same_and_different_people(
        face_backend: FaceBackend, embedding_of: Callable[[str], Embedding]) -> None:
    assert face_backend.embedder.name == "sface-2021dec"
    assert face_backend.embedder.dim == 128
    same = [float(embedding_of(a) @ embedding_of(b))
            for a, b in (("obama", "obama2"), ("obama", "obama3"), ("obama2", "obama3"))]
    other = [float(embedding_of("biden") @ embedding_of(o)) for o in ("obama", "obama2", "obama3")]
    assert min(same) >= face_backend.default_threshold > max(other)
    for label in ("obama", "biden"):
        v = embedding_of(label)
        assert v.dtype == np.float32 and v.shape == (128,)
        assert float(np.linalg.norm(v)) == pytest.approx(1.0, abs=1e-5)


def test_group_photo_gives_six_faces_with_landmarks(
        face_backend: FaceBackend, photo: Callable[[str], BgrImage]) -> None:
    faces = face_backend.detector.detect(photo("group"))
    assert len(faces) == 6
    assert all(len(f.landmarks) == 5 for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
