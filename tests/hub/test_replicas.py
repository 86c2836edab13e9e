"""Two hub processes on one PostgreSQL split ingest through the broker's shared subscription:
no duplicate and no lost alert."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from edge.agent import AgentRuntime
from edge.config import AgentConfig
from edge.protocol import AlertKind, DeviceKind, Severity
from hub.audit import AuditTrail
from hub.devices.service import DeviceService
from hub.schema import alerts
from hub.store import Store
from tests.support.broker import BrokerHarness
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PER_DEVICE = 700


@pytest.mark.postgres
@pytest.mark.slow
def test_two_hubs_share_ingest(
    broker: BrokerHarness, postgres: PostgresCluster, site: str, tmp_path: Path
) -> None:
    url = postgres.new_database()
    store = Store(url)
    registry = DeviceService(store.engine, AuditTrail(store.engine), None)
    devices = [f"{site}-d{i}" for i in range(3)]
    for device in devices:
        registry.add("test", site, DeviceKind.CAMERA, device)
    hub_mqtt = broker.hub_config()
    hubs = []
    for name in ("a", "b"):
        cfg = tmp_path / f"hub-{name}.yaml"
        cfg.write_text(
            json.dumps(
                {
                    "site": site,
                    "database_url": url,
                    "client_id": f"{site}-hub-{name}",
                    "mqtt": json.loads(hub_mqtt.model_dump_json()),
                    "api": {"port": 0},
                    # both replicas share one audit key and checkpoint file
                    "audit": {"directory": str(tmp_path / "audit")},
                    "ingest_batch_max": 50,
                }
            )
        )
        hubs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edge.cli",
                    "hub",
                    "serve",
                    "--config",
                    str(cfg),
                    "--no-api",
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    agents = []
    try:
        for hub in hubs:
            assert hub.stdout is not None
            # A warning may come first (a broker counter read before the hub says it started).
            lines = [hub.stdout.readline()]
            while "ingesting" not in lines[-1] and lines[-1] and len(lines) < 20:
                lines.append(hub.stdout.readline())
            assert "ingesting" in lines[-1], lines
        for device in devices:
            agent = AgentRuntime(
                AgentConfig(
                    site=site,
                    device=device,
                    data_dir=tmp_path / device,
                    mqtt=broker.add_device(site, DeviceKind.CAMERA, device),
                ),
                DeviceKind.CAMERA,
            )
            agent.start()
            agents.append(agent)
        sent = {
            a.alert(kind=AlertKind.INTRUSION, severity=Severity.LOW).id
            for _ in range(PER_DEVICE)
            for a in agents
        }
        wait_until(
            lambda: all(a.outbox.depth() == 0 for a in agents),
            timeout_s=120,
            message="every alert acknowledged",
        )
    finally:
        for agent in agents:
            agent.stop()
        outputs = []
        for hub in hubs:
            hub.send_signal(signal.SIGTERM)
            out, _ = hub.communicate(timeout=30)
            outputs.append(out)
    with store.engine.connect() as conn:
        stored = {r[0] for r in conn.execute(select(alerts.c.id).where(alerts.c.site == site))}
        rows = conn.execute(
            select(func.count()).select_from(alerts).where(alerts.c.site == site)
        ).scalar_one()
    store.close()
    assert stored == sent
    assert rows == len(sent) == 3 * PER_DEVICE
    shares = []
    for out in outputs:
        line = next(ln for ln in out.splitlines() if "stopped; ingest" in ln)
        shares.append(json.loads(line.split("ingest ", 1)[1])["stored_alerts"])
    assert sum(shares) == len(sent)  # each alert stored by exactly one replica
    assert min(shares) > 0, f"one replica got nothing: {shares}"
    print(f"\nreplica shares of {len(sent)} alerts: {shares}")
