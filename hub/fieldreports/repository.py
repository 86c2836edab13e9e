"""SQL for field reports and their media (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select

from hub.schema import field_reports, incident_attachments, incidents
from hub.sequences import next_value

# A report's row joined with the fields of its incident that its status comes from.
_COLUMNS = (
    *field_reports.c,
    incidents.c.number.label("incident_number"),
    incidents.c.state.label("incident_state"),
    incidents.c.updated_at.label("incident_updated_at"),
    incidents.c.department_id.label("department_id"),
)


def next_number(conn: Connection) -> str:
    return f"R-{next_value(conn, 'field_report'):06d}"


def _joined() -> Select[Any]:
    return select(*_COLUMNS).select_from(
        field_reports.outerjoin(incidents, incidents.c.id == field_reports.c.incident_id)
    )


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(field_reports.insert().values(**values))


def add_attachment(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(incident_attachments.insert().values(**values))


def get(conn: Connection, report_id: str) -> Any | None:
    return conn.execute(_joined().where(field_reports.c.id == report_id)).first()


def get_by_number(conn: Connection, number: str) -> Any | None:
    return conn.execute(_joined().where(field_reports.c.number == number)).first()


def by_client_id(conn: Connection, reporter: str, client_report_id: str) -> Any | None:
    stmt = _joined().where(
        field_reports.c.reporter == reporter,
        field_reports.c.client_report_id == client_report_id,
    )
    return conn.execute(stmt).first()


def page(
    conn: Connection,
    *,
    limit: int,
    after: str | None = None,
    reporter: str | None = None,
    numbers: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: str | None = None,
    states: Sequence[str] | None = None,
) -> list[Any]:
    """Newest first (ids are time-ordered UUIDv7); ``after`` is the last id of the previous page."""
    stmt = _joined()
    if reporter is not None:
        stmt = stmt.where(field_reports.c.reporter == reporter)
    if numbers is not None:
        stmt = stmt.where(field_reports.c.number.in_(list(numbers)))
    if categories is not None:
        stmt = stmt.where(field_reports.c.category.in_(list(categories)))
    if since is not None:
        stmt = stmt.where(field_reports.c.created_at >= since)
    if until is not None:
        stmt = stmt.where(field_reports.c.created_at <= until)
    if channel is not None:
        stmt = stmt.where(field_reports.c.channel == channel)
    if states is not None:
        stmt = stmt.where(incidents.c.state.in_(list(states)))
    if after is not None:
        stmt = stmt.where(field_reports.c.id < after)
    stmt = stmt.order_by(field_reports.c.id.desc()).limit(limit)
    return list(conn.execute(stmt).all())


def attachments(conn: Connection, report_id: str) -> list[Any]:
    stmt = (
        select(
            incident_attachments.c.id,
            incident_attachments.c.kind,
            incident_attachments.c.content_type,
            incident_attachments.c.sha256,
            incident_attachments.c.size_bytes,
            incident_attachments.c.width,
            incident_attachments.c.height,
        )
        .where(incident_attachments.c.report_id == report_id)
        .order_by(incident_attachments.c.id)
    )
    return list(conn.execute(stmt).all())


def attachment_data(conn: Connection, report_id: str, attachment_id: str) -> Any | None:
    stmt = select(
        incident_attachments.c.kind,
        incident_attachments.c.content_type,
        incident_attachments.c.data,
    ).where(
        incident_attachments.c.report_id == report_id,
        incident_attachments.c.id == attachment_id,
    )
    return conn.execute(stmt).first()
