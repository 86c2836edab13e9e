"""The organisation's SQL on both stores (embedded SQLite and PostgreSQL): departments, teams
with their members, responsibilities, a cell import creating, updating and replacing cells
(more than one 500-id chunk), and the references that block a delete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest

from hub.audit import AuditTrail
from hub.auth import Role, create_user
from hub.clock import ManualClock
from hub.geo.service import GeoService
from hub.incidents.categories import Vocabulary
from hub.org.service import DepartmentDraft, OrgConflict, OrgInvalid, OrgService, TeamDraft
from hub.store import Store
from tests.hub.conftest import PASSWORD
from tests.hub.org.helpers import ring

SITE = "org-site"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    with s.engine.begin() as conn:
        for role in (Role.WORKER, Role.OFFICER, Role.OPERATOR, Role.COMMANDER):
            create_user(conn, f"u-{role.value}", PASSWORD, role)
    yield s
    s.engine.dispose()


def fc(features: list[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def feature(i: int, **props: Any) -> dict[str, Any]:
    geometry = {
        "type": "Polygon",
        "coordinates": [ring(114.0 + (i % 40) * 0.002, 22.5 + (i // 40) * 0.002)],
    }
    return {
        "type": "Feature",
        "id": f"c{i:04d}",
        "geometry": geometry,
        "properties": {"name": f"C{i}", **props},
    }


def test_org_and_import_on_both_stores(store: Store) -> None:
    audit = AuditTrail(store.engine)
    clock = ManualClock()
    org = OrgService(store.engine, audit, Vocabulary(), hub_site=SITE, clock=clock)
    geo = GeoService(store.engine, audit, hub_site=SITE)

    dep = org.create_department(
        "t", DepartmentDraft(name="San", line="sanitation", supervisor="u-operator"), "dep-san"
    )
    assert dep.updated_at.replace(tzinfo=UTC) == clock.now()  # SQLite reads back naive UTC
    team = org.create_team(
        "t",
        TeamDraft(site=SITE, name="North", members=["u-worker", "u-officer"], leader="u-worker"),
        "north",
    )
    assert team.members == ["u-officer", "u-worker"]
    with pytest.raises(OrgInvalid, match="members\\[0\\]: user 'u-commander' has role"):
        org.update_team("t", "north", TeamDraft(site=SITE, name="N", members=["u-commander"]))
    assert org.team("north").members == ["u-officer", "u-worker"]

    # 1,200 cells: more than two chunks of ids in every IN (...) the import builds
    n = 1200
    res = geo.import_cells(
        "t",
        SITE,
        fc([feature(i, team="north", departments={"sanitation": "dep-san"}) for i in range(n)]),
        "application/geo+json",
        replace=False,
    )
    assert (res.created, res.updated, res.deleted) == (n, 0, 0)
    found = org.responsibilities({"c0000": "north", "c1199": "north"})
    assert found["c1199"].team == {"id": "north", "name": "North", "leader": "u-worker"}
    assert found["c0000"].departments == {"sanitation": {"id": "dep-san", "name": "San"}}

    # replace with the first 700: 500 deleted (their departments go with them), 700 updated
    res = geo.import_cells(
        "t", SITE, fc([feature(i) for i in range(700)]), "application/geo+json", replace=True
    )
    assert (res.created, res.updated, res.deleted) == (0, 700, 500)
    assert (
        org.responsibilities({"c0699": "north"})["c0699"].departments["sanitation"]["id"]
        == "dep-san"
    )
    with pytest.raises(OrgConflict, match="still responsible for grid cells c0000"):
        org.delete_department("t", "dep-san")
    with pytest.raises(OrgConflict, match="c0000"):
        org.delete_team("t", "north")

    # an empty file with replace removes every cell; then both may go
    assert geo.import_cells("t", SITE, fc([]), "application/geo+json", replace=True).deleted == 700
    org.delete_department("t", "dep-san")
    org.delete_team("t", "north")
    assert org.teams(limit=10, after=None, site=SITE) == []
