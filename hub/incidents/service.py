"""Incident rules: opening (from alerts, field reports, operators), routing, assignment,
transitions, comments, links; every change audited and written to the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from edge.validators import new_id
from hub.audit import AuditTrail
from hub.clock import Clock, SystemClock
from hub.errors import Invalid, NotFound
from hub.incidents import repository
from hub.incidents.config import IncidentsConfig
from hub.incidents.model import EventKind, IncidentLevel, IncidentSource, IncidentState


class IncidentNotFound(NotFound):
    pass


class UnknownCategory(Invalid):
    pass


@dataclass(frozen=True, slots=True)
class NewIncident:
    site: str
    source: IncidentSource
    category: str
    level: IncidentLevel
    title: str
    description: str = ""
    lon: float | None = None
    lat: float | None = None
    cell_id: str | None = None  # None: located from lon/lat


class IncidentService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        config: IncidentsConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config or IncidentsConfig()
        self.clock = clock or SystemClock()

    def get(self, incident_id: str) -> Any:
        with self.engine.connect() as conn:
            row = repository.get(conn, incident_id)
        if row is None:
            raise IncidentNotFound(f"no incident {incident_id!r}")
        return row

    def open_in(self, conn: Connection, actor: str, new: NewIncident) -> Any:
        """Open an incident inside the caller's (audited) transaction; returns its row."""
        if self.config.category(new.category) is None:
            raise UnknownCategory(f"unknown incident category {new.category!r}")
        now = self.clock.now()
        incident_id = new_id()
        repository.insert(
            conn,
            {
                "id": incident_id,
                "number": repository.next_number(conn),
                "site": new.site,
                "source": new.source.value,
                "category": new.category,
                "level": new.level.value,
                "title": new.title,
                "description": new.description,
                "cell_id": new.cell_id,
                "lon": new.lon,
                "lat": new.lat,
                "state": IncidentState.NEW.value,
                "escalation_stage": 0,
                "alert_count": 0,
                "opened_by": actor,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            },
        )
        repository.add_event(
            conn,
            incident_id,
            ts=now,
            actor=actor,
            kind=EventKind.CREATED,
            to_state=IncidentState.NEW,
            details={"source": new.source.value, "category": new.category},
        )
        return repository.get(conn, incident_id)

    def open(self, actor: str, new: NewIncident) -> Any:
        with self.audit.change(
            actor, "incident.open", "", {"source": new.source.value, "category": new.category}
        ) as conn:
            return self.open_in(conn, actor, new)
