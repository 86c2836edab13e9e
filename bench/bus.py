"""End-to-end alert delivery rate against a raw paho loop on the same broker, same run.

    .venv/bin/python bench/bus.py [--count 5000]

End to end = AgentRuntime.send_alert (durable outbox insert, fsync) -> broker -> hub ingest ->
SQLite commit -> HubAck -> outbox delete. Baseline = one paho client publishing QoS 1 to a
subscriber, nothing stored. Both run in this process against one Mosquitto.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.agent import AgentRuntime
from edge.config import AgentConfig
from edge.protocol import Alert, AlertKind, DeviceKind, Severity, encode
from hub.config import ApiConfig, HubConfig
from hub.service import HubService
from tests.support.broker import BrokerHarness

RAW_TOPIC = "gw/v1/bench/camera/raw-loop/alert"  # inside the hub account's ACL


def raw_paho(broker: BrokerHarness, count: int, payload: bytes) -> float:
    """Messages/s for QoS 1 publish -> subscriber receive with plain paho."""
    done = threading.Event()
    received = 0

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received >= count:
            done.set()

    def client(name: str) -> mqtt.Client:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv5
        )
        c.username_pw_set("hub", broker.passwords["hub"])
        c.max_inflight_messages_set(100)
        c.connect("127.0.0.1", broker.port)
        return c

    sub = client("bench-sub")
    sub.on_message = on_message
    sub.subscribe(RAW_TOPIC, qos=1)
    sub.loop_start()
    pub = client("bench-pub")
    pub.loop_start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    for _ in range(count):
        pub.publish(RAW_TOPIC, payload, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - t0
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    return received / elapsed


def end_to_end(broker: BrokerHarness, count: int, work: Path, db_url: str) -> float:
    site = "bench"
    hub = HubService(
        HubConfig(
            site=site,
            database_url=db_url,
            mqtt=broker.hub_config(),
            client_id="bench-hub",
            accept_unprovisioned=True,
            api=ApiConfig(port=0),
        )
    )
    hub.start()
    cfg = AgentConfig(
        site=site,
        device="bench-cam",
        data_dir=work / "edge",
        mqtt=broker.add_device(site, DeviceKind.CAMERA, "bench-cam"),
    )
    agent = AgentRuntime(cfg, DeviceKind.CAMERA)
    agent.start()
    assert hub.bus.wait_connected(10)
    assert agent.bus.wait_connected(10)
    t0 = time.perf_counter()
    for _ in range(count):
        agent.send_alert(
            Alert(
                site=site,
                device="bench-cam",
                kind=AlertKind.INTRUSION,
                severity=Severity.MEDIUM,
                details={"bench": True},
            )
        )
    while agent.outbox.depth() > 0:
        time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    stored = hub.store.count_alerts(site)
    agent.stop()
    hub.stop()
    assert stored == count, f"stored {stored} of {count}"
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = BrokerHarness(work / "broker")
        broker.start()
        try:
            sample = encode(
                Alert(
                    site="bench",
                    device="bench-cam",
                    kind=AlertKind.INTRUSION,
                    severity=Severity.MEDIUM,
                    details={"bench": True},
                )
            )
            raw = raw_paho(broker, args.count, sample)
            e2e = end_to_end(broker, args.count, work, f"sqlite:///{work}/hub.sqlite")
        finally:
            broker.stop()
    print(f"payload               {len(sample)} bytes, {args.count} messages")
    print(f"raw paho QoS 1        {raw:10.0f} msg/s   (baseline: publish -> subscriber)")
    print(
        f"end-to-end alerts     {e2e:10.0f} alerts/s (outbox -> broker -> hub store -> ack "
        "-> outbox delete)"
    )
    print(f"ratio e2e / raw       {e2e / raw:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
