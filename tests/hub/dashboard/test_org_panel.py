"""The Organisation panel in a real Chromium against a real hub: a commander creates a
department and a team, assigns a grid cell to them, imports cells (a bad file shows every
problem the hub found), and the API afterwards holds exactly what the page did."""

from __future__ import annotations

import json

from playwright.sync_api import Browser, FilePayload, Page, expect

from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import ARTIFACTS, detail_panel, open_dashboard
from tests.hub.org.helpers import put_cell, ring


def test_commander_builds_the_organisation_through_the_ui(
    pages: list[Page], browser: Browser, hub: RunningHub
) -> None:
    admin = hub.client(Role.ADMIN)
    put_cell(admin, hub, "c1")
    worker, officer, operator = (f"{hub.site}-{r}" for r in ("worker", "officer", "operator"))

    # an operator reads the organisation but has no button to change it
    op_page = open_dashboard(pages, browser, hub, Role.OPERATOR)
    expect(op_page.locator("#org-open")).to_be_hidden()

    page = open_dashboard(pages, browser, hub, Role.COMMANDER)
    page.click("#org-open")
    panel = detail_panel(page, "Organisation")
    expect(panel).to_be_visible()

    # a department: a bad supervisor first, the hub's reason is shown, then a good one
    page.fill("#org-dep-name", "Sanitation office")
    page.select_option("#org-dep-line", "sanitation")
    page.fill("#org-dep-supervisor", "nobody")
    page.click("#org-dep-form button[type=submit]")
    expect(page.locator("#org-dep-status")).to_contain_text("supervisor: no user 'nobody'")
    page.fill("#org-dep-supervisor", operator)
    page.click("#org-dep-form button[type=submit]")
    expect(page.locator("#org-dep-list")).to_contain_text("Sanitation office")
    expect(page.locator("#org-dep-status")).to_have_text("Saved")

    # a team with two members, the worker leading
    page.fill("#org-team-name", "North team")
    page.fill("#org-team-members", f"{worker}, {officer}")
    page.fill("#org-team-leader", worker)
    page.click("#org-team-form button[type=submit]")
    expect(page.locator("#org-team-list")).to_contain_text("North team")
    expect(page.locator("#org-team-list")).to_contain_text("2 members")

    # the cell: its team and its sanitation department
    page.select_option("#org-cell", "c1")
    page.select_option("#org-cell-team", label="North team")
    page.select_option("#org-cell-dep-sanitation", label="Sanitation office")
    page.click("#org-cell-form button[type=submit]")
    expect(page.locator("#org-cell-status")).to_have_text("Saved")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-org-panel.png"))  # for people to look at

    deps = admin.get("/api/v1/departments").json()["items"]
    assert [(d["name"], d["line"], d["supervisor"]) for d in deps] == [
        ("Sanitation office", "sanitation", operator)
    ]
    teams = admin.get("/api/v1/teams", params={"site": hub.site}).json()["items"]
    assert [(t["name"], t["members"], t["leader"]) for t in teams] == [
        ("North team", sorted([worker, officer]), worker)
    ]
    cell = admin.get("/api/v1/grid-cells/c1").json()["properties"]
    assert cell["responsible_team"] == {
        "id": teams[0]["id"],
        "name": "North team",
        "leader": worker,
    }
    assert cell["departments"] == {"sanitation": {"id": deps[0]["id"], "name": "Sanitation office"}}

    # the cell's own panel shows them (opened from the search, as a user would)
    page.fill("#search-input", "C1")
    page.locator("#search-results [role=option]").first.click()
    cell_panel = detail_panel(page, "Grid cell")
    expect(cell_panel).to_contain_text(f"North team (leader {worker})")
    expect(cell_panel).to_contain_text("Sanitation")
    page.click("#cell-org")
    expect(detail_panel(page, "Organisation")).to_be_visible()

    # an import with problems: nothing stored, every problem listed
    bad = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "c-12",
                "geometry": {"type": "Polygon", "coordinates": [ring(114.05, 22.54)]},
                "properties": {},
            },
            {
                "type": "Feature",
                "id": "c-13",
                "geometry": {"type": "Polygon", "coordinates": [ring(114.06, 22.54)[:-1]]},
                "properties": {"name": "C13"},
            },
        ],
    }
    page.set_input_files(
        "#org-cell-file",
        files=[
            FilePayload(
                name="cells.geojson",
                mimeType="application/geo+json",
                buffer=json.dumps(bad).encode(),
            )
        ],
    )
    status = page.locator("#org-import-status")
    expect(status).to_contain_text("Not imported")
    expect(status.locator("li")).to_have_count(2)
    expect(status.locator("li").first).to_have_text(
        "feature 0 (id 'c-12'): properties.name: missing"
    )
    assert admin.get("/api/v1/grid-cells/c-12").status_code == 404

    feature = {
        "type": "Feature",
        "id": "c-12",
        "geometry": {"type": "Polygon", "coordinates": [ring(114.05, 22.54)]},
        "properties": {"name": "C12", "team": teams[0]["id"]},
    }
    good = {"type": "FeatureCollection", "features": [feature]}
    page.set_input_files(
        "#org-cell-file",
        files=[
            FilePayload(
                name="cells.geojson",
                mimeType="application/geo+json",
                buffer=json.dumps(good).encode(),
            )
        ],
    )
    expect(status).to_have_text("1 imported: 1 new, 0 updated, 0 deleted")
    imported = admin.get("/api/v1/grid-cells/c-12").json()["properties"]
    assert imported["responsible_team"]["name"] == "North team"
    assert page.errors == [e for e in page.errors if "422" in e]  # type: ignore[attr-defined]
