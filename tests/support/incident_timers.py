"""A small incident world for the deadline and timer tests: a store, users, a department,
incidents opened through IncidentService.open_in and kept in step with deadlines.on_change,
on a ManualClock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from hub.audit import AuditTrail
from hub.audit.service import AuditPaths, AuditSettings
from hub.auth import Role, create_user
from hub.clock import ManualClock
from hub.config import AuditConfig
from hub.incidents import deadlines
from hub.incidents import repository as incidents_repo
from hub.incidents.config import IncidentsConfig
from hub.incidents.model import IncidentLevel, IncidentSource
from hub.incidents.service import IncidentService, NewIncident
from hub.incidents.timers import TimerSweeper
from hub.schema import departments, incident_timers, incidents, notifications
from hub.store import Store

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery-staple"
DEPARTMENT = "sanitation-east"
SUPERVISOR = "sup-li"
DEPT_COMMANDER = "cmd-wang"
ASSIGNEE = "worker-zhao"


def shared_audit(store: Store, directory: Path) -> AuditTrail:
    """The audit trail a hub process writes with (one key and checkpoint file per site)."""
    config = AuditConfig(directory=directory)
    paths = AuditPaths.resolve(config, str(store.engine.url))
    return AuditTrail(store.engine, AuditSettings.open(config, paths))


def seed_people(store: Store, *, dept_commander: str | None = DEPT_COMMANDER) -> None:
    with store.engine.begin() as conn:
        create_user(conn, SUPERVISOR, PASSWORD, Role.OPERATOR)
        create_user(conn, DEPT_COMMANDER, PASSWORD, Role.COMMANDER)
        create_user(conn, "cmd-chen", PASSWORD, Role.COMMANDER)
        create_user(conn, ASSIGNEE, PASSWORD, Role.WORKER)
        conn.execute(
            departments.insert().values(
                id=DEPARTMENT,
                site=None,
                name="Sanitation, east",
                line="sanitation",
                supervisor=SUPERVISOR,
                commander=dept_commander,
                updated_at=T0,
            )
        )


@dataclass
class World:
    store: Store
    audit: AuditTrail
    config: IncidentsConfig
    clock: ManualClock
    site: str = "s1"

    @property
    def service(self) -> IncidentService:
        return IncidentService(self.store.engine, self.audit, self.config, self.clock)

    def open(
        self,
        *,
        category: str = "garbage",
        level: IncidentLevel = IncidentLevel.MEDIUM,
        department: str | None = DEPARTMENT,
        assignee: str | None = ASSIGNEE,
    ) -> Any:
        with self.audit.change("op", "incident.open") as conn:
            row = self.service.open_in(
                conn,
                "op",
                NewIncident(self.site, IncidentSource.MANUAL, category, level, "Bins overflowing"),
            )
            return self._update(conn, str(row.id), department_id=department, assignee=assignee)

    def change(self, incident_id: str, **values: Any) -> Any:
        """An incident change as the incident service makes it: row update + on_change."""
        with self.audit.change("op", "incident.update", incident_id) as conn:
            return self._update(conn, incident_id, **values)

    def _update(self, conn: Any, incident_id: str, **values: Any) -> Any:
        conn.execute(
            update(incidents)
            .where(incidents.c.id == incident_id)
            .values(updated_at=self.clock.now(), **values)
        )
        row = incidents_repo.get(conn, incident_id)
        deadlines.on_change(conn, self.config, row, self.clock.now())
        return incidents_repo.get(conn, incident_id)

    def sweeper(self, hub_id: str = "hub-a") -> TimerSweeper:
        return TimerSweeper(self.store.engine, self.audit, self.config, self.clock, hub_id=hub_id)

    def get(self, incident_id: str) -> Any:
        with self.store.engine.connect() as conn:
            return incidents_repo.get(conn, incident_id)

    def timers(self, incident_id: str) -> dict[str, Any]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(incident_timers).where(incident_timers.c.incident_id == incident_id)
            ).all()
        return {r.kind: r for r in rows}

    def inbox(self, username: str) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(
                conn.execute(
                    select(notifications)
                    .where(notifications.c.username == username)
                    .order_by(notifications.c.id)
                ).all()
            )

    def notification_count(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(notifications)).scalar_one())

    def events(self, incident_id: str, *kinds: str) -> list[Any]:
        with self.store.engine.connect() as conn:
            rows = incidents_repo.events(conn, incident_id)
        return [e for e in rows if not kinds or e.kind in kinds]
