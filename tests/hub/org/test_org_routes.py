"""Departments, teams and cell responsibility through the real API: CRUD, every validation
error naming its field, references that block a delete, audit records."""

from __future__ import annotations

from sqlalchemy import update

from hub.auth import Role
from hub.incidents.model import IncidentLevel, IncidentSource, IncidentState
from hub.incidents.service import NewIncident
from hub.schema import incidents
from tests.hub.conftest import RunningHub
from tests.hub.org.helpers import department, put_cell, team


def test_department_crud_and_validation(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    sup = f"{hub.site}-operator"
    created = department(cmd, "dep-san", supervisor=sup, commander=f"{hub.site}-commander")
    assert created["line"] == "sanitation"
    assert created["supervisor"] == sup
    assert created["site"] is None
    assert created["updated_at"].endswith(("Z", "+00:00"))  # UTC, said so (SQLite reads naive)
    # the hub chooses an id when none is given
    res = cmd.post("/api/v1/departments", json={"name": "City", "line": "city_management"})
    assert res.status_code == 201, res.text
    generated = res.json()["id"]
    assert generated

    # a taken id is a conflict
    res = cmd.post("/api/v1/departments", json={"id": "dep-san", "name": "x", "line": "sanitation"})
    assert res.status_code == 409
    assert "taken" in res.json()["detail"]

    # every problem at once, each naming its field
    res = cmd.post(
        "/api/v1/departments",
        json={
            "name": "Bad",
            "line": "astrology",
            "supervisor": "nobody-here",
            "commander": f"{hub.site}-worker",
            "site": "elsewhere",
        },
    )
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert "line: 'astrology' is not a line of work" in detail
    assert "supervisor: no user 'nobody-here'" in detail
    assert f"commander: user '{hub.site}-worker' has role 'worker'" in detail
    assert "site: this hub serves site" in detail
    # schema errors (extra key, empty name) are 422 too
    assert cmd.post("/api/v1/departments", json={"name": "", "line": "x"}).status_code == 422
    res = cmd.post("/api/v1/departments", json={"name": "a", "line": "sanitation", "boss": "x"})
    assert res.status_code == 422

    # a deactivated supervisor is refused
    admin = hub.client(Role.ADMIN)
    res = admin.post(
        "/api/v1/users",
        json={"username": "gone-op", "password": "a-long-enough-password", "role": "operator"},
    )
    assert res.status_code == 201, res.text
    assert admin.patch("/api/v1/users/gone-op", json={"active": False}).status_code == 200
    res = cmd.put(
        "/api/v1/departments/dep-san",
        json={"name": "San", "line": "sanitation", "supervisor": "gone-op"},
    )
    assert res.status_code == 422
    assert "supervisor: user 'gone-op' is deactivated" in res.json()["detail"]

    # replace, read back, list with filters and a cursor
    res = cmd.put(
        "/api/v1/departments/dep-san",
        json={"name": "Sanitation office", "line": "sanitation", "site": hub.site},
    )
    assert res.status_code == 200, res.text
    assert res.json()["supervisor"] is None
    assert res.json()["site"] == hub.site
    officer = hub.client(Role.OFFICER)
    assert officer.get("/api/v1/departments/dep-san").json()["name"] == "Sanitation office"
    lines = officer.get("/api/v1/departments", params={"line": "sanitation"}).json()["items"]
    assert [d["id"] for d in lines] == ["dep-san"]
    first = officer.get("/api/v1/departments", params={"limit": 1}).json()
    assert len(first["items"]) == 1
    rest = officer.get("/api/v1/departments", params={"cursor": first["next_cursor"]}).json()
    assert {d["id"] for d in first["items"] + rest["items"]} == {"dep-san", generated}
    # a department serving every site is listed for a site too
    site_list = officer.get("/api/v1/departments", params={"site": hub.site}).json()["items"]
    assert {d["id"] for d in site_list} == {"dep-san", generated}
    assert officer.get("/api/v1/departments/nope").status_code == 404
    assert (
        cmd.put("/api/v1/departments/nope", json={"name": "a", "line": "sanitation"}).status_code
        == 404
    )

    # only org:write may change
    assert (
        officer.post("/api/v1/departments", json={"name": "a", "line": "sanitation"}).status_code
        == 403
    )
    assert hub.client(Role.OPERATOR).delete("/api/v1/departments/dep-san").status_code == 403

    assert cmd.delete(f"/api/v1/departments/{generated}").status_code == 204
    assert cmd.get(f"/api/v1/departments/{generated}").status_code == 404
    assert cmd.delete(f"/api/v1/departments/{generated}").status_code == 404

    audit = hub.client(Role.AUDITOR)
    actions = [
        r["action"]
        for r in audit.get("/api/v1/audit", params={"limit": 200}).json()["items"]
        if r["action"].startswith("department.")
    ]
    assert sorted(set(actions)) == ["department.create", "department.delete", "department.update"]


def test_team_crud_members_and_leader(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    worker, officer, operator = (f"{hub.site}-{r}" for r in ("worker", "officer", "operator"))
    created = team(cmd, hub, "north")
    assert created["members"] == sorted([worker, officer])
    assert created["leader"] == worker
    assert created["updated_at"].endswith(("Z", "+00:00"))

    res = cmd.post(
        "/api/v1/teams",
        json={
            "site": hub.site,
            "name": "Bad",
            "members": [worker, f"{hub.site}-installer", "ghost", worker],
            "leader": operator,
        },
    )
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert f"members: listed twice: {worker}" in detail
    assert f"members[1]: user '{hub.site}-installer' has role 'installer'" in detail
    assert "members[2]: no user 'ghost'" in detail
    assert f"leader: '{operator}' must also be one of the members" in detail
    res = cmd.post("/api/v1/teams", json={"site": "other-site", "name": "x"})
    assert res.status_code == 422
    assert "site:" in res.json()["detail"]
    res = cmd.post("/api/v1/teams", json={"id": "north", "site": hub.site, "name": "dup"})
    assert res.status_code == 409

    # PUT replaces the member list as a whole
    res = cmd.put(
        "/api/v1/teams/north",
        json={"site": hub.site, "name": "North", "members": [operator], "leader": operator},
    )
    assert res.status_code == 200, res.text
    assert res.json()["members"] == [operator]
    # a refused PUT changes nothing (the old list stays)
    res = cmd.put(
        "/api/v1/teams/north",
        json={"site": hub.site, "name": "North", "members": [operator, "ghost"]},
    )
    assert res.status_code == 422
    got = hub.client(Role.WORKER).get("/api/v1/teams/north").json()
    assert got["members"] == [operator]
    assert got["leader"] == operator
    assert got["name"] == "North"

    listed = cmd.get("/api/v1/teams", params={"site": hub.site}).json()["items"]
    assert [t["id"] for t in listed] == ["north"]
    assert cmd.get("/api/v1/teams", params={"site": "zzz"}).json()["items"] == []
    assert cmd.put("/api/v1/teams/none", json={"site": hub.site, "name": "x"}).status_code == 404
    assert hub.client(Role.WORKER).delete("/api/v1/teams/north").status_code == 403
    assert cmd.delete("/api/v1/teams/north").status_code == 204
    assert cmd.get("/api/v1/teams/north").status_code == 404


def test_cell_responsibility_and_references(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    put_cell(cmd, hub, "a1", team="North (old text)")
    department(cmd, "dep-san")
    department(cmd, "dep-city", line="city_management")
    team(cmd, hub, "north")

    res = cmd.put(
        "/api/v1/grid-cells/a1/responsibility",
        json={
            "team_id": "north",
            "departments": {"sanitation": "dep-san", "city_management": "dep-city"},
        },
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["team"] == {"id": "north", "name": "Team north", "leader": f"{hub.site}-worker"}
    assert body["departments"]["sanitation"] == {"id": "dep-san", "name": "dep-san office"}

    cell = hub.client(Role.WORKER).get("/api/v1/grid-cells/a1").json()["properties"]
    assert cell["responsible_team"]["id"] == "north"
    assert cell["team"] == "Team north"  # the old free-text field follows the team's name
    assert set(cell["departments"]) == {"sanitation", "city_management"}
    # setting a warning answers the whole cell: the dashboard redraws the panel from it
    res = cmd.post("/api/v1/grid-cells/a1/warning", json={"level": "yellow", "reason": "bins"})
    assert res.status_code == 200, res.text
    assert res.json()["properties"]["responsible_team"]["id"] == "north"
    assert set(res.json()["properties"]["departments"]) == {"sanitation", "city_management"}
    listed = cmd.get("/api/v1/grid-cells", params={"site": hub.site}).json()["features"]
    assert listed[0]["properties"]["departments"]["city_management"]["id"] == "dep-city"

    # a GET -> PUT round trip of the cell keeps working and stores no copy of the answer
    feature = cmd.get("/api/v1/grid-cells/a1").json()
    feature["properties"] = {
        k: v for k, v in feature["properties"].items() if not k.startswith("warning_")
    }
    res = cmd.put("/api/v1/grid-cells/a1", json=feature)
    assert res.status_code == 200, res.text
    assert res.json()["properties"]["responsible_team"]["id"] == "north"

    # validation: every field named
    res = cmd.put(
        "/api/v1/grid-cells/a1/responsibility",
        json={
            "team_id": "south",
            "departments": {"astrology": "dep-san", "sanitation": "dep-city", "petitions": "nope"},
        },
    )
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert "team: no team 'south'" in detail
    assert "departments.astrology: 'astrology' is not a line of work" in detail
    assert "departments.sanitation: department 'dep-city' works on line 'city_management'" in detail
    assert "departments.petitions: no department 'nope'" in detail
    res = cmd.put("/api/v1/grid-cells/zz/responsibility", json={"team_id": None})
    assert res.status_code == 404
    assert (
        hub.client(Role.OPERATOR)
        .put("/api/v1/grid-cells/a1/responsibility", json={"team_id": None})
        .status_code
        == 403
    )

    # references block deletes and a change of line
    res = cmd.delete("/api/v1/departments/dep-san")
    assert res.status_code == 409
    assert "grid cells a1" in res.json()["detail"]
    res = cmd.delete("/api/v1/teams/north")
    assert res.status_code == 409
    assert "a1" in res.json()["detail"]
    res = cmd.put("/api/v1/departments/dep-san", json={"name": "x", "line": "petitions"})
    assert res.status_code == 409
    assert "before changing its line" in res.json()["detail"]

    # clearing the responsibility frees them
    res = cmd.put("/api/v1/grid-cells/a1/responsibility", json={"team_id": None, "departments": {}})
    assert res.status_code == 200
    assert res.json() == {"cell_id": "a1", "team": None, "departments": {}}
    assert cmd.delete("/api/v1/teams/north").status_code == 204

    # an open incident of the department blocks its delete; a closed one does not
    ctx = hub.service.ctx
    row = ctx.incidents.open(
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
        conn.execute(
            update(incidents).where(incidents.c.id == row.id).values(department_id="dep-san")
        )
    res = cmd.delete("/api/v1/departments/dep-san")
    assert res.status_code == 409
    assert row.number in res.json()["detail"]
    assert "open incidents" in res.json()["detail"]
    with ctx.engine.begin() as conn:
        conn.execute(
            update(incidents)
            .where(incidents.c.id == row.id)
            .values(state=IncidentState.CLOSED.value)
        )
    assert cmd.delete("/api/v1/departments/dep-san").status_code == 204

    audit = (
        hub.client(Role.AUDITOR)
        .get("/api/v1/audit", params={"action": "cell.responsibility"})
        .json()["items"]
    )
    assert {r["target"] for r in audit} == {"a1"}
    assert any(r["details"]["team"] == "north" for r in audit)


def test_a_deleted_cell_takes_its_departments_along(hub: RunningHub) -> None:
    cmd = hub.client(Role.COMMANDER)
    put_cell(cmd, hub, "b1")
    department(cmd, "dep-san")
    res = cmd.put(
        "/api/v1/grid-cells/b1/responsibility", json={"departments": {"sanitation": "dep-san"}}
    )
    assert res.status_code == 200
    assert cmd.delete("/api/v1/grid-cells/b1").status_code == 204
    # the department is no longer named, so it may go
    assert cmd.delete("/api/v1/departments/dep-san").status_code == 204
