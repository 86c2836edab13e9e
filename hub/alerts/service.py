"""Alert rules: acknowledging (idempotent, audited) and notes (audited); both are told to the
live map after commit, so every operator (on every hub replica) sees them at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from edge.validators import utcnow
from hub.alerts import repository
from hub.alerts.repository import AlertFilter
from hub.audit import AuditTrail
from hub.clock import as_utc
from hub.errors import NotFound
from hub.live import Layer, LiveBroadcaster, LiveEvent


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
    def __init__(
        self, engine: Engine, audit: AuditTrail, live: LiveBroadcaster | None = None
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.live = live

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
            raise EvidenceNotFound(f"alert {alert_id!r} has no evidence snapshot (or it expired)")
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
            note_id = repository.add_note(conn, alert_id, actor, note, now) if note else None
            row = repository.get(conn, alert_id)
        extra = {"note": _note_json(Note(note_id, actor, note, now))} if note_id and note else {}
        self._tell(row, "ack", extra)

    def add_note(self, actor: str, alert_id: str, text: str) -> Note:
        now = utcnow()
        with self.audit.change(actor, "alert.note", alert_id) as conn:
            if not repository.exists(conn, alert_id):
                raise AlertNotFound(f"no alert {alert_id!r}")
            note_id = repository.add_note(conn, alert_id, actor, text, now)
            row = repository.get(conn, alert_id)
        made = Note(note_id, actor, text, now)
        self._tell(row, "note", {"note": _note_json(made)})
        return made

    def _tell(self, row: Any, change: str, extra: dict[str, Any]) -> None:
        """An alert's new state for the live map: changed fields only, marked with ``change``
        (a page that does not hold the alert ignores it; one that does merges it)."""
        if self.live is None or row is None:
            return
        acked_at = row.acknowledged_at
        self.live.publish(
            [
                LiveEvent(
                    Layer.ALERTS,
                    row.site,
                    {
                        "id": row.id,
                        "change": change,
                        "status": row.status,
                        "acknowledged_by": row.acknowledged_by,
                        "acknowledged_at": as_utc(acked_at).isoformat() if acked_at else None,
                        **extra,
                    },
                )
            ]
        )


def _note_json(note: Note) -> dict[str, Any]:
    return {
        "id": note.id,
        "author": note.author,
        "text": note.text,
        "created_at": as_utc(note.created_at).isoformat(),
    }
