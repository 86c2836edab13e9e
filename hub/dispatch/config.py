"""Settings of dispatch (``dispatch:`` in the hub config)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from edge.config import StrictModel
from edge.validators import SegmentId
from hub.incidents.model import IncidentLevel

MAX_RINGS = 8


class Ring(StrictModel):
    """One circle of the search: officers within ``radius_m`` of the incident (ring 0 also
    takes the cell team's officers wherever they are), at most ``officers`` of them."""

    radius_m: Annotated[float, Field(gt=0, le=1_000_000)]
    officers: Annotated[int, Field(ge=1, le=100)]


DEFAULT_RINGS = (
    Ring(radius_m=500, officers=2),
    Ring(radius_m=2000, officers=4),
    Ring(radius_m=10_000, officers=8),
)


class DispatchConfig(StrictModel):
    enabled: bool = Field(default=True, description="dispatch officers to qualifying incidents")
    min_level: IncidentLevel = Field(
        default=IncidentLevel.HIGH, description="incidents of this level or higher get officers"
    )
    categories: Annotated[list[SegmentId], Field(max_length=200)] | None = Field(
        default=None, description="only incidents of these categories (None: every category)"
    )
    ack_timeout_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=60.0, description="how long a ring has to acknowledge before the next is asked"
    )
    rings: Annotated[list[Ring], Field(min_length=1, max_length=MAX_RINGS)] = Field(
        default_factory=lambda: list(DEFAULT_RINGS),
        description="widening circles, asked one after the other",
    )
    offline_after_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=120.0, description="an officer whose last fix is older than this is offline"
    )
    sweep_interval_s: Annotated[float, Field(gt=0, le=300)] = Field(
        default=1.0, description="how often a hub looks for rounds whose time is up"
    )
    evidence_max_bytes: Annotated[int, Field(ge=0, le=192 * 1024)] = Field(
        default=64 * 1024,
        description="the alert's snapshot goes with the notification when at most this big",
    )

    @model_validator(mode="after")
    def _check_rings(self) -> Self:
        for n, (inner, outer) in enumerate(zip(self.rings, self.rings[1:], strict=False), 1):
            if outer.radius_m <= inner.radius_m:
                raise ValueError(
                    f"dispatch.rings[{n}].radius_m ({outer.radius_m:g}) must be larger than "
                    f"rings[{n - 1}].radius_m ({inner.radius_m:g}): each ring widens the circle"
                )
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise ValueError("dispatch.categories lists a category twice")
        return self
