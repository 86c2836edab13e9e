"""Zones and grid cells: GeoJSON in and out, bad geometry refused with a sentence, size limits."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.auth import Role
from hub.geo.geojson import GeoJSONError, validate_polygon
from tests.hub.conftest import RunningHub

SQUARE = [[114.05, 22.54], [114.06, 22.54], [114.06, 22.55], [114.05, 22.55], [114.05, 22.54]]
BOWTIE = [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]


def _zone(zid: str, site: str, ring: list[Any], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": zid,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"site": site, "name": zid.title(), "kind": "intrusion", **props},
    }


def test_zone_round_trip_and_versions(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    res = cmd.put("/api/v1/zones/gate-a", json=_zone("gate-a", hub.site, SQUARE, colour="red"))
    assert res.status_code == 200, res.text
    assert res.json()["properties"]["version"] == 1
    res = cmd.put("/api/v1/zones/gate-a", json=_zone("gate-a", hub.site, SQUARE))
    assert res.json()["properties"]["version"] == 2
    fc = hub.client(Role.OFFICER).get("/api/v1/zones", params={"site": hub.site}).json()
    assert fc["type"] == "FeatureCollection"
    (feature,) = fc["features"]
    assert feature["geometry"]["coordinates"] == [SQUARE]
    assert feature["properties"]["kind"] == "intrusion"
    assert (
        hub.client(Role.OFFICER)
        .put("/api/v1/zones/gate-a", json=_zone("gate-a", hub.site, SQUARE))
        .status_code
        == 403
    )
    assert cmd.delete("/api/v1/zones/gate-a").status_code == 204
    assert cmd.get("/api/v1/zones/gate-a").status_code == 404


@pytest.mark.parametrize(
    ("ring", "needle"),
    [
        (BOWTIE, "not valid"),
        (SQUARE[:-1], "not closed"),
        ([[200, 0], [1, 0], [1, 1], [200, 0]], "outside WGS84"),
        ([[0, 0], [1, 1], [0, 0]], "at least 4"),
        ([[0, 0], [1, 0], [2, 0], [0, 0]], "zero area"),
    ],
)
def test_bad_geometry_gets_a_clear_422(hub: RunningHub, ring: list[Any], needle: str) -> None:
    res = hub.client(Role.COMMANDER).put("/api/v1/zones/z1", json=_zone("z1", hub.site, ring))
    assert res.status_code == 422
    assert needle in res.json()["detail"]


def test_feature_shape_errors(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    point = _zone("z1", hub.site, SQUARE)
    point["geometry"] = {"type": "Point", "coordinates": [0, 0]}
    assert cmd.put("/api/v1/zones/z1", json=point).status_code == 422
    assert cmd.put("/api/v1/zones/z2", json=_zone("z1", hub.site, SQUARE)).status_code == 422
    assert (
        cmd.put(
            "/api/v1/zones/z1", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_grid_cells_and_manual_warning(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    cell = {
        "type": "Feature",
        "id": "a1",
        "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
        "properties": {"site": hub.site, "name": "A1", "team": "North team"},
    }
    assert cmd.put("/api/v1/grid-cells/a1", json=cell).status_code == 200
    res = cmd.post(
        "/api/v1/grid-cells/a1/warning", json={"level": "orange", "reason": "crowd at the market"}
    )
    assert res.json()["properties"]["warning_level"] == "orange"
    assert res.json()["properties"]["warning_set_by"] == f"{hub.site}-commander"
    assert (
        cmd.post(
            "/api/v1/grid-cells/a1/warning", json={"level": "purple", "reason": "x" * 5}
        ).status_code
        == 422
    )
    assert (
        hub.client(Role.OPERATOR)
        .post("/api/v1/grid-cells/a1/warning", json={"level": None, "reason": "clear"})
        .status_code
        == 403
    )
    # The old route is now a manual override with the default expiry (hub/warnings).
    audit = hub.client(Role.AUDITOR).get(
        "/api/v1/audit", params={"action": "cell.warning_override"}
    )
    assert audit.json()["items"][0]["details"]["reason"] == "crowd at the market"
    assert res.json()["properties"]["warning_source"] == "override"


def test_oversize_bodies_get_413(hub: RunningHub) -> None:
    admin = hub.client(Role.ADMIN)
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    res = admin.post(
        "/api/v1/auth/tokens", content=huge, headers={"content-type": "application/json"}
    )
    assert res.status_code == 413
    assert "limit" in res.json()["detail"]
    # chunked upload without Content-Length is counted too
    res = admin.post(
        "/api/v1/auth/tokens",
        content=iter([huge[:1000], huge[1000:]]),
        headers={"content-type": "application/json"},
    )
    assert res.status_code == 413
    big_zone = _zone("big", hub.site, SQUARE, note="y" * (6 * 1024 * 1024))
    assert hub.client(Role.COMMANDER).put("/api/v1/zones/big", json=big_zone).status_code == 413
    assert admin.get("/api/v1/health").status_code == 200  # still serving


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=3),
        lambda c: st.lists(c, max_size=6) | st.dictionaries(st.text(max_size=4), c, max_size=3),
        max_leaves=30,
    )
)
def test_validator_never_crashes(data: Any) -> None:
    for geometry in (
        data,
        {"type": "Polygon", "coordinates": data},
        {"type": "MultiPolygon", "coordinates": data},
    ):
        with contextlib.suppress(GeoJSONError):  # the only exception it may raise
            validate_polygon(geometry)


def test_poi_import_geojson_and_csv(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "aed-1",
                "geometry": {"type": "Point", "coordinates": [114.056, 22.543]},
                "properties": {"name": "AED at the library", "category": "aed", "floor": 1},
            }
        ],
    }
    res = cmd.post("/api/v1/poi/import", params={"site": hub.site}, json=fc)
    assert res.json() == {"imported": 1, "replaced": False}
    csv_text = "id,name,category,lon,lat,phone\nshelter-1,School gym,shelter,114.06,22.54,110\n"
    res = cmd.post(
        "/api/v1/poi/import",
        params={"site": hub.site},
        content=csv_text.encode(),
        headers={"content-type": "text/csv"},
    )
    assert res.json()["imported"] == 1
    out = hub.client(Role.OFFICER).get("/api/v1/poi", params={"site": hub.site}).json()
    by_id = {f["id"]: f for f in out["features"]}
    assert by_id["aed-1"]["properties"]["floor"] == 1
    assert by_id["shelter-1"]["properties"]["phone"] == "110"
    assert by_id["shelter-1"]["geometry"]["coordinates"] == [114.06, 22.54]
    bad = cmd.post(
        "/api/v1/poi/import",
        params={"site": hub.site},
        content=b"name,lon\nx,1\n",
        headers={"content-type": "text/csv"},
    )
    assert bad.status_code == 422 and "header lacks id" in bad.json()["detail"]
    swapped = "id,name,category,lon,lat\np1,Bad,aed,22.5,214.0\n"
    bad = cmd.post(
        "/api/v1/poi/import",
        params={"site": hub.site},
        content=swapped.encode(),
        headers={"content-type": "text/csv"},
    )
    assert bad.status_code == 422 and "longitude first" in bad.json()["detail"]
    res = cmd.post(
        "/api/v1/poi/import",
        params={"site": hub.site, "replace": True},
        json={"type": "FeatureCollection", "features": []},
    )
    assert res.json()["imported"] == 0
    assert cmd.get("/api/v1/poi", params={"site": hub.site}).json()["features"] == []
