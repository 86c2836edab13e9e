"""The incident workflow's configuration: lines of work and categories (hub/incidents/
categories.py); routing rules, alert rules, deadlines and escalation are added here."""

from __future__ import annotations

from hub.incidents.categories import Vocabulary


class IncidentsConfig(Vocabulary):
    pass
