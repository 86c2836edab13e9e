"""What the HUD shows, as plain data: the glasses agent builds a :class:`HudView`, a renderer
turns it into a frame, a sink puts the frame on a display. No I/O here.

The agent owns the queue (ordering, staleness, answers); the renderer owns the pixels; both
meet only in these types, so a renderer test needs no MQTT and an agent test needs no fonts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from edge.protocol import AlertKind, ExpectedAction, OfficerAnswer, Severity

Language = Literal["en", "zh-CN"]
Frame = npt.NDArray[np.uint8]  # height x width x 3, RGB

EARTH_RADIUS_M = 6_371_008.8
SEVERITY_RANK: dict[Severity, int] = {
    Severity.CRITICAL: 0,
    Severity.HIGH: 1,
    Severity.MEDIUM: 2,
    Severity.LOW: 3,
    Severity.INFO: 4,
}


@dataclass(frozen=True, slots=True)
class Pose:
    """Where the officer stands and which way they face (heading: degrees clockwise from true
    north, None when the receiver has no course yet, e.g. standing still)."""

    lon: float
    lat: float
    fix_at: datetime
    heading_deg: float | None = None
    accuracy_m: float | None = None


@dataclass(frozen=True, slots=True)
class HudItem:
    """One notification on the box. ``title`` is the hub's data text (an alert title), never a
    UI string: labels for kind, severity and action come from the message catalogue."""

    notify_id: str
    kind: AlertKind
    severity: Severity
    title: str
    issued_at: datetime  # Notify.ts: when the hub sent it
    received_at: datetime  # when this box got it (late after an outage)
    action: ExpectedAction = ExpectedAction.ATTEND
    dispatch_id: str | None = None
    incident_number: str | None = None
    target: tuple[float, float] | None = None  # (lon, lat) of the place
    evidence_jpeg: bytes | None = None
    answer: OfficerAnswer | None = None  # the officer's latest answer, if any
    stale: bool = False  # older than the configured age when it arrived or since

    def urgency(self) -> tuple[int, int, float]:
        """Sort key, most urgent first: unanswered before answered, then severity, then
        oldest first (it has waited longest)."""
        answered = 1 if self.answer is not None else 0
        return (answered, SEVERITY_RANK[self.severity], self.issued_at.timestamp())


@dataclass(frozen=True, slots=True)
class HudView:
    now: datetime
    language: Language
    items: tuple[HudItem, ...] = ()  # most urgent first (the agent orders them)
    selected: int = 0  # index into items of the card shown large
    pose: Pose | None = None
    online: bool = True  # the box's broker connection
    unsent_answers: int = 0  # answers waiting in the outbox for the broker
    hints: tuple[str, ...] = field(default_factory=tuple)  # catalogue keys of key hints


class Renderer(Protocol):
    def render(self, view: HudView) -> Frame: ...


class Sink(Protocol):
    def show(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def relative_bearing(pose: Pose, target: tuple[float, float]) -> tuple[float, float | None]:
    """(distance in metres, bearing relative to where the officer faces: 0 ahead, 90 to the
    right; None without a heading, when the HUD shows the absolute bearing instead)."""
    lon, lat = target
    dist = distance_m(pose.lon, pose.lat, lon, lat)
    absolute = bearing_deg(pose.lon, pose.lat, lon, lat)
    if pose.heading_deg is None:
        return dist, None
    return dist, (absolute - pose.heading_deg) % 360.0
