"""Security headers on every response of the real hub (issue 11 item 11): pages, API answers,
dashboard files, errors of every kind (401, 404, 405, 413, 422, 500) and /docs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.api.security import content_security_policy, tile_origins
from hub.auth import Role
from hub.dashboard_config import DashboardConfig
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


def _directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def _assert_guarded(res: httpx.Response) -> dict[str, list[str]]:
    where = f"{res.request.method} {res.request.url.path} -> {res.status_code}"
    for name, value in EXPECTED.items():
        assert res.headers.get(name) == value, (where, name)
    assert len(res.headers.get_list("content-security-policy")) == 1, where
    csp = _directives(res.headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"], where  # no inline script, no eval
    assert csp["style-src"] == ["'self'"], where
    assert csp["object-src"] == ["'none'"], where
    assert csp["base-uri"] == ["'none'"], where
    assert csp["frame-ancestors"] == ["'none'"], where
    assert csp["default-src"] == ["'self'"], where
    return csp


def test_every_kind_of_response_carries_the_headers(hub: RunningHub) -> None:
    anon = hub.client(None)
    admin = hub.client(Role.ADMIN)
    responses = {
        "page": anon.get("/"),
        "script": anon.get("/ui/js/app.js"),
        "package file": anon.get("/ui/node_modules/leaflet/dist/leaflet.css"),
        "public API": anon.get("/api/v1/health"),
        "API": admin.get("/api/v1/devices"),
        "401": anon.get("/api/v1/devices"),
        "404 route": anon.get("/no/such/page"),
        "404 file": anon.get("/ui/no-such-file.js"),
        "405": anon.put("/api/v1/health"),
        "413": admin.post("/api/v1/users", content=b"x" * (2 * 1024 * 1024)),
        "422": admin.post("/api/v1/users", json={"username": 5}),
        "docs": anon.get("/docs"),
        "openapi": anon.get("/openapi.json"),
    }
    expected_status = {"401": 401, "404 route": 404, "404 file": 404, "405": 405}
    expected_status |= {"413": 413, "422": 422}
    for what, res in responses.items():
        assert res.status_code == expected_status.get(what, 200), (what, res.status_code)
        _assert_guarded(res)


@pytest.fixture
def failing_hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[RunningHub]:
    running = start_hub(broker, site, tmp_path)

    def broken() -> None:
        raise RuntimeError("a defect")

    # The generic 500 comes from Starlette's outermost middleware, outside add_middleware.
    running.service.app.add_api_route("/api/v1/broken-for-test", broken)
    yield running
    stop_hub(broker, running)


def test_a_500_carries_the_headers(failing_hub: RunningHub) -> None:
    res = failing_hub.client(Role.ADMIN).get("/api/v1/broken-for-test")
    assert res.status_code == 500
    _assert_guarded(res)


def test_a_handler_cannot_weaken_the_policy(hub: RunningHub) -> None:
    """FileResponse and others set their own headers; the guard replaces, never duplicates."""
    res = hub.client(None).get("/")
    assert res.headers.get_list("x-frame-options") == ["DENY"]
    assert res.headers["cache-control"] == "no-cache"  # other headers are kept


def test_images_may_come_from_the_configured_tile_server() -> None:
    plain = _directives(content_security_policy(DashboardConfig()))
    assert plain["img-src"] == ["'self'", "data:", "blob:"]
    assert plain["connect-src"] == ["'self'"]
    osm = DashboardConfig(
        base_layer="url", tile_url="https://{s}.tile.example.org:8443/{z}/{x}/{y}.png"
    )
    assert tile_origins(osm) == [
        "https://a.tile.example.org:8443",
        "https://b.tile.example.org:8443",
        "https://c.tile.example.org:8443",
    ]
    assert _directives(content_security_policy(osm))["img-src"][3:] == tile_origins(osm)
    same_host = DashboardConfig(base_layer="url", tile_url="/tiles/{z}/{x}/{y}.png")
    assert tile_origins(same_host) == []
    one = DashboardConfig(base_layer="url", tile_url="http://Tiles.Intranet/{z}/{x}/{y}.png")
    assert tile_origins(one) == ["http://tiles.intranet"]


@pytest.fixture
def tiled_hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[RunningHub]:
    ui = DashboardConfig(base_layer="url", tile_url="https://tiles.example.org/{z}/{x}/{y}.png")
    running = start_hub(broker, site, tmp_path, ui=ui)
    yield running
    stop_hub(broker, running)


def test_the_running_hub_allows_its_tile_server(tiled_hub: RunningHub) -> None:
    csp = _assert_guarded(tiled_hub.client(None).get("/"))
    assert "https://tiles.example.org" in csp["img-src"]


def test_only_the_field_page_may_ask_for_the_microphone_and_the_position(hub: RunningHub) -> None:
    """The field page records voice notes and reads the phone's position: its documents (and
    its service worker) may ask, with the same strict CSP plus blob: media for the playback of
    a recording; every other page keeps both off, and the camera stays off everywhere (photos
    come through a file input)."""
    anon = hub.client(None)
    for path in ("/ui/field/", "/ui/field/field.js", "/ui/field/sw.js"):
        res = anon.get(path)
        assert res.status_code == 200, path
        csp = _assert_guarded(res)
        policy = res.headers["permissions-policy"]
        assert "microphone=(self)" in policy, path
        assert "geolocation=(self)" in policy, path
        assert "camera=()" in policy, path
        assert csp["media-src"] == ["'self'", "blob:"], path
        assert csp["worker-src"] == ["'self'"], path
    for path in ("/", "/ui/js/app.js", "/api/v1/health", "/ui/field", "/ui/fieldx/"):
        res = anon.get(path)
        csp = _assert_guarded(res)
        policy = res.headers["permissions-policy"]
        assert "microphone=()" in policy, path
        assert "geolocation=()" in policy, path
        assert "media-src" not in csp, path
