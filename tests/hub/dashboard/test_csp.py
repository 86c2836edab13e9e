"""The dashboard under the hub's Content-Security-Policy in real Chromium: it logs in, loads its
layers, opens the live stream, shows evidence, acknowledges an alert (a cookie POST that must
carry its Origin) and logs out, and the browser reports no policy violation at all."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from edge.protocol import AlertKind, Evidence, Location, Severity
from hub.auth import Role
from tests.hub.conftest import PASSWORD, RunningHub
from tests.hub.dashboard.conftest import (
    District,
    evidence_jpeg,
    offset,
    wait_loaded,
    wait_outbox_empty,
)

# Runs before any page script, so even a violation during the first parse is caught.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
    window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_dashboard_works_under_the_policy_with_no_violation(
    pages: list[Page], browser: Browser, hub: RunningHub, district: District
) -> None:
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    pages.append(page)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: console.append(str(err)))
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))

    first = page.goto(hub.base_url + "/")
    assert first is not None
    assert "frame-ancestors 'none'" in first.headers["content-security-policy"]
    page.locator("#login-user").wait_for(state="visible")
    page.fill("#login-user", f"{hub.site}-operator")
    page.fill("#login-pass", PASSWORD)
    page.press("#login-pass", "Enter")
    wait_loaded(page)
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
    assert any(url.startswith(f"ws://127.0.0.1:{hub.port}/api/v1/live") for url in sockets)

    gate = district.device(f"{hub.site}-gate", "wristband", offset(-40, 30))
    lon, lat = offset(-35, 25)
    alert_id = gate.alert(
        kind=AlertKind.SOS,
        severity=Severity.CRITICAL,
        title="SOS under CSP",
        location=Location(lon=lon, lat=lat),
        entity="band-12",
        evidence=Evidence.from_jpeg(evidence_jpeg(), width=240, height=180),
    ).id
    wait_outbox_empty(gate)
    item = page.locator("#feed-list .alert-item", has_text="SOS under CSP")
    item.wait_for(timeout=15_000)
    item.locator(".alert-open").click()
    page.wait_for_function(
        "() => document.querySelector('#detail .evidence img')?.naturalWidth === 240"
    )
    item.locator("button.ack").click()
    # A row acknowledged with the mouse stays until the pointer leaves the feed (js/feed.js).
    page.mouse.move(1, 1)
    expect(item).to_have_count(0, timeout=15_000)
    admin = hub.client(Role.ADMIN)
    assert admin.get(f"/api/v1/alerts/{alert_id}").json()["status"] == "acknowledged"

    violations = page.evaluate("window.__csp")
    assert violations == []
    # Before login the page asks who is logged in and gets the expected 401; not an error.
    errors = [e for e in console if "401 (Unauthorized)" not in e]
    assert errors == []
    # The dashboard's own cookie POST carried its Origin: the CSRF guard refused nothing.
    assert admin.get("/api/v1/stats").json()["web_refused"] == {}

    # The recorder works, and the policy holds in the browser: an inline script is refused.
    page.evaluate(
        """() => {
            const s = document.createElement('script');
            s.textContent = 'window.__ran = true';
            document.body.appendChild(s);
        }"""
    )
    page.wait_for_function("() => window.__csp.length > 0")
    assert page.evaluate("() => window.__ran") is None
    assert page.evaluate("window.__csp")[0].startswith("script-src")
