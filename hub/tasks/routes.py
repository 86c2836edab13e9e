"""``/api/v1/tasks``: the incidents assigned to the caller, and the three things the field page
does with one (accept, start, done with a note).

Permission ``tasks:work``. A grid worker holds no ``incidents:read``: they see the incidents
assigned to them and nothing else, so every route here answers 404 for anyone else's incident
(whether it exists is not theirs to learn). The rules are the incident service's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import Body, Paged
from hub.auth import Permission
from hub.incidents.model import OPEN_STATES, IncidentState
from hub.incidents.repository import IncidentFilter
from hub.incidents.routes import (
    IncidentId,
    IncidentInfo,
    TimelineEvent,
    Version,
    _aware_fields,
    _info,
)
from hub.incidents.service import TEXT_MAX, IncidentNotFound

router = APIRouter(prefix="/api/v1", tags=["tasks"])
Note = Annotated[str, Field(max_length=TEXT_MAX)]
NOT_YOURS: dict[int | str, Any] = {404: {"description": "no such incident, or not assigned to you"}}


class TaskOut(IncidentInfo):
    timeline: list[TimelineEvent] = Field(description="the incident's events, oldest first")


class AcceptBody(Body):
    note: Note = ""


class StartBody(Body):
    version: Version


class DoneBody(Body):
    version: Version
    note: Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]


def _mine(ctx: Any, me: Any, incident_id: str) -> TaskOut:
    detail = ctx.incidents.detail(incident_id)
    if detail.row.assignee != me.username:
        raise IncidentNotFound(f"no incident {incident_id!r} assigned to you")
    return TaskOut(
        **_info(detail.row).model_dump(),
        timeline=[TimelineEvent.model_validate(_aware_fields(e)) for e in detail.events],
    )


@router.get("/tasks", response_model=Paged[IncidentInfo], **guarded(Permission.TASKS_WORK))
def my_tasks(me: Me, ctx: Ctx, page: PageDep, *, done: bool = False) -> Paged[IncidentInfo]:
    """Incidents assigned to the caller, newest first: open ones (assigned, in progress), or
    with ``done=true`` the resolved and closed ones."""
    states = (
        [IncidentState.RESOLVED.value, IncidentState.CLOSED.value]
        if done
        else [s.value for s in OPEN_STATES]
    )
    f = IncidentFilter(states=states, assignee=me.username)
    rows = ctx.incidents.page(f, limit=page.limit, after=page.after_text())
    items = [_info(r) for r in rows]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[IncidentInfo](items=items, next_cursor=nxt)


@router.get(
    "/tasks/{incident_id}", response_model=TaskOut, **guarded(Permission.TASKS_WORK, NOT_YOURS)
)
def get_task(incident_id: IncidentId, me: Me, ctx: Ctx) -> TaskOut:
    return _mine(ctx, me, incident_id)


@router.post(
    "/tasks/{incident_id}/accept",
    response_model=TaskOut,
    **guarded(Permission.TASKS_WORK, NOT_YOURS),
)
def accept(incident_id: IncidentId, body: AcceptBody, me: Me, ctx: Ctx) -> TaskOut:
    """Take the task on (an ``accepted`` timeline event with the note; the state stays)."""
    _mine(ctx, me, incident_id)
    ctx.incidents.accept(me.username, incident_id, body.note)
    return _mine(ctx, me, incident_id)


@router.post(
    "/tasks/{incident_id}/start",
    response_model=TaskOut,
    **guarded(Permission.TASKS_WORK, NOT_YOURS),
)
def start(incident_id: IncidentId, body: StartBody, me: Me, ctx: Ctx) -> TaskOut:
    """Work on it now (assigned -> in progress)."""
    _mine(ctx, me, incident_id)
    ctx.incidents.start(me.username, incident_id, body.version, may_manage=False)
    return _mine(ctx, me, incident_id)


@router.post(
    "/tasks/{incident_id}/done",
    response_model=TaskOut,
    **guarded(Permission.TASKS_WORK, NOT_YOURS),
)
def done(incident_id: IncidentId, body: DoneBody, me: Me, ctx: Ctx) -> TaskOut:
    """Done: resolve it, saying what was done (a commander closes it)."""
    _mine(ctx, me, incident_id)
    ctx.incidents.resolve(me.username, incident_id, body.note, body.version, may_manage=False)
    return _mine(ctx, me, incident_id)
