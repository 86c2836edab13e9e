"""SQL for alerts and their notes (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select, update

from hub.schema import (
    alert_notes,
    alerts,
    cell_departments,
    evidence,
    grid_cells,
    incident_alerts,
    incidents,
)

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
    # Located in this grid cell / in a cell this department serves (for any line of work):
    # the service resolves these through the cells' shapes, as incidents are located.
    cell: str | None = None
    department: str | None = None


def bbox_clauses(table: Any, bbox: BBox | None) -> list[Any]:
    if bbox is None:
        return []
    w, s, e, n = bbox
    return [table.c.lon >= w, table.c.lon <= e, table.c.lat >= s, table.c.lat <= n]


def _filtered(stmt: Select[Any], f: AlertFilter) -> Select[Any]:
    t = alerts
    stmt = stmt.where(*bbox_clauses(t, f.bbox))
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
    return stmt


# The incident an alert was grouped into (the first by id when linked by hand to several):
# a correlated lookup on incident_alerts' alert_id index, so a page never repeats an alert.
_INCIDENT_ID = (
    select(func.min(incident_alerts.c.incident_id))
    .where(incident_alerts.c.alert_id == alerts.c.id)
    .correlate(alerts)
    .scalar_subquery()
)
_INCIDENT_NUMBER = (
    select(incidents.c.number).where(incidents.c.id == _INCIDENT_ID).scalar_subquery()
)


def page(conn: Connection, f: AlertFilter, *, limit: int, after: str | None) -> list[Any]:
    """Newest first, each row with ``incident_id`` and ``incident_number`` (or None)."""
    t = alerts
    stmt = _filtered(
        select(t, _INCIDENT_ID.label("incident_id"), _INCIDENT_NUMBER.label("incident_number")),
        f,
    ).order_by(t.c.id.desc())
    if after is not None:
        stmt = stmt.where(t.c.id < after)
    return list(conn.execute(stmt.limit(limit)).all())


def count(conn: Connection, f: AlertFilter) -> int:
    stmt = _filtered(select(func.count()).select_from(alerts), f)
    return int(conn.execute(stmt).scalar_one())


def located(
    conn: Connection, f: AlertFilter, *, limit: int | None = None, after: str | None = None
) -> list[Any]:
    """``id, site, lon, lat`` of the alerts ``f`` selects that have a location, newest first
    (the candidates of a cell filter, which is checked against the cells' shapes in Python)."""
    t = alerts
    stmt = _filtered(select(t.c.id, t.c.site, t.c.lon, t.c.lat), f).where(
        t.c.lon.is_not(None), t.c.lat.is_not(None)
    )
    stmt = stmt.order_by(t.c.id.desc())
    if after is not None:
        stmt = stmt.where(t.c.id < after)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(conn.execute(stmt).all())


def by_ids(conn: Connection, ids: list[str]) -> list[Any]:
    """Full rows (as :func:`page` gives them) of these alerts, newest first."""
    if not ids:
        return []
    t = alerts
    stmt = select(
        t, _INCIDENT_ID.label("incident_id"), _INCIDENT_NUMBER.label("incident_number")
    ).where(t.c.id.in_(ids))
    return list(conn.execute(stmt.order_by(t.c.id.desc())).all())


def get(conn: Connection, alert_id: str) -> Any | None:
    rows = by_ids(conn, [alert_id])
    return rows[0] if rows else None


def cell_shapes(conn: Connection, cell: str | None, department: str | None) -> list[Any]:
    """``id, site, geometry`` of the cells a cell and/or department filter names."""
    stmt = select(grid_cells.c.id, grid_cells.c.site, grid_cells.c.geometry)
    if cell is not None:
        stmt = stmt.where(grid_cells.c.id == cell)
    if department is not None:
        served = select(cell_departments.c.cell_id).where(
            cell_departments.c.department_id == department
        )
        stmt = stmt.where(grid_cells.c.id.in_(served))
    return list(conn.execute(stmt.order_by(grid_cells.c.id)).all())


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
