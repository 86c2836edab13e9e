"""A user's own inbox (permission SELF): every user reads and marks only their own."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from pydantic import BaseModel, Field

from hub.api.deps import Ctx, Me, PageDep, encode_cursor, guarded
from hub.api.models import Paged, UtcDateTime
from hub.auth import Permission
from hub.i18n import LANGUAGES, Language
from hub.notifications.service import Rendered

router = APIRouter(prefix="/api/v1", tags=["notifications"])
NotificationId = Annotated[int, Path(ge=1, le=2**63 - 1)]
LangQuery = Annotated[
    Literal["en", "zh-CN"] | None,
    Query(description="the language to render in (default: from Accept-Language, else en)"),
]
AcceptLanguage = Annotated[str | None, Header(max_length=500)]


class NotificationInfo(BaseModel):
    id: int
    kind: str = Field(description="reminder | escalate_supervisor | escalate_commander | ...")
    incident_id: str | None
    message_key: str = Field(description="the catalogue key the text is rendered from")
    params: dict[str, Any]
    text: str = Field(description="the message in the requested language")
    created_at: UtcDateTime
    read_at: UtcDateTime | None


class UnreadCount(BaseModel):
    unread: int


def language(lang: str | None, accept_language: str | None) -> Language:
    """``?lang=`` wins; else the first catalogue language Accept-Language prefers (by q)."""
    if lang in LANGUAGES:
        return lang
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, rest = item.strip().partition(";")
        q = 1.0
        if rest.strip().startswith("q="):
            try:
                q = float(rest.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, position, tag.strip().lower()))
    for neg_q, _, tag in sorted(ranked):
        if neg_q >= 0:
            break  # q=0 means "not this one"
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en") or tag == "*":
            return "en"
    return "en"


def _info(item: Rendered) -> NotificationInfo:
    row = item.row
    return NotificationInfo(
        id=row.id,
        kind=row.kind,
        incident_id=row.incident_id,
        message_key=row.message_key,
        params=row.params or {},
        text=item.text,
        created_at=row.created_at,
        read_at=row.read_at,
    )


@router.get("/notifications", response_model=Paged[NotificationInfo], **guarded(Permission.SELF))
def list_notifications(
    me: Me,
    ctx: Ctx,
    page: PageDep,
    unread: bool = False,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
) -> Paged[NotificationInfo]:
    """My notifications, newest first; ``unread=true`` for the unread ones only."""
    items = ctx.notifications.page(
        me.username,
        language(lang, accept_language),
        unread=unread,
        limit=page.limit,
        before_id=page.after_int(minimum=1),
    )
    infos = [_info(i) for i in items]
    nxt = encode_cursor([infos[-1].id]) if len(infos) == page.limit else None
    return Paged[NotificationInfo](items=infos, next_cursor=nxt)


@router.get("/notifications/unread-count", response_model=UnreadCount, **guarded(Permission.SELF))
def unread_count(me: Me, ctx: Ctx) -> UnreadCount:
    return UnreadCount(unread=ctx.notifications.unread_count(me.username))


@router.post(
    "/notifications/{notification_id}/read",
    response_model=NotificationInfo,
    **guarded(Permission.SELF),
)
def mark_read(
    notification_id: NotificationId,
    me: Me,
    ctx: Ctx,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
) -> NotificationInfo:
    """Mark one of my notifications read (idempotent: the first read time is kept);
    404 for an id that is not mine."""
    return _info(
        ctx.notifications.mark_read(me.username, notification_id, language(lang, accept_language))
    )
