"""Settings of the watchlists (``watchlists:`` in the hub config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, model_validator

from edge.config import StrictModel
from edge.faces.backends import FaceBackendConfig
from edge.faces.quality import QualityConfig
from edge.validators import SegmentId

DEFAULT_CATEGORIES = ("wanted_person", "missing_person", "barred_from_site")


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
    face: FaceBackendConfig = Field(
        default_factory=FaceBackendConfig,
        description="the face backend that embeds enrolment photos: the edges' backend "
        "(docs/faces.md); bundles carry its embedder's name",
    )
    quality: QualityConfig = Field(
        default_factory=QualityConfig,
        description="the enrolment photo checks (one face, size, pose, sharpness; docs/faces.md)",
    )
    sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=10.0, description="how often a hub marks entries past their expiry as expired"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("watchlists.categories lists a category twice")
        return self
