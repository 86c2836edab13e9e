"""The face stage's settings (the ``faces:`` section of the camera and of the glasses camera),
apart from the stage itself so a config loads without OpenCV installed."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge.config import ConfigError, StrictModel
from edge.faces.backends import FaceBackendConfig, threshold_floor
from edge.faces.matcher import MatcherConfig, ThresholdBelowFloorError
from edge.faces.watchlist import WatchlistConfig


class FaceCropConfig(StrictModel):
    """The matched face's crop carried in the alert (``face_crop``) for the reviewers."""

    size_px: Annotated[int, Field(ge=48, le=512)] = 160
    pad_rel: Annotated[float, Field(ge=0, le=1, description=(
        "margin around the face box on each side, relative to the box's longer side"))] = 0.3
    max_bytes: Annotated[int, Field(ge=4096, le=64 * 1024)] = 16 * 1024
    quality: Annotated[int, Field(ge=20, le=100)] = 85


class FaceStageConfig(StrictModel):
    """How an agent looks for faces (the ``faces:`` section without backend and watchlist)."""

    matcher: MatcherConfig = Field(default_factory=MatcherConfig)
    search_region: Literal["person_upper", "frame"] = Field(default="person_upper", description=(
        "person_upper: the detector runs on the upper part of each person box (cheaper for few "
        "people, finds smaller faces); frame: once on the whole frame"))
    upper_fraction: Annotated[float, Field(gt=0, le=1, description=(
        "share of a person box's height, from the top, searched for a face"))] = 0.6
    min_face_px: Annotated[int, Field(ge=16, le=1024, description=(
        "faces narrower or lower than this are ignored (too few pixels to match reliably)"))] = 40
    detect_every_n_frames: Annotated[int, Field(ge=1, le=100, description=(
        "of the frames with person tracks, look for faces on every n-th"))] = 1
    max_faces_per_frame: Annotated[int, Field(ge=1, le=64, description=(
        "most faces embedded per frame (the largest first); the rest are counted and skipped"))
    ] = 8
    candidates_per_face: Annotated[int, Field(ge=1, le=10)] = 3
    crop: FaceCropConfig = Field(default_factory=FaceCropConfig)


class FacesConfig(FaceStageConfig):
    """An agent config's ``faces:`` section (the camera's, and the glasses camera's): matching
    against the hub's watchlist bundles. Absent: the agent never looks for faces."""

    backend: FaceBackendConfig = Field(default_factory=FaceBackendConfig)
    watchlist: WatchlistConfig

    @model_validator(mode="after")
    def _one_threshold_not_below_floor(self) -> FacesConfig:
        if self.matcher.threshold is not None and self.backend.match_threshold is not None:
            raise ValueError("set the match threshold once: faces.matcher.threshold "
                             "(faces.backend.match_threshold is the same setting)")
        # refused here too, so --validate-config says it before any model is loaded
        threshold = self.matcher.threshold
        floor = threshold_floor(self.backend.backend)
        if threshold is not None and threshold < floor:
            raise ValueError(str(ThresholdBelowFloorError(threshold, floor,
                                                          self.backend.backend)))
        return self

    def stage_config(self) -> FaceStageConfig:
        """The stage's settings, the threshold taken from either place it may be set."""
        matcher = self.matcher
        if matcher.threshold is None and self.backend.match_threshold is not None:
            matcher = matcher.model_copy(update={"threshold": self.backend.match_threshold})
        return FaceStageConfig.model_validate(
            {**self.model_dump(exclude={"backend", "watchlist", "matcher"}),
             "matcher": matcher})


def describe_faces(faces: FacesConfig | None) -> str:
    """The face matching a ``faces:`` section sets up, for ``--validate-config``, or
    ``error: <why>`` (models missing or altered, a threshold below the backend's floor). Loads
    the backend's models (so OpenCV and the model files must be there)."""
    if faces is None:
        return "off"
    from edge.faces.backends import load_backend
    from edge.faces.matcher import effective_threshold
    from edge.faces.types import FaceModelMissingError

    try:
        backend = load_backend(faces.backend)
        threshold = effective_threshold(faces.stage_config().matcher,
                                        default=backend.default_threshold,
                                        floor=backend.floor, backend=backend.name)
    except (FaceModelMissingError, ConfigError) as err:
        return f"error: {err}"
    matcher = faces.matcher
    return (f"{backend.name}, threshold {threshold:g} (floor {backend.floor:g}), "
            f"{matcher.k_frames} of {matcher.n_frames} frames, cool-down {matcher.cooldown_s:g} s")
