"""The incident API on a running hub (real uvicorn, broker, SQLite): open, list, detail,
transitions, conflicts, hostile input, attachments, workflow, dry run; and alerts from a real
agent through ingest into one grouped incident."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from edge.protocol import Alert, AlertKind, Location, Severity
from hub.auth import Role
from hub.schema import audit_log
from tests.hub.conftest import JPEG, RunningHub, provisioned_agent
from tests.hub.incidents.support import add_cell, add_department, name_department
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


def open_one(client: httpx.Client, site: str, **kw: Any) -> dict[str, Any]:
    body = {"site": site, "category": "garbage", "level": "medium", "title": "Bins overflowing"}
    body.update(kw)
    res = client.post("/api/v1/incidents", json=body)
    assert res.status_code == 201, res.text
    data: dict[str, Any] = res.json()
    return data


def test_open_list_detail_and_work_an_incident(hub: RunningHub) -> None:
    engine = hub.service.store.engine
    add_cell(engine, hub.site, "c1", 114.0, 22.5)
    add_department(engine, "san-1", "sanitation")
    name_department(engine, "c1", "sanitation", "san-1")
    op = hub.client(Role.OPERATOR)
    inc = open_one(op, hub.site, lon=114.005, lat=22.505)
    assert (inc["cell_id"], inc["department_id"], inc["state"]) == ("c1", "san-1", "new")
    assert inc["created_at"].endswith("Z")  # aware UTC

    listed = op.get("/api/v1/incidents", params={"site": hub.site, "state": ["new", "assigned"]})
    assert [i["id"] for i in listed.json()["items"]] == [inc["id"]]
    for params in ({"state": "closed"}, {"department": "x"}, {"cell": "c2"}, {"level": "low"}):
        assert (
            op.get("/api/v1/incidents", params={"site": hub.site, **params}).json()["items"] == []
        ), params
    assert len(op.get("/api/v1/incidents", params={"department": "san-1"}).json()["items"]) == 1

    url = f"/api/v1/incidents/{inc['id']}"
    worker = f"{hub.site}-{Role.OFFICER.value}"
    res = op.post(f"{url}/assign", json={"assignee": worker, "version": 1})
    assert res.status_code == 200, res.text
    assert res.json()["state"] == "assigned" and res.json()["version"] == 2
    # the officer works it
    officer = hub.client(Role.OFFICER)
    assert officer.post(f"{url}/start", json={"version": 2}).json()["state"] == "in_progress"
    assert officer.post(f"{url}/comments", json={"text": "on site"}).status_code == 201
    res = officer.post(f"{url}/resolve", json={"text": "emptied", "version": 3})
    assert res.json()["state"] == "resolved"
    res = op.post(f"{url}/close", json={"version": 4})
    detail = res.json()
    assert detail["state"] == "closed"
    assert [e["kind"] for e in detail["timeline"]] == [
        "created",
        "routed",
        "assigned",
        "state",
        "comment",
        "state",
        "state",
    ]
    # a stale version: 409
    res = op.post(f"{url}/reopen", json={"reason": "still smells", "version": 4})
    assert res.status_code == 409 and "version" in res.json()["detail"]
    # an impossible transition: 409
    assert officer.post(f"{url}/start", json={"version": 5}).status_code == 409


def test_permissions(hub: RunningHub) -> None:
    inc = open_one(hub.client(Role.OPERATOR), hub.site)
    officer = hub.client(Role.OFFICER)  # incidents:work, not :manage
    assert officer.post("/api/v1/incidents", json={}).status_code == 403
    res = officer.post(
        f"/api/v1/incidents/{inc['id']}/assign", json={"assignee": "x", "version": 1}
    )
    assert res.status_code == 403
    # may work only the incidents assigned to them
    res = officer.post(f"/api/v1/incidents/{inc['id']}/resolve", json={"text": "t", "version": 1})
    assert res.status_code == 409  # new cannot be resolved, whoever asks
    assert hub.client(None).get("/api/v1/incidents").status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"category": "unicorns"}, 422),
        ({"title": "a\u0000b"}, 422),
        ({"description": "x" * 20_001}, 422),
        ({"title": ""}, 422),
        ({"level": "apocalyptic"}, 422),
        ({"lon": 114.0}, 422),  # lon without lat
        ({"site": "../etc"}, 422),
        ({"extra": 1}, 422),
    ],
)
def test_hostile_open(hub: RunningHub, body: dict[str, Any], status: int) -> None:
    base = {"site": hub.site, "category": "garbage", "level": "medium", "title": "t"}
    res = hub.client(Role.OPERATOR).post("/api/v1/incidents", json={**base, **body})
    assert res.status_code == status, res.text


def test_hostile_changes(hub: RunningHub) -> None:
    op = hub.client(Role.OPERATOR)
    inc = open_one(op, hub.site)
    url = f"/api/v1/incidents/{inc['id']}"
    # forged assignee
    res = op.post(f"{url}/assign", json={"assignee": "nobody-here", "version": 1})
    assert res.status_code == 422 and "no active user" in res.json()["detail"]
    assert op.post(f"{url}/comments", json={"text": "x" * 20_001}).status_code == 422
    assert op.post(f"{url}/comments", json={"text": "\u0000"}).status_code == 422
    assert op.post(f"{url}/comments", json={"text": ""}).status_code == 422
    res = op.patch(url, json={"version": 1, "category": "unicorns"})
    assert res.status_code == 422
    unknown = "01a2319c-0000-7000-8000-000000000000"
    assert op.get(f"/api/v1/incidents/{unknown}").status_code == 404
    assert op.post(f"/api/v1/incidents/{unknown}/comments", json={"text": "hi"}).status_code == 404
    assert op.get("/api/v1/incidents/not-an-id!").status_code == 422
    res = op.post(f"{url}/alerts", json={"alert_id": unknown})
    assert res.status_code == 404
    # nothing of that changed the incident
    assert op.get(url).json()["version"] == 1


def _exif_jpeg() -> bytes:
    img = Image.open(io.BytesIO(JPEG))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc"  # Make
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_attachments(hub: RunningHub) -> None:
    op = hub.client(Role.OPERATOR)
    inc = open_one(op, hub.site)
    url = f"/api/v1/incidents/{inc['id']}/attachments"
    raw = _exif_jpeg()
    assert b"SpyCam" in raw
    res = op.post(
        url, content=raw, headers={"Content-Type": "image/jpeg"}, params={"filename": "a.jpg"}
    )
    assert res.status_code == 201, res.text
    meta = res.json()
    assert (meta["kind"], meta["width"], meta["height"]) == ("photo", 64, 48)
    got = op.get(f"{url}/{meta['id']}")
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert b"SpyCam" not in got.content  # re-encoded: EXIF gone
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith("attachment")
    pdf = op.post(url, content=b"%PDF-1.4\n...", headers={"Content-Type": "application/pdf"})
    assert pdf.status_code == 201
    for content, ctype, status in [
        (b"<html><script>alert(1)</script>", "image/jpeg", 422),  # fake photo
        (b"<svg onload=alert(1)>", "image/svg+xml", 415),
        (b"MZ\x90\x00", "application/pdf", 422),
        (b"", "image/jpeg", 422),
        (b"\xff" * (10 * 1024 * 1024 + 1), "application/pdf", 413),
    ]:
        res = op.post(url, content=content, headers={"Content-Type": ctype})
        assert res.status_code == status, (ctype, res.text)
    detail = op.get(f"/api/v1/incidents/{inc['id']}").json()
    assert [a["kind"] for a in detail["attachments"]] == ["photo", "file"]
    assert op.get(f"{url}/01a2319c-0000-7000-8000-000000000000").status_code == 404
    with hub.service.store.engine.connect() as conn:
        actions = [
            r.action
            for r in conn.execute(
                select(audit_log.c.action).where(audit_log.c.target == inc["id"])
            ).all()
        ]
    assert actions == [
        "incident.open",
        "incident.attach",
        "incident.attachment_download",
        "incident.attach",
    ]


def test_workflow_and_dry_run(hub: RunningHub) -> None:
    engine = hub.service.store.engine
    add_cell(engine, hub.site, "c1", 114.0, 22.5)
    add_department(engine, "ps-1", "public_security")
    name_department(engine, "c1", "public_security", "ps-1")
    client = hub.client(Role.COMMANDER)
    wf = client.get("/api/v1/workflow").json()
    assert wf["levels"] == ["low", "medium", "high", "critical"]
    assert wf["routing"][-1]["name"] == "default"
    assert {r["name"] for r in wf["alert_rules"]} >= {"sos", "intrusion"}
    res = client.post(
        "/api/v1/workflow/routing/dry-run",
        json={
            "site": hub.site,
            "category": "intrusion",
            "level": "high",
            "lon": 114.005,
            "lat": 22.505,
        },
    )
    assert res.status_code == 200, res.text
    out = res.json()
    assert (out["rule"], out["department"], out["cell_id"]) == (
        "line-public_security",
        "ps-1",
        "c1",
    )
    assert out["trace"][0] == {
        "rule": "line-public_security",
        "matched": True,
        "reason": "matched",
        "detail": "cell c1, line public_security: ps-1",
    }
    res = client.post(
        "/api/v1/workflow/routing/dry-run",
        json={"site": hub.site, "category": "garbage", "level": "low", "cell_id": "c1"},
    )
    out = res.json()
    assert out["rule"] == "default" and out["department"] == "ps-1"
    assert [t["reason"] for t in out["trace"]] == [
        "category",
        "category",
        "no_department",
        "category",
        "matched",
    ]
    bad = client.post(
        "/api/v1/workflow/routing/dry-run",
        json={"site": hub.site, "category": "unicorns", "level": "low"},
    )
    assert bad.status_code == 422
    naive = client.post(
        "/api/v1/workflow/routing/dry-run",
        json={"site": hub.site, "category": "garbage", "level": "low", "at": "2026-12-01T10:00:00"},
    )
    assert naive.status_code == 422
    assert hub.client(Role.WORKER).get("/api/v1/workflow").status_code == 403


def test_alerts_from_an_agent_group_into_one_incident(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> None:
    agent = provisioned_agent(hub, broker, tmp_path, f"{hub.site}-cam", "camera")
    try:
        for _ in range(30):
            agent.send_alert(
                Alert(
                    site=hub.site,
                    device=agent.config.device,
                    kind=AlertKind.INTRUSION,
                    severity=Severity.HIGH,
                    title="person at the fence",
                    location=Location(lon=114.005, lat=22.505),
                )
            )
        op = hub.client(Role.OPERATOR)

        def grouped() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = op.get(
                "/api/v1/incidents", params={"site": hub.site}
            ).json()["items"]
            return items if items and items[0]["alert_count"] == 30 else None

        wait_until(grouped, timeout_s=20, message="30 alerts in one incident")
        items = grouped()
        assert items is not None and len(items) == 1
        assert items[0]["category"] == "intrusion" and items[0]["source"] == "alert"
        detail = op.get(f"/api/v1/incidents/{items[0]['id']}").json()
        assert len(detail["alerts"]) == 30
        intake = hub.client(Role.COMMANDER).get("/api/v1/workflow").json()["intake"]
        assert intake["alerts_linked"] == 30 and intake.get("errors", 0) == 0
    finally:
        agent.stop()


def test_the_fuzz_seed_makes_what_it_names(hub: RunningHub) -> None:
    from tests.hub.incidents.fuzz_seed import seed

    ids = seed(hub)
    op = hub.client(Role.OPERATOR)
    first = ids["incident_id"][0]
    for attachment in ids["attachment_id"]:
        assert op.get(f"/api/v1/incidents/{first}/attachments/{attachment}").status_code == 200
    states = [op.get(f"/api/v1/incidents/{i}").json()["state"] for i in ids["incident_id"]]
    assert states == ["new", "assigned", "closed", "new"]


def test_a_failing_intake_never_stops_ingest(
    hub: RunningHub, broker: BrokerHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alert rules blow up on every batch: alerts are still stored and acknowledged, the
    failure is counted, and the hub says it is degraded until a pass succeeds again."""

    def broken(alerts: Any) -> int:
        raise RuntimeError("rules engine on fire")

    service = hub.service.ctx.incidents
    monkeypatch.setattr(service, "process_alerts", broken)
    agent = provisioned_agent(hub, broker, tmp_path, f"{hub.site}-cam2", "camera")
    try:
        for _ in range(5):
            agent.send_alert(
                Alert(
                    site=hub.site,
                    device=agent.config.device,
                    kind=AlertKind.SOS,
                    severity=Severity.CRITICAL,
                )
            )
        wait_until(lambda: agent.outbox.depth() == 0, timeout_s=20, message="alerts acked")
        assert hub.service.store.count_alerts(hub.site) == 5
        # Ingest acks a batch as soon as it is stored and runs the intake after that: the
        # device can hold its ack before the intake has failed on its batch.
        wait_until(
            lambda: service.intake.as_dict()["errors"] >= 1 and not service.intake.healthy,
            message="the failure counted",
        )
        health = hub.client(Role.ADMIN).get("/api/v1/health")
        assert health.status_code == 503
        assert health.json()["workers"]["incident-intake"]["alive"] is False
        monkeypatch.undo()  # fixed: the next batch goes through and the hub is healthy again
        agent.send_alert(
            Alert(
                site=hub.site,
                device=agent.config.device,
                kind=AlertKind.SOS,
                severity=Severity.CRITICAL,
            )
        )
        wait_until(lambda: service.intake.healthy, timeout_s=20, message="intake healthy")
        assert hub.client(Role.ADMIN).get("/api/v1/health").status_code == 200
    finally:
        agent.stop()
