"""The officer's phone HUD (the field page's "My dispatches", hub/dashboard/field/officer.js) in
real Chromium against a real hub: the phone's position from Playwright's geolocation, its
compass from a DeviceOrientationEvent. The officer sees their own dispatch and not another
officer's; the arrow turns by the bearing the glasses compute (edge/glasses/view.py) for two
known positions and headings, and by the bearing from north before the compass answers; the
answer buttons reach the hub; the duty switch; a new dispatch arrives live; the view fits a
phone and has no serious axe violation; a grid worker has no officer view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from edge.glasses.view import Pose, bearing_deg, distance_m, relative_bearing
from edge.validators import utcnow
from hub.auth import Role, create_user
from tests.hub.conftest import PASSWORD, RunningHub
from tests.hub.dashboard.conftest import closing_client, offset
from tests.hub.dashboard.test_dispatch_ui import dispatches_of, open_incident
from tests.hub.dashboard.test_field_page import PHONE, sign_in, watch_errors
from tests.hub.dashboard.test_mobile_a11y import NO_SIDEWAYS_SCROLL, serious_violations
from tests.support.waiting import wait_until

SCENE_AT = (300.0, 0.0)  # east, north metres from the map's centre
WEST_OF_SCENE = (150.0, 0.0)  # the scene is due east of here
SOUTH_OF_SCENE = (300.0, -120.0)  # the scene is due north of here
MARKUP = '<img src=x onerror="window.__pwned=1">Blocked fire exit'

# Every visible button narrower or lower than a fingertip's 44 CSS px.
SMALL_TARGETS = """() => [...document.querySelectorAll('#dispatches-view button, .tabs button')]
    .filter((b) => b.offsetParent !== null)
    .filter((b) => { const r = b.getBoundingClientRect(); return r.width < 44 || r.height < 44; })
    .map((b) => b.id || b.className)"""

# The arrow's on-screen rotation, read from the computed transform (what the officer sees).
ARROW_ANGLE = """(id) => {
    const el = document.querySelector(`li[data-id="${id}"] .arrow`);
    const m = new DOMMatrixReadOnly(getComputedStyle(el).transform);
    const deg = Math.atan2(m.b, m.a) * 180 / Math.PI;
    const note = el.closest('li').querySelector('.bearing-note').textContent;
    return {shown: (deg + 360) % 360, data: Number(el.dataset.rotation),
            relative: el.dataset.relative, note};
}"""

# Chromium's absolute orientation event: alpha counter-clockwise from north.
FACE = """(headingDeg) => window.dispatchEvent(new DeviceOrientationEvent(
    'deviceorientationabsolute',
    {alpha: (360 - headingDeg) % 360, beta: 0, gamma: 0, absolute: true}))"""


@dataclass(frozen=True)
class Scene:
    hub: RunningHub
    officer: str
    other: str
    incident: dict[str, Any]
    mine: str  # the officer's dispatch
    theirs: str  # the other officer's dispatch (another incident)
    theirs_incident: str


def _incident(hub: RunningHub, title: str, at: tuple[float, float]) -> dict[str, Any]:
    # Medium: below dispatch.min_level, so only the dispatch the test makes exists.
    return open_incident(hub, title, at, level="medium")


def _dispatch(hub: RunningHub, incident: str, officer: str, action: str = "verify") -> str:
    with closing_client(hub, Role.OPERATOR) as operator:
        # force: the officers have glasses but no fix yet, so the hub counts them offline.
        res = operator.post(
            f"/api/v1/incidents/{incident}/dispatches",
            json={"officer": officer, "action": action, "force": True},
        )
        res.raise_for_status()
        return str(res.json()["id"])


def bind_glasses(hub: RunningHub, *officers: str) -> None:
    """Register a pair of glasses for each officer, bind it, and put them on duty."""
    with closing_client(hub, Role.ADMIN) as admin:
        for name in officers:
            device = f"{name}-glasses"
            admin.post(
                "/api/v1/devices", json={"id": device, "site": hub.site, "kind": "glasses"}
            ).raise_for_status()
            admin.put(
                f"/api/v1/officers/{name}", json={"device": device, "on_duty": True}
            ).raise_for_status()


@pytest.fixture(scope="module")
def scene(dispatch_hub: RunningHub) -> Scene:
    hub = dispatch_hub
    officer, other = f"{hub.site}-officer", f"{hub.site}-officer2"
    with hub.service.store.engine.begin() as conn:
        create_user(conn, other, PASSWORD, Role.OFFICER)
    bind_glasses(hub, officer, other)
    incident = _incident(hub, "Fly-tipping at the east gate", SCENE_AT)
    mine = _dispatch(hub, incident["id"], officer)
    elsewhere = _incident(hub, "Somewhere else", (-300, 0))["id"]
    theirs = _dispatch(hub, elsewhere, other)
    return Scene(hub, officer, other, incident, mine, theirs, elsewhere)


def _phone(browser: Browser, contexts: list[BrowserContext], at: tuple[float, float]) -> Page:
    lon, lat = offset(*at)
    context = browser.new_context(
        viewport={"width": PHONE["width"], "height": PHONE["height"]},
        is_mobile=True,
        has_touch=True,
        locale="en-GB",
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 5},
        permissions=["geolocation"],
    )
    contexts.append(context)
    return context.new_page()


def _expected(at: tuple[float, float], heading: float | None) -> float:
    lon, lat = offset(*at)
    pose = Pose(lon=lon, lat=lat, fix_at=utcnow(), heading_deg=heading)
    target = offset(*SCENE_AT)
    if heading is None:
        return bearing_deg(lon, lat, *target)
    rel = relative_bearing(pose, target)[1]
    assert rel is not None
    return rel


def _close(a: float, b: float, tol: float = 0.15) -> bool:
    return abs((a - b + 180) % 360 - 180) <= tol


def test_the_officer_is_pointed_to_the_scene_answers_and_goes_off_duty(
    browser: Browser, contexts: list[BrowserContext], scene: Scene
) -> None:
    hub = scene.hub
    page = _phone(browser, contexts, WEST_OF_SCENE)
    errors = watch_errors(page)
    sign_in(page, hub, Role.OFFICER)
    # An officer lands on their dispatches; only their own is listed.
    expect(page.locator("#dispatches-view")).to_be_visible()
    cards = page.locator("#dispatch-list > li")
    expect(cards).to_have_count(1)
    assert cards.first.get_attribute("data-id") == scene.mine
    card = page.locator(f'li[data-id="{scene.mine}"]')
    expect(card.locator(".number")).to_have_text(scene.incident["number"])
    expect(card.locator(".sev")).to_have_text("Medium")  # the colour's word beside it
    expect(card.locator(".expected")).to_have_text("Go and check what is happening")

    # No compass yet: the arrow shows the bearing from north (due east: ~90), and says so.
    page.wait_for_function(
        '(id) => document.querySelector(`li[data-id="${id}"] .arrow`).dataset.rotation',
        arg=scene.mine,
    )
    seen = page.evaluate(ARROW_ANGLE, scene.mine)
    want = _expected(WEST_OF_SCENE, None)
    assert _close(want, 90, 0.5)
    assert seen["relative"] == "false" and "from north" in seen["note"]
    assert _close(seen["shown"], want) and _close(seen["data"], want), (seen, want)
    lon, lat = offset(*WEST_OF_SCENE)
    expect(card.locator(".distance")).to_have_text(
        f"{round(distance_m(lon, lat, *offset(*SCENE_AT)))} m"
    )

    # Facing north, the scene due east is 90 degrees to the right.
    page.evaluate(FACE, 0)
    seen = page.evaluate(ARROW_ANGLE, scene.mine)
    want = _expected(WEST_OF_SCENE, 0.0)
    assert seen["relative"] == "true" and "from where you face" in seen["note"]
    assert _close(seen["shown"], want) and _close(seen["data"], want), (seen, want)

    # Walked south of the scene and facing east: the scene (due north) is behind the left
    # shoulder, 270 degrees clockwise.
    page.context.set_geolocation(
        {
            "longitude": offset(*SOUTH_OF_SCENE)[0],
            "latitude": offset(*SOUTH_OF_SCENE)[1],
            "accuracy": 5,
        }
    )
    page.evaluate(FACE, 90)
    want = _expected(SOUTH_OF_SCENE, 90.0)
    assert _close(want, 270, 0.5)
    page.wait_for_function(
        '([id, want]) => Math.abs(Number(document.querySelector(`li[data-id="${id}"] .arrow`)'
        ".dataset.rotation) - want) < 0.2",
        arg=[scene.mine, want],
    )
    seen = page.evaluate(ARROW_ANGLE, scene.mine)
    assert _close(seen["shown"], want), (seen, want)

    # The phone fits: no sideways scroll, every button a fingertip wide; no serious axe finding.
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    assert page.evaluate(SMALL_TARGETS) == []
    assert serious_violations(page) == []

    # Answers reach the hub.
    card.locator('button[data-answer="acknowledge"]').click()
    expect(card.locator(".status")).to_have_text("Sent: Acknowledge")
    wait_until(
        lambda: dispatches_of(hub, scene.incident["id"])[0]["state"] == "acknowledged",
        10,
        message="the hub to hold the acknowledgement",
    )
    page.locator(f'li[data-id="{scene.mine}"] button[data-answer="on_my_way"]').click()
    wait_until(
        lambda: dispatches_of(hub, scene.incident["id"])[0]["last_answer"] == "on_my_way",
        10,
        message="the hub to hold 'on my way'",
    )
    with closing_client(hub, Role.OPERATOR) as operator:
        got = operator.get(f"/api/v1/incidents/{scene.incident['id']}").json()
    assert got["state"] == "in_progress"  # on my way moves the incident on
    assert got["assignee"] == scene.officer  # the acknowledgement assigned it

    # A new dispatch for this officer arrives without a reload (live, before the 10 s poll).
    # Its title carries markup: the card shows it as text and runs nothing.
    second = _dispatch(hub, _incident(hub, MARKUP, (250, 80))["id"], scene.officer)
    expect(page.locator(f'li[data-id="{second}"]')).to_be_visible(timeout=8000)
    expect(cards).to_have_count(2)
    expect(page.locator(f'li[data-id="{second}"] .title')).to_have_text(MARKUP)
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.locator("#dispatch-list img[src='x']").count() == 0
    assert page.locator(f'li[data-id="{scene.theirs}"]').count() == 0

    # The switch shows the duty the hub holds (GET /me/duty: nothing was stored on this
    # phone), then goes off duty, as the hub records it.
    duty = page.locator("#duty")
    expect(duty).to_have_attribute("aria-checked", "true")
    expect(duty).to_have_attribute("data-duty", "on")
    duty.click()
    expect(duty).to_have_attribute("aria-checked", "false")
    with closing_client(hub, Role.OPERATOR) as operator:
        officers = {o["username"]: o for o in operator.get("/api/v1/officers").json()}
    assert officers[scene.officer]["on_duty"] is False
    assert officers[scene.officer]["availability"] == "off_duty"
    assert [e for e in errors if "401 (Unauthorized)" not in e] == []


def test_answers_for_another_officers_dispatch_are_refused(scene: Scene) -> None:
    before = dispatches_of(scene.hub, scene.theirs_incident)
    with closing_client(scene.hub, Role.OFFICER) as officer:
        res = officer.post(
            f"/api/v1/dispatches/{scene.theirs}/answers", json={"answer": "acknowledge"}
        )
        assert res.status_code == 404
        mine = [d["id"] for d in officer.get("/api/v1/dispatches/mine").json()]
    assert scene.theirs not in mine
    assert dispatches_of(scene.hub, scene.theirs_incident) == before  # nothing changed


def test_a_grid_worker_has_no_officer_view(
    browser: Browser, contexts: list[BrowserContext], scene: Scene
) -> None:
    page = _phone(browser, contexts, WEST_OF_SCENE)
    errors = watch_errors(page)
    sign_in(page, scene.hub, Role.WORKER)
    expect(page.locator("#report-view")).to_be_visible()
    expect(page.locator('.tab[data-view="dispatches"]')).to_be_hidden()
    expect(page.locator("#dispatches-view")).to_be_hidden()
    assert page.locator("#dispatch-list > li").count() == 0
    with closing_client(scene.hub, Role.WORKER) as worker:
        assert worker.get("/api/v1/dispatches/mine").status_code == 403
    assert [e for e in errors if "401 (Unauthorized)" not in e] == []
