"""Seeded notifications for the API fuzz run (the fuzz cases act as the site's admin)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from hub.notifications.repository import notify
from hub.schema import notifications
from tests.hub.conftest import RunningHub


def seed(hub: RunningHub) -> dict[str, list[str]]:
    admin = f"{hub.site}-admin"
    now = datetime.now(UTC)
    with hub.service.store.engine.begin() as conn:
        for n in range(3):
            notify(
                conn,
                admin,
                kind="reminder",
                message_key="notify.incident_reminder",
                params={"number": f"I-{n:06d}", "title": "Bins", "deadline_at": now.isoformat()},
                now=now,
            )
        ids = conn.execute(
            select(notifications.c.id).where(notifications.c.username == admin)
        ).scalars()
        return {"notification_id": [str(i) for i in ids]}
