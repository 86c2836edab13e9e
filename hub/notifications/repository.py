"""SQL for notifications (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from hub.schema import notifications

N = notifications.c


def notify(
    conn: Connection,
    username: str,
    *,
    kind: str,
    message_key: str,
    params: dict[str, Any],
    now: datetime,
    incident_id: str | None = None,
) -> None:
    """Put a message in a user's inbox, inside the caller's transaction."""
    conn.execute(
        notifications.insert().values(
            username=username,
            kind=kind,
            incident_id=incident_id,
            message_key=message_key,
            params=params,
            created_at=now,
        )
    )


def page(
    conn: Connection, username: str, *, unread: bool, limit: int, before_id: int | None
) -> Sequence[Any]:
    """One user's notifications, newest first (ids grow with time)."""
    where = N.username == username
    if unread:
        where &= N.read_at.is_(None)
    if before_id is not None:
        where &= N.id < before_id
    stmt = select(notifications).where(where).order_by(N.id.desc()).limit(limit)
    return conn.execute(stmt).all()


def get(conn: Connection, username: str, notification_id: int) -> Any | None:
    """The notification if it is this user's (another user's is as absent as a missing one)."""
    stmt = select(notifications).where((N.id == notification_id) & (N.username == username))
    return conn.execute(stmt).first()


def mark_read(conn: Connection, username: str, notification_id: int, now: datetime) -> bool:
    """True when it was unread; re-reading keeps the first read time."""
    res = conn.execute(
        update(notifications)
        .where((N.id == notification_id) & (N.username == username) & N.read_at.is_(None))
        .values(read_at=now)
    )
    return res.rowcount == 1


def unread_count(conn: Connection, username: str) -> int:
    stmt = select(func.count()).where((N.username == username) & N.read_at.is_(None))
    return int(conn.execute(stmt).scalar_one())
