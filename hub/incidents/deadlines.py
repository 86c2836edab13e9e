"""Deadlines, reminders and escalation timers for incidents.

The incident service calls :func:`on_change` in the transaction of every change that may move
a deadline (opening, re-levelling, recategorising, assignment, every state transition). The
timers it writes live in ``incident_timers``; :class:`hub.incidents.timers.TimerSweeper` fires
them. Rules:

- the deadline is ``start + duration(category, level)``; ``start`` is the opening time, or the
  time of the latest reopening (recorded in ``incident_deadlines``);
- re-levelling or recategorising moves the timers that have not fired yet (those that fired
  stay fired: the supervisor was told, and is not told twice while the incident stays open);
- resolving or closing cancels every timer that has not fired; reopening re-arms them all
  from the reopening time and resets the escalation stage;
- a reminder whose deadline has already passed is pointless: it is cancelled.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from hub.incidents import deadline_repository as repo
from hub.incidents.config import IncidentsConfig
from hub.incidents.model import DONE_STATES, IncidentLevel, IncidentState


class TimerKind(StrEnum):
    REMINDER = "reminder"
    ESCALATE_SUPERVISOR = "escalate_supervisor"
    ESCALATE_COMMANDER = "escalate_commander"


STAGE = {TimerKind.ESCALATE_SUPERVISOR: 1, TimerKind.ESCALATE_COMMANDER: 2}


def aware(ts: datetime) -> datetime:
    """SQLite gives naive UTC back, PostgreSQL aware times in the session's zone."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def plan(
    config: IncidentsConfig, category: str, level: IncidentLevel, started_at: datetime
) -> tuple[datetime, dict[TimerKind, datetime]]:
    """The deadline and each timer's due time for a deadline clock started at ``started_at``."""
    cfg = config.deadlines
    duration = cfg.duration(category, level)
    deadline = started_at + duration
    return deadline, {
        TimerKind.REMINDER: deadline - cfg.reminder_lead(duration),
        TimerKind.ESCALATE_SUPERVISOR: deadline,
        TimerKind.ESCALATE_COMMANDER: deadline + cfg.commander_after,
    }


def on_change(conn: Connection, config: IncidentsConfig, incident: Any, now: datetime) -> None:
    """Set the incident's deadline and (re)schedule or cancel its timers, in the caller's
    transaction. ``incident`` is the incident's row after the change."""
    if not config.deadlines.enabled:
        return
    incident_id = str(incident.id)
    state = IncidentState(incident.state)
    record = repo.deadline_record(conn, incident_id)
    if state in DONE_STATES:
        if record is not None and record.running:
            repo.stop_deadline_record(conn, incident_id)
        repo.cancel_timers(conn, incident_id)
        return
    reopened = record is not None and not record.running
    if record is None:
        started = aware(incident.created_at)
    elif reopened:
        started = aware(now)
    else:
        started = aware(record.started_at)
    deadline, due = plan(config, str(incident.category), IncidentLevel(incident.level), started)
    unchanged = (
        record is not None
        and not reopened
        and aware(record.deadline_at) == deadline
        and incident.deadline_at is not None
        and aware(incident.deadline_at) == deadline
    )
    if unchanged:
        return  # an assignment or a comment: nothing moves
    repo.put_deadline_record(
        conn, incident_id, started_at=started, deadline_at=deadline, running=True
    )
    repo.set_incident_deadline(conn, incident_id, deadline, reset_stage=reopened)
    existing = repo.timers_of(conn, incident_id)
    for kind, due_at in due.items():
        pointless = kind is TimerKind.REMINDER and deadline <= aware(now)
        timer = existing.get(kind.value)
        if timer is None:
            repo.add_timer(conn, incident_id, kind.value, due_at, cancelled=pointless)
            continue
        if reopened:
            repo.rearm_timer(conn, int(timer.id), due_at)
        else:
            repo.move_timer(conn, int(timer.id), due_at)
        if pointless:
            repo.cancel_timer(conn, int(timer.id))
