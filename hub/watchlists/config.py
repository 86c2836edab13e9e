"""Settings of the watchlists (``watchlists:`` in the hub config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, model_validator

from edge.config import StrictModel
from edge.validators import SegmentId

DEFAULT_CATEGORIES = ("wanted_person", "missing_person", "barred_from_site")


class FaceQualityConfig(StrictModel):
    """What an enrolment photo's one face must be (the reasons of ``quality.*`` refusals)."""

    min_face_px: Annotated[int, Field(ge=32, le=2000)] = Field(
        default=80, description="the face's box must be at least this wide and high (pixels)"
    )
    min_sharpness: Annotated[float, Field(ge=0, le=10_000)] = Field(
        default=40.0,
        description="variance of the Laplacian of the aligned 112x112 face; below: too blurred",
    )
    max_yaw_ratio: Annotated[float, Field(gt=0, lt=0.5)] = Field(
        default=0.35,
        description="the nose may sit this far from the middle of the eyes (as a share of "
        "the eye distance); further: a profile, refused as extreme_pose",
    )
    detector_score: Annotated[float, Field(gt=0, lt=1)] = 0.8
    other_face_area_ratio: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.25,
        description="a second face at least this share of the largest one's area makes the "
        "photo ambiguous (several_faces); smaller background faces are ignored",
    )


class WatchlistsConfig(StrictModel):
    categories: Annotated[list[SegmentId], Field(min_length=1, max_length=50)] = Field(
        default_factory=lambda: list(DEFAULT_CATEGORIES),
        description="the categories an entry may have",
    )
    max_expiry_days: Annotated[int, Field(ge=1, le=366)] = Field(
        default=90, description="an entry expires at most this many days after its enrolment"
    )
    photo_max_bytes: Annotated[int, Field(ge=1024, le=20 * 1024 * 1024)] = Field(
        default=5 * 1024 * 1024, description="an enrolment photo's size limit"
    )
    photo_max_pixels: Annotated[int, Field(ge=10_000, le=100_000_000)] = Field(
        default=25_000_000,
        description="width x height limit, checked from the header before decoding (bombs)",
    )
    photo_key_file: Path | None = Field(
        default=None,
        description="AES-256 key of the stored photos (0600, created on first use); default: "
        "watchlist-photos.key in the audit directory (the hub's secrets)",
    )
    models_dir: Path | None = Field(
        default=None,
        description="where YuNet and SFace are (default: the cache's models/faces, "
        "$GRIDWARD_CACHE or .cache)",
    )
    quality: FaceQualityConfig = Field(default_factory=FaceQualityConfig)
    sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=10.0, description="how often a hub marks entries past their expiry as expired"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("watchlists.categories lists a category twice")
        return self
