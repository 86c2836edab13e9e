"""The geofence engine shared by the wristband agent, the glasses agent and the hub.

Pure logic (shapely 2 + the standard library): no MQTT, no agent imports. Zones come from GeoJSON
(WGS84 polygons, rule fields in each feature's ``properties``) and are projected once to a local
metric plane (equirectangular around the zones' centre: sub-0.1 % error across a district), so
``buffer_m`` is in metres.

Rules per zone:

- ``kind``: ``inclusion`` (the wearer must stay inside: leaving is an *exit* violation) or
  ``exclusion`` (the wearer must stay out: entering is an *entry* violation).
- ``applies_to``: entity ids the zone binds; absent = every entity.
- ``schedule``: windows (weekdays, ``HH:MM`` start/end, a window may cross midnight) in the zone's
  ``timezone`` during which violations raise alerts, e.g. a 21:00-07:00 curfew. Absent = always.
- ``min_dwell_s``: temporal hysteresis. A new inside/outside state must hold this long before it
  counts, in both directions.
- ``buffer_m``: spatial hysteresis. A point counts as *inside* only ``buffer_m`` within the
  boundary and as *outside* only ``buffer_m`` beyond it; in between, the last state stands. A
  wearer walking along the fence does not flap.

Indexing: an STRtree over the outer (``+buffer_m``) geometries finds the few zones near each
point; prepared inner geometries decide containment; :meth:`GeofenceEngine.check_many` does both
vectorised for a whole batch of positions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edge.projection import LocalProjection as LocalProjection  # noqa: PLC0414 - re-export
from edge.validators import SegmentId

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class GeofenceError(ValueError):
    """Zones that cannot be used; the message names the feature and what to fix."""


class ZoneKind(StrEnum):
    INCLUSION = "inclusion"
    EXCLUSION = "exclusion"


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleWindow(_Rule):
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: time
    end: time

    @field_validator("start", "end")
    @classmethod
    def _minutes(cls, value: time) -> time:
        if value.second or value.microsecond or value.tzinfo is not None:
            raise ValueError("use HH:MM (no seconds, no offset: the zone has a timezone)")
        return value

    def active(self, local: datetime) -> bool:
        """``local`` is zone-local. A window whose end is not after its start crosses
        midnight and belongs to the day it starts on."""
        now = local.time().replace(second=0, microsecond=0, tzinfo=None)
        day = WEEKDAYS[local.weekday()]
        if self.start < self.end:
            return day in self.days and self.start <= now < self.end
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        return (day in self.days and now >= self.start) or (
            yesterday in self.days and now < self.end
        )


class ZoneRule(_Rule):
    """The ``properties`` of one GeoJSON zone feature."""

    id: SegmentId
    name: Annotated[str, Field(max_length=200)] = ""
    kind: ZoneKind
    applies_to: list[SegmentId] | None = None
    schedule: list[ScheduleWindow] | None = Field(default=None, min_length=1)
    timezone: str = "UTC"
    min_dwell_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0
    buffer_m: Annotated[float, Field(ge=0, le=1000)] = 0.0
    severity: Literal["info", "low", "medium", "high", "critical"] = "high"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as 'Asia/Shanghai')"
            ) from err
        return value


class EventKind(StrEnum):
    EXIT = "exit"  # left an inclusion zone (violation)
    RETURN = "return"  # back inside an inclusion zone
    ENTRY = "entry"  # entered an exclusion zone (violation)
    LEAVE = "leave"  # left an exclusion zone


@dataclass(frozen=True, slots=True)
class GeofenceEvent:
    entity: str
    zone: str
    kind: EventKind
    violation: bool
    alert: bool  # True when the zone's schedule is active: raise an alert
    t: float
    severity: str


@dataclass(frozen=True, slots=True)
class Zone:
    rule: ZoneRule
    polygon: shapely.Geometry  # WGS84

    @property
    def id(self) -> str:
        return self.rule.id


@dataclass(slots=True)
class _PairState:
    inside: bool
    pending: bool | None = None
    pending_since: float = 0.0
    alerted: bool = False


def project_geometry(projection: LocalProjection, geom: shapely.Geometry) -> shapely.Geometry:
    """A lon/lat geometry in the projection's local metres."""

    def fn(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = projection.to_xy(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, fn)


def zones_from_geojson(data: str | bytes | dict[str, Any], source: str = "<zones>") -> list[Zone]:
    """Parse a FeatureCollection of Polygon/MultiPolygon zones; raise :class:`GeofenceError`."""
    try:
        obj = json.loads(data) if isinstance(data, str | bytes) else data
    except json.JSONDecodeError as err:
        raise GeofenceError(f"{source}: not JSON: {err}") from err
    if not isinstance(obj, dict) or obj.get("type") != "FeatureCollection":
        raise GeofenceError(f"{source}: expected a GeoJSON FeatureCollection")
    features = obj.get("features")
    if not isinstance(features, list):
        raise GeofenceError(f"{source}: 'features' must be a list")
    zones: list[Zone] = []
    seen: set[str] = set()
    for i, feat in enumerate(features):
        where = f"{source}: features[{i}]"
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            raise GeofenceError(f"{where}: not a GeoJSON Feature")
        try:
            rule = ZoneRule.model_validate(feat.get("properties") or {})
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "properties"
            raise GeofenceError(f"{where}.properties.{loc}: {first['msg']}") from err
        geometry = feat.get("geometry")
        if not isinstance(geometry, dict) or geometry.get("type") not in (
            "Polygon",
            "MultiPolygon",
        ):
            raise GeofenceError(f"{where} ({rule.id}): geometry must be a Polygon or MultiPolygon")
        try:
            polygon = shapely.from_geojson(json.dumps(geometry))
        except shapely.errors.GEOSException as err:
            raise GeofenceError(f"{where} ({rule.id}): bad geometry: {err}") from err
        if polygon.is_empty or not polygon.is_valid:
            reason = shapely.is_valid_reason(polygon)
            raise GeofenceError(
                f"{where} ({rule.id}): invalid polygon ({reason}); fix the "
                "ring (closed, not self-intersecting)"
            )
        if rule.id in seen:
            raise GeofenceError(f"{where}: zone id {rule.id!r} is used twice")
        seen.add(rule.id)
        zones.append(Zone(rule, polygon))
    return zones


class GeofenceEngine:
    """Per (entity, zone) state machines with spatial and temporal hysteresis."""

    def __init__(self, zones: Sequence[Zone], origin: tuple[float, float] | None = None) -> None:
        self.zones = list(zones)
        if origin is None:
            if self.zones:
                c = shapely.union_all([z.polygon for z in self.zones]).envelope.centroid
                origin = (c.x, c.y)
            else:
                origin = (0.0, 0.0)
        self.projection = LocalProjection(*origin)
        metric = [project_geometry(self.projection, z.polygon) for z in self.zones]
        self._metric = metric
        self._outer = np.array(
            [
                g.buffer(z.rule.buffer_m) if z.rule.buffer_m else g
                for g, z in zip(metric, self.zones, strict=True)
            ],
            dtype=object,
        )
        self._inner = np.array(
            [
                g.buffer(-z.rule.buffer_m) if z.rule.buffer_m else g
                for g, z in zip(metric, self.zones, strict=True)
            ],
            dtype=object,
        )
        shapely.prepare(self._outer)
        shapely.prepare(self._inner)
        self._tree = shapely.STRtree(self._outer)
        self._tz = [ZoneInfo(z.rule.timezone) for z in self.zones]
        self._index = {z.id: i for i, z in enumerate(self.zones)}
        self._global_inclusion = [
            i
            for i, z in enumerate(self.zones)
            if z.rule.kind is ZoneKind.INCLUSION and z.rule.applies_to is None
        ]
        self._bound_inclusion: dict[str, list[int]] = {}
        self._restricted: dict[int, frozenset[str]] = {}
        for i, z in enumerate(self.zones):
            if z.rule.applies_to is not None:
                self._restricted[i] = frozenset(z.rule.applies_to)
                if z.rule.kind is ZoneKind.INCLUSION:
                    for ent in z.rule.applies_to:
                        self._bound_inclusion.setdefault(ent, []).append(i)
        self._state: dict[str, dict[int, _PairState]] = {}
        self._active_cache: dict[int, tuple[int, bool]] = {}

    @classmethod
    def from_geojson(
        cls, data: str | bytes | dict[str, Any], origin: tuple[float, float] | None = None
    ) -> GeofenceEngine:
        return cls(zones_from_geojson(data), origin)

    # -- queries ----------------------------------------------------------------------------

    def zone(self, zone_id: str) -> Zone:
        return self.zones[self._index[zone_id]]

    def zones_containing(self, lon: float, lat: float) -> list[str]:
        """Zones whose polygon contains the point (no hysteresis, no state)."""
        x, y = self.projection.to_xy(np.array([lon]), np.array([lat]))
        point = shapely.points(x[0], y[0])
        return [
            self.zones[i].id
            for i in sorted(self._tree.query(point).tolist())
            if self._metric[i].covers(point)
        ]

    def schedule_active(self, zone_index: int, t: float) -> bool:
        rule = self.zones[zone_index].rule
        if rule.schedule is None:
            return True
        minute = int(t // 60)
        cached = self._active_cache.get(zone_index)
        if cached is not None and cached[0] == minute:
            return cached[1]
        local = datetime.fromtimestamp(t, UTC).astimezone(self._tz[zone_index])
        active = any(w.active(local) for w in rule.schedule)
        self._active_cache[zone_index] = (minute, active)
        return active

    def state_of(self, entity: str) -> dict[str, bool]:
        """Confirmed inside/outside per tracked zone of ``entity``."""
        return {self.zones[i].id: s.inside for i, s in self._state.get(entity, {}).items()}

    def forget(self, entity: str) -> None:
        self._state.pop(entity, None)

    # -- updates ----------------------------------------------------------------------------

    def check(self, entity: str, lon: float, lat: float, t: float) -> list[GeofenceEvent]:
        """One position of one entity at epoch seconds ``t``."""
        return self.check_many([entity], np.array([lon]), np.array([lat]), t)

    def check_many(
        self,
        entities: Sequence[str],
        lons: NDArray[np.float64],
        lats: NDArray[np.float64],
        t: float,
    ) -> list[GeofenceEvent]:
        """A batch of positions taken at ``t`` (one per entity)."""
        if len(entities) != len(lons) or len(lons) != len(lats):
            raise ValueError("entities, lons and lats must have the same length")
        if not self.zones or not len(entities):
            return []
        x, y = self.projection.to_xy(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        points = shapely.points(x, y)
        pt_idx, zone_idx = self._tree.query(points, predicate="intersects")
        inner_hit = shapely.intersects(self._inner[zone_idx], points[pt_idx])
        # near[p] = {zone index: definitely inside?}; zones absent are definitely outside.
        near: list[dict[int, bool]] = [{} for _ in entities]
        for p, z, hit in zip(pt_idx.tolist(), zone_idx.tolist(), inner_hit.tolist(), strict=True):
            near[p][z] = hit
        events: list[GeofenceEvent] = []
        for p, entity in enumerate(entities):
            self._update_entity(entity, near[p], t, events)
        return events

    def _applies(self, zone_index: int, entity: str) -> bool:
        allowed = self._restricted.get(zone_index)
        return allowed is None or entity in allowed

    def _update_entity(
        self, entity: str, near: dict[int, bool], t: float, events: list[GeofenceEvent]
    ) -> None:
        states = self._state.get(entity)
        if states is None:
            states = self._state[entity] = {}
        candidates = set(states)
        candidates.update(self._global_inclusion)
        candidates.update(self._bound_inclusion.get(entity, ()))
        candidates.update(z for z in near if self._applies(z, entity))
        for z in candidates:
            # True/False: definitely inside/outside; None: inside the hysteresis band.
            observed: bool | None = (True if near[z] else None) if z in near else False
            self._step(entity, z, states, observed=observed, t=t, events=events)
        # Drop exclusion states that are plainly settled outside: keeps memory per entity small.
        for z in [
            z
            for z, s in states.items()
            if not s.inside
            and s.pending is None
            and not s.alerted
            and self.zones[z].rule.kind is ZoneKind.EXCLUSION
            and z not in near
        ]:
            del states[z]

    def _step(
        self,
        entity: str,
        z: int,
        states: dict[int, _PairState],
        *,
        observed: bool | None,
        t: float,
        events: list[GeofenceEvent],
    ) -> None:
        rule = self.zones[z].rule
        inclusion = rule.kind is ZoneKind.INCLUSION
        state = states.get(z)
        if state is None:
            # Start compliant: a first sighting in violation must still hold for min_dwell_s.
            state = states[z] = _PairState(inside=inclusion)
        if observed is None or observed == state.inside:
            if observed is not None:
                state.pending = None
        else:
            if state.pending != observed:
                state.pending, state.pending_since = observed, t
            if t - state.pending_since >= rule.min_dwell_s:
                state.inside, state.pending = observed, None
                violation = state.inside != inclusion
                if inclusion:
                    kind = EventKind.RETURN if state.inside else EventKind.EXIT
                else:
                    kind = EventKind.ENTRY if state.inside else EventKind.LEAVE
                active = self.schedule_active(z, t)
                alert = violation and active
                if alert:
                    state.alerted = True
                elif not violation:
                    state.alerted = False
                events.append(
                    GeofenceEvent(entity, rule.id, kind, violation, alert, t, rule.severity)
                )
                return
        # A schedule that opens while the entity is already in violation raises the alert then.
        violation = state.inside != inclusion
        if violation and not state.alerted and self.schedule_active(z, t):
            state.alerted = True
            kind = EventKind.EXIT if inclusion else EventKind.ENTRY
            events.append(GeofenceEvent(entity, rule.id, kind, True, True, t, rule.severity))
        elif state.alerted and not self.schedule_active(z, t):
            state.alerted = False


def naive_violations(zones: Iterable[Zone], lon: float, lat: float) -> list[str]:
    """Baseline for the benchmark and a cross-check in tests: every zone, one by one."""
    point = shapely.Point(lon, lat)
    return [z.id for z in zones if z.polygon.covers(point)]
