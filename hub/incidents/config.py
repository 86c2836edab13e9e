"""The incident workflow's configuration: lines of work and categories (hub/incidents/
categories.py), deadlines and escalation (hub/incidents/deadline_config.py), the alert rules
that turn device alerts into incidents, and the routing rules that choose a department.

Both rule lists are ordered and refused at load when a rule is nonsense: a rule that can never
match, a rule after the default, a name used twice. Every refusal names the rule.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from edge.config import StrictModel
from edge.protocol import AlertKind, Severity
from edge.validators import SegmentId
from hub.errors import Invalid
from hub.geo.geojson import validate_polygon
from hub.incidents.categories import Vocabulary
from hub.incidents.deadline_config import DeadlinesConfig
from hub.incidents.model import IncidentLevel

RuleName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEVERITY_ORDER = {s: rank for rank, s in enumerate(Severity)}
MAX_GROUP_WINDOW_S = 7 * 24 * 3600
MAX_RULES = 500


# --- alert rules --------------------------------------------------------------------------------


class AlertRule(StrictModel):
    """Which alerts open an incident, of what category and level, and how repeats group."""

    name: RuleName
    kinds: Annotated[list[AlertKind], Field(min_length=1, max_length=len(AlertKind))]
    min_severity: Severity = Severity.INFO
    category: SegmentId
    level: IncidentLevel
    group_window_s: Annotated[int, Field(ge=1, le=MAX_GROUP_WINDOW_S)] = Field(
        default=600,
        description="an alert of one kind and place within this many seconds of the group's "
        "last alert joins its open incident instead of opening another",
    )
    place: Literal["cell", "zone", "device"] = Field(
        default="cell",
        description="what 'the same place' means: the grid cell of the alert's location, its "
        "zone, or its device (cell and zone fall back to the device when the alert has none)",
    )

    def matches(self, kind: str, severity: str) -> bool:
        try:
            sev = Severity(severity)
        except ValueError:
            return False
        return kind in self.kinds and SEVERITY_ORDER[sev] >= SEVERITY_ORDER[self.min_severity]


def _a(name: str, kinds: list[AlertKind], category: str, level: IncidentLevel, **kw: Any) -> Any:
    return AlertRule(name=name, kinds=kinds, category=category, level=level, **kw)


K = AlertKind
L = IncidentLevel
DEFAULT_ALERT_RULES = [
    _a("sos", [K.SOS], "person_in_distress", L.CRITICAL, group_window_s=300, place="device"),
    _a("intrusion", [K.INTRUSION, K.PERIMETER_BREACH], "intrusion", L.HIGH, min_severity="medium"),
    _a("cloned-device", [K.CLONED_DEVICE], "device_fault", L.HIGH, place="device"),
    _a(
        "device-fault",
        [K.TAMPER, K.SIGNAL_LOST],
        "device_fault",
        L.MEDIUM,
        group_window_s=3600,
        place="device",
    ),
]


# --- routing rules ------------------------------------------------------------------------------


class Hours(StrictModel):
    """A time-of-day window in the site's zone, ``from`` inclusive, ``to`` exclusive; it wraps
    midnight when ``to`` is earlier than ``from`` (22:00-06:00)."""

    from_: HHMM = Field(alias="from")
    to: HHMM

    def minutes(self) -> tuple[int, int]:
        return _minutes(self.from_), _minutes(self.to)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class RoutingWhen(StrictModel):
    """Conditions, all of which must hold; an absent condition holds always. An empty list is
    refused (it could never hold)."""

    categories: list[SegmentId] | None = Field(default=None, max_length=200)
    levels: list[IncidentLevel] | None = Field(default=None, max_length=len(IncidentLevel))
    min_level: IncidentLevel | None = None
    cells: list[SegmentId] | None = Field(default=None, max_length=10_000)
    area: dict[str, Any] | None = Field(
        default=None, description="a GeoJSON Polygon or MultiPolygon (WGS84 lon/lat)"
    )
    hours: Hours | None = None
    days: list[Weekday] | None = Field(default=None, max_length=7)

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)


class RoutingRule(StrictModel):
    """If ``when`` holds, the incident goes to ``department``, or to the department the
    incident's cell names for ``line`` (when the cell names none, the next rule is tried)."""

    name: RuleName
    when: RoutingWhen = Field(default_factory=RoutingWhen)
    department: SegmentId | None = None
    line: SegmentId | None = None

    @model_validator(mode="after")
    def _one_target(self) -> RoutingRule:
        if (self.department is None) == (self.line is None):
            raise ValueError(f"routing rule {self.name!r}: give exactly one of department or line")
        return self

    def signature(self) -> str:
        """Everything but the name: two rules with one signature behave alike."""
        return self.model_dump_json(exclude={"name"}, by_alias=True)


def _default_routing(vocabulary: Vocabulary) -> list[RoutingRule]:
    """One rule per line of work (the cell's department for the category's line), then a
    default that sends anything else to the first line's department of the cell."""
    rules = []
    for line in vocabulary.lines:
        cats = [c.id for c in vocabulary.categories if c.line == line.id]
        if cats:
            rules.append(
                RoutingRule(name=f"line-{line.id}", when=RoutingWhen(categories=cats), line=line.id)
            )
    rules.append(RoutingRule(name="default", line=vocabulary.lines[0].id))
    return rules


class AttachmentLimits(StrictModel):
    max_bytes: Annotated[int, Field(ge=1024, le=50 * 1024 * 1024)] = 10 * 1024 * 1024
    max_per_incident: Annotated[int, Field(ge=1, le=500)] = 30


# --- the whole section --------------------------------------------------------------------------


class IncidentsConfig(Vocabulary):
    deadlines: DeadlinesConfig = Field(
        default_factory=DeadlinesConfig,
        description="deadline per category and level, reminders, escalation",
    )

    @model_validator(mode="after")
    def _deadline_categories(self) -> IncidentsConfig:
        self.deadlines.check_categories(c.id for c in self.categories)
        return self
    attachments: AttachmentLimits = Field(
        default_factory=AttachmentLimits, description="operators' uploads to an incident"
    )
    alert_rules: Annotated[list[AlertRule], Field(max_length=MAX_RULES)] = Field(
        default_factory=lambda: list(DEFAULT_ALERT_RULES),
        description="ordered; the first rule an alert matches decides; no match: no incident",
    )
    routing: Annotated[list[RoutingRule], Field(max_length=MAX_RULES)] = Field(
        default_factory=list,
        description="ordered; the first rule that matches and yields a department wins; the "
        "last rule must have no conditions (empty: one rule per line, then a default)",
    )

    @field_validator("routing")
    @classmethod
    def _check_areas(cls, rules: list[RoutingRule]) -> list[RoutingRule]:
        for rule in rules:
            if rule.when.area is not None:
                try:
                    validate_polygon(rule.when.area)
                except Invalid as err:
                    raise ValueError(f"routing rule {rule.name!r}: area: {err}") from err
        return rules

    @model_validator(mode="after")
    def _check_rules(self) -> IncidentsConfig:
        if not self.routing:
            # frozen model: set once, here, from this vocabulary
            object.__setattr__(self, "routing", _default_routing(self))
        self._check_alert_rules()
        self._check_routing()
        return self

    def _check_alert_rules(self) -> None:
        names: set[str] = set()
        for rule in self.alert_rules:
            if rule.name in names:
                raise ValueError(f"alert rule {rule.name!r}: the name is used twice")
            names.add(rule.name)
            if self.category(rule.category) is None:
                raise ValueError(f"alert rule {rule.name!r}: unknown category {rule.category!r}")
            if len(set(rule.kinds)) != len(rule.kinds):
                raise ValueError(f"alert rule {rule.name!r}: a kind is listed twice")
            if AlertKind.FACE_MATCH in rule.kinds:
                # A face match is a possible match until a human confirms it (hub/matches):
                # only a confirmation opens its incident, never an alert rule.
                raise ValueError(
                    f"alert rule {rule.name!r}: face_match alerts cannot open incidents; they "
                    "become possible matches for review (docs/matches.md)"
                )

    def _check_routing(self) -> None:
        lines = set(self.line_ids())
        names: set[str] = set()
        signatures: dict[str, str] = {}
        for i, rule in enumerate(self.routing):
            where = f"routing rule {rule.name!r}"
            if rule.name in names:
                raise ValueError(f"{where}: the name is used twice")
            names.add(rule.name)
            if rule.line is not None and rule.line not in lines:
                raise ValueError(f"{where}: unknown line {rule.line!r}")
            _check_when(where, rule.when, self)
            earlier = signatures.get(rule.signature())
            if earlier is not None:
                raise ValueError(f"{where}: identical to the earlier rule {earlier!r}")
            signatures[rule.signature()] = rule.name
            is_last = i == len(self.routing) - 1
            if rule.when.is_empty() and not is_last:
                after = self.routing[i + 1].name
                raise ValueError(
                    f"{where} has no conditions (a default), so rule {after!r} after it "
                    "could never match: the default must be the last rule"
                )
            if is_last and not rule.when.is_empty():
                raise ValueError(
                    f"{where}: the last routing rule must be a default with no conditions"
                )


def _check_when(where: str, when: RoutingWhen, vocabulary: Vocabulary) -> None:
    for field in ("categories", "levels", "cells", "days"):
        values = getattr(when, field)
        if values is not None and not values:
            raise ValueError(f"{where}: an empty list of {field} can never match")
        if values is not None and len(set(values)) != len(values):
            raise ValueError(f"{where}: a value is listed twice in {field}")
    for category in when.categories or []:
        if vocabulary.category(category) is None:
            raise ValueError(f"{where}: unknown category {category!r}")
    if when.levels is not None and when.min_level is not None:
        raise ValueError(f"{where}: give levels or min_level, not both")
    if when.hours is not None:
        start, end = when.hours.minutes()
        if start == end:
            raise ValueError(
                f"{where}: hours from {when.hours.from_} to {when.hours.to} is an empty window "
                "(leave hours out to match all day)"
            )
