"""Device provisioning through the API against the real broker: credentials work, retirement
revokes access within seconds, config pushes are versioned and the applied version comes back."""

from __future__ import annotations

import time
from pathlib import Path

from edge.agent import AgentRuntime
from edge.bus import Bus, BusConfig, TlsConfig
from edge.config import AgentConfig
from edge.protocol import Alert, AlertKind, Channel, DeviceKind, Severity, device_topic, encode
from hub.auth import Role
from tests.hub.broker.test_attacks import RawClient
from tests.hub.conftest import RunningHub
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


def _can_connect(port: int, username: str, password_file: Path) -> bool:
    """The broker's answer to one login: True on a CONNACK accepting it. It waits for the
    CONNACK itself, not for a fixed time: a slow answer on a loaded worker is not a refusal."""
    # Device client ids are bound to their usernames.
    client = RawClient(port, username, password_file.read_text(encoding="utf-8"), username)
    try:
        return client.connect().connack == 0
    finally:
        client.close()


def _provision(hub: RunningHub, device: str, **extra: object) -> dict[str, str]:
    installer = hub.client(Role.INSTALLER)
    res = installer.post(
        "/api/v1/devices",
        json={"id": device, "site": hub.site, "kind": "camera", "name": "Gate", **extra},
    )
    assert res.status_code == 201, res.text
    body: dict[str, str] = res.json()
    return body


def _alert_through_another_device(hub: RunningHub, broker: BrokerHarness, tmp_path: Path) -> None:
    """Publish an alert as a freshly provisioned device and wait until the hub has stored it."""
    device = f"{hub.site}-barrier"
    pw = tmp_path / "barrier-pw"
    pw.write_text(_provision(hub, device)["mqtt_password"])
    bus = Bus(BusConfig(port=broker.port, username=device, password_file=pw), client_id=device)
    bus.start()
    try:
        assert bus.wait_connected(30)
        alert = Alert(site=hub.site, device=device, kind=AlertKind.TAMPER, severity=Severity.LOW)
        topic = device_topic(hub.site, DeviceKind.CAMERA, device, Channel.ALERT)
        bus.publish(topic, encode(alert), qos=1).wait_for_publish(30)
        admin = hub.client(Role.ADMIN)
        wait_until(
            lambda: admin.get(f"/api/v1/alerts/{alert.id}").status_code == 200,
            message="the barrier alert stored",
        )
    finally:
        bus.stop()


def test_provision_connect_retire(hub: RunningHub, broker: BrokerHarness, tmp_path: Path) -> None:
    device = f"{hub.site}-cam"
    creds = _provision(hub, device)
    assert creds["mqtt_password"] and creds["key_pem"] is None
    pw = tmp_path / "pw"
    pw.write_text(creds["mqtt_password"])
    cfg = AgentConfig(
        site=hub.site,
        device=device,
        data_dir=tmp_path / "edge",
        mqtt=BusConfig(
            port=broker.port,
            username=device,
            password_file=pw,
            reconnect_min_s=0.05,
            reconnect_max_s=0.3,
        ),
    )
    agent = AgentRuntime(cfg, DeviceKind.CAMERA)
    agent.start()
    admin = hub.client(Role.ADMIN)
    try:
        wait_until(
            lambda: admin.get(f"/api/v1/devices/{device}").json()["online"] == "online",
            message="device online on the API",
        )
        first = agent.alert(kind=AlertKind.TAMPER, severity=Severity.HIGH)
        wait_until(lambda: agent.outbox.depth() == 0, message="alert stored and acked")
        assert admin.get(f"/api/v1/alerts/{first.id}").status_code == 200
        # a second provisioning of the same id is refused
        again = hub.client(Role.INSTALLER).post(
            "/api/v1/devices", json={"id": device, "site": hub.site, "kind": "camera"}
        )
        assert again.status_code == 409
        res = hub.client(Role.INSTALLER).post(
            f"/api/v1/devices/{device}/retire", json={"reason": "stolen from pole 4"}
        )
        assert res.status_code == 204
        # Within seconds the broker refuses the identity (seconds on a loaded 2-core CI worker,
        # where the dynamic-security reload can queue behind another test file's work)...
        wait_until(
            lambda: not _can_connect(broker.port, device, pw),
            timeout_s=15,
            message="broker refuses the retired device",
        )
        # ...and an alert the still-running agent sends is never stored.
        sent_before = agent.delivery.sent
        late = agent.alert(kind=AlertKind.TAMPER, severity=Severity.HIGH)
        wait_until(lambda: agent.delivery.sent > sent_before or not agent.bus.connected)
        # A negative needs a barrier, not a pause: a device still provisioned publishes after
        # the late alert's PUBACK (if there was one); once the hub has stored its alert, it
        # has also handled anything the broker passed on before it.
        _alert_through_another_device(hub, broker, tmp_path)
        assert admin.get(f"/api/v1/alerts/{late.id}").status_code == 404
        assert agent.outbox.depth() >= 1
        assert admin.get(f"/api/v1/devices/{device}").json()["status"] == "retired"
        # and the hub's own gate refuses it even if a broker let it through
        topic = device_topic(hub.site, DeviceKind.CAMERA, device, Channel.ALERT)
        hub.service.ingest.handle(
            topic,
            encode(Alert(site=hub.site, device=device, kind=AlertKind.SOS, severity=Severity.LOW)),
        )
        assert hub.service.ingest.stats.rejected["retired_device"] >= 1
    finally:
        agent.stop()
    audit = hub.client(Role.AUDITOR).get("/api/v1/audit", params={"target": device}).json()
    assert [r["action"] for r in audit["items"]][:2] == ["device.retire", "device.provision"]
    assert creds["mqtt_password"] not in str(audit)


def test_certificate_provisioning(hub: RunningHub, broker: BrokerHarness, tmp_path: Path) -> None:
    device = f"{hub.site}-tls"
    creds = _provision(hub, device, with_password=False, with_certificate=True)
    assert creds["mqtt_password"] is None
    for name in ("cert_pem", "key_pem", "ca_pem"):
        (tmp_path / name).write_text(creds[name])
    cfg = BusConfig(
        port=broker.layout.tls_port or 0,
        reconnect_min_s=0.05,
        reconnect_max_s=0.3,
        tls=TlsConfig(
            ca_file=tmp_path / "ca_pem",
            cert_file=tmp_path / "cert_pem",
            key_file=tmp_path / "key_pem",
        ),
    )
    bus = Bus(cfg, client_id=device)
    got: list[bytes] = []
    watcher = Bus(broker.hub_config(), client_id=f"{device}-watch")
    topic = device_topic(hub.site, DeviceKind.CAMERA, device, Channel.HEALTH)
    watcher.subscribe(topic, lambda t, p: got.append(p))
    watcher.start()
    bus.start()
    try:
        assert bus.wait_connected(30)
        assert watcher.wait_connected(30)
        bus.publish(topic, b"x", qos=1).wait_for_publish(5)
        wait_until(lambda: got == [b"x"], message="publish allowed by the cert's ACL")
    finally:
        bus.stop()
        watcher.stop()
    assert not list((broker.ca.directory / "issued").glob("*.key")), "hub kept a private key"


def test_config_push_reports_applied_version(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    device = f"{hub.site}-cfg"
    creds = _provision(hub, device)
    pw = tmp_path / "pw"
    pw.write_text(creds["mqtt_password"])
    cfg = AgentConfig(
        site=hub.site,
        device=device,
        data_dir=tmp_path / "edge",
        health_interval_s=0.3,
        mqtt=BusConfig(port=broker.port, username=device, password_file=pw),
    )
    agent = AgentRuntime(cfg, DeviceKind.CAMERA)
    agent.start()
    commander = hub.client(Role.COMMANDER)
    try:
        assert agent.bus.wait_connected(30)
        for expected in (1, 2):
            res = commander.post(
                f"/api/v1/devices/{device}/config",
                json={"config": {"zones": [{"id": f"z{expected}"}]}},
            )
            assert res.status_code == 201
            assert res.json()["version"] == expected
        wait_until(
            lambda: (
                commander.get(f"/api/v1/devices/{device}/config").json()["applied_version"] == 2
            ),
            message="applied version reported back",
        )
        wait_until(lambda: commander.get(f"/api/v1/devices/{device}/config").json()[
            "status"] == "applied", message="the device's reply is shown")
        info = commander.get(f"/api/v1/devices/{device}").json()
        assert info["config_version_pushed"] == 2
        assert info["config_version_applied"] == 2
        wait_until(
            lambda: commander.get(f"/api/v1/devices/{device}/health").json()["items"],
            message="health history",
        )
        assert (
            hub.client(Role.OPERATOR)
            .post(f"/api/v1/devices/{device}/config", json={"config": {}})
            .status_code
            == 403
        )
    finally:
        agent.stop()


def test_unknown_devices_are_rejected_and_counted(hub: RunningHub, broker: BrokerHarness) -> None:
    device = f"{hub.site}-ghost"
    cfg = broker.add_device(hub.site, DeviceKind.CAMERA, device)  # broker knows it, hub does not
    bus = Bus(cfg, client_id=device)
    bus.start()
    try:
        assert bus.wait_connected(30)
        alert = Alert(site=hub.site, device=device, kind=AlertKind.SOS, severity=Severity.HIGH)
        bus.publish(
            device_topic(hub.site, DeviceKind.CAMERA, device, Channel.ALERT), encode(alert), qos=1
        )
        wait_until(lambda: hub.service.ingest.stats.rejected["unknown_device"] == 1)
        assert hub.client().get(f"/api/v1/alerts/{alert.id}").status_code == 404
    finally:
        bus.stop()


def test_device_listing_and_validation(hub: RunningHub) -> None:
    installer = hub.client(Role.INSTALLER)
    for i in range(3):
        _provision(hub, f"{hub.site}-d{i}")
    page1 = installer.get("/api/v1/devices", params={"site": hub.site, "limit": 2}).json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = installer.get(
        "/api/v1/devices", params={"site": hub.site, "limit": 2, "cursor": page1["next_cursor"]}
    ).json()
    ids = [d["id"] for d in page1["items"] + page2["items"]]
    assert ids == sorted({f"{hub.site}-d{i}" for i in range(3)})
    bad = installer.post(
        "/api/v1/devices", json={"id": "bad/id", "site": hub.site, "kind": "camera"}
    )
    assert bad.status_code == 422
    assert "pattern" in bad.text
    assert (
        installer.post(
            "/api/v1/devices", json={"id": "x", "site": hub.site, "kind": "drone"}
        ).status_code
        == 422
    )
    assert installer.get("/api/v1/devices", params={"cursor": "!!"}).status_code == 422
    reserved = installer.post("/api/v1/devices", json={"id": "fusion", "site": hub.site,
                                                       "kind": "wristband"})
    assert reserved.status_code == 422
    assert "reserved" in reserved.json()["detail"]


AGENT_PROCESS = """
import sys, time
from edge.agent import AgentRuntime
from edge.config import AgentConfig
cfg = AgentConfig.model_validate_json(sys.argv[1])
agent = AgentRuntime(cfg, "camera")
agent.start()
assert agent.bus.wait_connected(30)
print("up", flush=True)
time.sleep(120)
"""


def test_killed_device_shows_offline_within_one_and_a_half_keepalives(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    import subprocess
    import sys

    device = f"{hub.site}-lwt"
    creds = _provision(hub, device)
    pw = tmp_path / "pw"
    pw.write_text(creds["mqtt_password"])
    keepalive_s = 5
    cfg = AgentConfig(site=hub.site, device=device, data_dir=tmp_path / "edge",
                      mqtt=BusConfig(port=broker.port, username=device, password_file=pw,
                                     keepalive_s=keepalive_s))
    proc = subprocess.Popen([sys.executable, "-c", AGENT_PROCESS, cfg.model_dump_json()],
                            stdout=subprocess.PIPE, text=True)
    admin = hub.client(Role.OPERATOR)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "up"
        wait_until(lambda: admin.get(f"/api/v1/devices/{device}").json()["online"] == "online")
        proc.kill()
        proc.wait(10)
        killed_at = time.monotonic()
        wait_until(lambda: admin.get(f"/api/v1/devices/{device}").json()["online"] == "offline",
                   timeout_s=keepalive_s * 1.5 + 3, message="offline via the last will")
        print(f"\noffline shown {time.monotonic() - killed_at:.1f}s after the kill "
              f"(keepalive {keepalive_s}s)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_refused_config_is_reported_with_the_reason(hub: RunningHub, broker: BrokerHarness,
                                                    tmp_path: Path) -> None:
    from edge.protocol import CmdChannel, ConfigPush

    device = f"{hub.site}-refuse"
    creds = _provision(hub, device)
    pw = tmp_path / "pw"
    pw.write_text(creds["mqtt_password"])
    agent = AgentRuntime(AgentConfig(site=hub.site, device=device, data_dir=tmp_path / "edge",
                                     mqtt=BusConfig(port=broker.port, username=device,
                                                    password_file=pw)), DeviceKind.CAMERA)

    def refuse(message: object) -> None:
        assert isinstance(message, ConfigPush)
        agent.config_rejected(message, "zones[0].kind: 'moat' is not a zone kind")

    agent.on_command(CmdChannel.CONFIG, refuse)
    agent.start()
    commander = hub.client(Role.COMMANDER)
    try:
        assert agent.bus.wait_connected(30)
        commander.post(f"/api/v1/devices/{device}/config",
                       json={"config": {"zones": [{"kind": "moat"}]}})
        wait_until(lambda: commander.get(f"/api/v1/devices/{device}/config").json()[
            "status"] == "rejected", message="refusal reported")
        latest = commander.get(f"/api/v1/devices/{device}/config").json()
        assert latest["error"] == "zones[0].kind: 'moat' is not a zone kind"
        assert latest["applied_version"] is None
    finally:
        agent.stop()
