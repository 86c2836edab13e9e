"""A real hub and broker with officers wearing simulated glasses: each a raw paho client
logged in with its own device credentials (provisioned through the API), receiving Notify on
its command topic, answering receipt with a Reply and the officer's answers with
DispatchAnswer, and reporting the officer's position."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import select

from edge.protocol import (
    Alert,
    AlertKind,
    Channel,
    CmdChannel,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    DispatchAnswer,
    EntityKind,
    Evidence,
    HubAck,
    Location,
    Notify,
    OfficerAnswer,
    Position,
    PositionBatch,
    Reply,
    Severity,
    cmd_topic,
    decode_as,
    device_topic,
    encode,
)
from edge.validators import utcnow
from hub.auth import Role, create_user
from hub.schema import audit_log, dispatch_answers, incident_alerts
from tests.hub.conftest import PASSWORD, RunningHub
from tests.hub.dashboard.conftest import closing_client, pinned_hub
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

ORIGIN = (114.0570, 22.5430)
_NAMES = itertools.count(1)  # unique across a module's tests, which share one hub
M_PER_DEG = 111_320.0


def offset(east_m: float, north_m: float = 0.0) -> tuple[float, float]:
    lon0, lat0 = ORIGIN
    return (
        lon0 + east_m / (M_PER_DEG * math.cos(math.radians(lat0))),
        lat0 + north_m / M_PER_DEG,
    )


class Device:
    """A raw MQTT client with a device's own credentials."""

    def __init__(self, hub: RunningHub, broker: BrokerHarness, device: str, kind: str) -> None:
        self.hub = hub
        self.site = hub.site
        self.device = device
        self.kind = kind
        with closing_client(hub, Role.INSTALLER) as installer:
            res = installer.post(
                "/api/v1/devices", json={"id": device, "site": hub.site, "kind": kind}
            )
            res.raise_for_status()
            password = res.json()["mqtt_password"]
        self.notifies: list[Notify] = []
        self.acked: set[str] = set()  # message ids the hub's HubAck said it stored
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=device, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.username_pw_set(device, password)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        wait_until(self.client.is_connected, message=f"{device} connected")
        if kind == "glasses":
            for channel in (CmdChannel.NOTIFY, CmdChannel.ACK):
                res_sub = self.client.subscribe(cmd_topic(self.site, device, channel), qos=1)
                assert res_sub[0] == mqtt.MQTT_ERR_SUCCESS

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        with self.lock:
            if msg.topic.endswith("/ack"):
                self.acked.update(decode_as(HubAck, msg.payload).ids)
            else:
                self.notifies.append(decode_as(Notify, msg.payload))

    def publish(self, channel: Channel, message: Any, qos: int = 1) -> None:
        info = self.client.publish(
            device_topic(self.site, self.kind, self.device, channel), encode(message), qos=qos
        )
        info.wait_for_publish(5)

    def raw(self, channel: Channel, payload: bytes) -> None:
        topic = device_topic(self.site, self.kind, self.device, channel)
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def state(self, status: DeviceStatus) -> None:
        self.publish(
            Channel.STATE,
            DeviceState(
                site=self.site, device=self.device, kind=DeviceKind(self.kind), state=status
            ),
        )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # Paho keeps its loopback wake-up socket pair until garbage collection (edge/bus.py).
        self.client._reset_sockets()


class Glasses(Device):
    def __init__(self, hub: RunningHub, broker: BrokerHarness, device: str, officer: str) -> None:
        super().__init__(hub, broker, device, "glasses")
        self.officer = officer

    def at(self, east_m: float, north_m: float = 0.0, **kw: Any) -> None:
        lon, lat = offset(east_m, north_m)
        self.publish(
            Channel.POS,
            PositionBatch(
                site=self.site,
                device=self.device,
                positions=[
                    Position(
                        entity=self.officer,
                        entity_kind=EntityKind.OFFICER,
                        lon=lon,
                        lat=lat,
                        ts=kw.get("ts", utcnow()),
                    )
                ],
            ),
            qos=1,
        )

    def wait_notify(self, n: int = 1) -> Notify:
        wait_until(lambda: len(self.notifies) >= n, message=f"notify #{n} on {self.device}")
        with self.lock:
            return self.notifies[n - 1]

    def receipt(self, notify: Notify) -> None:
        self.publish(
            Channel.REPLY,
            Reply(site=self.site, device=self.device, request_id=notify.id, ok=True),
        )

    def answer(self, notify: Notify, answer: OfficerAnswer, **kw: Any) -> DispatchAnswer:
        assert notify.dispatch_id is not None
        msg = DispatchAnswer(
            site=self.site,
            device=self.device,
            dispatch_id=kw.pop("dispatch_id", notify.dispatch_id),
            notify_id=notify.id,
            officer=kw.pop("officer", self.officer),
            answer=answer,
            **kw,
        )
        self.publish(Channel.ANSWER, msg)
        return msg


@dataclass
class District:
    """A hub with officers on it; ``close`` disconnects every simulated device."""

    hub: RunningHub
    broker: BrokerHarness
    devices: list[Device] = field(default_factory=list)
    clients: list[httpx.Client] = field(default_factory=list)
    logged_in: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, role: Role = Role.ADMIN, username: str | None = None) -> httpx.Client:
        """A logged-in client, one per user (a login is an argon2 verification: slow)."""
        name = username or f"{self.hub.site}-{role.value}"
        if name in self.logged_in:
            return self.logged_in[name]
        client = httpx.Client(base_url=self.hub.base_url, timeout=30)
        res = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        res.raise_for_status()
        client.headers["Authorization"] = f"Bearer {res.json()['token']}"
        self.clients.append(client)
        self.logged_in[name] = client
        return client

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(_NAMES)}-{self.hub.site}"[:64]

    def officer(
        self, east_m: float, north_m: float = 0.0, *, on_duty: bool = True, fix_age_s: float = 0
    ) -> Glasses:
        """An officer user with bound glasses, on duty, with a fix at the place."""
        username = self.name("off")
        with self.hub.service.store.engine.begin() as conn:
            create_user(conn, username, PASSWORD, Role.OFFICER, display_name=username)
        glasses = Glasses(self.hub, self.broker, self.name("gl"), username)
        self.devices.append(glasses)
        admin = self.client()
        res = admin.put(
            f"/api/v1/officers/{username}", json={"device": glasses.device, "on_duty": on_duty}
        )
        assert res.status_code == 200, res.text
        glasses.at(east_m, north_m, ts=utcnow() - timedelta(seconds=fix_age_s))
        wait_until(
            lambda: (self.officer_view(username) or {}).get("last_fix") is not None,
            message=f"{username}'s fix stored",
        )
        return glasses

    def officer_view(self, username: str) -> dict[str, Any] | None:
        res = self.client(Role.COMMANDER).get("/api/v1/officers")
        res.raise_for_status()
        return next((o for o in res.json() if o["username"] == username), None)

    def camera(self) -> Device:
        cam = Device(self.hub, self.broker, self.name("cam"), "camera")
        self.devices.append(cam)
        return cam

    def alert(
        self,
        cam: Device,
        east_m: float,
        north_m: float = 0.0,
        kind: AlertKind = AlertKind.INTRUSION,
        evidence: Evidence | None = None,
    ) -> Alert:
        lon, lat = offset(east_m, north_m)
        alert = Alert(
            site=cam.site,
            device=cam.device,
            kind=kind,
            severity=Severity.HIGH,
            title=f"{kind.value} at {east_m:.0f} m",
            location=Location(lon=lon, lat=lat),
            evidence=evidence,
        )
        cam.publish(Channel.ALERT, alert)
        return alert

    def incident_of(self, alert_id: str) -> str:
        """The id of the incident the alert opened or joined (waits for the alert rules)."""
        engine = self.hub.service.store.engine
        stmt = select(incident_alerts.c.incident_id).where(incident_alerts.c.alert_id == alert_id)
        found: list[str] = []

        def linked() -> bool:
            with engine.connect() as conn:
                row = conn.execute(stmt).first()
            if row is not None:
                found.append(row.incident_id)
            return row is not None

        wait_until(linked, message=f"incident of alert {alert_id}")
        return found[0]

    def outcome(self, answer_id: str) -> tuple[str | None, str | None]:
        """(outcome, reason) of a stored answer, once dispatch has decided it."""
        engine = self.hub.service.store.engine
        t = dispatch_answers
        got: list[Any] = []

        def decided() -> bool:
            with engine.connect() as conn:
                row = conn.execute(
                    select(t.c.outcome, t.c.reason).where(t.c.id == answer_id)
                ).first()
            if row is not None and row.outcome is not None:
                got.append(row)
                return True
            return False

        wait_until(decided, message=f"answer {answer_id} decided")
        return got[0].outcome, got[0].reason

    def audit(self, target: str) -> list[tuple[str, str]]:
        with self.hub.service.store.engine.connect() as conn:
            rows = conn.execute(
                select(audit_log.c.actor, audit_log.c.action)
                .where(audit_log.c.target == target)
                .order_by(audit_log.c.seq)
            ).all()
        return [(r.actor, r.action) for r in rows]

    def dispatches(self, incident_id: str) -> list[dict[str, Any]]:
        res = self.client(Role.COMMANDER).get(f"/api/v1/incidents/{incident_id}/dispatches")
        res.raise_for_status()
        return list(res.json())

    def close(self) -> None:
        admin = self.client()
        for device in self.devices:
            if isinstance(device, Glasses):  # the module's hub outlives this test's officers
                admin.put(
                    f"/api/v1/officers/{device.officer}", json={"device": None, "on_duty": False}
                )
            device.close()
        for client in self.clients:
            client.close()
        self.devices.clear()
        self.clients.clear()
        self.logged_in.clear()


@pytest.fixture(scope="module")
def module_hub(
    broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    with pinned_hub(broker, tmp_path_factory.mktemp("dispatch-hub")) as running:
        yield running


@pytest.fixture
def district(module_hub: RunningHub, broker: BrokerHarness) -> Iterator[District]:
    d = District(module_hub, broker)
    yield d
    d.close()


def settle(seconds: float = 0.0) -> None:
    """Never used for correctness: only where a test proves that nothing happens."""
    time.sleep(seconds)
