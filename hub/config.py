"""The hub's typed configuration."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.bus import BusConfig
from edge.config import StrictModel
from edge.validators import SegmentId


class HubConfig(StrictModel):
    site: SegmentId | None = Field(
        default=None, description="only ingest this site; None ingests every site on the broker"
    )
    database_url: Annotated[str, Field(min_length=1)] = "sqlite:///var/lib/gridward/hub.sqlite"
    mqtt: BusConfig = Field(default_factory=BusConfig)
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "hub-1"
    ingest_queue_max: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000
    ingest_batch_max: Annotated[int, Field(ge=1, le=100_000)] = 1000
