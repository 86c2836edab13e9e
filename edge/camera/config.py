"""The camera agent's configuration (YAML, validated at start and by ``--validate-config``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from edge.camera.detectors import DetectorConfig, default_detector
from edge.camera.homography import HomographyConfig
from edge.camera.motion import MotionConfig
from edge.camera.zones import LineZone, ZoneConfig
from edge.config import AgentConfig
from edge.faces.stage_config import FacesConfig
from edge.vision.ingest import IngestConfig, SourceConfig
from edge.vision.snapshot import SnapshotConfig
from edge.vision.tracker import TrackerConfig


class CameraConfig(AgentConfig):
    source: SourceConfig
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    # NanoDet-m where set-up has built it, HOG otherwise: detectors.choose_default says why
    detector: DetectorConfig = Field(default_factory=default_detector)
    detect_every_n_frames: Annotated[int, Field(ge=1, le=100)] = 1
    motion: MotionConfig = Field(default_factory=MotionConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    zones: list[ZoneConfig] = Field(default_factory=list, max_length=64)
    homography: HomographyConfig | None = None
    snapshot: SnapshotConfig = Field(default_factory=SnapshotConfig)
    # face matching against the hub's watchlist bundles; absent: no face is ever looked at
    faces: FacesConfig | None = None
    position_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    send_positions: bool = True
    # At the end of a file source the agent waits at most this long for the hub to
    # acknowledge pending alerts, then exits and says how many stay in the outbox.
    end_of_file_wait_s: Annotated[float, Field(ge=0, le=3600)] = 10.0

    @model_validator(mode="after")
    def _zones_fit_frame(self) -> CameraConfig:
        w, h = self.ingest.width_px, self.ingest.height_px
        ids = [z.id for z in self.zones]
        if len(ids) != len(set(ids)):
            raise ValueError(f"zone ids must be unique, got {ids}")
        for zone in self.zones:
            points = [zone.a, zone.b] if isinstance(zone, LineZone) else zone.polygon
            for x, y in points:
                if not (0 <= x <= w and 0 <= y <= h):
                    raise ValueError(
                        f"zone {zone.id!r} point ({x:g}, {y:g}) is outside the {w}x{h} frame "
                        "(zone coordinates are pixels of ingest.width_px x ingest.height_px)")
        return self
