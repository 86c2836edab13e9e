"""The dashboard on a phone (375 x 667: no sideways scroll, nothing clipped, 44 px touch
targets) and an accessibility check of every page the hub serves: axe-core (from npm, the
version in hub/dashboard/package.json) run in real Chromium on the dashboard, the field page
and the wall display (when there is one), with no serious or critical violation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from hub.auth import Role
from tests.hub.conftest import PASSWORD, RunningHub
from tests.hub.dashboard.conftest import open_dashboard
from tests.hub.dashboard.test_field_page import SMALL_TARGETS
from tests.hub.dashboard.test_warnings_panel import _cell

DASHBOARD = Path(__file__).resolve().parents[3] / "hub" / "dashboard"
AXE = DASHBOARD / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")

# Every visible control whose box reaches past the viewport's right edge (a clipped action).
CLIPPED = """() => {
    const out = [];
    const w = document.documentElement.clientWidth;
    for (const el of document.querySelectorAll('button, select, input, textarea, a, label')) {
        const r = el.getBoundingClientRect();
        if (!r.width || !r.height || el.closest('.sr-only, .skip-link')) continue;
        if (r.right > w + 0.5 || r.left < -0.5) out.push(`${el.id || el.className || el.tagName}`);
    }
    return out;
}"""

NO_SIDEWAYS_SCROLL = (
    "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
)


def axe_source() -> str:
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `npm ci` in hub/dashboard (scripts/bootstrap.sh)")
    return AXE.read_text(encoding="utf-8")


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now. Injected through
    the DevTools protocol (evaluate), which the page's CSP does not govern: the pages keep
    their real policy."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result: dict[str, Any] = page.evaluate(
        "async () => axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        f"{v['impact']} {v['id']}: {v['help']} at "
        + json.dumps([n["target"] for n in v["nodes"]][:5])
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


def test_the_dashboard_fits_a_phone(
    pages: list[Page], browser: Browser, module_hub: RunningHub
) -> None:
    hub = module_hub
    name = f"Phone cell {hub.site}"
    cid = f"{hub.site}-phone"
    _cell(hub, cid, name, -900)
    page = open_dashboard(pages, browser, hub, Role.COMMANDER, width=375, height=667)
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "the dashboard scrolls sideways on a phone"
    assert page.evaluate(CLIPPED) == []
    assert page.evaluate(SMALL_TARGETS) == []
    # A grid cell's detail, with the commander's warning override form: its actions too.
    page.fill("#search-input", name)
    option = page.locator("#search-results [role=option]", has_text=name)
    option.first.click()
    page.locator("#detail").wait_for(state="visible")
    page.locator("#detail button").first.wait_for(state="visible")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "the cell's detail scrolls sideways"
    assert page.evaluate(CLIPPED) == []
    assert page.evaluate(SMALL_TARGETS) == []
    assert page.errors == []  # type: ignore[attr-defined]


def test_no_serious_accessibility_violations(
    pages: list[Page], browser: Browser, contexts: list[BrowserContext], module_hub: RunningHub
) -> None:
    hub = module_hub
    found: dict[str, list[str]] = {}

    login = browser.new_context(viewport={"width": 1280, "height": 800})
    contexts.append(login)
    page = login.new_page()
    page.goto(hub.base_url + "/")
    page.locator("#login-user").wait_for(state="visible")
    found["dashboard login"] = serious_violations(page)

    for width, height in ((1600, 900), (375, 667)):
        page = open_dashboard(pages, browser, hub, Role.OPERATOR, width=width, height=height)
        found[f"dashboard {width}x{height}"] = serious_violations(page)

    field = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    contexts.append(field)
    page = field.new_page()
    page.goto(hub.base_url + "/ui/field/")
    page.locator("#login-user").wait_for(state="visible")
    found["field login"] = serious_violations(page)
    page.fill("#login-user", f"{hub.site}-{Role.WORKER.value}")
    page.fill("#login-pass", PASSWORD)
    page.press("#login-pass", "Enter")
    page.locator("#app-view").wait_for(state="visible")
    for view in ("report", "reports", "tasks"):
        page.click(f"[data-view={view}]")
        found[f"field {view}"] = serious_violations(page)

    if (DASHBOARD / "wall.html").exists():
        page = open_dashboard(pages, browser, hub, Role.COMMANDER)
        page.goto(hub.base_url + "/ui/wall.html")
        page.wait_for_load_state("networkidle")
        found["wall"] = serious_violations(page)

    assert {name: v for name, v in found.items() if v} == {}
