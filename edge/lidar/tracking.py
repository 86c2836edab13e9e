"""Anonymous multi-object tracking in site coordinates: constant-velocity prediction, greedy
nearest-neighbour association inside a gate, an alpha-beta update. Track ids are stable for as
long as the object is followed and say nothing about who it is."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field

from edge.lidar.clustering import Cluster

ALPHA = 0.6
BETA = 0.25


@dataclass(frozen=True, slots=True)
class TrackerParams:
    gate_m: float = 1.0
    confirm_hits: int = 3
    max_missed_s: float = 1.0
    max_speed_mps: float = 8.0


@dataclass(slots=True)
class Track:
    id: str
    x_m: float
    y_m: float
    t_s: float
    first_t_s: float
    vx: float = 0.0
    vy: float = 0.0
    hits: int = 1
    confirmed: bool = False
    path: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def speed_mps(self) -> float:
        return math.hypot(self.vx, self.vy)

    @property
    def heading_deg(self) -> float:
        """Compass heading (0 = north, clockwise) in the site frame."""
        return math.degrees(math.atan2(self.vx, self.vy)) % 360.0


class Tracker:
    def __init__(self, params: TrackerParams, id_prefix: str | None = None) -> None:
        self.p = params
        # A fresh random prefix per run: ids never repeat across restarts and carry nothing.
        self.prefix = id_prefix if id_prefix is not None else f"t{secrets.token_hex(3)}-"
        self._next = 1
        self.tracks: list[Track] = []
        self.created = 0
        self.confirmed_total = 0

    def update(self, clusters: list[Cluster], t_s: float) -> list[Track]:
        """Advance to ``t_s`` with this scan's clusters; return the confirmed live tracks."""
        p = self.p
        pairs: list[tuple[float, int, int]] = []
        predicted: list[tuple[float, float]] = []
        for ti, tr in enumerate(self.tracks):
            dt = max(0.0, t_s - tr.t_s)
            px, py = tr.x_m + tr.vx * dt, tr.y_m + tr.vy * dt
            predicted.append((px, py))
            gate = p.gate_m + min(dt, p.max_missed_s) * p.max_speed_mps * 0.25
            for ci, c in enumerate(clusters):
                d = math.hypot(c.x_m - px, c.y_m - py)
                if d <= gate:
                    pairs.append((d, ti, ci))
        pairs.sort()
        used_t: set[int] = set()
        used_c: set[int] = set()
        for _, ti, ci in pairs:
            if ti in used_t or ci in used_c:
                continue
            used_t.add(ti)
            used_c.add(ci)
            self._correct(self.tracks[ti], predicted[ti], clusters[ci], t_s)
        for ci, c in enumerate(clusters):
            if ci not in used_c:
                self.tracks.append(Track(f"{self.prefix}{self._next}", c.x_m, c.y_m, t_s, t_s))
                self._next += 1
                self.created += 1
        self.tracks = [tr for tr in self.tracks if t_s - tr.t_s <= p.max_missed_s]
        return [tr for tr in self.tracks if tr.confirmed]

    def _correct(self, tr: Track, pred: tuple[float, float], c: Cluster, t_s: float) -> None:
        dt = t_s - tr.t_s
        rx, ry = c.x_m - pred[0], c.y_m - pred[1]
        tr.x_m, tr.y_m = pred[0] + ALPHA * rx, pred[1] + ALPHA * ry
        if dt > 0:
            tr.vx += BETA * rx / dt
            tr.vy += BETA * ry / dt
            speed = math.hypot(tr.vx, tr.vy)
            if speed > self.p.max_speed_mps:
                scale = self.p.max_speed_mps / speed
                tr.vx, tr.vy = tr.vx * scale, tr.vy * scale
        tr.t_s = t_s
        tr.hits += 1
        if not tr.confirmed and tr.hits >= self.p.confirm_hits:
            tr.confirmed = True
            self.confirmed_total += 1
