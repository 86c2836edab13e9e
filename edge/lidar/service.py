"""The LiDAR perimeter agent: serial transport -> revolutions -> perimeter pipeline -> alerts,
anonymous track positions and counts, through an :class:`~edge.agent.AgentRuntime`.

Threads: the transport reads the port and assembles revolutions into a bounded queue (the oldest
scan is dropped, and counted, if processing falls behind); the processing thread runs the
pipeline, raises intrusion alerts (durable, via the outbox) and publishes positions every
``position_interval_s``. Nothing here logs positions or anything else about a person.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bridges.lidar.drivers import SampleBlock, driver_for
from bridges.lidar.transport import SerialFactory, SerialLidarTransport
from edge.agent import AgentRuntime
from edge.alert_details import IntrusionDetails
from edge.lidar.config import LidarConfig, ZoneConfig
from edge.lidar.pipeline import PerimeterPipeline, ScanResult, build_rules
from edge.lidar.reload import parse_push
from edge.lidar.scan import Scan, ScanAssembler
from edge.lidar.tracking import Track
from edge.lidar.zones import Intrusion
from edge.projection import LocalProjection
from edge.protocol import CmdChannel, DeviceKind, EntityKind, Location, Position
from edge.pushed_config import ConfigReloader, PushedConfigFile
from edge.queues import BoundedQueue
from edge.tracking import TrackIds, track_entity
from edge.validators import utcnow

log = logging.getLogger(__name__)


class LidarService:
    def __init__(
        self,
        config: LidarConfig,
        *,
        serial_factory: SerialFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self.runtime = AgentRuntime(config, DeviceKind.LIDAR, health_fields=self.health_fields)
        self.driver = driver_for(config.scanner.model)
        self.assembler = ScanAssembler(*config.range_m)
        self.pipeline = PerimeterPipeline(config, track_ids=TrackIds.persistent(
            config.data_dir / f"{config.device}-track-runs"))
        self.projection = LocalProjection(config.site_origin.lon, config.site_origin.lat)
        self.scans: BoundedQueue[Scan] = BoundedQueue(config.scan_queue_max)
        self.transport = SerialLidarTransport(
            config.scanner.port, self.driver, self._on_samples,
            baud_rate=config.scanner.baud_rate, stall_timeout_s=config.scanner.stall_timeout_s,
            reopen_max_s=config.scanner.reopen_max_s, serial_factory=serial_factory, clock=clock,
        )
        self._zones: dict[str, ZoneConfig] = {z.id: z for z in config.zones}
        self._opens_seen = 0
        self._stop = threading.Event()
        self.loop = self.runtime.supervise("scans", self._process_loop, self._stop)
        # The serial reader is a sensing loop too: a driver that raises must not end it silently.
        self.port_loop = self.runtime.supervise("port", self.transport.run,
                                                self.transport.stop_event)
        self._lock = threading.Lock()
        self._processing_s = 0.0
        self._processed = 0
        self._rate_mark: tuple[float, int, int] = (clock(), 0, 0)
        self._rates = (0.0, 0.0)
        self.last_result: ScanResult | None = None
        # Held while a scan is processed and its alerts raised: pushed rules swap in between
        # two scans, never in the middle of one.
        self._scan_lock = threading.Lock()
        self.file_config = config
        self.reloader: ConfigReloader[LidarConfig] = ConfigReloader(
            self.runtime, PushedConfigFile(config.data_dir / f"{config.device}-pushed-config.json"),
            lambda raw: parse_push(self.file_config, raw), self.apply_config)
        self.runtime.on_command(CmdChannel.CONFIG, self.reloader.handle)
        self.reloader.restore()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.runtime.start()
        self.loop.start()
        self.port_loop.start()

    def stop(self) -> None:
        self.port_loop.stop(timeout_s=5)
        self.transport.stop()  # closes the port (and stops the motor) once the reader is out
        self._stop.set()
        self.scans.close()
        self.loop.stop(timeout_s=5)
        self.runtime.stop()

    # -- transport thread ------------------------------------------------------------------

    def _on_samples(self, block: SampleBlock) -> None:
        opens = self.transport.counters["opens"]
        if opens != self._opens_seen:
            self._opens_seen = opens
            self.assembler.reset()  # a revolution split by a reconnect is not one revolution
        for scan in self.assembler.feed(block, self._clock()):
            self.scans.put_drop_oldest(scan, reason="scan_queue_full")

    # -- processing thread -----------------------------------------------------------------

    def _process_loop(self) -> None:
        next_positions = self._clock()
        while not self._stop.is_set():
            for scan in self.scans.get_batch(8, timeout_s=0.2):
                with self._scan_lock:
                    started = time.perf_counter()
                    result = self.pipeline.process(scan)
                    with self._lock:
                        self._processing_s += time.perf_counter() - started
                        self._processed += 1
                        self.last_result = result
                    for intrusion in result.intrusions:
                        self._raise_intrusion(intrusion)
            now = self._clock()
            if now >= next_positions:
                next_positions = now + self.config.position_interval_s
                self._publish_positions(now)

    def apply_config(self, config: LidarConfig) -> None:
        """Put a validated effective config's zones and lines in force between scans."""
        zones, lines = build_rules(config)
        with self._scan_lock:
            self.pipeline.replace_rules(zones, lines)
            self._zones = {z.id: z for z in config.zones}
            self.config = config

    def _raise_intrusion(self, event: Intrusion) -> None:
        zone = self._zones[event.zone]
        lon, lat = self.projection.to_lonlat(event.x_m, event.y_m)
        dwell_s = event.t_s - event.entered_t_s
        self.runtime.raise_alert(
            IntrusionDetails(source="lidar", track_id=event.track, dwell_s=round(dwell_s, 2),
                             x_m=round(event.x_m, 2), y_m=round(event.y_m, 2)),
            severity=zone.severity, title=zone.title or f"Intrusion in {zone.id}",
            location=Location(lon=lon, lat=lat, accuracy_m=self.config.position_accuracy_m),
            zone=zone.id, entity=track_entity(self.config.device, event.track),
            started_at=utcnow() - timedelta(seconds=max(0.0, self._clock() - event.entered_t_s)),
        )
        log.info("intrusion alert in zone %s", zone.id)

    def _publish_positions(self, now: float) -> None:
        result = self.last_result
        if result is None or not result.tracks:
            return
        ts = utcnow()
        positions = [self._position(tr, ts) for tr in result.tracks
                     if now - tr.t_s <= self.config.tracking.max_missed_s]
        if positions:
            self.runtime.send_positions(positions)

    def _position(self, tr: Track, ts: Any) -> Position:
        lon, lat = self.projection.to_lonlat(tr.x_m, tr.y_m)
        moving = tr.speed_mps >= 0.2
        return Position(entity=track_entity(self.config.device, tr.id),
                        entity_kind=EntityKind.TRACK, lon=lon, lat=lat,
                        accuracy_m=self.config.position_accuracy_m,
                        heading_deg=round(tr.heading_deg, 1) % 360 if moving else None,
                        speed_mps=round(min(tr.speed_mps, 200.0), 2), ts=ts)

    # -- health ------------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Decoder, transport and queue counters, cumulative."""
        c = dict(self.driver.counters())
        t = self.transport.counters
        c.update({"opens": t["opens"], "disconnects": t["disconnects"],
                  "open_failures": t["open_failures"], "stalls": t["stalls"],
                  "bytes": t["bytes"], "scans": self.assembler.scans,
                  "samples_discarded_partial": self.assembler.samples_discarded})
        c["samples_lost_disconnected"] = round(
            self.transport.disconnected_s * self.driver.model.sample_rate_hz)
        c["scan_queue_full"] = self.scans.dropped["scan_queue_full"]
        return c

    def _config_metrics(self) -> dict[str, float]:
        """Pushed-config bookkeeping (first, so a long zone list cannot crowd it out)."""
        c = self.runtime.counters
        return {"config_version": float(self.reloader.applied_version),
                **{name: float(c[name]) for name in ("config_applied", "config_rejected",
                                                     "config_stale", "config_restore_failed")}}

    def health_fields(self) -> dict[str, Any]:
        c = self.counters()
        now = self._clock()
        with self._lock:
            processed, processing_s = self._processed, self._processing_s
        t0, scans0, samples0 = self._rate_mark
        if now - t0 >= 0.5:
            self._rates = ((processed - scans0) / (now - t0),
                           (c["samples"] - samples0) / (now - t0))
            self._rate_mark = (now, processed, c["samples"])
        scan_rate, sample_rate = self._rates
        metrics: dict[str, float] = self._config_metrics()
        metrics.update({f"count.{k}": float(v)
                        for k, v in self.pipeline.line_counts().items()})
        for zone in self.pipeline.zones:
            metrics[f"zone.{zone.id}.inside"] = float(zone.inside_now)
        result = self.last_result
        metrics.update({
            "tracks_now": float(len(result.tracks)) if result else 0.0,
            "tracks_created": float(self.pipeline.tracker.created),
            "intrusions": float(self.pipeline.events["intrusions"]),
            "crossings": float(self.pipeline.events["crossings"]),
            "samples_per_s": round(sample_rate, 1),
            "nominal_samples_per_s": float(self.driver.model.sample_rate_hz),
            "background_ready": 1.0 if self.pipeline.background.ready else 0.0,
            "port_connected": 1.0 if self.transport.connected.is_set() else 0.0,
            "port_opens": float(c["opens"]),
            "port_stalls": float(c["stalls"]),
            "samples_total": float(c["samples"]),
        })
        dropped = {k: c[k] for k in ("crc_errors", "samples_dropped", "bytes_skipped",
                                     "disconnects", "open_failures",
                                     "samples_lost_disconnected", "scan_queue_full",
                                     "samples_discarded_partial")}
        return {
            "fps": round(scan_rate, 2),
            "inference_ms": round(1000 * processing_s / processed, 3) if processed else None,
            "dropped": dropped,
            "metrics": dict(list(metrics.items())[:64]),
        }
