"""A map you can read (issue 13, item 6), in a real Chromium against a real hub: zones and
camera lines drawn as layers that toggle, two devices at one spot both clickable, an anonymous
track that stops fades and then disappears, the device summary with per-kind health ("not
reported" when missing), the site's own MBTiles base map served by the hub, the scale bar, and
warning colours with contrast and text labels."""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from edge.protocol import EntityKind
from hub.auth import Role
from hub.dashboard_config import DashboardConfig
from tests.hub.conftest import RunningHub
from tests.hub.dashboard.conftest import (
    ORIGIN,
    District,
    closing_client,
    colour_near,
    detail_panel,
    map_view,
    offset,
    open_dashboard,
    pinned_hub,
    position,
    shows_colour,
)
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

TRACK_FADE_S = 20.0
TRACK_REMOVE_S = 60.0
TILE_Z = 16
TILE_CENTRE = (0, 160, 60)  # the tile that holds ORIGIN, in RGB
TILE_OTHER = (160, 40, 160)
MAP_BG = "#1b2633"  # .leaflet-container in css/app.css


def _tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    s = math.sin(math.radians(lat))
    y = int((0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n)
    return x, y


def _png(rgb: tuple[int, int, int]) -> bytes:
    img = np.zeros((256, 256, 3), np.uint8)
    img[:, :] = rgb[::-1]  # cv2 is BGR
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return bytes(buf)


def make_mbtiles(path: Path) -> None:
    """An MBTiles 1.3 file (TMS rows) whose tile at ORIGIN differs from its neighbours: a
    wrong row flip would show the neighbour's colour, or none."""
    cx, cy = _tile_xy(*ORIGIN, TILE_Z)
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE metadata (name text, value text);"
        "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer,"
        " tile_data blob);"
    )
    conn.executemany(
        "INSERT INTO metadata VALUES (?, ?)", [("name", "test"), ("format", "png")]
    )
    centre, other = _png(TILE_CENTRE), _png(TILE_OTHER)
    rows = []
    for x in range(cx - 6, cx + 7):
        for y in range(cy - 4, cy + 5):
            data = centre if (x, y) == (cx, cy) else other
            rows.append((TILE_Z, x, (1 << TILE_Z) - 1 - y, data))
    # One tile that is not an image at all (a vector tile, say): never served as one.
    rows.append((TILE_Z, 0, 0, b"\x1f\x8b not an image"))
    conn.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def map_hub(
    broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    """One hub for the module with the site's own MBTiles base map and short track ages."""
    tmp = tmp_path_factory.mktemp("maphub")
    tiles = tmp / "district.mbtiles"
    make_mbtiles(tiles)
    ui = DashboardConfig(
        base_layer="local_tiles",
        mbtiles_file=tiles,
        tile_ext="png",
        attribution="District survey office",
        max_zoom=19,
        track_fade_after_s=TRACK_FADE_S,
        track_remove_after_s=TRACK_REMOVE_S,
    )
    with pinned_hub(broker, tmp, ui=ui) as running:
        yield running


@contextmanager
def _district(hub: RunningHub, broker: BrokerHarness, tmp_path: Path) -> Iterator[District]:
    """Agents for one test on the module's hub; its agents and HTTP clients end with it."""
    known = len(hub.clients)
    district = District(hub, broker, tmp_path)
    try:
        yield district
    finally:
        district.stop()
        for client in hub.clients[known:]:
            client.close()
        del hub.clients[known:]


def _provision(hub: RunningHub, device: str, kind: str, at: tuple[float, float]) -> None:
    with closing_client(hub) as admin:
        admin.post(
            "/api/v1/devices",
            json={
                "id": device,
                "site": hub.site,
                "kind": kind,
                "name": device.title(),
                "location": {"lon": at[0], "lat": at[1]},
            },
        ).raise_for_status()


def _go(page: Page, lon: float, lat: float, zoom: float) -> None:
    """Point the map at a view the way a bookmark does (#map=zoom/lat/lon)."""
    page.evaluate(f"location.hash = '#map={zoom}/{lat:.6f}/{lon:.6f}'")
    page.wait_for_function(f"() => location.hash.startsWith('#map={zoom}/')")
    page.wait_for_timeout(0)


def _errors(page: Page) -> list[str]:
    """The page's errors but the tiles the small MBTiles file does not hold (404s)."""
    return [e for e in page.errors if "404" not in e]  # type: ignore[attr-defined]


def _hex(rgb: str) -> tuple[int, int, int]:
    return int(rgb[1:3], 16), int(rgb[3:5], 16), int(rgb[5:7], 16)


def _luminance(rgb: tuple[int, int, int]) -> float:
    def lin(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(_hex(a)), _luminance(_hex(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# -- the site's own base map -------------------------------------------------------------------


def test_mbtiles_tiles_are_served_behind_the_login_and_flipped_to_xyz(map_hub: RunningHub) -> None:
    cx, cy = _tile_xy(*ORIGIN, TILE_Z)
    url = f"/api/v1/ui/tiles/{TILE_Z}/{cx}/{cy}.png"
    with closing_client(map_hub, None) as anonymous:
        assert anonymous.get(url).status_code == 401
    with closing_client(map_hub, Role.OPERATOR) as op:
        res = op.get(url)
        assert res.status_code == 200
        assert res.headers["content-type"] == "image/png"
        img = cv2.imdecode(np.frombuffer(res.content, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None
        assert tuple(int(c) for c in img[128, 128][::-1]) == TILE_CENTRE  # not a neighbour
        assert op.get(f"/api/v1/ui/tiles/{TILE_Z}/{cx + 40}/{cy}.png").status_code == 404
        # The row that holds the non-image bytes (TMS row 0 is XYZ y = 2^z - 1).
        bad = op.get(f"/api/v1/ui/tiles/{TILE_Z}/0/{(1 << TILE_Z) - 1}.png")
        assert bad.status_code == 404
        assert "not a raster image" in bad.json()["detail"]
        assert op.get(f"/api/v1/ui/tiles/{TILE_Z}/{cx}/{cy}.jpg").status_code == 404
        assert op.get("/api/v1/ui/tiles/3/8/0.png").status_code == 404  # outside the grid
        config = op.get("/api/v1/ui/config").json()
        assert config["base_layer"]["url"] == "/api/v1/ui/tiles/{z}/{x}/{y}.png"
        assert "mbtiles" not in str(config).lower()  # no file paths reach the browser


def test_the_base_map_from_mbtiles_and_the_scale_bar_are_shown(
    pages: list[Page], browser: Browser, map_hub: RunningHub
) -> None:
    page = open_dashboard(pages, browser, map_hub, Role.OPERATOR)
    _go(page, ORIGIN[0], ORIGIN[1], TILE_Z)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.leaflet-tile')].some(t => t.complete"
        " && t.naturalWidth === 256)"
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.leaflet-tile-loaded')].length >= 4"
    )
    x, y = map_view(page).page_point(*ORIGIN)
    wait_until(
        lambda: colour_near(page, x + 3, y + 3, TILE_CENTRE, radius=1),
        message="the local tile's centre drawn where the map puts it",
    )
    scale = page.locator(".leaflet-control-scale-line")
    expect(scale).to_be_visible()
    expect(scale).to_have_text(re.compile(r"^\d+ (m|km)$"))  # metric only


# -- zones and camera lines ------------------------------------------------------------------


def _box(east_m: float, north_m: float, width_m: float, height_m: float) -> dict[str, Any]:
    """A rectangle from its south-west corner, in metres from ORIGIN (GeoJSON)."""
    w, s = offset(east_m, north_m)
    e, n = offset(east_m + width_m, north_m + height_m)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _zone(hub: RunningHub, zid: str, kind: str, east_m: float, north_m: float) -> None:
    with closing_client(hub, Role.COMMANDER) as commander:
        commander.put(
            f"/api/v1/zones/{zid}",
            json={
                "type": "Feature",
                "id": zid,
                "geometry": _box(east_m, north_m, 80, 60),
                "properties": {"site": hub.site, "name": f"Zone {zid}", "kind": kind},
            },
        ).raise_for_status()


GROUND = [  # image corners of a 640x480 camera looking straight down, 64 m x 48 m
    ((0.0, 0.0), (-500.0, 300.0)),
    ((640.0, 0.0), (-436.0, 300.0)),
    ((640.0, 480.0), (-436.0, 252.0)),
    ((0.0, 480.0), (-500.0, 252.0)),
]


def _push_camera_zones(hub: RunningHub, device: str) -> None:
    points = [
        {"px": list(px), "lon": offset(*m)[0], "lat": offset(*m)[1]} for px, m in GROUND
    ]
    with closing_client(hub) as admin:
        admin.post(
            f"/api/v1/devices/{device}/config",
            json={
                "config": {
                    "zones": [
                        {
                            "id": "gate-line",
                            "type": "line",
                            "a": [0, 240],
                            "b": [640, 240],
                            "alert_direction": "left_to_right",
                        },
                        {
                            "id": "yard",
                            "type": "intrusion",
                            "polygon": [[40, 40], [200, 40], [200, 160], [40, 160]],
                        },
                    ],
                    "homography": {"points": points},
                }
            },
        ).raise_for_status()


def test_camera_zones_are_mapped_to_the_ground_by_the_pushed_homography(
    map_hub: RunningHub,
) -> None:
    cam = f"{map_hub.site}-cam-h"
    _provision(map_hub, cam, "camera", offset(-470, 270))
    bare = f"{map_hub.site}-cam-bare"
    _provision(map_hub, bare, "camera", offset(-300, 270))
    with closing_client(map_hub) as admin:  # a push with zones but no homography: not drawable
        admin.post(
            f"/api/v1/devices/{bare}/config",
            json={"config": {"zones": [{"id": "z", "type": "line", "a": [0, 1], "b": [9, 1]}]}},
        ).raise_for_status()
    _push_camera_zones(map_hub, cam)
    with closing_client(map_hub, Role.OPERATOR) as op:
        fc = op.get("/api/v1/ui/camera-zones", params={"site": map_hub.site}).json()
    mine = {f["properties"]["zone"]: f for f in fc["features"] if f["properties"]["device"] == cam}
    assert fc["cameras_not_drawn"] >= 1
    line = mine["gate-line"]
    assert line["geometry"]["type"] == "LineString"
    (lon_a, lat_a), (lon_b, lat_b) = line["geometry"]["coordinates"]
    want_a, want_b = offset(-500, 276), offset(-436, 276)  # the image's middle row
    assert abs(lon_a - want_a[0]) < 1e-6 and abs(lat_a - want_a[1]) < 1e-6
    assert abs(lon_b - want_b[0]) < 1e-6 and abs(lat_b - want_b[1]) < 1e-6
    # Walking a -> b (east), the left hand is up the image: north. left_to_right alerts on
    # a north-to-south crossing, so the arrow starts north of the line.
    (_, lat_from), (_, lat_to) = line["properties"]["crossing"]
    assert lat_from > lat_a > lat_to
    yard = mine["yard"]["geometry"]
    assert yard["type"] == "Polygon" and len(yard["coordinates"][0]) == 5


def test_zones_and_camera_lines_are_drawn_as_layers_that_toggle(
    pages: list[Page], browser: Browser, map_hub: RunningHub
) -> None:
    zid = f"{map_hub.site}-school"
    _zone(map_hub, zid, "exclusion", -500, -200)
    cam = f"{map_hub.site}-cam-t"
    # Mounted away from its lines: a camera's marker drawn over the point looked at hid the
    # line when this test ran alone (with the module's earlier camera on the same spot the
    # two markers were fanned out, uncovering it).
    _provision(map_hub, cam, "camera", offset(-470, 400))
    _push_camera_zones(map_hub, cam)
    page = open_dashboard(pages, browser, map_hub, Role.OPERATOR)
    _go(page, *offset(-470, 60), 17)
    pink, white = (0xCC, 0x79, 0xA7), (0xF5, 0xF5, 0xF5)
    zone_edge = offset(-500, -170)  # the middle of the zone's west edge
    # On the camera line, away from its arrow and from the earlier test's camera marker at
    # (-470, 270) (about 23 px at this zoom; a marker is about 22 px across).
    line_mid = offset(-445, 276)

    # The map applies a new view on the hash change and redraws its canvas on the next
    # animation frame: each picture is polled until it shows what it must (or times out).
    def zone_shown() -> bool:
        return shows_colour(page, *zone_edge, pink, radius=3, tol=30)

    def line_shown() -> bool:
        return shows_colour(page, *line_mid, white, radius=3, tol=20)

    wait_until(zone_shown, message="the zone drawn")
    wait_until(line_shown, message="the camera line drawn")
    zones_toggle = page.get_by_label("Zones", exact=True)
    camera_toggle = page.get_by_label("Camera lines", exact=True)
    camera_toggle.uncheck()
    wait_until(lambda: not line_shown(), message="the camera line hidden")
    assert zone_shown()
    zones_toggle.uncheck()
    wait_until(lambda: not zone_shown(), message="the zone hidden")
    camera_toggle.check()
    wait_until(line_shown, message="the camera line shown again")
    # Every kind is named in the legend beside its colour, in the operator's language.
    legend = page.locator("#legend")
    expect(legend).to_contain_text("Exclusion geofence")
    expect(legend).to_contain_text("Camera line")
    page.select_option(".topbar .lang-select", "zh-CN")
    expect(legend).to_contain_text("禁入区域围栏")
    expect(page.get_by_label("摄像机警戒线", exact=True)).to_be_visible()
    page.select_option(".topbar .lang-select", "en")
    assert _errors(page) == []


# -- overlapping markers ---------------------------------------------------------------------


def test_two_devices_at_one_spot_are_both_clickable(
    pages: list[Page], browser: Browser, map_hub: RunningHub
) -> None:
    spot = offset(300, 300)
    first, second = f"{map_hub.site}-pole-cam-a", f"{map_hub.site}-pole-cam-b"
    _provision(map_hub, first, "camera", spot)
    _provision(map_hub, second, "lidar", spot)
    page = open_dashboard(pages, browser, map_hub, Role.OPERATOR)
    for zoom in (17, 19):
        _go(page, spot[0], spot[1], zoom)
        for device in (first, second):
            # Playwright clicks only if the marker itself receives the click: a marker under
            # another fails here ("intercepts pointer events").
            page.get_by_title(device.title(), exact=True).click(timeout=3000)
            expect(detail_panel(page, "Device")).to_contain_text(device.title())
            page.keyboard.press("Escape")
    assert _errors(page) == []


# -- stale anonymous tracks ------------------------------------------------------------------


def _rgb_at(page: Page, x: float, y: float) -> tuple[int, int, int]:
    png = page.screenshot(clip={"x": x, "y": y, "width": 1, "height": 1})
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    b, g, r = (int(c) for c in img[0, 0])
    return r, g, b


def test_a_track_that_stops_fades_then_disappears(
    pages: list[Page], browser: Browser, map_hub: RunningHub, broker: BrokerHarness,
    tmp_path: Path,
) -> None:
    with _district(map_hub, broker, tmp_path) as district:
        # Mounted away from their entities: a device without a place is drawn where its
        # entities were last seen, which would cover the very pixels looked at here.
        cam = district.device(f"{map_hub.site}-cam-fade", "camera", offset(-60, -330))
        officer_src = district.device(f"{map_hub.site}-glasses-fade", "glasses", offset(-60, -270))
        page = open_dashboard(pages, browser, map_hub, Role.OPERATOR, fake_clock=True)
        _go(page, *offset(0, -300), 18)
        page.wait_for_function("() => document.querySelector('#conn').dataset.state === 'live'")
        track = position(f"{cam.device}-7", EntityKind.TRACK, 0, -300)
        officer = position("officer-fade", EntityKind.OFFICER, 20, -300)
        cam.send_positions([track])
        officer_src.send_positions([officer])
        view = map_view(page)
        tx, ty = view.page_point(track.lon, track.lat)
        ox, oy = view.page_point(officer.lon, officer.lat)
        fresh = (0xD9, 0xDE, 0xE4)
        blue = (0x56, 0xB4, 0xE9)
        page.wait_for_function(
            "() => gridwardDiagnostics.render().entities >= 2", timeout=15_000
        )
        assert colour_near(page, tx, ty, fresh, radius=1, tol=10)
        before = sum(_rgb_at(page, tx, ty))
        # Half-way between fading and removal: dimmer than fresh, still there.
        page.clock.fast_forward(int((TRACK_FADE_S + TRACK_REMOVE_S) / 2 * 1000))
        page.clock.run_for(1100)  # one sweep: the fading frame is drawn
        mid = _rgb_at(page, tx, ty)
        assert not colour_near(page, tx, ty, fresh, radius=1, tol=10)
        assert sum(mid) < before and sum(mid) > sum(_hex(MAP_BG)) + 30
        assert colour_near(page, ox, oy, blue, radius=1, tol=10)  # officers never fade
        page.clock.fast_forward(int(TRACK_REMOVE_S * 1000))
        page.clock.run_for(1100)
        diag = page.evaluate("() => gridwardDiagnostics.render()")
        assert diag["removed_tracks"] >= 1
        assert not colour_near(page, tx, ty, fresh, radius=2, tol=40)
        assert colour_near(page, ox, oy, blue, radius=1, tol=10)


# -- device summary --------------------------------------------------------------------------


def test_device_summary_counts_status_and_health_per_kind(
    pages: list[Page], browser: Browser, map_hub: RunningHub, broker: BrokerHarness,
    tmp_path: Path,
) -> None:
    with _district(map_hub, broker, tmp_path) as district:
        district.device(
            f"{map_hub.site}-cam-sum", "camera", offset(100, 100),
            health_fields=lambda: {"fps": 12.5, "inference_ms": 41.0},
        )
        lidar = district.device(f"{map_hub.site}-lidar-sum", "lidar", offset(120, 100))
        with closing_client(map_hub, Role.OPERATOR) as op:

            def heartbeats() -> bool:  # the hub has them before the page asks
                feats = op.get("/api/v1/ui/devices", params={"site": map_hub.site}).json()
                mine = [f for f in feats["features"] if f["id"].endswith("-sum")]
                return len(mine) == 2 and all(f["properties"]["health"] for f in mine)

            wait_until(heartbeats, 30, message="both devices' heartbeats at the hub")
            features = op.get("/api/v1/ui/devices", params={"site": map_hub.site}).json()
        page = open_dashboard(pages, browser, map_hub, Role.OPERATOR)
        summary = page.locator("#device-summary")
        expect(summary).to_be_visible()
        summary.locator("summary").click()  # the per-kind table opens on demand
        want: dict[str, int] = {}
        for f in features["features"]:
            status = f["properties"]["status"]
            status = "offline" if status == "stopped" else status
            want[status] = want.get(status, 0) + 1
        for status in ("online", "degraded", "offline", "unknown"):
            cell = summary.locator(f".device-total[data-status={status}]")
            expect(cell).to_have_attribute("data-value", str(want.get(status, 0)))
        camera = summary.locator("tr[data-kind=camera]")
        expect(camera.locator("td[data-figure=fps]")).to_have_attribute("data-value", "12.5")
        expect(camera.locator("td[data-figure=inference_ms]")).to_have_text("41")
        lidar_fps = summary.locator("tr[data-kind=lidar] td[data-figure=fps]")
        expect(lidar_fps).to_have_text("not reported")  # a LiDAR sends no fps: not 0
        expect(summary.locator("tr[data-kind=lidar] td[data-figure=outbox_depth]")).to_have_text(
            "0"
        )
        lidar.stop()  # goes offline (LWT): the summary follows the live state event
        district.agents.pop(lidar.device)
        offline = summary.locator(".device-total[data-status=offline]")
        expect(offline).to_have_attribute("data-value", str(want.get("offline", 0) + 1))
        assert _errors(page) == []


# -- warning colours -------------------------------------------------------------------------


def test_warning_colours_have_contrast_red_stands_out_and_every_colour_is_named(
    pages: list[Page], browser: Browser, map_hub: RunningHub
) -> None:
    page = open_dashboard(pages, browser, map_hub, Role.OPERATOR)
    warning = page.evaluate("() => import('/ui/js/layers.js').then((m) => m.WARNING)")
    for level, w in warning.items():
        # Outlines: non-text contrast of at least 3:1 against the map (WCAG 1.4.11).
        assert contrast(w["color"], MAP_BG) >= 3.0, level
        # Label chips: text contrast of at least 4.5:1 (WCAG 1.4.3).
        assert contrast(w["chip"], w["ink"]) >= 4.5, level
    red, orange, yellow = warning["red"], warning["orange"], warning["yellow"]
    assert red["weight"] > orange["weight"] > yellow["weight"]
    assert red["fillOpacity"] > orange["fillOpacity"] > yellow["fillOpacity"]
    assert red["casing"] > red["weight"] and not orange["casing"] and not yellow["casing"]
    assert contrast("#ffffff", MAP_BG) > contrast(yellow["color"], MAP_BG)  # the casing
    legend = page.locator("#legend")
    for name in ("Red", "Orange", "Yellow"):
        expect(legend.locator(".warn", has_text=name)).to_have_count(1)
    # The legend's chips are drawn in the same colours as the cells' labels.
    chip = page.evaluate(
        "() => getComputedStyle(document.querySelector('#legend .warn-red')).backgroundColor"
    )
    assert chip == "rgb({}, {}, {})".format(*_hex(red["chip"]))
    # A red cell says so in words on the map too.
    cid = f"{map_hub.site}-w-red"
    with closing_client(map_hub, Role.COMMANDER) as commander:
        commander.put(
            f"/api/v1/grid-cells/{cid}",
            json={
                "type": "Feature",
                "id": cid,
                "geometry": _box(500, 500, 100, 80),
                "properties": {"site": map_hub.site, "name": "Riverside"},
            },
        ).raise_for_status()
        commander.post(
            f"/api/v1/grid-cells/{cid}/warning", json={"level": "red", "reason": "flooding"}
        ).raise_for_status()
    page.reload()
    page.wait_for_selector("#app-view[aria-busy='false']", state="attached")
    label = page.locator(".leaflet-tooltip.cell-label", has_text="Riverside")
    expect(label).to_have_text("Riverside · Red")
