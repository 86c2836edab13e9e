"""The MQTT client against a real Mosquitto: auth, TLS, websockets, LWT, no silent drops."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.bus import Backoff, Bus, BusConfig, NotConnectedError, TlsConfig
from edge.protocol import (
    Channel,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    decode_as,
    device_filter,
    device_topic,
)
from hub.pki import SiteCA
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


def _collector(bus: Bus, topic_filter: str) -> queue.Queue[tuple[str, bytes]]:
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    bus.subscribe(topic_filter, lambda t, p: got.put((t, p)), qos=1)
    return got


def test_device_publishes_and_hub_receives(broker: BrokerHarness, site: str) -> None:
    dev_cfg = broker.add_device(site, DeviceKind.CAMERA, f"{site}-cam")
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    got = _collector(hub, device_filter(site))
    dev = Bus(dev_cfg, client_id=f"{site}-cam")
    hub.start()
    dev.start()
    try:
        assert hub.wait_connected(30) and dev.wait_connected(30)
        wait_until(lambda: hub.connect_count >= 1)
        topic = device_topic(site, DeviceKind.CAMERA, f"{site}-cam", Channel.HEALTH)
        dev.publish(topic, b"hello", qos=1).wait_for_publish(5)
        assert got.get(timeout=5) == (topic, b"hello")
    finally:
        dev.stop()
        hub.stop()


def test_publish_while_disconnected_raises(broker: BrokerHarness) -> None:
    bus = Bus(BusConfig(port=1, reconnect_min_s=0.05, reconnect_max_s=0.1), client_id="nobody")
    bus.start()
    try:
        with pytest.raises(NotConnectedError):
            bus.publish("gw/v1/x/camera/y/health", b"{}")
    finally:
        bus.stop()


def test_wrong_password_and_anonymous_are_refused(broker: BrokerHarness, site: str) -> None:
    good = broker.add_device(site, DeviceKind.LIDAR, f"{site}-l")
    bad_pw = broker.directory / "wrong.pw"
    bad_pw.write_text("not-the-password")
    for cfg in (
        good.model_copy(update={"password_file": bad_pw}),
        good.model_copy(update={"username": None, "password_file": None}),
    ):
        bus = Bus(cfg, client_id=f"{site}-refused")
        bus.start()
        try:
            assert not bus.wait_connected(1.0)
            assert bus.last_error is not None
        finally:
            bus.stop()


def test_tls_client_certificate_accepted(broker: BrokerHarness, site: str) -> None:
    device = f"{site}-tls"
    broker.add_device(site, DeviceKind.CAMERA, device)
    bus = Bus(broker.tls_config_for(device), client_id=device)
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    got = _collector(hub, device_filter(site))
    hub.start()
    bus.start()
    try:
        assert hub.wait_connected(30) and bus.wait_connected(30)
        topic = device_topic(site, DeviceKind.CAMERA, device, Channel.HEALTH)
        bus.publish(topic, b"over-tls", qos=1).wait_for_publish(5)
        assert got.get(timeout=5)[1] == b"over-tls"
    finally:
        bus.stop()
        hub.stop()


def test_certificate_from_another_ca_is_refused(
    broker: BrokerHarness, tmp_path: Path, site: str
) -> None:
    rogue = SiteCA(tmp_path / "rogue-ca")
    pair = rogue.issue_client(f"{site}-rogue", tmp_path / "rogue")
    cfg = BusConfig(
        port=broker.layout.tls_port or 0,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        tls=TlsConfig(
            ca_file=broker.ca.cert_file, cert_file=pair.cert_file, key_file=pair.key_file
        ),
    )
    bus = Bus(cfg, client_id=f"{site}-rogue")
    bus.start()
    try:
        assert not bus.wait_connected(1.5)
    finally:
        bus.stop()


def test_websockets_listener(broker: BrokerHarness, site: str) -> None:
    cfg = broker.add_device(site, DeviceKind.GLASSES, f"{site}-ws")
    ws_cfg = cfg.model_copy(update={"port": broker.layout.ws_port, "transport": "websockets"})
    bus = Bus(ws_cfg, client_id=f"{site}-ws")
    bus.start()
    try:
        assert bus.wait_connected(30)
    finally:
        bus.stop()


AGENT_THAT_DIES = textwrap.dedent(
    """
    import sys, time
    from edge.bus import Bus, BusConfig
    from edge.protocol import DeviceState, DeviceStatus, DeviceKind, encode
    cfg = BusConfig.model_validate_json(sys.argv[1])
    site, device, topic = sys.argv[2], sys.argv[3], sys.argv[4]
    will = encode(DeviceState(site=site, device=device, state=DeviceStatus.OFFLINE,
                              kind=DeviceKind.LIDAR))
    bus = Bus(cfg, client_id=device, will=(topic, will))
    bus.start()
    assert bus.wait_connected(30)
    online = encode(DeviceState(site=site, device=device, state=DeviceStatus.ONLINE,
                                kind=DeviceKind.LIDAR))
    bus.publish(topic, online, qos=1, retain=True).wait_for_publish(5)
    print("up", flush=True)
    time.sleep(60)
    """
)


def test_last_will_marks_a_killed_device_offline(broker: BrokerHarness, site: str) -> None:
    device = f"{site}-lw"
    cfg = broker.add_device(site, DeviceKind.LIDAR, device)
    topic = device_topic(site, DeviceKind.LIDAR, device, Channel.STATE)
    proc = subprocess.Popen(
        [sys.executable, "-c", AGENT_THAT_DIES, cfg.model_dump_json(), site, device, topic],
        stdout=subprocess.PIPE,
        text=True,
    )
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    states: list[DeviceStatus] = []
    hub.subscribe(topic, lambda t, p: states.append(decode_as(DeviceState, p).state))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        hub.start()
        wait_until(lambda: DeviceStatus.ONLINE in states, message="retained online state")
        proc.kill()
        proc.wait(5)
        # keepalive 5 s: the broker notices within 1.5 x keepalive and publishes the will
        wait_until(lambda: states[-1] == DeviceStatus.OFFLINE, timeout_s=30, message="last will")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        hub.stop()


def test_backoff_is_jittered_and_capped() -> None:
    seen_max: list[float] = []
    b = Backoff(0.5, 30.0, rng=lambda lo, hi: (seen_max.append(hi), hi)[1])
    delays = [b.next_delay() for _ in range(12)]
    assert seen_max[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(delays) == 30.0
    b.reset()
    assert b.next_delay() == 0.5


def test_backoff_spreads_a_reconnect_stampede() -> None:
    """100 agents losing the broker together come back spread out, not in one burst."""
    agents = [Backoff(0.5, 30.0) for _ in range(100)]
    for _ in range(5):  # five failed attempts each
        delays = [a.next_delay() for a in agents]
    buckets = {round(d) for d in delays}
    assert len(buckets) >= 8
    assert all(0.25 <= d <= 8.0 for d in delays)
