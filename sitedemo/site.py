"""The demo site as a config file (``configs/site.yaml``): where the district is, its grid
cells and their teams, points of interest, officers' beats and where the fixed devices hang.

Distances are metres east/north of ``origin`` (a local tangent plane: fine for a district of a
few kilometres). Validated like every other config: unknown keys refused, errors with lines.
"""

from __future__ import annotations

import math
import string
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from edge.config import StrictModel, load_config
from edge.validators import SegmentId
from hub.incidents.config import AlertRule

M_PER_DEG = 111_320.0
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SITE_FILE = ROOT / "configs" / "site.yaml"

Lon = Annotated[float, Field(ge=-180, le=180)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class LonLat(StrictModel):
    lon: Lon
    lat: Lat


class OffsetM(StrictModel):
    east_m: Annotated[float, Field(ge=-50_000, le=50_000)]
    north_m: Annotated[float, Field(ge=-50_000, le=50_000)]


class CellGrid(StrictModel):
    """Square cells in rows (A, B, ... from north to south) and columns (1, 2, ... eastwards);
    cell ``cell-b3`` is named ``B3``."""

    rows: Annotated[int, Field(ge=1, le=26)]
    cols: Annotated[int, Field(ge=1, le=99)]
    cell_size_m: Annotated[float, Field(gt=0, le=10_000)]
    north_west_m: OffsetM = Field(description="the north-west corner of cell A1")
    row_teams: list[Name] = Field(description="the responsible team of each row, north first")

    @model_validator(mode="after")
    def _one_team_per_row(self) -> Self:
        if len(self.row_teams) != self.rows:
            raise ValueError(f"row_teams names {len(self.row_teams)} teams for {self.rows} rows")
        return self

    def cell_ids(self) -> list[str]:
        letters = string.ascii_lowercase
        return [f"cell-{letters[r]}{c + 1}" for r in range(self.rows) for c in range(self.cols)]


class CellWarning(StrictModel):
    cell: SegmentId
    level: Literal["red", "orange", "yellow"]
    reason: Name


class Place(StrictModel):
    id: SegmentId
    name: Name
    category: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]
    at: OffsetM


class Officer(StrictModel):
    id: SegmentId = Field(description="the officer; the glasses device is glasses-<id>")
    name: Name
    beat: list[LonLat] = Field(min_length=2, description="walked in a loop")
    language: Literal["en", "zh-CN"] = Field(default="en", description="of the HUD")
    answer_after_s: Annotated[float, Field(ge=0, le=600)] = Field(
        default=5.0, description="the glasses answer each dispatch by themselves after this "
        "many (real) seconds: acknowledge, on my way, arrived"
    )


Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class Person(StrictModel):
    username: Username
    name: Name


class DemoDepartment(StrictModel):
    id: SegmentId
    name: Name
    line: SegmentId = Field(description="a line of work of the hub's incident vocabulary")
    supervisor: Person = Field(description="the first escalation step (an operator)")


class GridWorker(Person):
    row: Annotated[int, Field(ge=0, le=25)] = Field(description="the row team they work in")


class DemoFieldReport(StrictModel):
    after_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        description="real seconds after the start"
    )
    by: Username = Field(description="a grid worker's username")
    at: OffsetM
    description: Annotated[str, Field(min_length=1, max_length=4000)]
    photo: bool = Field(default=True, description="attach a photo (a frame of the demo video)")


class Workflow(StrictModel):
    """The incident loop on an accelerated clock: departments, people and scripted events."""

    clock_speedup: Annotated[float, Field(ge=1, le=10_000)] = Field(
        default=600, description="hub seconds per real second (deadlines of hours pass quickly)"
    )
    commander: Person
    departments: list[DemoDepartment] = Field(min_length=1)
    grid_workers: list[GridWorker] = Field(default_factory=list)
    field_reports: list[DemoFieldReport] = Field(default_factory=list)
    alert_rules: list[AlertRule] = Field(
        default_factory=list,
        description="alert rules added before the hub's defaults (hub/incidents/config.py)",
    )
    desk_resolves_reports_after_s: Annotated[float, Field(gt=0, le=3600)] | None = Field(
        default=None,
        description="a department desk assigns, works and resolves field-report incidents "
        "this many real seconds after they arrive (None: nobody works them)",
    )


class SiteConfig(StrictModel):
    site: SegmentId
    name: Name
    origin: LonLat = Field(description="the site's reference point, (0, 0) m")
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        default="UTC", description="the site's IANA time zone (the hub's `timezone`)"
    )
    grid: CellGrid
    warnings: list[CellWarning] = Field(default_factory=list)
    places: list[Place] = Field(default_factory=list)
    officers: list[Officer] = Field(default_factory=list)
    device_mounts: dict[SegmentId, OffsetM] = Field(
        default_factory=dict, description="map position of fixed devices, by device id"
    )
    workflow: Workflow | None = None

    @model_validator(mode="after")
    def _workflow_people(self) -> Self:
        if self.workflow is None:
            return self
        wf = self.workflow
        names = [wf.commander.username]
        names += [d.supervisor.username for d in wf.departments]
        names += [w.username for w in wf.grid_workers]
        if len(set(names)) != len(names) or "admin" in names:
            raise ValueError("workflow people need distinct usernames (and not 'admin')")
        for worker in wf.grid_workers:
            if worker.row >= self.grid.rows:
                raise ValueError(f"grid worker {worker.username!r} names row {worker.row}")
        workers = {w.username for w in wf.grid_workers}
        for report in wf.field_reports:
            if report.by not in workers:
                raise ValueError(f"a field report names {report.by!r}, not a grid worker")
        return self

    @model_validator(mode="after")
    def _warnings_name_cells(self) -> Self:
        unknown = sorted({w.cell for w in self.warnings} - set(self.grid.cell_ids()))
        if unknown:
            raise ValueError(f"warnings name cells the grid does not have: {', '.join(unknown)}")
        return self

    def lonlat(self, at: OffsetM) -> tuple[float, float]:
        lon0, lat0 = self.origin.lon, self.origin.lat
        return (
            lon0 + at.east_m / (M_PER_DEG * math.cos(math.radians(lat0))),
            lat0 + at.north_m / M_PER_DEG,
        )

    def square(self, west_m: float, south_m: float, size_m: float) -> dict[str, Any]:
        corners = [(0, 0), (size_m, 0), (size_m, size_m), (0, size_m), (0, 0)]
        ring = [
            list(self.lonlat(OffsetM(east_m=west_m + dx, north_m=south_m + dy)))
            for dx, dy in corners
        ]
        return {"type": "Polygon", "coordinates": [ring]}


def load_site(path: Path = DEFAULT_SITE_FILE) -> SiteConfig:
    return load_config(path, SiteConfig)
