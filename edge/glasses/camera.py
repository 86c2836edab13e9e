"""Face matching on the glasses' camera (``camera:`` in the glasses config, off by default).

The same face code path as the camera agent (:class:`edge.faces.stage.FaceStage`, the watchlist
receiver :class:`edge.faces.watchlist.EdgeWatchlist`, the shared GStreamer ingest), with two
differences: faces are searched in the whole frame and tracked by their own boxes (there is no
person detector on the glasses), and only ``analyse_fps`` frames a second are looked at.

The work runs on its own thread, never the HUD's: the ingest hands over the newest frame only
(``ingest.policy: latest``, a one-frame buffer: older frames are dropped and counted in
health as ``camera_frame_not_taken``), so a slow face model costs analysed frames, not HUD
frames.

A match goes to the hub as the same face_match alert the camera raises, through the durable
outbox, and nowhere else: it is a *possible* match until people at the hub have reviewed it, so
it is never shown on the HUD. The officer hears of it, if at all, as an ordinary dispatch.
A face that matches nothing is dropped with its frame, in memory. A match is placed at the
officer's own fresh fix, its accuracy widened by ``match_range_m`` (the person is a few metres
away, in an unknown direction); with no fresh fix it has no location.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from edge.faces.backends import load_backend
from edge.faces.stage import FaceMatchEvent, FaceStage, face_match_alert
from edge.faces.watchlist import EdgeWatchlist
from edge.protocol import Location
from edge.tracking import TrackIds
from edge.vision.ingest import Frame, FrameSource
from edge.vision.snapshot import SnapshotConfig
from edge.vision.tracker import Tracker

if TYPE_CHECKING:
    from collections.abc import Callable

    from edge.agent import AgentRuntime
    from edge.faces.types import FaceBackend
    from edge.glasses.config import GlassesCameraConfig

log = logging.getLogger(__name__)


class GlassesCamera:
    """Frames in, face_match alerts out; :meth:`start` and :meth:`stop` with the agent.

    ``backend`` and ``source`` are for tests (a backend wrapped to record what it embedded);
    by default the configured backend is loaded (a missing model stops the agent at start,
    with the sentence that says what to fix) and the configured source is opened."""

    def __init__(self, config: GlassesCameraConfig, runtime: AgentRuntime, *,
                 backend: FaceBackend | None = None, source: FrameSource | None = None,
                 officer_fix: Callable[[], Location | None] | None = None) -> None:
        faces = config.faces
        if faces is None:  # the config refuses this; a direct caller gets the same sentence
            raise ValueError("the glasses camera needs its faces settings")
        self.config = config
        self.runtime = runtime
        self._officer_fix = officer_fix
        device = runtime.device
        self.backend = backend if backend is not None else load_backend(faces.backend)
        self.watchlist = EdgeWatchlist(faces.watchlist, runtime, self.backend.embedder.name)
        tracker = Tracker(config.tracker, TrackIds.persistent(
            runtime.config.data_dir / f"{device}-face-track-runs"))
        self.stage = FaceStage(faces.stage_config(), self.backend, self.watchlist.gallery,
                               face_tracker=tracker)
        self.source = source if source is not None else FrameSource(
            config.source, config.ingest, name=f"{device}-camera", lifecycle=log)
        self._snapshot = SnapshotConfig()  # the camera agent's default evidence size
        # every key present from the start: the health thread reads while the worker counts
        self.counters: Counter[str] = Counter(dict.fromkeys(
            ("frames_analysed", "frames_skipped_rate", "frame_errors", "snapshot_failed",
             "face_crop_failed", "match_without_fix"), 0))
        self.alerts_sent = 0
        self.finished = threading.Event()  # a file source ended and its last frame was seen
        self._last_pts: float | None = None
        self._stop = threading.Event()
        self.loop = runtime.supervise("faces", self._run, self._stop)
        runtime.add_health_provider(self.health)

    def start(self) -> None:
        log.info("glasses camera on: backend %s, threshold %g, %g frames/s analysed",
                 self.backend.name, self.stage.threshold, self.config.analyse_fps)
        self.watchlist.start()
        self.source.start()
        self.loop.start()

    def stop(self) -> None:
        self._stop.set()
        self.source.stop()
        self.loop.stop(timeout_s=10)
        self.watchlist.stop()

    def health(self) -> dict[str, Any]:
        metrics = {"camera_frames": float(self.source.counters["frames"]),
                   "camera_connected": 1.0 if self.source.connected.is_set() else 0.0,
                   **{f"camera_{k}": float(v) for k, v in self.counters.items()},
                   **self.stage.metrics()}
        return {"metrics": metrics,
                "dropped": {f"camera_{k}": v for k, v in self.source.dropped.items()}}

    # -- the face worker ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self.source.read(timeout_s=0.5)
            if frame is None:
                if self.source.ended.is_set():
                    self.finished.set()
                    return
                continue
            if not self._due(frame):
                self.counters["frames_skipped_rate"] += 1
                continue
            try:
                self.handle(frame)
            except Exception:  # one bad frame must not end face matching
                self.counters["frame_errors"] += 1
                log.exception("glasses camera frame %s failed", frame.seq)

    def _match_location(self) -> Location | None:
        """Where the matched person is: within ``match_range_m`` of the officer's fresh fix (a
        face is matched only at a few metres), so the fix's own accuracy is widened by that
        much. Without a fresh fix the alert has no location rather than a wrong one."""
        fix = self._officer_fix() if self._officer_fix is not None else None
        if fix is None:
            self.counters["match_without_fix"] += 1
            return None
        accuracy = (fix.accuracy_m or 0.0) + self.config.match_range_m
        return Location(lon=fix.lon, lat=fix.lat, accuracy_m=min(accuracy, 100_000.0))

    def _due(self, frame: Frame) -> bool:
        """Whether this frame is one of the ``analyse_fps`` a second (by the stream's own
        clock, so a recording is analysed the same way at any decoding speed)."""
        ts = frame.pts_s if frame.pts_s is not None else frame.monotonic_s
        # a little slack: a 10 fps stream analysed at 10 fps must not skip every other frame
        if self._last_pts is not None and ts - self._last_pts < 0.9 / self.config.analyse_fps:
            return False
        self._last_pts = ts
        return True

    def handle(self, frame: Frame) -> list[FaceMatchEvent]:
        """One analysed frame: match, and raise an alert per declared match."""
        ts = frame.pts_s if frame.pts_s is not None else frame.monotonic_s
        self.counters["frames_analysed"] += 1
        matches = self.stage.process_frame(frame.image, ts)
        for match in matches:
            self._alert(frame, match)
        return matches

    def _alert(self, frame: Frame, match: FaceMatchEvent) -> None:
        track = match.decision.track_id
        alert = face_match_alert(
            match, frame.image, site=self.runtime.site, device=self.runtime.device,
            backend=self.backend.name, snapshot=self._snapshot,
            boxes=[(match.track_box, f"#{track}")], highlight=0,
            location=self._match_location(), failures=self.counters)
        self.runtime.send_alert(alert)
        self.alerts_sent += 1
