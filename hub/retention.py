"""Retention: delete stored data older than its configured age.

Unacknowledged alerts are never deleted by age: an alert nobody has looked at is still open.
Evidence snapshots expire on their own (``evidence_days``) unless something holds them: see
:func:`evidence_on_hold`. Dead letters are bounded by age and by row count. Hub -> device
commands are deleted only once finished (answered, failed or superseded): one still waiting
for its device is the hub's promise to deliver it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, select, update

from edge.validators import utcnow
from hub.commands.repository import OPEN_STATES as OPEN_COMMAND_STATES
from hub.commands.repository import STATES as COMMAND_STATES
from hub.config import RetentionConfig
from hub.incidents.model import OPEN_STATES
from hub.schema import (
    alerts,
    command_outbox,
    evidence,
    face_crops,
    health,
    incident_alerts,
    incident_evidence,
    incidents,
    positions,
    rejected_messages,
    replies,
)
from hub.store import trim_dead_letters

log = logging.getLogger(__name__)


FINISHED_COMMAND_STATES = tuple(s for s in COMMAND_STATES if s not in OPEN_COMMAND_STATES)


def _open_incident_ids() -> Any:
    return select(incidents.c.id).where(incidents.c.state.in_([s.value for s in OPEN_STATES]))


def alerts_on_hold() -> ColumnElement[bool]:
    """Alerts retention must not delete: those linked to an open incident (deleting one would
    take its snapshot and its place in the incident's history with it)."""
    linked = select(incident_alerts.c.alert_id).where(
        incident_alerts.c.incident_id.in_(_open_incident_ids())
    )
    # Evidence linked by hand belongs to an alert too, and deleting that alert would cascade
    # to the held snapshot (evidence.alert_id is ON DELETE CASCADE).
    by_evidence = select(evidence.c.alert_id).where(
        evidence.c.id.in_(
            select(incident_evidence.c.evidence_id).where(
                incident_evidence.c.incident_id.in_(_open_incident_ids())
            )
        )
    )
    return alerts.c.id.in_(linked) | alerts.c.id.in_(by_evidence)


def evidence_on_hold() -> ColumnElement[bool]:
    """Evidence rows retention must not delete: a snapshot of an alert linked to an open
    incident, or a snapshot linked to one by hand. (Once the incident is resolved or closed
    its evidence ages out on the usual schedule.)"""
    by_alert = select(incident_alerts.c.alert_id).where(
        incident_alerts.c.incident_id.in_(_open_incident_ids())
    )
    by_hand = select(incident_evidence.c.evidence_id).where(
        incident_evidence.c.incident_id.in_(_open_incident_ids())
    )
    return evidence.c.alert_id.in_(by_alert) | evidence.c.id.in_(by_hand)


def enforce(engine: Engine, config: RetentionConfig, now: datetime | None = None) -> dict[str, int]:
    """Run one retention pass; returns rows deleted per kind."""
    now = now or utcnow()
    deleted: dict[str, int] = {}
    plan = (
        ("positions", positions, positions.c.ts, config.positions_days, None),
        ("health", health, health.c.ts, config.health_days, None),
        ("replies", replies, replies.c.ts, config.replies_days, None),
        (
            "alerts",
            alerts,
            alerts.c.ts,
            config.alerts_days,
            (alerts.c.status != "new") & ~alerts_on_hold(),
        ),
        (
            "rejected",
            rejected_messages,
            rejected_messages.c.received_at,
            config.rejected_days,
            None,
        ),
        (
            "commands",
            command_outbox,
            command_outbox.c.created_at,
            config.commands_days,
            command_outbox.c.state.in_(FINISHED_COMMAND_STATES),
        ),
    )
    with engine.begin() as conn:
        if config.evidence_days is not None:
            before = now - timedelta(days=config.evidence_days)
            deleted["evidence"] = _expire_evidence(conn, before)
            deleted["face_crops"] = _expire_face_crops(conn, before)
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


EXPIRE_CHUNK = 500


def _expire_face_crops(conn: Connection, before: datetime) -> int:
    """Face crops age out with the evidence (those of rejected matches went much earlier,
    hub/matches); a crop whose alert an open incident holds stays."""
    held = select(incident_alerts.c.alert_id).where(
        incident_alerts.c.incident_id.in_(_open_incident_ids())
    )
    doomed = (face_crops.c.created_at < before) & ~face_crops.c.alert_id.in_(held)
    return int(conn.execute(delete(face_crops).where(doomed)).rowcount)


def _expire_evidence(conn: Connection, before: datetime) -> int:
    """Delete snapshots older than ``before`` that nothing holds. Their alerts keep the digest
    under ``evidence_expired`` instead of ``evidence``, so no client offers a snapshot that is
    gone. (Runs before the alerts pass; an expired alert takes its snapshot by cascade.)"""
    doomed = (evidence.c.created_at < before) & ~evidence_on_hold()
    alert_ids = list(conn.execute(select(evidence.c.alert_id).where(doomed)).scalars())
    for start in range(0, len(alert_ids), EXPIRE_CHUNK):
        chunk = alert_ids[start : start + EXPIRE_CHUNK]
        rows = conn.execute(select(alerts.c.id, alerts.c.payload).where(alerts.c.id.in_(chunk)))
        for alert_id, payload in rows.all():
            body = dict(payload)
            ref = body.pop("evidence", None)
            if not isinstance(ref, dict):
                continue
            body["evidence_expired"] = {
                "sha256": ref.get("sha256"),
                "deleted_before": before.isoformat(),
            }
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(payload=body))
    return int(conn.execute(delete(evidence).where(doomed)).rowcount)
