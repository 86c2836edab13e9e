"""The watchlist page (/ui/watchlists.html) in a real Chromium against a real hub: an
operator enrols through the form (a group photo is refused with the quality sentence first),
a commander approves it; the commander's own entry cannot be approved by them (the buttons are
disabled with the reason); the photo view is shown and audited; the page speaks zh-CN."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import select

from hub.auth import Role
from hub.schema import audit_log
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import closing_client, open_dashboard, pinned_hub
from tests.hub.watchlists.conftest import cache_root, photo
from tests.support.broker import BrokerHarness


@pytest.fixture(scope="module")
def wl_page_hub(
    broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    with pinned_hub(broker, tmp_path_factory.mktemp("hub")) as running:
        yield running


def _open(pages: list[Page], browser: Browser, hub: RunningHub, role: Role) -> Page:
    page = open_dashboard(pages, browser, hub, role)
    link = page.locator("#watchlists-open")
    expect(link).to_be_visible()
    link.click()
    page.wait_for_selector("#wl[aria-busy='false']", state="attached", timeout=15_000)
    return page


def _entry(page: Page, label: str) -> Locator:
    return page.locator(".wl-entry", has=page.locator("strong", has_text=label))


def test_enrol_as_operator_approve_as_commander(
    wl_page_hub: RunningHub, browser: Browser, pages: list[Page]
) -> None:
    hub = wl_page_hub
    with closing_client(hub, Role.COMMANDER) as commander_api:
        res = commander_api.post(
            "/api/v1/watchlists/entries",
            data={
                "label": "Commander's own",
                "category": "missing_person",
                "reason": "reported missing 2026-11-30",
                "legal_basis": "missing person report MP-77",
                "expires_at": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
            },
            files={"photo": ("b.jpg", photo("biden"), "image/jpeg")},
        )
        assert res.status_code == 201, res.text

    operator = _open(pages, browser, hub, Role.OPERATOR)
    expect(operator.locator("#wl-enrol")).to_be_visible()
    expiry = operator.locator("#wl-expiry")
    latest = datetime.fromisoformat(expiry.get_attribute("max") or "")
    assert (latest.date() - datetime.now(UTC).date()).days in (89, 90)  # max_expiry_days
    operator.set_input_files("#wl-photo", str(cache_root() / "faces" / "t1.jpg"))
    operator.fill("#wl-label", "Zhang San")
    operator.select_option("#wl-category", "wanted_person")
    operator.fill("#wl-reason", "suspect in robbery case 2026-114")
    operator.fill("#wl-legal", "warrant 2026-WX-0041")
    operator.click("#wl-submit")
    expect(operator.locator("#wl-form-result")).to_have_text(
        "The photo shows several faces: crop it to the one person."
    )
    operator.set_input_files("#wl-photo", str(cache_root() / "faces" / "obama.jpg"))
    operator.click("#wl-submit")
    expect(operator.locator("#wl-form-result")).to_contain_text("waits for another user")
    mine = _entry(operator, "Zhang San")
    expect(mine).to_have_attribute("data-status", "pending")
    expect(mine).to_contain_text("warrant 2026-WX-0041")  # legal basis and expiry in the row
    expect(mine).to_contain_text("Expires")
    expect(mine.locator(".wl-approve")).to_have_count(0)  # operators do not approve

    commander = _open(pages, browser, hub, Role.COMMANDER)
    own = _entry(commander, "Commander's own")
    expect(own.locator(".wl-approve")).to_be_disabled()
    expect(own.locator(".wl-refuse")).to_be_disabled()
    expect(own.locator(".wl-why")).to_have_text(
        "You proposed this entry: another approver must decide."
    )
    theirs = _entry(commander, "Zhang San")
    theirs.locator(".wl-approve").click()
    expect(commander.locator("#wl-action-result")).to_contain_text("is approved")
    commander.locator("#wl-tabs button[data-status='active']").click()
    # the tab re-renders the old list at once and the active one when it has loaded: wait
    # for the second before clicking in it
    expect(commander.locator("#wl-list .wl-entry:not([data-status='active'])")).to_have_count(0)
    approved = _entry(commander, "Zhang San")
    expect(approved).to_have_attribute("data-status", "active")
    approved.locator(".wl-view").click()
    image = commander.locator("#wl-photo-img")
    expect(image).to_be_visible()
    commander.wait_for_function(
        "() => document.querySelector('#wl-photo-img').naturalWidth > 0", timeout=10_000
    )

    commander.select_option(".lang-select", "zh-CN")
    expect(commander.locator("#wl-tabs button[data-status='active']")).to_have_text("生效中")
    expect(_entry(commander, "Zhang San").locator(".wl-status")).to_have_text("生效中")

    with hub.service.store.engine.connect() as conn:
        actions = [
            (r.actor, r.action)
            for r in conn.execute(
                select(audit_log.c.actor, audit_log.c.action)
                .where(audit_log.c.action.like("watchlist.%"))
                .order_by(audit_log.c.seq)
            )
        ]
    site = hub.site
    assert actions == [
        (f"{site}-commander", "watchlist.enrol"),
        (f"{site}-operator", "watchlist.enrol"),
        (f"{site}-commander", "watchlist.approve"),
        (f"{site}-commander", "watchlist.photo_view"),
    ]
    for page in (operator, commander):
        assert [e for e in page.errors if "422" not in e] == []  # type: ignore[attr-defined]
