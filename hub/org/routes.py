"""Departments, teams of grid workers, and the responsibility for a grid cell."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import Body, Id, Paged, UtcDateTime
from hub.auth import Permission
from hub.org.service import DepartmentDraft, Responsibility, Team, TeamDraft

router = APIRouter(prefix="/api/v1", tags=["organisation"])
OrgId = Annotated[str, Path(pattern=SEGMENT_PATTERN)]
SiteQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]
Username = Annotated[str, Field(pattern=SEGMENT_PATTERN, examples=["demo-worker"])]
Line = Annotated[str, Field(pattern=SEGMENT_PATTERN, examples=["sanitation"])]
Name = Annotated[str, Field(min_length=1, max_length=200)]
CONFLICT: dict[int | str, Any] = {409: {"description": "still referenced, or the id is taken"}}
INVALID: dict[int | str, Any] = {422: {"description": "names every field to fix"}}


class DepartmentBody(Body):
    name: Name
    line: Line = Field(description="a line of work of the incident vocabulary")
    site: Id | None = Field(default=None, description="None: serves every site of this hub")
    supervisor: Username | None = Field(default=None, description="first escalation step")
    commander: Username | None = Field(default=None, description="second escalation step")


class DepartmentCreate(DepartmentBody):
    id: Id | None = Field(default=None, description="chosen by the hub when left out")


class DepartmentInfo(BaseModel):
    id: str
    site: str | None
    name: str
    line: str
    supervisor: str | None
    commander: str | None
    updated_at: UtcDateTime


class TeamBody(Body):
    site: Id
    name: Name
    members: Annotated[list[Username], Field(max_length=500)] = Field(
        default_factory=list, description="users of role worker, officer or operator"
    )
    leader: Username | None = Field(default=None, description="one of the members")


class TeamCreate(TeamBody):
    id: Id | None = Field(default=None, description="chosen by the hub when left out")


class TeamInfo(BaseModel):
    id: str
    site: str
    name: str
    leader: str | None
    members: list[str]
    updated_at: UtcDateTime


class ResponsibilityBody(Body):
    team_id: Id | None = Field(default=None, description="the responsible team; None: none")
    departments: Annotated[dict[Line, Id], Field(max_length=64)] = Field(
        default_factory=dict,
        description="line of work -> department id (replaces the cell's previous ones)",
        examples=[{"sanitation": "dept-sanitation"}],
    )


class TeamRef(BaseModel):
    id: str
    name: str
    leader: str | None


class DepartmentRef(BaseModel):
    id: str
    name: str


class ResponsibilityInfo(BaseModel):
    cell_id: str
    team: TeamRef | None
    departments: dict[str, DepartmentRef]


def _utc(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _department(row: Any) -> DepartmentInfo:
    return DepartmentInfo(
        id=row.id,
        site=row.site,
        name=row.name,
        line=row.line,
        supervisor=row.supervisor,
        commander=row.commander,
        updated_at=_utc(row.updated_at),
    )


def _team(team: Team) -> TeamInfo:
    r = team.row
    return TeamInfo(
        id=r.id,
        site=r.site,
        name=r.name,
        leader=r.leader,
        members=team.members,
        updated_at=_utc(r.updated_at),
    )


def _department_draft(body: DepartmentBody) -> DepartmentDraft:
    return DepartmentDraft(
        name=body.name,
        line=body.line,
        site=body.site,
        supervisor=body.supervisor,
        commander=body.commander,
    )


def _team_draft(body: TeamBody) -> TeamDraft:
    return TeamDraft(site=body.site, name=body.name, members=body.members, leader=body.leader)


# -- departments ----------------------------------------------------------------------------


@router.get("/departments", response_model=Paged[DepartmentInfo], **guarded(Permission.ORG_READ))
def list_departments(
    ctx: Ctx,
    page: PageDep,
    site: SiteQuery = None,
    line: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
) -> Paged[DepartmentInfo]:
    """Departments by id; ``site`` also lists those serving every site."""
    rows = ctx.org.departments(limit=page.limit, after=page.after_text(), site=site, line=line)
    nxt = encode_cursor([rows[-1].id]) if len(rows) == page.limit else None
    return Paged[DepartmentInfo](items=[_department(r) for r in rows], next_cursor=nxt)


@router.post(
    "/departments",
    response_model=DepartmentInfo,
    status_code=201,
    **guarded(Permission.ORG_WRITE, {**CONFLICT, **INVALID}),
)
def create_department(body: DepartmentCreate, me: Me, ctx: Ctx) -> DepartmentInfo:
    return _department(ctx.org.create_department(me.username, _department_draft(body), body.id))


@router.get(
    "/departments/{department_id}",
    response_model=DepartmentInfo,
    **guarded(Permission.ORG_READ),
)
def get_department(department_id: OrgId, ctx: Ctx) -> DepartmentInfo:
    return _department(ctx.org.department(department_id))


@router.put(
    "/departments/{department_id}",
    response_model=DepartmentInfo,
    **guarded(Permission.ORG_WRITE, {**CONFLICT, **INVALID}),
)
def put_department(department_id: OrgId, body: DepartmentBody, me: Me, ctx: Ctx) -> DepartmentInfo:
    """Replace a department (its line cannot change while cells name it)."""
    row = ctx.org.update_department(me.username, department_id, _department_draft(body))
    return _department(row)


@router.delete(
    "/departments/{department_id}",
    status_code=204,
    **guarded(Permission.ORG_WRITE, CONFLICT),
)
def delete_department(department_id: OrgId, me: Me, ctx: Ctx) -> None:
    """Refused (409) while a grid cell or an open incident names the department."""
    ctx.org.delete_department(me.username, department_id)


# -- teams ----------------------------------------------------------------------------------


@router.get("/teams", response_model=Paged[TeamInfo], **guarded(Permission.ORG_READ))
def list_teams(ctx: Ctx, page: PageDep, site: SiteQuery = None) -> Paged[TeamInfo]:
    found = ctx.org.teams(limit=page.limit, after=page.after_text(), site=site)
    nxt = encode_cursor([found[-1].row.id]) if len(found) == page.limit else None
    return Paged[TeamInfo](items=[_team(t) for t in found], next_cursor=nxt)


@router.post(
    "/teams",
    response_model=TeamInfo,
    status_code=201,
    **guarded(Permission.ORG_WRITE, {**CONFLICT, **INVALID}),
)
def create_team(body: TeamCreate, me: Me, ctx: Ctx) -> TeamInfo:
    return _team(ctx.org.create_team(me.username, _team_draft(body), body.id))


@router.get("/teams/{team_id}", response_model=TeamInfo, **guarded(Permission.ORG_READ))
def get_team(team_id: OrgId, ctx: Ctx) -> TeamInfo:
    return _team(ctx.org.team(team_id))


@router.put(
    "/teams/{team_id}",
    response_model=TeamInfo,
    **guarded(Permission.ORG_WRITE, {**CONFLICT, **INVALID}),
)
def put_team(team_id: OrgId, body: TeamBody, me: Me, ctx: Ctx) -> TeamInfo:
    """Replace a team; the member list is replaced as a whole, atomically."""
    return _team(ctx.org.update_team(me.username, team_id, _team_draft(body)))


@router.delete("/teams/{team_id}", status_code=204, **guarded(Permission.ORG_WRITE, CONFLICT))
def delete_team(team_id: OrgId, me: Me, ctx: Ctx) -> None:
    """Refused (409) while a grid cell names the team."""
    ctx.org.delete_team(me.username, team_id)


# -- cell responsibility --------------------------------------------------------------------


def responsibility_info(cell_id: str, found: Responsibility) -> ResponsibilityInfo:
    return ResponsibilityInfo.model_validate(
        {"cell_id": cell_id, "team": found.team, "departments": found.departments}
    )


@router.put(
    "/grid-cells/{cell_id}/responsibility",
    response_model=ResponsibilityInfo,
    **guarded(Permission.ORG_WRITE, INVALID),
)
def put_responsibility(
    cell_id: OrgId, body: ResponsibilityBody, me: Me, ctx: Ctx
) -> ResponsibilityInfo:
    """Name the cell's team and its department per line of work (replacing the old ones)."""
    found = ctx.org.set_responsibility(me.username, cell_id, body.team_id, body.departments)
    return responsibility_info(cell_id, found)


class LineNames(BaseModel):
    en: str
    zh: str = Field(alias="zh-CN")


class LineInfo(BaseModel):
    id: str
    names: LineNames


@router.get("/lines", response_model=list[LineInfo], **guarded(Permission.ORG_READ))
def list_lines(ctx: Ctx) -> list[LineInfo]:
    """The lines of work of the incident vocabulary (a department works on one of them)."""
    return [
        LineInfo.model_validate(
            {"id": ln.id, "names": {"en": ln.names.en, "zh-CN": ln.names.zh_CN}}
        )
        for ln in ctx.config.incidents.lines
    ]
