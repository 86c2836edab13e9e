"""A running hub (real broker, real SQLite, real uvicorn) and HTTP clients per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from edge.agent import AgentRuntime
from edge.bus import BusConfig
from edge.config import AgentConfig
from edge.protocol import EntityKind, Position
from edge.validators import utcnow
from hub.auth import Role, create_user
from hub.config import ApiConfig, AuditConfig, BrokerFilesConfig, HubConfig
from hub.service import HubService
from tests.support.broker import BrokerHarness
from tests.support.images import small_jpeg

PASSWORD = "correct-horse-battery-staple"


@dataclass
class RunningHub:
    service: HubService
    site: str
    base_url: str
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, role: Role | None = Role.ADMIN) -> httpx.Client:
        """A client logged in as a user of ``role`` (None: anonymous)."""
        client = httpx.Client(base_url=self.base_url, timeout=30)
        self.clients.append(client)
        if role is not None:
            res = client.post(
                "/api/v1/auth/login",
                json={"username": f"{self.site}-{role.value}", "password": PASSWORD},
            )
            res.raise_for_status()
            client.headers["Authorization"] = f"Bearer {res.json()['token']}"
        return client

    @property
    def port(self) -> int:
        return self.service.api_port


def start_hub(
    broker: BrokerHarness,
    site: str,
    tmp_path: Path,
    database_url: str | None = None,
    **overrides: object,
) -> RunningHub:
    values: dict[str, object] = {
        "site": site,
        "database_url": database_url or f"sqlite:///{tmp_path}/hub.sqlite",
        "mqtt": broker.hub_config(),
        "client_id": f"{site}-hub",
        "api": ApiConfig(port=0),
        "broker": BrokerFilesConfig(
            password_file=broker.layout.password_file, acl_file=broker.layout.acl_file
        ),
        "ca_dir": broker.ca.directory,
        "audit": AuditConfig(directory=tmp_path / "audit"),
    }
    values.update(overrides)
    config = HubConfig.model_validate(values)
    service = HubService(config, broker_reload=broker.proc.reload)
    # Hub and harness both write this shared broker's accounts: each keeps the other's.
    service.registry.extra_accounts = lambda: list(broker.accounts.values())
    broker.extra_sources.append(service.registry.device_accounts)
    with service.store.engine.begin() as conn:
        for role in Role:
            create_user(conn, f"{site}-{role.value}", PASSWORD, role)
    service.start()
    assert service.bus.wait_connected(30)
    return RunningHub(service, site, f"http://127.0.0.1:{service.api_port}")


@pytest.fixture
def hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[RunningHub]:
    running = start_hub(broker, site, tmp_path)
    yield running
    stop_hub(broker, running)


def stop_hub(broker: BrokerHarness, running: RunningHub) -> None:
    for client in running.clients:
        client.close()
    broker.extra_sources.remove(running.service.registry.device_accounts)
    running.service.stop()


HubFactory = Callable[..., RunningHub]


JPEG = small_jpeg()


def wristband_agent(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path, device: str
) -> AgentRuntime:
    return provisioned_agent(hub, broker, tmp_path, device, "wristband")


def provisioned_agent(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path, device: str, kind: str
) -> AgentRuntime:
    """An agent runtime for a device an installer provisioned through the API, connected."""
    creds = (
        hub.client(Role.INSTALLER)
        .post("/api/v1/devices", json={"id": device, "site": hub.site, "kind": kind})
        .json()
    )
    pw = tmp_path / f"{device}.pw"
    pw.write_text(creds["mqtt_password"])
    cfg = AgentConfig(
        site=hub.site,
        device=device,
        data_dir=tmp_path / device,
        mqtt=BusConfig(port=broker.port, username=device, password_file=pw),
    )
    agent = AgentRuntime(cfg, kind)  # type: ignore[arg-type]
    agent.start()
    assert agent.bus.wait_connected(30)
    return agent


def wearer_position(entity: str, lon: float, lat: float, dt_s: float = 0) -> Position:
    return Position(
        entity=entity,
        entity_kind=EntityKind.WEARER,
        lon=lon,
        lat=lat,
        accuracy_m=4.0,
        ts=utcnow() + timedelta(seconds=dt_s),
    )
