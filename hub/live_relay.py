"""Hub-to-hub relay of live events: one shared truth across hub replicas.

Replicas split device traffic through the broker's shared subscription, and each serves its own
browsers, so without this an operator on replica B never saw an acknowledgement made on replica
A, nor half of the alerts and positions. Every replica publishes each batch of live events it
makes (ingest, acknowledgements, incident changes, warnings) on its own relay topic and
subscribes, not shared, to every replica's: what arrives goes to its local browsers only, never
relayed again, and its own echo is dropped by the replica id in the topic before any decoding.

Why MQTT rather than PostgreSQL LISTEN/NOTIFY: every replica already holds a broker connection
with a reconnecting loop, the relay works on SQLite deployments too, and the broker's ACL
already decides who may publish there (hub accounts only; the topic has five segments, so no
device ACL can match it). NOTIFY payloads are capped at 8000 bytes, a position batch is not.
Delivery is best effort like the live stream itself: a browser resyncs from the API whenever
its WebSocket reconnects (docs/dashboard.md, "Live updates across replicas").
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.bus import Bus, BusError
from edge.protocol import ProtocolError, hub_relay_filter, hub_relay_topic, parse_hub_relay_topic
from edge.validators import SegmentId
from hub.live import Layer, LiveBroadcaster, LiveEvent

log = logging.getLogger(__name__)

RELAY_MAX_BYTES = 512 * 1024  # one frame; bigger batches are split, a bigger frame refused
RELAY_EVENTS_MAX = 2000  # events in one frame
ALL_SITES = "_all"


class RelayedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    layer: Layer
    site: SegmentId
    data: dict[str, Any]
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None


class RelayFrame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    origin: SegmentId
    events: Annotated[list[RelayedEvent], Field(min_length=1, max_length=RELAY_EVENTS_MAX)]


class LiveRelay:
    """Publishes this replica's live events for the others; hands theirs to local browsers."""

    def __init__(self, bus: Bus, live: LiveBroadcaster, *, replica: str, site: str | None):
        self.bus = bus
        self.live = live
        self.replica = replica
        self.scope = site or ALL_SITES
        self.topic = hub_relay_topic(self.scope, replica)
        # Its counters sit in the broadcaster's (GET /api/v1/stats, "live"), prefixed relay_.
        self.stats: Counter[str] = live.stats

    def attach(self) -> None:
        """Subscribe and start relaying; call before ``bus.start()``."""
        self.bus.subscribe(hub_relay_filter(self.scope), self.handle, qos=1)
        self.live.relay = self.send

    # --- out ---------------------------------------------------------------------------------

    def send(self, events: list[LiveEvent]) -> None:
        """Called by :meth:`LiveBroadcaster.publish` for events made here; never raises."""
        for frame in self._frames(events):
            # Positions are telemetry (QoS 0, like on the device side); a frame with a user's
            # change in it is QoS 1 so a busy broker does not drop an acknowledgement.
            qos = 0 if all(e.layer is Layer.POSITIONS for e in frame[1]) else 1
            try:
                self.bus.publish(self.topic, frame[0], qos=qos)
            except BusError as err:
                self.stats["relay_frames_unsent"] += 1
                log.warning("live relay: %d events not relayed: %s", len(frame[1]), err)
                continue
            self.stats["relay_frames_sent"] += 1
            self.stats["relay_events_sent"] += len(frame[1])

    def _frames(self, events: list[LiveEvent]) -> list[tuple[bytes, list[LiveEvent]]]:
        frames: list[tuple[bytes, list[LiveEvent]]] = []
        pending = list(events)
        while pending:
            chunk = pending[:RELAY_EVENTS_MAX]
            payload = self._encode(chunk)
            while len(payload) > RELAY_MAX_BYTES and len(chunk) > 1:
                chunk = chunk[: len(chunk) // 2]
                payload = self._encode(chunk)
            pending = pending[len(chunk) :]
            if len(payload) > RELAY_MAX_BYTES:
                self.stats["relay_events_too_large"] += 1
                log.warning(
                    "live relay: a %s event of %d bytes is too large", chunk[0].layer, len(payload)
                )
                continue
            frames.append((payload, chunk))
        return frames

    def _encode(self, events: list[LiveEvent]) -> bytes:
        body = {
            "v": 1,
            "origin": self.replica,
            "events": [
                {"layer": e.layer.value, "site": e.site, "data": e.data, "lon": e.lon, "lat": e.lat}
                for e in events
            ],
        }
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()

    # --- in ----------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> None:
        """A frame from the broker (its network thread): refuse anything malformed, counted."""
        try:
            _, replica = parse_hub_relay_topic(topic)
        except ProtocolError:
            self.stats["relay_frames_rejected"] += 1
            return
        if replica == self.replica:
            self.stats["relay_own_echoes"] += 1  # the broker sends a subscriber its own publishes
            return
        if len(payload) > RELAY_MAX_BYTES:
            self.stats["relay_frames_rejected"] += 1
            log.warning("live relay: refused a %d-byte frame from %s", len(payload), replica)
            return
        try:
            frame = RelayFrame.model_validate_json(payload)
        except ValidationError as err:
            self.stats["relay_frames_rejected"] += 1
            log.warning("live relay: refused a frame from %s: %s", replica, err.errors()[0]["msg"])
            return
        if frame.origin != replica:
            # Only hubs can publish here; a frame naming another replica is a bug, not data.
            self.stats["relay_frames_rejected"] += 1
            log.warning("live relay: frame on %s names origin %s", replica, frame.origin)
            return
        self.stats["relay_frames_received"] += 1
        self.stats["relay_events_received"] += len(frame.events)
        self.live.publish(
            [LiveEvent(e.layer, e.site, e.data, e.lon, e.lat) for e in frame.events],
            relayed=True,
        )
