"""The demo camera replays vtest.avi live through the real agent: alerts and positions arrive."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from edge.bus import Bus
from edge.camera.demo import DEMO_DEVICES, start_demo
from edge.protocol import Alert, Channel, DeviceKind, PositionBatch, decode_as, device_filter
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

pytestmark = pytest.mark.gstreamer
ORIGIN = (114.0570, 22.5430)


def test_demo_camera_sends_alerts_and_positions(broker: BrokerHarness, site: str,
                                                vtest: Path, tmp_path: Path) -> None:
    configs = {d: broker.add_device(site, DeviceKind.CAMERA, d) for d in DEMO_DEVICES}
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    hub.subscribe(device_filter(site), lambda t, p: got.put((t, p)), qos=1)
    hub.start()
    assert hub.wait_connected(30)
    camera = start_demo(site, configs.__getitem__, tmp_path, ORIGIN)
    alerts: list[Alert] = []
    positions: list[PositionBatch] = []

    def drain() -> bool:
        while not got.empty():
            topic, payload = got.get()
            if topic.endswith("/" + Channel.ALERT.value):
                alerts.append(decode_as(Alert, payload))
            elif topic.endswith("/" + Channel.POS.value):
                positions.append(decode_as(PositionBatch, payload))
        return bool(alerts) and bool(positions)

    try:
        # live pace (10 fps): the first crossing of the west footpath line is ~18 s in
        wait_until(drain, 60, interval_s=0.2, message="a demo alert and positions")
    finally:
        camera.stop()
        hub.stop()
    assert alerts[0].evidence is not None and alerts[0].location is not None
    p = positions[0].positions[0]
    assert 114.053 < p.lon < 114.065 and 22.539 < p.lat < 22.547
