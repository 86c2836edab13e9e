"""Domain errors map to their documented statuses through one table; anything else is a
generic 500 that leaks nothing (the blanket ValueError -> 422 handler is gone)."""

from __future__ import annotations

import pytest

from edge.errors import GridwardError
from edge.protocol import ProtocolError
from hub.alerts.service import AlertNotFound
from hub.api.deps import encode_cursor
from hub.api.errors import INTERNAL_ERROR_DETAIL, status_of
from hub.auth import AuthError, Role, WeakPasswordError
from hub.devices.service import DeviceExists, DeviceNotFound, ProvisioningError
from hub.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unavailable,
    Unsupported,
)
from hub.geo.geojson import GeoJSONError
from hub.geo.poi_import import PoiImportError
from hub.mapview.service import OutlineUnavailable, TileNotFound
from hub.users.service import TokenNotFound, UserExists
from tests.hub.conftest import PASSWORD, RunningHub

SQUARE = [[114.05, 22.54], [114.06, 22.54], [114.06, 22.55], [114.05, 22.55], [114.05, 22.54]]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (Invalid("x"), 422),
        (TooLarge("x"), 413),
        (Unsupported("x"), 415),
        (Forbidden("x"), 403),
        (AuthError("x"), 401),
        (RateLimited("x", 3), 429),
        (Unavailable("x"), 503),
        (DeviceNotFound("x"), 404),
        (DeviceExists("x"), 409),
        (ProvisioningError("x"), 422),
        (AlertNotFound("x"), 404),
        (GeoJSONError("x"), 422),
        (PoiImportError("x"), 422),
        (WeakPasswordError("x"), 422),
        (UserExists("x"), 409),
        (TokenNotFound("x"), 404),
        (TileNotFound("x"), 404),
        (OutlineUnavailable("x"), 503),
        (DomainError("x"), 400),
    ],
)
def test_each_domain_error_has_its_status(error: DomainError, status: int) -> None:
    assert status_of(error) == status
    assert isinstance(error, GridwardError)


def test_one_error_base_for_the_project() -> None:
    assert issubclass(ProtocolError, GridwardError)
    assert issubclass(DomainError, GridwardError)
    assert not issubclass(DomainError, ValueError)  # a stray ValueError is a bug, not a 422


def test_every_area_maps_its_errors(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    site = hub.site
    checks: list[tuple[str, int, int]] = []

    def expect(label: str, status: int, got: int) -> None:
        checks.append((label, status, got))

    # devices
    expect("device 404", 404, admin.get(f"/api/v1/devices/{site}-none").status_code)
    body = {"id": f"{site}-d", "site": site, "kind": "camera"}
    expect("device 201", 201, admin.post("/api/v1/devices", json=body).status_code)
    expect("device 409", 409, admin.post("/api/v1/devices", json=body).status_code)
    no_creds = {**body, "id": f"{site}-e", "with_password": False}
    expect("device 422", 422, admin.post("/api/v1/devices", json=no_creds).status_code)
    huge = {"config": {"x": "a" * 300_000}}  # over ConfigPush's wire limit, under the body limit
    expect("config 413", 413, admin.post(f"/api/v1/devices/{site}-d/config", json=huge).status_code)
    expect("patch 422", 422, admin.patch(f"/api/v1/devices/{site}-d", json={}).status_code)
    expect("config 404", 404, admin.get(f"/api/v1/devices/{site}-d/config").status_code)
    # alerts
    expect("alert 404", 404, admin.get("/api/v1/alerts/nope").status_code)
    expect("ack 404", 404, admin.post("/api/v1/alerts/nope/ack", json={}).status_code)
    # positions: a hand-made cursor used to reach the blanket ValueError handler
    cursor = encode_cursor(["not-a-time", "x"])
    res = admin.get("/api/v1/positions/history", params={"entity": "w1", "cursor": cursor})
    expect("cursor 422", 422, res.status_code)
    short = encode_cursor(["2026-12-01T00:00:00+00:00"])
    res = admin.get("/api/v1/positions/history", params={"entity": "w1", "cursor": short})
    expect("short cursor 422", 422, res.status_code)
    expect("history 422", 422, admin.get("/api/v1/positions/history").status_code)
    # geo
    zone = {
        "type": "Feature",
        "id": "z1",
        "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
        "properties": {"site": site, "name": "Z", "kind": "intrusion"},
    }
    expect("zone id 422", 422, admin.put("/api/v1/zones/z2", json=zone).status_code)
    open_ring = {**zone, "geometry": {"type": "Polygon", "coordinates": [SQUARE[:-1] * 1]}}
    expect("zone ring 422", 422, admin.put("/api/v1/zones/z1", json=open_ring).status_code)
    expect("zone 404", 404, admin.get("/api/v1/zones/z9").status_code)
    expect("cell 404", 404, admin.delete("/api/v1/grid-cells/c9").status_code)
    poi = "/api/v1/poi/import"
    plain = admin.post(
        poi, params={"site": site}, content=b"x", headers={"content-type": "text/plain"}
    )
    expect("poi 415", 415, plain.status_code)
    bad_csv = admin.post(
        poi, params={"site": site}, content=b"id,name\n", headers={"content-type": "text/csv"}
    )
    expect("poi 422", 422, bad_csv.status_code)
    latin1 = admin.post(
        poi, params={"site": site}, content=b"\xff\xfe{", headers={"content-type": "text/csv"}
    )
    expect("poi utf-8 422", 422, latin1.status_code)
    geo = {"content-type": "application/geo+json"}
    deep = admin.post(poi, params={"site": site}, content=b"[" * 100_000, headers=geo)
    expect("poi deep json 422", 422, deep.status_code)
    point = (
        b'{"type":"FeatureCollection","features":[{"type":"Feature","id":"p1","properties":'
        b'{"name":"P"},"geometry":{"type":"Point","coordinates":[1' + b"0" * 400 + b",1]}}]}"
    )
    huge_lon = admin.post(poi, params={"site": site}, content=point, headers=geo)
    expect("poi huge number 422", 422, huge_lon.status_code)
    # the audit list (routes_system) also decodes its cursor
    audit_cursor = encode_cursor(["not-a-number"])
    res = admin.get("/api/v1/audit", params={"cursor": audit_cursor})
    expect("audit cursor 422", 422, res.status_code)
    # users
    user = {"username": f"{site}-admin", "password": PASSWORD, "role": "operator"}
    expect("user 409", 409, admin.post("/api/v1/users", json=user).status_code)
    weak = admin.patch(f"/api/v1/users/{site}-operator", json={"password": f"{site}-operator!!"})
    expect("weak 422", 422, weak.status_code)
    expect("user 404", 404, admin.patch("/api/v1/users/nobody", json={"active": False}).status_code)
    expect("token 404", 404, admin.delete("/api/v1/auth/tokens/nope").status_code)
    login = hub.client(None).post(
        "/api/v1/auth/login", json={"username": f"{site}-admin", "password": "wrong-password!"}
    )
    expect("login 401", 401, login.status_code)
    # map and commands
    expect("tile 404", 404, admin.get("/api/v1/ui/tiles/1/0/0.png").status_code)
    expect("command 404", 404, admin.get("/api/v1/commands/nope").status_code)
    wrong = [c for c in checks if c[1] != c[2]]
    assert not wrong, wrong


def test_an_unexpected_value_error_is_a_generic_500(
    hub: RunningHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.devices import repository

    def broken(*_: object, **__: object) -> None:
        raise ValueError("secret-internals /var/lib/gridward SELECT * FROM devices")

    monkeypatch.setattr(repository, "page", broken)
    res = hub.client(Role.ADMIN).get("/api/v1/devices")
    assert res.status_code == 500
    assert res.json() == {"detail": INTERNAL_ERROR_DETAIL}
    assert "secret" not in res.text and "SELECT" not in res.text
    # the hub still answers
    assert hub.client(Role.ADMIN).get("/api/v1/health").status_code == 200
