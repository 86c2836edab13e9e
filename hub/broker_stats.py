"""The broker's own counters, read from Mosquitto's ``$SYS`` tree over the hub's connection.

Mosquitto drops a QoS 0 message for a subscriber whose outgoing queue already holds
``max_queued_messages`` packets, and nothing on the wire tells that subscriber. The only
trace is ``$SYS/broker/publish/messages/dropped`` (broker-wide, since start; Mosquitto 2.0
keeps no per-client figure), so the hub reads it and shows it in ``/api/v1/stats`` and
``/api/v1/health``. Mosquitto publishes the tree every ``sys_interval`` seconds, retained and
only when a value changes (``BrokerLayout.write_config`` sets the interval).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from edge.bus import Bus

log = logging.getLogger(__name__)

SYS_PREFIX = "$SYS/broker/"

# $SYS path (under SYS_PREFIX) -> the name the hub reports it under.
COUNTERS: dict[str, str] = {
    "publish/messages/dropped": "publish_dropped",
    "publish/messages/received": "publish_received",
    "publish/messages/sent": "publish_sent",
    "messages/received": "messages_received",
    "messages/sent": "messages_sent",
    "clients/connected": "clients_connected",
    "clients/disconnected": "clients_disconnected",
    "clients/maximum": "clients_maximum",
    "load/publish/dropped/1min": "publish_dropped_per_min",
    "heap/current": "heap_bytes",
}

MAX_VALUE = 10**18  # a counter beyond this is not Mosquitto's: refused, not stored


class BrokerStats:
    """Latest value of each counter in :data:`COUNTERS`, with when it was last updated.

    ``attach`` subscribes on the hub's bus (call before ``bus.start()``); the handler runs on
    the MQTT thread and only parses a short number.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bus = bus
        self._clock = clock
        self._wall = wall
        self._values: dict[str, int | float] = {}
        self._updated: float | None = None
        self._updated_at: datetime | None = None
        self._lock = threading.Lock()
        self.refused = 0

    def attach(self) -> None:
        for path in COUNTERS:
            self.bus.subscribe(SYS_PREFIX + path, self.handle, 0)

    def handle(self, topic: str, payload: bytes) -> None:
        name = COUNTERS.get(topic[len(SYS_PREFIX) :]) if topic.startswith(SYS_PREFIX) else None
        value = _parse(payload) if name is not None else None
        if name is None or value is None:
            with self._lock:
                self.refused += 1
            log.warning("unexpected broker counter on %s", topic[:120])
            return
        with self._lock:
            self._values[name] = value
            self._updated = self._clock()
            self._updated_at = self._wall()

    def snapshot(self) -> dict[str, object]:
        """Every counter seen so far, plus ``updated_at`` and ``age_s`` (None before the first)."""
        with self._lock:
            out: dict[str, object] = dict(self._values)
            out["updated_at"] = self._updated_at.isoformat() if self._updated_at else None
            out["age_s"] = (
                round(self._clock() - self._updated, 1) if self._updated is not None else None
            )
        return out

    def dropped(self) -> int | None:
        with self._lock:
            value = self._values.get("publish_dropped")
        return int(value) if value is not None else None


def _parse(payload: bytes) -> int | float | None:
    if len(payload) > 32:
        return None
    text = payload.decode("ascii", "replace").strip()
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
    if not 0 <= value <= MAX_VALUE:
        return None
    return value
