"""Warnings under test: a hub on a ManualClock (its worker ticking only when a test says so),
with helpers that make cells, incidents and alerts the way the rest of the hub would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from edge.validators import new_id
from hub.auth import Role, create_user
from hub.clock import ManualClock
from hub.config import ApiConfig, AuditConfig, BrokerFilesConfig, HubConfig
from hub.incidents.model import IncidentLevel, IncidentSource, IncidentState
from hub.incidents.service import NewIncident
from hub.schema import alerts, incidents
from hub.service import HubService
from hub.warnings.service import Change
from tests.hub.conftest import PASSWORD, RunningHub, stop_hub
from tests.support.broker import BrokerHarness

START = datetime.fromisoformat("2026-12-01T01:00:00+00:00")
LON0, LAT0 = 114.05, 22.54
SIZE = 0.01


def square(col: int, row: int = 0) -> dict[str, Any]:
    w, s = LON0 + col * SIZE, LAT0 + row * SIZE
    e, n = w + SIZE, s + SIZE
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def centre(col: int, row: int = 0) -> tuple[float, float]:
    return LON0 + (col + 0.5) * SIZE, LAT0 + (row + 0.5) * SIZE


def base_config(site: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "site": site,
        "database_url": f"sqlite:///{tmp_path}/hub.sqlite",
        "audit": AuditConfig(directory=tmp_path / "audit"),
        # The worker thread never ticks on its own in a test: tests call tick().
        "warnings": {"tick_s": 3600},
    }
    values.update(overrides)
    return values


@dataclass
class Warnings:
    """The hub's services on a ManualClock, and the ways incidents and alerts appear."""

    service: HubService
    clock: ManualClock
    site: str

    @property
    def ctx(self) -> Any:
        return self.service.ctx

    def cell(self, cell_id: str, col: int, row: int = 0, name: str | None = None) -> None:
        self.ctx.geo.put_cell(
            "admin",
            cell_id,
            cell_id,
            square(col, row),
            {"site": self.site, "name": name or cell_id.upper(), "team": ""},
        )

    def incident(
        self,
        cell_id: str | None,
        level: str = "medium",
        category: str = "garbage",
        *,
        deadline_in_min: float | None = None,
    ) -> Any:
        new = NewIncident(
            site=self.site,
            source=IncidentSource.MANUAL,
            category=category,
            level=IncidentLevel(level),
            title=f"{level} {category}",
            cell_id=cell_id,
        )
        row = self.ctx.incidents.open("operator", new)
        if deadline_in_min is not None:
            self.patch(row.id, deadline_at=self.clock.now() + timedelta(minutes=deadline_in_min))
        return row

    def patch(self, incident_id: str, **values: Any) -> None:
        """What the incident service will do on a change: new values, updated_at now."""
        with self.ctx.engine.begin() as conn:
            conn.execute(
                update(incidents)
                .where(incidents.c.id == incident_id)
                .values(updated_at=self.clock.now(), **values)
            )

    def close(self, incident_id: str) -> None:
        self.patch(incident_id, state=IncidentState.CLOSED.value, closed_at=self.clock.now())

    def alert(self, col: int, row: int = 0, kind: str = "intrusion", ago_min: float = 0) -> None:
        lon, lat = centre(col, row)
        ts = self.clock.now() - timedelta(minutes=ago_min)
        with self.ctx.engine.begin() as conn:
            conn.execute(
                alerts.insert().values(
                    id=new_id(),
                    site=self.site,
                    device="cam-1",
                    kind=kind,
                    severity="high",
                    ts=ts,
                    received_at=ts,
                    lon=lon,
                    lat=lat,
                    status="new",
                    payload={},
                )
            )

    def tick(self) -> list[Change]:
        return self.service.warnings_worker.tick()

    def recompute(self) -> list[Change]:
        return self.ctx.warnings.recompute()

    def level(self, cell_id: str) -> str | None:
        level: str | None = self.ctx.geo.cell(cell_id).warning_level
        return level

    def advance(self, **kwargs: float) -> None:
        self.clock.advance(timedelta(**kwargs))


def make_warnings(site: str, tmp_path: Path, **overrides: Any) -> Warnings:
    clock = ManualClock(START)
    config = HubConfig.model_validate(base_config(site, tmp_path, **overrides))
    return Warnings(HubService(config, clock=clock), clock, site)


@pytest.fixture
def wh(site: str, tmp_path: Path) -> Iterator[Warnings]:
    """The hub's services on one SQLite database, not started (no broker, no API)."""
    w = make_warnings(site, tmp_path)
    yield w
    w.service.store.close()


@dataclass
class ClockedHub:
    running: RunningHub
    w: Warnings


@pytest.fixture
def clocked_hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[ClockedHub]:
    """A started hub (real broker, uvicorn) on a ManualClock."""
    clock = ManualClock(START)
    values = base_config(
        site,
        tmp_path,
        mqtt=broker.hub_config(),
        client_id=f"{site}-hub",
        api=ApiConfig(port=0),
        broker=BrokerFilesConfig(
            password_file=broker.layout.password_file, acl_file=broker.layout.acl_file
        ),
        ca_dir=broker.ca.directory,
    )
    service = HubService(
        HubConfig.model_validate(values), broker_reload=broker.proc.reload, clock=clock
    )
    service.registry.extra_accounts = lambda: list(broker.accounts.values())
    broker.extra_sources.append(service.registry.device_accounts)
    with service.store.engine.begin() as conn:
        for role in Role:
            create_user(conn, f"{site}-{role.value}", PASSWORD, role)
    service.start()
    assert service.bus.wait_connected(30)
    running = RunningHub(service, site, f"http://127.0.0.1:{service.api_port}")
    yield ClockedHub(running, Warnings(service, clock, site))
    stop_hub(broker, running)
