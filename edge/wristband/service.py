"""The wristband gateway loop: transports -> bounded queue -> tracker -> AgentRuntime."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bridges.ble.keys import load_keys
from bridges.ble.sources import AdvertSource, HeardAdvert
from edge.agent import AgentRuntime
from edge.geofence import GeofenceEngine, zones_from_geojson
from edge.protocol import DeviceKind
from edge.queues import BoundedQueue
from edge.wristband.config import WristbandConfig
from edge.wristband.counters import BandCounterStore
from edge.wristband.tracker import AlertIntent, WristbandTracker

log = logging.getLogger(__name__)


class WristbandError(RuntimeError):
    """The gateway cannot start; the message says what to fix."""


def load_engine(path: Path | None, origin: tuple[float, float] | None = None
                ) -> GeofenceEngine | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise WristbandError(f"cannot read zones file {path}: {err.strerror}") from err
    return GeofenceEngine(zones_from_geojson(text, str(path)), origin)


def build_sources(config: WristbandConfig) -> list[AdvertSource]:
    sources: list[AdvertSource] = []
    for r in config.receivers:
        if r.transport is None:
            continue
        if r.transport.type == "bleak":
            from bridges.ble.bleak_transport import BleakAdvertSource

            sources.append(BleakAdvertSource(r.id, adapter=r.transport.adapter,
                                             scanning_mode=r.transport.scanning_mode,
                                             company_id=config.company_id))
        elif r.transport.type == "bumble":
            from bridges.ble.bumble_transport import BumbleAdvertSource

            sources.append(BumbleAdvertSource(r.id, hci=r.transport.hci))
        else:
            from bridges.ble.serial_transport import SerialBridgeSource

            sources.append(SerialBridgeSource(r.id, r.transport.port,
                                              baudrate=r.transport.baudrate))
    return sources


class WristbandService:
    def __init__(self, config: WristbandConfig, *,
                 keys: Mapping[int, tuple[bytes, ...]] | None = None,
                 engine: GeofenceEngine | None = None,
                 sources: list[AdvertSource] | None = None,
                 runtime: AgentRuntime | None = None,
                 on_alert: Callable[[AlertIntent], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.config = config
        if keys is None:
            keys = load_keys(config.keys_file)
        self.engine = engine if engine is not None else load_engine(config.zones_file)
        self.tracker = WristbandTracker(config, keys, self.engine)
        self.sources = sources if sources is not None else build_sources(config)
        self.queue: BoundedQueue[HeardAdvert] = BoundedQueue(config.queue_max)
        self.runtime = runtime if runtime is not None else AgentRuntime(
            config, DeviceKind.WRISTBAND, health_fields=self.health_fields)
        self._on_alert = on_alert
        self._clock = clock
        self._wall = wall
        self._stop = threading.Event()
        self.loop = self.runtime.supervise("adverts", self._run, self._stop)
        self._started: list[AdvertSource] = []
        self.adverts_in = 0
        self.counter_store: BandCounterStore | None = None
        self.counter_persist_failed = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._restore_counters()
        self.runtime.start()
        self.loop.start()
        try:
            for source in self.sources:
                source.start(self.submit)
                self._started.append(source)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        for source in self._started:
            source.stop()
        self._started.clear()
        self._stop.set()
        self.queue.close()
        self.loop.stop(timeout_s=5)
        self._persist_counters()
        if self.counter_store is not None:
            self.counter_store.close()
            self.counter_store = None
        self.runtime.stop()

    def submit(self, heard: HeardAdvert) -> None:
        """Called from transport threads. Adverts are telemetry: the oldest drops when full."""
        self.adverts_in += 1
        self.queue.put_drop_oldest(heard, reason="advert_queue_full")

    # -- loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        next_tick = self._clock() + self.config.position_interval_s
        while not self._stop.is_set():
            timeout = max(0.0, min(next_tick - self._clock(), 0.5))
            intents: list[AlertIntent] = []
            try:
                for heard in self.queue.get_batch(500, timeout_s=timeout):
                    intents.extend(self.tracker.on_advert(heard))
            finally:
                # Persist, then act: the counters this batch advanced are on disk before any
                # of its alerts exist, so no crash can reopen a replay window. An advert that
                # crashes the loop does not take the alerts of the adverts before it along.
                self._persist_counters()
                self._emit(intents)
            now = self._clock()
            if now >= next_tick:
                next_tick = now + self.config.position_interval_s
                wall = self._wall()
                alerts, positions = self.tracker.tick(now, wall)
                self._emit(alerts)
                if positions:
                    self.runtime.send_positions(positions)
                if self.config.publish_sightings:
                    sightings = self.tracker.sightings(now, wall)
                    if sightings:
                        self.runtime.send_sightings(sightings)

    def _emit(self, alerts: list[AlertIntent]) -> None:
        for intent in alerts:
            log.info("alert %s for %s", intent.kind.value, intent.entity)
            self.runtime.raise_alert(intent.details, severity=intent.severity,
                                     title=intent.title, location=intent.location,
                                     zone=intent.zone, entity=intent.entity)
            if self._on_alert is not None:
                self._on_alert(intent)

    def health_fields(self) -> dict[str, Any]:
        c = self.tracker.counters
        return {
            "dropped": dict(self.queue.dropped),
            "metrics": {
                "adverts_in": float(self.adverts_in),
                "adverts_accepted": float(c["verdict_accepted"]),
                "adverts_forged": float(c["verdict_forged"]),
                "adverts_replayed": float(c["verdict_replayed"]),
                "adverts_malformed": float(sum(v for k, v in c.items()
                                               if k.startswith("advert_"))),
                "bands_known": float(len(self.tracker.bands)),
                "counter_persist_failed": float(self.counter_persist_failed),
            },
        }

    # -- counters survive crashes so a captured advert cannot be replayed after one ----------

    def _restore_counters(self) -> None:
        data_dir = self.config.data_dir
        self.counter_store = BandCounterStore(
            data_dir / f"{self.config.device}-band-counters.sqlite",
            legacy_json=data_dir / f"{self.config.device}-band-counters.json")
        self.tracker.verifier.restore_counters(self.counter_store.load(), self._clock())

    def _persist_counters(self) -> None:
        if self.counter_store is None:
            return
        try:
            self.counter_store.save(self.tracker.verifier.counters())
        except sqlite3.Error as err:
            # Alerts still go out (an SOS matters more), but loudly: until the store works
            # again a crash would let the adverts of this window be replayed.
            self.counter_persist_failed += 1
            log.error("band counters not persisted to %s: %s", self.counter_store.path, err)  # noqa: TRY400 - the reason is enough
