"""Seeding helpers for the incident tests: cells, departments, users and alerts as rows (what
the org, geo and ingest areas would have written), and a service on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from edge.validators import new_id
from hub.audit import AuditTrail
from hub.auth import Role
from hub.clock import ManualClock
from hub.incidents.alert_rules import StoredAlert
from hub.incidents.config import IncidentsConfig
from hub.incidents.service import IncidentService
from hub.schema import alerts, cell_departments, departments, evidence, grid_cells, users
from hub.store import Store

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # a Tuesday, 09:00 in Asia/Shanghai


def square(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [
            [
                [lon, lat],
                [lon + size, lat],
                [lon + size, lat + size],
                [lon, lat + size],
                [lon, lat],
            ]
        ],
    }


def add_cell(engine: Engine, site: str, cell_id: str, lon: float, lat: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            grid_cells.insert().values(
                id=cell_id,
                site=site,
                name=cell_id,
                geometry=square(lon, lat),
                properties={},
                updated_at=datetime.now(UTC),
            )
        )


def add_department(engine: Engine, dept_id: str, line: str, **kw: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            departments.insert().values(
                id=dept_id, name=dept_id, line=line, updated_at=datetime.now(UTC), **kw
            )
        )


def name_department(engine: Engine, cell_id: str, line: str, dept_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            cell_departments.insert().values(cell_id=cell_id, line=line, department_id=dept_id)
        )


def add_user(engine: Engine, username: str, role: Role = Role.OPERATOR) -> None:
    """A user row (with an unusable password hash: hashing is slow and no test logs in)."""
    with engine.begin() as conn:
        conn.execute(
            users.insert().values(
                username=username,
                role=role.value,
                password_hash="!",
                active=True,
                created_at=datetime.now(UTC),
            )
        )


def add_alert(
    engine: Engine,
    site: str,
    *,
    kind: str = "intrusion",
    severity: str = "high",
    ts: datetime = T0,
    device: str = "cam-1",
    lon: float | None = None,
    lat: float | None = None,
    zone: str | None = None,
    alert_id: str | None = None,
    with_evidence: bool = False,
) -> StoredAlert:
    """An alert row as ingest stores it; returns what the alert rules read of it."""
    aid = alert_id or new_id()
    with engine.begin() as conn:
        conn.execute(
            alerts.insert().values(
                id=aid,
                site=site,
                device=device,
                kind=kind,
                severity=severity,
                ts=ts,
                received_at=ts,
                lon=lon,
                lat=lat,
                zone=zone,
                status="new",
                payload={"title": f"{kind} at {device}"},
            )
        )
        if with_evidence:
            conn.execute(
                evidence.insert().values(
                    id=new_id(),
                    alert_id=aid,
                    site=site,
                    device=device,
                    content_type="image/jpeg",
                    sha256="0" * 64,
                    size_bytes=3,
                    data=b"abc",
                    created_at=ts,
                )
            )
    return StoredAlert(aid, site, device, kind, severity, ts, f"{kind} at {device}", lon, lat, zone)


def make_service(
    store: Store,
    config: IncidentsConfig | None = None,
    clock: ManualClock | None = None,
    **kw: Any,
) -> IncidentService:
    return IncidentService(
        store.engine,
        AuditTrail(store.engine),
        config or IncidentsConfig(),
        clock or ManualClock(T0),
        **kw,
    )


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
