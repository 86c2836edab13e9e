"""Live fan-out of positions, alerts and device state to WebSocket clients.

Ingest (a thread) hands each committed batch to :meth:`LiveBroadcaster.publish`, which never
blocks: events are scheduled onto the API's event loop and put into each client's bounded queue.
A client whose queue overflows is disconnected with a reason; it never slows ingest.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from edge.protocol import Alert, DeviceState, Inbound, PositionBatch
from hub.store import BatchResult

log = logging.getLogger(__name__)


class Layer(StrEnum):
    POSITIONS = "positions"
    ALERTS = "alerts"
    DEVICES = "devices"


BBox = tuple[float, float, float, float]  # west, south, east, north


@dataclass(frozen=True, slots=True)
class LiveEvent:
    layer: Layer
    site: str
    data: dict[str, Any]
    lon: float | None = None
    lat: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"layer": self.layer.value, "site": self.site, **self.data}


@dataclass(eq=False)
class LiveClient:
    layers: frozenset[Layer]
    bbox: BBox | None
    site: str | None
    queue: asyncio.Queue[LiveEvent]
    dropped_reason: str | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event: LiveEvent) -> bool:
        if event.layer not in self.layers:
            return False
        if self.site is not None and event.site != self.site:
            return False
        if self.bbox is not None and event.lon is not None and event.lat is not None:
            w, s, e, n = self.bbox
            return w <= event.lon <= e and s <= event.lat <= n
        return True


def events_from_batch(batch: list[Inbound], result: BatchResult) -> list[LiveEvent]:
    events: list[LiveEvent] = []
    for item in batch:
        msg = item.message
        if isinstance(msg, PositionBatch):
            for p in msg.positions:
                events.append(  # noqa: PERF401 - one branch of three
                    LiveEvent(
                        Layer.POSITIONS,
                        msg.site,
                        {
                            "entity": p.entity,
                            "entity_kind": p.entity_kind.value,
                            "device": msg.device,
                            "lon": p.lon,
                            "lat": p.lat,
                            "accuracy_m": p.accuracy_m,
                            "heading_deg": p.heading_deg,
                            "speed_mps": p.speed_mps,
                            "ts": p.ts.isoformat(),
                            "msg_id": msg.id,
                        },
                        p.lon,
                        p.lat,
                    )
                )
        elif isinstance(msg, Alert):
            loc = msg.location
            events.append(
                LiveEvent(
                    Layer.ALERTS,
                    msg.site,
                    {
                        "id": msg.id,
                        "device": msg.device,
                        "kind": msg.kind.value,
                        "severity": msg.severity.value,
                        "title": msg.title,
                        "zone": msg.zone,
                        "entity": msg.entity,
                        "ts": msg.ts.isoformat(),
                        "lon": loc.lon if loc else None,
                        "lat": loc.lat if loc else None,
                        "has_evidence": msg.evidence is not None,
                    },
                    loc.lon if loc else None,
                    loc.lat if loc else None,
                )
            )
        elif isinstance(msg, DeviceState):
            events.append(
                LiveEvent(
                    Layer.DEVICES,
                    msg.site,
                    {
                        "device": msg.device,
                        "kind": msg.kind.value,
                        "state": msg.state.value,
                        "ts": msg.ts.isoformat(),
                        "config_version": msg.config_version,
                    },
                )
            )
    return events


class LiveBroadcaster:
    def __init__(self, queue_max: int = 2000) -> None:
        self.queue_max = queue_max
        self._clients: set[LiveClient] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def register(self, layers: frozenset[Layer], bbox: BBox | None, site: str | None) -> LiveClient:
        client = LiveClient(layers, bbox, site, asyncio.Queue(self.queue_max))
        with self._lock:
            self._clients.add(client)
        self.stats["clients_connected"] += 1
        return client

    def unregister(self, client: LiveClient) -> None:
        with self._lock:
            self._clients.discard(client)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def publish(self, events: list[LiveEvent]) -> None:
        """Thread-safe and non-blocking; a no-op while no API loop is attached."""
        loop = self._loop
        if not events or loop is None or loop.is_closed() or not self._clients:
            return
        try:
            loop.call_soon_threadsafe(self._fanout, events)
        except RuntimeError:  # loop shutting down
            return

    def on_stored(self, batch: list[Inbound], result: BatchResult) -> None:
        self.publish(events_from_batch(batch, result))

    def _fanout(self, events: list[LiveEvent]) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            if client.dropped_reason is not None:
                continue
            for event in events:
                if not client.wants(event):
                    continue
                try:
                    client.queue.put_nowait(event)
                    self.stats["events_sent"] += 1
                except asyncio.QueueFull:
                    client.dropped_reason = (
                        f"client too slow: more than {self.queue_max} events queued"
                    )
                    self.stats["clients_dropped_slow"] += 1
                    client.closed.set()
                    log.warning("dropping slow live client: %s", client.dropped_reason)
                    break
