"""The whole path on a real hub (broker, SQLite, uvicorn): a camera's face_match alert over
MQTT becomes a possible match (no incident), its crop is viewed (audited), a forged review
body is refused, a confirmation sends the nearby officer's glasses a Notify to verify, the
officer records the outcome (another officer may not), and the auditor exports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from edge.alert_details import FaceMatchDetails, build_alert
from edge.protocol import Channel, Evidence, ExpectedAction, Location, Severity
from hub.auth import Role
from hub.schema import audit_log, incident_alerts
from tests.hub.dispatch.conftest import District, district, module_hub, offset
from tests.support.images import small_jpeg
from tests.support.waiting import wait_until

__all__ = ["district", "module_hub"]  # the dispatch area's hub and officers, reused


def _actions(d: District, target: str) -> list[tuple[str, str]]:
    return d.audit(target)


def test_face_match_review_confirm_verify_outcome_export(district: District) -> None:
    d = district
    glasses = d.officer(100)
    d.officer(60_000)  # far outside every ring: never dispatched
    cam = d.camera()
    lon, lat = offset(0)
    alert = build_alert(
        FaceMatchDetails(
            entry_id="entry-7",
            score=0.77,
            bundle_version=2,
            threshold=0.5,
            frames_matched=3,
            frames_seen=4,
            backend="yunet-sface",
        ),
        site=cam.site,
        device=cam.device,
        severity=Severity.HIGH,
        title="possible watchlist match",
        location=Location(lon=lon, lat=lat),
        evidence=Evidence.from_jpeg(small_jpeg(64, 48), 64, 48),
        face_crop=Evidence.from_jpeg(small_jpeg(32, 32), 32, 32),
    )
    cam.publish(Channel.ALERT, alert)
    commander = d.client(Role.COMMANDER)
    found: list[dict[str, Any]] = []

    def listed() -> bool:
        res = commander.get("/api/v1/matches", params={"status": "pending"})
        res.raise_for_status()
        found[:] = [m for m in res.json()["items"] if m["alert_id"] == alert.id]
        return bool(found)

    wait_until(listed, message="the possible match listed")
    match = found[0]
    engine = d.hub.service.store.engine
    with engine.connect() as conn:
        linked = conn.execute(
            select(func.count()).where(incident_alerts.c.alert_id == alert.id)
        ).scalar()
    assert linked == 0  # a possible match opens no incident by itself

    operator = d.client(Role.OPERATOR)
    res = operator.get(f"/api/v1/matches/{match['id']}/crop")
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    assert res.headers["cache-control"] == "private, no-store"
    assert (f"{d.hub.site}-operator", "match.crop_view") in _actions(d, match["id"])
    officer_client = d.client(Role.OFFICER, glasses.officer)
    assert officer_client.get("/api/v1/matches").status_code == 403

    forged = {"decision": "confirm", "note": "", "reviewer": "somebody-else"}
    res = operator.post(f"/api/v1/matches/{match['id']}/reviews", json=forged)
    assert res.status_code == 422  # identity comes from the session, never from the body
    assert commander.get(f"/api/v1/matches/{match['id']}").json()["reviews"] == []

    res = commander.post(
        f"/api/v1/matches/{match['id']}/reviews", json={"decision": "confirm", "note": "same"}
    )
    assert res.status_code == 200, res.text
    confirmed = res.json()
    assert confirmed["status"] == "confirmed" and confirmed["incident_number"]
    assert [r["reviewer"] for r in confirmed["reviews"]] == [f"{d.hub.site}-commander"]
    notify = glasses.wait_notify()
    assert (notify.action, notify.alert_id, notify.incident_id) == (
        ExpectedAction.VERIFY,
        alert.id,
        confirmed["incident_id"],
    )
    again = operator.post(f"/api/v1/matches/{match['id']}/reviews", json={"decision": "reject"})
    assert again.status_code == 409

    far = [g for g in d.devices if getattr(g, "officer", None) not in (None, glasses.officer)]
    far_client = d.client(Role.OFFICER, far[0].officer)  # type: ignore[attr-defined]
    body = {"outcome": "identity_confirmed", "note": "ID card checked"}
    assert far_client.post(f"/api/v1/matches/{match['id']}/outcome", json=body).status_code == 403
    res = officer_client.post(f"/api/v1/matches/{match['id']}/outcome", json=body)
    assert res.status_code == 200, res.text
    assert (res.json()["outcome"], res.json()["outcome_by"]) == (
        "identity_confirmed",
        glasses.officer,
    )

    assert operator.get("/api/v1/matches/export.csv").status_code == 403
    res = d.client(Role.AUDITOR).get("/api/v1/matches/export.csv")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert match["id"] in res.text
    with engine.connect() as conn:
        exported = (
            conn.execute(select(audit_log.c.details).where(audit_log.c.action == "match.export"))
            .scalars()
            .all()
        )
    assert exported and exported[-1]["rows"] >= 1
