"""The agent end to end: simulated scanner on a pty with corruption, an unplug/replug in the
middle, the real agent, the real broker. The alert arrives, and the loss is in health."""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

from edge.bus import Bus
from edge.lidar.service import LidarService
from edge.lidar.simulator import SimulatedScanner
from edge.protocol import (
    Alert,
    AlertKind,
    Channel,
    DeviceKind,
    Health,
    PositionBatch,
    decode_as,
    device_filter,
)
from tests.edge.lidar.scenarios import config, scene, walker
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


class HubView:
    def __init__(self) -> None:
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.alerts: list[Alert] = []
        self.positions: list[PositionBatch] = []
        self.health: list[Health] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.inbox.put((topic, payload))

    def drain(self) -> None:
        while not self.inbox.empty():
            topic, payload = self.inbox.get()
            channel = topic.rsplit("/", 1)[1]
            if channel == Channel.ALERT:
                self.alerts.append(decode_as(Alert, payload))
            elif channel == Channel.POS:
                self.positions.append(decode_as(PositionBatch, payload))
            elif channel == Channel.HEALTH:
                self.health.append(decode_as(Health, payload))


def test_agent_survives_corruption_and_unplug_and_alerts(
    broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    device = f"{site}-lidar"
    mqtt = broker.add_device(site, DeviceKind.LIDAR, device)
    walkers = [walker("intruder", (2.5, 1.5, 2.5), (4.0, 4.5, 2.5), (30, 4.5, 2.6))]
    faults: dict[str, Any] = {"corrupt_rate": 0.01, "garbage_rate": 0.01}
    sim = SimulatedScanner(scene("ld06", walkers=walkers, faults=faults), tmp_path / "ttyL")
    cfg = config("ld06", site=site, device=device, mqtt=mqtt, data_dir=tmp_path / "data",
                  health_interval_s=0.5, position_interval_s=0.5,
                  background={"learn_s": 1.5}, scanner={"model": "ld06", "port": str(sim.link),
                                                         "stall_timeout_s": 0.5})
    hub_view = HubView()
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    hub.subscribe(device_filter(site), hub_view, qos=1)
    hub.start()
    assert hub.wait_connected(30)
    sim.start()
    service = LidarService(cfg)
    service.start()
    try:
        def alerted() -> bool:
            hub_view.drain()
            return bool(hub_view.alerts) and bool(hub_view.positions)

        wait_until(alerted, timeout_s=30, message="intrusion alert and positions")
        sim.unplug()
        wait_until(lambda: service.transport.counters["disconnects"] == 1, message="unplug seen")
        sim.replug()
        scans = service.assembler.scans
        wait_until(lambda: service.assembler.scans > scans + 10, message="scans after replug")

        def loss_reported() -> bool:
            hub_view.drain()
            return any(h.dropped.get("disconnects", 0) == 1
                       and h.dropped.get("samples_lost_disconnected", 0) > 0
                       and h.metrics.get("port_connected") == 1.0 for h in hub_view.health)

        wait_until(loss_reported, timeout_s=15, message="health with the loss counted")
    finally:
        service.stop()
        sim.stop()
        hub.stop()
    alert = hub_view.alerts[0]
    assert alert.kind is AlertKind.INTRUSION and alert.zone == "yard"
    assert alert.entity is not None and alert.started_at is not None
    assert float(alert.details["dwell_s"]) >= 2.0
    last = hub_view.health[-1]
    assert last.dropped["crc_errors"] > 0
    assert last.dropped["samples_dropped"] > 0
    assert last.metrics["zone.yard.inside"] >= 0
    assert "count.gate.in" in last.metrics
    assert last.fps is not None and last.fps > 0
    # No alert storm from the corruption: at most one more alert, when the unplug outlasted
    # the tracker's memory and the same person came back as a new anonymous track.
    assert 1 <= len(hub_view.alerts) <= 2
