"""Settings of the field-report category classifier."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.config import StrictModel


class ClassifierConfig(StrictModel):
    min_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        default=0.3,
        description="below this posterior probability no category is suggested",
    )
    max_text_chars: Annotated[int, Field(ge=16, le=100_000)] = Field(
        default=2000,
        description="longer descriptions are cut to this many characters before classifying",
    )
    alternatives: Annotated[int, Field(ge=0, le=10)] = Field(
        default=3, description="how many runner-up categories the API lists"
    )
