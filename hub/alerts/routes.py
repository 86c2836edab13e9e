"""Alerts: query, acknowledge, notes, evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from edge.validators import SEGMENT_PATTERN
from hub.alerts.repository import AlertFilter
from hub.api.deps import BBoxQuery, Ctx, Me, PageDep, encode_cursor, guarded, parse_bbox
from hub.api.models import AckBody, AlertDetail, AlertInfo, Count, NoteBody, NoteInfo, Paged
from hub.auth import Permission

router = APIRouter(prefix="/api/v1", tags=["alerts"])
SiteQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]
AlertId = Annotated[str, Path(max_length=36)]


def _alert_info(row: Any) -> AlertInfo:
    payload = row.payload or {}
    return AlertInfo(
        id=row.id,
        site=row.site,
        device=row.device,
        kind=row.kind,
        severity=row.severity,
        title=payload.get("title", ""),
        ts=row.ts,
        received_at=row.received_at,
        lon=row.lon,
        lat=row.lat,
        zone=row.zone,
        entity=row.entity,
        status=row.status,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        has_evidence="evidence" in payload,
        details=payload.get("details", {}),
        incident_id=row.incident_id,
        incident_number=row.incident_number,
    )


def alert_filter(
    site: SiteQuery = None,
    bbox: BBoxQuery = None,
    kind: Annotated[list[str] | None, Query(max_length=20)] = None,
    severity: Annotated[list[str] | None, Query(max_length=5)] = None,
    status: Annotated[str | None, Query(pattern="^(new|acknowledged)$")] = None,
    device: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    cell: Annotated[
        str | None, Query(pattern=SEGMENT_PATTERN, description="located in this grid cell")
    ] = None,
    department: Annotated[
        str | None,
        Query(pattern=SEGMENT_PATTERN, description="located in a cell this department serves"),
    ] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AlertFilter:
    """The filters of the alert list and of its count (one definition, so they agree)."""
    return AlertFilter(
        site, parse_bbox(bbox), kind, severity, status, device, since, until, cell, department
    )


AlertFilterDep = Annotated[AlertFilter, Depends(alert_filter)]


@router.get("/alerts", response_model=Paged[AlertInfo], **guarded(Permission.ALERTS_READ))
def list_alerts(ctx: Ctx, page: PageDep, f: AlertFilterDep) -> Paged[AlertInfo]:
    """Alerts, newest first (ids are time-ordered UUIDv7)."""
    after = page.after_text()
    items = [_alert_info(r) for r in ctx.alerts.page(f, limit=page.limit, after=after)]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[AlertInfo](items=items, next_cursor=nxt)


# Before /alerts/{alert_id}: "count" would otherwise be taken for an alert id.
@router.get("/alerts/count", response_model=Count, **guarded(Permission.ALERTS_READ))
def count_alerts(ctx: Ctx, f: AlertFilterDep) -> Count:
    """How many alerts the same filters as ``GET /alerts`` select, over all its pages."""
    return Count(total=ctx.alerts.count(f))


@router.get("/alerts/{alert_id}", response_model=AlertDetail, **guarded(Permission.ALERTS_READ))
def get_alert(alert_id: AlertId, ctx: Ctx) -> AlertDetail:
    row, notes = ctx.alerts.get(alert_id)
    return AlertDetail(
        **_alert_info(row).model_dump(),
        notes=[NoteInfo.model_validate(n._mapping) for n in notes],
    )


@router.get(
    "/alerts/{alert_id}/evidence",
    response_class=Response,
    **guarded(Permission.ALERTS_READ, {200: {"content": {"image/jpeg": {}}}}),
)
def alert_evidence(alert_id: AlertId, me: Me, ctx: Ctx) -> Response:
    """The alert's evidence snapshot (JPEG), from the evidence table. Every view is audited.

    404 when the alert has none, or when retention (``retention.evidence_days``) deleted it.
    """
    data, _ = ctx.alerts.evidence(me.username, alert_id)
    # Always image/jpeg (the hub re-encodes every snapshot, hub.snapshots), never sniffed, and
    # sandboxed: a row stored before re-encoding existed still cannot run as a page.
    return Response(
        data,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.post("/alerts/{alert_id}/ack", response_model=AlertDetail, **guarded(Permission.ALERTS_ACK))
def acknowledge(alert_id: AlertId, body: AckBody, me: Me, ctx: Ctx) -> AlertDetail:
    """Acknowledge an alert (idempotent: a second ack keeps the first acknowledger)."""
    ctx.alerts.acknowledge(me.username, alert_id, body.note)
    return get_alert(alert_id, ctx)


@router.post(
    "/alerts/{alert_id}/notes",
    response_model=NoteInfo,
    status_code=201,
    **guarded(Permission.ALERTS_ACK),
)
def add_note(alert_id: AlertId, body: NoteBody, me: Me, ctx: Ctx) -> NoteInfo:
    note = ctx.alerts.add_note(me.username, alert_id, body.text)
    return NoteInfo(id=note.id, author=note.author, text=note.text, created_at=note.created_at)
