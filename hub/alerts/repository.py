"""SQL for alerts and their notes (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from hub.schema import alert_notes, alerts, evidence

BBox = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class AlertFilter:
    site: str | None = None
    bbox: BBox | None = None
    kinds: list[str] | None = None
    severities: list[str] | None = None
    status: str | None = None
    device: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def bbox_clauses(table: Any, bbox: BBox | None) -> list[Any]:
    if bbox is None:
        return []
    w, s, e, n = bbox
    return [table.c.lon >= w, table.c.lon <= e, table.c.lat >= s, table.c.lat <= n]


def page(conn: Connection, f: AlertFilter, *, limit: int, after: str | None) -> list[Any]:
    t = alerts
    stmt = select(t).where(*bbox_clauses(t, f.bbox)).order_by(t.c.id.desc())
    if f.site:
        stmt = stmt.where(t.c.site == f.site)
    if f.kinds:
        stmt = stmt.where(t.c.kind.in_(f.kinds))
    if f.severities:
        stmt = stmt.where(t.c.severity.in_(f.severities))
    if f.status:
        stmt = stmt.where(t.c.status == f.status)
    if f.device:
        stmt = stmt.where(t.c.device == f.device)
    if f.since:
        stmt = stmt.where(t.c.ts >= f.since)
    if f.until:
        stmt = stmt.where(t.c.ts < f.until)
    if after is not None:
        stmt = stmt.where(t.c.id < after)
    return list(conn.execute(stmt.limit(limit)).all())


def get(conn: Connection, alert_id: str) -> Any | None:
    return conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()


def exists(conn: Connection, alert_id: str) -> bool:
    return conn.execute(select(alerts.c.id).where(alerts.c.id == alert_id)).first() is not None


def notes(conn: Connection, alert_id: str) -> list[Any]:
    return list(
        conn.execute(
            select(alert_notes).where(alert_notes.c.alert_id == alert_id).order_by(alert_notes.c.id)
        ).all()
    )


def acknowledge(conn: Connection, alert_id: str, by: str, now: datetime) -> None:
    """Only a new alert changes: a second ack keeps the first acknowledger."""
    conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.status == "new")
        .values(status="acknowledged", acknowledged_by=by, acknowledged_at=now)
    )


def add_note(conn: Connection, alert_id: str, author: str, text: str, now: datetime) -> int:
    res = conn.execute(
        alert_notes.insert().values(alert_id=alert_id, author=author, text=text, created_at=now)
    )
    return int(res.inserted_primary_key[0]) if res.inserted_primary_key else 0


def evidence_of(conn: Connection, alert_id: str) -> Any | None:
    """The evidence snapshot stored with an alert, if it has one that retention kept."""
    return conn.execute(select(evidence).where(evidence.c.alert_id == alert_id).limit(1)).first()
