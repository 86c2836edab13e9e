"""The camera agent: ingest -> :class:`FrameProcessor` -> alerts (with a snapshot), positions
and health through :class:`~edge.agent.AgentRuntime`. Raw video never leaves this process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from edge.agent import AgentRuntime
from edge.alert_details import ZONE_EVENT_DETAILS
from edge.camera.config import CameraConfig
from edge.camera.detectors import DetectorConfig
from edge.camera.detectors.default import detector_reason
from edge.camera.homography import CameraHomography
from edge.camera.lifecycle import log as lifecycle
from edge.camera.pipeline import FrameProcessor, FrameResult
from edge.camera.reload import parse_push
from edge.camera.zones import ZoneEngine, ZoneEvent
from edge.faces.backends import load_backend
from edge.faces.stage import FaceMatchEvent, FaceStage, face_match_alert
from edge.faces.watchlist import EdgeWatchlist
from edge.protocol import (
    AlertKind,
    CmdChannel,
    DeviceKind,
    EntityKind,
    Location,
    Message,
    Position,
    ProtocolError,
    Reply,
    Request,
    RequestAction,
)
from edge.pushed_config import ConfigReloader, PushedConfigFile
from edge.tracking import TrackIds, track_entity
from edge.validators import utcnow
from edge.vision.ingest import Frame, FrameSource, source_label
from edge.vision.snapshot import SnapshotError, render_snapshot

log = logging.getLogger(__name__)


def detector_choice(config: CameraConfig) -> tuple[DetectorConfig, str]:
    """The detector to run and why, for the start-up log: a configured detector as it is, else
    the default (NanoDet where its model is built, else HOG) with the reason it was chosen."""
    configured = "detector" in config.model_fields_set
    return config.detector, detector_reason(config.detector, configured=configured)


class CameraService:
    def __init__(self, config: CameraConfig, *, runtime: AgentRuntime | None = None,
                 source: FrameSource | None = None,
                 processor: FrameProcessor | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.processor = processor or FrameProcessor(config, track_ids=TrackIds.persistent(
            config.data_dir / f"{config.device}-track-runs"))
        self.source = source or FrameSource(config.source, config.ingest, name=config.device,
                                            lifecycle=lifecycle)
        self.runtime = runtime or AgentRuntime(config, DeviceKind.CAMERA,
                                               health_fields=self.health_fields)
        self.runtime.on_command(CmdChannel.REQUEST, self._on_request)
        # Held while a frame is processed and its alerts are built: a pushed config swaps in
        # between two frames, never in the middle of one.
        self._frame_lock = threading.Lock()
        self.file_config = config
        self.reloader: ConfigReloader[CameraConfig] = ConfigReloader(
            self.runtime, PushedConfigFile(config.data_dir / f"{config.device}-pushed-config.json"),
            lambda raw: parse_push(self.file_config, raw), self.apply_config)
        self.runtime.on_command(CmdChannel.CONFIG, self.reloader.handle)
        self.reloader.restore()
        self._clock = clock
        self.watchlist: EdgeWatchlist | None = None
        self.faces: FaceStage | None = None
        if config.faces is not None:
            # a missing model or a threshold below the floor stops the agent here, at start,
            # with the sentence that says what to fix
            backend = load_backend(config.faces.backend)
            self.watchlist = EdgeWatchlist(config.faces.watchlist, self.runtime,
                                           backend.embedder.name)
            self.faces = FaceStage(config.faces.stage_config(), backend,
                                   self.watchlist.gallery)
        self._stop = threading.Event()
        self.loop = self.runtime.supervise("frames", self._loop, self._stop)
        self._latest: tuple[Frame, FrameResult | None] | None = None
        self._latest_lock = threading.Lock()
        self._last_positions = 0.0
        self._fps_window: list[float] = []
        self.events: list[ZoneEvent] = []
        self.alerts_sent = 0
        self.finished = threading.Event()
        self._broker_up: bool | None = None

    def start(self) -> None:
        cfg = self.config
        detector, why = detector_choice(cfg)
        lifecycle.info("camera %s (site %s) starting: source %s at %dx%d, zones %s",
                       cfg.device, cfg.site, source_label(cfg.source), cfg.ingest.width_px,
                       cfg.ingest.height_px, [z.id for z in cfg.zones] or "none")
        lifecycle.info("detector: %s (%s)", detector.type, why)
        if self.faces is not None:
            lifecycle.info("face matching: backend %s, threshold %g, %d of %d frames, "
                           "cool-down %g s", self.faces.backend.name, self.faces.threshold,
                           cfg.faces.matcher.k_frames if cfg.faces else 0,
                           cfg.faces.matcher.n_frames if cfg.faces else 0,
                           cfg.faces.matcher.cooldown_s if cfg.faces else 0)
        self.runtime.start()
        if self.watchlist is not None:
            self.watchlist.start()
        self.source.start()
        self.loop.start()

    def stop(self) -> None:
        self._stop.set()
        self.source.stop()
        self.loop.stop(timeout_s=10)
        pending = self.runtime.outbox.depth()
        if self.watchlist is not None:
            self.watchlist.stop()
        self.runtime.stop()
        self.processor.close()
        lifecycle.info("camera %s stopped; %d alert(s) pending in the outbox",
                       self.config.device, pending)

    def wait_for_pending_alerts(self, timeout_s: float,
                                interrupt: threading.Event | None = None) -> int:
        """After the source ended: wait at most ``timeout_s`` (or until ``interrupt``) for the
        hub to acknowledge the alerts still in the outbox; returns how many are left (and says
        so)."""
        outbox = self.runtime.outbox
        pending = outbox.depth()
        if pending:
            lifecycle.info("source ended: waiting up to %g s for %d pending alert(s)",
                           timeout_s, pending)
        deadline = self._clock() + timeout_s
        while pending and self._clock() < deadline:
            self._watch_broker()
            if (interrupt or self._stop).wait(0.1):
                break
            pending = outbox.depth()
        if pending:
            lifecycle.warning("%d alert(s) left in the outbox %s: the broker or the hub did not "
                              "acknowledge them within %g s; they are sent at the next start",
                              pending, outbox.path, timeout_s)
        else:
            lifecycle.info("all alerts acknowledged by the hub")
        return pending

    def _watch_broker(self) -> None:
        """Log broker connection changes with the number of alerts waiting."""
        up = self.runtime.bus.connected
        if up == self._broker_up or (self._broker_up is None and not up):
            return
        self._broker_up = up
        mqtt = self.config.mqtt
        pending = self.runtime.outbox.depth()
        if up:
            lifecycle.info("broker connected: %s:%s; %d alert(s) pending", mqtt.host, mqtt.port,
                           pending)
        else:
            lifecycle.warning("broker lost: %s:%s; %d alert(s) pending, kept in the outbox "
                              "until the hub acknowledges them", mqtt.host, mqtt.port, pending)

    def apply_config(self, config: CameraConfig) -> None:
        """Put a validated effective config's zones and homography in force between frames."""
        zones = ZoneEngine(config.zones)
        homography = (CameraHomography(config.homography)
                      if config.homography is not None else None)
        with self._frame_lock:
            self.processor.replace_zones(config, zones, homography)
            self.config = config

    # -- health -------------------------------------------------------------------------

    def _config_metrics(self) -> dict[str, float]:
        """Pushed-config bookkeeping (first, so a long zone list cannot crowd it out)."""
        c = self.runtime.counters
        return {"config_version": float(self.reloader.applied_version),
                **{name: float(c[name]) for name in ("config_applied", "config_rejected",
                                                     "config_stale", "config_restore_failed")}}

    def health_fields(self) -> dict[str, Any]:
        now = self._clock()
        recent = [t for t in self._fps_window if now - t <= 10.0]
        fps = len(recent) / 10.0 if recent else 0.0
        dropped = {f"ingest_{k}": v for k, v in self.source.dropped.items()}
        metrics = {
            "frames": float(self.source.counters["frames"]),
            "reconnects": float(self.source.counters["reconnects"]),
            "stream_errors": float(self.source.counters["stream_errors"]),
            "detector_runs": float(self.processor.detector_runs),
            "full_frame_runs": float(self.processor.full_frame_runs),
            "camera_motion_frames": float(self.processor.camera_motion_frames),
            "tracks": float(len(self.processor.tracker.tracks)),
            "connected": 1.0 if self.source.connected.is_set() else 0.0,
        }
        metrics.update(self._config_metrics())
        if self.faces is not None:
            metrics.update(self.faces.metrics())
        for zone, counts in self.processor.zones.counts.items():
            for name, value in counts.items():
                metrics[f"zone_{zone}_{name}"[:64]] = float(value)
        return {"fps": round(fps, 2), "inference_ms": round(self.processor.inference_ms_avg, 2),
                "dropped": dropped, "metrics": dict(list(metrics.items())[:64])}

    # -- frame loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._watch_broker()
            frame = self.source.read(timeout_s=0.5)
            if frame is None:
                if self.source.ended.is_set():
                    self.finished.set()
                    return
                continue
            try:
                with self._frame_lock:
                    self._handle(frame)
            except Exception:  # one bad frame must not kill the camera
                self.runtime.counters["frame_errors"] += 1
                log.exception("frame %s failed", frame.seq)

    def _handle(self, frame: Frame) -> None:
        now = self._clock()
        self._fps_window.append(now)
        if len(self._fps_window) > 2000:
            del self._fps_window[:1000]
        ts = frame.pts_s if frame.pts_s is not None else frame.monotonic_s
        result = self.processor.process(frame.image, ts)
        with self._latest_lock:
            # a gated frame carries the tracks as last seen; a skipped one carries none
            self._latest = (frame, result if result.mode != "skipped" else None)
        for event in result.events:
            self.events.append(event)
            self._alert(frame, result, event)
        if self.faces is not None and result.mode != "skipped":
            live = {t.id for t in self.processor.tracker.tracks}
            for match in self.faces.process(frame.image, result.tracks, live):
                self._face_alert(frame, result, match, self.faces.backend.name)
        if (self.config.send_positions and result.tracks
                and self.processor.homography is not None
                and now - self._last_positions >= self.config.position_interval_s):
            self._last_positions = now
            self._send_positions(result)

    def _send_positions(self, result: FrameResult) -> None:
        positions = []
        stamp = utcnow()
        for track in result.tracks:
            lonlat = self.processor.lonlat(track.foot)
            if lonlat is None or not (-180 <= lonlat[0] <= 180 and -90 <= lonlat[1] <= 90):
                continue
            positions.append(Position(entity=track_entity(self.config.device, track.id),
                                      entity_kind=EntityKind.TRACK, lon=lonlat[0],
                                      lat=lonlat[1], accuracy_m=self._accuracy(), ts=stamp))
        if positions:
            self.runtime.send_positions(positions)

    def _accuracy(self) -> float | None:
        return self.config.homography.accuracy_m if self.config.homography else None

    def _alert(self, frame: Frame, result: FrameResult, event: ZoneEvent) -> None:
        boxes = [(t.box, f"#{t.id}") for t in result.tracks]
        highlight = next((i for i, t in enumerate(result.tracks) if t.id == event.track_id), None)
        evidence = None
        try:
            evidence = render_snapshot(frame.image, boxes, self.config.snapshot,
                                       highlight).evidence()
        except (SnapshotError, ProtocolError) as err:
            self.runtime.counters["snapshot_failed"] += 1
            log.warning("alert without snapshot: %s", err)
        location = None
        lonlat = self.processor.lonlat(event.point)
        if lonlat is not None:
            location = Location(lon=lonlat[0], lat=lonlat[1], accuracy_m=self._accuracy())
        fields: dict[str, str | float | None] = {
            "source": "camera", "track_id": event.track_id,
            "x_px": round(event.point[0], 1), "y_px": round(event.point[1], 1),
            "dwell_s": round(event.dwell_s, 1) if event.dwell_s is not None else None,
        }
        if event.kind is AlertKind.LINE_CROSSING:
            fields["direction"] = event.direction
        details = ZONE_EVENT_DETAILS[event.kind].model_validate(fields)
        started_at = None
        if event.started_ts is not None:
            started_at = utcnow() - timedelta(seconds=max(0.0, event.ts - event.started_ts))
        title = {"line_crossing": f"person crossed {event.zone}",
                 "intrusion": f"person entered {event.zone}",
                 "loitering": f"person loitering in {event.zone}"}.get(event.kind.value,
                                                                        event.kind.value)
        self.runtime.raise_alert(details, severity=event.severity, title=title,
                                 location=location, zone=event.zone,
                                 entity=track_entity(self.config.device, event.track_id),
                                 started_at=started_at, evidence=evidence)
        self.alerts_sent += 1

    def _face_alert(self, frame: Frame, result: FrameResult, match: FaceMatchEvent,
                    backend: str) -> None:
        track_id = match.decision.track_id
        track = next((t for t in result.tracks if t.id == track_id), None)
        location = None
        lonlat = self.processor.lonlat(track.foot) if track is not None else None
        if lonlat is not None:
            location = Location(lon=lonlat[0], lat=lonlat[1], accuracy_m=self._accuracy())
        alert = face_match_alert(
            match, frame.image, site=self.config.site, device=self.config.device,
            backend=backend, snapshot=self.config.snapshot,
            boxes=[(t.box, f"#{t.id}") for t in result.tracks],
            highlight=next((i for i, t in enumerate(result.tracks) if t.id == track_id), None),
            location=location, failures=self.runtime.counters)
        self.runtime.send_alert(alert)
        self.alerts_sent += 1

    # -- hub requests -------------------------------------------------------------------

    def _on_request(self, message: Message) -> None:
        if not isinstance(message, Request):
            return
        site, device = self.config.site, self.config.device
        if message.action is RequestAction.PING:
            self.runtime.send_reply(Reply(site=site, device=device, request_id=message.id,
                                          ok=True, result={"frames": self.source.counters[
                                              "frames"]}))
            return
        if message.action is not RequestAction.SNAPSHOT:
            self.runtime.send_reply(Reply(site=site, device=device, request_id=message.id,
                                          ok=False, error=f"{message.action} not supported"))
            return
        with self._latest_lock:
            latest = self._latest
        if latest is None:
            self.runtime.send_reply(Reply(site=site, device=device, request_id=message.id,
                                          ok=False, error="no frame received yet"))
            return
        frame, result = latest
        boxes = [(t.box, f"#{t.id}") for t in result.tracks] if result else []
        try:
            snap = render_snapshot(frame.image, boxes, self.config.snapshot)
            evidence = snap.evidence()
        except (SnapshotError, ProtocolError) as err:
            self.runtime.send_reply(Reply(site=site, device=device, request_id=message.id,
                                          ok=False, error=str(err)[:500]))
            return
        self.runtime.send_reply(Reply(site=site, device=device, request_id=message.id, ok=True,
                                      result={"frame_seq": frame.seq,
                                              "tracks": len(boxes)},
                                      evidence=evidence))


def run(config: CameraConfig, stop: threading.Event) -> int:
    """The agent's life from start to exit (``gridward edge camera``): until ``stop`` is set
    or a file source ends; then the bounded wait for pending alerts. Returns the exit code:
    1 when a file source failed (the reason is in the log), else 0."""
    service = CameraService(config)
    service.start()
    try:
        while not stop.wait(0.2):
            if service.finished.is_set():
                service.wait_for_pending_alerts(config.end_of_file_wait_s, stop)
                break
    finally:
        service.stop()
    return 1 if service.source.failure is not None else 0
