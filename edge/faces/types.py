"""The interfaces every face backend implements, and the values they pass around.

Coordinates are pixels of the BGR frame given to ``detect``. Landmarks are the five points of
the ArcFace template, in this order: right eye, left eye, nose tip, right mouth corner, left
mouth corner ("right" is the subject's right, on the viewer's left) - the order YuNet emits and
SFace / ArcFace alignment expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

BgrImage = NDArray[np.uint8]  # H x W x 3, OpenCV channel order
Embedding = NDArray[np.float32]  # (dim,), L2-normalised


@dataclass(frozen=True, slots=True)
class FaceBox:
    """One detected face."""

    x: float
    y: float
    w: float
    h: float
    score: float
    landmarks: tuple[tuple[float, float], ...]  # five (x, y) points, order above; () if none

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)


class FaceDetector(Protocol):
    """Finds faces in a frame. ``name`` is the registry key of the detector model."""

    name: str

    def detect(self, image: BgrImage) -> list[FaceBox]:
        """Faces found, best score first; landmarks filled when the model gives them."""
        ...


class FaceEmbedder(Protocol):
    """Turns one face of a frame into an identity embedding. ``name`` identifies the model:
    embeddings of different models are never compared (a bundle names its model and an edge
    whose embedder differs refuses it)."""

    name: str
    dim: int

    def embed(self, image: BgrImage, face: FaceBox) -> Embedding:
        """Align (five landmarks -> the 112x112 template) and embed; L2-normalised float32."""
        ...


@dataclass(frozen=True, slots=True)
class FaceBackend:
    """A detector and an embedder that belong together, with the embedder's thresholds.

    ``default_threshold`` is the cosine similarity a match needs out of the box; ``floor`` the
    lowest threshold a config may set (the validated floor from ``gridward faces eval``)."""

    name: str
    detector: FaceDetector
    embedder: FaceEmbedder
    default_threshold: float
    floor: float
    licence: str


class QualityReason(StrEnum):
    """Why an enrolment photo is refused (the hub shows the reason to the enrolling user)."""

    UNREADABLE = "unreadable_image"
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    TOO_SMALL = "too_small"
    TOO_BLURRED = "too_blurred"
    EXTREME_POSE = "extreme_pose"


class EnrolmentRefusedError(ValueError):
    """An enrolment photo failed a quality check; ``reason`` says which, the message why."""

    def __init__(self, reason: QualityReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class FaceModelMissingError(FileNotFoundError):
    """A backend's model file is not in the models directory; the message names the command
    that fetches it."""
