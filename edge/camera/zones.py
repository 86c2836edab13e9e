"""Zones in image space and the events they raise: intrusion into a polygon, directional line
crossing, loitering by dwell time.

Every zone looks at a track's foot point (bottom centre of its box), filters by class and
confidence, and raises at most one event per track per zone within the zone's cool-down.
Line-crossing counts include every crossing, also those whose alert the cool-down suppressed.

Sides of a line are named as seen walking along it from ``a`` to ``b`` on the image: "left" is
on your left hand. A crossing needs the foot point to get ``min_offset_px`` past the line, so a
person standing on the line does not flicker into a stream of crossings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge.config import StrictModel
from edge.protocol import AlertKind, Severity
from edge.validators import SegmentId
from edge.vision.tracker import Track

Point = tuple[float, float]
PixelPoint = Annotated[tuple[float, float], Field(description="[x, y] in frame pixels")]
Side = Literal["left", "right"]


class _ZoneBase(StrictModel):
    id: SegmentId
    classes: list[str] = Field(default_factory=lambda: ["person"], min_length=1)
    min_confidence: Annotated[float, Field(ge=0)] = 0.0
    cooldown_s: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    severity: Severity = Severity.MEDIUM


class _PolygonZone(_ZoneBase):
    polygon: list[PixelPoint] = Field(min_length=3, max_length=256)

    @model_validator(mode="after")
    def _non_degenerate(self) -> _PolygonZone:
        if abs(polygon_area(self.polygon)) < 1.0:
            raise ValueError(f"zone {self.id!r}: polygon has no area (points on one line?)")
        return self


class IntrusionZone(_PolygonZone):
    type: Literal["intrusion"] = "intrusion"
    min_frames_inside: Annotated[int, Field(ge=1, le=1000)] = 2


class LoiteringZone(_PolygonZone):
    type: Literal["loitering"] = "loitering"
    dwell_s: Annotated[float, Field(gt=0, le=86_400)] = 30.0


class LineZone(_ZoneBase):
    type: Literal["line"] = "line"
    a: PixelPoint
    b: PixelPoint
    alert_direction: Literal["any", "left_to_right", "right_to_left"] = "any"
    min_offset_px: Annotated[float, Field(ge=0, le=1000)] = 6.0
    end_margin_px: Annotated[float, Field(ge=0, le=1000)] = 10.0

    @model_validator(mode="after")
    def _has_length(self) -> LineZone:
        if (self.a[0] - self.b[0]) ** 2 + (self.a[1] - self.b[1]) ** 2 < 1.0:
            raise ValueError(f"zone {self.id!r}: line a and b are the same point")
        return self


ZoneConfig = Annotated[IntrusionZone | LoiteringZone | LineZone, Field(discriminator="type")]


@dataclass(frozen=True, slots=True)
class ZoneEvent:
    zone: str
    kind: AlertKind
    severity: Severity
    track_id: str
    ts: float
    point: Point
    direction: str | None = None
    dwell_s: float | None = None
    started_ts: float | None = None


def zone_geometry(zone: IntrusionZone | LoiteringZone | LineZone) -> tuple[object, ...]:
    """What a zone's per-track state depends on: its type and its points (and for a line the
    thresholds that decide the side a track is on)."""
    if isinstance(zone, LineZone):
        return (zone.type, zone.a, zone.b, zone.min_offset_px, zone.end_margin_px)
    return (zone.type, tuple(zone.polygon))


def polygon_area(poly: Sequence[Point]) -> float:
    s = 0.0
    for (x1, y1), (x2, y2) in zip(poly, [*poly[1:], poly[0]], strict=True):
        s += x1 * y2 - x2 * y1
    return s / 2.0


def point_in_polygon(p: Point, poly: Sequence[Point]) -> bool:
    """Even-odd rule (ray casting)."""
    x, y = p
    inside = False
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < xc:
                inside = not inside
    return inside


def line_side(p: Point, a: Point, b: Point) -> tuple[float, float]:
    """(signed distance, position along a->b in 0..1 at the ends). Negative distance: left."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = (dx * dx + dy * dy) ** 0.5
    cross = dx * (p[1] - a[1]) - dy * (p[0] - a[0])
    along = ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / (length * length)
    return cross / length, along


class ZoneEngine:
    def __init__(self, zones: Sequence[IntrusionZone | LoiteringZone | LineZone]) -> None:
        self.zones = list(zones)
        self.counts: dict[str, Counter[str]] = {z.id: Counter() for z in self.zones}
        self._side: dict[tuple[str, str], Side] = {}
        self._inside_frames: dict[tuple[str, str], int] = {}
        self._entered_ts: dict[tuple[str, str], float] = {}
        self._last_alert: dict[tuple[str, str], float] = {}

    def update(self, tracks: Iterable[Track], ts: float) -> list[ZoneEvent]:
        events: list[ZoneEvent] = []
        live: set[str] = set()
        for track in tracks:
            live.add(track.id)
            for zone in self.zones:
                if track.label not in zone.classes or track.score < zone.min_confidence:
                    continue
                event = self._check(zone, track, ts)
                if event is not None and self._cooled(zone, track.id, ts):
                    events.append(event)
        return events

    def carry_over(self, old: ZoneEngine) -> None:
        """Take over the per-track state of ``old`` (a hot reload swaps engines between two
        frames). Counts and cool-downs follow a zone id; side, frames-inside and entry time
        only follow a zone whose geometry is unchanged, because against moved geometry they
        would raise a crossing or an entry that never happened."""
        before = {z.id: z for z in old.zones}
        same_id = {z.id for z in self.zones if z.id in before}
        same_shape = {z.id for z in self.zones
                      if z.id in before and zone_geometry(z) == zone_geometry(before[z.id])}
        for zone_id in same_id:
            self.counts[zone_id] = old.counts[zone_id].copy()
        self._last_alert = {k: v for k, v in old._last_alert.items() if k[0] in same_id}
        self._side = {k: v for k, v in old._side.items() if k[0] in same_shape}
        self._inside_frames = {k: v for k, v in old._inside_frames.items() if k[0] in same_shape}
        self._entered_ts = {k: v for k, v in old._entered_ts.items() if k[0] in same_shape}

    def forget(self, live_ids: set[str]) -> None:
        """Drop per-track state of tracks the tracker no longer has."""
        for table in (self._side, self._inside_frames, self._entered_ts, self._last_alert):
            for key in [k for k in table if k[1] not in live_ids]:
                del table[key]

    def _cooled(self, zone: IntrusionZone | LoiteringZone | LineZone, track_id: str,
                ts: float) -> bool:
        key = (zone.id, track_id)
        last = self._last_alert.get(key)
        if last is not None and ts - last < zone.cooldown_s:
            self.counts[zone.id]["suppressed_by_cooldown"] += 1
            return False
        self._last_alert[key] = ts
        return True

    def _check(self, zone: IntrusionZone | LoiteringZone | LineZone, track: Track,
               ts: float) -> ZoneEvent | None:
        if isinstance(zone, LineZone):
            return self._check_line(zone, track, ts)
        return self._check_area(zone, track, ts)

    def _check_line(self, zone: LineZone, track: Track, ts: float) -> ZoneEvent | None:
        key = (zone.id, track.id)
        p = track.foot
        dist, along = line_side(p, zone.a, zone.b)
        length = ((zone.b[0] - zone.a[0]) ** 2 + (zone.b[1] - zone.a[1]) ** 2) ** 0.5
        margin = zone.end_margin_px / length
        if abs(dist) < zone.min_offset_px or not -margin <= along <= 1 + margin:
            return None
        side: Side = "left" if dist < 0 else "right"
        before = self._side.get(key)
        self._side[key] = side
        if before is None or before == side:
            return None
        direction = f"{before}_to_{side}"
        self.counts[zone.id][direction] += 1
        if zone.alert_direction not in ("any", direction):
            return None
        return ZoneEvent(zone.id, AlertKind.LINE_CROSSING, zone.severity, track.id, ts, p,
                         direction=direction)

    def _check_area(self, zone: IntrusionZone | LoiteringZone, track: Track,
                    ts: float) -> ZoneEvent | None:
        key = (zone.id, track.id)
        p = track.foot
        inside = point_in_polygon(p, zone.polygon)
        if not inside:
            self._inside_frames.pop(key, None)
            self._entered_ts.pop(key, None)
            return None
        frames = self._inside_frames.get(key, 0) + 1
        self._inside_frames[key] = frames
        entered = self._entered_ts.setdefault(key, ts)
        if isinstance(zone, IntrusionZone):
            if frames != zone.min_frames_inside:
                return None
            self.counts[zone.id]["intrusions"] += 1
            return ZoneEvent(zone.id, AlertKind.INTRUSION, zone.severity, track.id, ts, p,
                             started_ts=entered)
        dwell = ts - entered
        if dwell < zone.dwell_s or self._last_alert.get(key, -1e18) >= entered:
            return None
        self.counts[zone.id]["loiterers"] += 1
        return ZoneEvent(zone.id, AlertKind.LOITERING, zone.severity, track.id, ts, p,
                         dwell_s=dwell, started_ts=entered)
