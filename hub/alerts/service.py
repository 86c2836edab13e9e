"""Alert rules: acknowledging (idempotent, audited) and notes (audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from edge.validators import utcnow
from hub.alerts import repository
from hub.alerts.repository import AlertFilter
from hub.audit import AuditTrail
from hub.errors import NotFound


class AlertNotFound(NotFound):
    pass


class EvidenceNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    author: str
    text: str
    created_at: datetime


class AlertService:
    def __init__(self, engine: Engine, audit: AuditTrail) -> None:
        self.engine = engine
        self.audit = audit

    def page(self, f: AlertFilter, *, limit: int, after: str | None) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.page(conn, f, limit=limit, after=after)

    def evidence(self, actor: str, alert_id: str) -> tuple[bytes, str]:
        """The alert's evidence snapshot and its content type; every view is audited.

        Raises :class:`EvidenceNotFound` when the alert has none, or when retention
        (``retention.evidence_days``) deleted it.
        """
        with self.engine.connect() as conn:
            snap = repository.evidence_of(conn, alert_id)
        if snap is None:
            raise EvidenceNotFound(
                f"alert {alert_id!r} has no evidence snapshot (or it expired)"
            )
        self.audit.record(actor, "alert.evidence_view", alert_id)
        return bytes(snap.data), str(snap.content_type)

    def get(self, alert_id: str) -> tuple[Any, list[Any]]:
        """The alert row and its notes, oldest first."""
        with self.engine.connect() as conn:
            row = repository.get(conn, alert_id)
            if row is None:
                raise AlertNotFound(f"no alert {alert_id!r}")
            return row, repository.notes(conn, alert_id)

    def acknowledge(self, actor: str, alert_id: str, note: str | None) -> None:
        with self.audit.change(actor, "alert.ack", alert_id) as conn:
            if not repository.exists(conn, alert_id):
                raise AlertNotFound(f"no alert {alert_id!r}")
            now = utcnow()
            repository.acknowledge(conn, alert_id, actor, now)
            if note:
                repository.add_note(conn, alert_id, actor, note, now)

    def add_note(self, actor: str, alert_id: str, text: str) -> Note:
        now = utcnow()
        with self.audit.change(actor, "alert.note", alert_id) as conn:
            if not repository.exists(conn, alert_id):
                raise AlertNotFound(f"no alert {alert_id!r}")
            note_id = repository.add_note(conn, alert_id, actor, text, now)
        return Note(note_id, actor, text, now)
