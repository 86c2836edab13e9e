"""Input hygiene (issue 11, item 13), against the running hub on SQLite and PostgreSQL:
coordinates must be numbers, NUL in stored text is refused, ``q=%`` matches a literal percent
sign, NaN never reaches the store, and a grid cell for an unknown site is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.auth import Role
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness

SQUARE = [[114.05, 22.54], [114.06, 22.54], [114.06, 22.55], [114.05, 22.55], [114.05, 22.54]]


@pytest.fixture
def hub(broker: BrokerHarness, site: str, tmp_path: Path, db_url: str) -> Iterator[RunningHub]:
    running = start_hub(broker, site, tmp_path, database_url=db_url)
    yield running
    stop_hub(broker, running)


def _feature(fid: str, site: str, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
        "properties": {"site": site, "name": fid, **props},
    }


def test_device_location_must_be_numbers(hub: RunningHub) -> None:
    inst = hub.client(Role.INSTALLER)
    for location in ({"lon": True, "lat": False}, {"lon": "114.05", "lat": "22.54"}):
        res = inst.post(
            "/api/v1/devices",
            json={"id": "loc-cam", "site": hub.site, "kind": "camera", "location": location},
        )
        assert res.status_code == 422, (location, res.text)
    ok = inst.post(
        "/api/v1/devices",
        json={
            "id": "loc-cam",
            "site": hub.site,
            "kind": "camera",
            "location": {"lon": 114, "lat": 22.5},
        },
    )
    assert ok.status_code in (200, 201), ok.text
    res = hub.client(Role.ADMIN).patch(
        "/api/v1/devices/loc-cam", json={"location": {"lon": True, "lat": False}}
    )
    assert res.status_code == 422


def test_zone_and_cell_coordinates_must_be_numbers(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    ring = [[True, False], [True, True], [False, True], [True, False]]
    for kind, extra in (("zones", {"kind": "intrusion"}), ("grid-cells", {})):
        body = _feature("bool-ring", hub.site, **extra)
        body["geometry"]["coordinates"] = [ring]
        assert admin.put(f"/api/v1/{kind}/bool-ring", json=body).status_code == 422


def test_nul_in_stored_text_is_refused(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    hub.service.registry.add("t", hub.site, "camera", "nul-cam", "cam")
    admin.put("/api/v1/grid-cells/nul-cell", json=_feature("nul-cell", hub.site, team="T"))
    cases = [
        (
            "put",
            "/api/v1/zones/z-nul",
            _feature("z-nul", hub.site, kind="intrusion", name="a\x00b"),
        ),
        ("put", "/api/v1/grid-cells/c-nul", _feature("c-nul", hub.site, team="t\x00")),
        (
            "put",
            "/api/v1/zones/z-key",
            _feature("z-key", hub.site, kind="intrusion", **{"k\x00": 1}),
        ),
        ("patch", "/api/v1/devices/nul-cam", {"name": "cam\x00"}),
        ("post", "/api/v1/grid-cells/nul-cell/warning", {"level": "red", "reason": "bad\x00x"}),
        ("post", "/api/v1/auth/tokens", {"name": "tok\x00"}),
        ("post", "/api/v1/devices/nul-cam/config", {"config": {"zones": [], "x\x00": 1}}),
    ]
    wrong = []
    for method, path, body in cases:
        res = admin.request(method.upper(), path, json=body)
        if res.status_code != 422:
            wrong.append(f"{method} {path}: {res.status_code} {res.text[:120]}")
    for path, params in (
        ("/api/v1/devices", {"q": "a\x00"}),
        ("/api/v1/ingest/rejected", {"reason": "x\x00"}),
        ("/api/v1/audit", {"action": "x\x00"}),
    ):
        res = admin.get(path, params=params)
        if res.status_code != 422:
            wrong.append(f"GET {path} {params!r}: {res.status_code} {res.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_nan_in_properties_never_reaches_the_store(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    body = json.dumps(_feature("z-nan", hub.site, kind="intrusion", x="NAN-HERE"))
    raw = body.replace('"NAN-HERE"', "NaN")
    res = admin.put(
        "/api/v1/zones/z-nan", content=raw, headers={"Content-Type": "application/json"}
    )
    assert res.status_code == 422, res.text
    assert admin.get("/api/v1/zones").status_code == 200


def test_device_search_treats_percent_and_underscore_literally(hub: RunningHub) -> None:
    reg = hub.service.registry
    reg.add("t", hub.site, "camera", "q-cam-1", "100% coverage")
    reg.add("t", hub.site, "camera", "q-cam-2", "plain")
    reg.add("t", hub.site, "camera", "qxcam", "under_score")
    admin = hub.client(Role.ADMIN)

    def found(q: str) -> list[str]:
        res = admin.get("/api/v1/devices", params={"q": q, "site": hub.site})
        assert res.status_code == 200, res.text
        return [d["id"] for d in res.json()["items"]]

    assert found("%") == ["q-cam-1"]
    assert found("_") == ["qxcam"]  # ids hold '-' only; one name holds '_'
    assert found("r_s") == ["qxcam"]
    assert found("q_cam") == []  # '_' is not a wildcard: no id holds "q_cam"


def test_grid_cell_for_an_unknown_site_is_refused(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    res = admin.put("/api/v1/grid-cells/far-cell", json=_feature("far-cell", "no-such-site"))
    assert res.status_code == 422
    assert "no-such-site" in res.json()["detail"]
    assert admin.get("/api/v1/grid-cells/far-cell").status_code == 404
    ok = admin.put("/api/v1/grid-cells/own-cell", json=_feature("own-cell", hub.site))
    assert ok.status_code == 200, ok.text
