"""Every route denies anonymous access unless allow-listed, and the role matrix holds for
every route the app has (enumerated from the app, so a new route is covered automatically)."""

from __future__ import annotations

import re

import httpx
import pytest
from websockets.sync.client import connect

from hub.api.deps import PERMISSION_KEY, PUBLIC_ROUTES
from hub.auth import ROLE_PERMISSIONS, Permission, Role
from tests.hub.conftest import PASSWORD, RunningHub

SAMPLE = {
    "device_id": "no-such-device",
    "alert_id": "00000000-0000-7000-8000-000000000000",
    "zone_id": "no-such-zone",
    "cell_id": "no-such-cell",
    "username": "no-such-user",
    "token_id": "no-such-token",
}


def _routes(hub: RunningHub) -> list[tuple[str, str, Permission | None]]:
    """Every HTTP operation of the app, from its OpenAPI document."""
    found = []
    for path, operations in hub.service.app.openapi()["paths"].items():
        for method, op in operations.items():
            perm = op.get(PERMISSION_KEY)
            found.append((method.upper(), path, Permission(perm) if perm else None))
    return found


def _url(path: str) -> str:
    # Path parameters without a sample (e.g. tile coordinates) get a plain number.
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), "1"), path)


def test_every_non_public_route_declares_a_permission(hub: RunningHub) -> None:
    routes = _routes(hub)
    assert len(routes) >= 30
    undeclared = [(m, p) for m, p, perm in routes if perm is None and (m, p) not in PUBLIC_ROUTES]
    assert undeclared == []
    assert ("GET", "/api/v1/health") in {(m, p) for m, p, _ in routes}


def test_anonymous_gets_401_everywhere_but_the_allow_list(hub: RunningHub) -> None:
    anon = hub.client(None)
    checked = 0
    for method, path, _ in _routes(hub):
        res = anon.request(method, _url(path), json={})
        if (method, path) in PUBLIC_ROUTES:
            assert res.status_code != 401, (method, path)
        else:
            assert res.status_code == 401, (method, path, res.status_code)
            assert res.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 30
    bogus = hub.client(None)
    bogus.headers["Authorization"] = "Bearer gw_not-a-real-token"
    assert bogus.get("/api/v1/devices").status_code == 401


def test_role_matrix(hub: RunningHub) -> None:
    """Allowed: anything but 401/403. Not allowed: exactly 403. For every route and role."""
    failures = []
    for role in Role:
        client = hub.client(role)
        for method, path, perm in _routes(hub):
            if (method, path) in PUBLIC_ROUTES or path == "/api/v1/auth/logout":
                continue
            res = client.request(method, _url(path), json={})
            allowed = perm in ROLE_PERMISSIONS[role] if perm else role is Role.ADMIN
            if allowed and res.status_code in (401, 403):
                failures.append((role.value, method, path, res.status_code, "should be allowed"))
            if not allowed and res.status_code != 403:
                failures.append((role.value, method, path, res.status_code, "should be 403"))
    assert failures == []


def test_websocket_requires_auth(hub: RunningHub) -> None:
    url = f"ws://127.0.0.1:{hub.port}/api/v1/live"
    with connect(url) as ws, pytest.raises(Exception) as err:  # noqa: PT011
        ws.recv(timeout=5)
    assert "authentication required" in str(err.value)
    auditor = hub.client(Role.AUDITOR)  # auditors have no live:read
    token = auditor.headers["Authorization"].split()[1]
    with connect(f"{url}?token={token}") as ws, pytest.raises(Exception) as err:  # noqa: PT011
        ws.recv(timeout=5)
    assert "live:read" in str(err.value)


def test_login_rate_limit_and_audit(hub: RunningHub) -> None:
    anon = hub.client(None)
    user = f"{hub.site}-operator"
    for _ in range(5):
        assert (
            anon.post(
                "/api/v1/auth/login", json={"username": user, "password": "wrong-password!"}
            ).status_code
            == 401
        )
    blocked = anon.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    auditor = hub.client(Role.AUDITOR)
    failed = auditor.get("/api/v1/audit", params={"action": "auth.login_failed", "actor": user})
    assert len(failed.json()["items"]) == 5


def test_tokens_sessions_and_logout(hub: RunningHub) -> None:
    op = hub.client(Role.OPERATOR)
    created = op.post("/api/v1/auth/tokens", json={"name": "vms", "ttl_days": 30})
    assert created.status_code == 201
    token = created.json()["token"]
    integ = httpx.Client(base_url=hub.base_url, headers={"Authorization": f"Bearer {token}"})
    try:
        assert integ.get("/api/v1/auth/me").json()["role"] == "operator"
        assert op.delete(f"/api/v1/auth/tokens/{created.json()['token_id']}").status_code == 204
        assert integ.get("/api/v1/auth/me").status_code == 401
    finally:
        integ.close()
    # the session cookie works for the dashboard (which, like any browser, sends its Origin
    # with a POST), and logout revokes it
    browser = httpx.Client(base_url=hub.base_url, headers={"Origin": hub.base_url})
    try:
        browser.post(
            "/api/v1/auth/login", json={"username": f"{hub.site}-commander", "password": PASSWORD}
        )
        assert browser.get("/api/v1/auth/me").json()["username"] == f"{hub.site}-commander"
        cookie = browser.cookies.get("gw_session")
        assert browser.post("/api/v1/auth/logout").status_code == 204
        browser.cookies.set("gw_session", cookie or "")
        assert browser.get("/api/v1/auth/me").status_code == 401
    finally:
        browser.close()


def test_user_management(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    weak = admin.post(
        "/api/v1/users", json={"username": "newbie", "password": "short", "role": "officer"}
    )
    assert weak.status_code == 422
    res = admin.post(
        "/api/v1/users",
        json={"username": f"{hub.site}-new", "password": "a-long-enough-pass", "role": "officer"},
    )
    assert res.status_code == 201
    dup = admin.post(
        "/api/v1/users",
        json={"username": f"{hub.site}-new", "password": "a-long-enough-pass", "role": "officer"},
    )
    assert dup.status_code == 409
    upd = admin.patch(f"/api/v1/users/{hub.site}-new", json={"active": False})
    assert upd.json()["active"] is False
    login = hub.client(None).post(
        "/api/v1/auth/login", json={"username": f"{hub.site}-new", "password": "a-long-enough-pass"}
    )
    assert login.status_code == 401
