"""``/api/v1/matches``: the queue of possible face matches, their crop and snapshot (each
view audited), reviews, the officer's outcome, and the export.

HTTP only: the rules are in hub/matches/service.py. The reviewer is always the session's
user: no body field names a reviewer (the bodies refuse unknown fields).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import Body, Paged, UtcDateTime
from hub.auth import Permission
from hub.matches.service import NOTE_MAX, Decision, Image, Outcome

router = APIRouter(prefix="/api/v1", tags=["matches"])
MatchId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-fA-F-]{1,36}$")]
Status = Literal["pending", "confirmed", "rejected", "expired"]
CONFLICT: dict[int | str, Any] = {409: {"description": "the match is decided already"}}
JPEG: dict[int | str, Any] = {
    200: {"content": {"image/jpeg": {}}},
    404: {"description": "no such match, or its image is deleted"},
}


class ReviewOut(BaseModel):
    reviewer: str
    decision: Decision
    note: str
    at: UtcDateTime


class MatchOut(BaseModel):
    id: str
    alert_id: str
    site: str
    device: str
    entry_id: str
    entry_label: str | None
    category: str | None
    score: float
    threshold: float
    bundle_version: int
    seen_at: UtcDateTime
    status: Status
    reviews: list[ReviewOut]
    reviews_needed: int
    decided_at: UtcDateTime | None
    incident_id: str | None
    incident_number: str | None
    outcome: Outcome | None
    outcome_note: str | None
    outcome_by: str | None
    outcome_at: UtcDateTime | None
    crop_deleted_at: UtcDateTime | None


class OfficerMatchOut(BaseModel):
    """A confirmed match as the officer sent to verify it sees it, on their own dispatch
    (``GET /api/v1/dispatches/mine``): no entry label, face crop, score or reviewer names."""

    id: str
    alert_id: str = Field(description="the alert whose camera frame the officer may view")
    entry_id: str
    device: str
    seen_at: UtcDateTime
    status: Status
    confirmations: int = Field(description="how many reviewers confirmed the match")
    decided_at: UtcDateTime | None
    outcome: Outcome | None
    outcome_note: str | None
    outcome_by: str | None
    outcome_at: UtcDateTime | None


class ReviewBody(Body):
    decision: Decision
    note: Annotated[str, Field(max_length=NOTE_MAX)] = ""


class OutcomeBody(Body):
    outcome: Outcome = Field(
        description="verified by lawful means: identity documents checked by the officer, no "
        "further biometric capture"
    )
    note: Annotated[str, Field(max_length=NOTE_MAX)] = ""


def _image(data: bytes) -> Response:
    # Re-encoded by the hub (hub/snapshots.py) and sandboxed; never cached by a browser.
    return Response(
        data,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get("/matches", response_model=Paged[MatchOut], **guarded(Permission.MATCHES_READ))
def list_matches(
    ctx: Ctx, page: PageDep, status: Annotated[Status | None, Query()] = None
) -> Paged[MatchOut]:
    """Possible matches, newest first."""
    rows = ctx.matches.page(status, limit=page.limit, after=page.after_text())
    items = [MatchOut.model_validate(r) for r in rows]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[MatchOut](items=items, next_cursor=nxt)


# Before /matches/{match_id}: "export.csv" would otherwise be taken for an id (it is not one
# by the pattern, but the order keeps the intent plain).
@router.get(
    "/matches/export.csv",
    response_class=Response,
    **guarded(Permission.MATCHES_EXPORT, {200: {"content": {"text/csv": {}}}}),
)
def export_csv(me: Me, ctx: Ctx, status: Annotated[Status | None, Query()] = None) -> Response:
    """Every match record (no images) as CSV, formula-safe; the export is audited."""
    text = ctx.matches.export_csv(me.username, status)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="matches.csv"'},
    )


@router.get("/matches/{match_id}", response_model=MatchOut, **guarded(Permission.MATCHES_READ))
def get_match(match_id: MatchId, ctx: Ctx) -> MatchOut:
    return MatchOut.model_validate(ctx.matches.get(match_id))


@router.get(
    "/matches/{match_id}/crop", response_class=Response, **guarded(Permission.MATCHES_READ, JPEG)
)
def crop(match_id: MatchId, me: Me, ctx: Ctx) -> Response:
    """The face crop the device sent (audited: ``match.crop_view``)."""
    return _image(ctx.matches.image(me.username, match_id, Image.CROP))


@router.get(
    "/matches/{match_id}/snapshot",
    response_class=Response,
    **guarded(Permission.MATCHES_READ, JPEG),
)
def snapshot(match_id: MatchId, me: Me, ctx: Ctx) -> Response:
    """The frame snapshot of the match (audited: ``match.crop_view``)."""
    return _image(ctx.matches.image(me.username, match_id, Image.SNAPSHOT))


@router.post(
    "/matches/{match_id}/reviews",
    response_model=MatchOut,
    **guarded(Permission.MATCHES_REVIEW, CONFLICT),
)
def review(match_id: MatchId, body: ReviewBody, me: Me, ctx: Ctx) -> MatchOut:
    """Confirm or reject, once per reviewer; a confirmation that settles the match opens its
    incident (officers go to verify), a reject rejects it."""
    return MatchOut.model_validate(
        ctx.matches.review(me.username, match_id, body.decision, body.note)
    )


# Guarded by ``self`` (every role): the service lets reviewers and the officers dispatched to
# the match's incident through, and refuses everyone else with 403.
@router.post(
    "/matches/{match_id}/outcome",
    response_model=MatchOut | OfficerMatchOut,
    **guarded(Permission.SELF, CONFLICT),
)
def outcome(match_id: MatchId, body: OutcomeBody, me: Me, ctx: Ctx) -> MatchOut | OfficerMatchOut:
    """What the officer found, verified by lawful means (identity documents checked). The
    answer is the match as the caller may see it: Match with ``matches:read``, else the
    officer's view of it (as on their dispatch)."""
    view = ctx.matches.record_outcome(me, match_id, body.outcome, body.note)
    if me.can(Permission.MATCHES_READ):
        return MatchOut.model_validate(view)
    return OfficerMatchOut.model_validate(view)
