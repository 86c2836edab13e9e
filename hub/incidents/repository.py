"""SQL for incidents, their timelines, linked alerts and evidence, attachments (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, exists, func, select, update

from hub.schema import (
    alerts,
    evidence,
    grid_cells,
    incident_alerts,
    incident_attachments,
    incident_events,
    incident_evidence,
    incidents,
    team_members,
    users,
)
from hub.sequences import next_value


def aware(ts: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were stored as UTC."""
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def next_number(conn: Connection) -> str:
    return f"I-{next_value(conn, 'incident'):06d}"


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(incidents.insert().values(**values))


def get(conn: Connection, incident_id: str, *, for_update: bool = False) -> Any | None:
    stmt = select(incidents).where(incidents.c.id == incident_id)
    if for_update:
        stmt = stmt.with_for_update()  # PostgreSQL; SQLite's write transaction already serialises
    return conn.execute(stmt).first()


def update_versioned(
    conn: Connection, incident_id: str, version: int, values: dict[str, Any]
) -> bool:
    """Apply ``values`` and bump the version, only if the row still has ``version``."""
    res = conn.execute(
        update(incidents)
        .where(incidents.c.id == incident_id, incidents.c.version == version)
        .values(**values, version=version + 1)
    )
    return res.rowcount == 1


def update_plain(conn: Connection, incident_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


def release_group(conn: Connection, incident_id: str) -> None:
    """The incident stops collecting alerts (its window closed, or it was resolved)."""
    conn.execute(update(incidents).where(incidents.c.id == incident_id).values(group_key=None))


def set_alert_stats(
    conn: Connection,
    incident_id: str,
    *,
    alert_count: int,
    first_at: datetime | None,
    last_at: datetime | None,
    now: datetime,
) -> None:
    conn.execute(
        update(incidents)
        .where(incidents.c.id == incident_id)
        .values(
            alert_count=alert_count, first_alert_at=first_at, last_alert_at=last_at, updated_at=now
        )
    )


def by_group(conn: Connection, key: str, *, for_update: bool = False) -> Any | None:
    stmt = select(incidents).where(incidents.c.group_key == key)
    if for_update:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def add_event(
    conn: Connection,
    incident_id: str,
    *,
    ts: datetime,
    actor: str,
    kind: str,
    from_state: str | None = None,
    to_state: str | None = None,
    text: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        incident_events.insert().values(
            incident_id=incident_id,
            ts=ts,
            actor=actor,
            kind=kind,
            from_state=from_state,
            to_state=to_state,
            text=text,
            details=details or {},
        )
    )


def events(conn: Connection, incident_id: str) -> list[Any]:
    stmt = (
        select(incident_events)
        .where(incident_events.c.incident_id == incident_id)
        .order_by(incident_events.c.id)
    )
    return list(conn.execute(stmt).all())


# --- listing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    site: str | None = None
    states: list[str] | None = None
    cell: str | None = None
    department: str | None = None
    category: str | None = None
    level: str | None = None
    assignee: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    levels: list[str] | None = None
    alert_kinds: list[str] | None = None  # has a linked alert of one of these kinds
    device: str | None = None  # has a linked alert from this device


def _filtered(stmt: Select[Any], f: IncidentFilter) -> Select[Any]:
    t = incidents
    for column, value in (
        (t.c.site, f.site),
        (t.c.cell_id, f.cell),
        (t.c.department_id, f.department),
        (t.c.category, f.category),
        (t.c.level, f.level),
        (t.c.assignee, f.assignee),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.states:
        stmt = stmt.where(t.c.state.in_(f.states))
    if f.levels:
        stmt = stmt.where(t.c.level.in_(f.levels))
    if f.since is not None:
        stmt = stmt.where(t.c.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(t.c.created_at < f.until)
    if f.alert_kinds or f.device is not None:
        linked = (
            select(incident_alerts.c.alert_id)
            .join(alerts, alerts.c.id == incident_alerts.c.alert_id)
            .where(incident_alerts.c.incident_id == t.c.id)
        )
        if f.alert_kinds:
            linked = linked.where(alerts.c.kind.in_(f.alert_kinds))
        if f.device is not None:
            linked = linked.where(alerts.c.device == f.device)
        stmt = stmt.where(exists(linked.correlate(t)))
    return stmt


def page(conn: Connection, f: IncidentFilter, *, limit: int, after: str | None) -> list[Any]:
    """Newest first (ids are UUIDv7, so id order is creation order)."""
    t = incidents
    stmt = _filtered(select(t), f).order_by(t.c.id.desc())
    if after is not None:
        stmt = stmt.where(t.c.id < after)
    return list(conn.execute(stmt.limit(limit)).all())


def count(conn: Connection, f: IncidentFilter) -> int:
    stmt = _filtered(select(func.count()).select_from(incidents), f)
    return int(conn.execute(stmt).scalar_one())


# --- alerts and evidence ------------------------------------------------------------------------


def alert_exists(conn: Connection, alert_id: str) -> bool:
    return conn.execute(select(alerts.c.id).where(alerts.c.id == alert_id)).first() is not None


def fresh_alert_ids(conn: Connection, alert_ids: list[str]) -> list[str]:
    """Which of these alerts are linked to no incident yet (in the order given)."""
    linked = linked_alert_ids(conn, alert_ids)
    return [a for a in alert_ids if a not in linked]


def live_groups(conn: Connection, keys: list[str]) -> set[str]:
    """Which of these group keys an incident holds now."""
    if not keys:
        return set()
    stmt = select(incidents.c.group_key).where(incidents.c.group_key.in_(keys))
    return {r.group_key for r in conn.execute(stmt).all()}


def linked_alert_ids(conn: Connection, alert_ids: list[str]) -> set[str]:
    """Which of these alerts are linked to some incident already."""
    if not alert_ids:
        return set()
    rows = conn.execute(
        select(incident_alerts.c.alert_id).where(incident_alerts.c.alert_id.in_(alert_ids))
    ).all()
    return {r.alert_id for r in rows}


def is_alert_linked(conn: Connection, incident_id: str, alert_id: str) -> bool:
    stmt = select(incident_alerts.c.alert_id).where(
        incident_alerts.c.incident_id == incident_id, incident_alerts.c.alert_id == alert_id
    )
    return conn.execute(stmt).first() is not None


def link_alert(conn: Connection, incident_id: str, alert_id: str, now: datetime) -> None:
    conn.execute(
        incident_alerts.insert().values(incident_id=incident_id, alert_id=alert_id, linked_at=now)
    )


def link_alerts(conn: Connection, incident_id: str, alert_ids: list[str], now: datetime) -> None:
    if alert_ids:
        conn.execute(
            incident_alerts.insert(),
            [{"incident_id": incident_id, "alert_id": a, "linked_at": now} for a in alert_ids],
        )


def linked_alerts(conn: Connection, incident_id: str, *, limit: int) -> list[Any]:
    stmt = (
        select(alerts.c.id, alerts.c.kind, alerts.c.severity, alerts.c.ts, alerts.c.device)
        .join(incident_alerts, incident_alerts.c.alert_id == alerts.c.id)
        .where(incident_alerts.c.incident_id == incident_id)
        .order_by(alerts.c.ts, alerts.c.id)
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def evidence_exists(conn: Connection, evidence_id: str) -> bool:
    row = conn.execute(select(evidence.c.id).where(evidence.c.id == evidence_id)).first()
    return row is not None


def is_evidence_linked(conn: Connection, incident_id: str, evidence_id: str) -> bool:
    stmt = select(incident_evidence.c.evidence_id).where(
        incident_evidence.c.incident_id == incident_id,
        incident_evidence.c.evidence_id == evidence_id,
    )
    return conn.execute(stmt).first() is not None


def link_evidence(conn: Connection, incident_id: str, evidence_id: str, now: datetime) -> None:
    conn.execute(
        incident_evidence.insert().values(
            incident_id=incident_id, evidence_id=evidence_id, linked_at=now
        )
    )


def linked_evidence_ids(conn: Connection, incident_id: str) -> list[str]:
    stmt = (
        select(incident_evidence.c.evidence_id)
        .where(incident_evidence.c.incident_id == incident_id)
        .order_by(incident_evidence.c.linked_at)
    )
    return [r.evidence_id for r in conn.execute(stmt).all()]


# --- attachments --------------------------------------------------------------------------------

ATTACHMENT_META = [c for c in incident_attachments.c if c.name != "data"]


def insert_attachment(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(incident_attachments.insert().values(**values))


def attachments_meta(conn: Connection, incident_id: str) -> list[Any]:
    stmt = (
        select(*ATTACHMENT_META)
        .where(incident_attachments.c.incident_id == incident_id)
        .order_by(incident_attachments.c.created_at, incident_attachments.c.id)
    )
    return list(conn.execute(stmt).all())


def attachment(conn: Connection, incident_id: str, attachment_id: str) -> Any | None:
    stmt = select(incident_attachments).where(
        incident_attachments.c.id == attachment_id,
        incident_attachments.c.incident_id == incident_id,
    )
    return conn.execute(stmt).first()


def attachment_count(conn: Connection, incident_id: str) -> int:
    stmt = select(func.count()).where(incident_attachments.c.incident_id == incident_id)
    return int(conn.execute(stmt).scalar() or 0)


# --- users --------------------------------------------------------------------------------------


def active_user(conn: Connection, username: str) -> bool:
    stmt = select(users.c.username).where(users.c.username == username, users.c.active.is_(True))
    return conn.execute(stmt).first() is not None


ASSIGNEE_COLUMNS = (users.c.username, users.c.display_name, users.c.role)


def cell_team_members(conn: Connection, cell_id: str) -> list[Any]:
    """Active members of the team responsible for the cell, by username."""
    stmt = (
        select(*ASSIGNEE_COLUMNS)
        .join(team_members, team_members.c.username == users.c.username)
        .join(grid_cells, grid_cells.c.team_id == team_members.c.team_id)
        .where(grid_cells.c.id == cell_id, users.c.active.is_(True))
        .order_by(users.c.username)
    )
    return list(conn.execute(stmt).all())


def active_users_of_role(conn: Connection, role: str, *, limit: int) -> list[Any]:
    stmt = (
        select(*ASSIGNEE_COLUMNS)
        .where(users.c.role == role, users.c.active.is_(True))
        .order_by(users.c.username)
        .limit(limit)
    )
    return list(conn.execute(stmt).all())
