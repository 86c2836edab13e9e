"""Deadlines, reminders and escalation timers for incidents.

The incident service calls :func:`on_change` in the transaction of every change that may move
a deadline (opening, re-levelling, recategorising, assignment, every state transition).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from hub.incidents.config import IncidentsConfig


def on_change(conn: Connection, config: IncidentsConfig, incident: Any, now: datetime) -> None:
    """Set the incident's deadline and (re)schedule or cancel its timers (to be built)."""
