"""Liveness, ingest statistics, and the live WebSocket stream."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import (
    APIRouter,
    HTTPException,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.concurrency import run_in_threadpool

from hub.api.deps import (
    Ctx,
    _bearer,
    authenticate,
    guarded,
    origin_allowed,
    parse_bbox,
    refusals_of,
)
from hub.auth import Permission
from hub.context import HubContext
from hub.live import Layer, LiveClient

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get(
    "/health",
    responses={
        200: {"description": "ok: every hub worker thread is alive"},
        503: {"description": "degraded: a hub worker thread died (``workers`` says which)"},
    },
)
def health(ctx: Ctx, response: Response) -> dict[str, Any]:
    """Liveness for load balancers (public): no data, only whether the hub works.

    ``status`` is ``ok`` (HTTP 200) or ``degraded`` (HTTP 503) when any worker thread
    (ingest, retention, time-series writer) has died; each worker's liveness and queue depth
    are listed. ``flooding_devices`` counts devices whose telemetry is being rate-limited
    now, and ``broker_dropped`` is the broker's count of messages it dropped for a slow
    subscriber since it started (None until the broker's first ``$SYS`` report); neither
    changes ``status``: the hub still works, but a rising ``broker_dropped`` means data lost.
    """
    workers = ctx.workers()
    degraded = any(not w.alive for w in workers)
    if degraded:
        response.status_code = 503
    flood = ctx.ingest.flood
    return {
        "status": "degraded" if degraded else "ok",
        "mqtt_connected": ctx.bus.connected,
        "workers": {w.name: {"alive": w.alive, "queue_depth": w.queue_depth} for w in workers},
        # Counts only: which devices flood is for /stats (this route is public).
        "flooding_devices": len(flood.flooding()) if flood is not None else 0,
        "broker_dropped": ctx.broker_stats.dropped() if ctx.broker_stats is not None else None,
    }


@router.get("/stats", **guarded(Permission.STATS_READ))
def stats(ctx: Ctx, request: Request) -> dict[str, Any]:
    """Ingest counters (received, stored, rejected by reason), the ingest queue (depth, drops
    by reason), every worker thread's liveness and queue depth, live-stream counters, login
    refusals and lockouts, web requests refused by reason (CSRF, WebSocket origin), the
    per-device flood limiter (``flood``: drops by device and reason, devices flooding now)
    and the broker's own ``$SYS`` counters (``broker``: messages it dropped, clients), field
    reports accepted, resent and refused by reason, the Open311 rate limiter, and dispatch
    (officers notified, rounds fired or lost to another replica, answers refused by reason)."""
    return {
        "ingest": ctx.ingest.stats.as_dict(),
        "ingest_queue": ctx.ingest.queue_stats(),
        "workers": {w.name: w.as_dict() for w in ctx.workers()},
        "live": dict(ctx.live.stats),
        "live_clients": ctx.live.client_count,
        "mqtt_connected": ctx.bus.connected,
        "login_blocked": ctx.login_limiter.blocked,
        "login_lockouts": ctx.login_limiter.lockouts,
        "web_refused": refusals_of(request).as_dict(),
        "timeseries": ctx.timeseries.stats() if ctx.timeseries is not None else None,
        "flood": ctx.ingest.flood.stats() if ctx.ingest.flood is not None else None,
        "timers": ctx.timers.stats_snapshot(),
        "dispatch": ctx.dispatch.stats_snapshot(),
        "bundles": ctx.bundles.stats_snapshot(),
        "broker": ctx.broker_stats.snapshot() if ctx.broker_stats is not None else None,
        "field_reports": ctx.fieldreports.stats(),
        "open311_rate": ctx.open311.stats(),
    }


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


# A layer beyond positions and alerts needs one of these permissions besides live:read.
LAYER_PERMISSIONS: dict[Layer, tuple[Permission, ...]] = {
    Layer.DEVICES: (Permission.DEVICES_READ,),
    Layer.WARNINGS: (Permission.CELLS_READ,),
    Layer.INCIDENTS: (Permission.INCIDENTS_READ,),
    Layer.DISPATCH: (Permission.DISPATCH_READ, Permission.DISPATCH_ANSWER),
    Layer.MATCHES: (Permission.MATCHES_READ,),
}


async def live_stream(websocket: WebSocket) -> None:
    """``/api/v1/live?layers=positions,alerts,devices&bbox=w,s,e,n&site=...``

    Authenticates with the session cookie, ``Authorization: Bearer``, or ``?token=``; an
    ``Origin`` other than the hub's own or one in ``api.allowed_origins`` is refused. Sends
    JSON events; events that queued up together arrive as one ``{"layer": "batch", "events":
    [...]}`` frame. A client that cannot keep up is closed with code 1013 and the reason.
    """
    ctx: HubContext = websocket.app.state.ctx
    origin = websocket.headers.get("origin")
    if origin is not None and not origin_allowed(origin.strip().lower(), websocket, ctx):
        # Browsers send the session cookie with a WebSocket opened by any page and never
        # apply CORS to it: the Origin check is the only thing stopping a foreign page from
        # reading the live feed as the logged-in user. Refused before the handshake (403).
        refusals_of(websocket).count("ws_origin")
        await websocket.close(WS_CLOSE_POLICY)
        return
    token = _bearer(websocket) or websocket.query_params.get("token")
    # The token lookup is blocking database work: run it off the event loop, which is
    # pumping every other live client meanwhile.
    principal = await run_in_threadpool(authenticate, ctx, token)
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
    layers = frozenset(
        layer
        for layer in layers
        if any(principal.can(p) for p in LAYER_PERMISSIONS.get(layer, (Permission.LIVE_READ,)))
    )
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
