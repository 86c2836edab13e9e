"""SQL for devices, their state and health, and config pushes (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, select, update

from hub.schema import config_pushes, device_state, devices, health, replies


def _device_query() -> Select[Any]:
    pushed = (
        select(config_pushes.c.device, func.max(config_pushes.c.version).label("pushed"))
        .group_by(config_pushes.c.device)
        .subquery()
    )
    return (
        select(
            devices,
            device_state.c.state,
            device_state.c.received_at,
            device_state.c.sw_version,
            device_state.c.config_version,
            pushed.c.pushed,
        )
        .outerjoin(
            device_state,
            and_(device_state.c.device == devices.c.id, device_state.c.site == devices.c.site),
        )
        .outerjoin(pushed, pushed.c.device == devices.c.id)
    )


LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """``text`` as a LIKE pattern that matches it literally (with ``escape=LIKE_ESCAPE``)."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def page(
    conn: Connection,
    *,
    limit: int,
    after: str | None = None,
    site: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    q: str | None = None,
) -> list[Any]:
    stmt = _device_query().order_by(devices.c.id).limit(limit)
    if site:
        stmt = stmt.where(devices.c.site == site)
    if kind:
        stmt = stmt.where(devices.c.kind == kind)
    if status:
        stmt = stmt.where(devices.c.status == status)
    if q:
        # q is text to find, not a pattern: '%' and '_' match themselves.
        like = f"%{escape_like(q)}%"
        stmt = stmt.where(
            devices.c.id.like(like, escape=LIKE_ESCAPE)
            | devices.c.name.like(like, escape=LIKE_ESCAPE)
        )
    if after is not None:
        stmt = stmt.where(devices.c.id > after)
    return list(conn.execute(stmt).all())


def get_view(conn: Connection, device: str) -> Any | None:
    """A device with its reported state and newest pushed config version."""
    return conn.execute(_device_query().where(devices.c.id == device)).first()


def get(conn: Connection, device: str) -> Any | None:
    return conn.execute(select(devices).where(devices.c.id == device)).first()


def get_active(conn: Connection, device: str) -> Any | None:
    return conn.execute(
        select(devices).where(devices.c.id == device, devices.c.status == "active")
    ).first()


def all_ordered(conn: Connection) -> list[Any]:
    return list(conn.execute(select(devices).order_by(devices.c.site, devices.c.id)).all())


def directory_rows(conn: Connection) -> list[Any]:
    return list(
        conn.execute(select(devices.c.id, devices.c.site, devices.c.kind, devices.c.status)).all()
    )


def active(conn: Connection) -> list[Any]:
    return list(conn.execute(select(devices).where(devices.c.status == "active")).all())


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(devices.insert().values(**values))


def update_fields(conn: Connection, device: str, values: dict[str, Any]) -> bool:
    res = conn.execute(update(devices).where(devices.c.id == device).values(**values))
    return res.rowcount == 1


def retire(conn: Connection, device: str, now: datetime) -> bool:
    res = conn.execute(
        update(devices)
        .where(devices.c.id == device, devices.c.status == "active")
        .values(status="retired", retired_at=now, mqtt_password_hash=None)
    )
    return res.rowcount == 1


def health_page(
    conn: Connection,
    device: str,
    *,
    limit: int,
    after: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[Any]:
    stmt = (
        select(health.c.id, health.c.ts, health.c.payload)
        .where(health.c.device == device)
        .order_by(health.c.ts.desc(), health.c.id.desc())
        .limit(limit)
    )
    if since:
        stmt = stmt.where(health.c.ts >= since)
    if until:
        stmt = stmt.where(health.c.ts < until)
    if after is not None:
        stmt = stmt.where(health.c.id < after)
    return list(conn.execute(stmt).all())


def next_config_version(conn: Connection, device: str) -> int:
    current = conn.execute(
        select(func.max(config_pushes.c.version)).where(config_pushes.c.device == device)
    ).scalar()
    return int(current or 0) + 1


def insert_config_push(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(config_pushes.insert().values(**values))


def latest_config_push(conn: Connection, device: str) -> Any | None:
    return conn.execute(
        select(config_pushes)
        .where(config_pushes.c.device == device)
        .order_by(config_pushes.c.version.desc())
        .limit(1)
    ).first()


def applied_config_version(conn: Connection, device: str) -> int | None:
    value = conn.execute(
        select(device_state.c.config_version).where(device_state.c.device == device)
    ).scalar()
    return int(value) if value is not None else None


def reply_payload(conn: Connection, request_id: str, device: str) -> str | None:
    """The stored Reply of ``device`` citing ``request_id`` (another device's is not its answer)."""
    value = conn.execute(
        select(replies.c.payload)
        .where(replies.c.request_id == request_id, replies.c.device == device)
        .limit(1)
    ).scalar()
    return str(value) if value is not None else None
