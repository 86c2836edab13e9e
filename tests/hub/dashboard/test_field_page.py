"""The grid worker's field page (/ui/field/) in real Chromium, with Chromium's fake camera and
microphone and a position from the browser context: a report filed offline, with a photo and
a voice note, survives a reload served by the service worker and arrives at the hub exactly
once when the phone is back online (two open tabs sending at the same moment); "my tasks"
with accept, in progress and done; a phone's viewport in both languages."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from hub.auth import Role
from tests.hub.conftest import PASSWORD, RunningHub
from tests.hub.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS, offset
from tests.hub.dashboard.test_panels import SCAN_TEXT, _catalogue
from tests.support.images import small_jpeg

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
PHONE = {"width": 390, "height": 844}
GPS = offset(60, 40)
COORDS = re.compile(r"(-?\d+\.\d+), (-?\d+\.\d+)")


@pytest.fixture
def media_browser() -> Iterator[Browser]:
    """One Chromium per test (the leak check), with the fake media devices."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *FAKE_MEDIA]
        )
        yield chromium
        chromium.close()


@contextmanager
def _client(hub: RunningHub, role: Role) -> Iterator[httpx.Client]:
    """A client closed at once: the module's hub outlives each test's leak check."""
    client = hub.client(role)
    try:
        yield client
    finally:
        client.close()
        hub.clients.remove(client)


def phone(
    browser: Browser, contexts: list[BrowserContext], *, locale: str = "en-GB"
) -> BrowserContext:
    context = browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale=locale,
        geolocation={"longitude": GPS[0], "latitude": GPS[1], "accuracy": 12},
        permissions=["geolocation", "microphone"],
    )
    contexts.append(context)
    return context


def watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def sign_in(page: Page, hub: RunningHub, role: Role = Role.WORKER) -> None:
    page.goto(hub.base_url + "/ui/field/")
    page.locator("#login-user").wait_for(state="visible")
    page.fill("#login-user", f"{hub.site}-{role.value}")
    page.fill("#login-pass", PASSWORD)
    page.press("#login-pass", "Enter")
    page.locator("#app-view").wait_for(state="visible")


def wait_form_ready(page: Page) -> None:
    """The report form's photo, locate and send handlers are bound once its vocabulary has
    loaded (the categories are filled in the same step): before, a tap on Send is lost."""
    expect(page.locator("#category option:not([value=''])").first).to_be_attached()


def _expected_errors(errors: list[str]) -> list[str]:
    """Without the errors a page must show: the 401 before signing in, failed fetches while
    the context is offline."""
    return [
        e
        for e in errors
        if "401 (Unauthorized)" not in e and "net::ERR_INTERNET_DISCONNECTED" not in e
    ]


def test_a_report_filed_offline_arrives_once_with_photo_and_voice(
    media_browser: Browser, contexts: list[BrowserContext], module_hub: RunningHub
) -> None:
    hub = module_hub
    context = phone(media_browser, contexts)
    page = context.new_page()
    errors = watch_errors(page)
    sign_in(page, hub)
    wait_form_ready(page)
    # The service worker has installed the shell and controls the page: now the phone may
    # lose its network.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)
    context.set_offline(True)
    expect(page.locator("#net")).to_have_attribute("data-online", "false")

    text = f"Garbage piled up by the east gate {hub.site}"
    page.fill("#description", text)
    page.select_option("#category", "garbage")
    page.click("#locate")
    expect(page.locator("#place-text")).to_contain_text("within 12 m")
    # Correct the position on the map: a tap 40 px east of the marker (the map centres on it).
    box = page.locator("#place-map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2)
    expect(page.locator("#place-text")).to_contain_text("set on the map")
    m = COORDS.search(page.locator("#place-text").inner_text())
    assert m
    placed_lat, placed_lon = float(m.group(1)), float(m.group(2))
    assert placed_lon > GPS[0]  # east of the GPS fix

    page.set_input_files(
        "#photo-input",
        files=[{"name": "gate.jpg", "mimeType": "image/jpeg", "buffer": small_jpeg(320, 240)}],
    )
    expect(page.locator("#photo-list img")).to_have_count(1)
    page.click("#record")
    expect(page.locator("#record")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#record-time")).to_have_text(re.compile(r"^[1-9]\d* s$"))
    page.click("#record")
    expect(page.locator("#voice-preview audio")).to_have_count(1)
    page.click("#send")
    expect(page.locator("#report-done")).to_contain_text("Saved on this phone")
    expect(page.locator("#queue-count")).to_have_text("1")

    with _client(hub, Role.WORKER) as worker:

        def arrived() -> list[dict[str, Any]]:
            items = worker.get("/api/v1/field-reports/mine", params={"limit": 200}).json()
            return [r for r in items["items"] if r["description"] == text]

        assert arrived() == []
        # The reload comes from the service worker's cache: there is no network.
        reloaded = page.reload()
        assert reloaded is not None
        assert reloaded.from_service_worker
        page.locator("#app-view").wait_for(state="visible")
        expect(page.locator("#queue-count")).to_have_text("1")
        # A second tab: both see the network come back and both try to send the queue.
        other = context.new_page()
        other_errors = watch_errors(other)
        other.goto(hub.base_url + "/ui/field/")
        other.locator("#app-view").wait_for(state="visible")
        assert arrived() == []

        context.set_offline(False)
        page.click("[data-view=reports]")
        sent = page.locator("#report-list .report", has_text=text)
        expect(sent.locator(".state")).to_have_attribute("data-state", "sent", timeout=15_000)
        expect(other.locator("#queue-count")).to_have_text("", timeout=15_000)
        reports = arrived()
        assert len(reports) == 1, reports
        report = reports[0]
        expect(sent.locator(".number")).to_have_text(report["number"])
        expect(sent.locator(".status")).to_have_text("Received")
        assert report["photo_count"] == 1
        assert report["has_voice"] is True
        assert report["category"] == "garbage"
        assert report["category_source"] == "reporter"
        assert report["location_source"] == "given"
        assert report["lon"] == pytest.approx(placed_lon, abs=1e-6)
        assert report["lat"] == pytest.approx(placed_lat, abs=1e-6)

        detail = worker.get(f"/api/v1/field-reports/{report['id']}").json()
        kinds = sorted(a["content_type"] for a in detail["attachments"])
        assert kinds == ["audio/webm", "image/jpeg"]

        # Another reload and a flush find nothing left to send: still one report.
        page.reload()
        page.locator("#app-view").wait_for(state="visible")
        expect(page.locator("#report-list .report", has_text=text)).to_have_count(1)
        assert len(arrived()) == 1

    assert _expected_errors(errors) == []
    assert _expected_errors(other_errors) == []


def test_the_category_is_suggested_from_the_description(
    media_browser: Browser, contexts: list[BrowserContext], module_hub: RunningHub
) -> None:
    hub = module_hub
    page = phone(media_browser, contexts).new_page()
    sign_in(page, hub)
    page.fill("#description", "垃圾堆放在市场东门 很久没人清理")
    expect(page.locator("#category")).to_have_value("garbage")
    expect(page.locator("#suggestion")).to_contain_text("Garbage")


def _incident(client: httpx.Client, hub: RunningHub, title: str, assignee: str) -> dict[str, Any]:
    lon, lat = offset(10, 10)
    res = client.post(
        "/api/v1/incidents",
        json={
            "site": hub.site,
            "category": "garbage",
            "level": "medium",
            "title": title,
            "lon": lon,
            "lat": lat,
        },
    )
    res.raise_for_status()
    opened = res.json()
    res = client.post(
        f"/api/v1/incidents/{opened['id']}/assign",
        json={"assignee": assignee, "version": opened["version"]},
    )
    res.raise_for_status()
    return dict(res.json())


def test_my_tasks_accept_in_progress_done(
    media_browser: Browser, contexts: list[BrowserContext], module_hub: RunningHub
) -> None:
    hub = module_hub
    worker_name = f"{hub.site}-worker"
    with _client(hub, Role.COMMANDER) as commander, _client(hub, Role.WORKER) as worker:
        mine = _incident(commander, hub, f"Overflowing bins <b>{hub.site}</b>", worker_name)
        theirs = _incident(commander, hub, "Somebody else's task", f"{hub.site}-officer")

        page = phone(media_browser, contexts).new_page()
        errors = watch_errors(page)
        sign_in(page, hub)
        page.click("[data-view=tasks]")
        card = page.locator("#task-list .task", has_text=mine["number"])
        expect(card).to_have_count(1)
        expect(card).to_contain_text(f"Overflowing bins <b>{hub.site}</b>")  # as text
        expect(page.locator("#task-list .task", has_text=theirs["number"])).to_have_count(0)

        card.locator("textarea").fill("On my way")
        card.locator(".task-accept").click()
        expect(card.locator(".task-status")).to_have_text("Accepted.")
        card.locator(".task-start").click()
        expect(card.locator(".state")).to_have_attribute("data-state", "in_progress")
        card.locator(".task-done").click()  # without a note: refused on the page
        expect(card.locator(".error")).to_contain_text("Say what was done")
        card.locator("textarea").fill("Bins emptied, area swept")
        card.locator(".task-done").click()
        expect(card.locator(".state")).to_have_attribute("data-state", "resolved")
        expect(card.locator("button")).to_have_count(0)

        detail = commander.get(f"/api/v1/incidents/{mine['id']}").json()
        assert detail["state"] == "resolved"
        events = [(e["kind"], e["actor"], e["text"]) for e in detail["timeline"]]
        assert ("accepted", worker_name, "On my way") in events
        assert any(
            kind == "state" and text == "Bins emptied, area swept" for kind, _, text in events
        )

        # The API gives a worker their own tasks and nothing else.
        assert worker.get(f"/api/v1/tasks/{theirs['id']}").status_code == 404
        res = worker.post(f"/api/v1/tasks/{theirs['id']}/accept", json={"note": "mine now"})
        assert res.status_code == 404
        res = worker.post(f"/api/v1/tasks/{theirs['id']}/done", json={"version": 2, "note": "done"})
        assert res.status_code == 404
        assert worker.get("/api/v1/incidents").status_code == 403
        after = commander.get(f"/api/v1/incidents/{theirs['id']}").json()
        assert after["state"] == "assigned"
        assert [e for e in after["timeline"] if e["actor"] == worker_name] == []
        # Accepting twice the task that is already in progress is a conflict, not a new event.
        assert worker.post(f"/api/v1/tasks/{mine['id']}/accept", json={}).status_code == 409
    assert _expected_errors(errors) == []


@pytest.mark.parametrize("locale", ["en-GB", "zh-CN"])
def test_the_field_page_fits_a_phone(
    media_browser: Browser, contexts: list[BrowserContext], module_hub: RunningHub, locale: str
) -> None:
    hub = module_hub
    page = phone(media_browser, contexts, locale=locale).new_page()
    sign_in(page, hub)
    lang = page.evaluate("document.documentElement.lang")
    assert lang == ("zh-CN" if locale == "zh-CN" else "en")
    for view in ("report", "reports", "tasks"):
        page.click(f"[data-view={view}]")
        fits = page.evaluate(
            "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        assert fits, f"the {view} view scrolls sideways"
        small = page.evaluate(SMALL_TARGETS)
        assert small == [], f"touch targets under 44 px in the {view} view: {small}"
        if locale == "zh-CN":
            assert english_left(page, hub) == [], f"English in the {view} view"


def english_left(page: Page, hub: RunningHub) -> list[tuple[str, str]]:
    """Visible texts of the page with Latin words that are neither the Chinese catalogue's
    own (GeoJSON, MB...) nor data (the brand, language names, user and site names)."""
    zh = _catalogue("zh-CN")
    allowed = {w for v in zh.values() for w in re.findall(r"[A-Za-z]+", re.sub(r"\{\w+\}", "", v))}
    allowed |= {"gridward", "English", "Leaflet"}
    site_ids = re.compile(re.escape(hub.site) + r"[\w-]*")
    left = []
    for where, text in page.evaluate(SCAN_TEXT):
        words = [w for w in re.findall(r"[A-Za-z]+", site_ids.sub(" ", text)) if w not in allowed]
        if words:
            left.append((where, text))
    return left


# Every visible control a finger must hit, with its size when under 44 x 44 CSS px (a check
# box inside its label is hit through the label).
SMALL_TARGETS = """() => {
    const out = [];
    const sel = 'button, select, textarea, input:not([type=file]):not(.sr-only), .file-button';
    for (const el of document.querySelectorAll(sel)) {
        const box = ['checkbox', 'radio'].includes(el.type) && el.closest('label');
        const r = (box || el).getBoundingClientRect();
        if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
        if (r.width < 44 || r.height < 44) {
            const name = el.id || el.className || el.tagName;
            out.push(`${name} ${Math.round(r.width)}x${Math.round(r.height)}`);
        }
    }
    return out;
}"""


def test_the_form_vocabulary_is_the_reportable_categories(module_hub: RunningHub) -> None:
    with _client(module_hub, Role.WORKER) as worker, _client(module_hub, Role.INSTALLER) as other:
        form = worker.get("/api/v1/field-reports/form").json()
        ids = [c["id"] for c in form["categories"]]
        assert "garbage" in ids
        assert "watchlist_match" not in ids  # raised from device alerts only
        garbage = next(c for c in form["categories"] if c["id"] == "garbage")
        assert garbage["names"] == {"en": "Garbage or illegal dumping", "zh-CN": "垃圾堆放"}
        assert form["default_level"] == "medium"
        assert form["max_photos"] == 5
        assert other.get("/api/v1/field-reports/form").status_code == 403


def test_a_refused_report_is_shown_and_the_queue_goes_on(
    media_browser: Browser, contexts: list[BrowserContext], module_hub: RunningHub
) -> None:
    """A "photo" that is a text file passes the page's size check but not the hub's decoder:
    the report is marked refused with the hub's sentence, is not resent, and the next report
    still goes through."""
    hub = module_hub
    with _client(hub, Role.ADMIN) as admin:
        before = admin.get("/api/v1/stats").json()["field_reports"]
        page = phone(media_browser, contexts).new_page()
        errors = watch_errors(page)
        sign_in(page, hub)
        wait_form_ready(page)
        page.fill("#description", f"Broken streetlight {hub.site} (bad photo)")
        page.set_input_files(
            "#photo-input",
            files=[{"name": "x.jpg", "mimeType": "image/jpeg", "buffer": b"<svg onload=x>"}],
        )
        page.click("#send")
        page.fill("#description", f"Broken streetlight {hub.site} (no photo)")
        page.click("#send")
        page.click("[data-view=reports]")
        bad = page.locator("#report-list .report", has_text="(bad photo)")
        good = page.locator("#report-list .report", has_text="(no photo)")
        expect(bad.locator(".state")).to_have_attribute("data-state", "refused")
        expect(bad.locator(".error")).to_contain_text("photo")
        expect(good.locator(".state")).to_have_attribute("data-state", "sent")
        after = admin.get("/api/v1/stats").json()["field_reports"]
        assert after.get("refused_photo_refused", 0) == before.get("refused_photo_refused", 0) + 1
        # Reopening the page sends nothing again: the refused report stays refused.
        page.reload()
        page.locator("#app-view").wait_for(state="visible")
        page.click("[data-view=reports]")
        expect(bad.locator(".state")).to_have_attribute("data-state", "refused")
        again = admin.get("/api/v1/stats").json()["field_reports"]
        assert again.get("refused_photo_refused", 0) == after.get("refused_photo_refused", 0)
    # The refusal itself is the 422 the console reports; nothing else went wrong.
    assert [e for e in _expected_errors(errors) if "422" not in e] == []


def test_the_page_is_installable(module_hub: RunningHub) -> None:
    """The manifest's start URL and scope are the page, and its icons are what they claim."""
    with httpx.Client(base_url=module_hub.base_url, timeout=30) as anon:
        manifest = anon.get("/ui/field/manifest.json").json()
        assert manifest["start_url"] == manifest["scope"] == "/ui/field/"
        assert manifest["display"] == "standalone"
        assert anon.get(manifest["start_url"]).status_code == 200
        for icon in manifest["icons"]:
            res = anon.get(icon["src"])
            assert res.status_code == 200, icon["src"]
            if icon["type"] == "image/png":
                with Image.open(io.BytesIO(res.content)) as img:
                    assert f"{img.width}x{img.height}" == icon["sizes"]
            else:
                assert res.content.startswith(b"<svg")
