"""Settings of the command outbox's publisher."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from edge.config import StrictModel


class CommandOutboxConfig(StrictModel):
    scan_interval_s: Annotated[float, Field(gt=0, le=300)] = Field(
        default=2.0, description="how often the publisher looks for due commands without a wake-up"
    )
    retry_initial_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=5.0, description="wait for an answer after the first attempt; doubles each time"
    )
    retry_max_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=8, description="attempts without an answer before the command is failed"
    )
    max_age_s: Annotated[float, Field(gt=0, le=30 * 86_400)] = Field(
        default=86_400.0, description="a command unanswered this long after it was written fails"
    )
    broker_retry_s: Annotated[float, Field(gt=0, le=300)] = Field(
        default=2.0, description="wait before retrying when the broker was unreachable"
    )
    batch_max: Annotated[int, Field(ge=1, le=10_000)] = 200

    @model_validator(mode="after")
    def _check_retry(self) -> CommandOutboxConfig:
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("commands.retry_max_s must be at least commands.retry_initial_s")
        return self

    def retry_delay_s(self, attempts: int) -> float:
        """Wait for an answer after attempt number ``attempts`` (1-based)."""
        return float(
            min(self.retry_max_s, self.retry_initial_s * 2 ** min(30, max(0, attempts - 1)))
        )
