"""Anonymous multi-object tracking in site coordinates: constant-velocity prediction, greedy
nearest-neighbour association inside a gate, an alpha-beta update. Track ids are stable for as
long as the object is followed, unique across restarts, and say nothing about who it is.
Association, lifecycle and ids are the shared :mod:`edge.tracking` core; this module is the
LiDAR's measurement model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edge.lidar.clustering import Cluster
from edge.tracking import TrackCore, TrackIds, TrackState

ALPHA = 0.6
BETA = 0.25


@dataclass(frozen=True, slots=True)
class TrackerParams:
    gate_m: float = 1.0
    confirm_hits: int = 3
    max_missed_s: float = 1.0
    max_speed_mps: float = 8.0


@dataclass(slots=True, kw_only=True)
class Track(TrackState):
    x_m: float
    y_m: float
    t_s: float
    first_t_s: float
    vx: float = 0.0
    vy: float = 0.0
    path: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def speed_mps(self) -> float:
        return math.hypot(self.vx, self.vy)

    @property
    def heading_deg(self) -> float:
        """Compass heading (0 = north, clockwise) in the site frame."""
        return math.degrees(math.atan2(self.vx, self.vy)) % 360.0


# Predicted (x, y) and the association gate for that prediction, in metres.
Prediction = tuple[float, float, float]


class PointModel:
    """The LiDAR's measurement model for :class:`~edge.tracking.TrackCore`: cluster centres in
    site metres, constant velocity per second with a speed cap, a gate that widens with time."""

    def __init__(self, params: TrackerParams) -> None:
        self.p = params

    def predict(self, track: Track, t: float) -> Prediction:
        p = self.p
        dt = max(0.0, t - track.t_s)
        gate = p.gate_m + min(dt, p.max_missed_s) * p.max_speed_mps * 0.25
        return track.x_m + track.vx * dt, track.y_m + track.vy * dt, gate

    def cost(self, track: Track, predicted: Prediction, measurement: Cluster) -> float | None:
        d = math.hypot(measurement.x_m - predicted[0], measurement.y_m - predicted[1])
        return d if d <= predicted[2] else None

    def correct(self, track: Track, predicted: Prediction, measurement: Cluster,
                t: float) -> None:
        dt = t - track.t_s
        rx, ry = measurement.x_m - predicted[0], measurement.y_m - predicted[1]
        track.x_m, track.y_m = predicted[0] + ALPHA * rx, predicted[1] + ALPHA * ry
        if dt > 0:
            track.vx += BETA * rx / dt
            track.vy += BETA * ry / dt
            speed = math.hypot(track.vx, track.vy)
            if speed > self.p.max_speed_mps:
                scale = self.p.max_speed_mps / speed
                track.vx, track.vy = track.vx * scale, track.vy * scale
        track.t_s = t

    def coast(self, track: Track, predicted: Prediction, t: float) -> None:
        """A missed scan leaves the last fix; the prediction is only for association."""

    def alive(self, track: Track, t: float) -> bool:
        return t - track.t_s <= self.p.max_missed_s

    def spawn(self, track_id: str, measurement: Cluster, t: float) -> Track:
        return Track(id=track_id, x_m=measurement.x_m, y_m=measurement.y_m, t_s=t, first_t_s=t)


class Tracker:
    """``ids`` (see :class:`~edge.tracking.TrackIds`) decide the id format; the service passes
    the persistent ones of its data directory so ids never repeat across restarts."""

    def __init__(self, params: TrackerParams, id_prefix: str | None = None,
                 ids: TrackIds | None = None) -> None:
        self.p = params
        if ids is None:
            ids = TrackIds(id_prefix) if id_prefix is not None else TrackIds.ephemeral()
        self.core: TrackCore[Track, Cluster, Prediction] = TrackCore(
            PointModel(params), confirm_hits=params.confirm_hits, ids=ids)

    @property
    def prefix(self) -> str:
        return self.core.ids.prefix

    @property
    def tracks(self) -> list[Track]:
        return self.core.tracks

    @property
    def created(self) -> int:
        return self.core.created

    @property
    def confirmed_total(self) -> int:
        return self.core.confirmed_total

    def update(self, clusters: list[Cluster], t_s: float) -> list[Track]:
        """Advance to ``t_s`` with this scan's clusters; return the confirmed live tracks."""
        return self.core.update(clusters, t_s)
