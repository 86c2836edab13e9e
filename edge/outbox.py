"""Durable alert delivery: write to disk first, send, delete only when the hub has stored it.

:class:`Outbox` is a SQLite (WAL, ``synchronous=FULL``) table of messages not yet acknowledged by
the hub. :class:`AlertDelivery` sends what is due over a :class:`~edge.bus.Bus`: everything
never sent, everything sent before the latest (re)connect, and everything whose hub ack is
overdue. The hub inserts idempotently by message id, so a resend is always safe.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.bus import Bus, BusError
from edge.protocol import (
    CHANNEL_QOS,
    Alert,
    Channel,
    CmdChannel,
    DeviceKind,
    HubAck,
    Message,
    ProtocolError,
    channel_of,
    cmd_topic,
    decode_cmd_message,
    device_topic,
    encode,
)

log = logging.getLogger(__name__)

# Device -> hub channels whose messages are kept on disk until the hub acks their id.
DURABLE_CHANNELS: frozenset[Channel | CmdChannel] = frozenset({Channel.ALERT, Channel.ANSWER})


class OutboxFullError(Exception):
    """The outbox holds ``max_items`` unacknowledged alerts; the hub has been away too long."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: str
    topic: str
    payload: bytes


class Outbox:
    """Thread-safe durable queue of messages awaiting a hub ack.

    Only the pending set is on disk. When each item was last sent is kept in memory: after a
    restart everything pending counts as never sent, which is exactly what must happen.
    """

    def __init__(self, path: Path, max_items: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_items = max_items
        # Three locks so the sender never waits behind an fsync: writes (put/ack) on one
        # connection, reads (due) on a second one (WAL readers do not block writers), and the
        # in-memory send marks.
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " id TEXT PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,"
            " created REAL NOT NULL)"
        )
        # id -> epoch seconds of the last send (0.0: never). Ids are UUIDv7, so this insertion
        # order is creation order and the oldest alert always goes first.
        self._sent: dict[str, float] = {
            row[0]: 0.0 for row in self._db.execute("SELECT id FROM outbox ORDER BY id")
        }
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    def put(self, message_id: str, topic: str, payload: bytes) -> None:
        """Store durably; returns only once the row is on disk (fsync), so a crash or power
        loss right after cannot lose the alert."""
        with self._write_lock:
            if message_id in self._sent:
                return
            if len(self._sent) >= self.max_items:
                raise OutboxFullError(
                    f"outbox {self.path} holds {len(self._sent)} unacknowledged alerts "
                    f"(max_items={self.max_items}); check the hub and broker connection"
                )
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "INSERT OR IGNORE INTO outbox(id, topic, payload, created) VALUES (?,?,?,?)",
                (message_id, topic, payload, time.time()),
            )
            with self._lock:
                self._sent[message_id] = 0.0

    def ack(self, ids: Iterable[str]) -> int:
        """Delete acknowledged ids; unknown ids (already acked) are ignored."""
        with self._write_lock:
            with self._lock:
                known = [i for i in ids if i in self._sent]
            if not known:
                return 0
            # A delete lost to a power cut only causes a resend, which the hub deduplicates,
            # so it need not wait for fsync (WAL + NORMAL is still crash-consistent).
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in known])
            self._db.execute("COMMIT")
            with self._lock:
                for i in known:
                    self._sent.pop(i, None)
        return len(known)

    def due(self, sent_before: float, limit: int) -> list[OutboxItem]:
        """Items never sent, or last sent before ``sent_before`` (epoch seconds), oldest first."""
        with self._lock:
            picked = [i for i, t in self._sent.items() if t < sent_before or t == 0.0]
        picked = picked[:limit]
        if not picked:
            return []
        marks = ",".join("?" * len(picked))
        with self._read_lock:
            rows = self._reader.execute(
                f"SELECT id, topic, payload FROM outbox WHERE id IN ({marks})",  # noqa: S608
                picked,
            ).fetchall()
        by_id = {r[0]: r for r in rows}
        return [OutboxItem(i, by_id[i][1], bytes(by_id[i][2])) for i in picked if i in by_id]

    def mark_sent(self, ids: Iterable[str], when: float) -> None:
        with self._lock:
            for i in ids:
                if i in self._sent:
                    self._sent[i] = when

    def depth(self) -> int:
        return len(self._sent)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._sent)

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._reader.close()
            self._db.close()


class AlertDelivery:
    """Moves alerts from the outbox to the broker and applies hub acks.

    Runs one sender thread. :meth:`send` returns once the alert is durable, whether or not the
    broker is reachable.
    """

    def __init__(
        self,
        bus: Bus,
        outbox: Outbox,
        *,
        site: str,
        kind: DeviceKind,
        device: str,
        resend_after_s: float = 30.0,
        batch: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.outbox = outbox
        self.site = site
        self.kind = kind
        self.device = device
        self.resend_after_s = resend_after_s
        self.batch = batch
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected_at = 0.0
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.acked = 0
        self.bad_acks = 0
        self.topic = device_topic(site, kind, device, Channel.ALERT)
        self.ack_topic = cmd_topic(site, device, CmdChannel.ACK)

    def attach(self) -> None:
        """Subscribe to hub acks on their own; call before ``bus.start()``. Agents that
        subscribe to all their commands route acks to :meth:`apply_ack` instead."""
        self.bus.subscribe(self.ack_topic, self._on_ack, qos=1)

    def on_connected(self) -> None:
        """Call from the bus's on_connected hook: everything unacked goes out again."""
        self._connected_at = self._clock()
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def send(self, alert: Alert) -> None:
        self.send_message(alert)

    def send_message(self, message: Message) -> None:
        """Store any device -> hub message of a durable channel (an alert, an officer's
        dispatch answer) for delivery; the hub acks its id in :class:`HubAck` like an alert's."""
        if message.device != self.device or message.site != self.site:
            raise ProtocolError("origin_mismatch", "an agent can only send its own messages")
        channel = channel_of(message)
        if channel not in DURABLE_CHANNELS:
            raise ProtocolError("not_durable", f"{channel} messages do not go through the outbox")
        topic = device_topic(self.site, self.kind, self.device, channel)
        self.outbox.put(message.id, topic, encode(message))
        self._wake.set()

    def _on_ack(self, topic: str, payload: bytes) -> None:
        try:
            _, message = decode_cmd_message(topic, payload)
        except ProtocolError as err:
            self.bad_acks += 1
            log.warning("ignored bad hub ack (%s): %s", err.reason, err)
            return
        self.apply_ack(message)

    def apply_ack(self, message: Message) -> None:
        if isinstance(message, HubAck) and message.device == self.device:
            self.acked += self.outbox.ack(message.ids)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._flush()
            except BusError as err:
                log.info("alert delivery paused: %s", err)
            except sqlite3.Error:
                log.exception("outbox error; retrying")
                self._stop.wait(1.0)

    def _flush(self) -> None:
        while self.bus.connected and not self._stop.is_set():
            now = self._clock()
            cutoff = max(self._connected_at, now - self.resend_after_s)
            items = self.outbox.due(cutoff, self.batch)
            if not items:
                return
            sent: list[str] = []
            try:
                for item in items:
                    # Every durable channel is QoS 1 (DURABLE_CHANNELS), like alerts.
                    self.bus.publish(item.topic, item.payload, qos=CHANNEL_QOS[Channel.ALERT])
                    sent.append(item.id)
            finally:
                self.outbox.mark_sent(sent, now)
                self.sent += len(sent)
