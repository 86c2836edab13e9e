"""SQL for the dashboard's device layer (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from hub.schema import (
    alerts,
    config_pushes,
    device_state,
    devices,
    grid_cells,
    health,
    incidents,
    latest_positions,
)


def active_devices(
    conn: Connection, *, limit: int, after: str | None, site: str | None
) -> list[Any]:
    stmt = (
        select(devices, device_state.c.state, device_state.c.received_at)
        .outerjoin(
            device_state,
            and_(device_state.c.device == devices.c.id, device_state.c.site == devices.c.site),
        )
        .where(devices.c.status == "active")
        .order_by(devices.c.id)
        .limit(limit)
    )
    if site:
        stmt = stmt.where(devices.c.site == site)
    if after is not None:
        stmt = stmt.where(devices.c.id > after)
    return list(conn.execute(stmt).all())


def newest_positions(conn: Connection, ids: list[str]) -> list[Any]:
    """(device, lon, lat) of each device's newest latest-position row."""
    newest = (
        select(latest_positions.c.device, func.max(latest_positions.c.ts).label("ts"))
        .where(latest_positions.c.device.in_(ids))
        .group_by(latest_positions.c.device)
        .subquery()
    )
    return list(
        conn.execute(
            select(latest_positions.c.device, latest_positions.c.lon, latest_positions.c.lat).join(
                newest,
                and_(
                    newest.c.device == latest_positions.c.device,
                    newest.c.ts == latest_positions.c.ts,
                ),
            )
        ).all()
    )


def newest_located_alerts(conn: Connection, ids: list[str]) -> list[Any]:
    newest = (
        select(func.max(alerts.c.id).label("id"))
        .where(alerts.c.device.in_(ids), alerts.c.lon.is_not(None))
        .group_by(alerts.c.device)
        .subquery()
    )
    return list(
        conn.execute(
            select(alerts.c.device, alerts.c.lon, alerts.c.lat).join(
                newest, newest.c.id == alerts.c.id
            )
        ).all()
    )


def newest_health(conn: Connection, ids: list[str]) -> list[Any]:
    newest = (
        select(health.c.device, func.max(health.c.ts).label("ts"))
        .where(health.c.device.in_(ids))
        .group_by(health.c.device)
        .subquery()
    )
    return list(
        conn.execute(
            select(health.c.device, health.c.ts, health.c.payload).join(
                newest,
                and_(newest.c.device == health.c.device, newest.c.ts == health.c.ts),
            )
        ).all()
    )


def newest_camera_pushes(conn: Connection, site: str | None, limit: int) -> list[Any]:
    """(device, site, config) of each active camera's newest config push."""
    newest = (
        select(config_pushes.c.device, func.max(config_pushes.c.version).label("version"))
        .group_by(config_pushes.c.device)
        .subquery()
    )
    stmt = (
        select(devices.c.id.label("device"), devices.c.site, config_pushes.c.config)
        .join(newest, newest.c.device == devices.c.id)
        .join(
            config_pushes,
            and_(
                config_pushes.c.device == newest.c.device,
                config_pushes.c.version == newest.c.version,
            ),
        )
        .where(devices.c.status == "active", devices.c.kind == "camera")
        .order_by(devices.c.id)
        .limit(limit)
    )
    if site:
        stmt = stmt.where(devices.c.site == site)
    return list(conn.execute(stmt).all())


def open_incidents_by_level(conn: Connection, site: str | None, open_states: list[str]) -> Any:
    stmt = (
        select(incidents.c.level, func.count())
        .where(incidents.c.state.in_(open_states))
        .group_by(incidents.c.level)
    )
    if site:
        stmt = stmt.where(incidents.c.site == site)
    return conn.execute(stmt).all()


def overdue_incidents(
    conn: Connection, site: str | None, open_states: list[str], now: datetime, limit: int
) -> tuple[int, list[Any]]:
    """How many open incidents are past their deadline, and the ``limit`` longest overdue."""
    where = [
        incidents.c.state.in_(open_states),
        incidents.c.deadline_at.is_not(None),
        incidents.c.deadline_at < now,
    ]
    if site:
        where.append(incidents.c.site == site)
    total = conn.execute(select(func.count()).select_from(incidents).where(*where)).scalar_one()
    rows = conn.execute(
        select(
            incidents.c.id,
            incidents.c.number,
            incidents.c.title,
            incidents.c.level,
            incidents.c.state,
            incidents.c.deadline_at,
            incidents.c.cell_id,
            grid_cells.c.name.label("cell_name"),
        )
        .outerjoin(grid_cells, grid_cells.c.id == incidents.c.cell_id)
        .where(*where)
        .order_by(incidents.c.deadline_at, incidents.c.id)
        .limit(limit)
    ).all()
    return int(total), list(rows)


def incident_days(conn: Connection, site: str | None, since: datetime) -> Any:
    """(created_at, closed_at) of incidents created or closed since ``since``, streamed."""
    stmt = select(incidents.c.created_at, incidents.c.closed_at).where(
        or_(incidents.c.created_at >= since, incidents.c.closed_at >= since)
    )
    if site:
        stmt = stmt.where(incidents.c.site == site)
    return conn.execution_options(yield_per=5000).execute(stmt)


def alert_counts(
    conn: Connection, site: str | None, since: datetime, until: datetime
) -> list[Any]:
    """(severity, count) of alerts stamped in ``[since, until)``."""
    stmt = (
        select(alerts.c.severity, func.count())
        .where(alerts.c.ts >= since, alerts.c.ts < until)
        .group_by(alerts.c.severity)
    )
    if site:
        stmt = stmt.where(alerts.c.site == site)
    return list(conn.execute(stmt).all())
