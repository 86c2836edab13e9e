"""Issue 11, items 3, 5 and 6, performed as an attacker would: provisioned devices speaking raw
MQTT to the real broker, the real hub on SQLite and PostgreSQL, a real WebSocket client.

- item 3: a device can only report entities it owns, and a clock far ahead cannot pin a
  "latest" position;
- item 5: the live feed shows what the store holds: a replayed or forged alert id is never
  re-broadcast, and only the device that stored an alert id is acked for it;
- item 6: huge integers, non-finite numbers and ``"v": true`` are refused with counted reasons.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from edge.bus import Bus, BusConfig
from edge.protocol import (
    Alert,
    AlertKind,
    Channel,
    CmdChannel,
    DeviceKind,
    EntityKind,
    Health,
    Position,
    PositionBatch,
    Severity,
    cmd_topic,
    device_topic,
    encode,
)
from edge.tracking import track_entity
from edge.validators import utcnow
from hub.auth import Role
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

FAR_FUTURE = datetime.fromisoformat("2099-01-01T00:00:00+00:00")


@pytest.fixture
def any_db_hub(
    broker: BrokerHarness, site: str, tmp_path: Path, db_url: str
) -> Iterator[RunningHub]:
    running = start_hub(broker, site, tmp_path, database_url=db_url)
    yield running
    stop_hub(broker, running)


class Device:
    """A provisioned device speaking raw MQTT, so it can send what no agent would."""

    def __init__(self, hub: RunningHub, name: str, kind: DeviceKind, tmp_path: Path) -> None:
        res = hub.client(Role.INSTALLER).post(
            "/api/v1/devices", json={"id": name, "site": hub.site, "kind": kind.value}
        )
        assert res.status_code == 201, res.text
        secret = tmp_path / f"{name}.pw"
        secret.write_text(res.json()["mqtt_password"])
        self.site, self.name, self.kind = hub.site, name, kind
        self.acks: list[str] = []
        self._lock = threading.Lock()
        port = hub.service.config.mqtt.port
        self.bus = Bus(BusConfig(port=port, username=name, password_file=secret), client_id=name)
        self.bus.subscribe(cmd_topic(hub.site, name, CmdChannel.ACK), self._on_ack, qos=1)
        self.bus.start()
        assert self.bus.wait_connected(30)

    def _on_ack(self, _topic: str, payload: bytes) -> None:
        with self._lock:
            self.acks.extend(json.loads(payload)["ids"])

    def acked(self, alert_id: str) -> int:
        with self._lock:
            return self.acks.count(alert_id)

    def send(self, channel: Channel, payload: bytes, qos: int = 1) -> None:
        topic = device_topic(self.site, self.kind, self.name, channel)
        self.bus.publish(topic, payload, qos=qos).wait_for_publish(5)

    def positions(self, *positions: Position) -> PositionBatch:
        batch = PositionBatch(site=self.site, device=self.name, positions=list(positions))
        self.send(Channel.POS, encode(batch))
        return batch

    def alert(self, title: str, alert_id: str | None = None) -> Alert:
        alert = Alert(
            site=self.site,
            device=self.name,
            kind=AlertKind.INTRUSION,
            severity=Severity.HIGH,
            title=title,
            **({"id": alert_id} if alert_id else {}),
        )
        self.send(Channel.ALERT, encode(alert))
        return alert


def _pos(entity: str, kind: EntityKind, lon: float, ts: datetime | None = None) -> Position:
    return Position(entity=entity, entity_kind=kind, lon=lon, lat=22.54, ts=ts or utcnow())


def _latest(hub: RunningHub) -> dict[str, dict[str, Any]]:
    items = (
        hub.client(Role.OFFICER)
        .get("/api/v1/positions/latest", params={"site": hub.site})
        .json()["items"]
    )
    return {p["entity"]: p for p in items}


def _letters(hub: RunningHub, reason: str) -> list[Any]:
    return hub.service.store.dead_letters(limit=100, reason=reason)


# -- item 3: entity ownership and the timestamp window ------------------------------------------


def test_a_device_cannot_speak_for_an_entity_it_does_not_own(
    any_db_hub: RunningHub, tmp_path: Path
) -> None:
    """Before: the camera's position for officer-2, stamped 2099, became and stayed her latest
    position; every later fix from her own glasses was older, so the map froze."""
    hub = any_db_hub
    stats = hub.service.ingest.stats
    glasses = Device(hub, f"{hub.site}-glasses-2", DeviceKind.GLASSES, tmp_path)
    other_glasses = Device(hub, f"{hub.site}-glasses-9", DeviceKind.GLASSES, tmp_path)
    cam = Device(hub, f"{hub.site}-cam", DeviceKind.CAMERA, tmp_path)
    try:
        glasses.positions(_pos("officer-2", EntityKind.OFFICER, 114.01))
        wait_until(lambda: "officer-2" in _latest(hub), message="her own fix is stored")

        own_track = track_entity(cam.name, "7")
        cam.positions(
            _pos("officer-2", EntityKind.OFFICER, 114.66),  # not a camera's kind
            _pos(own_track, EntityKind.TRACK, 114.02),  # its own: kept
        )
        cam.positions(_pos("officer-2", EntityKind.TRACK, 114.67))  # not named for the camera
        cam.positions(_pos(f"{cam.name}-3", EntityKind.WEARER, 114.68))  # wearers: gateways
        other_glasses.positions(_pos("officer-2", EntityKind.OFFICER, 114.69))  # not its own
        wait_until(lambda: stats.rejected["entity_not_owned"] == 4, message="four refused")
        cam.positions(_pos("officer-2", EntityKind.OFFICER, 114.71, FAR_FUTURE))  # the issue's
        wait_until(lambda: stats.rejected["ts_in_future"] == 1, message="2099 refused")
        wait_until(lambda: own_track in _latest(hub), message="the camera's own track stored")

        # Her own glasses, with a clock far ahead: refused, never "latest".
        glasses.positions(_pos("officer-2", EntityKind.OFFICER, 114.70, FAR_FUTURE))
        wait_until(lambda: stats.rejected["ts_in_future"] == 2, message="future fix refused")
        glasses.positions(_pos("officer-2", EntityKind.OFFICER, 114.03))
        wait_until(
            lambda: round(_latest(hub)["officer-2"]["lon"], 2) == 114.03,
            message="her next real fix moves her marker",
        )
        latest = _latest(hub)["officer-2"]
        assert latest["device"] == glasses.name
        assert latest["ts"] < FAR_FUTURE.isoformat()
        with hub.service.store.engine.connect() as conn:
            from sqlalchemy import select

            from hub.schema import positions

            lons = sorted(
                round(r[0], 2)
                for r in conn.execute(
                    select(positions.c.lon).where(positions.c.entity == "officer-2")
                )
            )
        assert lons == [114.01, 114.03]  # nothing forged or far ahead in her history either
        letters = _letters(hub, "entity_not_owned")
        assert {d.device for d in letters} == {cam.name, other_glasses.name}
        assert len(letters) == 4
        mixed = next(d for d in letters if "1 of 2 positions" in d.error)
        assert mixed.device == cam.name
        assert {d.device for d in _letters(hub, "ts_in_future")} == {cam.name, glasses.name}
        counted = hub.client(Role.ADMIN).get("/api/v1/stats").json()["ingest"]["rejected"]
        assert counted["entity_not_owned"] == 4 and counted["ts_in_future"] == 2
    finally:
        for dev in (glasses, other_glasses, cam):
            dev.bus.stop()


def test_wearers_belong_to_every_gateway_of_their_site(
    any_db_hub: RunningHub, tmp_path: Path
) -> None:
    hub = any_db_hub
    gw_a = Device(hub, f"{hub.site}-gw-a", DeviceKind.WRISTBAND, tmp_path)
    gw_b = Device(hub, f"{hub.site}-gw-b", DeviceKind.WRISTBAND, tmp_path)
    glasses = Device(hub, f"{hub.site}-glasses", DeviceKind.GLASSES, tmp_path)
    try:
        gw_a.positions(_pos("resident-4", EntityKind.WEARER, 114.01))
        wait_until(lambda: "resident-4" in _latest(hub))
        gw_b.positions(_pos("resident-4", EntityKind.WEARER, 114.02))
        wait_until(lambda: _latest(hub)["resident-4"]["device"] == gw_b.name)
        # An officer id cannot be taken over as a wearer, nor a wearer's as an officer.
        glasses.positions(_pos("resident-4", EntityKind.OFFICER, 114.5))
        wait_until(lambda: hub.service.ingest.stats.rejected["entity_not_owned"] == 1)
        assert _latest(hub)["resident-4"]["device"] == gw_b.name
    finally:
        for dev in (gw_a, gw_b, glasses):
            dev.bus.stop()


# -- item 5: the live feed equals the store -----------------------------------------------------


def _live_alerts(
    ws: ClientConnection, until_id: str, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """Every alert event up to and including ``until_id``."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        for event in frame["events"] if frame["layer"] == "batch" else [frame]:
            if event["layer"] == "alerts":
                seen.append(event)
                if event["id"] == until_id:
                    return seen


def test_replayed_and_forged_alerts_never_reach_the_live_feed(
    any_db_hub: RunningHub, tmp_path: Path
) -> None:
    """Before: the replayed id went live 200 times, the forged body reached every dashboard,
    and the other device got an ack for an alert id the hub holds for someone else."""
    hub = any_db_hub
    stats = hub.service.ingest.stats
    owner = Device(hub, f"{hub.site}-cam-a", DeviceKind.CAMERA, tmp_path)
    intruder = Device(hub, f"{hub.site}-cam-b", DeviceKind.CAMERA, tmp_path)
    token = hub.client(Role.OPERATOR).headers["Authorization"].split()[1]
    try:
        with connect(f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}&layers=alerts") as ws:
            ws.recv(timeout=5)  # hello
            real = owner.alert("Intrusion at the north gate")
            wait_until(lambda: owner.acked(real.id) == 1, message="stored and acked")
            replay = encode(real)
            for _ in range(200):
                owner.send(Channel.ALERT, replay)
            forged = real.model_copy(update={"title": "FORGED: evacuate now"})
            owner.send(Channel.ALERT, encode(forged))
            intruder.alert("FORGED by another device", alert_id=real.id)
            own = intruder.alert("The intruder's own alert")
            last = owner.alert("Sentinel")
            events = _live_alerts(ws, last.id)
            wait_until(lambda: intruder.acked(own.id) == 1 and owner.acked(last.id) == 1)

        assert [(e["id"], e["title"]) for e in events] == [
            (real.id, "Intrusion at the north gate"),
            (own.id, "The intruder's own alert"),
            (last.id, "Sentinel"),
        ]
        # The owner's copies are acked again (once per batch: its outbox needs the ack);
        # the intruder's never.
        assert owner.acked(real.id) > 1
        assert intruder.acked(real.id) == 0
        assert stats.rejected["alert_id_taken"] == 1
        [letter] = _letters(hub, "alert_id_taken")
        assert letter.device == intruder.name and letter.message_id == real.id
        alerts = hub.client(Role.OPERATOR).get(
            "/api/v1/alerts", params={"site": hub.site}
        ).json()["items"]
        stored = {a["id"]: a for a in alerts}
        assert stored[real.id]["device"] == owner.name
        assert stored[real.id]["title"] == "Intrusion at the north gate"  # first body wins
        assert hub.service.store.count_alerts(hub.site) == 3
    finally:
        owner.bus.stop()
        intruder.bus.stop()


# -- item 6: decoding refuses what no contract field can hold ----------------------------------


def test_huge_integers_bools_and_non_finite_numbers_are_refused_and_counted(
    any_db_hub: RunningHub, tmp_path: Path
) -> None:
    """Before: a 5,001-digit integer was a bare ValueError (``bad_json``, a reason that says
    nothing), ``"v": true`` and ``"queue_depth": true`` were stored as 1."""
    hub = any_db_hub
    stats = hub.service.ingest.stats
    cam = Device(hub, f"{hub.site}-cam", DeviceKind.CAMERA, tmp_path)
    try:
        beat = json.loads(encode(Health(site=hub.site, device=cam.name, uptime_s=3)))
        bad = {
            "huge": json.dumps(beat).replace('"uptime_s": 3.0', '"uptime_s": ' + "9" * 5001),
            "beyond_a_double": json.dumps({**beat, "queue_depth": 2**53}),
            "v_true": json.dumps({**beat, "v": True}),
            "bool_depth": json.dumps({**beat, "queue_depth": True}),
            "nan": json.dumps(beat).replace('"uptime_s": 3.0', '"uptime_s": NaN'),
        }
        assert "9" * 5001 in bad["huge"] and "NaN" in bad["nan"]
        for payload in bad.values():
            cam.send(Channel.HEALTH, payload.encode())
        good = Health(site=hub.site, device=cam.name, uptime_s=4)
        cam.send(Channel.HEALTH, encode(good))
        wait_until(lambda: sum(stats.rejected.values()) == 5, message="five refused")
        assert stats.rejected == {
            "bad_json_number": 2,
            "bad_version": 1,
            "invalid": 1,
            "bad_json_constant": 1,
        }
        from sqlalchemy import func, select

        from hub.schema import health

        def stored() -> int:
            with hub.service.store.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(health)).scalar_one())

        wait_until(lambda: stored() == 1, message="the good heartbeat is stored")
    finally:
        cam.bus.stop()
