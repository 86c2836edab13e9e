"""The incident vocabulary and state machine (no I/O).

States: new -> assigned -> in_progress -> resolved -> closed. A resolved or closed incident
can be reopened (it goes back to assigned, or to new when it has no assignee). Every
transition is audited and written to the incident's timeline.
"""

from __future__ import annotations

from enum import StrEnum

from hub.errors import Conflict


class IncidentState(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class IncidentLevel(StrEnum):
    """Lowest first: ``LEVEL_ORDER`` compares them."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class IncidentSource(StrEnum):
    ALERT = "alert"
    REPORT = "report"
    MANUAL = "manual"


class EventKind(StrEnum):
    CREATED = "created"
    ROUTED = "routed"
    ASSIGNED = "assigned"
    STATE = "state"
    COMMENT = "comment"
    ACCEPTED = "accepted"  # the assignee took the task on (from the field page); no state change
    ALERT_LINKED = "alert_linked"
    EVIDENCE_LINKED = "evidence_linked"
    ATTACHMENT = "attachment"
    REMINDER = "reminder"
    ESCALATED = "escalated"
    UPDATED = "updated"
    DISPATCH = "dispatch"  # an officer notified, answering, widening (hub/dispatch/service.py)
    MATCH = "match"  # the possible face match it was opened for: confirmed, outcome recorded


LEVEL_ORDER = {level: rank for rank, level in enumerate(IncidentLevel)}
OPEN_STATES = (IncidentState.NEW, IncidentState.ASSIGNED, IncidentState.IN_PROGRESS)
DONE_STATES = (IncidentState.RESOLVED, IncidentState.CLOSED)

S = IncidentState
TRANSITIONS: dict[IncidentState, frozenset[IncidentState]] = {
    S.NEW: frozenset({S.ASSIGNED, S.CLOSED}),  # closed at once: a duplicate or a false alarm
    S.ASSIGNED: frozenset({S.IN_PROGRESS, S.ASSIGNED, S.RESOLVED, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.RESOLVED, S.ASSIGNED}),
    S.RESOLVED: frozenset({S.CLOSED, S.ASSIGNED, S.NEW}),  # reopen
    S.CLOSED: frozenset({S.ASSIGNED, S.NEW}),  # reopen
}


class BadTransition(Conflict):
    pass


def check_transition(current: IncidentState, target: IncidentState) -> None:
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        raise BadTransition(
            f"an incident in state {current.value!r} cannot go to {target.value!r} "
            f"(allowed: {allowed})"
        )


def is_reopen(current: IncidentState, target: IncidentState) -> bool:
    return current in DONE_STATES and target in (S.NEW, S.ASSIGNED)
