"""Perimeter rules on tracks: polygon intrusion with a minimum dwell, and directional counting
lines with hysteresis (jitter on the line never counts twice)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from edge.lidar.geometry import Point, point_in_polygon, segments_intersect, side_of_line
from edge.lidar.tracking import Track


@dataclass(frozen=True, slots=True)
class Intrusion:
    zone: str
    track: str
    x_m: float
    y_m: float
    entered_t_s: float
    t_s: float


@dataclass(frozen=True, slots=True)
class Crossing:
    line: str
    track: str
    direction: str
    x_m: float
    y_m: float
    t_s: float


@dataclass
class ZoneRule:
    id: str
    polygon: list[Point]
    min_dwell_s: float
    _entered: dict[str, float] = field(default_factory=dict)
    _alerted: set[str] = field(default_factory=set)
    inside_now: int = 0

    def carry_over(self, old: ZoneRule) -> None:
        """Take over ``old``'s per-track state when the polygon is unchanged (a dwell edit
        keeps who is inside since when). A moved polygon starts afresh: a person already
        inside it is alerted again after ``min_dwell_s``."""
        if old.polygon == self.polygon:
            self._entered = dict(old._entered)
            self._alerted = set(old._alerted)
            self.inside_now = old.inside_now

    def update(self, tracks: list[Track], t_s: float) -> list[Intrusion]:
        events: list[Intrusion] = []
        present: set[str] = set()
        for tr in tracks:
            if not point_in_polygon((tr.x_m, tr.y_m), self.polygon):
                continue
            present.add(tr.id)
            entered = self._entered.setdefault(tr.id, t_s)
            if tr.id not in self._alerted and t_s - entered >= self.min_dwell_s:
                self._alerted.add(tr.id)
                events.append(Intrusion(self.id, tr.id, tr.x_m, tr.y_m, entered, t_s))
        # Leaving (or the track ending) re-arms the rule for that track.
        for gone in set(self._entered) - present:
            del self._entered[gone]
            self._alerted.discard(gone)
        self.inside_now = len(present)
        return events


@dataclass
class LineRule:
    """``in`` is left-to-right seen from ``a`` looking at ``b``."""

    id: str
    a: Point
    b: Point
    hysteresis_m: float
    in_name: str = "in"
    out_name: str = "out"
    counts: Counter[str] = field(default_factory=Counter)
    _side: dict[str, tuple[int, Point]] = field(default_factory=dict)

    def carry_over(self, old: LineRule) -> None:
        """Counts follow the line id (when the direction names stay); the side each track is
        on only follows an unchanged line, as a moved line would count crossings nobody made."""
        if (old.in_name, old.out_name) == (self.in_name, self.out_name):
            self.counts = old.counts.copy()
        if (old.a, old.b, old.hysteresis_m) == (self.a, self.b, self.hysteresis_m):
            self._side = dict(old._side)

    def update(self, tracks: list[Track], t_s: float) -> list[Crossing]:
        events: list[Crossing] = []
        live: set[str] = set()
        for tr in tracks:
            live.add(tr.id)
            here = (tr.x_m, tr.y_m)
            dist = side_of_line(here, self.a, self.b)
            if abs(dist) <= self.hysteresis_m:
                continue  # inside the dead band: keep the last firm side
            side = 1 if dist > 0 else -1
            before = self._side.get(tr.id)
            self._side[tr.id] = (side, here)
            if before is None or before[0] == side:
                continue
            if not segments_intersect(before[1], here, self.a, self.b):
                continue  # changed side beyond the end of the line
            direction = self.in_name if before[0] > 0 else self.out_name
            self.counts[direction] += 1
            events.append(Crossing(self.id, tr.id, direction, tr.x_m, tr.y_m, t_s))
        for gone in set(self._side) - live:
            del self._side[gone]
        return events
