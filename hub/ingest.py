"""Hub ingest: shared-subscription MQTT in, validated by the contract, stored in batches,
acknowledged to each device only after the batch is committed.

Several hub processes may run this against one PostgreSQL: the broker's shared subscription
(``$share/hub/...``) hands each message to one of them, and idempotent inserts make any
redelivery harmless.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from edge.bus import Bus, BusError
from edge.protocol import (
    CHANNEL_QOS,
    Alert,
    Channel,
    CmdChannel,
    HubAck,
    Inbound,
    ProtocolError,
    cmd_topic,
    decode_device_message,
    device_filter,
    encode,
)
from edge.queues import BoundedQueue, QueueClosedError
from hub.store import BatchResult, Store

log = logging.getLogger(__name__)

SUBSCRIBED_CHANNELS = (
    Channel.STATE,
    Channel.HEALTH,
    Channel.ALERT,
    Channel.POS,
    Channel.REPLY,
    Channel.SIGHTINGS,
)


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    stored_alerts: int = 0
    duplicate_alerts: int = 0
    stored_positions: int = 0
    acks_sent: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    store_errors: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received,
            "stored_alerts": self.stored_alerts,
            "duplicate_alerts": self.duplicate_alerts,
            "stored_positions": self.stored_positions,
            "acks_sent": self.acks_sent,
            "rejected": dict(self.rejected),
            "store_errors": self.store_errors,
        }


DeviceGate = Callable[[Inbound], str | None]
"""Returns None to accept a message, or a rejection reason (e.g. ``unknown_device``)."""


class Ingest:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        *,
        site: str = "+",
        queue_max: int = 20_000,
        batch_max: int = 1000,
        gate: DeviceGate | None = None,
        on_stored: Callable[[list[Inbound], BatchResult], None] | None = None,
    ) -> None:
        self.bus = bus
        self.store = store
        self.site = site
        self.batch_max = batch_max
        self.gate = gate
        self.on_stored = on_stored
        self.stats = IngestStats()
        self.queue: BoundedQueue[Inbound] = BoundedQueue(queue_max)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def attach(self) -> None:
        """Subscribe (shared) to every device channel; call before ``bus.start()``."""
        for channel in SUBSCRIBED_CHANNELS:
            self.bus.subscribe(
                device_filter(self.site, channel, shared=True), self.handle, CHANNEL_QOS[channel]
            )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hub-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after storing (and acking) what is already queued."""
        self._stop.set()
        self.queue.close()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def reject(self, reason: str, detail: str) -> None:
        with self._lock:
            self.stats.rejected[reason] += 1
        log.warning("rejected message (%s): %s", reason, detail)

    def handle(self, topic: str, payload: bytes) -> None:
        """MQTT callback: validate and enqueue. Never raises."""
        with self._lock:
            self.stats.received += 1
        try:
            inbound = decode_device_message(topic, payload)
        except ProtocolError as err:
            self.reject(err.reason, str(err))
            return
        if self.gate is not None:
            reason = self.gate(inbound)
            if reason is not None:
                self.reject(reason, f"{inbound.topic}")
                return
        if isinstance(inbound.message, Alert):
            # Alerts are never dropped: wait for room, which back-pressures the broker.
            try:
                while not self.queue.put_wait(inbound, timeout_s=1.0):
                    log.warning("ingest queue full; holding alert %s", inbound.message.id)
            except QueueClosedError:
                # Not acked, so the device's outbox sends it again to a live replica.
                return
        else:
            self.queue.put_drop_oldest(inbound, reason=f"{inbound.topic.channel}_queue_full")

    def _run(self) -> None:
        while True:
            batch = self.queue.get_batch(self.batch_max, timeout_s=0.2)
            if not batch:
                if self._stop.is_set():
                    return
                continue
            self._store_and_ack(batch)

    def _store_and_ack(self, batch: list[Inbound]) -> None:
        while True:
            try:
                result = self.store.write_batch(batch)
                break
            except SQLAlchemyError:
                self.stats.store_errors += 1
                log.exception("store write failed; retrying batch of %d", len(batch))
                if self._stop.wait(1.0):
                    # Unacked alerts are resent by their devices; telemetry is lost, counted.
                    self.stats.rejected["store_unavailable"] += len(batch)
                    return
        self.stats.stored_alerts += result.alerts_new
        self.stats.duplicate_alerts += result.alerts_duplicate
        self.stats.stored_positions += result.positions
        for (site, device), ids in result.acks.items():
            for start in range(0, len(ids), 1000):
                ack = HubAck(site=site, device=device, ids=ids[start : start + 1000])
                try:
                    self.bus.publish(cmd_topic(site, device, CmdChannel.ACK), encode(ack), qos=1)
                    self.stats.acks_sent += 1
                except BusError as err:
                    # The device resends unacked alerts; the duplicate is acked next time.
                    log.info("ack to %s not sent: %s", device, err)
        if self.on_stored is not None:
            self.on_stored(batch, result)
