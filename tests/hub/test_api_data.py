"""Alerts and positions through the whole path: device -> broker -> hub -> REST and WebSocket."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from edge.agent import AgentRuntime
from edge.bus import BusConfig
from edge.config import AgentConfig
from edge.protocol import AlertKind, EntityKind, Evidence, Location, Position, Severity
from edge.validators import utcnow
from hub.auth import Role
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

JPEG = b"\xff\xd8\xff\xe0" + b"evidence" * 50 + b"\xff\xd9"


def _agent(hub: RunningHub, broker: BrokerHarness, tmp_path: Path, device: str) -> AgentRuntime:
    creds = (
        hub.client(Role.INSTALLER)
        .post("/api/v1/devices", json={"id": device, "site": hub.site, "kind": "wristband"})
        .json()
    )
    pw = tmp_path / f"{device}.pw"
    pw.write_text(creds["mqtt_password"])
    cfg = AgentConfig(
        site=hub.site,
        device=device,
        data_dir=tmp_path / device,
        mqtt=BusConfig(port=broker.port, username=device, password_file=pw),
    )
    agent = AgentRuntime(cfg, "wristband")  # type: ignore[arg-type]
    agent.start()
    assert agent.bus.wait_connected(5)
    return agent


def _pos(entity: str, lon: float, lat: float, dt_s: float = 0) -> Position:
    return Position(
        entity=entity,
        entity_kind=EntityKind.WEARER,
        lon=lon,
        lat=lat,
        accuracy_m=4.0,
        ts=utcnow() + timedelta(seconds=dt_s),
    )


def test_alert_query_ack_notes_evidence(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    agent = _agent(hub, broker, tmp_path, f"{hub.site}-gw")
    try:
        sos = agent.alert(
            kind=AlertKind.SOS,
            severity=Severity.CRITICAL,
            title="SOS pressed",
            location=Location(lon=114.056, lat=22.543),
            evidence=Evidence.from_jpeg(JPEG),
            details={"band": 7},
        )
        low = agent.alert(
            kind=AlertKind.BATTERY_LOW,
            severity=Severity.LOW,
            location=Location(lon=114.1, lat=22.6),
        )
        wait_until(lambda: agent.outbox.depth() == 0)
    finally:
        agent.stop()
    officer = hub.client(Role.OFFICER)
    listed = officer.get("/api/v1/alerts", params={"site": hub.site}).json()["items"]
    assert [a["id"] for a in listed] == [low.id, sos.id]  # newest first
    crit = officer.get("/api/v1/alerts", params={"severity": "critical"}).json()["items"]
    assert [a["id"] for a in crit] == [sos.id]
    boxed = officer.get("/api/v1/alerts", params={"bbox": "114.05,22.54,114.06,22.55"}).json()
    assert [a["id"] for a in boxed["items"]] == [sos.id]
    assert officer.get("/api/v1/alerts", params={"bbox": "1,2,3"}).status_code == 422
    detail = officer.get(f"/api/v1/alerts/{sos.id}").json()
    assert detail["title"] == "SOS pressed"
    assert detail["has_evidence"] is True
    assert detail["details"] == {"band": 7}
    img = officer.get(f"/api/v1/alerts/{sos.id}/evidence")
    assert img.headers["content-type"] == "image/jpeg"
    assert img.content == JPEG
    assert officer.get(f"/api/v1/alerts/{low.id}/evidence").status_code == 404
    acked = officer.post(f"/api/v1/alerts/{sos.id}/ack", json={"note": "on my way"}).json()
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by"] == f"{hub.site}-officer"
    assert acked["notes"][0]["text"] == "on my way"
    again = hub.client(Role.OPERATOR).post(f"/api/v1/alerts/{sos.id}/ack", json={}).json()
    assert again["acknowledged_by"] == f"{hub.site}-officer"  # the first ack stands
    note = hub.client(Role.OPERATOR).post(
        f"/api/v1/alerts/{sos.id}/notes", json={"text": "ambulance called"}
    )
    assert note.status_code == 201
    assert officer.get("/api/v1/alerts", params={"status": "new"}).json()["items"][0]["id"] == (
        low.id
    )
    audit = hub.client(Role.AUDITOR).get("/api/v1/audit", params={"target": sos.id}).json()
    assert {r["action"] for r in audit["items"]} == {
        "alert.ack",
        "alert.note",
        "alert.evidence_view",
    }


def test_positions_latest_history_bbox_pages(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    agent = _agent(hub, broker, tmp_path, f"{hub.site}-gw")
    try:
        agent.send_positions(
            [_pos("w1", 114.050 + i * 0.001, 22.54, dt_s=i) for i in range(5)]
            + [_pos("w2", 114.2, 22.7)]
        )
        wait_until(lambda: hub.service.ingest.stats.stored_positions >= 6)
    finally:
        agent.stop()
    officer = hub.client(Role.OFFICER)
    latest = officer.get("/api/v1/positions/latest", params={"site": hub.site}).json()["items"]
    assert {p["entity"]: round(p["lon"], 3) for p in latest} == {"w1": 114.054, "w2": 114.2}
    inside = officer.get(
        "/api/v1/positions/latest", params={"bbox": "114.0,22.5,114.1,22.6", "site": hub.site}
    ).json()
    assert [p["entity"] for p in inside["items"]] == ["w1"]
    page = officer.get("/api/v1/positions/history", params={"entity": "w1", "limit": 3}).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = officer.get(
        "/api/v1/positions/history",
        params={"entity": "w1", "limit": 3, "cursor": page["next_cursor"]},
    ).json()
    lons = [round(p["lon"], 3) for p in page["items"] + rest["items"]]
    assert lons == [114.05, 114.051, 114.052, 114.053, 114.054]
    assert rest["next_cursor"] is None
    assert officer.get("/api/v1/positions/history").status_code == 422


def _recv(ws: ClientConnection, layer: str, timeout_s: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        for event in frame["events"] if frame["layer"] == "batch" else [frame]:
            if event["layer"] == layer:
                return event  # type: ignore[no-any-return]


def test_live_stream_filters_by_layer_and_bbox(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    token = hub.client(Role.OFFICER).headers["Authorization"].split()[1]
    url = f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}"
    agent = _agent(hub, broker, tmp_path, f"{hub.site}-gw")
    try:
        with (
            connect(f"{url}&layers=positions&bbox=114.0,22.5,114.1,22.6") as near,
            connect(f"{url}&layers=alerts") as alerts_only,
        ):
            assert json.loads(near.recv(timeout=5))["layers"] == ["positions"]
            assert json.loads(alerts_only.recv(timeout=5))["layer"] == "hello"
            agent.send_positions([_pos("far", 120.0, 30.0)])
            agent.send_positions([_pos("close", 114.05, 22.54)])
            event = _recv(near, "positions")
            assert event["entity"] == "close"  # "far" was filtered out by the bbox
            sos = agent.alert(kind=AlertKind.SOS, severity=Severity.HIGH)
            assert _recv(alerts_only, "alerts")["id"] == sos.id
    finally:
        agent.stop()


@pytest.mark.allow_leaks  # hub started here; stopped in finally
def test_slow_live_client_is_dropped_and_ingest_keeps_up(
    broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    from hub.config import ApiConfig

    hub = start_hub(broker, site, tmp_path, api=ApiConfig(port=0, ws_queue_max=20))
    try:
        token = hub.client(Role.OPERATOR).headers["Authorization"].split()[1]
        agent = _agent(hub, broker, tmp_path, f"{site}-gw")
        try:
            with connect(
                f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}&layers=positions",
                max_size=None,
            ) as slow:
                slow.recv(timeout=5)  # hello; then never read again
                for i in range(40):
                    agent.send_positions([_pos(f"e{j}", 114.05, 22.54, i) for j in range(50)])
                wait_until(
                    lambda: hub.service.ingest.stats.stored_positions >= 2000,
                    timeout_s=20,
                    message="ingest stored everything",
                )
                with pytest.raises(ConnectionClosed) as closed:  # noqa: PT012 - read until closed
                    while True:
                        slow.recv(timeout=5)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1013
                assert "too slow" in closed.value.rcvd.reason
            assert hub.service.live.stats["clients_dropped_slow"] == 1
        finally:
            agent.stop()
    finally:
        stop_hub(broker, hub)
