"""Multi-object tracker: IoU association on motion-predicted boxes, track ids unique across
restarts. Association, lifecycle and ids are the shared :mod:`edge.tracking` core; this module is
the camera's measurement model.

Each track carries a constant-velocity model of its box centre and size (an alpha-beta filter,
the steady-state form of a Kalman filter with constant gains), so a person stays associated
through a few missed detections and at low frame rates where boxes of one person in two frames
barely overlap. Association is greedy on a combined cost: IoU with the predicted box, or, when
they do not overlap, centre distance relative to the box height.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from edge.config import StrictModel
from edge.tracking import TrackCore, TrackIds, TrackState
from edge.vision.boxes import Box, Detection, center, foot_point, iou


class TrackerConfig(StrictModel):
    iou_min: Annotated[float, Field(ge=0, le=1)] = 0.1
    max_center_distance_rel: Annotated[float, Field(gt=0, le=5)] = 0.6
    min_hits: Annotated[int, Field(ge=1, le=100)] = 2
    max_missed_frames: Annotated[int, Field(ge=0, le=1000)] = 8
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.6
    beta: Annotated[float, Field(ge=0, le=1)] = 0.2
    history_len: Annotated[int, Field(ge=2, le=10_000)] = 64
    # An established track slower than this (centre speed per frame, relative to its box
    # height) is standing still: only an overlapping detection continues it. Without this a
    # passer-by detected next to a still person takes over the person's track (and id).
    still_speed_rel: Annotated[float, Field(ge=0, le=1)] = 0.01


@dataclass(slots=True, kw_only=True)
class Track(TrackState):
    box: Box
    label: str
    score: float
    first_ts: float
    last_ts: float
    velocity: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    history: list[tuple[float, float]] = field(default_factory=list)

    @property
    def foot(self) -> tuple[float, float]:
        return foot_point(self.box)

    def predicted(self) -> Box:
        cx, cy, w, h = _cxcywh(self.box)
        vx, vy, vw, vh = self.velocity
        return _box(cx + vx, cy + vy, max(1.0, w + vw), max(1.0, h + vh))


def _cxcywh(b: Box) -> tuple[float, float, float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1])


def _box(cx: float, cy: float, w: float, h: float) -> Box:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


class BoxModel:
    """The camera's measurement model for :class:`~edge.tracking.TrackCore`: boxes in pixels,
    an alpha-beta filter on centre and size, per frame (not per second)."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config

    def predict(self, track: Track, t: float) -> Box:
        return track.predicted()

    def cost(self, track: Track, predicted: Box, measurement: Detection) -> float | None:
        if measurement.label != track.label:
            return None
        cfg = self.config
        overlap = iou(predicted, measurement.box)
        if overlap >= cfg.iou_min:
            return 1.0 - overlap
        ph = _cxcywh(predicted)[3]
        vx, vy = track.velocity[0], track.velocity[1]
        if (track.hits >= cfg.min_hits
                and (vx * vx + vy * vy) ** 0.5 < cfg.still_speed_rel * max(ph, 1.0)):
            return None
        pc, dc = center(predicted), center(measurement.box)
        dist = ((pc[0] - dc[0]) ** 2 + (pc[1] - dc[1]) ** 2) ** 0.5 / max(ph, 1.0)
        return 1.0 + dist if dist <= cfg.max_center_distance_rel else None

    def correct(self, track: Track, predicted: Box, measurement: Detection, t: float) -> None:
        cfg = self.config
        p = _cxcywh(predicted)
        m = _cxcywh(measurement.box)
        resid = tuple(mi - pi for mi, pi in zip(m, p, strict=True))
        est = tuple(pi + cfg.alpha * ri for pi, ri in zip(p, resid, strict=True))
        v = track.velocity
        track.velocity = (v[0] + cfg.beta * resid[0], v[1] + cfg.beta * resid[1],
                          v[2] + cfg.beta * resid[2] * 0.5, v[3] + cfg.beta * resid[3] * 0.5)
        track.box = _box(est[0], est[1], max(1.0, est[2]), max(1.0, est[3]))
        track.score = measurement.score
        track.last_ts = t
        track.history.append(track.foot)
        if len(track.history) > cfg.history_len:
            del track.history[: len(track.history) - cfg.history_len]

    def coast(self, track: Track, predicted: Box, t: float) -> None:
        track.box = predicted

    def alive(self, track: Track, t: float) -> bool:
        return track.missed <= self.config.max_missed_frames

    def spawn(self, track_id: str, measurement: Detection, t: float) -> Track:
        track = Track(id=track_id, box=measurement.box, label=measurement.label,
                      score=measurement.score, first_ts=t, last_ts=t)
        track.history.append(track.foot)
        return track


class Tracker:
    """Ids come from ``ids`` (see :class:`~edge.tracking.TrackIds`): the camera service passes
    the persistent ones of its data directory, so ids never repeat across restarts."""

    def __init__(self, config: TrackerConfig | None = None, ids: TrackIds | None = None
                 ) -> None:
        self.config = config or TrackerConfig()
        self.core: TrackCore[Track, Detection, Box] = TrackCore(
            BoxModel(self.config), confirm_hits=self.config.min_hits, ids=ids)

    @property
    def tracks(self) -> list[Track]:
        return self.core.tracks

    def update(self, detections: Sequence[Detection], ts: float,
               looked: Sequence[Box] | None = None) -> list[Track]:
        """Feed one frame's detections; returns the confirmed tracks seen in this frame.

        ``looked`` is where the detector searched (frame pixels; None = the whole frame). A
        track mostly outside it keeps its state instead of counting a miss: a person standing
        still outside every motion region has not left, and is returned as seen."""
        check: Callable[[Track, Box], bool] | None = None
        if looked is not None:
            regions = list(looked)

            def looked_at(_track: Track, predicted: Box) -> bool:
                return coverage(predicted, regions) >= LOOKED_MIN_COVERAGE

            check = looked_at
        return [t for t in self.core.update(detections, ts, check) if t.missed == 0]

    def visible(self) -> list[Track]:
        """The confirmed tracks as last seen, for a frame the detector did not look at."""
        return [t for t in self.core.tracks if t.confirmed and t.missed == 0]

    def shift(self, dx: float, dy: float) -> None:
        """Move every track by a global image shift (the camera panned or shook), so the
        next detection of the same person still falls on its track."""
        for track in self.core.tracks:
            b = track.box
            track.box = (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)


# A track counts as looked at when the detector searched at least this share of its box: HOG
# and the tensor detectors rarely find a person cut in half by a region's edge.
LOOKED_MIN_COVERAGE = 0.5


def coverage(box: Box, regions: Sequence[Box]) -> float:
    """The largest share of ``box``'s area inside one of ``regions``."""
    area = max(1e-9, (box[2] - box[0]) * (box[3] - box[1]))
    best = 0.0
    for r in regions:
        w = min(box[2], r[2]) - max(box[0], r[0])
        h = min(box[3], r[3]) - max(box[1], r[1])
        if w > 0 and h > 0:
            best = max(best, w * h / area)
    return best
