"""Settings of watchlist bundle pushes (``bundles:`` in the hub config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, model_validator

from edge.config import StrictModel
from edge.faces.bundle import PART_PLAINTEXT_BYTES
from edge.protocol import MAX_BUNDLE_PARTS, DeviceKind

DEFAULT_MODEL = "sface-2021dec"


class BundlesConfig(StrictModel):
    enabled: bool = Field(
        default=True, description="build, seal and push watchlist bundles to face-matching devices"
    )
    model: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        default=DEFAULT_MODEL,
        description="embedder the bundles carry; an edge with another embedder refuses them",
    )
    embedding_dim: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=128,
        description="values per embedding of ``model`` (128 for SFace); an entry of another "
        "size is left out of the bundle and counted",
    )
    lifetime_s: Annotated[float, Field(ge=600, le=30 * 86_400)] = Field(
        default=86_400.0,
        description="a bundle's own expiry after it is issued; an edge that hears nothing "
        "newer stops matching against it then",
    )
    refresh_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(
        default=0.5,
        description="a new version (same entries) is issued after this part of the lifetime",
    )
    sweep_max_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0,
        description="longest sleep of the sweeper between looks (it also wakes at the next "
        "entry expiry, at the refresh time and on every change)",
    )
    kinds: Annotated[list[DeviceKind], Field(min_length=1, max_length=4)] = Field(
        default_factory=lambda: [DeviceKind.CAMERA, DeviceKind.GLASSES],
        description="device kinds that match faces and so receive bundles",
    )
    part_bytes: Annotated[int, Field(ge=1024, le=PART_PLAINTEXT_BYTES)] = Field(
        default=PART_PLAINTEXT_BYTES,
        description="plaintext bytes per envelope; a larger bundle is sealed in parts of this "
        "size (the default fills one MQTT message: about 4,965 entries of 128 dimensions)",
    )
    max_parts: Annotated[int, Field(ge=2, le=MAX_BUNDLE_PARTS)] = Field(
        default=64,
        description="the most parts a bundle may be sealed as (keep it at or below the edges' "
        "watchlist.max_bundle_parts); a larger one is not sent and the device keeps its previous",
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 bundle signing key (PEM, 0600), created on first start; default "
        "watchlist-signing.key in the audit directory (the hub's secrets directory)",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("bundles.kinds lists a kind twice")
        return self

    @property
    def refresh_after_s(self) -> float:
        return self.lifetime_s * self.refresh_fraction
