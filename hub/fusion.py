"""Multi-gateway position fusion: the sightings of every wristband gateway of a site, one
weighted least-squares position per band.

A gateway alone can only trilaterate with its own receivers; at a site where bands walk between
gateways, each often hears a band on one or two receivers and can only say "near receiver X".
Gateways therefore publish every fresh (band, receiver) smoothed RSSI with that receiver's place
and calibration (:class:`edge.protocol.SightingBatch`). The hub keeps, per (site, band), the
newest sighting of each receiver inside a short window; when three or more distinct receivers
(``(gateway, receiver)`` pairs) heard the band within it, it ranges each with its own calibration
and trilaterates (:mod:`edge.positioning`).

Conventions (see docs/wristband.md):

- a fused position is stored like any other wearer position, with ``device`` =
  :data:`FUSION_DEVICE` (``"fusion"``, reserved: do not provision a device of that name);
- its ``ts`` is the newest sighting it used; its ``accuracy_m`` the 1-sigma radius of the fit;
- it replaces a band's latest position when that one is older, or when it is less accurate
  and at most ``window_s`` newer (a gateway's "nearest receiver" guess must not hide a better
  fused fix); the position history keeps both.

The window is in the gateways' (synchronised) clocks, from the sightings' timestamps, so the
result does not depend on when the hub got round to a batch. Pure and single-threaded: the
ingest thread calls it after each committed batch.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from edge.positioning import MIN_ANCHORS, Calibration, RangeReading, locate
from edge.projection import LocalProjection
from edge.protocol import EntityKind, Inbound, Position, Sighting, SightingBatch

log = logging.getLogger(__name__)

FUSION_DEVICE = "fusion"
MAX_ACCURACY_M = 100_000.0


@dataclass(frozen=True, slots=True)
class FusedPosition:
    site: str
    position: Position
    receivers: int
    gateways: int


@dataclass(slots=True)
class _Window:
    # (gateway device, receiver id) -> newest sighting of that receiver
    sightings: dict[tuple[str, str], Sighting] = field(default_factory=dict)
    last_fused_ts: datetime | None = None
    changed: bool = False  # a sighting arrived since the last fused position


class SightingFusion:
    def __init__(
        self,
        *,
        window_s: float = 8.0,
        min_receivers: int = MIN_ANCHORS,
        min_interval_s: float = 0.0,
        default_rssi_sigma_db: float = 4.0,
        max_bands: int = 50_000,
    ) -> None:
        if min_receivers < MIN_ANCHORS:
            raise ValueError(f"min_receivers must be at least {MIN_ANCHORS}")
        if window_s <= 0 or min_interval_s < 0 or default_rssi_sigma_db <= 0 or max_bands < 1:
            raise ValueError("window_s, default_rssi_sigma_db and max_bands must be positive")
        self.window = timedelta(seconds=window_s)
        self.window_s = window_s
        self.min_receivers = min_receivers
        self.min_interval = timedelta(seconds=min_interval_s)
        self.default_rssi_sigma_db = default_rssi_sigma_db
        self.max_bands = max_bands
        self._bands: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self.stats: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._bands)

    def on_batch(self, batch: Iterable[Inbound]) -> list[FusedPosition]:
        """Fuse the sighting batches of one committed ingest batch, message by message: each
        gateway's batch refreshes the fix with its newest readings (``min_interval_s`` > 0
        thins the output), and a backlog of several ticks still gives a position per tick."""
        out: list[FusedPosition] = []
        for item in batch:
            msg = item.message
            if isinstance(msg, SightingBatch):
                out += self.fuse(self.add(msg.site, msg.device, msg.sightings))
        return out

    def add(self, site: str, device: str, sightings: Sequence[Sighting]) -> list[tuple[str, str]]:
        """Record sightings of one gateway; returns the (site, entity) keys they touched, once
        each."""
        touched: dict[tuple[str, str], None] = {}
        for s in sightings:
            key = (site, s.entity)
            window = self._bands.get(key)
            if window is None:
                window = self._bands[key] = _Window()
                if len(self._bands) > self.max_bands:
                    self._bands.popitem(last=False)
                    self.stats["bands_evicted"] += 1
            else:
                self._bands.move_to_end(key)
            rkey = (device, s.receiver)
            old = window.sightings.get(rkey)
            if old is not None and old.ts > s.ts:
                self.stats["sightings_out_of_order"] += 1
                continue
            window.sightings[rkey] = s
            window.changed = True
            self.stats["sightings"] += 1
            touched[key] = None
        return list(touched)

    def fuse(self, keys: Iterable[tuple[str, str]]) -> list[FusedPosition]:
        out: list[FusedPosition] = []
        for key in keys:
            window = self._bands.get(key)
            if window is None:
                continue
            fused = self._fuse_one(key, window)
            if fused is not None:
                out.append(fused)
        return out

    def _fuse_one(self, key: tuple[str, str], window: _Window) -> FusedPosition | None:
        newest = max(s.ts for s in window.sightings.values())
        for rkey in [k for k, s in window.sightings.items() if s.ts < newest - self.window]:
            # Gateways must deliver within the window of each other: a backlog flushed after
            # an outage is too old to fuse with what the others sent since.
            del window.sightings[rkey]
            self.stats["sightings_expired"] += 1
        fresh = list(window.sightings.items())
        if len(fresh) < self.min_receivers:
            self.stats["too_few_receivers"] += 1
            return None
        if not window.changed:
            return None
        last = window.last_fused_ts
        if last is not None and newest < last + self.min_interval:
            self.stats["rate_limited"] += 1
            return None
        sightings = [s for _, s in fresh]
        proj = LocalProjection(
            float(np.mean([s.lon for s in sightings])), float(np.mean([s.lat for s in sightings]))
        )
        xs, ys = proj.to_xy(
            np.array([s.lon for s in sightings]), np.array([s.lat for s in sightings])
        )
        readings = [
            RangeReading(
                float(x),
                float(y),
                s.rssi_dbm,
                Calibration(s.tx_power_1m_dbm, s.path_loss_exponent),
                s.rssi_sigma_db or self.default_rssi_sigma_db,
            )
            for x, y, s in zip(xs, ys, sightings, strict=True)
        ]
        est = locate(readings)
        lon, lat = proj.to_lonlat(est.x, est.y)
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            self.stats["off_the_map"] += 1
            return None
        window.last_fused_ts = newest
        window.changed = False
        self.stats["fused"] += 1
        site, entity = key
        position = Position(
            entity=entity,
            entity_kind=EntityKind.WEARER,
            lon=lon,
            lat=lat,
            accuracy_m=round(min(est.accuracy_m, MAX_ACCURACY_M), 1),
            ts=newest,
        )
        return FusedPosition(
            site, position, receivers=len(fresh), gateways=len({device for (device, _), _ in fresh})
        )
