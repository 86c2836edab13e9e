"""The hub process: MQTT ingest, the store, the REST/WebSocket API and housekeeping."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import uvicorn

from edge.bus import Bus
from edge.protocol import MAX_POSITIONS_PER_BATCH, AlertKind, Inbound, PositionBatch, Reply
from hub import retention
from hub.api.app import create_app
from hub.audit import AuditTrail
from hub.auth import LoginRateLimiter
from hub.broker_stats import BrokerStats
from hub.clock import Clock, SystemClock
from hub.commands.outbox import CommandOutbox
from hub.commands.publisher import CommandPublisher
from hub.config import HubConfig
from hub.context import HubContext
from hub.devices.directory import DeviceDirectory
from hub.devices.service import DeviceService, dynsec_control
from hub.flood import FloodGuard
from hub.fusion import FUSION_DEVICE, FusedPosition, SightingFusion
from hub.incidents.alert_rules import stored_alerts
from hub.ingest import Ingest
from hub.live import Layer, LiveBroadcaster, LiveEvent
from hub.live_relay import LiveRelay
from hub.pki import SiteCA
from hub.store import BatchResult, Store, TimestampWindow
from hub.timeseries import TimeSeriesWriter
from hub.warnings.worker import WarningsWorker
from hub.workers import WorkerStatus, thread_alive

log = logging.getLogger(__name__)


class HubService:
    def __init__(
        self,
        config: HubConfig,
        store: Store | None = None,
        broker_reload: Callable[[], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.store = store or Store(config.resolved_database_url())
        self.store.window = TimestampWindow(
            config.ingest_max_future_skew_s, config.ingest_max_past_age_s
        )
        self.outbox = CommandOutbox()
        # A (re)connect may end a broker outage: let waiting commands go at once.
        self.bus = Bus(config.mqtt, client_id=config.client_id, on_connected=self.outbox.wake)
        self.audit = AuditTrail.from_config(self.store.engine, config)
        self.directory = DeviceDirectory(self.store.engine)
        self.registry = DeviceService(
            self.store.engine,
            self.audit,
            config.broker,
            ca=SiteCA(config.ca_dir) if config.ca_dir else None,
            reload=broker_reload,
            directory=self.directory,
            outbox=self.outbox,
            control=dynsec_control(config),
        )
        self.registry.reserved_ids.add(config.client_id)
        self.command_publisher = CommandPublisher(
            self.store.engine, self.bus, self.outbox, config.commands
        )
        self.live = LiveBroadcaster(config.api.ws_queue_max)
        self.live_relay = (
            LiveRelay(self.bus, self.live, replica=config.client_id, site=config.site)
            if config.api.live_relay
            else None
        )
        self.fusion = SightingFusion()
        self.timeseries = TimeSeriesWriter(config.influx) if config.influx else None
        self.ingest = Ingest(
            self.bus,
            self.store,
            site=config.site or "+",
            queue_max=config.ingest_queue_max,
            batch_max=config.ingest_batch_max,
            gate=None if config.accept_unprovisioned else self.directory.gate,
            on_stored=self._on_stored,
            alert_wait_s=config.ingest_alert_wait_s,
            dead_letters_per_s=config.ingest_dead_letters_per_s,
            dead_letter_max_rows=config.retention.rejected_max_rows,
            flood=FloodGuard(config.flood),
        )
        self.broker_stats = BrokerStats(self.bus)
        self.ctx = HubContext(
            config=config,
            store=self.store,
            audit=self.audit,
            registry=self.registry,
            live=self.live,
            login_limiter=LoginRateLimiter(
                config.api.login_max_failures,
                config.api.login_window_s,
                lockout_s=config.api.login_lockout_s,
                lockout_max_s=config.api.login_lockout_max_s,
            ),
            bus=self.bus,
            ingest=self.ingest,
            timeseries=self.timeseries,
            workers=self.worker_status,
            outbox=self.outbox,
            broker_stats=self.broker_stats,
            clock=self.clock,
        )
        self.app = create_app(self.ctx)
        self.warnings_worker = WarningsWorker(self.ctx.warnings, self.clock)
        self.timers = self.ctx.timers
        self._server: uvicorn.Server | None = None
        self._threads: list[threading.Thread] = []
        self._housekeeper: threading.Thread | None = None
        self._stop = threading.Event()

    def _on_stored(self, batch: list[Inbound], result: BatchResult) -> None:
        """After each committed ingest batch: live map, then time series (never blocking)."""
        if any(isinstance(item.message, Reply) for item in batch):
            self.outbox.wake()  # the publisher records the answers on its next pass
        self.live.on_stored(batch, result)
        if self.timeseries is not None:
            self.timeseries.write_messages(item.message for item in batch)
        self._fuse(batch)
        self._open_incidents(batch, result)
        if result.new_answer_ids:
            self.ctx.dispatch.process_answers(result.new_answer_ids)  # counts its own failures
        if self.config.bundles.enabled:
            self.ctx.bundles.on_stored(batch)  # device bundle keys and answers; never raises

    def _open_incidents(self, batch: list[Inbound], result: BatchResult) -> None:
        """The batch's new alerts through the alert rules (hub/incidents/service.py)."""
        fresh = stored_alerts(batch, result.new_alert_ids)
        if fresh:
            self.ctx.incidents.intake_batch(fresh)  # counts and logs its own failures
        face_matches = [a.id for a in fresh if a.kind == AlertKind.FACE_MATCH.value]
        if face_matches:
            # Possible matches for review, never incidents by themselves (hub/matches).
            self.ctx.matches.intake_batch(face_matches)  # counts and logs its own failures

    def _fuse(self, batch: list[Inbound]) -> None:
        """Multi-gateway wristband positions from the batch's sightings (hub/fusion.py)."""
        try:
            fused = self.fusion.on_batch(batch)
            if not fused:
                return
            self.store.write_fused_positions(
                [(f.site, f.position) for f in fused],
                device=FUSION_DEVICE,
                supersede_within_s=self.fusion.window_s,
            )
        except Exception:  # a fusion or store failure must not stop ingest
            self.fusion.stats["errors"] += 1
            log.exception("sighting fusion failed for a batch of %d", len(batch))
            return
        self.live.publish([_live_position(f) for f in fused])
        if self.timeseries is not None:
            by_site: dict[str, list[FusedPosition]] = {}
            for f in fused:
                by_site.setdefault(f.site, []).append(f)
            self.timeseries.write_messages(
                PositionBatch(
                    site=site,
                    device=FUSION_DEVICE,
                    positions=[f.position for f in fs[start : start + MAX_POSITIONS_PER_BATCH]],
                )
                for site, fs in by_site.items()
                for start in range(0, len(fs), MAX_POSITIONS_PER_BATCH)
            )

    @property
    def api_port(self) -> int:
        """The port the API listens on (useful when configured as 0)."""
        if self._server is None or not self._server.servers:
            raise RuntimeError("API server not started")
        sock = self._server.servers[0].sockets[0]
        return int(sock.getsockname()[1])

    def start(self, *, api: bool = True) -> None:
        if self.timeseries is not None:
            self.timeseries.start()  # first: fails fast on a missing token
        self.directory.refresh()
        for warning in self.ctx.incidents.check_departments():
            log.warning("incident routing: %s", warning)
        self.ingest.attach()
        self.broker_stats.attach()
        if self.live_relay is not None:
            self.live_relay.attach()
        self.ingest.start()
        self.bus.start()
        self.command_publisher.start()
        if api:
            self._start_api()
        thread = threading.Thread(target=self._housekeeping, name="hub-retention", daemon=True)
        thread.start()
        self._threads.append(thread)
        self._housekeeper = thread
        self.audit.start_timer()
        self.warnings_worker.start()
        if self.config.incidents.deadlines.enabled:
            self.timers.start()
        if self.config.dispatch.enabled:
            self.ctx.dispatch.start()
        if self.config.bundles.enabled:
            self.ctx.bundles.start()
        self.ctx.watchlists.start()
        self.ctx.matches.start()

    def worker_status(self) -> list[WorkerStatus]:
        """Every worker thread this hub started, alive or not (fusion and the live map run
        inside ingest's after-store callback, so ingest's liveness covers them)."""
        workers = [
            self.ingest.worker_status(),
            WorkerStatus("commands", self.command_publisher.alive),
            self.warnings_worker.status(),
            # Runs in ingest's after-store callback; "not alive" while its last pass failed.
            WorkerStatus("incident-intake", self.ctx.incidents.intake.healthy),
            WorkerStatus("match-intake", self.ctx.matches.healthy),
        ]
        if self._housekeeper is not None:
            workers.append(WorkerStatus("retention", thread_alive(self._housekeeper)))
        if self.timers.started:
            workers.append(self.timers.worker_status())
        if self.ctx.dispatch.started:
            workers.append(self.ctx.dispatch.worker_status())
        if self.ctx.bundles.started:
            workers.append(self.ctx.bundles.worker_status())
        if self.ctx.watchlists.started:
            workers.append(self.ctx.watchlists.worker_status())
        if self.ctx.matches.started:
            workers.append(self.ctx.matches.worker_status())
        if self.timeseries is not None:
            stats = self.timeseries.stats()
            workers.append(
                WorkerStatus(
                    "timeseries",
                    self.timeseries.alive,
                    stats["queued_points"],
                    self.timeseries.config.queue_max_points,
                )
            )
        return workers

    def _start_api(self) -> None:
        api = self.config.api
        config = uvicorn.Config(
            self.app,
            host=api.host,
            port=api.port,
            log_level="warning",
            access_log=False,
            ssl_certfile=str(api.tls_cert_file) if api.tls_cert_file else None,
            ssl_keyfile=str(api.tls_key_file) if api.tls_key_file else None,
            ws_max_size=64 * 1024,
            # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default, letting any local
            # client choose the address the login limiter sees; the hub reads those headers
            # itself, and only from api.trusted_proxies.
            proxy_headers=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        thread = threading.Thread(target=self._server.run, name="hub-api", daemon=True)
        thread.start()
        self._threads.append(thread)
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"API server did not start on {api.host}:{api.port}")
            time.sleep(0.02)

    def _housekeeping(self) -> None:
        while not self._stop.wait(min(self.config.retention.run_every_s, 3600)):
            try:
                retention.enforce(self.store.engine, self.config.retention)
            except Exception:  # keep the hub running; the next pass retries
                log.exception("retention pass failed")

    def stop(self) -> None:
        self._stop.set()
        self.warnings_worker.stop()
        self.audit.stop_timer()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self.timers.stop()
        self.ctx.dispatch.stop()
        self.ctx.bundles.stop()
        self.ctx.watchlists.stop()
        self.ctx.matches.stop()
        self.command_publisher.stop()
        self._housekeeper = None
        # Store and ack what is queued while the connection is still up; anything arriving
        # after that is not acked, so its device sends it again.
        self.ingest.stop()
        if self.timeseries is not None:
            self.timeseries.stop()  # after ingest: nothing writes to it any more
        self.bus.stop(end_session=True)
        self.store.close()


def _live_position(fused: FusedPosition) -> LiveEvent:
    p = fused.position
    return LiveEvent(
        Layer.POSITIONS,
        fused.site,
        {
            "entity": p.entity,
            "entity_kind": p.entity_kind.value,
            "device": FUSION_DEVICE,
            "lon": p.lon,
            "lat": p.lat,
            "accuracy_m": p.accuracy_m,
            "heading_deg": p.heading_deg,
            "speed_mps": p.speed_mps,
            "ts": p.ts.isoformat(),
            "receivers": fused.receivers,
            "gateways": fused.gateways,
        },
        p.lon,
        p.lat,
    )
