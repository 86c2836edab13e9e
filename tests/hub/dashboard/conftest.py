"""Real Chromium (Debian's, driven by Playwright) against a real hub and broker, plus a small
simulated district: grid cells with warnings, points of interest, devices that publish."""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import cv2
import httpx
import numpy as np
import pytest
from anyio._backends._asyncio import WorkerThread
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from edge.agent import AgentRuntime
from edge.bus import BusConfig
from edge.config import AgentConfig
from edge.protocol import EntityKind, Position
from edge.validators import utcnow
from hub.auth import Role
from tests.hub.conftest import PASSWORD, RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness, unique_site
from tests.support.waiting import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Playwright's 5 s default is short for a hub + broker round trip on a loaded 2-core CI worker;
# a longer wait changes nothing for a passing test and still fails a wrong one. Every browser
# test imports this module, so the setting holds for all of them.
expect.set_options(timeout=15_000)
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ORIGIN = (114.0570, 22.5430)  # the dashboard's default centre
M_PER_DEG = 111_320.0


def offset(east_m: float, north_m: float) -> tuple[float, float]:
    lon0, lat0 = ORIGIN
    return (
        lon0 + east_m / (M_PER_DEG * math.cos(math.radians(lat0))),
        lat0 + north_m / M_PER_DEG,
    )


@pytest.fixture
def browser() -> Iterator[Browser]:
    """One Chromium per test: its renderer processes are children of this process, and the
    leak check needs them gone at the end of each test."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install chromium (bootstrap does)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[list[Page]]:
    """Pages opened by a test; their contexts are closed afterwards, console errors fail it."""
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.context.close()


@pytest.fixture
def contexts() -> Iterator[list[BrowserContext]]:
    """Browser contexts a test opens itself (its own viewport, locale, permissions), closed
    afterwards."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def open_dashboard(
    pages: list[Page],
    browser: Browser,
    hub: RunningHub,
    role: Role,
    *,
    width: int = 1920,
    height: int = 1080,
    username: str | None = None,
    timezone_id: str | None = None,
    fake_clock: bool = False,
) -> Page:
    """Log in through the form like a user and wait until the dashboard has loaded (as the
    site's user for ``role``, or as ``username``; in the browser's zone ``timezone_id``).
    ``fake_clock``: Playwright's clock is installed before any script runs; time flows as usual
    until the test moves it on."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, timezone_id=timezone_id
    )
    if fake_clock:
        context.clock.install()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    pages.append(page)
    page.goto(hub.base_url + "/")
    page.locator("#login-user").wait_for(state="visible")
    page.fill("#login-user", username or f"{hub.site}-{role.value}")
    page.fill("#login-pass", PASSWORD)
    page.press("#login-pass", "Enter")
    wait_loaded(page)
    # Before login the page asks who is logged in and gets the expected 401; not an error.
    errors[:] = [e for e in errors if "401 (Unauthorized)" not in e]
    return page


def detail_panel(page: Page, heading: str) -> Locator:
    """The detail panel, by the heading it is labelled with ("Alert", "Device", ...)."""
    return page.get_by_role("region", name=heading, exact=True)


def wait_live(page: Page) -> None:
    """The live stream has said hello. The dashboard opens it after its first load and does
    not reload on that first hello: a change made before it only shows after a reload."""
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")


def wait_loaded(page: Page) -> None:
    """The app view stops being aria-busy once its layers are loaded and the map is fitted."""
    page.wait_for_selector("#app-view[aria-busy='false']", state="attached", timeout=15_000)


@dataclass(frozen=True)
class MapView:
    """What the address bar and the page's layout say about the map: the view
    (``#map=zoom/lat/lon``, like openstreetmap.org) and where the map sits on the page."""

    zoom: float
    lat: float
    lon: float
    left: float
    top: float
    width: float
    height: float

    def point(self, lon: float, lat: float) -> tuple[float, float]:
        """Web Mercator (what Leaflet draws): map-relative pixels of a WGS84 point."""
        world = 256 * 2**self.zoom
        x = (_merc_x(lon) - _merc_x(self.lon)) * world + self.width / 2
        y = (_merc_y(lat) - _merc_y(self.lat)) * world + self.height / 2
        return x, y

    def page_point(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self.point(lon, lat)
        return self.left + x, self.top + y


def _merc_x(lon: float) -> float:
    return (lon + 180) / 360


def _merc_y(lat: float) -> float:
    s = math.sin(math.radians(lat))
    return 0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)


VIEW_HASH = re.compile(r"^#map=([0-9.]+)/(-?[0-9.]+)/(-?[0-9.]+)$")


def map_view(page: Page) -> MapView:
    seen = page.evaluate(
        """() => {
            const r = document.querySelector('#map').getBoundingClientRect();
            return {hash: location.hash, left: r.left, top: r.top, width: r.width,
                    height: r.height};
        }"""
    )
    m = VIEW_HASH.match(seen["hash"])
    assert m, f"no map view in the address: {seen['hash']!r}"
    zoom, lat, lon = (float(g) for g in m.groups())
    return MapView(zoom, lat, lon, seen["left"], seen["top"], seen["width"], seen["height"])


def colour_near(
    page: Page, x: float, y: float, want: tuple[int, int, int], *, radius: int = 2, tol: int = 8
) -> bool:
    """Whether a pixel a user sees within ``radius`` of page point (x, y) has colour ``want``
    (the projection is exact to about a pixel: Leaflet rounds its pixel origin)."""
    png = page.screenshot(
        clip={"x": x - radius, "y": y - radius, "width": 2 * radius + 1, "height": 2 * radius + 1}
    )
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    rgb = img[:, :, ::-1].reshape(-1, 3).astype(int)
    return bool((np.abs(rgb - np.array(want)).max(axis=1) <= tol).any())


def shows_colour(
    page: Page, lon: float, lat: float, want: tuple[int, int, int], *, radius: int = 2, tol: int = 8
) -> bool:
    """Whether the map shows ``want`` at a WGS84 point, as the current view places it."""
    x, y = map_view(page).page_point(lon, lat)
    return colour_near(page, x, y, want, radius=radius, tol=tol)


def evidence_jpeg() -> bytes:
    """A small real JPEG (a drawn scene), so the browser can decode the evidence."""
    img = np.full((180, 240, 3), (40, 52, 64), np.uint8)
    cv2.rectangle(img, (20, 110), (220, 170), (90, 110, 120), -1)
    cv2.circle(img, (120, 60), 18, (200, 200, 210), -1)
    cv2.rectangle(img, (105, 78), (135, 140), (60, 120, 220), -1)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return bytes(buf)


@dataclass
class District:
    hub: RunningHub
    broker: BrokerHarness
    tmp_path: Path
    agents: dict[str, AgentRuntime] = field(default_factory=dict)

    def device(
        self,
        device: str,
        kind: str,
        location: tuple[float, float] | None,
        *,
        name: str | None = None,
        health_fields: Callable[[], dict[str, Any]] | None = None,
        health_interval_s: float = 1.0,
    ) -> AgentRuntime:
        """Provision through the API with its mount location, start a real agent."""
        admin = self.hub.client(Role.ADMIN)
        body: dict[str, object] = {
            "id": device,
            "site": self.hub.site,
            "kind": kind,
            "name": name or device.title(),
        }
        if location is not None:
            body["location"] = {"lon": location[0], "lat": location[1]}
        res = admin.post("/api/v1/devices", json=body)
        res.raise_for_status()
        creds = res.json()
        pw = self.tmp_path / f"{device}.pw"
        pw.write_text(creds["mqtt_password"])
        cfg = AgentConfig(
            site=self.hub.site,
            device=device,
            data_dir=self.tmp_path / device,
            mqtt=BusConfig(port=self.broker.port, username=device, password_file=pw),
            health_interval_s=health_interval_s,
        )
        agent = AgentRuntime(cfg, kind, health_fields=health_fields)  # type: ignore[arg-type]
        agent.start()
        assert agent.bus.wait_connected(30)
        self.agents[device] = agent
        return agent

    def cells(self) -> None:
        commander = self.hub.client(Role.COMMANDER)
        levels = {"a1": "red", "a2": None, "b1": "yellow", "b2": "orange"}
        for i, (name, level) in enumerate(levels.items()):
            col, row = i % 2, i // 2
            w, s = offset(-300 + col * 300, -250 + row * 250)
            e, n = offset(col * 300, row * 250)
            cid = f"{self.hub.site}-{name}"
            commander.put(
                f"/api/v1/grid-cells/{cid}",
                json={
                    "type": "Feature",
                    "id": cid,
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
                    },
                    "properties": {
                        "site": self.hub.site,
                        "name": name.upper(),
                        "team": f"Team {name[0].upper()}",
                    },
                },
            ).raise_for_status()
            if level:
                commander.post(
                    f"/api/v1/grid-cells/{cid}/warning",
                    json={"level": level, "reason": "open incidents"},
                ).raise_for_status()

    def pois(self) -> None:
        rows = [
            ("shelter-1", "Community hall shelter", "shelter", 80, 120),
            ("aed-1", "Metro exit AED", "aed", -150, -60),
            ("supplies-1", "Flood barrier store", "supplies", 200, -180),
            ("org-1", "Residents' committee", "organisation", -220, 170),
        ]
        csv = "id,name,category,lon,lat\n" + "".join(
            f"{pid},{name},{cat},{offset(e, n)[0]:.6f},{offset(e, n)[1]:.6f}\n"
            for pid, name, cat, e, n in rows
        )
        self.hub.client(Role.COMMANDER).post(
            "/api/v1/poi/import",
            params={"site": self.hub.site},
            content=csv.encode(),
            headers={"Content-Type": "text/csv"},
        ).raise_for_status()

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        self.agents.clear()


@pytest.fixture(scope="module")
def module_hub(
    broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    """One hub shared by a module's tests that do not interfere (each makes its own data):
    starting a hub per test would cost more than the browser work it serves."""
    with pinned_hub(broker, tmp_path_factory.mktemp("hub")) as running:
        yield running


@pytest.fixture(scope="module")
def dispatch_hub(
    broker: BrokerHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHub]:
    """A module's hub for the dispatch pages: a ring waits 10 minutes for an answer, so no
    dispatch times out and moves on while a test looks at it."""
    with pinned_hub(
        broker, tmp_path_factory.mktemp("hub"), dispatch={"ack_timeout_s": 600.0}
    ) as running:
        yield running


@contextmanager
def pinned_hub(broker: BrokerHarness, tmp_path: Path, **overrides: object) -> Iterator[RunningHub]:
    """A hub that outlives single tests (a module's), started with ``overrides``."""
    running = start_hub(broker, unique_site(), tmp_path, None, **overrides)
    # FastAPI runs sync routes on AnyIO worker threads, spawned on demand and pruned when idle:
    # threads that a long-lived hub creates during one test would fail that test's leak check.
    # So the pool is fixed before the first test: PINNED_WORKERS threads, never pruned.
    idle_s = WorkerThread.MAX_IDLE_TIME
    WorkerThread.MAX_IDLE_TIME = 10**9  # seconds: never, within a module
    try:
        server = running.service._server
        assert server is not None and server.servers
        loop = server.servers[0].get_loop()
        asyncio.run_coroutine_threadsafe(_pin_workers(PINNED_WORKERS), loop).result(10)
        yield running
    finally:
        stop_hub(broker, running)
        WorkerThread.MAX_IDLE_TIME = idle_s


@contextmanager
def closing_client(hub: RunningHub, role: Role | None = Role.ADMIN) -> Iterator[httpx.Client]:
    """A client closed at the end of the block: a module's hub outlives a test's leak check."""
    client = hub.client(role)
    try:
        yield client
    finally:
        client.close()
        hub.clients.remove(client)


@contextmanager
def clients_closed(running: RunningHub) -> Iterator[None]:
    """API clients a test opens on a module's hub are closed with the test (leak check)."""
    known = len(running.clients)
    yield
    for client in running.clients[known:]:
        client.close()
    del running.clients[known:]


PINNED_WORKERS = 8


async def _pin_workers(n: int) -> None:
    """Limit the hub's thread pool to ``n`` and start all ``n`` workers now."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = n
    barrier = threading.Barrier(n)
    async with anyio.create_task_group() as group:
        for _ in range(n):
            group.start_soon(_wait_in_worker, barrier)


async def _wait_in_worker(barrier: threading.Barrier) -> None:
    await anyio.to_thread.run_sync(barrier.wait)


@pytest.fixture
def district(hub: RunningHub, broker: BrokerHarness, tmp_path: Path) -> Iterator[District]:
    d = District(hub, broker, tmp_path)
    try:
        yield d
    finally:
        d.stop()


def position(
    entity: str, kind: EntityKind, east_m: float, north_m: float, dt_s: float = 0.0
) -> Position:
    lon, lat = offset(east_m, north_m)
    return Position(
        entity=entity,
        entity_kind=kind,
        lon=lon,
        lat=lat,
        accuracy_m=3.0,
        speed_mps=1.4,
        ts=utcnow() + timedelta(seconds=dt_s),
    )


def wait_outbox_empty(agent: AgentRuntime) -> None:
    wait_until(lambda: agent.outbox.depth() == 0, 30, message="the hub to store the alert")


def js(page: Page, expression: str, arg: Any = None) -> Any:
    return page.evaluate(expression, arg)
