"""Alert rules: acknowledging (idempotent, audited) and notes (audited); both are told to the
live map after commit, so every operator (on every hub replica) sees them at once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shapely.geometry import shape
from sqlalchemy import Connection, Engine

from edge.validators import utcnow
from hub.alerts import repository
from hub.alerts.repository import AlertFilter
from hub.audit import AuditTrail
from hub.clock import as_utc
from hub.errors import NotFound
from hub.geo.locate import CellLocator
from hub.live import Layer, LiveBroadcaster, LiveEvent

# A cell or department filter reads located candidates in chunks of this many and checks them
# against the cells' shapes, so one page costs a few queries however sparse the matches are.
CANDIDATE_CHUNK = 1000


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
        self,
        engine: Engine,
        audit: AuditTrail,
        live: LiveBroadcaster | None = None,
        locator: CellLocator | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.live = live
        self.locator = locator or CellLocator(engine)

    def page(self, f: AlertFilter, *, limit: int, after: str | None) -> list[Any]:
        """Newest first. An alert's cell is the cell its location falls in, found as an
        incident's is (the first cell by id where cells overlap); an alert without a location
        is in no cell, so a cell or department filter never selects it."""
        with self.engine.connect() as conn:
            if f.cell is None and f.department is None:
                return repository.page(conn, f, limit=limit, after=after)
            scope = self._scope(conn, f)
            if scope is None:
                return []
            bounded, cells = scope
            ids: list[str] = []
            cursor = after
            while len(ids) < limit:
                chunk = repository.located(conn, bounded, limit=CANDIDATE_CHUNK, after=cursor)
                ids.extend(self._in_cells(conn, chunk, cells)[: limit - len(ids)])
                if len(chunk) < CANDIDATE_CHUNK:
                    break
                cursor = chunk[-1].id
            return repository.by_ids(conn, ids)

    def count(self, f: AlertFilter) -> int:
        """How many alerts ``f`` selects: what all of :meth:`page`'s pages add up to."""
        with self.engine.connect() as conn:
            if f.cell is None and f.department is None:
                return repository.count(conn, f)
            scope = self._scope(conn, f)
            if scope is None:
                return 0
            bounded, cells = scope
            return len(self._in_cells(conn, repository.located(conn, bounded), cells))

    def _scope(
        self, conn: Connection, f: AlertFilter
    ) -> tuple[AlertFilter, frozenset[str]] | None:
        """The filter narrowed to the named cells' bounding box, and the cells' ids; None when
        no alert can match (no such cell, or a bbox that misses them all)."""
        rows = repository.cell_shapes(conn, f.cell, f.department)
        if not rows:
            return None
        bounds = [shape(r.geometry).bounds for r in rows]
        w, s = min(b[0] for b in bounds), min(b[1] for b in bounds)
        e, n = max(b[2] for b in bounds), max(b[3] for b in bounds)
        if f.bbox is not None:
            w, s, e, n = max(w, f.bbox[0]), max(s, f.bbox[1]), min(e, f.bbox[2]), min(n, f.bbox[3])
            if w > e or s > n:
                return None
        return replace(f, bbox=(w, s, e, n)), frozenset(r.id for r in rows)

    def _in_cells(self, conn: Connection, rows: list[Any], cells: frozenset[str]) -> list[str]:
        """The ids (in the given order) of the located alerts that lie in one of ``cells``."""
        found: dict[str, str | None] = {}
        for site in {r.site for r in rows}:
            mine = [r for r in rows if r.site == site]
            where = self.locator.cells_at(site, [(r.lon, r.lat) for r in mine], conn)
            found.update(zip((r.id for r in mine), where, strict=True))
        return [r.id for r in rows if found[r.id] in cells]

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
