"""Hub ingest against the real broker: validation, counted rejections, idempotent storage,
acks only after commit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.agent import AgentRuntime
from edge.bus import Bus, BusConfig
from edge.config import AgentConfig
from edge.protocol import (
    Alert,
    AlertKind,
    Channel,
    DeviceKind,
    EntityKind,
    Position,
    Severity,
    device_topic,
    encode,
)
from edge.validators import utcnow
from hub.config import ApiConfig, HubConfig
from hub.ingest import Ingest
from hub.service import HubService
from hub.store import Store
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


@pytest.fixture
def hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[HubService]:
    service = HubService(
        HubConfig(
            site=site,
            database_url=f"sqlite:///{tmp_path}/hub.sqlite",
            mqtt=broker.hub_config(),
            client_id=f"{site}-hub",
            accept_unprovisioned=True,
            api=ApiConfig(port=0),
        )
    )
    service.start()
    assert service.bus.wait_connected(30)
    yield service
    service.stop()


def _agent(
    broker: BrokerHarness,
    site: str,
    device: str,
    tmp_path: Path,
    kind: DeviceKind = DeviceKind.CAMERA,
) -> AgentRuntime:
    cfg = AgentConfig(
        site=site,
        device=device,
        mqtt=broker.add_device(site, kind, device),
        data_dir=tmp_path / device,
        health_interval_s=0.2,
    )
    return AgentRuntime(cfg, kind)


def test_alerts_positions_health_state_stored_and_acked(
    broker: BrokerHarness, site: str, hub: HubService, tmp_path: Path
) -> None:
    agent = _agent(broker, site, f"{site}-cam", tmp_path)
    agent.start()
    try:
        assert agent.bus.wait_connected(30)
        sent = [agent.alert(kind=AlertKind.INTRUSION, severity=Severity.HIGH) for _ in range(20)]
        agent.send_positions(
            [  # a camera's track ids carry its device id (hub/ownership.py)
                Position(
                    entity=f"{site}-cam-t1",
                    entity_kind=EntityKind.TRACK,
                    lon=1.0,
                    lat=2.0,
                    ts=utcnow(),
                )
            ]
        )
        wait_until(lambda: agent.outbox.depth() == 0, message="outbox drained by hub acks")
        assert sorted(hub.store.alert_ids(site)) == sorted(a.id for a in sent)
        wait_until(lambda: hub.ingest.stats.stored_positions == 1, message="position stored")
        wait_until(
            lambda: any(
                s["device"] == f"{site}-cam" and s["state"] == "online"
                for s in hub.store.device_states()
            ),
            message="online state",
        )
        wait_until(lambda: hub.ingest.stats.received >= 23, message="health heartbeat")
    finally:
        agent.stop()
    wait_until(
        lambda: any(
            s["device"] == f"{site}-cam" and s["state"] == "stopped"
            for s in hub.store.device_states()
        ),
        message="stopped state",
    )


def test_forged_and_malformed_payloads_are_rejected_and_counted(
    broker: BrokerHarness, site: str, hub: HubService
) -> None:
    device = f"{site}-cam"
    bus = Bus(broker.add_device(site, DeviceKind.CAMERA, device), client_id=device)
    bus.start()
    try:
        assert bus.wait_connected(30)
        topic = device_topic(site, DeviceKind.CAMERA, device, Channel.ALERT)
        forged = Alert(
            site=site, device=f"{site}-other", kind=AlertKind.SOS, severity=Severity.HIGH
        )
        bus.publish(topic, encode(forged), qos=1)
        bus.publish(topic, b"\x00not json", qos=1)
        bus.publish(topic, json.dumps({"v": 1, "site": site}).encode(), qos=1)
        good = Alert(site=site, device=device, kind=AlertKind.SOS, severity=Severity.HIGH)
        bus.publish(topic, encode(good), qos=1)
        wait_until(lambda: hub.store.count_alerts(site) == 1, message="good alert stored")
        wait_until(lambda: sum(hub.ingest.stats.rejected.values()) == 3)
        assert hub.ingest.stats.rejected == {"origin_mismatch": 1, "bad_json": 1, "invalid": 1}
        assert hub.store.alert_ids(site) == [good.id]
    finally:
        bus.stop()


def test_duplicates_stored_once_and_acked_every_time(
    broker: BrokerHarness, site: str, hub: HubService
) -> None:
    device = f"{site}-cam"
    bus = Bus(broker.add_device(site, DeviceKind.CAMERA, device), client_id=device)
    acks: list[bytes] = []
    from edge.protocol import CmdChannel, cmd_topic

    bus.subscribe(cmd_topic(site, device, CmdChannel.ACK), lambda t, p: acks.append(p))
    bus.start()
    try:
        assert bus.wait_connected(30)
        alert = Alert(site=site, device=device, kind=AlertKind.TAMPER, severity=Severity.LOW)
        topic = device_topic(site, DeviceKind.CAMERA, device, Channel.ALERT)
        for _ in range(3):
            bus.publish(topic, encode(alert), qos=1).wait_for_publish(5)
            before = len(acks)
            wait_until(lambda: len(acks) > before, message="ack")  # noqa: B023
        assert hub.store.count_alerts(site) == 1
        assert all(alert.id in json.loads(a)["ids"] for a in acks)
    finally:
        bus.stop()


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    topic=st.sampled_from(
        [
            "gw/v1/s/camera/d/alert",
            "gw/v1/s/camera/d/pos",
            "gw/v1/s/lidar/d/state",
            "gw/v1/s/glasses/d/health",
            "gw/v1/s/camera/d/reply",
            "gw/v1/s/cmd/d/ack",
            "bad/topic",
        ]
    ),
    payload=st.binary(max_size=200)
    | st.builds(
        lambda d: json.dumps(d).encode(),
        st.dictionaries(
            st.sampled_from(
                ["v", "id", "ts", "site", "device", "kind", "severity", "positions", "state"]
            ),
            st.integers() | st.text(max_size=5) | st.none(),
            max_size=9,
        ),
    ),
)
def test_fuzz_every_rejection_is_counted(topic: str, payload: bytes, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/fuzz.sqlite")
    bus = Bus(BusConfig(), client_id="fuzz")
    ingest = Ingest(bus, store)
    try:
        ingest.handle(topic, payload)
        accounted = len(ingest.queue) + sum(ingest.stats.rejected.values())
        assert ingest.stats.received == 1 and accounted == 1
    finally:
        bus.stop()
        store.close()
