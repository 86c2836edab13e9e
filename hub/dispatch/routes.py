"""``/api/v1``: officers (availability, glasses binding, duty), an incident's dispatches, manual
dispatch and cancel, and the officer's own dispatches and answers (the phone HUD's path).

HTTP only: the rules are in hub/dispatch/service.py. An officer asking about a dispatch that is
not theirs gets 404 (whether it exists is not theirs to learn).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from edge.protocol import ExpectedAction, Location, OfficerAnswer
from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, Me, guarded
from hub.api.models import Body, UtcDateTime
from hub.auth import Permission
from hub.dispatch.service import NOTE_MAX, OfficerView
from hub.incidents.routes import IncidentId
from hub.matches.routes import OfficerMatchOut

router = APIRouter(prefix="/api/v1", tags=["dispatch"])
Username = Annotated[str, Path(pattern=SEGMENT_PATTERN)]
DispatchId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-fA-F-]{1,36}$")]
NOT_YOURS: dict[int | str, Any] = {404: {"description": "no such dispatch, or not yours"}}
CONFLICT: dict[int | str, Any] = {409: {"description": "the change conflicts with the state"}}
Availability = Literal["available", "busy", "offline", "off_duty"]


class LastFix(BaseModel):
    lon: float
    lat: float
    heading_deg: float | None
    ts: UtcDateTime


class OfficerOut(BaseModel):
    username: str
    display_name: str
    device: str | None
    on_duty: bool
    availability: Availability
    busy_with: str | None = Field(description="the incident the officer is working on")
    last_fix: LastFix | None


class OfficerUpdate(Body):
    device: Annotated[str, Field(pattern=SEGMENT_PATTERN)] | None = Field(
        description="the glasses device to bind (None: unbind)"
    )
    on_duty: bool


class DutyUpdate(Body):
    on_duty: bool


class DispatchOut(BaseModel):
    id: str
    incident_id: str
    officer: str
    device: str
    round: int
    action: ExpectedAction
    state: str
    distance_m: float | None
    notified_at: UtcDateTime
    respond_by: UtcDateTime
    last_answer: OfficerAnswer | None
    answered_at: UtcDateTime | None
    notify_id: str
    delivered_at: UtcDateTime | None


class Point(BaseModel):
    lon: float
    lat: float


class MyDispatchOut(DispatchOut):
    kind: str
    severity: str
    title: str
    incident_number: str | None
    location: Point | None
    issued_at: UtcDateTime
    alert_id: str | None
    match: OfficerMatchOut | None = Field(
        description="the confirmed face match this dispatch is sent to verify (the outcome "
        "goes to POST /api/v1/matches/{id}/outcome)"
    )


class ManualDispatch(Body):
    officer: Annotated[str, Field(pattern=SEGMENT_PATTERN)]
    action: ExpectedAction = ExpectedAction.ATTEND
    force: bool = Field(default=False, description="dispatch an offline or off-duty officer")


class CancelBody(Body):
    reason: Annotated[str, Field(max_length=NOTE_MAX)] = ""


class AnswerBody(Body):
    answer: OfficerAnswer
    note: Annotated[str, Field(max_length=NOTE_MAX)] = ""
    location: Location | None = None


def _officer(view: OfficerView) -> OfficerOut:
    fix = view.last_fix
    return OfficerOut(
        username=view.username,
        display_name=view.display_name,
        device=view.device,
        on_duty=view.on_duty,
        availability=view.availability.value,
        busy_with=view.busy_with,
        last_fix=LastFix(lon=fix.lon, lat=fix.lat, heading_deg=fix.heading_deg, ts=fix.ts)
        if fix is not None
        else None,
    )


def _dispatch(row: Any) -> DispatchOut:
    return DispatchOut.model_validate(_fields(row))


def _fields(row: Any) -> dict[str, Any]:
    return {k: row._mapping[k] for k in DispatchOut.model_fields}


@router.get("/officers", response_model=list[OfficerOut], **guarded(Permission.DISPATCH_READ))
def officers(ctx: Ctx) -> list[OfficerOut]:
    """Every active officer: bound glasses, duty, availability, last fix."""
    return [_officer(v) for v in ctx.dispatch.officers()]


@router.put(
    "/officers/{username}",
    response_model=OfficerOut,
    **guarded(Permission.DISPATCH_MANAGE, CONFLICT),
)
def put_officer(username: Username, body: OfficerUpdate, me: Me, ctx: Ctx) -> OfficerOut:
    """Bind a registered glasses device to the officer and set their duty (409: the device is
    another officer's)."""
    view = ctx.dispatch.set_officer(me.username, username, device=body.device, on_duty=body.on_duty)
    return _officer(view)


@router.get("/me/duty", response_model=OfficerOut, **guarded(Permission.DISPATCH_ANSWER))
def get_my_duty(me: Me, ctx: Ctx) -> OfficerOut:
    """The calling officer as the commanders see them: duty, availability, bound glasses."""
    return _officer(ctx.dispatch.officer(me.username))


@router.put("/me/duty", response_model=OfficerOut, **guarded(Permission.DISPATCH_ANSWER))
def put_my_duty(body: DutyUpdate, me: Me, ctx: Ctx) -> OfficerOut:
    """The officer goes on or off duty."""
    return _officer(ctx.dispatch.set_duty(me.username, on_duty=body.on_duty))


@router.get(
    "/incidents/{incident_id}/dispatches",
    response_model=list[DispatchOut],
    **guarded(Permission.DISPATCH_READ),
)
def incident_dispatches(incident_id: IncidentId, ctx: Ctx) -> list[DispatchOut]:
    """Every officer asked for the incident, in the order they were asked."""
    return [_dispatch(r) for r in ctx.dispatch.of_incident(incident_id)]


@router.post(
    "/incidents/{incident_id}/dispatches",
    response_model=DispatchOut,
    status_code=201,
    **guarded(Permission.DISPATCH_MANAGE, CONFLICT),
)
def manual_dispatch(incident_id: IncidentId, body: ManualDispatch, me: Me, ctx: Ctx) -> DispatchOut:
    """Send an officer by hand (409 when offline or off duty, unless ``force``)."""
    row = ctx.dispatch.dispatch(
        me.username, incident_id, body.officer, body.action, force=body.force
    )
    return _dispatch(row)


@router.post(
    "/dispatches/{dispatch_id}/cancel",
    response_model=DispatchOut,
    **guarded(Permission.DISPATCH_MANAGE, CONFLICT),
)
def cancel(dispatch_id: DispatchId, body: CancelBody, me: Me, ctx: Ctx) -> DispatchOut:
    return _dispatch(ctx.dispatch.cancel(me.username, dispatch_id, body.reason))


@router.get(
    "/dispatches/mine", response_model=list[MyDispatchOut], **guarded(Permission.DISPATCH_ANSWER)
)
def mine(me: Me, ctx: Ctx) -> list[MyDispatchOut]:
    """The caller's open dispatches, most urgent first, with what their Notify carried and,
    for one sent to verify a confirmed face match, that match (as an officer may see it)."""
    out = []
    rows = ctx.dispatch.mine(me.username)
    matches = ctx.matches.for_officer(me.username, [str(r.incident_id) for r, _ in rows])
    for row, notify in rows:
        loc = notify.location if notify is not None else None
        out.append(
            MyDispatchOut(
                **_fields(row),
                kind=notify.kind.value if notify is not None else "",
                severity=notify.severity.value if notify is not None else row.incident_level,
                title=notify.title if notify is not None else "",
                incident_number=notify.incident_number if notify is not None else None,
                location=Point(lon=loc.lon, lat=loc.lat) if loc is not None else None,
                issued_at=row.issued_at,
                alert_id=row.alert_id,
                match=matches.get(str(row.incident_id)),
            )
        )
    return out


@router.post(
    "/dispatches/{dispatch_id}/answers",
    response_model=DispatchOut,
    **guarded(Permission.DISPATCH_ANSWER, {**NOT_YOURS, **CONFLICT}),
)
def answer(dispatch_id: DispatchId, body: AnswerBody, me: Me, ctx: Ctx) -> DispatchOut:
    """The officer's answer from the phone: the same effect as a DispatchAnswer over MQTT."""
    row = ctx.dispatch.answer_http(me.username, dispatch_id, body.answer, body.note, body.location)
    return _dispatch(row)
