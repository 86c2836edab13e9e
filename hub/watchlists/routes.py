"""``/api/v1/watchlists``: the governed entries, their enrolment (multipart), approval,
refusal, revocation and the audited photo view. HTTP only: the rules are in service.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import Body, Paged, UtcDateTime
from hub.auth import Permission
from hub.errors import Invalid, Unsupported
from hub.watchlists.service import REASON_MAX, EnrolInput, GovernanceRefused

router = APIRouter(prefix="/api/v1/watchlists", tags=["watchlists"])
EntryId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-fA-F-]{1,36}$")]
Status = Literal["pending", "active", "refused", "revoked", "expired"]
FIELDS = ("label", "category", "reason", "legal_basis", "expires_at")
FIELD_MAX_BYTES = 4096
REFUSALS: dict[int | str, Any] = {
    403: {"description": "not allowed for this caller or this entry (code says which rule)"},
    404: {"description": "no such entry"},
    409: {"description": "the entry is not in a state that allows this"},
}
ENROL_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["photo", *FIELDS],
                    "properties": {
                        "photo": {
                            "type": "string",
                            "format": "binary",
                            "description": "JPEG or PNG portrait with exactly one face",
                        },
                        **{name: {"type": "string"} for name in FIELDS[:-1]},
                        "expires_at": {"type": "string", "format": "date-time"},
                    },
                }
            }
        },
    }
}


class WatchlistSettings(BaseModel):
    categories: list[str]
    max_expiry_days: int
    require_distinct_approver: bool
    photo_max_bytes: int


class Entry(BaseModel):
    id: str
    label: str
    category: str
    reason: str
    legal_basis: str
    status: Status = Field(description="as of now: an active entry past expires_at is expired")
    enrolled_by: str
    enrolled_at: UtcDateTime
    approved_by: str | None
    approved_at: UtcDateTime | None
    refused_by: str | None
    refused_at: UtcDateTime | None
    refuse_reason: str | None
    expires_at: UtcDateTime
    revoked_by: str | None
    revoked_at: UtcDateTime | None
    revoke_reason: str | None
    quality: dict[str, float]
    model: str


class ReasonBody(Body):
    reason: Annotated[str, Field(max_length=REASON_MAX)]


def _entry(ctx: Any, row: Any) -> Entry:
    fields = {k: row._mapping[k] for k in Entry.model_fields if k != "status"}
    return Entry(**fields, status=ctx.watchlists.status_of(row))


@router.get("/config", response_model=WatchlistSettings, **guarded(Permission.WATCHLIST_READ))
def settings(ctx: Ctx) -> WatchlistSettings:
    """The categories, the longest expiry allowed and the approval rule (for the form)."""
    config = ctx.config.watchlists
    return WatchlistSettings(
        categories=list(config.categories),
        max_expiry_days=config.max_expiry_days,
        require_distinct_approver=True,
        photo_max_bytes=config.photo_max_bytes,
    )


@router.get("/entries", response_model=Paged[Entry], **guarded(Permission.WATCHLIST_READ))
def entries(ctx: Ctx, page: PageDep, status: Status | None = None) -> Paged[Entry]:
    """Entries newest first, optionally of one status (as of now)."""
    rows = ctx.watchlists.page(status, limit=page.limit, after=page.after_text())
    items = [_entry(ctx, r) for r in rows]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[Entry](items=items, next_cursor=nxt)


async def _form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise Unsupported(
            "send the entry as multipart/form-data (a photo file and the fields)",
            code="photo.not_multipart",
        )
    try:
        return await request.form(
            max_files=2, max_fields=len(FIELDS) + 3, max_part_size=FIELD_MAX_BYTES
        )
    except HTTPException as err:  # Starlette's 400 for a malformed or over-long body
        raise Invalid(
            f"the multipart body was refused: {err.detail} (one photo file and the fields "
            f"{', '.join(FIELDS)})",
            code="form.malformed",
        ) from err


async def _enrol_input(form: FormData, photo_max_bytes: int) -> EnrolInput:
    unexpected = sorted({key for key in form if key not in (*FIELDS, "photo")})
    if unexpected:
        raise Invalid(
            f"unexpected fields {[u[:40] for u in unexpected[:5]]}; expected photo and "
            f"{', '.join(FIELDS)}",
            code="form.unexpected_field",
        )
    values: dict[str, str] = {}
    for name in FIELDS:
        items = form.getlist(name)
        if len(items) > 1:
            raise Invalid(f"send the field {name} once", code="form.repeated_field")
        item = items[0] if items else ""
        if not isinstance(item, str):
            raise Invalid(f"{name} must be a text field, not a file", code="form.file_as_field")
        values[name] = item
    photos = form.getlist("photo")
    if len(photos) > 1:
        raise Invalid("send exactly one photo", code="form.repeated_field")
    if len(photos) != 1 or not isinstance(photos[0], UploadFile):
        raise Invalid("send exactly one photo, as a file", code="photo.missing")
    upload = photos[0]
    data = await upload.read(photo_max_bytes + 1)
    if not values["expires_at"].strip():
        raise GovernanceRefused("an entry needs an expiry", code="governance.missing_expiry")
    try:
        expires_at = datetime.fromisoformat(values["expires_at"].strip())
    except ValueError as err:
        raise GovernanceRefused(
            "expires_at must be an ISO 8601 time with a zone (e.g. 2027-01-31T00:00:00Z)",
            code="governance.bad_expiry",
        ) from err
    return EnrolInput(
        label=values["label"],
        category=values["category"],
        reason=values["reason"],
        legal_basis=values["legal_basis"],
        expires_at=expires_at,
        photo=data,
        photo_type=upload.content_type,
    )


def _enrol_kwargs() -> dict[str, Any]:
    kwargs = guarded(
        Permission.WATCHLIST_ENROL,
        {
            413: {"description": "the photo or the body over its size limit"},
            415: {"description": "not multipart, or a photo that is not JPEG/PNG"},
            422: {"description": "a governance or quality refusal (code says which)"},
            503: {"description": "the face models are not installed"},
        },
    )
    kwargs["openapi_extra"].update(ENROL_DOC)
    return kwargs


@router.post("/entries", response_model=Entry, status_code=201, **_enrol_kwargs())
async def enrol(request: Request, me: Me, ctx: Ctx) -> Entry:
    """Propose an entry (pending until another user approves it). The face is checked and
    embedded at the hub; the photo is stored encrypted and never sent to a device."""
    limit = ctx.config.watchlists.photo_max_bytes
    form = await _form(request)
    try:
        item = await _enrol_input(form, limit)
    finally:
        await form.close()
    row = await run_in_threadpool(ctx.watchlists.enrol, me, item)
    return _entry(ctx, row)


@router.get("/entries/{entry_id}", response_model=Entry, **guarded(Permission.WATCHLIST_READ))
def entry(entry_id: EntryId, ctx: Ctx) -> Entry:
    return _entry(ctx, ctx.watchlists.get(entry_id))


@router.post(
    "/entries/{entry_id}/approve",
    response_model=Entry,
    **guarded(Permission.WATCHLIST_APPROVE, REFUSALS),
)
def approve(entry_id: EntryId, me: Me, ctx: Ctx) -> Entry:
    """Approve another user's pending entry: it goes into the bundles."""
    return _entry(ctx, ctx.watchlists.approve(me, entry_id))


@router.post(
    "/entries/{entry_id}/refuse",
    response_model=Entry,
    **guarded(Permission.WATCHLIST_APPROVE, REFUSALS),
)
def refuse(entry_id: EntryId, body: ReasonBody, me: Me, ctx: Ctx) -> Entry:
    return _entry(ctx, ctx.watchlists.refuse(me, entry_id, body.reason))


@router.post(
    "/entries/{entry_id}/revoke",
    response_model=Entry,
    **guarded(Permission.WATCHLIST_ENROL, REFUSALS),
)
def revoke(entry_id: EntryId, body: ReasonBody, me: Me, ctx: Ctx) -> Entry:
    """Withdraw a pending or active entry now: it leaves every bundle."""
    return _entry(ctx, ctx.watchlists.revoke(me, entry_id, body.reason))


@router.get(
    "/entries/{entry_id}/photo",
    response_class=Response,
    **guarded(Permission.WATCHLIST_READ, {200: {"content": {"image/jpeg": {}, "image/png": {}}}}),
)
def photo(entry_id: EntryId, me: Me, ctx: Ctx) -> Response:
    """The enrolment photo (each view is audited as watchlist.photo_view)."""
    data, content_type = ctx.watchlists.photo(me, entry_id)
    return Response(
        data,
        media_type=content_type,
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": "inline",
        },
    )
