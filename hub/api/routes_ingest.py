"""Ingest's dead letters: device messages the hub refused, for an admin to look into."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from edge.validators import SEGMENT_PATTERN
from hub.api.deps import Ctx, PageDep, encode_cursor, guarded
from hub.api.models import Paged, UtcDateTime
from hub.auth import Permission

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])


class RejectedMessage(BaseModel):
    id: int
    received_at: UtcDateTime
    topic: str
    site: str | None
    device: str | None = Field(
        description="from the topic (the only origin the broker vouches for)"
    )
    channel: str | None
    message_id: str | None = Field(description="set when the message decoded but was refused")
    reason: str = Field(description="the counter key in /stats ingest.rejected")
    error: str
    payload_bytes: int = Field(description="size of the whole payload")
    payload_head_b64: str = Field(description="its first bytes (at most 512), base64")
    payload_head_text: str = Field(
        description="the same bytes as UTF-8, undecodable bytes replaced"
    )


@router.get(
    "/rejected",
    response_model=Paged[RejectedMessage],
    # Only the admin role holds this permission (hub/auth.py).
    **guarded(Permission.INGEST_REJECTED_READ),
)
def list_rejected(
    ctx: Ctx,
    page: PageDep,
    device: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    reason: Annotated[str | None, Query(max_length=64)] = None,
) -> Paged[RejectedMessage]:
    """Refused device messages (dead letters), newest first; admin only.

    Kept for ``retention.rejected_days`` and at most ``retention.rejected_max_rows``; at most
    ``ingest_dead_letters_per_s`` are recorded (every refusal is still counted in /stats).
    """
    before = page.after_int(minimum=1)
    rows = ctx.store.dead_letters(limit=page.limit, before_id=before, device=device, reason=reason)
    items = [
        RejectedMessage(
            id=r.id,
            received_at=r.received_at,
            topic=r.topic,
            site=r.site,
            device=r.device,
            channel=r.channel,
            message_id=r.message_id,
            reason=r.reason,
            error=r.error,
            payload_bytes=r.payload_bytes,
            payload_head_b64=base64.b64encode(r.payload_head).decode("ascii"),
            payload_head_text=bytes(r.payload_head).decode("utf-8", errors="replace"),
        )
        for r in rows
    ]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[RejectedMessage](items=items, next_cursor=nxt)
