"""Retention: delete stored data older than its configured age.

Unacknowledged alerts are never deleted by age: an alert nobody has looked at is still open.
Evidence snapshots expire on their own (``evidence_days``) unless something holds them: see
:func:`evidence_on_hold`. Dead letters are bounded by age and by row count.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, delete, false

from edge.validators import utcnow
from hub.config import RetentionConfig
from hub.schema import alerts, evidence, health, positions, rejected_messages, replies
from hub.store import trim_dead_letters

log = logging.getLogger(__name__)


def evidence_on_hold() -> ColumnElement[bool]:
    """Evidence rows retention must not delete, as a condition on the ``evidence`` table.

    The hook for "deletion of evidence linked to an open incident is refused": when incidents
    exist, this becomes ``evidence.c.alert_id.in_(<alert ids linked to an open incident>)``.
    There are no incidents yet, so nothing is held. (Deleting an alert deletes its snapshot
    by cascade; an open incident must hold its alerts too.)
    """
    return false()


def enforce(engine: Engine, config: RetentionConfig, now: datetime | None = None) -> dict[str, int]:
    """Run one retention pass; returns rows deleted per kind."""
    now = now or utcnow()
    deleted: dict[str, int] = {}
    plan = (
        ("positions", positions, positions.c.ts, config.positions_days, None),
        ("health", health, health.c.ts, config.health_days, None),
        ("replies", replies, replies.c.ts, config.replies_days, None),
        # Before alerts: an expired alert takes its snapshot with it (ON DELETE CASCADE).
        ("evidence", evidence, evidence.c.created_at, config.evidence_days, ~evidence_on_hold()),
        ("alerts", alerts, alerts.c.ts, config.alerts_days, alerts.c.status != "new"),
        (
            "rejected",
            rejected_messages,
            rejected_messages.c.received_at,
            config.rejected_days,
            None,
        ),
    )
    with engine.begin() as conn:
        for name, table, ts_col, days, extra in plan:
            if days is None:
                continue
            stmt = delete(table).where(ts_col < now - timedelta(days=days))
            if extra is not None:
                stmt = stmt.where(extra)
            deleted[name] = conn.execute(stmt).rowcount
        deleted["rejected"] += trim_dead_letters(conn, config.rejected_max_rows)
    if any(deleted.values()):
        log.info("retention deleted %s", deleted)
    return deleted
