"""The dashboard's panels in a real Chromium against one real hub per module: the fit to the
district and the detail panel at 1080p, search, the device health sparkline, track playback,
setting a cell warning, POI import, the zh-CN catalogue and keyboard use.

Every test makes its own data through the real API or real MQTT publishes (unique ids), so
they share the hub without depending on each other's order."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from edge.agent import AgentRuntime
from edge.protocol import AlertKind, EntityKind, Evidence, Location, Position, Severity
from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import (
    District,
    evidence_jpeg,
    js,
    offset,
    open_dashboard,
    position,
    wait_outbox_empty,
)
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

I18N = Path(__file__).resolve().parents[3] / "hub" / "dashboard" / "i18n"
OFFICER = "officer-9"
SPARK_W, SPARK_H = 320, 64  # panels.js sparkline() viewBox


@dataclass
class Scene:
    hub: RunningHub
    district: District
    cam: AgentRuntime
    path: list[Position]  # officer-9's stored positions inside the playback window
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
        cam.send_positions([before, *path, now])
        admin = hub.client(Role.ADMIN)
        wait_until(
            lambda: len(
                admin.get(
                    "/api/v1/positions/history", params={"entity": OFFICER, "limit": 100}
                ).json()["items"]
            )
            == 10,
            10,
            message="the hub to store officer-9's path",
        )
        lon, lat = offset(-100, 150)
        evidence_alert = cam.alert(
            kind=AlertKind.INTRUSION,
            severity=Severity.CRITICAL,
            title="Person in the rail yard",
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
        yield Scene(hub, district, cam, path, evidence_alert)
    finally:
        district.stop()


def _open(pages: list[Page], browser: Browser, scene: Scene, **size: int) -> Page:
    page = open_dashboard(pages, browser, scene.hub, Role.COMMANDER, **size)
    page.wait_for_function("document.querySelector('#conn').dataset.state === 'live'")
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


def _inside(inner: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    return (
        inner["left"] >= outer["left"] - slack
        and inner["top"] >= outer["top"] - slack
        and inner["right"] <= outer["right"] + slack
        and inner["bottom"] <= outer["bottom"] + slack
    )


def _assert_district_fits(page: Page) -> None:
    """Every cell lies inside the visible part of the map and clear of the legend."""
    seen = js(
        page,
        """() => {
            const map = __gw.map;
            const r = map.getContainer().getBoundingClientRect();
            const visible = {left: Math.max(r.left, 0), top: Math.max(r.top, 0),
                             right: Math.min(r.right, innerWidth),
                             bottom: Math.min(r.bottom, innerHeight)};
            const lg = document.getElementById('legend').getBoundingClientRect();
            const cells = [];
            for (const [id, {layer}] of __gw.cells.cells) {
                const b = layer.getBounds();
                const nw = map.latLngToContainerPoint(b.getNorthWest());
                const se = map.latLngToContainerPoint(b.getSouthEast());
                cells.push({id, box: {left: r.left + nw.x, top: r.top + nw.y,
                                      right: r.left + se.x, bottom: r.top + se.y}});
            }
            return {visible, cells, legend: {left: lg.left, top: lg.top, right: lg.right,
                                             bottom: lg.bottom},
                    scroll: document.documentElement.scrollHeight - innerHeight};
        }""",
    )
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
    _assert_district_fits(page)
    item = page.locator(f"#feed-list [data-alert='{scene.evidence_alert}']")
    item.locator(".alert-open").click()
    page.wait_for_function(
        "document.querySelector('#detail .evidence img')?.naturalWidth === 240"
    )
    viewport = {"left": 0, "top": 0, "right": size[0], "bottom": size[1]}
    detail = _rect(page, "#detail")
    assert _inside(detail, viewport), detail
    # The acknowledge form sits below the scrolling body: whole, visible, usable.
    for control in ("#detail .ack-detail", "#detail #ack-note", "#detail [data-close]"):
        assert _inside(_rect(page, control), detail), control
        expect(page.locator(control)).to_be_visible()
    assert js(page, "document.elementFromPoint(...(() => { const r = document.querySelector('#detail .ack-detail').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()).closest('.ack-detail') !== null")
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
        page.screenshot(path=str(Path(__file__).resolve().parents[3] / "test-artifacts" / "dashboard-detail-1080p.png"))
    assert page.errors == []  # type: ignore[attr-defined]
