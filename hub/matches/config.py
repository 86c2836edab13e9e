"""Settings of the face match review (``matches:`` in the hub config, docs/matches.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.config import StrictModel
from edge.validators import SegmentId
from hub.incidents.model import IncidentLevel


class MatchesConfig(StrictModel):
    two_reviewers: bool = Field(
        default=False,
        description="a possible match is confirmed only when two distinct reviewers confirm it "
        "(one reject still rejects it)",
    )
    rejected_crop_ttl_s: Annotated[float, Field(gt=0, le=7 * 86_400)] = Field(
        default=3600.0,
        description="face crop and frame snapshot of a rejected or expired match are deleted "
        "this long after the decision",
    )
    pending_ttl_s: Annotated[float, Field(gt=0, le=30 * 86_400)] = Field(
        default=86_400.0,
        description="a possible match nobody decided within this time expires (its crop and "
        "snapshot then follow the rejected ones)",
    )
    incident_category: SegmentId = Field(
        default="watchlist_match", description="the category of the incident a confirmation opens"
    )
    incident_level: IncidentLevel = Field(
        default=IncidentLevel.HIGH,
        description="its level (dispatch sends officers from dispatch.min_level up)",
    )
    sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=10.0, description="how often a hub expires matches and deletes crops that are due"
    )
