"""SQL for notifications (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from hub.schema import notifications


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
