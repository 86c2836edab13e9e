"""Configuration of the LiDAR perimeter agent (``gridward edge lidar --config F``).

Site coordinates are metres in a local east/north frame whose origin is the site reference
point (``site_origin``); lon/lat come from a local equirectangular projection around it (see
:mod:`edge.lidar.geometry`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from bridges.lidar.drivers import MODELS
from edge.config import AgentConfig, StrictModel
from edge.protocol import Severity
from edge.validators import SegmentId

ScannerKey = Literal["ld06", "ld19", "rplidar_a1", "rplidar_a2"]

Metres = Annotated[float, Field(ge=-100_000, le=100_000)]


class SitePoint(StrictModel):
    x_m: Metres
    y_m: Metres


class SiteOrigin(StrictModel):
    """The site's reference point: site (0, 0) m."""

    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-85, le=85)]


class ScannerConfig(StrictModel):
    model: ScannerKey = "ld06"
    port: Annotated[str, Field(min_length=1, max_length=256)] = "/dev/ttyUSB0"
    baud_rate: Annotated[int, Field(ge=9600, le=4_000_000)] | None = Field(
        default=None, description="override the model's nominal baud rate")
    stall_timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    reopen_max_s: Annotated[float, Field(gt=0, le=300)] = 5.0


class MountPose(StrictModel):
    """Where the scanner sits in site coordinates and where its 0-degree axis points."""

    x_m: Metres = 0.0
    y_m: Metres = 0.0
    yaw_deg: Annotated[float, Field(ge=-360, le=360)] = Field(
        default=0.0,
        description="direction of the scanner's 0-degree mark, degrees counter-clockwise from "
                    "site east (+x)")
    clockwise: bool = Field(
        default=True,
        description="scanner angles grow clockwise seen from above (LD06, RPLIDAR); false when "
                    "mounted upside down")


class BackgroundConfig(StrictModel):
    learn_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    bin_deg: Annotated[float, Field(ge=0.1, le=5)] = 0.5
    margin_m: Annotated[float, Field(gt=0, le=5)] = 0.3
    update_rate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.01, description="per-scan blend of a matching return into the background")
    absorb_after_s: Annotated[float, Field(gt=0)] = Field(
        default=600.0,
        description="a bin that stays foreground this long becomes background (a parked "
                    "object). Keep it longer than any dwell you want to alert on")
    reveal_after_s: Annotated[float, Field(gt=0)] = Field(
        default=2.0, description="a bin that reads farther than its background this long is "
                                 "re-learned (an object was removed)")


class ClusterConfig(StrictModel):
    join_m: Annotated[float, Field(gt=0, le=5)] = Field(
        default=0.35, description="neighbouring foreground points closer than this join")
    merge_m: Annotated[float, Field(ge=0, le=5)] = Field(
        default=0.5, description="clusters whose centres are closer than this merge (a leg "
                                 "occluding the other)")
    min_points: Annotated[int, Field(ge=1, le=1000)] = 3
    max_extent_m: Annotated[float, Field(gt=0, le=20)] = 2.0


class TrackerConfig(StrictModel):
    gate_m: Annotated[float, Field(gt=0, le=20)] = 1.0
    confirm_hits: Annotated[int, Field(ge=1, le=100)] = 3
    max_missed_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    max_speed_mps: Annotated[float, Field(gt=0, le=100)] = 8.0


class ZoneConfig(StrictModel):
    id: SegmentId
    polygon: list[SitePoint] = Field(min_length=3, max_length=256)
    min_dwell_s: Annotated[float, Field(ge=0, le=3600)] = 1.0
    severity: Severity = Severity.HIGH
    title: Annotated[str, Field(max_length=120)] = ""


class LineConfig(StrictModel):
    """A counting line from ``a`` to ``b``. Walking across it from its left side (seen
    standing at ``a`` looking at ``b``) to its right side counts as ``in``."""

    id: SegmentId
    a: SitePoint
    b: SitePoint
    hysteresis_m: Annotated[float, Field(ge=0, le=5)] = 0.2
    in_name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")] = "in"
    out_name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,24}$")] = "out"

    @model_validator(mode="after")
    def _not_degenerate(self) -> LineConfig:
        if abs(self.a.x_m - self.b.x_m) + abs(self.a.y_m - self.b.y_m) < 0.1:
            raise ValueError(f"line {self.id}: a and b must be at least 0.1 m apart")
        if self.in_name == self.out_name:
            raise ValueError(f"line {self.id}: in_name and out_name must differ")
        return self


class LidarConfig(AgentConfig):
    site_origin: SiteOrigin
    scanner: ScannerConfig = Field(default_factory=ScannerConfig)
    mount: MountPose = Field(default_factory=MountPose)
    min_range_m: Annotated[float, Field(ge=0, le=100)] | None = Field(
        default=None, description="ignore returns nearer than this (default: the model's)")
    max_range_m: Annotated[float, Field(gt=0, le=100)] | None = Field(
        default=None, description="ignore returns farther than this (default: the model's)")
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    clustering: ClusterConfig = Field(default_factory=ClusterConfig)
    tracking: TrackerConfig = Field(default_factory=TrackerConfig)
    zones: list[ZoneConfig] = Field(default_factory=list, max_length=64)
    lines: list[LineConfig] = Field(default_factory=list, max_length=64)
    position_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    position_accuracy_m: Annotated[float, Field(ge=0, le=100)] = 0.3
    scan_queue_max: Annotated[int, Field(ge=2, le=10_000)] = 50

    @model_validator(mode="after")
    def _check(self) -> LidarConfig:
        ids = [z.id for z in self.zones] + [line.id for line in self.lines]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"zone and line ids must be unique; repeated: {', '.join(dupes)}")
        if self.range_m[0] >= self.range_m[1]:
            raise ValueError("min_range_m must be smaller than max_range_m")
        return self

    @property
    def range_m(self) -> tuple[float, float]:
        model = MODELS[self.scanner.model]
        lo = model.min_range_m if self.min_range_m is None else self.min_range_m
        hi = model.max_range_m if self.max_range_m is None else self.max_range_m
        return lo, hi
