"""The officer's phone HUD on a dispatch sent to verify a confirmed face match
(hub/dashboard/field/officer.js), in real Chromium against a real hub: the card says identity is
verified by lawful means only, shows what the officer may see of the match (entry id, camera,
time, reviewers' confirmations, the camera frame; no label, no face crop), and records the
outcome with a note through the hub (the match and the audit log hold it, the buttons go); a
tap on a match whose outcome the hub holds already shows the hub's refusal and then the
outcome it holds; the card in Chinese."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from edge.protocol import Channel, DeviceKind, DeviceTopic, Inbound
from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import closing_client, offset
from tests.hub.dashboard.test_field_page import phone, sign_in, watch_errors
from tests.hub.dashboard.test_mobile_a11y import NO_SIDEWAYS_SCROLL, serious_violations
from tests.hub.dashboard.test_officer_hud import bind_glasses
from tests.hub.matches.support import audit_actions, face_alert

SCENE_AT = (120.0, 60.0)
MARKUP = '<img src=x onerror="window.__pwned=1">'

# Every visible control of the match part narrower or lower than a fingertip's 44 CSS px.
SMALL_TARGETS = """() => [...document.querySelectorAll('.match-verify button, .match-verify input')]
    .filter((b) => b.offsetParent !== null)
    .filter((b) => { const r = b.getBoundingClientRect(); return r.width < 44 || r.height < 44; })
    .map((b) => b.className)"""


@dataclass(frozen=True)
class Sent:
    match: dict[str, Any]
    dispatch: str


def _confirmed_and_sent(
    hub: RunningHub, commander: httpx.Client, officer: str, entry_id: str, camera: str
) -> Sent:
    """A face_match alert stored as ingest stores it, confirmed by a commander, and the
    officer sent by hand to verify it (they have no fix, so the hub asked nobody)."""
    alert = face_alert(entry_id, site=hub.site, device=camera, at=offset(*SCENE_AT))
    topic = DeviceTopic(hub.site, DeviceKind.CAMERA, camera, Channel.ALERT)
    hub.service.store.write_batch([Inbound(topic, alert)])
    matches = hub.service.ctx.matches
    assert matches.intake([alert.id]) == 1
    match_id = next(
        m["id"] for m in matches.page(None, limit=50, after=None) if m["alert_id"] == alert.id
    )
    res = commander.post(f"/api/v1/matches/{match_id}/reviews", json={"decision": "confirm"})
    assert res.status_code == 200, res.text
    match = dict(res.json())
    res = commander.post(
        f"/api/v1/incidents/{match['incident_id']}/dispatches",
        json={"officer": officer, "action": "verify", "force": True},
    )
    assert res.status_code == 201, res.text
    return Sent(match, str(res.json()["id"]))


@pytest.fixture(scope="module")
def sent(dispatch_hub: RunningHub) -> tuple[Sent, Sent]:
    hub = dispatch_hub
    officer = f"{hub.site}-officer"
    bind_glasses(hub, officer)
    with closing_client(hub, Role.COMMANDER) as commander:
        return (
            _confirmed_and_sent(hub, commander, officer, "entry-north-gate", "cam-gate"),
            _confirmed_and_sent(hub, commander, officer, MARKUP, "cam-yard"),
        )


def _match(hub: RunningHub, match_id: str) -> dict[str, Any]:
    with closing_client(hub, Role.COMMANDER) as commander:
        return dict(commander.get(f"/api/v1/matches/{match_id}").json())


def _audit(hub: RunningHub, target: str) -> list[tuple[str, str]]:
    return audit_actions(hub.service.store.engine, target)


def _card(page: Page, s: Sent) -> Any:
    return page.locator(f'li[data-id="{s.dispatch}"]')


def test_the_officer_verifies_by_lawful_means_and_records_the_outcome(
    browser: Browser,
    contexts: list[BrowserContext],
    dispatch_hub: RunningHub,
    sent: tuple[Sent, Sent],
) -> None:
    hub = dispatch_hub
    first, second = sent
    officer = f"{hub.site}-officer"
    page = phone(browser, contexts).new_page()
    errors = watch_errors(page)
    sign_in(page, hub, Role.OFFICER)
    card = _card(page, first)
    part = card.locator(".match-verify")
    expect(part).to_be_visible()
    expect(part.locator(".lawful")).to_contain_text("lawful means only")
    expect(part.locator(".lawful")).to_contain_text("Take no photo, face scan")
    expect(part.locator(".reference")).to_contain_text("entry-north-gate")
    expect(part.locator(".reference")).to_contain_text("cam-gate")
    expect(part.locator(".reference")).to_contain_text("confirmed by 1 reviewer(s)")
    # The frame of the match's alert (a hand-sent dispatch names none: the match does), a view
    # audited as every evidence view; the face crop is the reviewers' alone.
    page.wait_for_function(
        '(id) => document.querySelector(`li[data-id="${id}"] img.evidence`)?.naturalWidth > 0',
        arg=first.dispatch,
    )
    assert (officer, "alert.evidence_view") in _audit(hub, first.match["alert_id"])
    assert page.locator("img[src*='/crop'], img[src*='/matches/']").count() == 0
    expect(part.locator("button.outcome")).to_have_count(3)
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    assert page.evaluate(SMALL_TARGETS) == []
    assert serious_violations(page) == []

    # The list is read again while the officer types (here: the phone comes online): the
    # new card keeps the words typed and the caret in the note.
    note = part.locator(".outcome-note")
    note.fill("ID card checked")
    note.evaluate("(el) => { el.dataset.old = '1'; }")
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    page.wait_for_function(
        '(id) => { const el = document.querySelector(`li[data-id="${id}"] .outcome-note`);'
        " return el && !el.dataset.old; }",
        arg=first.dispatch,
    )
    assert note.input_value() == "ID card checked"
    assert note.evaluate("(el) => el === document.activeElement")
    note.press("End")
    page.keyboard.type(": another person")
    # The note and the tap reach the hub; the recorded outcome replaces the buttons.
    part.locator('button[data-outcome="not_the_person"]').click()
    expect(part.locator(".outcome-status")).to_have_text("The outcome is recorded.")
    expect(part.locator(".outcome-recorded")).to_contain_text("Outcome recorded: Not the person")
    expect(part.locator(".outcome-recorded")).to_contain_text("ID card checked: another person")
    expect(part.locator("button.outcome")).to_have_count(0)
    held = _match(hub, first.match["id"])
    assert (held["outcome"], held["outcome_note"], held["outcome_by"]) == (
        "not_the_person",
        "ID card checked: another person",
        officer,
    )
    assert _audit(hub, first.match["id"]).count((officer, "match.outcome")) == 1

    # A stale card (the page in the background, so no poll reloads it) while a reviewer
    # records the outcome: the tap shows the hub's refusal, then the outcome the hub holds.
    other = _card(page, second).locator(".match-verify")
    expect(other.locator(".reference")).to_contain_text(MARKUP)  # markup from a device: text
    page.evaluate("() => Object.defineProperty(document, 'hidden', {get: () => true})")
    with closing_client(hub, Role.OPERATOR) as operator:
        res = operator.post(
            f"/api/v1/matches/{second.match['id']}/outcome", json={"outcome": "not_found"}
        )
        assert res.status_code == 200, res.text
    other.locator('button[data-outcome="identity_confirmed"]').click()
    expect(other.locator(".outcome-status")).to_contain_text("Not recorded:")
    expect(other.locator(".outcome-status")).to_contain_text("recorded already (not_found)")
    expect(other.locator(".outcome-recorded")).to_contain_text("Person not found")
    expect(other.locator("button.outcome")).to_have_count(0)
    assert _match(hub, second.match["id"])["outcome_by"] == f"{hub.site}-operator"

    page.select_option(".lang-select", "zh-CN")
    expect(part.locator("h3")).to_contain_text("已确认的人脸比中")
    expect(part.locator(".lawful")).to_contain_text("只能依法核实身份")
    expect(part.locator(".outcome-recorded")).to_contain_text("已记录结果")
    expect(part.locator(".outcome-recorded")).to_contain_text("并非此人")
    expect(part.locator(".reference")).to_contain_text("1 名复核员已确认")
    assert page.evaluate("window.__pwned") is None
    # The 401 before signing in and the 409 of the refusal are the page's to show, not errors.
    unexpected = [e for e in errors if "(Unauthorized)" not in e and "(Conflict)" not in e]
    assert unexpected == [], unexpected
