"""POST /api/v1/grid-cells/import against a real hub: all or nothing, references checked,
replace semantics (refused over an open incident), limits, audit, the cell locator follows."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import update

from hub.auth import Role
from hub.geo.locate import CellLocator
from hub.incidents.model import IncidentLevel, IncidentSource
from hub.incidents.service import NewIncident
from hub.schema import grid_cells, incidents
from tests.hub.conftest import RunningHub
from tests.hub.org.helpers import department, ring, team

GEO = {"content-type": "application/geo+json"}


def cell(cid: str, x: float, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": cid,
        "geometry": {"type": "Polygon", "coordinates": [ring(x, 22.5)]},
        "properties": {"name": cid.upper(), **props},
    }


def upload(
    client: httpx.Client, hub: RunningHub, *features: Any, replace: bool = False
) -> httpx.Response:
    body = json.dumps({"type": "FeatureCollection", "features": list(features)})
    return client.post(
        "/api/v1/grid-cells/import",
        params={"site": hub.site, "replace": str(replace).lower()},
        content=body.encode(),
        headers=GEO,
    )


def cells(client: httpx.Client, hub: RunningHub) -> dict[str, dict[str, Any]]:
    fc = client.get("/api/v1/grid-cells", params={"site": hub.site, "limit": 500}).json()
    return {f["id"]: f["properties"] for f in fc["features"]}


def test_import_creates_updates_and_keeps_responsibility(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    department(cmd, "dep-san")
    department(cmd, "dep-city", line="city_management")
    team(cmd, hub, "north")
    res = upload(
        cmd,
        hub,
        cell("a1", 114.0, team="north", departments={"sanitation": "dep-san"}, colour="blue"),
        cell("a2", 114.01, departments={"city_management": "dep-city"}),
        {
            "type": "Feature",
            "id": "m1",
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [[ring(114.02, 22.5)], [ring(114.03, 22.5)]],
            },
            "properties": {"name": "Market"},
        },
    )
    assert res.status_code == 200, res.text
    assert res.json() == {
        "imported": 3,
        "created": 3,
        "updated": 0,
        "deleted": 0,
        "replaced": False,
    }
    got = cells(hub.client(Role.WORKER), hub)
    assert got["a1"]["responsible_team"] == {
        "id": "north",
        "name": "Team north",
        "leader": f"{hub.site}-worker",
    }
    assert got["a1"]["team"] == "Team north"
    assert got["a1"]["colour"] == "blue"
    assert got["a1"]["departments"] == {"sanitation": {"id": "dep-san", "name": "dep-san office"}}
    assert got["a2"]["responsible_team"] is None
    assert got["m1"]["departments"] == {}

    # a re-import of geometry only keeps what the dashboard set; null clears a team
    res = upload(cmd, hub, cell("a1", 114.0), cell("a2", 114.01, team=None, departments={}))
    assert res.status_code == 200, res.text
    assert res.json()["updated"] == 2
    got = cells(cmd, hub)
    assert got["a1"]["responsible_team"]["id"] == "north"
    assert got["a1"]["departments"]["sanitation"]["id"] == "dep-san"
    assert "colour" not in got["a1"]  # the file is the truth for the other properties
    assert got["a2"]["departments"] == {}

    audit = hub.client(Role.AUDITOR).get("/api/v1/audit", params={"action": "cell.import"})
    records = audit.json()["items"]
    assert len(records) == 2
    details = sorted((r["details"]["created"], r["details"]["updated"]) for r in records)
    assert details == [(0, 2), (3, 0)]
    assert {r["target"] for r in records} == {hub.site}

    # officers may read cells but not import them
    assert upload(hub.client(Role.OFFICER), hub, cell("z", 114.0)).status_code == 403


def test_bad_files_store_nothing_and_list_every_problem(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    department(cmd, "dep-san")
    bowtie = cell("bow", 0)
    bowtie["geometry"]["coordinates"] = [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]
    res = upload(
        cmd,
        hub,
        cell("ok", 114.0),
        bowtie,
        {
            "type": "Feature",
            "id": "c-12",
            "geometry": cell("x", 114.0)["geometry"],
            "properties": {},
        },
    )
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert detail.startswith("2 problems, nothing imported")
    assert "feature 1 (id 'bow'): geometry: polygon is not valid" in detail
    assert "feature 2 (id 'c-12'): properties.name: missing" in detail

    # references: unknown team and department, a department of another line, an unknown line
    res = upload(
        cmd,
        hub,
        cell("r1", 114.0, team="ghost-team"),
        cell("r2", 114.01, departments={"sanitation": "nope", "city_management": "dep-san"}),
        cell("r3", 114.02, departments={"astrology": "dep-san"}),
    )
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert "feature 0 (id 'r1'): properties.team: no team 'ghost-team'" in detail
    assert "feature 1 (id 'r2'): properties.departments.sanitation: no department 'nope'" in detail
    assert "department 'dep-san' works on line 'sanitation', not 'city_management'" in detail
    assert (
        "feature 2 (id 'r3'): properties.departments.astrology: 'astrology' is not a line" in detail
    )
    assert cells(cmd, hub) == {}

    # format and size refusals
    res = cmd.post(
        "/api/v1/grid-cells/import", params={"site": hub.site}, content=b"{oops", headers=GEO
    )
    assert res.status_code == 422
    assert "not valid JSON" in res.json()["detail"]
    res = cmd.post(
        "/api/v1/grid-cells/import",
        params={"site": hub.site},
        content=json.dumps(cell("a", 114.0)).encode(),
        headers={"content-type": "application/json"},
    )
    assert res.status_code == 422
    assert "wrap it as" in res.json()["detail"]
    res = cmd.post(
        "/api/v1/grid-cells/import",
        params={"site": hub.site},
        content=b"id,name\n",
        headers={"content-type": "text/csv"},
    )
    assert res.status_code == 415
    huge = b'{"type": "FeatureCollection", "features": [], "pad": "' + b"x" * (6 << 20) + b'"}'
    res = cmd.post(
        "/api/v1/grid-cells/import", params={"site": hub.site}, content=huge, headers=GEO
    )
    assert res.status_code == 413
    assert "limit" in res.json()["detail"]
    res = upload(cmd, hub, *([{}] * 5001))
    assert res.status_code == 413
    assert "5001 features" in res.json()["detail"]
    res = cmd.post(
        "/api/v1/grid-cells/import",
        params={"site": "not-this-hub"},
        content=b'{"type": "FeatureCollection", "features": []}',
        headers=GEO,
    )
    assert res.status_code == 422
    assert "unknown to this hub" in res.json()["detail"]
    assert cells(cmd, hub) == {}


def test_an_id_of_another_site_is_refused(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    assert upload(cmd, hub, cell("shared", 114.0)).status_code == 200
    with hub.service.ctx.engine.begin() as conn:
        conn.execute(update(grid_cells).where(grid_cells.c.id == "shared").values(site="other"))
    res = upload(cmd, hub, cell("shared", 114.0))
    assert res.status_code == 422
    assert (
        "feature 0 (id 'shared'): id: taken by a grid cell of site 'other'" in res.json()["detail"]
    )


def test_replace_deletes_the_rest_unless_an_open_incident_holds_one(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    ctx = hub.service.ctx
    locator = CellLocator(ctx.engine)
    department(cmd, "dep-san")
    assert (
        upload(
            cmd,
            hub,
            cell("a", 114.0),
            cell("b", 114.01, departments={"sanitation": "dep-san"}),
            cell("c", 114.02),
        ).status_code
        == 200
    )
    assert locator.cell_at(hub.site, 114.0105, 22.5005) == "b"

    # an open incident in "b" blocks a replace that drops it; nothing changes
    opened = ctx.incidents.open(
        "tester",
        NewIncident(
            site=hub.site,
            source=IncidentSource.MANUAL,
            category="garbage",
            level=IncidentLevel.LOW,
            title="bins",
        ),
    )
    with ctx.engine.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id == opened.id).values(cell_id="b"))
    res = upload(cmd, hub, cell("a", 114.0), cell("d", 114.03), replace=True)
    assert res.status_code == 409
    assert f"b ({opened.number})" in res.json()["detail"]
    assert set(cells(cmd, hub)) == {"a", "b", "c"}

    # closed, the replace goes through; the department named by "b" is free again
    with ctx.engine.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id == opened.id).values(state="closed"))
    res = upload(cmd, hub, cell("a", 114.0), cell("d", 114.01), replace=True)
    assert res.status_code == 200, res.text
    assert res.json() == {"imported": 2, "created": 1, "updated": 1, "deleted": 2, "replaced": True}
    assert set(cells(cmd, hub)) == {"a", "d"}
    # the locator sees the new cell where "b" was
    assert locator.cell_at(hub.site, 114.0105, 22.5005) == "d"
    assert cmd.delete("/api/v1/departments/dep-san").status_code == 204
    audit = hub.client(Role.AUDITOR).get("/api/v1/audit", params={"action": "cell.import"})
    replaced = [r for r in audit.json()["items"] if r["details"]["replace"]]
    assert [r["details"]["deleted"] for r in replaced] == [2]
