"""The grid cell popup explains its colour (hub/dashboard/js/warnings.js) in a real Chromium:
the rule and the incidents behind it, the history, the override form and ending an override."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from playwright.sync_api import Browser, Page, expect

from hub.auth import Role
from hub.incidents.model import IncidentLevel, IncidentSource
from hub.incidents.service import NewIncident
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import detail_panel, offset, open_dashboard


@contextmanager
def _client(hub: RunningHub) -> Iterator[httpx.Client]:
    """A commander's client closed at once: the module's hub outlives the test's leak check."""
    client = hub.client(Role.COMMANDER)
    try:
        yield client
    finally:
        client.close()
        hub.clients.remove(client)


def _cell(hub: RunningHub, cid: str, name: str, east_m: float) -> None:
    w, s = offset(east_m, -400)
    e, n = offset(east_m + 200, -300)
    with _client(hub) as client:
        client.put(
        f"/api/v1/grid-cells/{cid}",
            json={
                "type": "Feature",
                "id": cid,
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
                },
                "properties": {"site": hub.site, "name": name, "team": "Team W"},
            },
        ).raise_for_status()


def _pick(page: Page, name: str) -> None:
    page.fill("#search-input", name)
    option = page.locator("#search-results [role=option]", has_text=name)
    option.first.wait_for()
    option.first.click()


def test_the_popup_shows_the_rule_the_incidents_and_the_history(
    pages: list[Page], browser: Browser, module_hub: RunningHub
) -> None:
    hub = module_hub
    cid = f"{hub.site}-w1"
    _cell(hub, cid, "W1", -600)
    ctx = hub.service.ctx
    incident = ctx.incidents.open(
        "operator",
        NewIncident(
            site=hub.site,
            source=IncidentSource.MANUAL,
            category="fire_hazard",
            level=IncidentLevel.CRITICAL,
            title="Blocked fire exit",
            cell_id=cid,
        ),
    )
    ctx.warnings.recompute([cid])
    page = open_dashboard(pages, browser, hub, Role.OPERATOR)
    _pick(page, "W1")
    detail = detail_panel(page, "Grid cell")
    explain = detail.locator(".warning-explain")
    expect(explain).to_contain_text("critical-open")
    expect(explain).to_contain_text("Incidents behind it")
    expect(explain.locator(".warning-incident")).to_have_count(1)
    expect(explain.locator(".warning-incident")).to_contain_text(incident.number)
    expect(explain.locator(".warning-incident")).to_contain_text("Critical")
    expect(detail.locator(".warn-form")).to_have_count(0)  # operators hold no cells:warn
    detail.locator(".warning-history-open").click()
    expect(detail.locator(".warning-history li")).to_have_count(1)
    expect(detail.locator(".warning-history li")).to_contain_text("Red")
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_commander_overrides_and_ends_the_override_from_the_popup(
    pages: list[Page], browser: Browser, module_hub: RunningHub
) -> None:
    hub = module_hub
    cid = f"{hub.site}-w2"
    _cell(hub, cid, "W2", -300)
    page = open_dashboard(pages, browser, hub, Role.COMMANDER)
    _pick(page, "W2")
    detail = detail_panel(page, "Grid cell")
    expect(detail.locator(".warning-explain .warn-form")).to_have_count(1)
    page.select_option("#warn-level", "orange")
    page.fill("#warn-reason", "Road works on the main street")
    page.select_option("#warn-lasts", "4")
    page.click("#detail .warn-form button[type=submit]")
    expect(detail.locator(".detail-title .warn-orange")).to_have_text("Orange")
    expect(detail.locator(".warning-explain")).to_contain_text("Set by hand")
    with _client(hub) as client:
        explained = client.get(f"/api/v1/grid-cells/{cid}/warning").json()
    assert explained["override"]["reason"] == "Road works on the main street"
    detail.locator(".warning-end").click()
    expect(detail.locator(".detail-title .warn-orange")).to_have_count(0)
    expect(detail.locator(".warning-end")).to_have_count(0)
    with _client(hub) as client:
        assert client.get(f"/api/v1/grid-cells/{cid}/warning").json()["source"] == "none"
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_cell_recoloured_by_the_rules_changes_on_the_open_map(
    pages: list[Page], browser: Browser, module_hub: RunningHub
) -> None:
    hub = module_hub
    cid = f"{hub.site}-w3"
    _cell(hub, cid, "W3", 0)
    page = open_dashboard(pages, browser, hub, Role.OPERATOR)
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
    label = page.locator(".leaflet-tooltip.cell-label", has_text="W3")
    expect(label).to_have_text("W3")
    _pick(page, "W3")
    detail = detail_panel(page, "Grid cell")
    ctx = hub.service.ctx
    ctx.incidents.open(
        "operator",
        NewIncident(
            site=hub.site,
            source=IncidentSource.MANUAL,
            category="garbage",
            level=IncidentLevel.HIGH,
            title="Dumped furniture",
            cell_id=cid,
        ),
    )
    ctx.warnings.recompute([cid])  # what the worker's next tick does
    expect(label).to_have_text("W3 · Orange")  # pushed over the live stream, no reload
    expect(detail.locator(".warning-explain")).to_contain_text("high-open")
    assert page.errors == []  # type: ignore[attr-defined]
