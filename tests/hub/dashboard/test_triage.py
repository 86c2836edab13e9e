"""The triage feed in a real Chromium against a real hub (issue 13, item 3): more than 200 open
alerts, all reachable and counted as the hub counts them; an acknowledge click while alerts
arrive hits the alert under the pointer; filters narrow the list as the API does; a new
critical alert beeps, raises a notification and counts in the tab title, and mute silences it;
headlines follow the operator's language."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from edge.agent import AgentRuntime
from edge.protocol import AlertKind, Location, Severity
from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import (
    District,
    clients_closed,
    js,
    offset,
    open_dashboard,
    wait_outbox_empty,
)
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

OPEN_ALERTS = 230
CRITICAL = 15
# Kinds that match no default alert rule: they stay alerts, no incident groups them.
PLAIN = [
    (AlertKind.BATTERY_LOW, Severity.LOW),
    (AlertKind.LINE_CROSSING, Severity.MEDIUM),
    (AlertKind.GEOFENCE_EXIT, Severity.HIGH),
]
# One point inside each of the district's four cells (conftest District.cells), and none.
PLACES: list[tuple[str | None, tuple[float, float] | None]] = [
    ("a1", (-150, -120)),
    ("a2", (150, -120)),
    ("b1", (-150, 120)),
    ("b2", (150, 120)),
    (None, None),
]


@dataclass
class Scene:
    hub: RunningHub
    district: District
    cam: AgentRuntime
    band: AgentRuntime
    oldest_critical: str
    department: str


@pytest.fixture(scope="module")
def scene(
    module_hub: RunningHub, broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    hub = module_hub
    district = District(hub, broker, tmp_path_factory.mktemp("district"))
    try:
        district.cells()
        admin = hub.client(Role.ADMIN)
        department = f"{hub.site}-east-desk"
        admin.post(
            "/api/v1/departments",
            json={"id": department, "name": "East desk", "line": "city_management"},
        ).raise_for_status()
        admin.put(
            f"/api/v1/grid-cells/{hub.site}-a2/responsibility",
            json={"departments": {"city_management": department}},
        ).raise_for_status()
        cam = district.device(f"{hub.site}-cam", "camera", offset(0, 0))
        band = district.device(f"{hub.site}-band", "wristband", offset(10, 10))
        sent_critical: list[str] = []
        for i in range(OPEN_ALERTS):
            _, where = PLACES[i % len(PLACES)]
            loc = Location(lon=offset(*where)[0], lat=offset(*where)[1]) if where else None
            # The criticals are the oldest alerts of all: a feed that kept only the newest 200
            # would have lost them.
            if i < CRITICAL:
                a = cam.alert(
                    kind=AlertKind.LOITERING,
                    severity=Severity.CRITICAL,
                    zone=f"gate-{i}",
                    title=f"device text {i}",
                    location=loc,
                )
                sent_critical.append(a.id)
            else:
                kind, sev = PLAIN[i % len(PLAIN)]
                agent = band if kind is not AlertKind.LINE_CROSSING else cam
                agent.alert(kind=kind, severity=sev, location=loc, zone=f"z-{i}")
        wait_outbox_empty(cam)
        wait_outbox_empty(band)
        yield Scene(hub, district, cam, band, sent_critical[0], department)
    finally:
        district.stop()


@pytest.fixture(autouse=True)
def _close_clients(module_hub: RunningHub) -> Iterator[None]:
    """API clients a test opens on the shared hub are closed with the test (leak check)."""
    with clients_closed(module_hub):
        yield


def _get(client: httpx.Client, path: str, params: dict[str, Any]) -> Any:
    """A GET that survives the server closing an idle keep-alive connection just as the
    client reuses it (uvicorn closes them after 5 s; the tests idle that long while Chromium
    works). Only this idempotent read is retried, once."""
    try:
        res = client.get(path, params=params)
    except httpx.RemoteProtocolError:
        res = client.get(path, params=params)
    res.raise_for_status()
    return res.json()


def _api_ids(client: httpx.Client, params: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        q = {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        body = _get(client, "/api/v1/alerts", q)
        ids += [a["id"] for a in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def _api_count(client: httpx.Client, params: dict[str, Any]) -> int:
    return int(_get(client, "/api/v1/alerts/count", params)["total"])


def _shown(page: Page, section: str = "") -> list[str]:
    sel = f"#feed-list {f'.feed-{section} ' if section else ''}li[data-id]"
    return list(js(page, f"[...document.querySelectorAll({sel!r})].map((e) => e.dataset.id)"))


def _grows(page: Page, section: str) -> Callable[[], bool]:
    """Whether the section has more rows than now."""
    before = len(_shown(page, section))
    return lambda: len(_shown(page, section)) > before


def _show_all(page: Page, section: str) -> None:
    more = page.locator(f"#feed-list .feed-{section} .feed-more")
    for _ in range(20):
        if not more.is_visible():
            return
        grew = _grows(page, section)
        more.click()
        wait_until(grew, message="the next page")
    raise AssertionError("show more never ended")


def _open(pages: list[Page], browser: Browser, scene: Scene) -> Page:
    page = open_dashboard(pages, browser, scene.hub, Role.OPERATOR)
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
    return page


def test_count_matches_the_hub_and_the_oldest_critical_is_reachable(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    page = _open(pages, browser, scene)
    api = scene.hub.client(Role.OPERATOR)
    site = {"site": scene.hub.site}
    total = _api_count(api, {**site, "status": "new"})
    assert total >= OPEN_ALERTS  # more than the 200 the old feed kept
    expect(page.locator("#feed-count")).to_have_text(f"{total} open")
    # Open criticals first, all of them, the oldest included.
    criticals = _api_ids(api, {**site, "status": "new", "severity": "critical"})
    expect(page.locator(".feed-critical li[data-id]")).to_have_count(len(criticals))
    assert _shown(page, "critical") == criticals
    assert scene.oldest_critical in criticals
    oldest = page.locator(f".feed-critical li[data-id='{scene.oldest_critical}']")
    oldest.scroll_into_view_if_needed()
    expect(oldest).to_be_visible()
    expect(page.locator(".feed-critical .feed-section-head .count")).to_have_text(
        str(len(criticals))
    )
    # The other alerts page on: the section's count is the hub's, and "show more" reaches the
    # last one; nothing is shown twice, nothing is missing.
    rest = [i for i in _api_ids(api, {**site, "status": "new"}) if i not in set(criticals)]
    expect(page.locator(".feed-alerts .feed-section-head .count")).to_have_text(str(len(rest)))
    assert len(_shown(page, "alerts")) < len(rest)  # paged, not all at once
    expect(page.locator(".feed-alerts .feed-more")).to_have_text(
        f"Show more ({len(rest) - len(_shown(page, 'alerts'))} more)"
    )
    _show_all(page, "alerts")
    assert _shown(page, "alerts") == rest
    assert len(_shown(page)) == total
    assert page.errors == []  # type: ignore[attr-defined]


def test_filters_narrow_the_list_as_the_api_does(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    page = _open(pages, browser, scene)
    api = scene.hub.client(Role.OPERATOR)
    site = {"site": scene.hub.site, "status": "new"}

    def check(params: dict[str, str]) -> None:
        want = _api_ids(api, {**site, **params})
        wait_until(
            lambda: set(_shown(page)) >= set(want[:50]) and len(_shown(page)) <= len(want),
            message=f"the feed filtered by {params}",
        )
        for section in ("critical", "alerts"):
            _show_all(page, section)
        assert sorted(_shown(page)) == sorted(want), params
        expect(page.locator("#feed-count")).to_have_text(f"{len(want)} open")

    page.click("#feed-filters-summary")  # the filters fold away to keep the list tall
    page.select_option("#feed-f-severity", "high")
    check({"severity": "high"})
    expect(page.locator("#feed-filters-summary")).to_have_text("Filters (1 on)")
    expect(page.locator(".feed-critical")).to_have_count(0)  # no critical section for "high"
    page.select_option("#feed-f-severity", "")
    page.select_option("#feed-f-kind", "loitering")
    check({"kind": "loitering"})
    page.select_option("#feed-f-kind", "")
    page.select_option("#feed-f-cell", f"{scene.hub.site}-b1")
    check({"cell": f"{scene.hub.site}-b1"})
    page.select_option("#feed-f-cell", "")
    page.select_option("#feed-f-department", scene.department)
    check({"department": scene.department})
    page.select_option("#feed-f-department", "")
    page.fill("#feed-f-device", scene.band.config.device)
    page.press("#feed-f-device", "Enter")
    check({"device": scene.band.config.device})
    page.fill("#feed-f-device", "")
    page.press("#feed-f-device", "Enter")
    page.select_option("#feed-f-window", "1h")
    page.select_option("#feed-f-severity", "critical")
    check({"severity": "critical"})  # all were sent within the hour
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_ack_click_while_alerts_arrive_hits_the_alert_under_the_pointer(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    page = _open(pages, browser, scene)
    api = scene.hub.client(Role.OPERATOR)
    site = {"site": scene.hub.site}
    target = _shown(page, "alerts")[3]
    ack = page.locator(f".feed-alerts li[data-id='{target}'] button.ack")
    ack.scroll_into_view_if_needed()
    box = ack.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    acked_before = _api_count(api, {**site, "status": "acknowledged"})
    # A burst of new alerts arrives while the operator aims: they wait above the list.
    burst = [
        scene.band.alert(kind=AlertKind.BATTERY_LOW, severity=Severity.LOW, zone=f"burst-{i}").id
        for i in range(12)
    ]
    wait_outbox_empty(scene.band)
    page.wait_for_function("() => window.gridwardDiagnostics.feed().pending === 12")
    expect(page.locator("#feed-new")).to_have_text("12 new: show")
    after = ack.bounding_box()
    assert after is not None and (after["x"], after["y"]) == (box["x"], box["y"])
    row_y = page.locator(f".feed-alerts li[data-id='{target}']").bounding_box()["y"]  # type: ignore[index]
    page.mouse.click(x, y)
    wait_until(
        lambda: _get(api, f"/api/v1/alerts/{target}", {})["status"] == "acknowledged",
        message="the hub to record the ack",
    )
    assert _api_count(api, {**site, "status": "acknowledged"}) == acked_before + 1
    assert all(_get(api, f"/api/v1/alerts/{b}", {})["status"] == "new" for b in burst)
    # Under the pointer the acknowledged row keeps its place (nothing slides under a second
    # click); the pointer leaves: it goes, the held alerts come in, the count is the hub's.
    row = page.locator(f".feed-alerts li[data-id='{target}']")
    expect(row).to_have_class(re.compile(r"\bis-acked\b"))
    assert row.bounding_box()["y"] == row_y  # type: ignore[index]
    page.mouse.move(5, 5)
    page.evaluate("document.activeElement.blur()")
    wait_until(lambda: set(burst) <= set(_shown(page, "alerts")), message="the burst shown")
    expect(row).to_have_count(0)
    expect(page.locator("#feed-count")).to_have_text(
        f"{_api_count(api, {**site, 'status': 'new'})} open"
    )

    # Keyboard focus holds the list too: the focused row keeps its place and the focus.
    keep = page.locator(f".feed-alerts li[data-id='{_shown(page, 'alerts')[2]}'] button.alert-open")
    keep.focus()
    before = keep.bounding_box()
    more = [
        scene.band.alert(kind=AlertKind.BATTERY_LOW, severity=Severity.LOW, zone=f"k-{i}").id
        for i in range(3)
    ]
    wait_outbox_empty(scene.band)
    page.wait_for_function("() => window.gridwardDiagnostics.feed().pending === 3")
    assert keep.bounding_box() == before
    assert js(page, "document.activeElement.classList.contains('alert-open')")
    page.evaluate("document.activeElement.blur()")
    wait_until(lambda: set(more) <= set(_shown(page, "alerts")), message="the held three")

    # Scrolled down with nothing held: new rows go in above the view, which stays put.
    page.evaluate("document.querySelector('#feed-list').scrollTop = 600")
    first_visible = js(
        page,
        """() => { const box = document.querySelector('#feed-list');
            return [...box.querySelectorAll('li[data-id]')].find(
                (li) => li.offsetTop + li.offsetHeight > box.scrollTop).dataset.id; }""",
    )
    row = page.locator(f"li[data-id='{first_visible}']")
    y_before = row.bounding_box()["y"]  # type: ignore[index]
    late = [
        scene.band.alert(kind=AlertKind.BATTERY_LOW, severity=Severity.LOW, zone=f"s-{i}").id
        for i in range(4)
    ]
    wait_outbox_empty(scene.band)
    wait_until(lambda: set(late) <= set(_shown(page, "alerts")), message="the late four")
    assert abs(row.bounding_box()["y"] - y_before) <= 1  # type: ignore[index]
    assert page.errors == []  # type: ignore[attr-defined]


# Records every notification the page raises (the browser's own still runs).
SPY = """() => {
  const Native = window.Notification;
  window.__notified = [];
  window.Notification = class extends Native {
    constructor(title, options) {
      super(title, options);
      window.__notified.push([title, options.body]);
    }
  };
  Object.defineProperty(window.Notification, 'permission', { get: () => Native.permission });
}"""


def test_a_critical_alert_notifies_beeps_and_counts_in_the_title_until_muted(
    pages: list[Page], browser: Browser, scene: Scene
) -> None:
    page = _open(pages, browser, scene)
    page.context.grant_permissions(["notifications"], origin=scene.hub.base_url)
    page.evaluate(SPY)
    assert js(page, "Notification.permission") == "granted"
    page.click("#feed-title")  # a user gesture: browsers start sound only after one
    api = scene.hub.client(Role.OPERATOR)
    site = {"site": scene.hub.site, "status": "new", "severity": "critical"}
    page.wait_for_function("(n) => document.title === `(${n}) gridward`", arg=_api_count(api, site))
    scene.cam.alert(kind=AlertKind.LOITERING, severity=Severity.CRITICAL, zone="north-gate")
    wait_outbox_empty(scene.cam)
    page.wait_for_function("() => window.__notified.length === 1")
    assert js(page, "window.__notified") == [
        ["New critical item", "Person loitering in north-gate"]
    ]
    assert js(page, "window.gridwardDiagnostics.feed().beeps") == 1
    page.wait_for_function("(n) => document.title === `(${n}) gridward`", arg=_api_count(api, site))
    # Muted: no sound, no notification; the title still counts.
    page.click("#feed-mute")
    expect(page.locator("#feed-mute")).to_have_attribute("aria-pressed", "true")
    scene.cam.alert(kind=AlertKind.LOITERING, severity=Severity.CRITICAL, zone="south-gate")
    wait_outbox_empty(scene.cam)
    count = _api_count(api, site)
    page.wait_for_function("(n) => document.title === `(${n}) gridward`", arg=count)
    assert js(page, "window.__notified.length") == 1
    assert js(page, "window.gridwardDiagnostics.feed().beeps") == 1
    # The mute survives a reload (localStorage); the headline follows the language.
    page.reload()
    page.wait_for_selector("#app-view[aria-busy='false']", state="attached")
    expect(page.locator("#feed-mute")).to_have_attribute("aria-pressed", "true")
    page.select_option("#app-view .lang-select", "zh-CN")
    item = page.locator(".feed-critical .alert-item", has_text="south-gate")
    expect(item.locator(".alert-title")).to_have_text("有人在 south-gate 徘徊")
    page.select_option("#app-view .lang-select", "en")
    expect(item.locator(".alert-title")).to_have_text("Person loitering in south-gate")
    page.click("#feed-mute")
    expect(page.locator("#feed-mute")).to_have_attribute("aria-pressed", "false")
    assert page.errors == []  # type: ignore[attr-defined]
