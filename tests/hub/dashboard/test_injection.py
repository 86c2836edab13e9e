"""Markup injected through every field a device or a user can set is shown as text.

A hostile (or merely careless) device, installer or operator puts HTML into each free-text
field the dashboard shows: the device's name and software version, an alert's title and
details, a grid cell's name and team, a warning reason, a point of interest's name and
properties, a user's display name, an acknowledgement note, and the hub's own error message
that quotes a bad POI file. Then a real Chromium opens every place these appear (the feed,
every detail panel, the search results, the device tooltip, the POI popup, the cell label,
the header, the import result, marker titles) in both languages. No script may run, no
injected element may exist, and each value must read exactly as it was entered.

Ids that become MQTT topic segments or URL paths (device, entity, zone, cell, POI ids,
usernames) cannot carry markup at all: the contract refuses it, checked here too."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect
from pydantic import ValidationError

from edge.protocol import (
    Alert,
    AlertKind,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    EntityKind,
    Location,
    Position,
    Severity,
    encode,
)
from edge.validators import utcnow
from hub.auth import Role
from hub.dashboard_config import DashboardConfig
from tests.hub.conftest import PASSWORD, RunningHub, start_hub, stop_hub
from tests.hub.dashboard.conftest import (
    District,
    detail_panel,
    offset,
    open_dashboard,
    wait_outbox_empty,
)
from tests.support.broker import BrokerHarness, unique_site
from tests.support.waiting import wait_until


def payload(field: str) -> str:
    """Markup that runs a script if parsed as HTML, plus an entity that must stay literal."""
    return (
        f"{field} <img src=x onerror=\"window.__pwned='{field}'\">"
        f'"><svg onload="window.__pwned=\'{field}\'"></svg> &amp; <b>bold</b>'
    )


# Device state's software version is at most 64 characters.
SHORT = "<img src=x onerror=window.__pwned=1>&amp;"

# What the page must never contain or have done: anything an injected tag would leave.
SCAN = """() => {
    const injected = [...document.querySelectorAll(
        '[onerror], [onload], img[src="x"], b, svg:not(.spark), script:not([type="module"])'
    )].map((el) => el.tagName + ' ' + (el.getAttribute('class') || ''));
    return {pwned: window.__pwned === undefined ? null : String(window.__pwned), injected};
}"""


def _assert_clean(page: Page, where: str) -> None:
    seen: dict[str, Any] = page.evaluate(SCAN)
    assert seen == {"pwned": None, "injected": []}, where


@pytest.fixture
def hostile(hub: RunningHub, district: District) -> dict[str, str]:
    """A district whose every free-text field holds markup; returns what was entered."""
    site = hub.site
    admin = hub.client(Role.ADMIN)
    commander = hub.client(Role.COMMANDER)
    values = {
        "display_name": payload("display name"),
        "device_name": payload("device name"),
        "sw_version": SHORT,
        "alert_title": payload("alert title"),
        "cell_name": payload("cell name"),
        "team": payload("team"),
        "reason": payload("warning reason"),
        "poi_name": payload("poi name"),
        "note": payload("ack note"),
    }
    admin.post(
        "/api/v1/users",
        json={
            "username": f"{site}-hostile",
            "password": PASSWORD,
            "role": "commander",
            "display_name": values["display_name"],
        },
    ).raise_for_status()
    cam = district.device(f"{site}-cam-x", "camera", offset(60, -60), name=values["device_name"])
    # The device itself reports its software version in its retained state.
    cam.bus.publish(
        cam.state_topic,
        encode(
            DeviceState(
                site=site,
                device=cam.device,
                state=DeviceStatus.ONLINE,
                kind=cam.kind,
                sw_version=SHORT,
            )
        ),
        qos=1,
        retain=True,
    )
    w, s = offset(-200, -150)
    e, n = offset(200, 150)
    cid = f"{site}-x1"
    commander.put(
        f"/api/v1/grid-cells/{cid}",
        json={
            "type": "Feature",
            "id": cid,
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
            },
            "properties": {"site": site, "name": values["cell_name"], "team": values["team"]},
        },
    ).raise_for_status()
    commander.post(
        f"/api/v1/grid-cells/{cid}/warning", json={"level": "red", "reason": values["reason"]}
    ).raise_for_status()
    lon, lat = offset(-120, 90)
    commander.post(
        "/api/v1/poi/import",
        params={"site": site},
        content=json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "id": "poi-x",
                        "geometry": {"type": "Point", "coordinates": [lon, lat]},
                        "properties": {
                            "name": values["poi_name"],
                            "category": "shelter",
                            "contact": payload("poi property"),
                        },
                    }
                ],
            }
        ).encode(),
        headers={"Content-Type": "application/geo+json"},
    ).raise_for_status()
    lon, lat = offset(20, -20)
    cam.alert(
        kind=AlertKind.INTRUSION,
        severity=Severity.HIGH,
        title=values["alert_title"],
        location=Location(lon=lon, lat=lat),
        details={"where": payload("alert detail")},
    )
    wait_outbox_empty(cam)
    wait_until(
        lambda: admin.get(f"/api/v1/devices/{cam.device}").json()["sw_version"] == SHORT,
        30,
        message="the hub to store the device's state",
    )
    values["cell_id"] = cid
    values["device"] = cam.device
    return values


def test_ids_that_reach_topics_or_urls_cannot_carry_markup(hub: RunningHub) -> None:
    """The fields the dashboard shows but that have no free text: refused at the boundary."""
    markup = '<img src=x onerror="window.__pwned=1">'
    admin = hub.client(Role.ADMIN)
    res = admin.post(
        "/api/v1/devices", json={"id": markup, "site": hub.site, "kind": "camera", "name": "x"}
    )
    assert res.status_code == 422
    res = admin.post(
        "/api/v1/users",
        json={"username": markup, "password": PASSWORD, "role": "operator"},
    )
    assert res.status_code == 422
    w, s = offset(0, 0)
    e, n = offset(10, 10)
    cell = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": {"site": hub.site, "name": "ok"},
    }
    assert admin.put("/api/v1/grid-cells/x-ok", json={**cell, "id": "x-ok"}).status_code == 200
    res = admin.put("/api/v1/grid-cells/x%3Cimg%3E", json={**cell, "id": "x<img>"})
    assert res.status_code == 422
    with pytest.raises(ValidationError):
        Alert(
            site=hub.site,
            device="d1",
            kind=AlertKind.INTRUSION,
            severity=Severity.HIGH,
            zone=markup,
        )
    with pytest.raises(ValidationError):
        Alert(
            site=hub.site,
            device="d1",
            kind=AlertKind.INTRUSION,
            severity=Severity.HIGH,
            entity=markup,
        )
    with pytest.raises(ValidationError):
        Position(entity=markup, entity_kind=EntityKind.OFFICER, lon=0.0, lat=0.0, ts=utcnow())
    with pytest.raises(ValidationError):
        DeviceState(
            site=hub.site,
            device="d1",
            state=DeviceStatus.ONLINE,
            kind=DeviceKind.CAMERA,
            sw_version="x" * 65,
        )


def test_markup_in_every_user_and_device_field_is_shown_as_text(
    pages: list[Page], browser: Browser, hub: RunningHub, hostile: dict[str, str]
) -> None:
    v = hostile
    page = open_dashboard(pages, browser, hub, Role.COMMANDER, username=f"{hub.site}-hostile")
    page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
    _assert_clean(page, "loaded")
    expect(page.locator("#who")).to_have_text(f"{v['display_name']} · Commander")

    # The feed and the alert's marker.
    item = page.locator("#feed-list .alert-item", has_text="alert title")
    # The headline is the catalogue's (js/alert-text.js); the device's own text is a note.
    expect(item.locator(".alert-note")).to_have_text(v["alert_title"])
    alert_marker = page.locator(".leaflet-marker-icon:has(.al)")
    expect(alert_marker).to_have_attribute(
        "title", re.compile(r"^High: .* — " + re.escape(v["alert_title"]) + "$")
    )
    # The alert's detail, then acknowledged with a note typed into the form.
    page.click("#feed-open-only")  # keep it in the feed once acknowledged
    item.locator(".alert-open").click()
    expect(detail_panel(page, "Alert").locator(".kv")).to_contain_text(v["alert_title"])
    _assert_clean(page, "alert detail")
    page.fill("#ack-note", v["note"])
    page.click("#detail .ack-detail")
    note = page.locator("#detail .notes li")
    expect(note).to_contain_text(v["note"])
    expect(note.locator("strong")).to_have_text(f"{hub.site}-hostile")
    expect(item.locator(".acked-by")).to_have_text(f"Acknowledged by {hub.site}-hostile")
    _assert_clean(page, "alert acknowledged with a note")

    # The device: its marker's tooltip, its label for screen readers, search, detail.
    dev = page.locator(".leaflet-marker-icon:has(.dev)")
    expect(dev.locator(".dev")).to_have_attribute(
        "aria-label", re.compile("^" + re.escape(f"Camera {v['device_name']} ") + r"\w+$")
    )
    expect(dev).to_have_attribute("title", v["device_name"])
    dev.hover()
    tooltip = page.locator(".leaflet-tooltip:not(.cell-label)")
    expect(tooltip.locator("strong")).to_have_text(v["device_name"])
    _assert_clean(page, "device tooltip")
    page.fill("#search-input", "cam-x")
    option = page.locator("#search-results [role=option]", has_text="device name")
    expect(option.locator("strong")).to_have_text(v["device_name"])
    _assert_clean(page, "search results")
    option.click()
    detail = detail_panel(page, "Device")
    expect(detail.locator(".detail-title")).to_contain_text(v["device_name"])
    expect(detail.locator("dd").nth(3)).to_have_text(SHORT)  # software
    _assert_clean(page, "device detail")

    # The grid cell: its permanent label, search, detail with team and warning reason.
    label = page.locator(".leaflet-tooltip.cell-label")
    expect(label).to_have_text(f"{v['cell_name']} · Red")
    page.fill("#search-input", v["cell_id"])
    option = page.locator("#search-results [role=option]", has_text="cell name")
    expect(option.locator("strong")).to_have_text(v["cell_name"])
    option.click()
    detail = detail_panel(page, "Grid cell")
    expect(detail.locator(".detail-title")).to_contain_text(v["cell_name"])
    expect(detail.locator("dd").nth(0)).to_have_text(v["team"])
    expect(detail.locator("dd").nth(2)).to_have_text(v["reason"])
    _assert_clean(page, "cell detail")

    # The point of interest: its marker, its popup, search.
    poi = page.locator(".leaflet-marker-icon:has(.poi)")
    expect(poi).to_have_attribute("title", v["poi_name"])
    poi.click()
    expect(page.locator(".leaflet-popup-content strong")).to_have_text(v["poi_name"])
    _assert_clean(page, "poi popup")
    page.fill("#search-input", "poi name")
    expect(page.locator("#search-results [role=option] strong")).to_have_text(v["poi_name"])
    _assert_clean(page, "poi search")
    page.keyboard.press("Escape")

    # The hub's error for a bad file quotes the file: shown as the hub said it.
    bad = "id,name,category,lon,lat\n" + f'"{SHORT}",x,place,114.05,22.54\n'
    page.set_input_files(
        "#poi-file",
        files=[FilePayload(name="bad.csv", mimeType="text/csv", buffer=bad.encode())],
    )
    refused = hub.client(Role.COMMANDER).post(
        "/api/v1/poi/import",
        params={"site": hub.site},
        content=bad.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert refused.status_code == 422 and SHORT in refused.json()["detail"]
    expect(page.locator("#poi-import-result")).to_have_text(
        f"Not imported: {refused.json()['detail']}"
    )
    _assert_clean(page, "poi import error")

    # Every label and tooltip is rebuilt in the other language: still text.
    page.select_option("#app-view .lang-select", "zh-CN")
    page.wait_for_function("() => document.documentElement.lang === 'zh-CN'")
    expect(label).to_have_text(f"{v['cell_name']} · 红色")
    expect(item.locator(".alert-note")).to_have_text(v["alert_title"])
    dev.hover()
    expect(tooltip.locator("strong")).to_have_text(v["device_name"])
    _assert_clean(page, "zh-CN")
    page.select_option("#app-view .lang-select", "en")
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    _assert_clean(page, "back to English")
    # The page's only errors: the refused import (the hub's 422), nothing from a payload.
    assert [e for e in page.errors if "422" not in e] == []  # type: ignore[attr-defined]


DOM_HELPERS = """async () => {
    const { h, svg, fill, escapeHtml } = await import('/ui/js/dom.js');
    const refused = (fn) => { try { fn(); return false; } catch { return true; } };
    const markup = '<img src=x onerror="window.__pwned=1">&amp;';
    const el = h('p', { title: markup }, markup, null, false, [h('b', null, 'x')]);
    const box = h('div');
    fill(box, markup, svg('svg', { 'aria-label': markup }));
    document.body.append(el, box);
    return {
        text: el.textContent, title: el.getAttribute('title'), kids: el.children.length,
        tag: el.firstElementChild.tagName, boxText: box.textContent,
        boxKids: [...box.childNodes].map((n) => n.nodeName),
        svgNs: box.lastChild.namespaceURI,
        onAttr: refused(() => h('a', { onclick: 'x()' })),
        onAttrUpper: refused(() => h('a', { OnMouseOver: 'x()' })),
        srcdoc: refused(() => h('iframe', { srcdoc: markup })),
        scriptHref: refused(() => h('a', { href: ' java\\tscript:alert(1)' })),
        scriptSrc: refused(() => h('img', { src: 'JavaScript:alert(1)' })),
        plainHref: refused(() => h('a', { href: '/api/v1/alerts/x/evidence' })),
        escaped: escapeHtml(`<a href="x" title='y'>&</a>`),
        injected: document.querySelectorAll('img[src="x"], [onerror]').length,
        pwned: window.__pwned === undefined ? null : String(window.__pwned),
    };
}"""


def test_dom_helpers_make_text_and_refuse_handlers_and_script_urls(
    pages: list[Page], browser: Browser, hub: RunningHub
) -> None:
    """js/dom.js itself, in Chromium: strings become text, never markup; event-handler
    attributes, srcdoc and javascript: URLs are refused; escapeHtml escapes all five."""
    page = browser.new_context().new_page()
    pages.append(page)
    page.goto(hub.base_url + "/")
    page.locator("#login-form").wait_for(state="visible")
    seen = page.evaluate(DOM_HELPERS)
    markup = '<img src=x onerror="window.__pwned=1">&amp;'
    assert seen == {
        "text": markup + "x",
        "title": markup,
        "kids": 1,
        "tag": "B",
        "boxText": markup,
        "boxKids": ["#text", "svg"],
        "svgNs": "http://www.w3.org/2000/svg",
        "onAttr": True,
        "onAttrUpper": True,
        "srcdoc": True,
        "scriptHref": True,
        "scriptSrc": True,
        "plainHref": False,
        "escaped": "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
        "injected": 0,
        "pwned": None,
    }


def test_tile_attribution_from_the_config_is_shown_as_text(
    pages: list[Page], browser: Browser, broker: BrokerHarness, tmp_path: Path
) -> None:
    """The one value Leaflet takes only as HTML (the tile source's attribution, from the hub's
    config) goes through escapeHtml: it reads as written and injects nothing."""
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    attribution = payload("attribution")
    running = start_hub(
        broker,
        unique_site(),
        tmp_path,
        ui=DashboardConfig(base_layer="local_tiles", tiles_dir=tiles, attribution=attribution),
    )
    try:
        page = open_dashboard(pages, browser, running, Role.OPERATOR)
        expect(page.locator(".leaflet-control-attribution")).to_have_text(attribution)
        _assert_clean(page, "attribution")
        # The empty tile tree answers 404 for every tile: those are the page's only errors.
        assert [e for e in page.errors if "404" not in e] == []  # type: ignore[attr-defined]
        page.context.close()
        pages.remove(page)
    finally:
        stop_hub(broker, running)
