"""Blocking database work stays off the event loop (issue 10, defect 9).

Authentication looks the token up in the database. When that ran inside ``async def`` code
(the app-wide ``enforce_access`` dependency, the live stream's handshake), a slow database
froze the whole event loop: no WebSocket pong, no other route, until the lookup returned.

The token lookup is gated here by two events: the test knows a request is *inside* the lookup
(``entered``) and holds it there until it has shown that the loop still serves everyone else
(``release``). Nothing waits on a timing threshold: on the old code the probes below never get
an answer while the gate is shut, and fail on their (generous) timeouts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from hub.auth import Role, resolve_token
from hub.geo import poi_import as hub_poi_import
from tests.hub.conftest import RunningHub

PROBE_TIMEOUT_S = 15.0  # only reached when the event loop is stuck (the old code)


@dataclass
class TokenGate:
    """Wraps the token lookup: once armed, each caller signals ``entered`` and waits."""

    real: Callable[..., Any]
    armed: bool = False
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.armed:
            self.entered.set()
            self.release.wait(PROBE_TIMEOUT_S * 4)
        return self.real(*args, **kwargs)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenGate]:
    gate = TokenGate(resolve_token)
    # patched where the API looks it up, which is where the blocking database work starts
    monkeypatch.setattr("hub.api.deps.resolve_token", gate)
    yield gate
    gate.release.set()  # never leave a server thread parked in the lookup


def _token(hub: RunningHub, role: Role) -> str:
    return hub.client(role).headers["Authorization"].split()[1]


def _loop_still_serves(hub: RunningHub, ws: Any) -> None:
    """A WebSocket ping is answered and a public route responds."""
    pong = ws.ping()
    assert pong.wait(PROBE_TIMEOUT_S), "no pong: the event loop is blocked"
    with httpx.Client(base_url=hub.base_url, timeout=PROBE_TIMEOUT_S) as anonymous:
        assert anonymous.get("/api/v1/health").status_code == 200


def test_a_request_stuck_in_auth_does_not_stall_live_clients(
    hub: RunningHub, gate: TokenGate
) -> None:
    token = _token(hub, Role.OFFICER)
    slow = hub.client(Role.ADMIN)
    with connect(f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}") as ws:
        assert json.loads(ws.recv(timeout=5))["layer"] == "hello"
        gate.armed = True
        result: dict[str, int] = {}
        request = threading.Thread(
            target=lambda: result.update(status=slow.get("/api/v1/auth/me").status_code)
        )
        request.start()
        try:
            assert gate.entered.wait(PROBE_TIMEOUT_S), "the request never reached the lookup"
            _loop_still_serves(hub, ws)
            assert request.is_alive()  # the authenticated request really is still held
        finally:
            gate.release.set()
            request.join(PROBE_TIMEOUT_S)
        assert result == {"status": 200}  # and it completes once the database answers


def test_a_live_handshake_stuck_in_auth_does_not_stall_other_clients(
    hub: RunningHub, gate: TokenGate
) -> None:
    token = _token(hub, Role.OFFICER)
    url = f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}"
    with connect(url) as first:
        assert json.loads(first.recv(timeout=5))["layer"] == "hello"
        gate.armed = True
        hello: dict[str, str] = {}

        def second_client() -> None:
            with connect(url, open_timeout=PROBE_TIMEOUT_S * 4) as second:
                hello["layer"] = json.loads(second.recv(timeout=PROBE_TIMEOUT_S))["layer"]

        handshake = threading.Thread(target=second_client)
        handshake.start()
        try:
            assert gate.entered.wait(PROBE_TIMEOUT_S), "the handshake never reached the lookup"
            _loop_still_serves(hub, first)
        finally:
            gate.release.set()
            handshake.join(PROBE_TIMEOUT_S * 2)
        assert hello == {"layer": "hello"}


def test_a_slow_poi_import_does_not_stall_live_clients(
    hub: RunningHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import handler reads its body on the loop, then parses and writes in a thread."""
    real_parse = hub_poi_import._from_csv
    entered, release = threading.Event(), threading.Event()

    def gated_parse(site: str, text: str) -> list[dict[str, Any]]:
        entered.set()
        release.wait(PROBE_TIMEOUT_S * 4)
        return real_parse(site, text)

    monkeypatch.setattr(hub_poi_import, "_from_csv", gated_parse)
    token = _token(hub, Role.OFFICER)
    importer = hub.client(Role.ADMIN)
    csv = "id,name,category,lon,lat\naed-1,AED,aed,114.05,22.54\n"
    with connect(f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}") as ws:
        assert json.loads(ws.recv(timeout=5))["layer"] == "hello"
        result: dict[str, int] = {}
        request = threading.Thread(
            target=lambda: result.update(
                status=importer.post(
                    f"/api/v1/poi/import?site={hub.site}",
                    content=csv,
                    headers={"Content-Type": "text/csv"},
                ).status_code
            )
        )
        request.start()
        try:
            assert entered.wait(PROBE_TIMEOUT_S), "the import never reached the parser"
            _loop_still_serves(hub, ws)
        finally:
            release.set()
            request.join(PROBE_TIMEOUT_S)
        assert result == {"status": 200}
