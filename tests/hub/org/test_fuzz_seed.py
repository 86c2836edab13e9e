"""The fuzz seed creates what it names (so the fuzz run's path parameters hit real objects)."""

from __future__ import annotations

from hub.auth import Role
from tests.hub.conftest import RunningHub
from tests.hub.org.fuzz_seed import seed


def test_seed_names_real_objects(hub: RunningHub) -> None:
    ids = seed(hub)
    reader = hub.client(Role.OFFICER)
    for dep in ids["department_id"]:
        assert reader.get(f"/api/v1/departments/{dep}").status_code == 200
    for team in ids["team_id"]:
        assert reader.get(f"/api/v1/teams/{team}").status_code == 200
