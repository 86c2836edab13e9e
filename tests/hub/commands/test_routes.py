"""Config pushes through the command outbox with a real hub, broker and agent: a push to an
offline device is answered once it comes online; a push while the broker is down is accepted
and published when the broker is back; the commands API shows each state."""

from __future__ import annotations

from pathlib import Path

from edge.agent import AgentRuntime
from edge.bus import BusConfig
from edge.config import AgentConfig
from edge.protocol import DeviceKind
from hub.auth import Role
from tests.hub.commands.test_publisher import Watcher
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


def _provision(hub: RunningHub, device: str) -> str:
    res = hub.client(Role.INSTALLER).post(
        "/api/v1/devices", json={"id": device, "site": hub.site, "kind": "camera"}
    )
    assert res.status_code == 201, res.text
    password: str = res.json()["mqtt_password"]
    return password


def _agent(hub: RunningHub, broker: BrokerHarness, tmp_path: Path, device: str) -> AgentRuntime:
    pw = tmp_path / f"{device}.pw"
    pw.write_text(_provision(hub, device))
    cfg = AgentConfig(
        site=hub.site,
        device=device,
        data_dir=tmp_path / device,
        mqtt=BusConfig(port=broker.port, username=device, password_file=pw),
    )
    return AgentRuntime(cfg, DeviceKind.CAMERA)


def test_push_to_an_offline_device_is_answered_when_it_comes_online(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    device = f"{hub.site}-late"
    agent = _agent(hub, broker, tmp_path, device)  # provisioned, not started: offline
    commander = hub.client(Role.COMMANDER)
    res = commander.post(f"/api/v1/devices/{device}/config", json={"config": {"zones": []}})
    assert res.status_code == 201, res.text
    pushed = res.json()
    command_id = pushed["command_id"]
    assert pushed["command_state"] == "pending"

    def command() -> dict[str, object]:
        body: dict[str, object] = commander.get(f"/api/v1/commands/{command_id}").json()
        return body

    wait_until(lambda: command()["state"] == "sent", message="published retained")
    assert command()["device"] == device and command()["channel"] == "config"
    view = commander.get(f"/api/v1/devices/{device}/config").json()
    assert (view["status"], view["command_state"]) == ("pending", "sent")
    agent.start()
    try:
        assert agent.bus.wait_connected(30)
        wait_until(lambda: command()["state"] == "answered", message="the device's reply")
        assert command()["answer_ok"] is True
        view = commander.get(f"/api/v1/devices/{device}/config").json()
        assert (view["status"], view["command_state"]) == ("applied", "answered")
    finally:
        agent.stop()
    listed = commander.get("/api/v1/commands", params={"device": device}).json()
    assert [c["id"] for c in listed["items"]] == [command_id]
    assert commander.get("/api/v1/commands", params={"state": "failed"}).json()["items"] == []
    assert commander.get("/api/v1/commands", params={"state": "lost"}).status_code == 422
    assert commander.get("/api/v1/commands/0190d0e0-0000-7000-8000-000000000000").status_code == (
        404
    )
    assert hub.client(Role.OFFICER).get("/api/v1/commands").status_code == 403


def test_push_while_the_broker_is_down_is_published_when_it_is_back(
    own_broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    hub = start_hub(
        own_broker,
        site,
        tmp_path,
        mqtt=own_broker.hub_config(reconnect_min_s=0.1, reconnect_max_s=0.5),
    )
    watcher: Watcher | None = None
    try:
        device = f"{site}-cam"
        _provision(hub, device)
        commander = hub.client(Role.COMMANDER)
        own_broker.stop()
        wait_until(lambda: not hub.service.bus.connected, message="hub sees the outage")
        res = commander.post(f"/api/v1/devices/{device}/config", json={"config": {"a": 1}})
        assert res.status_code == 201, res.text
        command_id = res.json()["command_id"]

        def command() -> dict[str, object]:
            body: dict[str, object] = commander.get(f"/api/v1/commands/{command_id}").json()
            return body

        wait_until(lambda: command()["last_error"] is not None, message="a failed attempt")
        assert (command()["state"], command()["attempts"]) == ("pending", 0)
        own_broker.start()
        watcher = Watcher(own_broker, site, device, f"{site}-w")
        wait_until(lambda: command()["state"] == "sent", timeout_s=30, message="published")
        wait_until(lambda: watcher.count(command_id) >= 1, message="the device's topic has it")
        assert command()["attempts"] == 1
    finally:
        if watcher is not None:
            watcher.stop()
        stop_hub(own_broker, hub)


def test_retiring_a_device_fails_its_open_commands(hub: RunningHub) -> None:
    device = f"{hub.site}-gone"
    _provision(hub, device)
    admin = hub.client(Role.ADMIN)
    res = admin.post(f"/api/v1/devices/{device}/config", json={"config": {}})
    command_id = res.json()["command_id"]
    retire = admin.post(f"/api/v1/devices/{device}/retire", json={"reason": "stolen"})
    assert retire.status_code == 204
    command = admin.get(f"/api/v1/commands/{command_id}").json()
    assert (command["state"], command["last_error"]) == ("failed", "the device was retired")
    assert command["next_attempt_at"] is None
