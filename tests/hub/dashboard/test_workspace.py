"""The incident workspace (hub/dashboard/js/incidents.js) in a real Chromium against a real hub:
an operator opens an incident, assigns it to an officer picked from the cell's team and the
officers, comments and moves it to closed through the page, and the hub holds exactly that; the
evidence snapshot enlarges; "show on map" pans to the alert; the cell's warning is explained; a
stale version is refused and said so; each role sees only what it may do and the hub refuses the
rest anyway; markup in a comment, a title or a cell name is shown as text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, FilePayload, Page, WebSocketRoute, expect

from edge.agent import AgentRuntime
from edge.protocol import AlertKind, Evidence, Location, Severity
from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import (
    District,
    evidence_jpeg,
    map_view,
    offset,
    open_dashboard,
    wait_outbox_empty,
)
from tests.hub.dashboard.test_injection import SCAN, payload
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

ALERT_AT = (-100.0, 150.0)  # east, north metres from the map's centre: inside cell ws1
EVIDENCE_W, EVIDENCE_H = 240, 180


@contextmanager
def _client(hub: RunningHub, role: Role = Role.COMMANDER) -> Iterator[httpx.Client]:
    """A client closed at once: the module's hub outlives each test's leak check."""
    client = hub.client(role)
    try:
        yield client
    finally:
        client.close()
        hub.clients.remove(client)


def _square(east_m: float, north_m: float, size_m: float) -> list[list[float]]:
    w, s = offset(east_m, north_m)
    e, n = offset(east_m + size_m, north_m + size_m)
    return [[w, s], [e, s], [e, n], [w, n], [w, s]]


def _put_cell(client: httpx.Client, hub: RunningHub, cid: str, name: str, east_m: float) -> None:
    client.put(
        f"/api/v1/grid-cells/{cid}",
        json={
            "type": "Feature",
            "id": cid,
            "geometry": {"type": "Polygon", "coordinates": [_square(east_m, 0, 300)]},
            "properties": {"site": hub.site, "name": name},
        },
    ).raise_for_status()


@dataclass(frozen=True)
class Scene:
    hub: RunningHub
    cell: str  # ws1: its team is the site's worker and officer
    team_cell: str  # ws2: the same team, for manual incidents
    evidence_incident: str  # opened by the intrusion alert with a snapshot, in ws1
    alert: str


@pytest.fixture(scope="module")
def scene(
    module_hub: RunningHub, broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    hub = module_hub
    district = District(hub, broker, tmp_path_factory.mktemp("district"))
    try:
        with _client(hub) as commander:
            cell, team_cell = f"{hub.site}-ws1", f"{hub.site}-ws2"
            _put_cell(commander, hub, cell, "WS1", -250)
            _put_cell(commander, hub, team_cell, "WS2", 100)
            commander.post(
                "/api/v1/teams",
                json={
                    "id": f"{hub.site}-north",
                    "site": hub.site,
                    "name": "North team",
                    "members": [f"{hub.site}-worker", f"{hub.site}-officer"],
                    "leader": f"{hub.site}-worker",
                },
            ).raise_for_status()
            for cid in (cell, team_cell):
                commander.put(
                    f"/api/v1/grid-cells/{cid}/responsibility",
                    json={"team_id": f"{hub.site}-north", "departments": {}},
                ).raise_for_status()
            cam: AgentRuntime = district.device(f"{hub.site}-cam-ws", "camera", offset(-200, 100))
            lon, lat = offset(*ALERT_AT)
            alert = cam.alert(
                kind=AlertKind.INTRUSION,
                severity=Severity.HIGH,
                title="Person at the depot gate",
                location=Location(lon=lon, lat=lat),
                evidence=Evidence.from_jpeg(evidence_jpeg(), width=EVIDENCE_W, height=EVIDENCE_H),
            ).id
            wait_outbox_empty(cam)

            def opened() -> list[dict[str, Any]]:
                res = commander.get("/api/v1/incidents", params={"cell": cell})
                return list(res.json()["items"])

            wait_until(lambda: len(opened()) == 1, 30, message="the alert rule to open one")
            evidence_incident = opened()[0]["id"]
            hub.service.ctx.warnings.recompute([cell])
        yield Scene(hub, cell, team_cell, evidence_incident, alert)
    finally:
        district.stop()


def _manual(hub: RunningHub, cell: str, title: str, level: str = "medium") -> dict[str, Any]:
    with _client(hub) as client:
        res = client.post(
            "/api/v1/incidents",
            json={
                "site": hub.site,
                "category": "garbage",
                "level": level,
                "title": title,
                "cell_id": cell,
            },
        )
        res.raise_for_status()
        return dict(res.json())


def _incident(hub: RunningHub, incident_id: str) -> dict[str, Any]:
    with _client(hub) as client:
        res = client.get(f"/api/v1/incidents/{incident_id}")
        res.raise_for_status()
        return dict(res.json())


def _open_in_workspace(page: Page, number: str) -> None:
    """Through the header button and the list, as an operator does."""
    page.click("#incidents-open")
    page.select_option("#inc-f-state", "")  # any state
    _open_from_list(page, number)


def _open_from_list(page: Page, number: str) -> None:
    item = page.locator("#inc-list .inc-open", has_text=number)
    item.wait_for()
    item.click()
    expect(page.locator("#incidents .inc-detail .inc-number")).to_have_text(number)


def test_an_operator_assigns_comments_and_closes_an_incident_through_the_page(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    inc = _manual(hub, scene.team_cell, "Overflowing bins by the school")
    officer = f"{hub.site}-officer"
    page = open_dashboard(pages, browser, hub, Role.OPERATOR)
    _open_in_workspace(page, inc["number"])
    drawer = page.get_by_role("region", name="Incidents", exact=True)
    expect(drawer.locator(".inc-state")).to_have_text("New")
    # new: the state machine allows assign and close; nothing else is offered
    expect(drawer.locator(".inc-action")).to_have_text(["Assign", "Close"])

    drawer.locator(".inc-action[data-action=assign]").click()
    team = drawer.locator('#inc-assignee optgroup[label="The cell\'s team"] option')
    expect(team).to_have_count(2)  # the worker and the officer of North team
    expect(drawer.locator("#inc-assignee optgroup[label=Officers] option")).to_contain_text(
        [officer]
    )
    page.select_option("#inc-assignee", officer)
    drawer.locator("#inc-assign-form button[type=submit]").click()
    expect(drawer.locator(".inc-state")).to_have_text("Assigned")
    expect(drawer.locator(".inc-action")).to_have_text(["Start work", "Resolve", "Assign", "Close"])

    drawer.locator("#inc-comment").fill("Caretaker says the truck missed Tuesday")
    drawer.locator("#inc-comment-form button[type=submit]").click()
    expect(drawer.locator(".inc-event-comment")).to_contain_text("missed Tuesday")
    expect(drawer.locator("#inc-comment")).to_have_value("")

    # a photo is attached; a file of a type the hub refuses is reported and adds nothing
    drawer.locator("#inc-attach-file").set_input_files(
        FilePayload(name="bins.jpg", mimeType="image/jpeg", buffer=evidence_jpeg())
    )
    expect(drawer.locator(".inc-attachments li")).to_have_count(1)
    expect(drawer.locator(".inc-attachments a")).to_have_text("bins.jpg")
    drawer.locator("#inc-attach-file").set_input_files(
        FilePayload(name="notes.html", mimeType="text/html", buffer=b"<script>x</script>")
    )
    expect(drawer.locator("#inc-error")).to_contain_text("Not saved")
    expect(drawer.locator(".inc-attachments li")).to_have_count(1)

    drawer.locator(".inc-action[data-action=start]").click()
    expect(drawer.locator(".inc-state")).to_have_text("In progress")
    drawer.locator(".inc-action[data-action=resolve]").click()
    submit = drawer.locator("#inc-move-form button[type=submit]")
    submit.click()  # the reason is required: the form is not sent empty
    expect(drawer.locator(".inc-state")).to_have_text("In progress")
    drawer.locator("#inc-move-text").fill("Bins emptied, schedule fixed")
    submit.click()
    expect(drawer.locator(".inc-state")).to_have_text("Resolved")
    drawer.locator(".inc-action[data-action=close]").click()
    drawer.locator("#inc-move-form button[type=submit]").click()
    expect(drawer.locator(".inc-state")).to_have_text("Closed")
    expect(drawer.locator(".inc-action")).to_have_text(["Reopen"])

    held = _incident(hub, inc["id"])
    assert held["state"] == "closed"
    assert held["assignee"] == officer
    assert [(a["filename"], a["content_type"]) for a in held["attachments"]] == [
        ("bins.jpg", "image/jpeg")
    ]
    kinds = [(e["kind"], e["actor"], e["to_state"]) for e in held["timeline"]]
    operator = f"{hub.site}-operator"
    assert ("assigned", operator, "assigned") in kinds
    assert ("comment", operator, None) in kinds
    assert [k[2] for k in kinds if k[0] == "state"] == ["in_progress", "resolved", "closed"]
    resolved = next(e for e in held["timeline"] if e["to_state"] == "resolved")
    assert resolved["text"] == "Bins emptied, schedule fixed"
    # Chromium logs the refused upload's 415 itself; nothing else may have gone wrong
    page.errors[:] = [e for e in page.errors if "status of 415" not in e]  # type: ignore[attr-defined]
    assert page.errors == []  # type: ignore[attr-defined]


def test_evidence_enlarges_show_on_map_pans_and_the_cell_warning_is_explained(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    inc = _incident(hub, scene.evidence_incident)
    page = open_dashboard(pages, browser, hub, Role.OPERATOR)
    _open_in_workspace(page, inc["number"])
    drawer = page.get_by_role("region", name="Incidents", exact=True)
    alert = drawer.locator(f".inc-alert[data-id='{scene.alert}']")
    expect(alert).to_contain_text("Person at the depot gate")

    thumb = alert.locator(".inc-thumb img")
    page.wait_for_function("() => document.querySelector('.inc-thumb img')?.naturalWidth === 240")
    small = thumb.bounding_box()
    assert small is not None
    alert.locator(".inc-thumb").click()
    dialog = page.locator("#inc-evidence")
    expect(dialog).to_be_visible()
    page.wait_for_function("() => document.querySelector('#inc-evidence img').naturalWidth === 240")
    large = dialog.locator("img").bounding_box()
    assert large is not None
    assert large["width"] > 4 * small["width"]  # shown far bigger than the thumbnail
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # look elsewhere first (the address holds the view), so the pan and the zoom are real
    far_lon, far_lat = offset(3000, -3000)
    page.evaluate("(h) => { location.hash = h; }", f"#map=14/{far_lat:.6f}/{far_lon:.6f}")
    page.wait_for_function("() => location.hash.startsWith('#map=14/')")
    before = map_view(page)
    alert.locator(".inc-show-alert").click()
    expect(page.locator(".inc-highlight")).to_have_count(1)
    lon, lat = offset(*ALERT_AT)
    view = map_view(page)
    assert view.zoom >= 17 > before.zoom  # zoomed in to street level
    assert abs(view.lon - lon) < 1e-5 and abs(view.lat - lat) < 1e-5  # centred on the alert
    # the ring is drawn where the alert is, in the part of the map the drawer leaves visible
    ring = page.locator(".inc-highlight").bounding_box()
    assert ring is not None
    x, y = view.page_point(lon, lat)
    assert (
        abs(ring["x"] + ring["width"] / 2 - x) < 3 and abs(ring["y"] + ring["height"] / 2 - y) < 3
    )
    drawer_box = drawer.bounding_box()
    assert drawer_box is not None and x > drawer_box["x"] + drawer_box["width"]

    # the intrusion (level high) in WS1 turns it orange by rule high-open: said in the detail
    warning = drawer.locator(".inc-warning")
    expect(warning).to_contain_text("high-open")
    expect(warning.locator(".warning-incident")).to_contain_text(inc["number"])
    expect(warning.locator(".warn-form")).to_have_count(0)  # the override is the cell's panel's
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_change_made_meanwhile_is_refused_shown_and_reloaded(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    inc = _manual(hub, scene.team_cell, "Broken street light")
    page = open_dashboard(pages, browser, hub, Role.OPERATOR)

    # This page hears nothing live (as when its hub replica lost the relay): it keeps the
    # version it read while another operator assigns the incident.
    def silent(ws: WebSocketRoute) -> None:
        pass

    page.route_web_socket("**/api/v1/live**", silent)
    page.reload()
    page.wait_for_selector("#app-view[aria-busy='false']", state="attached")
    _open_in_workspace(page, inc["number"])
    drawer = page.get_by_role("region", name="Incidents", exact=True)
    with _client(hub, Role.OPERATOR) as other:
        other.post(
            f"/api/v1/incidents/{inc['id']}/assign",
            json={"assignee": f"{hub.site}-officer", "version": inc["version"]},
        ).raise_for_status()
    drawer.locator(".inc-action[data-action=close]").click()
    drawer.locator("#inc-move-text").fill("duplicate of the other report")
    drawer.locator("#inc-move-form button[type=submit]").click()
    error = drawer.locator("#inc-error")
    expect(error).to_contain_text("somebody changed this incident meanwhile")
    expect(drawer.locator("#inc-move-text")).to_have_value("duplicate of the other report")
    assert _incident(hub, inc["id"])["state"] == "assigned"  # nothing was closed
    drawer.locator("#inc-reload").click()
    expect(drawer.locator(".inc-state")).to_have_text("Assigned")
    expect(drawer.locator("#inc-error")).to_have_text("")
    page.errors[:] = [e for e in page.errors if "status of 409" not in e]  # type: ignore[attr-defined]
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_incident_changed_elsewhere_updates_the_open_detail_live(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    inc = _manual(hub, scene.team_cell, "Graffiti on the underpass")
    page = open_dashboard(pages, browser, hub, Role.OPERATOR)
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
    _open_in_workspace(page, inc["number"])
    drawer = page.get_by_role("region", name="Incidents", exact=True)
    drawer.locator("#inc-comment").fill("half-typed note")
    with _client(hub, Role.COMMANDER) as other:
        other.post(
            f"/api/v1/incidents/{inc['id']}/assign",
            json={"assignee": f"{hub.site}-officer", "version": inc["version"]},
        ).raise_for_status()
    expect(drawer.locator(".inc-state")).to_have_text("Assigned")
    expect(drawer.locator("#inc-comment")).to_have_value("half-typed note")  # kept
    expect(drawer.locator("#inc-comment")).to_be_focused()  # and the focus with it
    assert page.errors == []  # type: ignore[attr-defined]


def test_each_role_sees_only_what_it_may_do_and_the_hub_refuses_the_rest(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    inc = _manual(hub, scene.team_cell, "Loose paving slab")
    path = f"/api/v1/incidents/{inc['id']}"

    # an auditor reads incidents and nothing more: no move, no comment, no upload
    page = open_dashboard(pages, browser, hub, Role.AUDITOR)
    _open_in_workspace(page, inc["number"])
    drawer = page.get_by_role("region", name="Incidents", exact=True)
    expect(drawer.locator(".inc-title")).to_have_text("Loose paving slab")
    expect(drawer.locator(".inc-action")).to_have_count(0)
    expect(drawer.locator("#inc-comment-form")).to_have_count(0)
    expect(drawer.locator("#inc-attach-file")).to_have_count(0)
    with _client(hub, Role.AUDITOR) as auditor:
        body = {"assignee": f"{hub.site}-officer", "version": inc["version"]}
        assert auditor.post(f"{path}/assign", json=body).status_code == 403
        assert auditor.post(f"{path}/comments", json={"text": "x"}).status_code == 403
        assert auditor.get(f"{path}/assignees").status_code == 403

    # an officer works what is assigned to them: comments, but no assign or close; start and
    # resolve only once it is theirs
    officer_page = open_dashboard(pages, browser, hub, Role.OFFICER)
    _open_in_workspace(officer_page, inc["number"])
    od = officer_page.get_by_role("region", name="Incidents", exact=True)
    expect(od.locator("#inc-comment-form")).to_have_count(1)
    expect(od.locator(".inc-action")).to_have_count(0)
    with _client(hub, Role.OFFICER) as officer:
        body = {"assignee": f"{hub.site}-officer", "version": inc["version"]}
        assert officer.post(f"{path}/assign", json=body).status_code == 403
        assert officer.post(f"{path}/close", json={"version": inc["version"]}).status_code == 403
        with _client(hub, Role.OPERATOR) as operator:
            operator.post(f"{path}/assign", json=body).raise_for_status()
        officer_page.locator("#inc-back").click()
        _open_from_list(officer_page, inc["number"])
        expect(od.locator(".inc-action")).to_have_text(["Start work", "Resolve"])
        od.locator(".inc-action[data-action=start]").click()
        expect(od.locator(".inc-state")).to_have_text("In progress")
        assert _incident(hub, inc["id"])["state"] == "in_progress"

    # a grid worker has no incident workspace at all, and the hub refuses the list
    worker_page = open_dashboard(pages, browser, hub, Role.WORKER)
    expect(worker_page.locator("#incidents-open")).to_be_hidden()
    with _client(hub, Role.WORKER) as worker:
        assert worker.get("/api/v1/incidents").status_code == 403
    for p in (page, officer_page, worker_page):
        assert p.errors == []  # type: ignore[attr-defined]


def test_markup_in_a_comment_a_title_and_a_cell_name_is_shown_as_text(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    cid = f"{hub.site}-ws-evil"
    with _client(hub) as commander:
        _put_cell(commander, hub, cid, payload("cell")[:200], 500)
    inc = _manual(hub, cid, payload("title")[:200])
    with _client(hub, Role.OPERATOR) as operator:
        operator.post(
            f"/api/v1/incidents/{inc['id']}/comments", json={"text": payload("comment")}
        ).raise_for_status()
    page = open_dashboard(pages, browser, hub, Role.OPERATOR)
    page.click("#incidents-open")
    page.select_option("#inc-f-cell", cid)
    item = page.locator("#inc-list .inc-open", has_text=inc["number"])
    expect(item).to_contain_text("<img src=x onerror=")  # title and cell name, as text
    expect(item).to_contain_text("cell <img")
    item.click()
    drawer = page.get_by_role("region", name="Incidents", exact=True)
    expect(drawer.locator(".inc-event-comment")).to_contain_text("comment <img src=x")
    expect(drawer.locator(".inc-title")).to_contain_text("<b>bold</b>")
    expect(drawer.locator("#inc-warning-title")).to_contain_text("cell <img")
    seen = page.evaluate(SCAN)
    assert seen == {"pwned": None, "injected": []}
    page.keyboard.press("Escape")  # leaves the workspace; the focus goes back to its button
    expect(page.locator("#incidents")).to_be_hidden()
    expect(page.locator("#incidents-open")).to_be_focused()
    assert page.errors == []  # type: ignore[attr-defined]


def test_assignees_are_the_cell_teams_active_members_and_the_active_officers(
    scene: Scene,
) -> None:
    hub = scene.hub
    inc = _manual(hub, scene.team_cell, "Noise complaint")
    with _client(hub, Role.OPERATOR) as operator:
        got = operator.get(f"/api/v1/incidents/{inc['id']}/assignees").json()
        assert [p["username"] for p in got["team"]] == sorted(
            [f"{hub.site}-officer", f"{hub.site}-worker"]
        )
        assert {p["role"] for p in got["team"]} == {"officer", "worker"}
        assert f"{hub.site}-officer" in [p["username"] for p in got["officers"]]
        assert {p["role"] for p in got["officers"]} == {"officer"}
        assert operator.get("/api/v1/incidents/0190-0000/assignees").status_code == 404
    with _client(hub, Role.ADMIN) as admin:
        admin.patch(f"/api/v1/users/{hub.site}-worker", json={"active": False}).raise_for_status()
        try:
            with _client(hub, Role.OPERATOR) as operator:
                got = operator.get(f"/api/v1/incidents/{inc['id']}/assignees").json()
            assert [p["username"] for p in got["team"]] == [f"{hub.site}-officer"]
        finally:
            admin.patch(f"/api/v1/users/{hub.site}-worker", json={"active": True})
    # an incident without a cell has no team to offer, the officers all the same
    with _client(hub, Role.OPERATOR) as operator:
        res = operator.post(
            "/api/v1/incidents",
            json={"site": hub.site, "category": "garbage", "level": "low", "title": "Nowhere"},
        )
        got = operator.get(f"/api/v1/incidents/{res.json()['id']}/assignees").json()
    assert got["team"] == []
    assert got["officers"]


def test_a_warning_override_with_a_reason_and_an_expiry_from_the_cell_panel(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    page = open_dashboard(pages, browser, hub, Role.COMMANDER)
    page.fill("#search-input", "WS2")
    option = page.locator("#search-results [role=option]", has_text="WS2")
    option.first.click()
    detail = page.get_by_role("region", name="Grid cell", exact=True)
    page.select_option("#warn-level", "red")
    page.fill("#warn-reason", "Gas leak reported, street closed")
    page.select_option("#warn-lasts", "72")
    asked = datetime.now(UTC)
    page.click("#detail .warn-form button[type=submit]")
    expect(detail.locator(".detail-title .warn-red")).to_have_text("Red")
    explain = detail.locator(".warning-explain")
    expect(explain).to_contain_text("Gas leak reported, street closed")  # the reason, shown
    expect(explain).to_contain_text(f"{hub.site}-commander")  # and who set it
    with _client(hub) as client:
        held = client.get(f"/api/v1/grid-cells/{scene.team_cell}/warning").json()
        try:
            assert held["override"]["reason"] == "Gas leak reported, street closed"
            expires = datetime.fromisoformat(held["override"]["expires_at"])
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
            assert abs(expires - (asked + timedelta(hours=72))) < timedelta(minutes=2)
        finally:
            client.delete(f"/api/v1/grid-cells/{scene.team_cell}/warning-override")
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_commander_edits_the_cells_team_and_lines_from_the_incident_in_chinese_too(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    cid = f"{hub.site}-ws3"
    with _client(hub) as commander:
        _put_cell(commander, hub, cid, "WS3", 800)
        commander.post(
            "/api/v1/departments",
            json={"id": f"{hub.site}-san", "name": "Sanitation office", "line": "sanitation"},
        ).raise_for_status()
    inc = _manual(hub, cid, "Blocked drain")
    page = open_dashboard(pages, browser, hub, Role.COMMANDER)
    _open_in_workspace(page, inc["number"])
    drawer = page.get_by_role("region", name="Incidents", exact=True)
    drawer.locator(".inc-edit-cell").click()
    org = page.get_by_role("region", name="Organisation", exact=True)
    expect(org.locator("#org-cell")).to_have_value(cid)
    expect(org.locator("#org-cell-team")).to_be_focused()
    page.select_option("#org-cell-team", label="North team")
    page.select_option("#org-cell-dep-sanitation", label="Sanitation office")
    page.click("#org-cell-form button[type=submit]")
    expect(page.locator("#org-cell-status")).to_have_text("Saved")
    with _client(hub) as commander:
        cell = commander.get(f"/api/v1/grid-cells/{cid}").json()["properties"]
    assert cell["responsible_team"]["id"] == f"{hub.site}-north"
    assert cell["departments"]["sanitation"]["id"] == f"{hub.site}-san"

    # the open incident follows the page's language
    page.select_option("#app-view .lang-select", "zh-CN")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    expect(page.locator("#incidents-heading")).to_have_text("事件")
    zh_drawer = page.get_by_role("region", name="事件", exact=True)
    expect(zh_drawer.locator(".inc-state")).to_have_text("新建")
    expect(zh_drawer.locator(".inc-action")).to_have_text(["分派", "办结"])
    page.select_option("#app-view .lang-select", "en")
    assert page.errors == []  # type: ignore[attr-defined]
