"""Incidents and the workflow's rules over HTTP: list, detail, open by hand, transitions,
comments, links, attachments; the vocabulary and rules for the dashboard; the routing dry run."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from edge.protocol import AlertKind
from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import Body, Count, Paged, UtcDateTime
from hub.auth import Permission
from hub.errors import TooLarge
from hub.incidents.model import IncidentLevel, IncidentSource, IncidentState
from hub.incidents.repository import IncidentFilter, aware
from hub.incidents.service import TEXT_MAX, TITLE_MAX, Attachment, NewIncident

router = APIRouter(prefix="/api/v1", tags=["incidents"])
IncidentId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-fA-F-]{1,36}$")]
AttachmentId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-fA-F-]{1,36}$")]
Segment = Annotated[str, Field(pattern=SEGMENT_PATTERN)]
SegmentQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]
Text = Annotated[str, Field(max_length=TEXT_MAX)]
RequiredText = Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]
Version = Annotated[int, Field(ge=1, le=2**31, description="the version you last read")]


# --- response models ----------------------------------------------------------------------------


class IncidentInfo(BaseModel):
    id: str
    number: str
    site: str
    source: IncidentSource
    category: str
    level: IncidentLevel
    title: str
    description: str
    cell_id: str | None
    lon: float | None
    lat: float | None
    department_id: str | None
    routing_rule: str | None
    assignee: str | None
    state: IncidentState
    deadline_at: UtcDateTime | None
    escalation_stage: int
    alert_count: int
    first_alert_at: UtcDateTime | None
    last_alert_at: UtcDateTime | None
    opened_by: str
    created_at: UtcDateTime
    updated_at: UtcDateTime
    resolved_at: UtcDateTime | None
    closed_at: UtcDateTime | None
    version: int


class TimelineEvent(BaseModel):
    id: int
    ts: UtcDateTime
    actor: str
    kind: str
    from_state: str | None
    to_state: str | None
    text: str
    details: dict[str, Any]


class LinkedAlert(BaseModel):
    id: str
    kind: str
    severity: str
    ts: UtcDateTime
    device: str


class AttachmentInfo(BaseModel):
    id: str
    kind: str
    filename: str
    content_type: str
    sha256: str
    size_bytes: int
    width: int | None
    height: int | None
    report_id: str | None
    created_by: str
    created_at: UtcDateTime


class IncidentDetailOut(IncidentInfo):
    timeline: list[TimelineEvent]
    alerts: list[LinkedAlert]
    evidence_ids: list[str]
    attachments: list[AttachmentInfo]


def _aware_fields(row: Any) -> dict[str, Any]:
    return {k: aware(v) if isinstance(v, datetime) else v for k, v in dict(row._mapping).items()}


def _info(row: Any) -> IncidentInfo:
    return IncidentInfo.model_validate(_aware_fields(row))


# --- request bodies -----------------------------------------------------------------------------


class OpenBody(Body):
    site: Segment
    category: Segment
    level: IncidentLevel
    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX)]
    description: Text = ""
    cell_id: Segment | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None


class AssignBody(Body):
    assignee: Segment
    version: Version


class VersionBody(Body):
    version: Version


class ResolveBody(Body):
    text: RequiredText
    version: Version


class CloseBody(Body):
    text: Text = ""
    version: Version


class ReopenBody(Body):
    reason: RequiredText
    version: Version


class EditBody(Body):
    version: Version
    category: Segment | None = None
    level: IncidentLevel | None = None
    title: Annotated[str, Field(min_length=1, max_length=TITLE_MAX)] | None = None
    description: Text | None = None


class CommentBody(Body):
    text: RequiredText


class LinkAlertBody(Body):
    alert_id: Annotated[str, Field(min_length=1, max_length=36)]


class LinkEvidenceBody(Body):
    evidence_id: Annotated[str, Field(min_length=1, max_length=36)]


class DryRunBody(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"site": "demo", "category": "garbage", "level": "medium", "cell_id": "c1"}
            ]
        },
    )
    site: Segment
    category: Segment
    level: IncidentLevel
    cell_id: Segment | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    at: datetime | None = Field(default=None, description="aware timestamp; default now")


class TraceOut(BaseModel):
    rule: str
    matched: bool
    reason: str
    detail: str


class DryRunOut(BaseModel):
    rule: str | None
    department: str | None
    cell_id: str | None
    trace: list[TraceOut]
    warnings: list[str]


# --- incidents ----------------------------------------------------------------------------------


def incident_filter(
    site: SegmentQuery = None,
    state: Annotated[list[IncidentState] | None, Query(max_length=5)] = None,
    cell: SegmentQuery = None,
    department: SegmentQuery = None,
    category: SegmentQuery = None,
    level: Annotated[list[IncidentLevel] | None, Query(max_length=4)] = None,
    assignee: SegmentQuery = None,
    kind: Annotated[
        list[AlertKind] | None, Query(max_length=20, description="has a linked alert of this kind")
    ] = None,
    device: Annotated[
        str | None, Query(pattern=SEGMENT_PATTERN, description="has a linked alert from it")
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> IncidentFilter:
    """The filters of the incident list and of its count (one definition, so they agree)."""
    return IncidentFilter(
        site=site,
        states=[s.value for s in state] if state else None,
        cell=cell,
        department=department,
        category=category,
        assignee=assignee,
        since=since,
        until=until,
        levels=[lv.value for lv in level] if level else None,
        alert_kinds=[k.value for k in kind] if kind else None,
        device=device,
    )


IncidentFilterDep = Annotated[IncidentFilter, Depends(incident_filter)]


@router.get("/incidents", response_model=Paged[IncidentInfo], **guarded(Permission.INCIDENTS_READ))
def list_incidents(ctx: Ctx, page: PageDep, f: IncidentFilterDep) -> Paged[IncidentInfo]:
    """Incidents, newest first."""
    rows = ctx.incidents.page(f, limit=page.limit, after=page.after_text())
    items = [_info(r) for r in rows]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[IncidentInfo](items=items, next_cursor=nxt)


@router.get("/incidents/count", response_model=Count, **guarded(Permission.INCIDENTS_READ))
def count_incidents(ctx: Ctx, f: IncidentFilterDep) -> Count:
    """How many incidents the same filters as ``GET /incidents`` select, over all its pages."""
    return Count(total=ctx.incidents.count(f))


@router.post(
    "/incidents",
    response_model=IncidentInfo,
    status_code=201,
    **guarded(Permission.INCIDENTS_MANAGE),
)
def open_incident(body: OpenBody, me: Me, ctx: Ctx) -> IncidentInfo:
    """Open an incident by hand; it is located in its cell and routed to a department."""
    row = ctx.incidents.open(
        me.username,
        NewIncident(
            site=body.site,
            source=IncidentSource.MANUAL,
            category=body.category,
            level=body.level,
            title=body.title,
            description=body.description,
            lon=body.lon,
            lat=body.lat,
            cell_id=body.cell_id,
        ),
    )
    return _info(row)


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentDetailOut,
    **guarded(Permission.INCIDENTS_READ),
)
def get_incident(incident_id: IncidentId, ctx: Ctx) -> IncidentDetailOut:
    """An incident with its timeline, linked alerts (the first 500), evidence and attachments."""
    d = ctx.incidents.detail(incident_id)
    return IncidentDetailOut(
        **_info(d.row).model_dump(),
        timeline=[TimelineEvent.model_validate(_aware_fields(e)) for e in d.events],
        alerts=[LinkedAlert.model_validate(_aware_fields(a)) for a in d.alerts],
        evidence_ids=d.evidence_ids,
        attachments=[AttachmentInfo.model_validate(_aware_fields(a)) for a in d.attachments],
    )


def _detail(ctx: Any, incident_id: str) -> IncidentDetailOut:
    return get_incident(incident_id, ctx)


@router.post(
    "/incidents/{incident_id}/assign",
    response_model=IncidentDetailOut,
    **guarded(Permission.INCIDENTS_MANAGE),
)
def assign(incident_id: IncidentId, body: AssignBody, me: Me, ctx: Ctx) -> IncidentDetailOut:
    """Assign (or reassign) to an active user, who is notified."""
    ctx.incidents.assign(me.username, incident_id, body.assignee, body.version)
    return _detail(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}/start",
    response_model=IncidentDetailOut,
    **guarded(Permission.INCIDENTS_WORK),
)
def start(incident_id: IncidentId, body: VersionBody, me: Me, ctx: Ctx) -> IncidentDetailOut:
    """Start work (the assignee, or anyone who may manage incidents)."""
    may_manage = me.can(Permission.INCIDENTS_MANAGE)
    ctx.incidents.start(me.username, incident_id, body.version, may_manage=may_manage)
    return _detail(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=IncidentDetailOut,
    **guarded(Permission.INCIDENTS_WORK),
)
def resolve(incident_id: IncidentId, body: ResolveBody, me: Me, ctx: Ctx) -> IncidentDetailOut:
    """Resolve, saying what was done (the assignee, or anyone who may manage incidents)."""
    may_manage = me.can(Permission.INCIDENTS_MANAGE)
    ctx.incidents.resolve(me.username, incident_id, body.text, body.version, may_manage=may_manage)
    return _detail(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}/close",
    response_model=IncidentDetailOut,
    **guarded(Permission.INCIDENTS_MANAGE),
)
def close(incident_id: IncidentId, body: CloseBody, me: Me, ctx: Ctx) -> IncidentDetailOut:
    """Close: after resolution, or at once (a duplicate or a false alarm)."""
    ctx.incidents.close(me.username, incident_id, body.text, body.version)
    return _detail(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}/reopen",
    response_model=IncidentDetailOut,
    **guarded(Permission.INCIDENTS_MANAGE),
)
def reopen(incident_id: IncidentId, body: ReopenBody, me: Me, ctx: Ctx) -> IncidentDetailOut:
    """Reopen a resolved or closed incident (back to its assignee, or to new)."""
    ctx.incidents.reopen(me.username, incident_id, body.reason, body.version)
    return _detail(ctx, incident_id)


@router.patch(
    "/incidents/{incident_id}",
    response_model=IncidentDetailOut,
    **guarded(Permission.INCIDENTS_MANAGE),
)
def edit(incident_id: IncidentId, body: EditBody, me: Me, ctx: Ctx) -> IncidentDetailOut:
    """Change category, level, title or description (the department stays)."""
    ctx.incidents.edit(
        me.username,
        incident_id,
        body.version,
        category=body.category,
        level=body.level,
        title=body.title,
        description=body.description,
    )
    return _detail(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}/comments",
    response_model=IncidentDetailOut,
    status_code=201,
    **guarded(Permission.INCIDENTS_WORK),
)
def comment(incident_id: IncidentId, body: CommentBody, me: Me, ctx: Ctx) -> IncidentDetailOut:
    ctx.incidents.comment(me.username, incident_id, body.text)
    return _detail(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}/alerts",
    response_model=IncidentDetailOut,
    **guarded(Permission.INCIDENTS_MANAGE),
)
def link_alert(incident_id: IncidentId, body: LinkAlertBody, me: Me, ctx: Ctx) -> IncidentDetailOut:
    """Link an alert (idempotent); retention keeps it while the incident is open."""
    ctx.incidents.link_alert(me.username, incident_id, body.alert_id)
    return _detail(ctx, incident_id)


@router.post(
    "/incidents/{incident_id}/evidence",
    response_model=IncidentDetailOut,
    **guarded(Permission.INCIDENTS_MANAGE),
)
def link_evidence(
    incident_id: IncidentId, body: LinkEvidenceBody, me: Me, ctx: Ctx
) -> IncidentDetailOut:
    """Link an evidence snapshot (idempotent); retention keeps it while the incident is open."""
    ctx.incidents.link_evidence(me.username, incident_id, body.evidence_id)
    return _detail(ctx, incident_id)


def _with_raw_body(kw: dict[str, Any]) -> dict[str, Any]:
    """Document the raw upload body (the handler reads the stream itself)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    kw["openapi_extra"]["requestBody"] = {
        "required": True,
        "content": dict.fromkeys(("image/jpeg", "application/pdf", "audio/ogg"), binary),
    }
    return kw


@router.post(
    "/incidents/{incident_id}/attachments",
    response_model=AttachmentInfo,
    status_code=201,
    **_with_raw_body(guarded(Permission.INCIDENTS_WORK, {413: {"description": "too large"}})),
)
async def add_attachment(
    incident_id: IncidentId,
    request: Request,
    me: Me,
    ctx: Ctx,
    filename: Annotated[str, Query(max_length=200)] = "",
) -> AttachmentInfo:
    """Upload a photo (image/jpeg, re-encoded), a voice note (audio/*) or a PDF as the raw
    request body, its type in Content-Type."""
    limit = ctx.config.incidents.attachments.max_bytes
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise TooLarge(f"attachment is over the limit of {limit} bytes")
    upload = Attachment(bytes(data), request.headers.get("content-type", ""), filename)
    row = await run_in_threadpool(ctx.incidents.add_attachment, me.username, incident_id, upload)
    return AttachmentInfo.model_validate(_aware_fields(row))


@router.get(
    "/incidents/{incident_id}/attachments/{attachment_id}",
    response_class=Response,
    **guarded(Permission.INCIDENTS_READ, {200: {"content": {"application/octet-stream": {}}}}),
)
def get_attachment(
    incident_id: IncidentId, attachment_id: AttachmentId, me: Me, ctx: Ctx
) -> Response:
    """An attachment's bytes; every download is audited. Never rendered inline as a page."""
    row = ctx.incidents.attachment(me.username, incident_id, attachment_id)
    return Response(
        bytes(row.data),
        media_type=row.content_type,
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": f'attachment; filename="{row.id}"',
        },
    )


class AssigneeOut(BaseModel):
    username: str
    display_name: str
    role: str


class AssigneesOut(BaseModel):
    team: list[AssigneeOut] = Field(description="active members of the cell's responsible team")
    officers: list[AssigneeOut] = Field(description="active officers")


@router.get(
    "/incidents/{incident_id}/assignees",
    response_model=AssigneesOut,
    **guarded(Permission.INCIDENTS_MANAGE),
)
def assignees(incident_id: IncidentId, ctx: Ctx) -> AssigneesOut:
    """Whom to assign to: the cell team's active members and the active officers (the
    dashboard's picker; users cannot be listed without ``users:read``)."""
    team, officers = ctx.incidents.assignees(incident_id)
    return AssigneesOut(
        team=[AssigneeOut.model_validate(r._mapping) for r in team],
        officers=[AssigneeOut.model_validate(r._mapping) for r in officers],
    )


# --- workflow -----------------------------------------------------------------------------------


@router.get("/workflow", **guarded(Permission.WORKFLOW_READ))
def workflow(ctx: Ctx) -> dict[str, Any]:
    """The vocabulary, levels, alert rules and routing rules (for the dashboard), and the
    alert intake's counters."""
    cfg = ctx.incidents.config
    return {
        "lines": [line.model_dump(by_alias=True) for line in cfg.lines],
        "categories": [c.model_dump(by_alias=True) for c in cfg.categories],
        "levels": [level.value for level in IncidentLevel],
        "states": [s.value for s in IncidentState],
        "alert_rules": [r.model_dump(mode="json") for r in cfg.alert_rules],
        "routing": [r.model_dump(mode="json", by_alias=True) for r in cfg.routing],
        "timezone": ctx.config.timezone,
        "intake": ctx.incidents.intake.as_dict(),
    }


@router.post(
    "/workflow/routing/dry-run", response_model=DryRunOut, **guarded(Permission.WORKFLOW_READ)
)
def dry_run(body: DryRunBody, ctx: Ctx) -> DryRunOut:
    """Which rule and department routing would choose, and why every earlier rule did not."""
    decision, cell_id, warnings = ctx.incidents.dry_run(
        body.site,
        body.category,
        body.level,
        cell_id=body.cell_id,
        lon=body.lon,
        lat=body.lat,
        at=body.at,
    )
    return DryRunOut(
        rule=decision.rule,
        department=decision.department,
        cell_id=cell_id,
        trace=[TraceOut(**s.as_dict()) for s in decision.trace],
        warnings=warnings,
    )
