"""The review page (/ui/review.html) in a real Chromium against a real hub under its CSP: the
queue of possible matches in the site's time zone, a match's crop and snapshot side by side
(each view audited), a confirmation that waits for a second, distinct reviewer, the outcome
once confirmed, markup from a device shown as text, and the page in Chinese."""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from edge.protocol import Channel, DeviceKind, DeviceTopic, Inbound
from hub.auth import Role
from hub.schema import audit_log
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import (
    browser,
    closing_client,
    open_dashboard,
    pages,
    pinned_hub,
)
from tests.hub.matches.support import face_alert
from tests.support.broker import BrokerHarness

__all__ = ["browser", "pages"]
ZONE = ZoneInfo("Asia/Shanghai")
MARKUP = '<img src=x onerror="document.title=1">'


@pytest.fixture(scope="module")
def review_hub(
    broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    with pinned_hub(
        broker,
        tmp_path_factory.mktemp("reviewhub"),
        timezone="Asia/Shanghai",
        matches={"two_reviewers": True},
    ) as running:
        yield running


def _crop_views(hub: RunningHub, match_id: str) -> list[str]:
    with hub.service.store.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.details)
            .where(audit_log.c.target == match_id, audit_log.c.action == "match.crop_view")
            .order_by(audit_log.c.seq)
        ).scalars()
        return [d["image"] for d in rows]


def test_review_a_possible_match_with_two_reviewers_and_record_the_outcome(
    review_hub: RunningHub, pages: list[Page], browser: Browser
) -> None:
    hub = review_hub
    alert = face_alert(MARKUP, 0.71, site=hub.site, device="cam-review")
    topic = DeviceTopic(hub.site, DeviceKind.CAMERA, alert.device, Channel.ALERT)
    hub.service.store.write_batch([Inbound(topic, alert)])
    assert hub.service.ctx.matches.intake([alert.id]) == 1

    page = open_dashboard(pages, browser, hub, Role.COMMANDER, timezone_id="America/New_York")
    page.goto(hub.base_url + "/ui/review.html")
    page.wait_for_selector("#review[aria-busy='false']", state="attached", timeout=15_000)
    item = page.locator(".review-item").first
    expect(item).to_contain_text(f"Possible match: {MARKUP}")  # markup shown as text
    expect(item).to_contain_text("similarity 0.71 (threshold 0.50)")
    seen = alert.ts.astimezone(ZONE)  # the site's clock, not the browser's
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
