"""Alerts through the API: query by site, severity and area, evidence, acknowledge, notes."""

from __future__ import annotations

from pathlib import Path

from edge.protocol import AlertKind, Evidence, Location, Severity
from hub.auth import Role
from tests.hub.conftest import JPEG, RunningHub, wristband_agent
from tests.support.broker import BrokerHarness
from tests.support.images import decoded_size
from tests.support.waiting import wait_until


def test_alert_query_ack_notes_evidence(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    agent = wristband_agent(hub, broker, tmp_path, f"{hub.site}-gw")
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
    assert img.headers["x-content-type-options"] == "nosniff"
    assert decoded_size(img.content) == decoded_size(JPEG)  # re-encoded by the hub
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
