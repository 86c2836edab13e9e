"""Warning rules: which open incidents and alert rates colour a grid cell red, orange, yellow.

Every rule names a colour and one or two conditions (all given conditions must hold): one over
the cell's OPEN incidents, one over the alerts located in the cell in a recent window. Of the
rules that match, the highest colour wins (the first such rule in the list names it); none
matching leaves the cell without a warning. docs/incidents-warnings.md explains each field.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from edge.config import StrictModel
from hub.incidents.model import IncidentLevel

RULE_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
KIND_NAME = r"^[a-z0-9_]{1,32}$"
CATEGORY_NAME = r"^[a-z0-9_]{1,64}$"


class Colour(StrEnum):
    """Lowest first: ``COLOUR_ORDER`` compares them."""

    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


COLOUR_ORDER = {colour: rank for rank, colour in enumerate(Colour, start=1)}


class IncidentCondition(StrictModel):
    """At least ``min_count`` of the cell's open incidents pass every filter given."""

    min_level: IncidentLevel = Field(
        default=IncidentLevel.LOW, description="count incidents of this level or higher"
    )
    categories: Annotated[
        tuple[Annotated[str, Field(pattern=CATEGORY_NAME)], ...],
        Field(max_length=100, description="count only these categories (empty: every one)"),
    ] = ()
    min_age_min: Annotated[
        float, Field(ge=0, le=525_600, description="count incidents open at least this long")
    ] = 0
    overdue: bool | None = Field(
        default=None,
        description="true: only overdue (deadline passed); false: only not overdue; null: both",
    )
    min_count: Annotated[int, Field(ge=1, le=100_000)] = 1


class AlertCondition(StrictModel):
    """At least ``min_alerts`` alerts located in the cell within the last ``window_min``."""

    window_min: Annotated[float, Field(gt=0, le=10_080)] = 30
    min_alerts: Annotated[int, Field(ge=1, le=1_000_000)] = 5
    kinds: Annotated[
        tuple[Annotated[str, Field(pattern=KIND_NAME)], ...],
        Field(max_length=50, description="count only these alert kinds (empty: every kind)"),
    ] = ()


class WarningRule(StrictModel):
    name: Annotated[str, Field(pattern=RULE_NAME)]
    colour: Colour
    incidents: IncidentCondition | None = None
    alerts: AlertCondition | None = None

    @model_validator(mode="after")
    def _has_a_condition(self) -> Self:
        if self.incidents is None and self.alerts is None:
            raise ValueError(
                f"warning rule {self.name!r} has no condition: give 'incidents' or 'alerts' "
                "(or both)"
            )
        return self


def _default_rules() -> tuple[WarningRule, ...]:
    high = IncidentLevel.HIGH
    return (
        WarningRule(
            name="critical-open",
            colour=Colour.RED,
            incidents=IncidentCondition(min_level=IncidentLevel.CRITICAL),
        ),
        WarningRule(
            name="overdue-high",
            colour=Colour.RED,
            incidents=IncidentCondition(min_level=high, overdue=True, min_count=2),
        ),
        WarningRule(
            name="high-open", colour=Colour.ORANGE, incidents=IncidentCondition(min_level=high)
        ),
        WarningRule(
            name="alert-burst",
            colour=Colour.ORANGE,
            alerts=AlertCondition(window_min=30, min_alerts=5),
        ),
        WarningRule(
            name="stale-open", colour=Colour.YELLOW, incidents=IncidentCondition(min_age_min=1440)
        ),
        WarningRule(
            name="several-open", colour=Colour.YELLOW, incidents=IncidentCondition(min_count=3)
        ),
    )


class CapConfig(StrictModel):
    """How warnings are exported as OASIS CAP 1.2 (hub/warnings/cap.py)."""

    sender: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            pattern=r"^[^\s,<&]+$",
            description="CAP <sender>: a unique id of this hub (no spaces, commas, < or &)",
        ),
    ] = "gridward@localhost"
    scope: Literal["Public", "Restricted", "Private"] = "Restricted"
    restriction: Annotated[str, Field(min_length=1, max_length=500)] = (
        "for district command staff and partner warning systems"
    )
    addresses: Annotated[str, Field(max_length=2000, description="for scope Private")] = ""
    category: Literal[
        "Geo",
        "Met",
        "Safety",
        "Security",
        "Rescue",
        "Fire",
        "Health",
        "Env",
        "Transport",
        "Infra",
        "CBRNE",
        "Other",
    ] = "Safety"

    @model_validator(mode="after")
    def _private_needs_addresses(self) -> Self:
        if self.scope == "Private" and not self.addresses.strip():
            raise ValueError("CAP scope 'Private' needs 'addresses' (CAP 1.2, 3.2.1)")
        return self


class WarningsConfig(StrictModel):
    rules: Annotated[tuple[WarningRule, ...], Field(max_length=100)] = Field(
        default_factory=_default_rules,
        description="ordered; the highest colour among the matching rules wins",
    )
    tick_s: Annotated[
        float, Field(gt=0, le=3600, description="how often the worker looks for changes")
    ] = 5
    full_every_ticks: Annotated[
        int,
        Field(
            ge=1,
            le=100_000,
            description="every N ticks recompute every cell (ages and windows move with time)",
        ),
    ] = 12
    watermark_overlap_s: Annotated[
        float,
        Field(
            ge=0,
            le=3600,
            description="re-read changes this far behind the watermark (late commits)",
        ),
    ] = 10
    override_max_h: Annotated[
        float, Field(gt=0, le=24 * 90, description="the longest allowed manual override")
    ] = 24 * 7
    override_default_h: Annotated[
        float,
        Field(gt=0, le=24 * 90, description="expiry of an override set without one (old route)"),
    ] = 24
    explanation_max_incidents: Annotated[int, Field(ge=1, le=1000)] = 50
    cap: CapConfig = Field(default_factory=CapConfig)

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"warning rule names must be unique: {', '.join(dupes)}")
        if self.override_default_h > self.override_max_h:
            raise ValueError("override_default_h is longer than override_max_h")
        return self
