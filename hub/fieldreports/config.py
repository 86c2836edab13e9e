"""Field report intake limits (sizes, counts) and the Open311 endpoint's switches and rates."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from edge.config import StrictModel
from hub.incidents.model import IncidentLevel

MiB = 1024 * 1024


class Open311Config(StrictModel):
    """The Open311 GeoReport v2 endpoint (``/open311/v2``)."""

    enabled: bool = True
    public_requests: bool = Field(
        default=False,
        description=(
            "GET requests without an api_key. Reports are people's words and photos: when "
            "public, only service_request_id, status, service_code and the request/update "
            "times are shown, with coordinates rounded; never the description or media."
        ),
    )
    public_coordinate_decimals: Annotated[int, Field(ge=0, le=4)] = 2  # 2: about 1 km
    rate_per_minute: Annotated[float, Field(gt=0, le=100_000)] = 60.0
    burst: Annotated[int, Field(ge=1, le=10_000)] = 20
    max_clients: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    max_page_size: Annotated[int, Field(ge=1, le=1000)] = 200


class FieldReportsConfig(StrictModel):
    default_level: IncidentLevel = IncidentLevel.MEDIUM  # when the reporter gives none
    max_photos: Annotated[int, Field(ge=0, le=20)] = 5
    max_photo_bytes: Annotated[int, Field(ge=1024, le=64 * MiB)] = 8 * MiB
    max_photo_side_px: Annotated[int, Field(ge=64, le=20_000)] = 8192
    max_photo_pixels: Annotated[int, Field(ge=4096, le=200_000_000)] = 40_000_000
    # Stored photos are scaled down to this side: phone photos are 12+ Mpx, a dashboard needs less.
    stored_photo_side_px: Annotated[int, Field(ge=64, le=20_000)] = 1920
    photo_jpeg_quality: Annotated[int, Field(ge=30, le=95)] = 85
    max_voice_bytes: Annotated[int, Field(ge=1024, le=64 * MiB)] = 4 * MiB
    voice_types: list[Annotated[str, Field(pattern=r"^(ogg|webm|mp4|mp3|wav)$")]] = Field(
        default_factory=lambda: ["ogg", "webm", "mp4", "mp3", "wav"]
    )
    max_report_json_bytes: Annotated[int, Field(ge=1024, le=MiB)] = 64 * 1024
    max_request_bytes: Annotated[int, Field(ge=64 * 1024, le=512 * MiB)] = 64 * MiB
    open311: Open311Config = Field(default_factory=Open311Config)

    @model_validator(mode="after")
    def _fits(self) -> FieldReportsConfig:
        if self.stored_photo_side_px > self.max_photo_side_px:
            raise ValueError("stored_photo_side_px cannot exceed max_photo_side_px")
        needed = self.max_photos * self.max_photo_bytes + self.max_voice_bytes
        if needed + self.max_report_json_bytes > self.max_request_bytes:
            raise ValueError(
                f"max_request_bytes ({self.max_request_bytes}) is below what the photo and "
                f"voice limits allow in one report ({needed} bytes and the report JSON)"
            )
        return self
