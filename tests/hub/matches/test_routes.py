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


def _confirmed_match(d: District, entry_id: str, east_m: float = 0) -> dict[str, Any]:
    """A face_match alert stored as ingest stores it, taken in, and confirmed by a commander
    (the confirmation opens the incident and asks the officers nearby to verify)."""
    hub = d.hub
    alert = face_alert(entry_id, site=hub.site, device=d.name("cam"), at=offset(east_m))
    topic = DeviceTopic(hub.site, DeviceKind.CAMERA, alert.device, Channel.ALERT)
    hub.service.store.write_batch([Inbound(topic, alert)])
    matches = hub.service.ctx.matches
    assert matches.intake([alert.id]) == 1
    match_id = next(
        m["id"] for m in matches.page(None, limit=50, after=None) if m["alert_id"] == alert.id
    )
    res = d.client(Role.COMMANDER).post(
        f"/api/v1/matches/{match_id}/reviews", json={"decision": "confirm"}
    )
    assert res.status_code == 200, res.text
    return dict(res.json())


def _mine(client: Any) -> list[dict[str, Any]]:
    res = client.get("/api/v1/dispatches/mine")
    res.raise_for_status()
    return list(res.json())


def test_an_officer_records_only_the_outcome_of_a_match_they_are_sent_to(
    district: District,
) -> None:
    """The officer's own dispatch carries the match to verify (and no more than an officer may
    see); only an officer sent to the match's incident records its outcome, once. Another
    officer, one whose dispatch was called off, and one guessing ids are refused alike (403,
    the same sentence: an unknown id is not told apart from another officer's match)."""
    d = district
    sent = d.officer(100)
    elsewhere = d.officer(50_000)  # beyond every dispatch ring: never asked
    called_off = d.officer(60_000)
    match = _confirmed_match(d, "entry-officer")
    other_match = _confirmed_match(d, "entry-elsewhere", -80_000)  # no officer near it
    commander = d.client(Role.COMMANDER)
    # The far officers are sent by hand: one to the other match, one to this match (then
    # called off), so each holds a real dispatch that is not this match's.
    for officer, m in ((elsewhere, other_match), (called_off, match)):
        res = commander.post(
            f"/api/v1/incidents/{m['incident_id']}/dispatches",
            json={"officer": officer.officer, "action": "verify", "force": True},
        )
        assert res.status_code == 201, res.text
        if officer is called_off:
            cancelled = commander.post(
                f"/api/v1/dispatches/{res.json()['id']}/cancel", json={"reason": "too far"}
            )
            assert cancelled.status_code == 200, cancelled.text

    mine = [x for x in _mine(d.client(Role.OFFICER, sent.officer)) if x["match"]]
    assert [(x["incident_id"], x["action"], x["match"]["id"]) for x in mine] == [
        (match["incident_id"], "verify", match["id"])
    ]
    seen = mine[0]["match"]
    assert (seen["entry_id"], seen["status"], seen["confirmations"], seen["outcome"]) == (
        "entry-officer",
        "confirmed",
        1,
        None,
    )
    assert seen["alert_id"] == match["alert_id"]  # the frame an officer may view (audited)
    # What the officer's role may not see stays out: the entry's label, the score, reviewers.
    assert not {"entry_label", "category", "score", "threshold", "reviews"} & set(seen)
    assert [x["match"]["id"] for x in _mine(d.client(Role.OFFICER, elsewhere.officer))] == [
        other_match["id"]
    ]

    body = {"outcome": "not_found", "note": "nobody at the gate"}
    refusal = "only a reviewer or an officer dispatched to this match's incident"
    for officer, match_id in (
        (elsewhere, match["id"]),  # sent, but to another match
        (called_off, match["id"]),  # sent to this one, then called off
        (elsewhere, "0190f3b2-7c1e-7000-8000-000000000000"),  # a guessed id: no such match
    ):
        res = d.client(Role.OFFICER, officer.officer).post(
            f"/api/v1/matches/{match_id}/outcome", json=body
        )
        assert res.status_code == 403, (officer.officer, res.text)
        assert refusal in res.json()["detail"]
    # A reviewer is told plainly that the id is unknown.
    res = commander.post("/api/v1/matches/0190f3b2-7c1e-7000-8000-000000000000/outcome", json=body)
    assert res.status_code == 404
    assert commander.get(f"/api/v1/matches/{match['id']}").json()["outcome"] is None

    officer_client = d.client(Role.OFFICER, sent.officer)
    res = officer_client.post(f"/api/v1/matches/{match['id']}/outcome", json=body)
    assert res.status_code == 200, res.text
    # The answer shows the officer what their dispatch shows, not the reviewers' record.
    assert (res.json()["outcome"], res.json()["confirmations"]) == ("not_found", 1)
    assert not {"entry_label", "score", "reviews"} & set(res.json())
    replay = officer_client.post(
        f"/api/v1/matches/{match['id']}/outcome", json={"outcome": "identity_confirmed"}
    )
    assert replay.status_code == 409
    assert "recorded already (not_found)" in replay.json()["detail"]
    [after] = [x["match"] for x in _mine(officer_client) if x["match"]]
    assert (after["outcome"], after["outcome_note"], after["outcome_by"]) == (
        "not_found",
        "nobody at the gate",
        sent.officer,
    )
    assert _actions(d, match["id"]).count((sent.officer, "match.outcome")) == 1
