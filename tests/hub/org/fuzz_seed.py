"""Seeded departments and teams for the API fuzz run (tests/hub/test_api_fuzz.py wires it in):
path parameters ``department_id`` and ``team_id`` name real objects, created through the API."""

from __future__ import annotations

from hub.auth import Role
from tests.hub.conftest import RunningHub


def seed(hub: RunningHub) -> dict[str, list[str]]:
    admin = hub.client(Role.ADMIN)
    departments = []
    for n, line in enumerate(("sanitation", "city_management", "public_security", "petitions")):
        res = admin.post(
            "/api/v1/departments",
            json={
                "id": f"fz-dep-{n}",
                "name": f"Fuzz department {n}",
                "line": line,
                "supervisor": f"{hub.site}-operator",
                "commander": f"{hub.site}-commander",
            },
        )
        assert res.is_success, res.text
        departments.append(res.json()["id"])
    teams = []
    for n in range(4):
        res = admin.post(
            "/api/v1/teams",
            json={
                "id": f"fz-team-{n}",
                "site": hub.site,
                "name": f"Fuzz team {n}",
                "members": [f"{hub.site}-worker", f"{hub.site}-officer"],
                "leader": f"{hub.site}-worker",
            },
        )
        assert res.is_success, res.text
        teams.append(res.json()["id"])
    return {"department_id": departments, "team_id": teams}
