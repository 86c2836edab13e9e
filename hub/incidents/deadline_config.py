"""Deadlines per category and level, reminders before them, and the escalation ladder."""

from __future__ import annotations

from edge.config import StrictModel


class DeadlinesConfig(StrictModel):
    pass
