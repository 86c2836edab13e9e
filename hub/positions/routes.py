"""Positions: latest per entity and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from edge.validators import SEGMENT_PATTERN
from hub.api.deps import BBoxQuery, Ctx, PageDep, encode_cursor, guarded, parse_bbox
from hub.api.models import Paged, PositionInfo
from hub.auth import Permission

router = APIRouter(prefix="/api/v1", tags=["positions"])
SiteQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]


@router.get(
    "/positions/latest", response_model=Paged[PositionInfo], **guarded(Permission.POSITIONS_READ)
)
def latest(
    ctx: Ctx,
    page: PageDep,
    site: SiteQuery = None,
    bbox: BBoxQuery = None,
    entity_kind: Annotated[str | None, Query(pattern="^(wearer|officer|track)$")] = None,
    since: datetime | None = None,
) -> Paged[PositionInfo]:
    """The newest position of every entity (officers, wearers, anonymous tracks)."""
    rows = ctx.positions.latest(
        limit=page.limit,
        after=page.after_texts(2),
        site=site,
        bbox=parse_bbox(bbox),
        entity_kind=entity_kind,
        since=since,
    )
    items = [PositionInfo.model_validate(r._mapping) for r in rows]
    nxt = encode_cursor([items[-1].site, items[-1].entity]) if len(items) == page.limit else None
    return Paged[PositionInfo](items=items, next_cursor=nxt)


@router.get(
    "/positions/history", response_model=Paged[PositionInfo], **guarded(Permission.POSITIONS_READ)
)
def history(
    ctx: Ctx,
    page: PageDep,
    entity: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    site: SiteQuery = None,
    bbox: BBoxQuery = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Paged[PositionInfo]:
    """Stored positions in time order (for track playback), filtered by entity, time, area."""
    rows = ctx.positions.history(
        limit=page.limit,
        after=page.after_time_seq(),
        entity=entity,
        site=site,
        bbox=parse_bbox(bbox),
        since=since,
        until=until,
    )
    items = [PositionInfo.model_validate(r._mapping) for r in rows]
    nxt = (
        encode_cursor([rows[-1].ts.isoformat(), rows[-1].seq]) if len(rows) == page.limit else None
    )
    return Paged[PositionInfo](items=items, next_cursor=nxt)
