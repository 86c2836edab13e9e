"""Deadlines per category and level, reminders before them, and the escalation ladder.

A deadline runs from the incident's opening (or from its reopening). A reminder goes out a
share of that time before the deadline (never less than ``reminder_min_minutes``); at the
deadline the department's supervisor is told (stage 1), ``commander_after_min`` later the
department's commander, or every active commander when the department names none (stage 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated

from pydantic import Field, model_validator

from edge.config import StrictModel
from hub.incidents.model import IncidentLevel

# A deadline longer than a year is a typo, not a policy.
Hours = Annotated[float, Field(gt=0, le=24 * 366)]

DEFAULT_HOURS: dict[IncidentLevel, float] = {
    IncidentLevel.LOW: 72.0,
    IncidentLevel.MEDIUM: 24.0,
    IncidentLevel.HIGH: 4.0,
    IncidentLevel.CRITICAL: 1.0,
}


class DeadlinesConfig(StrictModel):
    enabled: bool = Field(default=True, description="False: no deadlines, no timers")
    hours_by_level: dict[IncidentLevel, Hours] = Field(
        default_factory=lambda: dict(DEFAULT_HOURS),
        description="the default deadline per level, in hours (every level required)",
    )
    category_hours: dict[str, dict[IncidentLevel, Hours]] = Field(
        default_factory=dict,
        description="overrides per category id and level (levels left out use the default)",
    )
    reminder_fraction: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="the reminder goes out this share of the deadline's time before it",
    )
    reminder_min_minutes: float = Field(
        default=10.0, ge=0, description="...but never less than this many minutes before it"
    )
    commander_after_min: float = Field(
        default=60.0,
        gt=0,
        le=30 * 24 * 60,
        description="minutes after the deadline (the supervisor's stage) the commander is told",
    )
    sweep_every_s: float = Field(
        default=5.0, gt=0, le=3600, description="how often each hub looks for due timers"
    )
    sweep_batch: int = Field(
        default=200, ge=1, le=10_000, description="due timers read per query in one sweep"
    )

    @model_validator(mode="after")
    def _sensible(self) -> DeadlinesConfig:
        missing = [level.value for level in IncidentLevel if level not in self.hours_by_level]
        if missing:
            raise ValueError(f"hours_by_level needs every level; missing: {', '.join(missing)}")
        for where, hours in self._all_hours():
            if self.reminder_min_minutes >= hours * 60:
                raise ValueError(
                    f"the reminder ({self.reminder_min_minutes:g} min before the deadline) is "
                    f"longer than the deadline itself ({hours:g} h for {where}): lower "
                    "reminder_min_minutes or lengthen the deadline"
                )
        return self

    def _all_hours(self) -> Iterable[tuple[str, float]]:
        for level, hours in self.hours_by_level.items():
            yield f"level {level.value}", hours
        for category, levels in self.category_hours.items():
            for level, hours in levels.items():
                yield f"category {category} level {level.value}", hours

    def check_categories(self, known: Iterable[str]) -> None:
        """Refuse overrides for categories the vocabulary does not have (a typo would
        silently fall back to the default deadline)."""
        unknown = sorted(set(self.category_hours) - set(known))
        if unknown:
            raise ValueError(
                f"deadlines.category_hours names unknown categories: {', '.join(unknown)}"
            )

    def duration(self, category: str, level: IncidentLevel) -> timedelta:
        hours = self.category_hours.get(category, {}).get(level, self.hours_by_level[level])
        return timedelta(hours=hours)

    def reminder_lead(self, duration: timedelta) -> timedelta:
        """How long before the deadline the reminder goes out."""
        return max(duration * self.reminder_fraction, timedelta(minutes=self.reminder_min_minutes))

    @property
    def commander_after(self) -> timedelta:
        return timedelta(minutes=self.commander_after_min)
