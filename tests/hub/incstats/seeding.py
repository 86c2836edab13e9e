"""Incidents with known times for the statistics tests: opened through
``IncidentService.open_in`` (as every source does), then moved to a state with the times the
test names by direct updates (the transition API is the incidents area's; these tests need
exact times, not a workflow)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, update

from hub.auth import Role, create_user
from hub.incidents.model import IncidentLevel, IncidentSource
from hub.incidents.service import IncidentService, NewIncident
from hub.schema import departments, grid_cells, incidents

T0 = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[114.0, 22.5], [114.1, 22.5], [114.1, 22.6], [114.0, 22.6], [114.0, 22.5]]],
}


@dataclass
class Seeder:
    engine: Engine
    service: IncidentService
    site: str

    def cell(self, cell_id: str, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(grid_cells).values(
                    id=cell_id,
                    site=self.site,
                    name=name,
                    team="",
                    geometry=SQUARE,
                    properties={},
                    updated_at=T0,
                )
            )

    def department(self, department_id: str, name: str, line: str = "sanitation") -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(departments).values(
                    id=department_id, site=self.site, name=name, line=line, updated_at=T0
                )
            )

    def user(self, username: str, role: Role = Role.WORKER) -> None:
        with self.engine.begin() as conn:
            create_user(conn, username, "correct-horse-battery-staple", role)

    def incident(
        self,
        *,
        created: datetime,
        category: str = "garbage",
        state: str = "new",
        site: str | None = None,
        source: IncidentSource = IncidentSource.MANUAL,
        actor: str = "operator",
        title: str = "an incident",
        description: str = "",
        cell: str | None = None,
        department: str | None = None,
        assignee: str | None = None,
        deadline: datetime | None = None,
        resolved: datetime | None = None,
        closed: datetime | None = None,
        lon: float | None = None,
        lat: float | None = None,
    ) -> Any:
        new = NewIncident(
            site=site or self.site,
            source=source,
            category=category,
            level=IncidentLevel.MEDIUM,
            title=title,
            description=description,
            lon=lon,
            lat=lat,
        )
        with self.engine.begin() as conn:
            row = self.service.open_in(conn, actor, new)
            conn.execute(
                update(incidents)
                .where(incidents.c.id == row.id)
                .values(
                    state=state,
                    created_at=created,
                    cell_id=cell,
                    department_id=department,
                    assignee=assignee,
                    deadline_at=deadline,
                    resolved_at=resolved,
                    closed_at=closed,
                )
            )
        return row


def seed_district(s: Seeder) -> dict[str, str]:
    """The scenario the figures in test_service.py are worked out from (times from T0).

    #  category     cell  dept  state        source/by    assignee  resolved  closed  deadline
    1  garbage      c1    d1    closed       report w1    w2        +1h       +3h
    2  garbage      c1    d1    resolved     report w1    w1        +2h
    3  garbage      c2    d1    in_progress  manual       w2                          T0+3d
    4  noise        c2    d2    new          manual                                   T0+20d
    5  noise        -     -     closed       manual                           +5h
    6  streetlight  c1    d2    closed       manual       w2        +4h       +10h
    7  garbage      c1    d1    closed (created before T0: outside the window)
    8  garbage on another site
    """
    s.cell("c1", "North Gate")
    s.cell("c2", "South Market")
    s.department("d1", "Sanitation team")
    s.department("d2", "City management office", line="city_management")
    for name in ("w1", "w2"):
        s.user(name)
    ids: dict[str, str] = {}
    t1 = T0
    ids["1"] = s.incident(
        created=t1, state="closed", source=IncidentSource.REPORT, actor="w1", cell="c1",
        department="d1", assignee="w2", resolved=t1 + H, closed=t1 + 3 * H,
        lon=114.05, lat=22.55, title="=HYPERLINK(\"http://evil.example\",\"click\")",
    ).id  # fmt: skip
    t2 = T0 + D
    ids["2"] = s.incident(
        created=t2, state="resolved", source=IncidentSource.REPORT, actor="w1", cell="c1",
        department="d1", assignee="w1", resolved=t2 + 2 * H, lon=114.06, lat=22.56,
    ).id  # fmt: skip
    ids["3"] = s.incident(
        created=T0 + 2 * D, state="in_progress", cell="c2", department="d1", assignee="w2",
        deadline=T0 + 3 * D, lon=114.07, lat=22.57,
    ).id  # fmt: skip
    ids["4"] = s.incident(
        created=T0 + 3 * D, category="noise", cell="c2", department="d2", deadline=T0 + 20 * D,
        title="噪音扰民 <b>loud</b>",
    ).id  # fmt: skip
    t5 = T0 + 4 * D
    ids["5"] = s.incident(
        created=t5, category="noise", state="closed", closed=t5 + 5 * H,
    ).id  # fmt: skip
    t6 = T0 + 5 * D
    ids["6"] = s.incident(
        created=t6, category="streetlight", state="closed", cell="c1", department="d2",
        assignee="w2", resolved=t6 + 4 * H, closed=t6 + 10 * H, lon=114.08, lat=22.58,
    ).id  # fmt: skip
    t7 = T0 - D
    ids["7"] = s.incident(
        created=t7, state="closed", cell="c1", department="d1", resolved=t7 + H,
        closed=t7 + 2 * H,
    ).id  # fmt: skip
    ids["8"] = s.incident(created=T0 + D, site="elsewhere", cell="c1").id
    return ids
