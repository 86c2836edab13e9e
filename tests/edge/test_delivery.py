"""Nothing is lost: 3 agents x 2,000 alerts while the broker is killed and restarted twice and
one agent is SIGKILLed and restarted. The hub ends with exactly 6,000 distinct alerts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from edge.config import AgentConfig
from edge.protocol import DeviceKind
from hub.config import ApiConfig, HubConfig
from hub.service import HubService
from hub.store import alerts
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PER_DEVICE = 2000
RATE = 250.0  # alerts/s per agent: ~8 s of sending, so the faults land mid-stream


def _spawn(config: AgentConfig, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.alert_agent",
                config.model_dump_json(),
                str(PER_DEVICE),
                str(RATE),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_no_alert_lost_or_duplicated_through_crashes(
    own_broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    hub = HubService(
        HubConfig(
            site=site,
            database_url=f"sqlite:///{tmp_path}/hub.sqlite",
            mqtt=own_broker.hub_config(),
            client_id=f"{site}-hub", accept_unprovisioned=True, api=ApiConfig(port=0),
        )
    )
    hub.start()
    configs = [
        AgentConfig(
            site=site,
            device=f"{site}-d{i}",
            data_dir=tmp_path / f"d{i}",
            resend_after_s=5.0,
            mqtt=own_broker.add_device(site, DeviceKind.CAMERA, f"{site}-d{i}"),
        )
        for i in range(3)
    ]
    logs = [tmp_path / f"agent{i}.log" for i in range(3)]
    procs = [_spawn(cfg, log) for cfg, log in zip(configs, logs, strict=True)]
    try:
        assert hub.bus.wait_connected(30)
        time.sleep(1.5)
        own_broker.proc.kill()  # crash 1
        time.sleep(1.0)
        own_broker.start()
        time.sleep(1.0)
        procs[1].kill()  # SIGKILL an agent mid-stream
        procs[1].wait(10)
        time.sleep(0.5)
        procs[1] = _spawn(configs[1], logs[1])
        time.sleep(1.0)
        own_broker.proc.kill()  # crash 2
        time.sleep(1.0)
        own_broker.start()
        for proc in procs:
            assert proc.wait(timeout=120) == 0, [p.read_text() for p in logs]
        wait_until(
            lambda: hub.store.count_alerts(site) >= 3 * PER_DEVICE,
            timeout_s=30,
            message="6,000 alerts stored",
        )
        with hub.store.engine.connect() as conn:
            rows = conn.execute(
                select(alerts.c.id, alerts.c.device, alerts.c.payload).where(alerts.c.site == site)
            ).all()
        ids = [r.id for r in rows]
        seqs = Counter((r.device, r.payload["details"]["seq"]) for r in rows)
        assert len(ids) == 3 * PER_DEVICE
        assert len(set(ids)) == 3 * PER_DEVICE
        assert set(seqs) == {(c.device, s) for c in configs for s in range(PER_DEVICE)}
        assert max(seqs.values()) == 1
        assert "started at 0" in logs[1].read_text()
        restarted_at = [ln for ln in logs[1].read_text().splitlines() if ln.startswith("started")]
        assert len(restarted_at) == 2 and restarted_at[1] != "started at 0"
        print(
            f"\ndelivery: stored {len(ids)} distinct alerts, 0 duplicates; hub saw "
            f"{hub.ingest.stats.duplicate_alerts} redeliveries; restarts: {restarted_at}"
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        hub.stop()
