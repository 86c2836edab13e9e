"""One shared truth (issue 13 item 2), in two real browsers: what one operator does, the other
sees without a reload, through the live stream (across replicas: tests/hub/test_live_relay.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from edge.protocol import AlertKind, Severity
from hub.auth import Role, create_user
from tests.hub.conftest import PASSWORD, RunningHub
from tests.hub.dashboard.conftest import (
    District,
    clients_closed,
    open_dashboard,
    wait_live,
    wait_outbox_empty,
)
from tests.support.broker import BrokerHarness


@pytest.fixture(autouse=True)
def _close_clients(module_hub: RunningHub) -> Iterator[None]:
    with clients_closed(module_hub):
        yield


def test_an_ack_and_an_assignment_by_one_operator_appear_for_the_other(
    pages: list[Page],
    browser: Browser,
    module_hub: RunningHub,
    broker: BrokerHarness,
    tmp_path: Path,
) -> None:
    hub = module_hub
    second = f"{hub.site}-operator2"
    with hub.service.store.engine.begin() as conn:
        create_user(conn, second, PASSWORD, Role.OPERATOR, display_name="Second Operator")
    district = District(hub, broker, tmp_path)
    try:
        band = district.device(f"{hub.site}-band-shared", "wristband", None)
        alert = band.alert(AlertKind.SOS, Severity.CRITICAL, title="SOS shared")
        wait_outbox_empty(band)
        first_page = open_dashboard(pages, browser, hub, Role.OPERATOR)
        other = open_dashboard(pages, browser, hub, Role.OPERATOR, username=second)
        # The other operator has the alert open while the first acknowledges it in the feed.
        other_item = other.locator("#feed-list .alert-item", has_text="SOS shared")
        other_item.locator(".alert-open").click()
        expect(other.locator("#detail .ack-form")).to_have_count(1)
        other.evaluate(
            """() => import('/ui/js/live.js').then((live) => {
                window.seenIncidents = [];
                window.sameDocument = true; // gone if the page reloads
                live.onLiveEvent('incidents', (ev) => window.seenIncidents.push(ev));
            })"""
        )
        wait_live(other)  # what the first operator does next reaches the other page live
        first_page.locator("#feed-list .alert-item", has_text="SOS shared").locator(
            "button.ack"
        ).click()
        # No reload: the open detail says who acknowledged it, the form is gone, the feed
        # (open items only) drops it, and the header says what happened.
        who = f"{hub.site}-operator"
        expect(other.locator("#detail .kv")).to_contain_text(f"Acknowledged by {who}")
        expect(other.locator("#detail .ack-form")).to_have_count(0)
        expect(other_item).to_have_count(0)
        expect(other.locator("#live-activity")).to_have_text(f"{who} acknowledged an alert")
        stored = hub.client(Role.ADMIN).get(f"/api/v1/alerts/{alert.id}").json()
        assert stored["acknowledged_by"] == who

        # The first operator opens and assigns an incident from her page (her session).
        officer = f"{hub.site}-{Role.OFFICER.value}"
        number = first_page.evaluate(
            """async ([site, officer]) => {
                const { api } = await import('/ui/js/api.js');
                const made = await api('/api/v1/incidents', {method: 'POST', body: {
                    site, category: 'garbage', level: 'high', title: 'Bins on fire'}});
                await api(`/api/v1/incidents/${made.id}/assign`, {method: 'POST',
                    body: {assignee: officer, version: made.version}});
                return made.number;
            }""",
            [hub.site, officer],
        )
        expect(other.locator("#live-activity")).to_have_text(
            f"Incident {number} assigned to {officer}"
        )
        seen = other.evaluate("window.seenIncidents")
        assigned = [e for e in seen if e["change"] == "incident.assign"]
        assert [(e["number"], e["assignee"], e["state"]) for e in assigned] == [
            (number, officer, "assigned")
        ]
        # The other operator's page did not reload to get there.
        assert other.evaluate("window.sameDocument === true")
        assert first_page.errors == []  # type: ignore[attr-defined]
        assert other.errors == []  # type: ignore[attr-defined]
    finally:
        district.stop()
