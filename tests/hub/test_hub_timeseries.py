"""The hub with InfluxDB configured: positions and health stored by ingest also arrive at a real
InfluxDB-v2-write-compatible server (Debian's victoria-metrics), read back through its API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agent import AgentRuntime
from edge.bus import BusConfig
from edge.config import AgentConfig
from edge.protocol import EntityKind, Position
from edge.validators import utcnow
from hub.auth import Role
from hub.timeseries import InfluxConfig
from tests.hub.conftest import start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.victoria import VictoriaMetrics
from tests.support.waiting import wait_until


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path / "vm")
    server.start()
    yield server
    server.stop()


def test_hub_writes_positions_and_health_to_influx(
    broker: BrokerHarness, site: str, tmp_path: Path, victoria: VictoriaMetrics
) -> None:
    influx = InfluxConfig(
        url=victoria.url,
        org="gridward",
        bucket="gridward",
        spool_dir=tmp_path / "spool",
        flush_interval_s=0.05,
    )
    hub = start_hub(broker, site, tmp_path, influx=influx)
    try:
        device = f"{site}-gw"
        creds = (
            hub.client(Role.INSTALLER)
            .post("/api/v1/devices", json={"id": device, "site": site, "kind": "wristband"})
            .json()
        )
        pw = tmp_path / "pw"
        pw.write_text(creds["mqtt_password"])
        agent = AgentRuntime(
            AgentConfig(
                site=site,
                device=device,
                data_dir=tmp_path / "edge",
                health_interval_s=0.2,
                mqtt=BusConfig(port=broker.port, username=device, password_file=pw),
            ),
            "wristband",
        )  # type: ignore[arg-type]
        agent.start()
        try:
            agent.send_positions(
                [
                    Position(
                        entity=f"w{i}",
                        entity_kind=EntityKind.WEARER,
                        lon=114.05 + i / 1000,
                        lat=22.54,
                        ts=utcnow(),
                    )
                    for i in range(20)
                ]
            )

            def arrived() -> bool:
                victoria.flush()
                return (
                    victoria.sample_count(
                        f'{{__name__=~"{influx.positions_measurement}_lon",site="{site}"}}'
                    )
                    >= 20
                )

            wait_until(arrived, timeout_s=20, message="positions in the time-series store")
            wait_until(
                lambda: (
                    victoria.sample_count(
                        f'{{__name__=~"{influx.health_measurement}_.*",device="{device}"}}'
                    )
                    > 0
                ),
                timeout_s=20,
                message="health in the time-series store",
            )
        finally:
            agent.stop()
        stats = hub.client(Role.OPERATOR).get("/api/v1/stats").json()["timeseries"]
        assert stats["failed_points"] == 0
    finally:
        stop_hub(broker, hub)
