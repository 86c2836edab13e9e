"""Live fan-out of positions, alerts and device state to WebSocket clients.

Ingest (a thread) hands each committed batch to :meth:`LiveBroadcaster.publish`, which never
blocks: events are scheduled onto the API's event loop and put into each client's bounded queue.
A client whose queue overflows is disconnected with a reason; it never slows ingest.
Events made here also go to the other hub replicas through :attr:`LiveBroadcaster.relay`
(hub/live_relay.py); theirs arrive with ``relayed=True`` and go to local clients only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from edge.protocol import Alert, DeviceState, Inbound
from hub.store import BatchResult

log = logging.getLogger(__name__)


class Layer(StrEnum):
    POSITIONS = "positions"
    ALERTS = "alerts"
    DEVICES = "devices"
    WARNINGS = "warnings"  # a grid cell's warning colour changed (hub/warnings/service.py)
    INCIDENTS = "incidents"
    DISPATCH = "dispatch"  # officers notified, answering, widening (hub/dispatch/service.py)
    MATCHES = "matches"  # possible face matches, reviews, outcomes (hub/matches/service.py)


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
    """The live events of one committed batch: exactly what it stored.

    Positions come from the rows the store accepted as fresh (owned, inside the timestamp
    window); an alert only when this batch inserted it, once, with the body that was stored:
    a resent or replayed alert id changes nothing in the store, so nothing on the map.
    """
    events: list[LiveEvent] = [
        LiveEvent(
            Layer.POSITIONS,
            row["site"],
            {
                "entity": row["entity"],
                "entity_kind": row["entity_kind"],
                "device": row["device"],
                "lon": row["lon"],
                "lat": row["lat"],
                "accuracy_m": row["accuracy_m"],
                "heading_deg": row["heading_deg"],
                "speed_mps": row["speed_mps"],
                "ts": row["ts"].isoformat(),
                "msg_id": row["msg_id"],
            },
            row["lon"],
            row["lat"],
        )
        for row in result.live_positions
    ]
    shown: set[str] = set()
    for item in batch:
        msg = item.message
        if isinstance(msg, Alert):
            # The first copy in the batch is the one inserted (hub.store keeps first bodies).
            if msg.id not in result.new_alert_ids or msg.id in shown:
                continue
            shown.add(msg.id)
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
        # Set by LiveRelay.attach: sends this replica's events to the other replicas.
        self.relay: Callable[[list[LiveEvent]], None] | None = None

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

    def publish(self, events: list[LiveEvent], *, relayed: bool = False) -> None:
        """Thread-safe and non-blocking. Events made on this replica are also relayed to the
        others (even while no browser is connected here); ``relayed`` ones came from another
        replica and are never sent on again."""
        if not events:
            return
        relay = self.relay
        if relay is not None and not relayed:
            try:
                relay(events)
            except Exception:  # the live map must never fail the change that made the event
                self.stats["relay_errors"] += 1
                log.exception("live relay failed for %d events", len(events))
        loop = self._loop
        if loop is None or loop.is_closed() or not self._clients:
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
