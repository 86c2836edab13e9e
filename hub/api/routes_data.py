"""Positions (latest and history) and alerts (query, acknowledge, notes, evidence)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response
from sqlalchemy import select, update

from edge.validators import SEGMENT_PATTERN, utcnow
from hub.api.deps import BBoxQuery, Ctx, Me, PageDep, encode_cursor, guarded, parse_bbox
from hub.api.models import (
    AckBody,
    AlertDetail,
    AlertInfo,
    NoteBody,
    NoteInfo,
    Paged,
    PositionInfo,
)
from hub.auth import Permission
from hub.schema import alert_notes, alerts, latest_positions, positions

router = APIRouter(prefix="/api/v1", tags=["positions", "alerts"])
SiteQuery = Annotated[str | None, Query(pattern=SEGMENT_PATTERN)]
AlertId = Annotated[str, Path(max_length=36)]


def _bbox_filter(table: Any, bbox: str | None) -> list[Any]:
    box = parse_bbox(bbox)
    if box is None:
        return []
    w, s, e, n = box
    return [table.c.lon >= w, table.c.lon <= e, table.c.lat >= s, table.c.lat <= n]


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
    t = latest_positions
    stmt = select(t).where(*_bbox_filter(t, bbox)).order_by(t.c.site, t.c.entity)
    if site:
        stmt = stmt.where(t.c.site == site)
    if entity_kind:
        stmt = stmt.where(t.c.entity_kind == entity_kind)
    if since:
        stmt = stmt.where(t.c.ts >= since)
    if page.after:
        a_site, a_entity = str(page.after[0]), str(page.after[-1])
        stmt = stmt.where((t.c.site > a_site) | ((t.c.site == a_site) & (t.c.entity > a_entity)))
    with ctx.engine.connect() as conn:
        items = [
            PositionInfo.model_validate(r._mapping) for r in conn.execute(stmt.limit(page.limit))
        ]
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
    t = positions
    if entity is None and bbox is None and since is None:
        raise HTTPException(422, "give entity, bbox or since: the full history is too large")
    stmt = select(t).where(*_bbox_filter(t, bbox)).order_by(t.c.ts, t.c.seq)
    if entity:
        stmt = stmt.where(t.c.entity == entity)
    if site:
        stmt = stmt.where(t.c.site == site)
    if since:
        stmt = stmt.where(t.c.ts >= since)
    if until:
        stmt = stmt.where(t.c.ts < until)
    if page.after:
        ts, seq = datetime.fromisoformat(str(page.after[0])), int(page.after[1])
        stmt = stmt.where((t.c.ts > ts) | ((t.c.ts == ts) & (t.c.seq > seq)))
    with ctx.engine.connect() as conn:
        rows = conn.execute(stmt.limit(page.limit)).all()
    items = [PositionInfo.model_validate(r._mapping) for r in rows]
    nxt = (
        encode_cursor([rows[-1].ts.isoformat(), rows[-1].seq]) if len(rows) == page.limit else None
    )
    return Paged[PositionInfo](items=items, next_cursor=nxt)


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
    )


@router.get("/alerts", response_model=Paged[AlertInfo], **guarded(Permission.ALERTS_READ))
def list_alerts(
    ctx: Ctx,
    page: PageDep,
    site: SiteQuery = None,
    bbox: BBoxQuery = None,
    kind: Annotated[list[str] | None, Query(max_length=20)] = None,
    severity: Annotated[list[str] | None, Query(max_length=5)] = None,
    status: Annotated[str | None, Query(pattern="^(new|acknowledged)$")] = None,
    device: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Paged[AlertInfo]:
    """Alerts, newest first (ids are time-ordered UUIDv7)."""
    t = alerts
    stmt = select(t).where(*_bbox_filter(t, bbox)).order_by(t.c.id.desc())
    if site:
        stmt = stmt.where(t.c.site == site)
    if kind:
        stmt = stmt.where(t.c.kind.in_(kind))
    if severity:
        stmt = stmt.where(t.c.severity.in_(severity))
    if status:
        stmt = stmt.where(t.c.status == status)
    if device:
        stmt = stmt.where(t.c.device == device)
    if since:
        stmt = stmt.where(t.c.ts >= since)
    if until:
        stmt = stmt.where(t.c.ts < until)
    if page.after:
        stmt = stmt.where(t.c.id < str(page.after[0]))
    with ctx.engine.connect() as conn:
        items = [_alert_info(r) for r in conn.execute(stmt.limit(page.limit))]
    nxt = encode_cursor([items[-1].id]) if len(items) == page.limit else None
    return Paged[AlertInfo](items=items, next_cursor=nxt)


def _notes(conn: Any, alert_id: str) -> list[NoteInfo]:
    rows = conn.execute(
        select(alert_notes).where(alert_notes.c.alert_id == alert_id).order_by(alert_notes.c.id)
    ).all()
    return [NoteInfo.model_validate(r._mapping) for r in rows]


@router.get("/alerts/{alert_id}", response_model=AlertDetail, **guarded(Permission.ALERTS_READ))
def get_alert(alert_id: AlertId, ctx: Ctx) -> AlertDetail:
    with ctx.engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        notes = _notes(conn, alert_id)
    return AlertDetail(**_alert_info(row).model_dump(), notes=notes)


@router.get(
    "/alerts/{alert_id}/evidence",
    response_class=Response,
    **guarded(Permission.ALERTS_READ, {200: {"content": {"image/jpeg": {}}}}),
)
def alert_evidence(alert_id: AlertId, me: Me, ctx: Ctx) -> Response:
    """The alert's evidence snapshot (JPEG), from the evidence table. Every view is audited.

    404 when the alert has none, or when retention (``retention.evidence_days``) deleted it.
    """
    snap = ctx.store.evidence_of(alert_id)
    if snap is None:
        raise HTTPException(404, f"alert {alert_id!r} has no evidence snapshot (or it expired)")
    ctx.audit.record(me.username, "alert.evidence_view", alert_id)
    return Response(
        bytes(snap.data),
        media_type=snap.content_type,
        headers={"Cache-Control": "private, no-store"},
    )


@router.post("/alerts/{alert_id}/ack", response_model=AlertDetail, **guarded(Permission.ALERTS_ACK))
def acknowledge(alert_id: AlertId, body: AckBody, me: Me, ctx: Ctx) -> AlertDetail:
    """Acknowledge an alert (idempotent: a second ack keeps the first acknowledger)."""
    with ctx.audit.change(me.username, "alert.ack", alert_id) as conn:
        exists = conn.execute(select(alerts.c.id).where(alerts.c.id == alert_id)).first()
        if exists is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id, alerts.c.status == "new")
            .values(status="acknowledged", acknowledged_by=me.username, acknowledged_at=utcnow())
        )
        if body.note:
            conn.execute(
                alert_notes.insert().values(
                    alert_id=alert_id, author=me.username, text=body.note, created_at=utcnow()
                )
            )
    return get_alert(alert_id, ctx)


@router.post(
    "/alerts/{alert_id}/notes",
    response_model=NoteInfo,
    status_code=201,
    **guarded(Permission.ALERTS_ACK),
)
def add_note(alert_id: AlertId, body: NoteBody, me: Me, ctx: Ctx) -> NoteInfo:
    now = utcnow()
    with ctx.audit.change(me.username, "alert.note", alert_id) as conn:
        exists = conn.execute(select(alerts.c.id).where(alerts.c.id == alert_id)).first()
        if exists is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        res = conn.execute(
            alert_notes.insert().values(
                alert_id=alert_id, author=me.username, text=body.text, created_at=now
            )
        )
        note_id = res.inserted_primary_key[0] if res.inserted_primary_key else 0
    return NoteInfo(id=int(note_id), author=me.username, text=body.text, created_at=now)
