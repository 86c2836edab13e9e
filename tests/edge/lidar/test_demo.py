"""The demo piece against the real broker: a simulated LD06 on a pty, the real agent, and a hub
subscriber that must see the intrusion alert, anonymous track positions and counting health."""

from __future__ import annotations

import queue
from pathlib import Path

from edge.bus import Bus
from edge.lidar.demo import DEMO_DEVICES, start_demo
from edge.protocol import (
    Alert,
    AlertKind,
    Channel,
    DeviceKind,
    EntityKind,
    Health,
    PositionBatch,
    decode_as,
    device_filter,
)
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

ORIGIN = (114.0570, 22.5430)


def test_demo_lidar_publishes_intrusion_positions_and_counts(
    broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    configs = {d: broker.add_device(site, DeviceKind.LIDAR, d) for d in DEMO_DEVICES}
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    hub.subscribe(device_filter(site), lambda t, p: got.put((t, p)), qos=1)
    hub.start()
    assert hub.wait_connected(30)
    demo = start_demo(site, configs.__getitem__, tmp_path, ORIGIN)
    alerts: list[Alert] = []
    batches: list[PositionBatch] = []
    healths: list[Health] = []

    def drain() -> bool:
        while not got.empty():
            topic, payload = got.get()
            channel = topic.rsplit("/", 1)[1]
            if channel == Channel.ALERT:
                alerts.append(decode_as(Alert, payload))
            elif channel == Channel.POS:
                batches.append(decode_as(PositionBatch, payload))
            elif channel == Channel.HEALTH:
                healths.append(decode_as(Health, payload))
        counted = any(h.metrics.get("count.yard-gate.in", 0) >= 1 for h in healths)
        return bool(alerts) and bool(batches) and counted

    try:
        wait_until(drain, timeout_s=45, message="intrusion alert, positions and a gate count")
    finally:
        demo.stop()
        hub.stop()
    alert = alerts[0]
    assert alert.kind is AlertKind.INTRUSION
    assert alert.zone == "transformer"
    assert alert.device == DEMO_DEVICES[0]
    assert alert.location is not None
    # The enclosure is ~44 m east and ~23 m north of the reference point.
    assert 114.0573 < alert.location.lon < 114.0576
    assert 22.5431 < alert.location.lat < 22.5433
    positions = [p for b in batches for p in b.positions]
    assert all(p.entity_kind is EntityKind.TRACK for p in positions)
    assert all(114.0572 < p.lon < 114.0576 and 22.5430 < p.lat < 22.5433 for p in positions)
    assert all(h.dropped.get("crc_errors", 0) == 0 for h in healths)
