"""The command dashboard in a real Chromium: login, live positions over MQTT, the alert feed and
acknowledgement, layer toggles, role-dependent controls, and a screenshot for people to judge."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from edge.protocol import AlertKind, EntityKind, Evidence, Location, Severity
from hub.auth import ROLE_PERMISSIONS, Permission, Role
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import (
    ARTIFACTS,
    District,
    evidence_jpeg,
    js,
    map_view,
    offset,
    open_dashboard,
    position,
    wait_outbox_empty,
)
from tests.support.waiting import wait_until

OFFICER_BLUE = (0x56, 0xB4, 0xE9)


def _is_officer_blue(rgba: tuple[int, int, int, int]) -> bool:
    """The officer fill, within canvas premultiplied-alpha rounding."""
    return rgba[3] == 255 and all(abs(a - b) <= 3 for a, b in zip(rgba, OFFICER_BLUE, strict=False))


def _pixel(page: Page, x: float, y: float) -> tuple[int, int, int, int]:
    rgba = js(
        page,
        """([x, y]) => {
            const c = document.querySelector('.gw-positions-canvas');
            const r = window.devicePixelRatio || 1;
            const d = c.getContext('2d').getImageData(Math.round(x * r), Math.round(y * r), 1, 1);
            return Array.from(d.data);
        }""",
        [x, y],
    )
    return rgba[0], rgba[1], rgba[2], rgba[3]


# True once the positions canvas shows an officer's fill (or, with want=False, nothing) at a
# map point: what a user sees, polled in the page until the frame that draws it.
PIXEL_IS = """([x, y, want]) => {
    const c = document.querySelector('.gw-positions-canvas');
    const r = window.devicePixelRatio || 1;
    const [red, green, blue, alpha] = c.getContext('2d')
        .getImageData(Math.round(x * r), Math.round(y * r), 1, 1).data;
    const officer = alpha === 255 && Math.abs(red - 0x56) <= 3 && Math.abs(green - 0xB4) <= 3
        && Math.abs(blue - 0xE9) <= 3;
    return want === 'officer' ? officer : alpha === 0;
}"""


def _wait_pixel(page: Page, point: tuple[float, float], want: str, timeout: float = 10_000) -> None:
    page.wait_for_function(PIXEL_IS, arg=[point[0], point[1], want], timeout=timeout)


def test_login_is_required_and_wrong_password_is_refused(
    pages: list[Page], browser: Browser, hub: RunningHub
) -> None:
    page = browser.new_context().new_page()
    pages.append(page)
    page.goto(hub.base_url + "/")
    page.locator("#login-form").wait_for(state="visible")
    assert page.locator("#app-view").is_hidden()
    page.fill("#login-user", f"{hub.site}-operator")
    page.fill("#login-pass", "not-the-password")
    page.click("#login-submit")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    assert "password" in page.locator("#login-error").inner_text().lower()
    assert page.locator("#app-view").is_hidden()


def test_mqtt_position_moves_marker_within_one_second(
    pages: list[Page], browser: Browser, hub: RunningHub, district: District
) -> None:
    page = open_dashboard(pages, browser, hub, Role.COMMANDER)
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
    body = district.device(f"{hub.site}-bodycam", "glasses", None)
    first = position("officer-7", EntityKind.OFFICER, 0, 0)
    moved = position("officer-7", EntityKind.OFFICER, 60, 40, dt_s=0.5)
    view = map_view(page)
    before, after = view.point(first.lon, first.lat), view.point(moved.lon, moved.lat)
    assert after[0] > before[0] + 10 and after[1] < before[1] - 10  # east and north on screen
    _wait_pixel(page, after, "nothing")
    body.send_positions([first])
    _wait_pixel(page, before, "officer")

    # The requirement: the marker moves within 1 s of the device publishing. One move
    # can lose a second to the scheduler of a loaded 2-core CI worker (the hub, the broker and
    # Chromium share it with another test file), so the best of up to three moves must make
    # it; a dashboard that is slow every time still fails. Each move goes to a point off the
    # trail drawn so far.
    moves = [moved, position("officer-7", EntityKind.OFFICER, 60, -40, dt_s=1.0),
             position("officer-7", EntityKind.OFFICER, -60, -40, dt_s=1.5)]
    took_s: list[float] = []
    for move in moves:
        before, after = after if took_s else before, view.point(move.lon, move.lat)
        _wait_pixel(page, after, "nothing")
        sent = time.monotonic()
        body.send_positions([move])
        _wait_pixel(page, after, "officer")
        took_s.append(time.monotonic() - sent)
        assert _is_officer_blue(_pixel(page, after[0], after[1]))
        assert not _is_officer_blue(_pixel(page, before[0], before[1]))  # only its trail is left
        if took_s[-1] < 1.0:
            break
    assert min(took_s) < 1.0, took_s
    assert page.errors == []  # type: ignore[attr-defined]


def test_alert_appears_in_feed_and_ack_is_recorded_by_hub(
    pages: list[Page], browser: Browser, hub: RunningHub, district: District
) -> None:
    page = open_dashboard(pages, browser, hub, Role.OPERATOR)
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
    gate = district.device(f"{hub.site}-gate", "wristband", offset(-40, 30))
    lon, lat = offset(-35, 25)
    alert_id = gate.alert(
        kind=AlertKind.SOS,
        severity=Severity.CRITICAL,
        title="SOS pressed by resident 12",
        location=Location(lon=lon, lat=lat),
        entity="band-12",
        evidence=Evidence.from_jpeg(evidence_jpeg(), width=240, height=180),
    ).id
    wait_outbox_empty(gate)
    item = page.locator("#feed-list .alert-item", has_text="SOS pressed by resident 12")
    item.wait_for(timeout=15_000)
    assert "SOS pressed by resident 12" in item.inner_text()
    assert item.locator(".sev").inner_text().strip().lower() == "critical"  # colour + label
    expect(page.locator(".al.al-critical.pulse")).to_have_count(1)

    item.locator(".alert-open").click()
    page.locator("#detail .evidence img").wait_for()
    page.wait_for_function(
        "() => document.querySelector('#detail .evidence img').naturalWidth === 240"
    )
    # Keyboard: the ack button in the feed is reachable and works with Enter.
    ack = item.locator("button.ack")
    ack.focus()
    page.keyboard.press("Enter")
    # Open-only feed hides it once the hub has answered.
    expect(item).to_have_count(0, timeout=15_000)
    stored = hub.client(Role.ADMIN).get(f"/api/v1/alerts/{alert_id}").json()
    assert stored["status"] == "acknowledged"
    assert stored["acknowledged_by"] == f"{hub.site}-operator"
    audit = hub.client(Role.ADMIN).get("/api/v1/audit", params={"action": "alert.ack"}).json()
    assert [r["target"] for r in audit["items"]] == [alert_id]
    # The marker stops pulsing; with "open only" off the feed shows who acknowledged it.
    expect(page.locator(".al.al-critical.pulse")).to_have_count(0)
    expect(page.locator(".al.al-critical.acked")).to_have_count(1)
    page.click("#feed-open-only")
    expect(item).to_have_class(re.compile(r"\bis-acked\b"))
    expect(item.locator(".acked-by")).to_have_text(f"Acknowledged by {hub.site}-operator")
    assert page.errors == []  # type: ignore[attr-defined]


def test_layer_toggles_hide_and_show_each_layer(
    pages: list[Page], browser: Browser, hub: RunningHub, district: District
) -> None:
    district.cells()
    district.pois()
    district.device(f"{hub.site}-cam", "camera", offset(50, -50))
    glasses = district.device(f"{hub.site}-glasses-3", "glasses", None)
    officer = position("officer-3", EntityKind.OFFICER, 10, 10)
    glasses.send_positions([officer])  # an officer's positions come from her glasses
    wait_for_latest = hub.client(Role.ADMIN)
    wait_until(
        lambda: wait_for_latest.get("/api/v1/positions/latest").json()["items"],
        message="the officer's position stored",
    )
    page = open_dashboard(pages, browser, hub, Role.COMMANDER)
    point = map_view(page).point(officer.lon, officer.lat)
    _wait_pixel(page, point, "officer")
    cells = page.locator(".leaflet-tooltip.cell-label")
    expect(cells).to_have_count(4)
    expect(page.locator(".leaflet-tooltip.cell-red")).to_have_text("A1 · Red")
    expect(page.locator(".poi")).to_have_count(4)
    expect(page.locator(".dev")).to_have_count(2)  # the camera and the officer's glasses

    def toggle(layer: str) -> None:
        page.click(f"#layer-{layer}")

    toggle("cells")
    expect(cells).to_have_count(0)
    toggle("cells")
    expect(cells).to_have_count(4)
    toggle("pois")
    expect(page.locator(".poi")).to_have_count(0)
    toggle("devices")
    expect(page.locator(".dev")).to_have_count(0)
    toggle("devices")
    expect(page.locator(".dev")).to_have_count(2)
    assert _is_officer_blue(_pixel(page, *point))
    toggle("officers")
    _wait_pixel(page, point, "nothing")
    # Keyboard: Space on a focused toggle works like a click.
    page.focus("#layer-officers")
    page.keyboard.press("Space")
    expect(page.locator("#layer-officers")).to_be_checked()
    _wait_pixel(page, point, "officer")
    assert page.errors == []  # type: ignore[attr-defined]


# Every control the dashboard may show, and the permission the API needs for it.
CONTROLS: dict[str, Permission] = {
    "#layer-cells": Permission.CELLS_READ,
    "#layer-devices": Permission.DEVICES_READ,
    "#layer-officers": Permission.POSITIONS_READ,
    "#layer-alerts": Permission.ALERTS_READ,
    "#layer-pois": Permission.ZONES_READ,
    "#poi-import:not([hidden])": Permission.ZONES_WRITE,
    "#feed-list button.ack": Permission.ALERTS_ACK,
    "#incidents-open:not([hidden])": Permission.INCIDENTS_READ,
    "#wall-open:not([hidden])": Permission.INCIDENT_STATS_READ,
}


@pytest.mark.parametrize("role", [Role.OFFICER, Role.AUDITOR, Role.INSTALLER, Role.COMMANDER])
def test_controls_match_what_the_api_allows(
    pages: list[Page], browser: Browser, hub: RunningHub, district: District, role: Role
) -> None:
    gate = district.device(f"{hub.site}-gw", "wristband", offset(0, 0))
    gate.alert(kind=AlertKind.BATTERY_LOW, severity=Severity.LOW, title="Band 3 battery low")
    wait_outbox_empty(gate)
    page = open_dashboard(pages, browser, hub, role)
    allowed = ROLE_PERMISSIONS[role]
    for selector, permission in CONTROLS.items():
        shown = page.locator(selector).count() > 0
        assert shown == (permission in allowed), (role, selector, permission)
    # And the API agrees with what is hidden: every hidden read is refused.
    client = hub.client(role)
    assert (client.get("/api/v1/devices").status_code == 200) == (
        Permission.DEVICES_READ in allowed
    )
    assert (client.get("/api/v1/positions/latest").status_code == 200) == (
        Permission.POSITIONS_READ in allowed
    )
    assert page.errors == []  # type: ignore[attr-defined]


def test_full_dashboard_screenshot(
    pages: list[Page], browser: Browser, hub: RunningHub, district: District
) -> None:
    """A busy district for people to look at: test-artifacts/dashboard.png (and -zh-CN)."""
    district.cells()
    district.pois()
    cam = district.device(f"{hub.site}-cam-north", "camera", offset(-120, 160))
    lidar = district.device(f"{hub.site}-lidar-yard", "lidar", offset(180, -140))
    band = district.device(f"{hub.site}-band-gw", "wristband", offset(-200, -120))
    glasses = district.device(f"{hub.site}-glasses", "glasses", None)
    page = open_dashboard(pages, browser, hub, Role.COMMANDER)
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
    for step in range(8):
        band.send_positions(
            [
                position(
                    f"wearer-{i}", EntityKind.WEARER, -250 + i * 25 + step * 6, -150 + step * 8
                )
                for i in range(6)
            ]
        )
        cam.send_positions(
            [
                position(  # a camera's tracks carry its id (hub/ownership.py)
                    f"{cam.device}-{i}", EntityKind.TRACK, -240 + i * 20 + step * 9, 200 - step * 7
                )
                for i in range(10)
            ]
        )
        glasses.send_positions(
            [
                position("officer-1", EntityKind.OFFICER, -200 + step * 30, 40),
                position("officer-2", EntityKind.OFFICER, 150, -200 + step * 25),
            ]
        )
        time.sleep(0.05)
    alerts = [
        (band, AlertKind.GEOFENCE_EXIT, Severity.HIGH, "Resident 4 left the care home", (-90, -80)),
        (cam, AlertKind.INTRUSION, Severity.CRITICAL, "Person in the rail yard", (-100, 150)),
        (lidar, AlertKind.PERIMETER_BREACH, Severity.MEDIUM, "Fence line crossed", (170, -120)),
        (band, AlertKind.BATTERY_LOW, Severity.LOW, "Band 9 battery low", (-210, -110)),
    ]
    for agent, kind, sev, title, (e, n) in alerts:
        lon, lat = offset(e, n)
        agent.alert(
            kind=kind,
            severity=sev,
            title=title,
            location=Location(lon=lon, lat=lat),
            evidence=Evidence.from_jpeg(evidence_jpeg()) if agent is cam else None,
        )
    for agent in (band, cam, lidar):
        wait_outbox_empty(agent)
    expect(page.locator("#feed-list .alert-item")).to_have_count(4, timeout=15_000)
    # The last batch sent: officer-1's final fix is drawn.
    last = position("officer-1", EntityKind.OFFICER, -200 + 7 * 30, 40)
    _wait_pixel(page, map_view(page).point(last.lon, last.lat), "officer", timeout=15_000)
    page.locator("#feed-list .alert-item.sevrow-critical .alert-open").click()
    page.locator("#detail .evidence img").wait_for()
    page.wait_for_function("() => document.querySelector('#detail .evidence img').naturalWidth > 0")
    page.evaluate("document.activeElement.blur()")
    page.wait_for_timeout(300)  # let the pulse animation and tiles settle for the picture
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 50_000
    page.select_option("#app-view .lang-select", "zh-CN")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    # The lang attribute may flip before every label is re-rendered: wait for each label.
    expect(page.locator("#feed-title")).to_have_text(re.compile(r"^实时告警"))
    expect(page.locator(".leaflet-tooltip.cell-red")).to_have_text("A1 · 红色")
    page.screenshot(path=str(ARTIFACTS / "dashboard-zh-CN.png"))
    page.select_option("#app-view .lang-select", "en")
    assert page.errors == []  # type: ignore[attr-defined]
