"""CSRF and origins against the real hub (issue 11 item 10): a state change made with the
session cookie needs the hub's own Origin (or one in api.allowed_origins); bearer-token
requests are not affected; the live WebSocket refuses a foreign Origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from hub.auth import Role
from hub.config import ApiConfig
from tests.hub.conftest import PASSWORD, RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness

HOSTILE = "https://evil.example"


def _cookie_session(hub: RunningHub, role: Role = Role.OPERATOR) -> httpx.Client:
    """A client that authenticates like the dashboard: only with the session cookie."""
    client = httpx.Client(base_url=hub.base_url, timeout=30)
    hub.clients.append(client)
    res = client.post(
        "/api/v1/auth/login",
        json={"username": f"{hub.site}-{role.value}", "password": PASSWORD},
    )
    res.raise_for_status()
    assert "Authorization" not in client.headers
    assert client.cookies.get("gw_session")
    return client


def _new_token(client: httpx.Client, **headers: str) -> httpx.Response:
    return client.post("/api/v1/auth/tokens", json={"name": "csrf-probe"}, headers=headers)


def test_cookie_change_from_a_hostile_origin_is_refused(hub: RunningHub) -> None:
    """Before: a page on any site could make the logged-in browser create an API token."""
    browser = _cookie_session(hub)
    refused = _new_token(browser, Origin=HOSTILE)
    assert refused.status_code == 403
    assert "Origin" in refused.json()["detail"]
    assert _new_token(browser, Origin="null").status_code == 403  # sandboxed frame
    assert _new_token(browser, Referer=f"{HOSTILE}/page").status_code == 403
    assert _new_token(browser).status_code == 403  # a cookie change with no origin at all
    # Nothing was created by the refused requests.
    assert [t["kind"] for t in browser.get("/api/v1/auth/tokens").json()] == ["session"]
    stats = hub.client(Role.ADMIN).get("/api/v1/stats").json()["web_refused"]
    assert stats == {"csrf_origin": 3, "csrf_no_origin": 1}


def test_cookie_change_from_the_hub_itself_is_allowed(hub: RunningHub) -> None:
    browser = _cookie_session(hub)
    created = _new_token(browser, Origin=hub.base_url)
    assert created.status_code == 201
    assert _new_token(browser, Referer=f"{hub.base_url}/?lang=en").status_code == 201
    token_id = created.json()["token_id"]
    assert browser.delete(f"/api/v1/auth/tokens/{token_id}").status_code == 403
    gone = browser.delete(f"/api/v1/auth/tokens/{token_id}", headers={"Origin": hub.base_url})
    assert gone.status_code == 204
    # Reads need no origin: they change nothing, and a foreign page cannot read the answer.
    assert browser.get("/api/v1/auth/me", headers={"Origin": HOSTILE}).status_code == 200


def test_bearer_requests_need_no_origin(hub: RunningHub) -> None:
    """An integration sends its token itself; a browser never attaches one on its own."""
    integration = hub.client(Role.OPERATOR)
    assert _new_token(integration, Origin=HOSTILE).status_code == 201
    assert _new_token(integration).status_code == 201


def test_login_from_a_hostile_origin_is_refused(hub: RunningHub) -> None:
    """Login CSRF: a foreign page must not log the browser into an account of its choosing."""
    anon = hub.client(None)
    body = {"username": f"{hub.site}-operator", "password": PASSWORD}
    assert (
        anon.post("/api/v1/auth/login", json=body, headers={"Origin": HOSTILE}).status_code == 403
    )
    assert anon.post("/api/v1/auth/login", json=body).status_code == 200  # scripts, curl
    ok = anon.post("/api/v1/auth/login", json=body, headers={"Origin": hub.base_url})
    assert ok.status_code == 200


def _live_url(hub: RunningHub, role: Role = Role.OPERATOR) -> str:
    token = hub.client(role).headers["Authorization"].split()[1]
    return f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}"


def test_websocket_from_a_hostile_origin_is_refused(hub: RunningHub) -> None:
    """Before: any page could open the live feed with the visitor's cookie and read it."""
    url = _live_url(hub)
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin=Origin(HOSTILE))
    assert refused.value.response.status_code == 403
    with connect(url, origin=Origin(hub.base_url)) as ws:
        assert '"hello"' in str(ws.recv(timeout=5))
    with connect(url) as ws:  # no Origin: not a browser
        assert '"hello"' in str(ws.recv(timeout=5))
    stats = hub.client(Role.ADMIN).get("/api/v1/stats").json()["web_refused"]
    assert stats == {"ws_origin": 1}


@pytest.fixture
def public_hub(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[RunningHub]:
    api = ApiConfig(port=0, allowed_origins=["https://grid.example.org"])
    running = start_hub(broker, site, tmp_path, api=api)
    yield running
    stop_hub(broker, running)


def test_allowed_origins_are_accepted(public_hub: RunningHub) -> None:
    """The public URL behind a proxy differs from the Host the hub sees: it is configured."""
    hub = public_hub
    browser = _cookie_session(hub)
    assert _new_token(browser, Origin="https://grid.example.org").status_code == 201
    assert _new_token(browser, Origin="https://grid.example.org.evil.example").status_code == 403
    assert _new_token(browser, Origin="http://grid.example.org").status_code == 403
    with connect(_live_url(hub), origin=Origin("https://grid.example.org")) as ws:
        assert '"hello"' in str(ws.recv(timeout=5))


def test_allowed_origins_are_validated() -> None:
    for bad in ("grid.example.org", "https://grid.example.org/", "https://x/path", "*"):
        with pytest.raises(ValueError, match="allowed_origins"):
            ApiConfig(allowed_origins=[bad])
