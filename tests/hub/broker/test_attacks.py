"""Issue 11 items 1, 2, 7 and 15: a provisioned device attacks the real Mosquitto and the real
hub. Each test fails on the broker of before (acl_file, no client-id binding, root, a
websockets listener on every interface, a 500 on a stale broker)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import func, select

from edge.agent import AgentRuntime
from edge.bus import BusConfig
from edge.config import AgentConfig
from edge.protocol import AlertKind, Channel, Severity, device_topic, encode
from hub.auth import Role
from hub.schema import alerts, health, positions
from tests.hub.conftest import RunningHub, start_hub, stop_hub, wearer_position
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

NOT_AUTHORIZED = 0x87


class RawClient:
    """A bare MQTT 5 client that records CONNACK, SUBACK reason codes and every message."""

    def __init__(self, port: int, username: str, password: str, client_id: str) -> None:
        self.connack: int | None = None
        self.subacks: dict[int, list[int]] = {}
        self.received: list[str] = []
        self.disconnected = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.port = port

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc.value

    def _on_subscribe(
        self, _c: object, _u: object, mid: int, codes: list[ReasonCode], _p: object
    ) -> None:
        with self._lock:
            self.subacks[mid] = [c.value for c in codes]

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(msg.topic)

    def connect(self) -> RawClient:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        wait_until(
            lambda: self.connack is not None or self.disconnected.is_set(), message="CONNACK"
        )
        return self

    def subscribe(self, topic_filter: str) -> list[int]:
        codes = self.try_subscribe(topic_filter)
        assert codes is not None, (
            f"the broker dropped the session before the SUBACK for {topic_filter}"
        )
        return codes

    def try_subscribe(self, topic_filter: str) -> list[int] | None:
        """The SUBACK's reason codes, or None when the session is gone before it came."""
        _rc, mid = self.client.subscribe(topic_filter, qos=1)
        if mid is None:
            return None
        wait_until(
            lambda: mid in self.subacks or self.disconnected.is_set(),
            message=f"SUBACK for {topic_filter}",
        )
        return self.subacks.get(mid)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()  # paho keeps its socket pair until garbage collection


def _connect_ok(port: int, username: str, password: str, client_id: str) -> RawClient:
    """Connect once the broker has loaded the new account (SIGHUP reloads asynchronously)."""
    clients: list[RawClient] = []

    def attempt() -> bool:
        client = RawClient(port, username, password, client_id).connect()
        if client.connack == 0:
            clients.append(client)
            return True
        client.close()
        return False

    wait_until(attempt, timeout_s=15, message=f"{username} accepted")
    return clients[0]


def _provision(hub: RunningHub, device: str, kind: str = "camera") -> str:
    res = hub.client(Role.INSTALLER).post(
        "/api/v1/devices", json={"id": device, "site": hub.site, "kind": kind}
    )
    assert res.status_code == 201, res.text
    return str(res.json()["mqtt_password"])


def _agent(hub: RunningHub, broker: BrokerHarness, tmp_path: Path, device: str) -> AgentRuntime:
    pw = tmp_path / f"{device}.pw"
    pw.write_text(_provision(hub, device, "wristband"))
    cfg = AgentConfig(
        site=hub.site,
        device=device,
        data_dir=tmp_path / device,
        mqtt=BusConfig(
            port=broker.port,
            username=device,
            password_file=pw,
            reconnect_min_s=0.05,
            reconnect_max_s=0.3,
        ),
    )
    agent = AgentRuntime(cfg, "wristband")  # type: ignore[arg-type]
    agent.start()
    assert agent.bus.wait_connected(30)
    return agent


def _count(hub: RunningHub, table: object, device: str) -> int:
    with hub.service.store.engine.connect() as conn:
        col = table.c.device  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).where(col == device)).scalar_one())


def _stored_ids(hub: RunningHub, table: object, ids: set[str]) -> set[str]:
    with hub.service.store.engine.connect() as conn:
        col = table.c.id  # type: ignore[attr-defined]
        return {str(r[0]) for r in conn.execute(select(col).where(col.in_(ids)))}


def test_intruder_cannot_subscribe_outside_its_commands(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    """Item 1: shared or not, every foreign subscription is refused with 0x87, the intruder
    receives nothing and the hub stores every alert and position of a normal device."""
    site = hub.site
    intruder_id = f"{site}-intruder"
    intruder = _connect_ok(broker.port, intruder_id, _provision(hub, intruder_id), intruder_id)
    agent = None
    try:
        for topic_filter in (
            f"$share/hub/gw/v1/{site}/+/+/alert",
            f"$share/hub/gw/v1/{site}/+/+/positions",
            f"$share/hub/gw/v1/{site}/+/+/health",
            "$share/x/#",
            "#",
            f"gw/v1/{site}/#",
            "$SYS/#",
            "$CONTROL/dynamic-security/#",
        ):
            assert intruder.subscribe(topic_filter) == [NOT_AUTHORIZED], topic_filter
        # its own command topics stay open to it
        assert intruder.subscribe(f"gw/v1/{site}/cmd/{intruder_id}/+") == [1]  # granted, QoS 1
        agent = _agent(hub, broker, tmp_path, f"{site}-band")
        n = 40
        health_topic = device_topic(site, "wristband", agent.device, Channel.HEALTH)
        health_ids = set()
        for i in range(n):
            agent.alert(kind=AlertKind.SOS, severity=Severity.HIGH)
            agent.send_positions([wearer_position(f"{site}-w", 114.0 + i / 1e4, 22.5)])
            beat = agent.health_message()
            health_ids.add(beat.id)
            agent.bus.publish(health_topic, encode(beat), qos=1).wait_for_publish(5)
        wait_until(
            lambda: _count(hub, alerts, agent.device) == n,
            timeout_s=20,
            message="every alert stored",
        )
        wait_until(
            lambda: _count(hub, positions, agent.device) == n,
            timeout_s=20,
            message="every position stored",
        )
        wait_until(
            lambda: _stored_ids(hub, health, health_ids) == health_ids,
            timeout_s=20,
            message="every health report stored",
        )
        wait_until(lambda: agent.outbox.depth() == 0, message="every alert acked")
        assert intruder.received == []
        # nor can it administer the broker: its control commands are dropped
        forged = '{"commands":[{"command":"deleteClient","username":"hub"}]}'
        intruder.client.publish("$CONTROL/dynamic-security/v1", forged, qos=1).wait_for_publish(5)
        live = broker.control()._request([{"command": "getClient", "username": "hub"}])
        assert live[0].get("error") is None and live[0]["data"]["client"]["username"] == "hub"
        assert hub.service.bus.connected
    finally:
        if agent is not None:
            agent.stop()
        intruder.close()


def test_client_id_takeover_is_refused(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    """Item 2: a device presenting the hub's or another device's client id is refused at
    CONNACK and the owners stay connected and keep delivering."""
    site = hub.site
    thief_id = f"{site}-thief"
    thief_pw = _provision(hub, thief_id)
    _connect_ok(broker.port, thief_id, thief_pw, thief_id).close()  # its credentials work
    agent = _agent(hub, broker, tmp_path, f"{site}-owner")
    try:
        hub_reconnects = hub.service.bus.connect_count
        agent_reconnects = agent.bus.connect_count
        for stolen in (hub.service.config.client_id, agent.device, "harness-dynsec"):
            thief = RawClient(broker.port, thief_id, thief_pw, stolen).connect()
            try:
                assert thief.connack == NOT_AUTHORIZED, stolen
            finally:
                thief.close()
        agent.alert(kind=AlertKind.SOS, severity=Severity.HIGH)
        wait_until(lambda: _count(hub, alerts, agent.device) == 1, message="alert stored")
        assert hub.service.bus.connected and agent.bus.connected
        assert hub.service.bus.connect_count == hub_reconnects
        assert agent.bus.connect_count == agent_reconnects
        # and no device can be provisioned under the hub's client id
        res = hub.client(Role.INSTALLER).post(
            "/api/v1/devices",
            json={"id": hub.service.config.client_id, "site": site, "kind": "camera"},
        )
        assert res.status_code == 422, res.text
    finally:
        agent.stop()


def test_broker_not_root_and_websockets_bound(broker: BrokerHarness) -> None:
    """Item 7: the broker runs as a non-root user and every listener, websockets included, is
    bound to the configured address only."""
    assert broker.proc.proc is not None
    proc = psutil.Process(broker.proc.proc.pid)
    if os.geteuid() == 0:
        assert proc.uids().real != 0 and proc.uids().effective != 0
    listening = [c for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN]
    ports = {c.laddr.port for c in listening}
    assert broker.layout.ws_port in ports and broker.layout.port in ports
    assert {c.laddr.ip for c in listening} == {broker.layout.bind}


def test_provision_and_retire_survive_a_broker_restart(
    own_broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    """Item 15: after the broker is killed and restarted, provisioning works; retiring while
    the broker is down succeeds and the restarted broker refuses the device; retiring a
    connected device disconnects it and refuses it again."""
    broker = own_broker
    running = start_hub(broker, site, tmp_path)
    try:
        broker.proc.kill()
        broker.start()
        device = f"{site}-after"
        pw = _provision(running, device)
        first = _connect_ok(broker.port, device, pw, device)
        # retire while connected: the broker drops it and refuses it from then on
        res = running.client(Role.ADMIN).post(
            f"/api/v1/devices/{device}/retire", json={"reason": "stolen"}
        )
        assert res.status_code == 204, res.text
        assert first.disconnected.wait(5)
        first.close()
        again = RawClient(broker.port, device, pw, device).connect()
        assert again.connack == NOT_AUTHORIZED
        again.close()
        # retire while the broker is down: the API succeeds, the broker starts without it
        other = f"{site}-down"
        other_pw = _provision(running, other)
        _connect_ok(broker.port, other, other_pw, other).close()
        broker.proc.kill()
        res = running.client(Role.ADMIN).post(
            f"/api/v1/devices/{other}/retire", json={"reason": "lost"}
        )
        assert res.status_code == 204, res.text
        broker.start()
        late = RawClient(broker.port, other, other_pw, other).connect()
        assert late.connack == NOT_AUTHORIZED
        late.close()
        # and a device provisioned after that works
        fresh = f"{site}-fresh"
        ok = _connect_ok(broker.port, fresh, _provision(running, fresh), fresh)
        assert ok.subscribe(f"gw/v1/{site}/cmd/{fresh}/+") == [1]
        ok.close()
    finally:
        stop_hub(broker, running)


@pytest.mark.parametrize("stale", ["missing", "dead-pid"])
def test_sync_with_a_stale_pid_file_succeeds(
    own_broker: BrokerHarness, site: str, tmp_path: Path, stale: str
) -> None:
    """Item 15 with a broker run by someone else (pid_file): a stale pid is not a 500."""
    from hub.audit import AuditTrail
    from hub.config import BrokerFilesConfig
    from hub.devices.service import DeviceService
    from hub.store import Store

    pid_file = tmp_path / "mosquitto.pid"
    if stale == "dead-pid":
        pid_file.write_text("999999\n")
    store = Store(f"sqlite:///{tmp_path}/hub.sqlite")
    files = BrokerFilesConfig(
        password_file=own_broker.layout.password_file,
        acl_file=own_broker.layout.acl_file,
        pid_file=pid_file,
    )
    service = DeviceService(store.engine, AuditTrail(store.engine), files)
    try:
        creds = service.add("test", site, "camera", f"{site}-cam")
        assert creds.mqtt_password
        service.retire("test", f"{site}-cam", "gone")
        assert f"{site}-cam" not in own_broker.layout.password_file.read_text()
    finally:
        store.engine.dispose()


def test_a_password_unknown_to_dynamic_security_gets_no_acl(
    broker: BrokerHarness, site: str
) -> None:
    """Fail closed: an account in the password file that dynamic security does not know (a
    half-applied change, a hand edit) may log in but subscribe to nothing, not even the
    command topics a device of that name would have."""
    from hub.broker import hash_password, new_password

    name = f"{site}-stray"
    password = new_password()
    broker.write_accounts()
    with broker.layout.password_file.open("a", encoding="utf-8") as passwd:
        passwd.write(f"{name}:{hash_password(password)}\n")
    broker.proc.reload()
    stray = _connect_ok(broker.port, name, password, name)
    try:
        assert stray.subscribe("#") == [NOT_AUTHORIZED]
        assert stray.subscribe(f"gw/v1/{site}/cmd/{name}/+") == [NOT_AUTHORIZED]
    finally:
        stray.close()
        broker.write_accounts()
        broker.proc.reload()


def test_changed_rights_reach_the_running_broker(own_broker: BrokerHarness, site: str) -> None:
    """The running plugin never re-reads its file: an account whose ACL changed (here a lab
    device id moved to another site) is recreated live with the new rights only."""
    from edge.protocol import DeviceKind

    name = f"{site}-moved"
    own_broker.add_device(f"{site}a", DeviceKind.CAMERA, name)
    own_broker.add_device(f"{site}b", DeviceKind.CAMERA, name)
    answers: list[list[int]] = []

    def both_answered() -> bool:
        # The broker applies the move asynchronously (its SIGHUP reload, the plugin's update)
        # and drops a session it changes under it: a session dropped before both SUBACKs is
        # no answer, and a fresh one asks again.
        moved = _connect_ok(own_broker.port, name, own_broker.passwords[name], name)
        try:
            codes = [moved.try_subscribe(f"gw/v1/{site}{s}/cmd/{name}/+") for s in "ba"]
        finally:
            moved.close()
        if any(c is None for c in codes):
            return False
        answers[:] = [c for c in codes if c is not None]
        return True

    wait_until(both_answered, message="both SUBACKs on one session")
    assert answers == [[1], [NOT_AUTHORIZED]]


def test_control_refusals_are_errors_not_outages(broker: BrokerHarness, site: str) -> None:
    """A wrong hub password, or a device's credentials used as the ACL admin, is a clear
    BrokerError (a 503 on provisioning), never mistaken for a broker that is down."""
    from edge.protocol import DeviceKind
    from hub.broker import BrokerError, BrokerUnreachable, DynsecControl, free_port

    wrong = DynsecControl("127.0.0.1", broker.port, "hub", lambda: "not-it", f"{site}-ctl")
    with pytest.raises(BrokerError, match="refused the control login") as refused:
        wrong.apply(broker.all_accounts())
    assert not isinstance(refused.value, BrokerUnreachable)
    device = f"{site}-admin-wannabe"
    broker.add_device(site, DeviceKind.CAMERA, device)
    posing = DynsecControl(
        "127.0.0.1", broker.port, device, lambda: broker.passwords[device], device
    )
    with pytest.raises(BrokerError, match="may not read") as denied:
        posing.apply([])
    assert not isinstance(denied.value, BrokerUnreachable)
    down = DynsecControl("127.0.0.1", free_port(), "hub", lambda: "x", f"{site}-down")
    with pytest.raises(BrokerUnreachable):
        down.apply([])
