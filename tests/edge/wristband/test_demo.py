"""The demo piece against the real broker: positions and a geofence exit arrive at the hub."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from edge.bus import Bus
from edge.protocol import (
    Alert,
    AlertKind,
    Channel,
    DeviceKind,
    PositionBatch,
    SightingBatch,
    decode_device_message,
    device_filter,
)
from edge.wristband.demo import DEMO_DEVICES, GATEWAY, demo_config, start_demo
from edge.wristband.service import WristbandService
from edge.wristband.sim import SimulatedAirwaves
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

ORIGIN = (114.0570, 22.5430)


def test_demo_gateway_publishes_positions_and_exit_alert(broker: BrokerHarness, site: str,
                                                         tmp_path: Path) -> None:
    configs = {d: broker.add_device(site, DeviceKind.WRISTBAND, d) for d in DEMO_DEVICES}
    lock = threading.Lock()
    positions: dict[str, list[tuple[float, float]]] = {}
    alerts: list[Alert] = []
    receivers: dict[str, set[str]] = {}

    def on_message(topic: str, payload: bytes) -> None:
        inbound = decode_device_message(topic, payload)
        with lock:
            if isinstance(inbound.message, PositionBatch):
                for p in inbound.message.positions:
                    positions.setdefault(p.entity, []).append((p.lon, p.lat))
            elif isinstance(inbound.message, Alert):
                alerts.append(inbound.message)
            elif isinstance(inbound.message, SightingBatch):
                for sg in inbound.message.sightings:
                    receivers.setdefault(sg.entity, set()).add(sg.receiver)

    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    hub.subscribe(device_filter(site, Channel.POS), on_message, qos=1)
    hub.subscribe(device_filter(site, Channel.ALERT), on_message, qos=1)
    hub.subscribe(device_filter(site, Channel.SIGHTINGS), on_message, qos=0)
    hub.start()
    demo = None
    try:
        assert hub.wait_connected(30)
        demo = start_demo(site, configs.__getitem__, tmp_path, ORIGIN)
        wait_until(lambda: {"resident-1", "resident-2", "resident-3"} <= set(positions),
                   timeout_s=15, message="positions of all three residents")
        wait_until(lambda: any(a.kind is AlertKind.GEOFENCE_EXIT and a.entity == "resident-3"
                               for a in alerts), timeout_s=45, message="resident-3 exit alert")
        with lock:
            exit_alert = next(a for a in alerts if a.kind is AlertKind.GEOFENCE_EXIT)
            assert exit_alert.zone == "care-home"
            assert exit_alert.location is not None
            # The alert is east of the home's eastern edge (60 m east of the origin).
            assert exit_alert.location.lon > ORIGIN[0]
            assert not any(a.entity in ("resident-1", "resident-2") and
                           a.kind is AlertKind.GEOFENCE_EXIT for a in alerts)
            for track in positions.values():
                for lon, lat in track:
                    assert 114.053 < lon < 114.065
                    assert 22.539 < lat < 22.547
        assert receivers == {}  # a single gateway: nothing for the hub to fuse
    finally:
        if demo is not None:
            demo.stop()
        hub.stop()


def test_gateway_publishes_sightings_for_hub_fusion(broker: BrokerHarness, site: str,
                                                   tmp_path: Path) -> None:
    mqtt = broker.add_device(site, DeviceKind.WRISTBAND, GATEWAY)
    config = demo_config(site, mqtt, tmp_path, ORIGIN).model_copy(
        update={"publish_sightings": True})
    keys = {b.band_id: (os.urandom(16),) for b in config.bands}
    lock = threading.Lock()
    receivers: dict[str, set[str]] = {}

    def on_message(topic: str, payload: bytes) -> None:
        msg = decode_device_message(topic, payload).message
        assert isinstance(msg, SightingBatch)
        with lock:
            for sg in msg.sightings:
                assert sg.tx_power_1m_dbm == -59 and sg.path_loss_exponent == 2.0
                receivers.setdefault(sg.entity, set()).add(sg.receiver)

    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    hub.subscribe(device_filter(site, Channel.SIGHTINGS), on_message, qos=0)
    hub.start()
    service = None
    try:
        assert hub.wait_connected(30)
        service = WristbandService(config, keys=keys, sources=[SimulatedAirwaves(config, keys)])
        service.start()
        wait_until(lambda: len(receivers.get("resident-1", ())) == 4, timeout_s=15,
                   message="sightings of resident-1 from all four receivers")
    finally:
        if service is not None:
            service.stop()
        hub.stop()
