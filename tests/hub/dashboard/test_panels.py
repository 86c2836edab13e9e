"""The dashboard's panels in a real Chromium against one real hub per module: the fit to the
district and the detail panel at 1080p, search, the device health sparkline, track playback,
setting a cell warning, POI import, the zh-CN catalogue and keyboard use.

Every test makes its own data through the real API or real MQTT publishes (unique ids), so
they share the hub without depending on each other's order."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, FilePayload, Locator, Page, expect

from edge.agent import AgentRuntime
from edge.protocol import AlertKind, EntityKind, Evidence, Location, Position, Severity
from hub.auth import Role
from hub.incidents.model import EventKind
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import (
    District,
    clients_closed,
    detail_panel,
    evidence_jpeg,
    js,
    map_view,
    offset,
    open_dashboard,
    position,
    shows_colour,
    wait_loaded,
    wait_outbox_empty,
)
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

I18N = Path(__file__).resolve().parents[3] / "hub" / "dashboard" / "i18n"
OFFICER = "officer-9"
SPARK_W, SPARK_H = 320, 64  # panels.js sparkline() viewBox
PLAYBACK_BLUE = (0x00, 0x72, 0xB2)
WARNING_RED = (0xFF, 0x3B, 0x30)  # js/layers.js WARNING.red.color
EVIDENCE_TITLE = "Person in the rail yard"  # the scene's critical alert with evidence
KIOSK_TITLE = "Keyboard check at the kiosk"


def _feed_item(page: Page, title: str) -> Locator:
    """An alert in the feed, found by its title as a user finds it."""
    return page.locator("#feed-list .alert-item", has_text=title)


@dataclass
class Scene:
    hub: RunningHub
    district: District
    cam: AgentRuntime
    path: list[Position]  # officer-9's stored positions inside the playback window
    now: Position  # officer-9's latest fix (where its marker is)
    evidence_alert: str  # a critical alert with an evidence snapshot, left open


@pytest.fixture(scope="module")
def scene(
    module_hub: RunningHub, broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    hub = module_hub
    district = District(hub, broker, tmp_path_factory.mktemp("district"))
    try:
        district.cells()
        district.pois()
        cam = district.device(f"{hub.site}-cam-yard", "camera", offset(-120, 160))
        district.device(f"{hub.site}-lidar-fence", "lidar", offset(180, -140))
        # officer-9 walked a path 12 to 5 minutes ago; one fix long before and one now lie
        # outside the playback window the tests choose.
        path = [
            position(OFFICER, EntityKind.OFFICER, -220 + i * 45, -180 + i * 40, dt_s=-(12 - i) * 60)
            for i in range(8)
        ]
        before = position(OFFICER, EntityKind.OFFICER, 250, 200, dt_s=-40 * 60)
        now = position(OFFICER, EntityKind.OFFICER, 120, 110)
        # An officer's positions come from her glasses (hub/ownership.py).
        # Mounted away from her path: a device marker at her fix would take the clicks.
        glasses = district.device(f"{hub.site}-glasses-9", "glasses", offset(-260, 240))
        glasses.send_positions([before, *path, now])
        admin = hub.client(Role.ADMIN)
        wait_until(
            lambda: (
                len(
                    admin.get(
                        "/api/v1/positions/history", params={"entity": OFFICER, "limit": 100}
                    ).json()["items"]
                )
                == 10
            ),
            30,
            message="the hub to store officer-9's path",
        )
        lon, lat = offset(-100, 150)
        evidence_alert = cam.alert(
            kind=AlertKind.INTRUSION,
            severity=Severity.CRITICAL,
            title=EVIDENCE_TITLE,
            location=Location(lon=lon, lat=lat),
            evidence=Evidence.from_jpeg(evidence_jpeg(), width=240, height=180),
        ).id
        lon, lat = offset(170, -120)
        cam.alert(
            kind=AlertKind.LOITERING,
            severity=Severity.HIGH,
            title="Loitering by the substation",
            location=Location(lon=lon, lat=lat),
        )
        wait_outbox_empty(cam)
        yield Scene(hub, district, cam, path, now, evidence_alert)
    finally:
        district.stop()


@pytest.fixture(autouse=True)
def _close_clients(module_hub: RunningHub) -> Iterator[None]:
    """API clients a test opens on the shared hub are closed with the test (leak check)."""
    with clients_closed(module_hub):
        yield


def _open(
    pages: list[Page], browser: Browser, scene: Scene, width: int = 1920, height: int = 1080
) -> Page:
    page = open_dashboard(pages, browser, scene.hub, Role.COMMANDER, width=width, height=height)
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
    return page


def _rect(page: Page, selector: str) -> dict[str, float]:
    rect: dict[str, float] = js(
        page,
        """(sel) => {
            const r = document.querySelector(sel).getBoundingClientRect();
            return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
        }""",
        selector,
    )
    return rect


def _inside(inner: Mapping[str, float], outer: Mapping[str, float], slack: float = 1.0) -> bool:
    return (
        inner["left"] >= outer["left"] - slack
        and inner["top"] >= outer["top"] - slack
        and inner["right"] <= outer["right"] + slack
        and inner["bottom"] <= outer["bottom"] + slack
    )


def _assert_district_fits(page: Page, hub: RunningHub) -> None:
    """Every cell lies inside the visible part of the map and clear of the legend."""
    seen = js(
        page,
        """() => {
            const r = document.querySelector('#map').getBoundingClientRect();
            const visible = {left: Math.max(r.left, 0), top: Math.max(r.top, 0),
                             right: Math.min(r.right, innerWidth),
                             bottom: Math.min(r.bottom, innerHeight)};
            const lg = document.getElementById('legend').getBoundingClientRect();
            return {visible, legend: {left: lg.left, top: lg.top, right: lg.right,
                                      bottom: lg.bottom},
                    scroll: document.documentElement.scrollHeight - innerHeight};
        }""",
    )
    view = map_view(page)
    seen["cells"] = []
    cells = hub.client(Role.ADMIN).get("/api/v1/grid-cells", params={"site": hub.site}).json()
    for cell in cells["features"]:
        ring = cell["geometry"]["coordinates"][0]
        left, top = view.page_point(min(p[0] for p in ring), max(p[1] for p in ring))
        right, bottom = view.page_point(max(p[0] for p in ring), min(p[1] for p in ring))
        box = {"left": left, "top": top, "right": right, "bottom": bottom}
        seen["cells"].append({"id": cell["id"], "box": box})
    assert seen["scroll"] <= 0, "the page itself must not scroll"
    assert len(seen["cells"]) >= 4
    legend = seen["legend"]
    for cell in seen["cells"]:
        box = cell["box"]
        assert _inside(box, seen["visible"]), (cell["id"], box, seen["visible"])
        under_legend = (
            box["bottom"] > legend["top"] + 1
            and box["left"] < legend["right"]
            and box["right"] > legend["left"]
        )
        assert not under_legend, (cell["id"], box, legend)


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)], ids=["wall-1080p", "laptop"])
def test_district_fits_and_detail_keeps_actions_in_view(
    pages: list[Page], browser: Browser, scene: Scene, size: tuple[int, int]
) -> None:
    page = _open(pages, browser, scene, width=size[0], height=size[1])
    _assert_district_fits(page, scene.hub)
    item = _feed_item(page, EVIDENCE_TITLE)
    item.locator(".alert-open").click()
    page.wait_for_function(
        "() => document.querySelector('#detail .evidence img')?.naturalWidth === 240"
    )
    viewport = {"left": 0, "top": 0, "right": size[0], "bottom": size[1]}
    detail = _rect(page, "#detail")
    assert _inside(detail, viewport), detail
    # The acknowledge form sits below the scrolling body: whole, visible, usable.
    for control in ("#detail .ack-detail", "#detail #ack-note", "#detail .close"):
        assert _inside(_rect(page, control), detail), control
        expect(page.locator(control)).to_be_visible()
    assert js(
        page,
        """() => {
            const r = document.querySelector('#detail .ack-detail').getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return hit.closest('.ack-detail') !== null;
        }""",
    )
    # The evidence itself starts in view, and the alert feed keeps room below the detail.
    img = _rect(page, "#detail .evidence img")
    body = _rect(page, "#detail .detail-body")
    assert img["top"] >= body["top"] - 1 and img["top"] < body["bottom"]
    feed = _rect(page, "#feed")
    assert feed["top"] >= detail["bottom"] and feed["bottom"] <= size[1] + 1
    assert feed["bottom"] - feed["top"] >= 150
    assert js(page, "document.documentElement.scrollHeight") <= size[1]
    if size == (1920, 1080):
        page.evaluate("document.activeElement.blur()")
        page.screenshot(
            path=str(
                Path(__file__).resolve().parents[3]
                / "test-artifacts"
                / "dashboard-detail-1080p.png"
            )
        )
    assert page.errors == []  # type: ignore[attr-defined]


def _search_and_pick(page: Page, query: str, label: str) -> None:
    """Type into the search box like a user, then choose the result with ``label``."""
    page.fill("#search-input", query)
    option = page.locator("#search-results [role=option]", has_text=label)
    option.first.wait_for()
    option.first.click()


def _sparkline_values(page: Page) -> list[float]:
    """The values the sparkline draws, read back from its polyline and printed scale."""
    drawn = js(
        page,
        """() => {
            const poly = document.querySelector('#health-spark svg.spark polyline');
            const scale = [...document.querySelectorAll('#health-spark .spark-scale span')]
                .map((s) => parseFloat(s.textContent.replace(/[^0-9.+-]+/g, ' ').trim()));
            return {points: poly.getAttribute('points'),
                    lo: scale[0], last: scale[1], hi: scale[2]};
        }""",
    )
    lo, hi = drawn["lo"], drawn["hi"]
    span = (hi - lo) or 1.0
    values = []
    for pair in drawn["points"].split():
        y = float(pair.split(",")[1])
        values.append(lo + (SPARK_H - 4 - y) / (SPARK_H - 8) * span)
    assert values[-1] == pytest.approx(drawn["last"], abs=0.06)
    return values


def test_search_finds_device_by_name_and_id_and_shows_its_health(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    fps = itertools.cycle([12.0, 15.5, 9.0, 20.0, 14.0, 11.5, 18.0])
    latency = itertools.cycle([48.0, 51.0, 55.5, 53.0])
    device = f"{hub.site}-cam-gate"
    cam = scene.district.device(
        device,
        "camera",
        offset(240, 180),
        name="North gate camera",
        health_fields=lambda: {"fps": next(fps), "inference_ms": next(latency)},
        health_interval_s=0.1,
    )
    admin = hub.client(Role.ADMIN)

    def heartbeats() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = admin.get(
            f"/api/v1/devices/{device}/health", params={"limit": 120}
        ).json()["items"]
        return items

    try:
        wait_until(lambda: len(heartbeats()) >= 9, 30, message="nine heartbeats stored")
    finally:
        # Stopped, so the hub's record is final: what the panel draws must be exactly that.
        cam.stop()
        scene.district.agents.pop(device)
    stored = list(reversed(heartbeats()))
    page = _open(pages, browser, scene)
    page.fill("#search-input", "north gate")
    option = page.locator("#search-results [role=option]")
    expect(option).to_have_count(1)
    assert "North gate camera" in option.inner_text() and device in option.inner_text()
    page.keyboard.press("Enter")  # the first result
    expect(page.locator("#detail .detail-title")).to_contain_text("North gate camera")
    expect(page.locator("#detail .status-label")).to_have_text("Offline")
    page.locator("#health-spark svg.spark").wait_for()
    assert _sparkline_values(page) == pytest.approx([h["payload"]["fps"] for h in stored], abs=0.06)
    # Centred on the device, so the operator sees where it is.
    marker = _rect(page, ".leaflet-marker-icon[title='North gate camera']")
    area = _rect(page, "#map")
    centre = [
        (marker["left"] + marker["right"]) / 2 - (area["left"] + area["right"]) / 2,
        (marker["top"] + marker["bottom"]) / 2 - (area["top"] + area["bottom"]) / 2,
    ]
    assert abs(centre[0]) <= 2 and abs(centre[1]) <= 2, centre
    page.select_option("#health-metric", "inference_ms")
    assert _sparkline_values(page) == pytest.approx(
        [h["payload"]["inference_ms"] for h in stored], abs=0.06
    )
    page.click("#detail .close")
    expect(page.locator("#detail")).to_be_hidden()
    # By id: the name does not contain it, so this finds it through the id.
    _search_and_pick(page, device, "North gate camera")
    expect(page.locator("#detail .detail-title")).to_contain_text("North gate camera")
    expect(page.locator("#detail dd").first).to_have_text(device)
    assert page.errors == []  # type: ignore[attr-defined]


def _local_input(page: Page, iso: str) -> str:
    """The browser's datetime-local value for an instant (the user's local time)."""
    value: str = js(
        page,
        """(iso) => {
            const d = new Date(iso);
            const p = (n) => String(n).padStart(2, '0');
            const day = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
            return `${day}T${p(d.getHours())}:${p(d.getMinutes())}`;
        }""",
        iso,
    )
    return value


def test_track_playback_draws_the_stored_path_and_moves_a_marker_along_it(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    page = _open(pages, browser, scene)
    # Click the officer's marker on the map, as a user would, where its latest fix puts it.
    x, y = map_view(page).point(scene.now.lon, scene.now.lat)
    page.locator("#map").click(position={"x": x, "y": y})
    expect(detail_panel(page, "Position").locator(".detail-title")).to_contain_text(OFFICER)
    first, last = scene.path[0].ts, scene.path[-1].ts
    # A window that holds the walk (12 to 5 minutes ago) but not the fixes before and after.
    from_iso = (first - timedelta(seconds=50)).isoformat()
    to_iso = (last + timedelta(seconds=70)).isoformat()
    page.fill("#pb-from", _local_input(page, from_iso))
    page.fill("#pb-to", _local_input(page, to_iso))
    page.click("#detail .playback-form button[type=submit]")
    expect(page.locator("#pb-status")).to_have_text(f"{len(scene.path)} positions")

    def marker_at(i: int) -> None:
        """The playback marker's fill is what one sees at the i-th stored fix."""
        fix = scene.path[i]
        wait_until(
            lambda: shows_colour(page, fix.lon, fix.lat, PLAYBACK_BLUE),
            message=f"the playback marker at fix {i}",
        )

    marker_at(0)
    # The dashed white line runs through the stored fixes: most points along it look white,
    # points 30 px to the side of it do not (so it is the line, not the background).
    view = map_view(page)
    shot = cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    assert shot is not None
    rgb = shot[:, :, ::-1].astype(int)

    def white_near(x: float, y: float) -> bool:
        box = rgb[round(y) - 2 : round(y) + 3, round(x) - 2 : round(x) + 3]
        return bool((box.min(axis=2) >= 200).any())

    on_line, beside = [], []
    for a, b in itertools.pairwise(scene.path):
        (ax, ay), (bx, by) = view.page_point(a.lon, a.lat), view.page_point(b.lon, b.lat)
        length = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
        nx, ny = -(by - ay) / length * 30, (bx - ax) / length * 30
        for f in (0.3, 0.45, 0.6, 0.75):
            x, y = ax + (bx - ax) * f, ay + (by - ay) * f
            on_line.append(white_near(x, y))
            beside.append(white_near(x + nx, y + ny))
    assert sum(on_line) >= 0.75 * len(on_line), on_line
    assert sum(beside) <= 0.25 * len(beside), beside
    # Play to the end: the marker walks the whole path and stops on the last fix.
    page.click("#pb-play")
    expect(page.locator("#pb-slider")).to_have_value(str(len(scene.path) - 1), timeout=15_000)
    marker_at(len(scene.path) - 1)
    start = scene.path[0]
    assert not shows_colour(page, start.lon, start.lat, PLAYBACK_BLUE)  # it left the start
    # The slider scrubs to any fix; the time shown is that fix's time.
    page.focus("#pb-slider")
    page.keyboard.press("Home")
    for i in range(1, len(scene.path)):
        page.keyboard.press("ArrowRight")
        expect(page.locator("#pb-slider")).to_have_value(str(i))
        marker_at(i)
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    marker_at(2)
    shown = page.locator("#pb-time").inner_text()
    assert shown == js(
        page,
        """(iso) => new Intl.DateTimeFormat('en', {
            year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
            minute: '2-digit', second: '2-digit', hour12: false}).format(new Date(iso))""",
        scene.path[2].ts.isoformat(),
    )
    assert page.errors == []  # type: ignore[attr-defined]


def test_cell_warning_form_recolours_the_cell_and_the_hub_records_it(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    cid = f"{hub.site}-c9"
    w, s = offset(-300, 250)
    e, n = offset(0, 400)
    commander = hub.client(Role.COMMANDER)
    commander.put(
        f"/api/v1/grid-cells/{cid}",
        json={
            "type": "Feature",
            "id": cid,
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
            },
            "properties": {"site": hub.site, "name": "C9", "team": "Team C"},
        },
    ).raise_for_status()
    page = _open(pages, browser, scene)
    _search_and_pick(page, "C9", "C9")
    detail = detail_panel(page, "Grid cell")
    expect(detail.locator(".detail-title")).to_have_text("C9")
    label = page.locator(".leaflet-tooltip.cell-label", has_text="C9")
    expect(label).to_have_text("C9")
    page.select_option("#warn-level", "red")
    page.fill("#warn-reason", "Flooding reported on two streets")
    page.click("#detail .warn-form button[type=submit]")
    expect(detail.locator(".detail-title .warn-red")).to_have_text("Red")
    expect(label).to_have_text("C9 · Red")
    expect(label).to_have_class(re.compile(r"\bcell-red\b"))
    # The cell's outline is drawn red: its north edge (shared with no other cell) shows it.
    edge_lon, edge_lat = (w + e) / 2, n
    wait_until(
        lambda: shows_colour(page, edge_lon, edge_lat, WARNING_RED),
        message="C9's outline drawn red",
    )
    stored = commander.get(f"/api/v1/grid-cells/{cid}").json()["properties"]
    assert stored["warning_level"] == "red"
    assert stored["warning_reason"] == "Flooding reported on two streets"
    assert stored["warning_set_by"] == f"{hub.site}-commander"
    assert stored["warning_source"] == "override"
    audit = (
        hub.client(Role.ADMIN)
        .get("/api/v1/audit", params={"action": "cell.warning_override", "limit": 200})
        .json()["items"]
    )
    ours = [r for r in audit if r["target"] == cid]
    assert len(ours) == 1 and ours[0]["actor"] == f"{hub.site}-commander"
    details = ours[0]["details"]
    assert (details["level"], details["reason"]) == ("red", "Flooding reported on two streets")
    # The popup explains the colour (an override, until when) and shows the history.
    explain = detail.locator(".warning-explain")
    expect(explain).to_contain_text("Set by hand")
    expect(explain).to_contain_text("Expires")
    detail.locator(".warning-history-open").click()
    expect(detail.locator(".warning-history li")).to_have_count(1)
    expect(detail.locator(".warning-history li").first).to_contain_text(
        "Flooding reported on two streets"
    )
    # Clearing it again goes through the same form.
    page.select_option("#warn-level", "")
    page.fill("#warn-reason", "Water pumped out")
    page.click("#detail .warn-form button[type=submit]")
    expect(label).to_have_text("C9")
    wait_until(
        lambda: not shows_colour(page, edge_lon, edge_lat, WARNING_RED),
        message="C9's outline no longer red",
    )
    assert commander.get(f"/api/v1/grid-cells/{cid}").json()["properties"]["warning_level"] is None
    assert page.errors == []  # type: ignore[attr-defined]


def test_poi_import_form_shows_the_points_and_the_hubs_reason_for_a_bad_file(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    page = _open(pages, browser, scene)
    before = page.locator(".poi").count()
    rows = [
        ("water-7", "Bottled water store", "supplies", 60, -40),
        ("aed-7", "Library AED", "aed", -80, 60),
    ]
    good = "id,name,category,lon,lat\n" + "".join(
        f"{pid},{name},{cat},{offset(e, n)[0]:.6f},{offset(e, n)[1]:.6f}\n"
        for pid, name, cat, e, n in rows
    )
    page.set_input_files(
        "#poi-file",
        files=[FilePayload(name="supplies.csv", mimeType="text/csv", buffer=good.encode())],
    )
    expect(page.locator("#poi-import-result")).to_have_text("2 imported")
    expect(page.locator(".poi")).to_have_count(before + 2)
    expect(page.locator(".leaflet-marker-icon[title='Library AED'] .poi")).to_have_text("D")
    stored = hub.client(Role.ADMIN).get("/api/v1/poi", params={"site": hub.site}).json()
    names = {f["id"]: f["properties"]["name"] for f in stored["features"]}
    assert names["water-7"] == "Bottled water store" and names["aed-7"] == "Library AED"
    # A file without the lat column: nothing is imported and the hub's reason is shown.
    bad = "id,name,category,lon\nx-1,Somewhere,place,114.05\n"
    page.set_input_files(
        "#poi-file",
        files=[FilePayload(name="broken.csv", mimeType="text/csv", buffer=bad.encode())],
    )
    refused = hub.client(Role.ADMIN).post(
        "/api/v1/poi/import",
        params={"site": hub.site},
        content=bad.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert refused.status_code == 422
    result = page.locator("#poi-import-result")
    expect(result).to_have_text(f"Not imported: {refused.json()['detail']}")
    expect(result).to_have_class("error")
    expect(page.locator(".poi")).to_have_count(before + 2)
    assert page.errors == [e for e in page.errors if "422" in e]  # type: ignore[attr-defined]


def _catalogue(code: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((I18N / f"{code}.json").read_text(encoding="utf-8"))
    return data


def test_catalogues_have_the_same_keys_and_placeholders() -> None:
    en, zh = _catalogue("en"), _catalogue("zh-CN")
    assert sorted(en) == sorted(zh)
    for key in en:
        assert set(re.findall(r"\{(\w+)\}", en[key])) == set(re.findall(r"\{(\w+)\}", zh[key])), key
        assert zh[key].strip(), key


def test_every_incident_event_kind_has_a_timeline_label() -> None:
    """The workspace's timeline names each event kind the hub writes, in both languages."""
    for code in ("en", "zh-CN"):
        catalogue = _catalogue(code)
        missing = [k.value for k in EventKind if f"workspace.event.{k.value}" not in catalogue]
        assert not missing, (code, missing)


# Every visible text node and every title / aria-label / placeholder / alt of a visible element.
SCAN_TEXT = """() => {
    const out = [];
    const shown = (el) => el && el.getClientRects().length > 0
        && getComputedStyle(el).visibility !== 'hidden' && !el.closest('[hidden]');
    const where = (el) => el.id ? '#' + el.id
        : el.tagName.toLowerCase() + '.' + [...el.classList].join('.');
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const text = n.nodeValue.trim();
        const el = n.parentElement;
        if (!text || el.closest('script, style')) continue;
        const host = el.closest('select') || el;
        if (shown(host)) out.push([where(el), text]);
    }
    for (const el of document.querySelectorAll('[title], [aria-label], [placeholder], [alt]')) {
        if (!shown(el)) continue;
        for (const a of ['title', 'aria-label', 'placeholder', 'alt']) {
            const v = el.getAttribute(a);
            if (v && v.trim()) out.push([where(el) + '@' + a, v.trim()]);
        }
    }
    return out;
}"""


def test_switching_to_chinese_leaves_no_english_in_the_chrome(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    page = _open(pages, browser, scene)
    page.select_option("#app-view .lang-select", "zh-CN")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    zh = _catalogue("zh-CN")
    # Latin words the Chinese catalogue itself uses (CPU, GeoJSON, AR, v1, °C...).
    allowed = {w for v in zh.values() for w in re.findall(r"[A-Za-z]+", re.sub(r"\{\w+\}", "", v))}
    # Data, not chrome: ids, names and titles the test created, the brand, language names.
    data = sorted(
        {
            "gridward",
            "English",
            EVIDENCE_TITLE,
            KIOSK_TITLE,  # the keyboard test's alert, when that test has run first
            "Loitering by the substation",
            "open incidents",
            "Team A",
            "Team B",
            "Team C",
            OFFICER,
            *(
                f["properties"]["name"]
                for f in hub.client(Role.ADMIN)
                .get("/api/v1/poi", params={"site": hub.site})
                .json()["features"]
            ),
            *(
                d["name"]
                for d in hub.client(Role.ADMIN)
                .get("/api/v1/devices", params={"site": hub.site})
                .json()["items"]
            ),
        },
        key=len,
        reverse=True,
    )
    site_ids = re.compile(re.escape(hub.site) + r"[\w-]*")
    cell_names = re.compile(r"\b[A-C][0-9]\b")
    incident_numbers = re.compile(r"\bI-[0-9]{6,}\b")  # data: the hub's incident numbers

    def english_left(state: str) -> list[tuple[str, str]]:
        left = []
        for where, text in js(page, SCAN_TEXT):
            rest = site_ids.sub(" ", text)
            for d in data:
                rest = rest.replace(d, " ")
            rest = cell_names.sub(" ", rest)
            rest = incident_numbers.sub(" ", rest)
            words = [w for w in re.findall(r"[A-Za-z]+", rest) if w not in allowed]
            if words:
                left.append((f"{state}: {where}", text))
        return left

    found = english_left("feed")
    page.locator(".leaflet-marker-icon:has(.dev)").first.hover(timeout=15_000)
    page.locator(".leaflet-tooltip:not(.cell-label)").wait_for(timeout=15_000)
    found += english_left("device tooltip")
    page.locator(".leaflet-marker-icon:has(.poi)").first.click(timeout=15_000)
    page.locator(".leaflet-popup").wait_for(timeout=15_000)
    found += english_left("poi popup")
    # Every panel, each in turn: alert with evidence, device with health, entity with a loaded
    # playback, cell with the warning form, search results, a POI popup, a device tooltip.
    _feed_item(page, EVIDENCE_TITLE).locator(".alert-open").click()
    page.locator("#detail .evidence img").wait_for()
    found += english_left("alert")
    page.fill("#search-input", "cam-yard")
    page.locator("#search-results [role=option]").first.wait_for()
    found += english_left("search")
    page.keyboard.press("Enter")
    page.locator("#health-spark svg.spark, #health-spark p").first.wait_for()
    found += english_left("device")
    _search_and_pick(page, OFFICER, OFFICER)
    page.click("#detail .playback-form button[type=submit]")
    page.locator("#pb-controls:not([hidden])").wait_for()
    found += english_left("entity")
    _search_and_pick(page, "A1", "A1")
    page.locator("#detail .warn-form").wait_for()
    found += english_left("cell")
    page.keyboard.press("Escape")
    assert found == [], "\n".join(map(str, found))
    # And back: the English catalogue returns everywhere, no Chinese left in the chrome.
    page.select_option("#app-view .lang-select", "en")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    page.locator(".leaflet-popup").wait_for(state="detached")  # rebuilt markers, popup closed
    cjk = [(w, t) for w, t in js(page, SCAN_TEXT) if re.search(r"[\u4e00-\u9fff]", t)]
    assert cjk and {t for _, t in cjk} == {"简体中文"}, cjk  # only the language's own name
    assert page.errors == []  # type: ignore[attr-defined]


# Records every element that takes focus and whether a focus ring is drawn for it.
TRACK_FOCUS = """() => {
    window.__focusLog = [];
    document.addEventListener('focusin', (ev) => {
        const el = ev.target;
        // A visually hidden file input shows its ring on the label that stands for it.
        const ringed = el.matches('input[type=file]')
            ? document.querySelector(`label[for='${el.id}']`) : el;
        const cs = getComputedStyle(ringed);
        const ring = (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2)
            || cs.boxShadow !== 'none';
        const name = el.id ? '#' + el.id : el.className && typeof el.className === 'string'
            ? el.tagName.toLowerCase() + '.' + el.className.split(/\\s+/).join('.')
            : el.tagName.toLowerCase();
        window.__focusLog.push({name, ring, visible: el.matches(':focus-visible')});
    });
}"""


def test_every_control_works_from_the_keyboard_with_a_visible_focus_ring(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    hub = scene.hub
    lon, lat = offset(20, 30)
    alert_id = scene.cam.alert(
        kind=AlertKind.LOITERING,
        severity=Severity.MEDIUM,
        title=KIOSK_TITLE,
        location=Location(lon=lon, lat=lat),
    ).id
    wait_outbox_empty(scene.cam)
    page = _open(pages, browser, scene)
    _feed_item(page, KIOSK_TITLE).wait_for()
    js(page, TRACK_FOCUS)
    # Tab through the whole page once.
    page.evaluate("document.activeElement.blur()")
    for _ in range(120):
        page.keyboard.press("Tab")
        if js(
            page,
            "!!document.activeElement.closest('#feed-list')",
        ):
            break
    for _ in range(8):  # into the feed: open and acknowledge buttons
        page.keyboard.press("Tab")
    log = js(page, "window.__focusLog")
    names = [e["name"] for e in log]
    for control in (
        "#search-input",
        "select.lang-select",
        "#logout",
        "#map",
        "#layer-cells",
        "#layer-officers",
        "#layer-pois",
        "#poi-file",
        "#feed-open-only",
    ):
        assert control in names, (control, names)
    assert any(n.startswith("button.alert-open") for n in names), names
    assert any(n.startswith("button.ack") for n in names), names
    assert any("leaflet-control-zoom-in" in n for n in names), names
    no_ring = [e["name"] for e in log if not (e["ring"] and e["visible"])]
    assert no_ring == [], no_ring
    # Space toggles a layer.
    page.focus("#layer-cells")
    page.keyboard.press("Space")
    expect(page.locator(".leaflet-tooltip.cell-label")).to_have_count(0)
    page.keyboard.press("Space")
    expect(page.locator(".leaflet-tooltip.cell-label").first).to_be_visible()
    # The language switch works with the arrow keys.
    page.focus("#app-view .lang-select")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'", timeout=15_000)
    page.select_option("#app-view .lang-select", "en")
    page.wait_for_function("() => document.documentElement.lang === 'en'", timeout=15_000)
    # "/" focuses search; arrows + Enter pick a result; Tab reaches the playback controls.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    page.keyboard.type(OFFICER)
    page.locator("#search-results [role=option]").first.wait_for()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(detail_panel(page, "Position")).to_be_visible()
    js(page, "window.__focusLog.length = 0")
    page.focus("#detail .close")
    # Tab walks into each date field (its day, hour, minute parts are separate stops).
    reached = []
    for _ in range(16):
        page.keyboard.press("Tab")
        reached.append(js(page, "document.activeElement.id || document.activeElement.className"))
        if js(page, "document.activeElement.matches('.playback-form button')"):
            break
    assert "pb-from" in reached and "pb-to" in reached, reached
    assert js(page, "document.activeElement.matches('.playback-form button')"), reached
    page.keyboard.press("Enter")  # the default window: the last 15 minutes (the walk + now)
    expect(page.locator("#pb-status")).to_have_text(f"{len(scene.path) + 1} positions")
    page.keyboard.press("Tab")
    assert js(page, "document.activeElement.id") == "pb-play"
    page.keyboard.press("Space")
    expect(page.locator("#pb-slider")).to_have_value(str(len(scene.path)), timeout=15_000)
    page.keyboard.press("Tab")
    assert js(page, "document.activeElement.id") == "pb-slider"
    page.keyboard.press("Home")
    expect(page.locator("#pb-slider")).to_have_value("0")
    log = js(page, "window.__focusLog")
    assert {e["name"] for e in log} >= {"#pb-from", "#pb-to", "#pb-play", "#pb-slider"}, log
    assert [e["name"] for e in log if not (e["ring"] and e["visible"])] == []
    # Escape closes the detail; the alert opens with Enter and is acknowledged from its form.
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    _feed_item(page, KIOSK_TITLE).locator(".alert-open").focus()
    page.keyboard.press("Enter")
    page.locator("#detail .ack-form").wait_for()
    page.focus("#ack-note")
    page.keyboard.type("Seen on camera, patrol informed")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#detail .ack-form")).to_have_count(0, timeout=15_000)  # done: no form
    expect(_feed_item(page, KIOSK_TITLE)).to_have_count(0)
    stored = hub.client(Role.ADMIN).get(f"/api/v1/alerts/{alert_id}").json()
    assert stored["status"] == "acknowledged"
    assert [n["text"] for n in stored["notes"]] == ["Seen on camera, patrol informed"]
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_view_lives_in_the_address_and_survives_a_reload(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    """``#map=zoom/lat/lon`` opens that view instead of the fit, follows every move, and a
    reload keeps it; a hidden layer stays hidden (and unticked) across a language switch."""
    page = _open(pages, browser, scene)
    fitted = map_view(page)
    lon, lat = offset(40, -30)
    page.goto(f"{scene.hub.base_url}/#map=18/{lat:.6f}/{lon:.6f}")
    page.reload()
    wait_loaded(page)
    view = map_view(page)
    assert view.zoom == 18
    # Leaflet keeps its pixel origin on whole pixels: the centre is the asked one to a pixel.
    assert (view.lat, view.lon) == pytest.approx((lat, lon), abs=1e-5)
    assert view.zoom != fitted.zoom
    # Zooming out with the control is written back to the address, and a reload keeps it.
    page.click(".leaflet-control-zoom-out")
    page.wait_for_function("() => location.hash.startsWith('#map=17/')")
    page.reload()
    wait_loaded(page)
    assert map_view(page).zoom == 17
    # A malformed view is ignored: the district is fitted as usual.
    page.goto(f"{scene.hub.base_url}/#map=99/not/a-view")
    page.reload()
    wait_loaded(page)
    assert map_view(page).zoom == fitted.zoom
    # The layer toggles keep their state when the page is relabelled in another language.
    page.click("#layer-pois")
    expect(page.locator(".poi")).to_have_count(0)
    page.select_option("#app-view .lang-select", "zh-CN")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    expect(page.locator("#layer-pois")).not_to_be_checked()
    expect(page.locator(".poi")).to_have_count(0)
    page.select_option("#app-view .lang-select", "en")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert page.errors == []  # type: ignore[attr-defined]


def test_render_diagnostic_is_read_only(pages: list[Page], browser: Browser, scene: Scene) -> None:
    """The wall display's diagnostic (docs/dashboard.md) reports what is drawn and offers no
    way to change the page: it is frozen, and changing what it returned changes nothing."""
    page = _open(pages, browser, scene)
    seen = js(
        page,
        """() => {
            const d = window.gridwardDiagnostics;
            const render = d.render;
            const first = d.render();
            first.entities = -1;
            first.draw_ms.length = 0;
            try { d.render = () => null; } catch { /* frozen: refused */ }
            try { window.gridwardDiagnostics = null; } catch { /* read-only: refused */ }
            return {frozen: Object.isFrozen(d),
                    same: window.gridwardDiagnostics === d && d.render === render,
                    keys: Object.keys(d), again: d.render()};
        }""",
    )
    assert seen["frozen"] and seen["same"]
    assert seen["keys"] == ["render", "feed"]  # feed: the triage feed's counters (js/feed.js)
    again = seen["again"]
    assert again["entities"] >= 1  # officer-9 at least
    assert again["frames"] >= 1 and again["draw_count"] >= 1
    assert len(again["draw_ms"]) == min(again["draw_count"], 4096)
    assert all(ms >= 0 for ms in again["draw_ms"])
