"""Times on the dashboard are the site's (issue 13 item 1), in real Chromium whose own zone is
Asia/Shanghai or America/New_York while the site is in Asia/Kolkata (UTC+05:30, a half-hour
offset no wrong guess lands on): the feed, the alert detail and the clock show the site's
24-hour time in English and Chinese, the header names the zone, and live positions keep moving
a marker west of UTC (where a zone-less API time once read as hours in the future froze it).
A figure a device does not report reads "not reported", never 0."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from edge.protocol import AlertKind, EntityKind, Severity
from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import (
    District,
    clients_closed,
    open_dashboard,
    pinned_hub,
    position,
    wait_live,
    wait_outbox_empty,
)
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

SITE_ZONE = "Asia/Kolkata"
HMS = re.compile(r"^\d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def zoned_hub(
    broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    """One hub in the site zone for the module."""
    with pinned_hub(broker, tmp_path_factory.mktemp("hub"), timezone=SITE_ZONE) as running:
        yield running


@pytest.fixture(autouse=True)
def _close_clients(zoned_hub: RunningHub) -> Iterator[None]:
    with clients_closed(zoned_hub):
        yield


@pytest.fixture
def zoned_district(
    zoned_hub: RunningHub, broker: BrokerHarness, tmp_path: Path
) -> Iterator[District]:
    d = District(zoned_hub, broker, tmp_path)
    try:
        yield d
    finally:
        d.stop()


def _site_hms(ts: datetime) -> str:
    return ts.astimezone(ZoneInfo(SITE_ZONE)).strftime("%H:%M:%S")


def _pick(page: Page, query: str) -> None:
    page.fill("#search-input", query)
    option = page.locator("#search-results [role=option]", has_text=query)
    option.first.wait_for()
    option.first.click()


@pytest.mark.parametrize("browser_zone", ["Asia/Shanghai", "America/New_York"])
def test_times_are_the_sites_and_markers_move_in_any_browser_zone(
    pages: list[Page],
    browser: Browser,
    zoned_hub: RunningHub,
    zoned_district: District,
    browser_zone: str,
) -> None:
    hub = zoned_hub
    tag = browser_zone.split("/")[1].lower()
    band = zoned_district.device(f"{hub.site}-band-{tag}", "wristband", None)
    entity = f"wearer-{tag}"
    # A position stored before the page loads: the page reads it from the REST API.
    band.send_positions([position(entity, EntityKind.WEARER, 0, 0, dt_s=-2)])
    reader = hub.client(Role.ADMIN)
    wait_until(
        lambda: any(
            p["entity"] == entity for p in reader.get("/api/v1/positions/latest").json()["items"]
        ),
        message="the first position stored",
    )
    alert = band.alert(AlertKind.SOS, Severity.HIGH, title=f"SOS {tag}")
    wait_outbox_empty(band)

    page = open_dashboard(pages, browser, hub, Role.OPERATOR, timezone_id=browser_zone)
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == browser_zone
    expect(page.locator("#site-zone")).to_have_text("Asia/Kolkata (UTC+05:30)")
    item = page.locator("#feed-list .alert-item", has_text=f"SOS {tag}")
    shown = _site_hms(alert.ts)
    expect(item.locator("time")).to_have_text(shown)
    clock = page.locator("#clock").inner_text()
    assert HMS.match(clock), clock
    now = datetime.now(UTC).astimezone(ZoneInfo(SITE_ZONE))
    hh, mm, ss = (int(x) for x in clock.split(":"))
    drift_s = abs((now.hour * 3600 + now.minute * 60 + now.second) - (hh * 3600 + mm * 60 + ss))
    assert min(drift_s, 86400 - drift_s) < 120, (clock, now)  # the site's clock, not UTC's
    item.locator(".alert-open").click()
    expect(page.locator("#detail .kv")).to_contain_text(shown)

    # Live positions, each newer than the stored one, move the marker (west of UTC too).
    wait_live(page)  # sent before the stream's hello they would never reach the page
    moves = [position(entity, EntityKind.WEARER, 40 * i, 0, dt_s=i) for i in (1, 2, 3)]
    for p in moves:
        band.send_positions([p])
    last = moves[-1]
    wait_until(
        lambda: page.evaluate("gridwardDiagnostics.render().updates") >= 4,
        message="the live positions drawn",
    )
    _pick(page, entity)
    expect(page.locator("#detail .kv")).to_contain_text(f"{last.lat:.5f}, {last.lon:.5f}")
    expect(page.locator("#detail .kv")).to_contain_text(_site_hms(last.ts))

    # The same clock in Chinese: 24-hour, the site's zone.
    page.select_option("header .lang-select", "zh-CN")
    expect(item.locator("time")).to_have_text(shown)
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_figure_the_device_does_not_report_is_not_a_zero(
    pages: list[Page], browser: Browser, zoned_hub: RunningHub, zoned_district: District
) -> None:
    hub = zoned_hub
    device = f"{hub.site}-band-health"
    zoned_district.device(device, "wristband", None, health_interval_s=0.2)
    reader = hub.client(Role.ADMIN)
    wait_until(
        lambda: len(reader.get(f"/api/v1/devices/{device}/health").json()["items"]) >= 3,
        message="three heartbeats",
    )
    # A wristband has no camera: its heartbeats carry no fps at all.
    beats = reader.get(f"/api/v1/devices/{device}/health").json()["items"]
    assert all(b["payload"].get("fps") is None for b in beats)
    page = open_dashboard(pages, browser, hub, Role.OPERATOR, timezone_id="America/New_York")
    _pick(page, device)
    page.locator("#health-metric").select_option("fps")
    expect(page.locator("#health-spark")).to_have_text("not reported")
    expect(page.locator("#health-spark svg.spark")).to_have_count(0)
    page.select_option("header .lang-select", "zh-CN")
    _pick(page, device)
    page.locator("#health-metric").select_option("fps")
    expect(page.locator("#health-spark")).to_have_text("未上报")
    assert page.errors == []  # type: ignore[attr-defined]
