"""Hub ingest: shared-subscription MQTT in, validated by the contract, stored in batches,
acknowledged to each device only after the batch is committed.

Several hub processes may run this against one PostgreSQL: the broker's shared subscription
(``$share/hub/...``) hands each message to one of them, and idempotent inserts make any
redelivery harmless.

No input from a device can stop ingest: a message that fails to decode, that the gate refuses
or that the database refuses is counted by reason and kept as a dead letter (rate-limited, so a
flood cannot fill the disk), and the rest of its batch is stored and acked. The MQTT callback
never waits on the database: telemetry drops the oldest queued item when the queue is full
(counted), and an alert waits at most ``alert_wait_s`` for room before it is left unacked, for
its device's outbox to send again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.bus import Bus, BusError
from edge.protocol import (
    CHANNEL_QOS,
    Alert,
    Channel,
    CmdChannel,
    DispatchAnswer,
    HubAck,
    Inbound,
    ProtocolError,
    cmd_topic,
    decode_device_message,
    device_filter,
    encode,
)
from edge.queues import BoundedQueue, QueueClosedError
from hub.flood import FloodGuard
from hub.store import (
    DEAD_LETTER_HEAD_BYTES,
    BatchResult,
    DeadLetter,
    Store,
    StoreUnavailableError,
)
from hub.workers import WorkerStatus, thread_alive

log = logging.getLogger(__name__)

SUBSCRIBED_CHANNELS = (
    Channel.STATE,
    Channel.HEALTH,
    Channel.ALERT,
    Channel.POS,
    Channel.REPLY,
    Channel.SIGHTINGS,
    Channel.ANSWER,
)


@dataclass(slots=True)
class IngestStats:
    received: int = 0
    stored_alerts: int = 0
    duplicate_alerts: int = 0
    stored_positions: int = 0
    stale_positions: int = 0  # older than ingest_max_past_age_s: history only, never "latest"
    stored_evidence: int = 0
    acks_sent: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    store_errors: int = 0
    alerts_deferred: int = 0  # queue full for alert_wait_s: not acked, the device resends
    callback_errors: int = 0
    dead_letters_kept: int = 0
    dead_letters_skipped: int = 0  # over the rate limit or the pending bound: in ``rejected`` only

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received,
            "stored_alerts": self.stored_alerts,
            "duplicate_alerts": self.duplicate_alerts,
            "stored_positions": self.stored_positions,
            "stale_positions": self.stale_positions,
            "stored_evidence": self.stored_evidence,
            "acks_sent": self.acks_sent,
            "rejected": dict(self.rejected),
            "store_errors": self.store_errors,
            "alerts_deferred": self.alerts_deferred,
            "callback_errors": self.callback_errors,
            "dead_letters_kept": self.dead_letters_kept,
            "dead_letters_skipped": self.dead_letters_skipped,
        }


DEAD_LETTERS_PENDING_MAX = 1000

DeviceGate = Callable[[Inbound], str | None]
"""Returns None to accept a message, or a rejection reason (e.g. ``unknown_device``)."""


class DeadLetterLimiter:
    """Token bucket for dead-letter records: ``per_s`` sustained, bursts of ``burst``.

    The clock is injectable so tests move time instead of sleeping.
    """

    def __init__(
        self, per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_s = per_s
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_s)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


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
        alert_wait_s: float = 30.0,
        dead_letters_per_s: float = 20.0,
        dead_letter_max_rows: int = 10_000,
        retry_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        flood: FloodGuard | None = None,
    ) -> None:
        self.flood = flood
        self.bus = bus
        self.store = store
        self.site = site
        self.batch_max = batch_max
        self.gate = gate
        self.on_stored = on_stored
        self.alert_wait_s = alert_wait_s
        self.retry_s = retry_s
        self.dead_letter_max_rows = dead_letter_max_rows
        self.stats = IngestStats()
        self.queue: BoundedQueue[Inbound] = BoundedQueue(queue_max)
        self._limiter = DeadLetterLimiter(
            dead_letters_per_s, max(1, int(dead_letters_per_s * 10)), clock
        )
        # Written by the ingest thread, never by the MQTT callback (which must not wait on
        # the database); bounded like everything else.
        self._dead_letters: deque[DeadLetter] = deque()
        self._since_trim = 0
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

    def worker_status(self) -> WorkerStatus:
        return WorkerStatus(
            "ingest", thread_alive(self._thread), len(self.queue), self.queue.maxsize
        )

    def queue_stats(self) -> dict[str, object]:
        return {
            "depth": len(self.queue),
            "max": self.queue.maxsize,
            "dropped": dict(self.queue.dropped),
            "dead_letters_pending": len(self._dead_letters),
        }

    def reject(self, reason: str, detail: str, topic: str = "", payload: bytes = b"") -> None:
        """Count a refused message and keep it as a dead letter (within the rate limit)."""
        with self._lock:
            self.stats.rejected[reason] += 1
            # Over the rate, or the worker is stuck on a database that is down: counted only.
            keep = self._limiter.allow() and len(self._dead_letters) < DEAD_LETTERS_PENDING_MAX
            if keep:
                # Only the head is kept: the queue must not hold megabytes of a flood.
                head = payload[:DEAD_LETTER_HEAD_BYTES]
                self._dead_letters.append(
                    DeadLetter(topic, reason, head, detail, size_bytes=len(payload))
                )
            else:
                self.stats.dead_letters_skipped += 1
        log.warning("rejected message (%s): %s", reason, detail[:200])

    def handle(self, topic: str, payload: bytes) -> None:
        """MQTT callback: validate and enqueue. Never raises, never waits on the database."""
        with self._lock:
            self.stats.received += 1
        if self.flood is not None and not self.flood.admit(topic):
            return  # a flooding device's excess telemetry: counted by the guard, never decoded
        try:
            inbound = decode_device_message(topic, payload)
        except ProtocolError as err:
            self.reject(err.reason, str(err), topic, payload)
            return
        if self.gate is not None:
            try:
                reason = self.gate(inbound)
            except Exception:  # a registry bug must not kill paho's network thread
                log.exception("device gate failed for %s", topic)
                reason = "gate_error"
            if reason is not None:
                self.reject(reason, f"{inbound.topic}", topic, payload)
                return
        if isinstance(inbound.message, (Alert, DispatchAnswer)):
            # An officer's answer waits in its device's outbox like an alert: never dropped.
            self._put_alert(inbound)
        else:
            self.queue.put_drop_oldest(inbound, reason=f"{inbound.topic.channel}_queue_full")

    def _put_alert(self, inbound: Inbound) -> None:
        """Alerts are never dropped from the queue: wait for room, which back-pressures the
        broker. But not forever: past ``alert_wait_s`` the alert is left unacked (its device
        keeps it in its outbox and sends it again), so paho's thread keeps running."""
        waited = 0.0
        try:
            while not self.queue.put_wait(inbound, timeout_s=min(1.0, self.alert_wait_s)):
                waited += min(1.0, self.alert_wait_s)
                if waited >= self.alert_wait_s:
                    with self._lock:
                        self.stats.alerts_deferred += 1
                    log.warning(
                        "ingest queue full for %.0f s; alert %s left unacked for its device "
                        "to resend",
                        waited,
                        inbound.message.id,
                    )
                    return
                log.warning("ingest queue full; holding alert %s", inbound.message.id)
        except QueueClosedError:
            # Not acked, so the device's outbox sends it again to a live replica.
            return

    def _run(self) -> None:
        while True:
            batch = self.queue.get_batch(self.batch_max, timeout_s=0.2)
            if batch:
                try:
                    self._store_and_ack(batch)
                except Exception:  # not a device's fault (write_batch isolates those): a bug
                    self.stats.store_errors += 1
                    log.exception(
                        "ingest failed on a batch of %d; its alerts stay unacked", len(batch)
                    )
            self._flush_dead_letters()
            if not batch and self._stop.is_set():
                return

    def _flush_dead_letters(self) -> None:
        with self._lock:
            letters = list(self._dead_letters)
            self._dead_letters.clear()
        if letters:
            try:
                self.store.write_dead_letters(letters)
            # Why blind: counted as rejected already, the record is best effort; a traceback
            # would log the SQL parameters, which hold device payloads.
            except Exception as err:  # noqa: BLE001
                log.error("could not keep %d dead letters: %s", len(letters), type(err).__name__)  # noqa: TRY400
                return
            self.stats.dead_letters_kept += len(letters)
            self._since_trim += len(letters)
        if self._since_trim >= max(100, self.dead_letter_max_rows // 10):
            self._since_trim = 0
            try:
                self.store.trim_dead_letters(self.dead_letter_max_rows)
            except Exception as err:  # noqa: BLE001  (the next trim retries; see above)
                log.error("could not trim dead letters: %s", type(err).__name__)  # noqa: TRY400

    def _store_and_ack(self, batch: list[Inbound]) -> None:
        pending = batch
        while True:
            try:
                result = self.store.write_batch(pending)
                break
            except StoreUnavailableError as err:
                self.stats.store_errors += 1
                if err.stored.acks or err.stored.positions or err.stored.rejected:
                    self._account(err.stored)
                pending = err.remaining
                log.warning("store unavailable (%s); retrying %d messages", err, len(pending))
                if self._stop.wait(self.retry_s):
                    # Unacked alerts are resent by their devices; telemetry is lost, counted.
                    with self._lock:
                        self.stats.rejected["store_unavailable"] += len(pending)
                    return
        self._account(result)
        if self.on_stored is not None:
            # What was stored, no more: a refused message is left out, and a message with
            # some positions refused goes on with the others only.
            refused = result.refused_whole()
            stored = [
                result.trimmed.get(id(item), item) for item in batch if id(item) not in refused
            ]
            try:
                self.on_stored(stored, result)
            except Exception:  # live map, time series or fusion: never stops ingest
                self.stats.callback_errors += 1
                log.exception("after-store callback failed for a batch of %d", len(batch))

    def _account(self, result: BatchResult) -> None:
        self.stats.stored_alerts += result.alerts_new
        self.stats.duplicate_alerts += result.alerts_duplicate
        self.stats.stored_positions += result.positions
        self.stats.stale_positions += result.positions_stale
        self.stats.stored_evidence += result.evidence
        if result.rejected:
            with self._lock:
                self.stats.rejected.update(result.rejected_by_reason())
            self.stats.dead_letters_kept += len(result.rejected)
            self._since_trim += len(result.rejected)
        for (site, device), ids in result.acks.items():
            for start in range(0, len(ids), 1000):
                ack = HubAck(site=site, device=device, ids=ids[start : start + 1000])
                try:
                    self.bus.publish(cmd_topic(site, device, CmdChannel.ACK), encode(ack), qos=1)
                    self.stats.acks_sent += 1
                except BusError as err:
                    # The device resends unacked alerts; the duplicate is acked next time.
                    log.info("ack to %s not sent: %s", device, err)
