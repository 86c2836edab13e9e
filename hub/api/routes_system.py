"""Liveness, ingest statistics, the audit log, and the live WebSocket stream."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, WebSocket, WebSocketDisconnect
from sqlalchemy import select

from hub import audit
from hub.api.deps import Ctx, Me, PageDep, _bearer, authenticate, encode_cursor, guarded, parse_bbox
from hub.api.models import AuditRecord, AuditVerify, Paged
from hub.auth import Permission
from hub.context import HubContext
from hub.live import Layer, LiveClient
from hub.schema import audit_log

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/health")
def health(ctx: Ctx) -> dict[str, Any]:
    """Liveness for load balancers (public): no data, only whether the hub works."""
    return {"status": "ok", "mqtt_connected": ctx.bus.connected}


@router.get("/stats", **guarded(Permission.STATS_READ))
def stats(ctx: Ctx) -> dict[str, Any]:
    """Ingest counters (received, stored, rejected by reason) and live-stream counters."""
    return {
        "ingest": ctx.ingest.stats.as_dict(),
        "live": dict(ctx.live.stats),
        "live_clients": ctx.live.client_count,
        "mqtt_connected": ctx.bus.connected,
        "login_blocked": ctx.login_limiter.blocked,
        "timeseries": ctx.timeseries.stats() if ctx.timeseries is not None else None,
    }


@router.get("/audit", response_model=Paged[AuditRecord], **guarded(Permission.AUDIT_READ))
def audit_query(
    ctx: Ctx,
    page: PageDep,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Paged[AuditRecord]:
    """Audit records, newest first."""
    t = audit_log
    stmt = select(t).order_by(t.c.seq.desc()).limit(page.limit)
    if actor:
        stmt = stmt.where(t.c.actor == actor)
    if action:
        stmt = stmt.where(t.c.action == action)
    if target:
        stmt = stmt.where(t.c.target == target)
    if since:
        stmt = stmt.where(t.c.ts >= since)
    if until:
        stmt = stmt.where(t.c.ts < until)
    if page.after:
        try:  # a hand-made cursor was a 422 through the old blanket ValueError handler
            after_seq = int(page.after[0])
        except (TypeError, ValueError) as err:
            raise HTTPException(422, "cursor is not one this API issued") from err
        stmt = stmt.where(t.c.seq < after_seq)
    with ctx.engine.connect() as conn:
        items = [AuditRecord.model_validate(r._mapping) for r in conn.execute(stmt)]
    nxt = encode_cursor([items[-1].seq]) if len(items) == page.limit else None
    return Paged[AuditRecord](items=items, next_cursor=nxt)


@router.get("/audit/verify", response_model=AuditVerify, **guarded(Permission.AUDIT_READ))
def audit_verify(ctx: Ctx, me: Me) -> AuditVerify:
    """Walk the hash chain and report any edited or deleted record."""
    result = audit.verify(ctx.engine, ctx.config.audit_head_file)
    ctx.audit.record(me.username, "audit.verify", "", {"ok": result.ok})
    return AuditVerify(
        ok=result.ok, records=result.records, problems=result.problems, head_hash=result.head_hash
    )


WS_CLOSE_POLICY = 1008
LIVE_BATCH_MAX = 1000
WS_CLOSE_TRY_AGAIN = 1013


async def _pump(websocket: WebSocket, client: LiveClient) -> None:
    while True:
        events = [await client.queue.get()]
        # Whatever else is already queued goes in the same frame: per-frame cost, not
        # per-event cost, is what limits a busy map (thousands of markers a second).
        while len(events) < LIVE_BATCH_MAX:
            try:
                events.append(client.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        if len(events) == 1:
            await websocket.send_json(events[0].as_json())
        else:
            await websocket.send_json({"layer": "batch", "events": [e.as_json() for e in events]})


async def live_stream(websocket: WebSocket) -> None:
    """``/api/v1/live?layers=positions,alerts,devices&bbox=w,s,e,n&site=...``

    Authenticates with the session cookie, ``Authorization: Bearer``, or ``?token=``. Sends
    JSON events; events that queued up together arrive as one ``{"layer": "batch", "events":
    [...]}`` frame. A client that cannot keep up is closed with code 1013 and the reason.
    """
    ctx: HubContext = websocket.app.state.ctx
    token = _bearer(websocket) or websocket.query_params.get("token")
    principal = authenticate(ctx, token)
    if principal is None or not principal.can(Permission.LIVE_READ):
        # Accept first so the client can read why it was closed (a bare 403 says nothing).
        await websocket.accept()
        await websocket.close(WS_CLOSE_POLICY, "authentication required (live:read)")
        return
    try:
        layers = frozenset(
            Layer(v)
            for v in (websocket.query_params.get("layers") or "positions,alerts,devices").split(",")
        )
        bbox = parse_bbox(websocket.query_params.get("bbox"))
    except (ValueError, HTTPException) as err:
        detail = err.detail if isinstance(err, HTTPException) else str(err)
        await websocket.accept()
        await websocket.close(WS_CLOSE_POLICY, f"bad query: {detail}"[:120])
        return
    site = websocket.query_params.get("site")
    if not principal.can(Permission.DEVICES_READ):
        layers = layers - {Layer.DEVICES}
    await websocket.accept()
    ctx.live.attach_loop(asyncio.get_running_loop())
    client = ctx.live.register(layers, bbox, site)
    await websocket.send_json({"layer": "hello", "layers": sorted(layer.value for layer in layers)})

    async def drain_incoming() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()  # pings from the client; content ignored

    tasks = [
        asyncio.create_task(_pump(websocket, client)),
        asyncio.create_task(drain_incoming()),
        asyncio.create_task(client.closed.wait()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        ctx.live.unregister(client)
    if client.dropped_reason is not None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(WS_CLOSE_TRY_AGAIN, client.dropped_reason[:120])
    else:
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                break
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close()
