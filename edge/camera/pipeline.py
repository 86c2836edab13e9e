"""The per-frame work of a camera, without any I/O: motion gate -> detector -> tracker ->
zones -> map positions. :class:`~edge.camera.service.CameraService` feeds it frames and sends
what it returns; tests and the benchmark drive it directly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from edge.camera.config import CameraConfig
from edge.camera.detectors import Detector, build_detector
from edge.camera.homography import CameraHomography
from edge.camera.motion import MotionGate
from edge.camera.zones import ZoneEngine, ZoneEvent
from edge.tracking import TrackIds
from edge.vision.boxes import Box, Detection
from edge.vision.tracker import Track, Tracker

DetectorMode = Literal["skipped", "gated", "regions", "full", "camera_motion"]


@dataclass
class FrameResult:
    ts: float
    detections: list[Detection]
    tracks: list[Track]
    events: list[ZoneEvent]
    regions: list[Box] = field(default_factory=list)
    detector_ran: bool = False
    inference_ms: float = 0.0
    # why the detector ran or not: a skipped frame (detect_every_n_frames), a still scene
    # (gated), motion regions, a full frame (warm-up, the periodic full look, no gate), or a
    # moving camera between two periodic full looks
    mode: DetectorMode = "full"
    camera_motion: bool = False


class FrameProcessor:
    def __init__(self, config: CameraConfig, detector: Detector | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 track_ids: TrackIds | None = None) -> None:
        self.config = config
        self.detector = detector or build_detector(config.detector)
        self.motion = MotionGate(config.motion) if config.motion.enabled else None
        self.tracker = Tracker(config.tracker, ids=track_ids)
        self.zones = ZoneEngine(config.zones)
        self.homography = (CameraHomography(config.homography)
                           if config.homography is not None else None)
        self._clock = clock
        self.frames = 0
        self.detector_runs = 0
        self.full_frame_runs = 0
        self.camera_motion_frames = 0
        self.inference_ms_avg = 0.0
        self._last_full_ts: float | None = None

    def process(self, image: NDArray[np.uint8], ts: float) -> FrameResult:
        """One frame at stream time ``ts`` (seconds)."""
        self.frames += 1
        if (self.frames - 1) % self.config.detect_every_n_frames:
            # skipped frame: tracks keep their state until the next detector frame
            return FrameResult(ts, [], [], [], mode="skipped")
        decision = self.motion.assess(image) if self.motion is not None else None
        full_due = (self._last_full_ts is None or ts < self._last_full_ts
                    or ts - self._last_full_ts >= self.config.motion.full_frame_interval_s)
        mode: DetectorMode
        regions: list[Box] | None
        if decision is None or decision.regions is None or full_due:
            mode, regions = "full", None
        elif decision.camera_motion:
            mode, regions = "camera_motion", []
        else:
            regions = decision.regions
            mode = "regions" if regions else "gated"
        camera_motion = decision is not None and decision.camera_motion
        if camera_motion:
            self.camera_motion_frames += 1
            if decision is not None and decision.cause == "shift":
                self.tracker.shift(*decision.shift_px)
        if regions is not None and not regions:
            # Nothing looked at: no detection is no evidence, so tracks are not aged (a still
            # person keeps their id and their loitering timer); they stay where last seen.
            tracks = self.tracker.visible()
            events = self._zone_events(tracks, ts, camera_motion)
            return FrameResult(ts, [], tracks, events, [], False, 0.0, mode, camera_motion)
        t0 = self._clock()
        detections = self.detector.detect(image, regions)
        elapsed_ms = (self._clock() - t0) * 1000.0
        self.detector_runs += 1
        self.inference_ms_avg += (elapsed_ms - self.inference_ms_avg) * 0.1
        if regions is None:
            self.full_frame_runs += 1
            self._last_full_ts = ts
        tracks = self.tracker.update(detections, ts, regions)
        events = self._zone_events(tracks, ts, camera_motion)
        self.zones.forget({t.id for t in self.tracker.tracks})
        return FrameResult(ts, detections, tracks, events, regions or [], True, elapsed_ms,
                           mode, camera_motion)

    def _zone_events(self, tracks: list[Track], ts: float, camera_motion: bool
                     ) -> list[ZoneEvent]:
        # Zones are pixels of a fixed view: while the camera moves, a foot point crossing a
        # zone's edge is the camera's doing, not the person's, so zones do not judge it.
        return [] if camera_motion else self.zones.update(tracks, ts)

    def replace_zones(self, config: CameraConfig, zones: ZoneEngine,
                      homography: CameraHomography | None) -> None:
        """Swap in pushed zones and homography (the caller holds the frame lock, so no frame
        sees half of it). Tracks keep their ids; zone state carries over by zone id."""
        zones.carry_over(self.zones)
        self.config, self.zones, self.homography = config, zones, homography

    def lonlat(self, point: tuple[float, float]) -> tuple[float, float] | None:
        if self.homography is None:
            return None
        return self.homography.to_lonlat(*point)

    def close(self) -> None:
        self.detector.close()
