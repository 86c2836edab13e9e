"""The incident workflow's configuration: lines of work and categories (hub/incidents/
categories.py), deadlines and escalation (hub/incidents/deadline_config.py); routing rules and
alert rules are added here."""

from __future__ import annotations

from pydantic import Field, model_validator

from hub.incidents.categories import Vocabulary
from hub.incidents.deadline_config import DeadlinesConfig


class IncidentsConfig(Vocabulary):
    deadlines: DeadlinesConfig = Field(
        default_factory=DeadlinesConfig,
        description="deadline per category and level, reminders, escalation",
    )

    @model_validator(mode="after")
    def _deadline_categories(self) -> IncidentsConfig:
        self.deadlines.check_categories(c.id for c in self.categories)
        return self
