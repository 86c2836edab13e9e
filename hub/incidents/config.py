"""The incident workflow's configuration: lines of work and categories (hub/incidents/
categories.py), deadlines and escalation (hub/incidents/deadline_config.py); routing rules and
alert rules are added here."""

from __future__ import annotations

from pydantic import Field

from hub.incidents.categories import Vocabulary
from hub.incidents.deadline_config import DeadlinesConfig


class IncidentsConfig(Vocabulary):
    deadlines: DeadlinesConfig = Field(
        default_factory=DeadlinesConfig,
        description="deadline per category and level, reminders, escalation",
    )
