"""The whole path on a real hub (broker, SQLite, uvicorn): a camera's face_match alert over
MQTT becomes a possible match (no incident), its crop is viewed (audited), a forged review
body is refused, a confirmation sends the nearby officer's glasses a Notify to verify, the
officer records the outcome (another role may not), and the auditor exports; then the review
page in Chromium on the same hub."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from edge.alert_details import FaceMatchDetails, build_alert
from edge.protocol import (
    Channel,
    DeviceKind,
    DeviceTopic,
    Evidence,
    ExpectedAction,
    Inbound,
    Location,
    Severity,
)
from hub.auth import Role
from hub.schema import audit_log, incident_alerts
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import browser, closing_client, open_dashboard, pages
from tests.hub.dispatch.conftest import District, district, module_hub, offset
from tests.hub.matches.support import face_alert
from tests.support.images import small_jpeg
from tests.support.waiting import wait_until

__all__ = ["browser", "district", "module_hub", "pages"]  # the dispatch area's hub, reused
MARKUP = '<img src=x onerror="document.title=1">'


def _actions(d: District, target: str) -> list[tuple[str, str]]:
    return d.audit(target)


def test_face_match_review_confirm_verify_outcome_export(district: District) -> None:
    d = district
    glasses = d.officer(100)
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

    body = {"outcome": "identity_confirmed", "note": "ID card checked"}
    # Not dispatched to it (test_review.py: another officer): here a role that is neither.
    worker = d.client(Role.WORKER)
    assert worker.post(f"/api/v1/matches/{match['id']}/outcome", json=body).status_code == 403
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


def _crop_views(hub: RunningHub, match_id: str) -> list[str]:
    with hub.service.store.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.details)
            .where(audit_log.c.target == match_id, audit_log.c.action == "match.crop_view")
            .order_by(audit_log.c.seq)
        ).scalars()
        return [d["image"] for d in rows]


def test_the_review_page_with_two_reviewers_and_the_outcome(
    module_hub: RunningHub, pages: list[Page], browser: Browser
) -> None:
    """The review page (/ui/review.html) in a real Chromium under the hub's CSP: the queue in
    the site's time zone (UTC here; the browser is in New York), crop and snapshot side by
    side (each view audited), a confirmation waiting for a second, distinct reviewer, the
    outcome once confirmed, markup from a device shown as text, the page in Chinese."""
    hub = module_hub
    matches = hub.service.ctx.matches
    one_reviewer = matches.config
    matches.config = one_reviewer.model_copy(update={"two_reviewers": True})
    try:
        alert = face_alert(MARKUP, 0.71, site=hub.site, device="cam-review")
        topic = DeviceTopic(hub.site, DeviceKind.CAMERA, alert.device, Channel.ALERT)
        hub.service.store.write_batch([Inbound(topic, alert)])
        assert matches.intake([alert.id]) == 1
    finally:
        matches.config = one_reviewer

    page = open_dashboard(pages, browser, hub, Role.COMMANDER, timezone_id="America/New_York")
    page.goto(hub.base_url + "/ui/review.html")
    page.wait_for_selector("#review[aria-busy='false']", state="attached", timeout=15_000)
    item = page.locator(".review-item").first
    expect(item).to_contain_text(f"Possible match: {MARKUP}")  # markup shown as text
    expect(item).to_contain_text("similarity 0.71 (threshold 0.50)")
    seen = alert.ts.astimezone(UTC)  # the site's clock, not the browser's
    expect(item.locator("time")).to_contain_text(seen.strftime("%H:%M"))
    item.click()
    for image in ("#review-crop", "#review-snapshot"):
        page.wait_for_function(
            "(sel) => document.querySelector(sel)?.naturalWidth > 0", arg=image, timeout=10_000
        )
    match_id = item.get_attribute("data-id")
    assert match_id is not None
    assert sorted(_crop_views(hub, match_id)) == ["crop", "snapshot"]

    page.fill("#review-note", "same person as the entry photo")
    page.click("#review-confirm")
    expect(page.locator("#review-message")).to_have_text("Your confirmation is recorded.")
    expect(page.locator("#review-waiting")).to_be_visible()  # a second, distinct reviewer
    expect(page.locator("#review-body")).to_contain_text("1 of 2 confirmations")

    # The page opens its live stream only after the queue has loaded, and a change made
    # before the stream's hello never reaches it: the second review waits for it.
    expect(page.locator("#review-conn")).to_have_attribute("data-state", "live")
    with closing_client(hub, Role.OPERATOR) as operator:
        res = operator.post(f"/api/v1/matches/{match_id}/reviews", json={"decision": "confirm"})
        assert res.status_code == 200 and res.json()["status"] == "confirmed"
    # The live event reloads the page: the confirmed match offers the outcome.
    expect(page.locator("#outcome-form")).to_be_visible(timeout=10_000)
    expect(page.locator("#outcome-form")).to_contain_text("identity documents in person")
    page.select_option("#outcome-select", "not_found")
    page.fill("#outcome-note", "left before the officer arrived")
    page.click("#outcome-save")
    expect(page.locator("#review-message")).to_have_text("The outcome is recorded.")
    with closing_client(hub, Role.COMMANDER) as commander:
        match = commander.get(f"/api/v1/matches/{match_id}").json()
    assert (match["outcome"], match["outcome_by"]) == ("not_found", f"{hub.site}-commander")

    page.select_option(".lang-select", "zh-CN")
    expect(page.locator("#review-title")).to_have_text("疑似人脸比中")
    assert page.title() != "1"
    assert page.errors == []  # type: ignore[attr-defined]  # CSP violations included
