"""Who is asked (sans-IO): which incidents need an officer, each officer's availability, and
the officers of each widening ring. Plain data in, plain data out; no database, no clock.

Ring 0 is the incident cell's team (wherever its officers are) plus every officer within
``rings[0].radius_m``; ring ``i`` is every officer within ``rings[i].radius_m``. Each ring
leaves out the officers already asked for the incident, takes only available ones, nearest
first, at most ``rings[i].officers``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.dispatch.config import DispatchConfig, Ring
from hub.incidents.model import LEVEL_ORDER, IncidentLevel

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


class Availability(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    OFFLINE = "offline"
    OFF_DUTY = "off_duty"


@dataclass(frozen=True, slots=True)
class Fix:
    lon: float
    lat: float
    ts: datetime
    heading_deg: float | None = None


@dataclass(frozen=True, slots=True)
class OfficerStatus:
    """What the hub knows of one officer at one moment."""

    username: str
    device: str | None  # the bound glasses; None: cannot be notified
    on_duty: bool
    device_offline: bool  # the device's retained state says offline (or it never said online)
    fix: Fix | None
    busy_with: str | None  # an incident the officer is working on (acknowledged or further)


@dataclass(frozen=True, slots=True)
class Candidate:
    username: str
    device: str
    distance_m: float | None  # None: the incident or the officer has no position


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def needs_response(config: DispatchConfig, level: str, category: str) -> bool:
    """Whether an incident of this level and category gets officers dispatched."""
    if not config.enabled:
        return False
    try:
        rank = LEVEL_ORDER[IncidentLevel(level)]
    except ValueError:
        return False
    if rank < LEVEL_ORDER[config.min_level]:
        return False
    return config.categories is None or category in config.categories


def availability(
    officer: OfficerStatus, now: datetime, offline_after_s: float, *, incident_id: str | None = None
) -> Availability:
    """Off duty beats offline beats busy. Offline: no bound device, the device says offline, or
    no fix newer than ``offline_after_s`` (an officer the hub cannot place cannot be sent).
    Busy with ``incident_id`` itself does not count as busy (backup for one's own incident)."""
    if not officer.on_duty:
        return Availability.OFF_DUTY
    if officer.device is None or officer.device_offline or officer.fix is None:
        return Availability.OFFLINE
    if (now - officer.fix.ts).total_seconds() > offline_after_s:
        return Availability.OFFLINE
    if officer.busy_with is not None and officer.busy_with != incident_id:
        return Availability.BUSY
    return Availability.AVAILABLE


def _distance(officer: OfficerStatus, point: tuple[float, float] | None) -> float | None:
    if point is None or officer.fix is None:
        return None
    return distance_m(point[0], point[1], officer.fix.lon, officer.fix.lat)


def _order(c: Candidate) -> tuple[bool, float, str]:
    # Nearest first; an officer without a known distance last; the name breaks ties, so two
    # replicas choosing from the same data choose the same officers.
    return (c.distance_m is None, c.distance_m or 0.0, c.username)


def choose_ring(  # noqa: PLR0917 - the inputs of one decision, all plain data
    officers: Iterable[OfficerStatus],
    ring_index: int,
    rings: Sequence[Ring],
    point: tuple[float, float] | None,
    team: Collection[str],
    asked: Collection[str],
    now: datetime,
    offline_after_s: float,
    *,
    incident_id: str | None = None,
    limit: int | None = None,
) -> list[Candidate]:
    """The officers to ask in ring ``ring_index`` (at most ``limit`` or the ring's count).

    Without an incident position, distance means nothing: ring 0 is the cell team, and each
    later ring any available officer (by name), so an incident without a place still reaches
    someone before the commander is told.
    """
    ring = rings[ring_index]
    found: list[Candidate] = []
    for officer in officers:
        if officer.username in asked or officer.device is None:
            continue
        state = availability(officer, now, offline_after_s, incident_id=incident_id)
        if state is not Availability.AVAILABLE:
            continue
        dist = _distance(officer, point)
        in_team = ring_index == 0 and officer.username in team
        if point is None:
            if not in_team and ring_index == 0:
                continue
        elif not in_team and (dist is None or dist > ring.radius_m):
            continue
        found.append(Candidate(officer.username, officer.device, dist))
    found.sort(key=_order)
    return found[: ring.officers if limit is None else limit]


def next_in_rings(  # noqa: PLR0917 - as choose_ring
    officers: Sequence[OfficerStatus],
    from_ring: int,
    rings: Sequence[Ring],
    point: tuple[float, float] | None,
    team: Collection[str],
    asked: Collection[str],
    now: datetime,
    offline_after_s: float,
    *,
    incident_id: str | None = None,
) -> tuple[int, Candidate] | None:
    """One officer to ask instead of one who declined: the nearest available one not yet
    asked, in ring ``from_ring`` or the first wider ring that has one; None when nobody is."""
    for index in range(from_ring, len(rings)):
        chosen = choose_ring(
            officers,
            index,
            rings,
            point,
            team,
            asked,
            now,
            offline_after_s,
            incident_id=incident_id,
            limit=1,
        )
        if chosen:
            return index, chosen[0]
    return None
