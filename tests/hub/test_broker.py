"""Broker configuration: password hashes Mosquitto accepts, and per-device ACLs it enforces."""

from __future__ import annotations

import base64
import queue
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.bus import Bus
from edge.protocol import Channel, DeviceKind, cmd_topic, device_filter, device_topic
from hub.broker import hash_password
from tests.support.broker import BrokerHarness


def test_hash_matches_mosquitto_passwd(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    assert tool is not None, "mosquitto-clients/mosquitto must be installed by the set-up command"
    pwfile = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(pwfile), "alice", "s3cret-pass"], check=True)
    line = pwfile.read_text().strip()
    salt = base64.b64decode(line.split("$")[3])
    assert f"alice:{hash_password('s3cret-pass', salt)}" == line


def _sub(bus: Bus, topic_filter: str) -> queue.Queue[tuple[str, bytes]]:
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    bus.subscribe(topic_filter, lambda t, p: got.put((t, p)))
    return got


def test_device_cannot_publish_as_another_device(broker: BrokerHarness, site: str) -> None:
    cfg_a = broker.add_device(site, DeviceKind.CAMERA, f"{site}-a")
    broker.add_device(site, DeviceKind.CAMERA, f"{site}-b")
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    got = _sub(hub, device_filter(site))
    dev_a = Bus(cfg_a, client_id=f"{site}-a")
    hub.start()
    dev_a.start()
    try:
        assert hub.wait_connected(30) and dev_a.wait_connected(30)
        forged = device_topic(site, DeviceKind.CAMERA, f"{site}-b", Channel.ALERT)
        wrong_kind = device_topic(site, DeviceKind.LIDAR, f"{site}-a", Channel.ALERT)
        dev_a.publish(forged, b"forged", qos=1).wait_for_publish(5)
        dev_a.publish(wrong_kind, b"wrong-kind", qos=1).wait_for_publish(5)
        # Same connection, in order: once the legit message arrives, the others would have too.
        legit = device_topic(site, DeviceKind.CAMERA, f"{site}-a", Channel.ALERT)
        dev_a.publish(legit, b"legit", qos=1).wait_for_publish(5)
        assert got.get(timeout=5) == (legit, b"legit")
        assert got.empty()
    finally:
        dev_a.stop()
        hub.stop()


def test_device_cannot_read_another_devices_commands(broker: BrokerHarness, site: str) -> None:
    cfg_a = broker.add_device(site, DeviceKind.LIDAR, f"{site}-a")
    broker.add_device(site, DeviceKind.LIDAR, f"{site}-b")
    dev_a = Bus(cfg_a, client_id=f"{site}-a")
    other = _sub(dev_a, cmd_topic(site, f"{site}-b", "notify"))
    own = _sub(dev_a, cmd_topic(site, f"{site}-a", "notify"))
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
    hub.start()
    dev_a.start()
    try:
        assert hub.wait_connected(30) and dev_a.wait_connected(30)
        hub.publish(cmd_topic(site, f"{site}-b", "notify"), b"for-b", qos=1).wait_for_publish(5)
        hub.publish(cmd_topic(site, f"{site}-a", "notify"), b"for-a", qos=1).wait_for_publish(5)
        assert own.get(timeout=5)[1] == b"for-a"
        assert other.empty()
    finally:
        dev_a.stop()
        hub.stop()


@pytest.mark.parametrize("bad", ["a/b", "#", ""])
def test_accounts_refuse_unsafe_usernames(bad: str) -> None:
    from edge.validators import InvalidSegmentError
    from hub.broker import Account

    with pytest.raises(InvalidSegmentError):
        Account.device("s", DeviceKind.CAMERA, bad, None)
