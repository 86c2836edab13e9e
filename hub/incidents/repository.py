"""SQL for incidents and their timelines (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from hub.schema import incident_events, incidents
from hub.sequences import next_value


def next_number(conn: Connection) -> str:
    return f"I-{next_value(conn, 'incident'):06d}"


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(incidents.insert().values(**values))


def get(conn: Connection, incident_id: str) -> Any | None:
    return conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()


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
