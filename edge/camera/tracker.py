"""Multi-object tracker: IoU association on motion-predicted boxes, stable integer track ids.

Each track carries a constant-velocity model of its box centre and size (an alpha-beta filter,
the steady-state form of a Kalman filter with constant gains), so a person stays associated
through a few missed detections and at low frame rates where boxes of one person in two frames
barely overlap. Association is greedy on a combined cost: IoU with the predicted box, or, when
they do not overlap, centre distance relative to the box height.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from edge.camera.boxes import Box, Detection, center, foot_point, iou
from edge.config import StrictModel


class TrackerConfig(StrictModel):
    iou_min: Annotated[float, Field(ge=0, le=1)] = 0.1
    max_center_distance_rel: Annotated[float, Field(gt=0, le=5)] = 0.6
    min_hits: Annotated[int, Field(ge=1, le=100)] = 2
    max_missed_frames: Annotated[int, Field(ge=0, le=1000)] = 8
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.6
    beta: Annotated[float, Field(ge=0, le=1)] = 0.2
    history_len: Annotated[int, Field(ge=2, le=10_000)] = 64


@dataclass
class Track:
    id: int
    box: Box
    label: str
    score: float
    first_ts: float
    last_ts: float
    velocity: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    hits: int = 1
    missed: int = 0
    confirmed: bool = False
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


class Tracker:
    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._ids = itertools.count(1)
        self.tracks: list[Track] = []

    def update(self, detections: Sequence[Detection], ts: float) -> list[Track]:
        """Feed one frame's detections; returns the confirmed tracks seen in this frame."""
        cfg = self.config
        predicted = [t.predicted() for t in self.tracks]
        pairs: list[tuple[float, int, int]] = []
        for ti, pbox in enumerate(predicted):
            _, _, _, ph = _cxcywh(pbox)
            pc = center(pbox)
            for di, det in enumerate(detections):
                if det.label != self.tracks[ti].label:
                    continue
                overlap = iou(pbox, det.box)
                dc = center(det.box)
                dist = ((pc[0] - dc[0]) ** 2 + (pc[1] - dc[1]) ** 2) ** 0.5 / max(ph, 1.0)
                if overlap >= cfg.iou_min:
                    pairs.append((1.0 - overlap, ti, di))
                elif dist <= cfg.max_center_distance_rel:
                    pairs.append((1.0 + dist, ti, di))
        pairs.sort()
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            self._correct(self.tracks[ti], predicted[ti], detections[di], ts)
        for ti, track in enumerate(self.tracks):
            if ti not in used_t:
                track.missed += 1
                track.box = predicted[ti]
        self.tracks = [t for t in self.tracks if t.missed <= cfg.max_missed_frames]
        for di, det in enumerate(detections):
            if di not in used_d:
                track = Track(id=next(self._ids), box=det.box, label=det.label, score=det.score,
                              first_ts=ts, last_ts=ts, confirmed=cfg.min_hits <= 1)
                track.history.append(track.foot)
                self.tracks.append(track)
        return [t for t in self.tracks if t.confirmed and t.missed == 0]

    def _correct(self, track: Track, pbox: Box, det: Detection, ts: float) -> None:
        cfg = self.config
        p = _cxcywh(pbox)
        m = _cxcywh(det.box)
        resid = tuple(mi - pi for mi, pi in zip(m, p, strict=True))
        est = tuple(pi + cfg.alpha * ri for pi, ri in zip(p, resid, strict=True))
        v = track.velocity
        track.velocity = (v[0] + cfg.beta * resid[0], v[1] + cfg.beta * resid[1],
                          v[2] + cfg.beta * resid[2] * 0.5, v[3] + cfg.beta * resid[3] * 0.5)
        track.box = _box(est[0], est[1], max(1.0, est[2]), max(1.0, est[3]))
        track.score = det.score
        track.hits += 1
        track.missed = 0
        track.last_ts = ts
        if track.hits >= cfg.min_hits:
            track.confirmed = True
        track.history.append(track.foot)
        if len(track.history) > cfg.history_len:
            del track.history[: len(track.history) - cfg.history_len]
