"""Per-device flood accounting for hub ingest: one device cannot starve the others.

A token bucket per device meters its telemetry (positions, health, sightings: QoS 0, lossy by
contract). A device over its rate has the excess dropped in the MQTT callback *before* the
payload is decoded, so a flood costs the hub a topic split and a dict lookup per message and
the hub keeps draining the broker fast enough that the broker never has to drop other devices'
messages from the hub's queue. Drops are counted by device and reason and the device is
flagged as flooding for ``flag_hold_s`` after its last drop.

Alerts, replies and state are never metered here: alerts are QoS 1 and must all be stored
(their device's outbox resends anything unacked), replies answer the hub's own commands, and
state is the device's online/offline word.

The topic is split by hand rather than with :func:`edge.protocol.parse_topic`, which validates
every segment: this path runs once per flooded message and only needs the device key; a
malformed topic is admitted and refused, counted, by the decoder.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import Field

from edge.config import StrictModel
from edge.protocol import CHANNEL_QOS, TOPIC_PREFIX, Channel

METERED_CHANNELS = frozenset(c.value for c in Channel if CHANNEL_QOS[c] == 0)
"""Telemetry a device may lose under its own flood (the QoS 0 channels); the rest always
passes."""

_TOPIC_START = TOPIC_PREFIX + "/"
_PREFIX_PARTS = len(TOPIC_PREFIX.split("/"))
_TOPIC_PARTS = _PREFIX_PARTS + 4  # <prefix>/<site>/<kind>/<device>/<channel>


class FloodConfig(StrictModel):
    """Per-device telemetry rate limit at the hub (docs/hub.md, "Flooding devices")."""

    device_rate_per_s: Annotated[float, Field(gt=0, le=1_000_000)] = Field(
        default=200.0,
        description="telemetry messages per second one device may send, sustained",
    )
    device_burst: Annotated[int, Field(ge=1, le=10_000_000)] = Field(
        default=2000, description="messages a quiet device may send at once before metering"
    )
    flag_hold_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=60.0, description="a device stays flagged as flooding this long after a drop"
    )
    max_devices: Annotated[int, Field(ge=10, le=10_000_000)] = Field(
        default=100_000, description="devices tracked at once; idle ones are forgotten first"
    )


@dataclass(slots=True)
class _Bucket:
    site: str
    device: str
    tokens: float
    last: float
    dropped: Counter[str] = field(default_factory=Counter)
    last_drop: float | None = None
    first_drop: float | None = None


@dataclass(frozen=True, slots=True)
class FloodingDevice:
    site: str
    device: str
    dropped: dict[str, int]
    since: datetime
    last_drop_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "site": self.site,
            "device": self.device,
            "dropped": self.dropped,
            "dropped_total": sum(self.dropped.values()),
            "since": self.since.isoformat(),
            "last_drop_at": self.last_drop_at.isoformat(),
        }


class FloodGuard:
    """Token buckets per (site, device). ``admit`` runs on the MQTT thread; the snapshot
    methods run on API threads, so both take one short lock.

    ``clock`` is monotonic seconds and ``wall`` gives the UTC time for reports; both are
    injectable so tests move time instead of sleeping.
    """

    def __init__(
        self,
        config: FloodConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config or FloodConfig()
        self._clock = clock
        self._wall = wall
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()
        self.dropped_total = 0
        self.forgotten = 0  # buckets evicted to stay within max_devices

    def admit(self, topic: str) -> bool:
        """True to process the message, False to drop it (already counted)."""
        if not topic.startswith(_TOPIC_START):
            return True
        parts = topic.split("/")
        if len(parts) != _TOPIC_PARTS or parts[-1] not in METERED_CHANNELS:
            return True
        site, device, channel = parts[_PREFIX_PARTS], parts[_PREFIX_PARTS + 2], parts[-1]
        cfg = self.config
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((site, device))
            if bucket is None:
                if len(self._buckets) >= cfg.max_devices:
                    self._forget_idle(now)
                bucket = _Bucket(site, device, float(cfg.device_burst), now)
                self._buckets[(site, device)] = bucket
            else:
                bucket.tokens = min(
                    float(cfg.device_burst),
                    bucket.tokens + (now - bucket.last) * cfg.device_rate_per_s,
                )
                bucket.last = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return True
            bucket.dropped[f"{channel}_rate_limited"] += 1
            if bucket.last_drop is None or now - bucket.last_drop > cfg.flag_hold_s:
                bucket.first_drop = now  # a new flooding episode
            bucket.last_drop = now
            self.dropped_total += 1
            return False

    def _forget_idle(self, now: float) -> None:
        """Make room: forget devices not flagged, longest idle first (half the table, so the
        sort is paid once per many new devices, not per message)."""
        hold = self.config.flag_hold_s
        idle = sorted(
            (b for b in self._buckets.values() if b.last_drop is None or now - b.last_drop > hold),
            key=lambda b: b.last,
        )
        victims = idle[: max(1, len(self._buckets) // 2)] or sorted(
            self._buckets.values(), key=lambda b: b.last
        )[:1]
        for b in victims:
            del self._buckets[(b.site, b.device)]
        self.forgotten += len(victims)

    def flooding(self) -> list[FloodingDevice]:
        """Devices that dropped telemetry within ``flag_hold_s``, worst first."""
        now = self._clock()
        wall_now = self._wall()
        hold = self.config.flag_hold_s
        out: list[FloodingDevice] = []
        with self._lock:
            for b in self._buckets.values():
                if b.last_drop is None or now - b.last_drop > hold:
                    continue
                first = b.first_drop if b.first_drop is not None else b.last_drop
                out.append(
                    FloodingDevice(
                        site=b.site,
                        device=b.device,
                        dropped=dict(b.dropped),
                        since=wall_now - timedelta(seconds=now - first),
                        last_drop_at=wall_now - timedelta(seconds=now - b.last_drop),
                    )
                )
        out.sort(key=lambda f: -sum(f.dropped.values()))
        return out

    def dropped_by_device(self) -> dict[str, dict[str, int]]:
        """Every drop since start, ``"<site>/<device>" -> reason -> count``."""
        with self._lock:
            return {
                f"{b.site}/{b.device}": dict(b.dropped)
                for b in self._buckets.values()
                if b.dropped
            }

    def stats(self) -> dict[str, object]:
        flooding = self.flooding()
        return {
            "device_rate_per_s": self.config.device_rate_per_s,
            "device_burst": self.config.device_burst,
            "dropped_total": self.dropped_total,
            "dropped_by_device": self.dropped_by_device(),
            "flooding": [f.as_dict() for f in flooding],
            "tracked_devices": len(self._buckets),
            "forgotten_devices": self.forgotten,
        }
