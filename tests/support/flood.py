"""The flood scenario shared by tests/hub/test_flood.py and bench/flood.py.

One device publishes ``flood_n`` QoS 0 position batches as fast as ``mosquitto_pub`` can (a
separate process); meanwhile two other
devices each publish ``alerts`` QoS 1 alerts and ``positions`` QoS 0 position batches (one
position each, so every stored row is one message) at a steady pace. The raw paho clients send
each message once (no outbox resend), so whatever the broker or the hub drops is lost and shows.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.protocol import (
    Alert,
    AlertKind,
    Channel,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    EntityKind,
    Position,
    PositionBatch,
    Severity,
    device_topic,
    encode,
)
from edge.validators import utcnow
from hub.config import ApiConfig, HubConfig
from hub.schema import alerts as alerts_table
from hub.schema import positions as positions_table
from hub.service import HubService
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

FLOODER = "flood-cam"
VICTIMS = ("quiet-a", "quiet-b")


@dataclass(slots=True)
class FloodResult:
    flood_sent: int
    flood_s: float
    alerts_sent: dict[str, int]
    alerts_stored: dict[str, int]
    positions_sent: dict[str, int]
    positions_stored: dict[str, int]
    broker_dropped: int | None
    hub_stats: dict[str, object] = field(default_factory=dict)
    alerts_unacked_by_broker: int = 0
    hub_reconnects: int = 0

    def position_loss(self, device: str) -> float:
        sent = self.positions_sent[device]
        return 1.0 - self.positions_stored[device] / sent if sent else 0.0

    def summary(self) -> str:
        parts = [f"flood {self.flood_sent} msgs in {self.flood_s:.1f}s"]
        parts.extend(
            f"{d}: alerts {self.alerts_stored[d]}/{self.alerts_sent[d]}, positions "
            f"{self.positions_stored[d]}/{self.positions_sent[d]} "
            f"(loss {self.position_loss(d):.2%})"
            for d in VICTIMS
        )
        parts.append(f"broker dropped {self.broker_dropped}")
        parts.append(f"alerts without PUBACK {self.alerts_unacked_by_broker}")
        parts.append(f"hub reconnects {self.hub_reconnects}")
        return "; ".join(parts)


def raw_client(broker: BrokerHarness, user: str, name: str) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(user, broker.passwords[user])
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not client.is_connected():
        if time.monotonic() > deadline:
            client.loop_stop()
            raise TimeoutError(f"{name} could not connect")
        time.sleep(0.01)
    return client


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def _position(site: str, device: str, entity: str, seq: int) -> bytes:
    ts = utcnow() - timedelta(seconds=1) + timedelta(microseconds=seq)
    return encode(
        PositionBatch(
            site=site,
            device=device,
            positions=[
                Position(
                    entity=entity,
                    entity_kind=EntityKind.TRACK,
                    lon=114.05 + (seq % 1000) * 1e-6,
                    lat=22.54,
                    ts=ts,
                )
            ],
        )
    )


def _alert(site: str, device: str) -> bytes:
    return encode(
        Alert(
            site=site,
            device=device,
            kind=AlertKind.INTRUSION,
            severity=Severity.HIGH,
            title="flood test",
        )
    )


def start_hub(broker: BrokerHarness, site: str, directory: Path, **overrides: object) -> HubService:
    values: dict[str, object] = {
        "site": site,
        "database_url": f"sqlite:///{directory}/hub.sqlite",
        # The hub's own default keepalive (30 s), not the harness's 5 s: under a flood on a
        # starved 2-core machine the broker has cut a 5 s hub off ("Keep alive timeout"),
        # losing every QoS 0 message queued for it.
        "mqtt": broker.hub_config(keepalive_s=30),
        "client_id": f"{site}-hub",
        "accept_unprovisioned": True,
        "api": ApiConfig(port=0),
    }
    values.update(overrides)
    hub = HubService(HubConfig.model_validate(values))
    hub.start(api=False)
    if not hub.bus.wait_connected(10):
        hub.stop()
        raise TimeoutError("hub did not connect")
    return hub


def run_flood(
    broker: BrokerHarness,
    hub: HubService,
    site: str,
    *,
    flood_n: int = 100_000,
    alerts: int = 50,
    positions: int = 500,
    settle_s: float = 90.0,  # a loaded 2-core box drains the 100k flood slowly
    pace_s: float = 0.004,
) -> FloodResult:
    """Run the scenario against a started hub; returns what was sent and what was stored."""
    for device in (FLOODER, *VICTIMS):
        if device not in broker.passwords:
            broker.add_device(site, DeviceKind.CAMERA, device)
    # Device client ids are bound to their usernames (the broker's dynamic-security plugin).
    victims = {d: raw_client(broker, d, d) for d in VICTIMS}
    # Each device says it is online first (the dashboard shows status for online devices).
    announcer = raw_client(broker, FLOODER, FLOODER)
    for device, client in ((FLOODER, announcer), *victims.items()):
        state = DeviceState(site=site, device=device, state=DeviceStatus.ONLINE,
                            kind=DeviceKind.CAMERA)  # fmt: skip
        topic = device_topic(site, DeviceKind.CAMERA, device, Channel.STATE)
        client.publish(topic, encode(state), qos=1).wait_for_publish(10)
    _close(announcer)
    flood_payload = _position(site, FLOODER, "flood-entity", 0)
    flood_topic = device_topic(site, DeviceKind.CAMERA, FLOODER, Channel.POS)
    sent_alerts = dict.fromkeys(VICTIMS, 0)
    sent_positions = dict.fromkeys(VICTIMS, 0)
    alert_infos: list[mqtt.MQTTMessageInfo] = []
    info_lock = threading.Lock()
    flood_started = threading.Event()

    def victim(device: str) -> None:
        client = victims[device]
        pos_topic = device_topic(site, DeviceKind.CAMERA, device, Channel.POS)
        alert_topic = device_topic(site, DeviceKind.CAMERA, device, Channel.ALERT)
        flood_started.wait(10)
        every = max(1, positions // max(1, alerts))
        for seq in range(positions):
            client.publish(pos_topic, _position(site, device, f"{device}-e", seq), qos=0)
            sent_positions[device] += 1
            if seq % every == 0 and sent_alerts[device] < alerts:
                info = client.publish(alert_topic, _alert(site, device), qos=1)
                with info_lock:
                    alert_infos.append(info)
                sent_alerts[device] += 1
            time.sleep(pace_s)

    threads = [
        threading.Thread(target=victim, args=(d,), name=f"victim-{d}") for d in VICTIMS
    ]
    try:
        for t in threads:
            t.start()
        flood_s = _flood(broker, flood_topic, flood_payload, flood_n, flood_started)
        for t in threads:
            t.join(120)
        for info in alert_infos:
            info.wait_for_publish(10)  # PUBACK from the broker: the alert left the device
        unpublished = sum(1 for info in alert_infos if not info.is_published())
        expected_alerts = sum(sent_alerts.values())
        ingest = hub.ingest
        # QoS 1 alerts the broker queued behind the flood arrive last: wait for them (or time
        # out and report the shortfall), then for the QoS 0 tail to stop arriving.
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            if sum(_stored(hub, site)[0].values()) >= expected_alerts:
                break
            time.sleep(0.2)

        def quiet() -> bool:
            before = ingest.stats.received
            time.sleep(1.0)
            return ingest.stats.received == before and len(ingest.queue) == 0

        wait_until(quiet, timeout_s=settle_s, message="hub ingest settled")
        time.sleep(0.5)  # the last batch's commit
        stored_alerts, stored_positions = _stored(hub, site)
        return FloodResult(
            flood_sent=flood_n,
            flood_s=flood_s,
            alerts_sent=sent_alerts,
            alerts_stored={d: stored_alerts.get(d, 0) for d in VICTIMS},
            positions_sent=sent_positions,
            positions_stored={d: stored_positions.get(d, 0) for d in VICTIMS},
            broker_dropped=hub_broker_dropped(hub),
            hub_stats=ingest.stats.as_dict(),
            alerts_unacked_by_broker=unpublished,
            hub_reconnects=hub.bus.connect_count - 1,
        )
    finally:
        for client in victims.values():
            _close(client)


def _flood(
    broker: BrokerHarness, topic: str, payload: bytes, count: int, started: threading.Event
) -> float:
    """``count`` QoS 0 publishes as fast as Mosquitto's own C client sends them, from another
    process (a flooding device is another machine: it must not share the hub's GIL)."""
    lines = (payload + b"\n") * count
    cmd = [
        "mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv5",
        "-u", FLOODER, "-P", broker.passwords[FLOODER], "-i", FLOODER,
        "-t", topic, "-q", "0", "-l",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    started.set()
    try:
        _, err = proc.communicate(lines, timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"flooder failed: {err.decode(errors='replace')[:300]}")
    return time.perf_counter() - t0


def hub_broker_dropped(hub: HubService) -> int | None:
    """The broker's own drop counter, if this hub version reads it."""
    broker_stats = getattr(hub, "broker_stats", None)
    return broker_stats.dropped() if broker_stats is not None else None


def _stored(hub: HubService, site: str) -> tuple[dict[str, int], dict[str, int]]:
    with hub.store.engine.connect() as conn:
        a = conn.execute(
            sa.select(alerts_table.c.device, sa.func.count())
            .where(alerts_table.c.site == site)
            .group_by(alerts_table.c.device)
        ).all()
        p = conn.execute(
            sa.select(positions_table.c.device, sa.func.count())
            .where(positions_table.c.site == site)
            .group_by(positions_table.c.device)
        ).all()
    return {str(d): int(n) for d, n in a}, {str(d): int(n) for d, n in p}
