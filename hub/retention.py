"""Retention: delete stored data older than its configured age.

Unacknowledged alerts are never deleted by age: an alert nobody has looked at is still open.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete

from edge.validators import utcnow
from hub.config import RetentionConfig
from hub.schema import alerts, health, positions, replies

log = logging.getLogger(__name__)


def enforce(engine: Engine, config: RetentionConfig, now: datetime | None = None) -> dict[str, int]:
    """Run one retention pass; returns rows deleted per kind."""
    now = now or utcnow()
    deleted: dict[str, int] = {}
    plan = (
        ("positions", positions, positions.c.ts, config.positions_days, None),
        ("health", health, health.c.ts, config.health_days, None),
        ("replies", replies, replies.c.ts, config.replies_days, None),
        ("alerts", alerts, alerts.c.ts, config.alerts_days, alerts.c.status != "new"),
    )
    with engine.begin() as conn:
        for name, table, ts_col, days, extra in plan:
            if days is None:
                continue
            stmt = delete(table).where(ts_col < now - timedelta(days=days))
            if extra is not None:
                stmt = stmt.where(extra)
            deleted[name] = conn.execute(stmt).rowcount
    if any(deleted.values()):
        log.info("retention deleted %s", deleted)
    return deleted
