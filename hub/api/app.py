"""The hub's FastAPI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from hub.alerts import routes as alerts_routes
from hub.api import docs, errors, routes_ingest, routes_system
from hub.api.deps import Refusals, enforce_access
from hub.api.security import HubApp, security_headers
from hub.audit import routes as audit_routes
from hub.bundles import routes as bundles_routes
from hub.classify import routes as classify_routes
from hub.commands import routes as commands_routes
from hub.context import HubContext
from hub.devices import routes as devices_routes
from hub.dispatch import routes as dispatch_routes
from hub.errors import NotFound
from hub.fieldreports import routes as fieldreports_routes
from hub.geo import routes as geo_routes
from hub.incidents import routes as incidents_routes
from hub.incstats import routes as incstats_routes
from hub.mapview import routes as mapview_routes
from hub.matches import routes as matches_routes
from hub.notifications import routes as notifications_routes
from hub.open311 import routes as open311_routes
from hub.org import routes as org_routes
from hub.positions import routes as positions_routes
from hub.tasks import routes as tasks_routes
from hub.users import routes as users_routes
from hub.warnings import routes as warnings_routes
from hub.watchlists import routes as watchlists_routes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "dashboard"
GEOJSON_PREFIXES = ("/api/v1/zones", "/api/v1/grid-cells", "/api/v1/poi")
UPLOAD_PREFIXES = ("/api/v1/field-reports", "/open311/")  # photos and voice notes
WATCHLIST_ENROL_PATH = "/api/v1/watchlists/entries"
FORM_FIELDS_BYTES = 64 * 1024  # an enrolment's text fields and multipart framing


class BodyLimit:
    """Refuse request bodies over the limit with 413, whether or not Content-Length is sent."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        geojson_max_bytes: int,
        upload_max_bytes: int = 0,
        enrol_max_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.geojson_max_bytes = geojson_max_bytes
        self.upload_max_bytes = upload_max_bytes or max_bytes
        self.enrol_max_bytes = enrol_max_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.geojson_max_bytes if path.startswith(GEOJSON_PREFIXES) else self.max_bytes
        if path.startswith(UPLOAD_PREFIXES):
            limit = self.upload_max_bytes
        if path == WATCHLIST_ENROL_PATH:
            limit = self.enrol_max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await _too_large(send, limit)
                    return
        # Read the whole body first (it is bounded by the limit), so an over-long chunked
        # upload is refused with 413 before any handler sees a byte of it.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RefuseNul:
    """Refuse a NUL (``%00``) anywhere in the path or query with 422, before any route.

    No parameter of this API may hold one, and PostgreSQL refuses NUL in text: a search for
    ``q=%00`` would otherwise be a server error there and an odd match on SQLite."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            raw = bytes(scope.get("query_string", b"")) + bytes(scope.get("raw_path") or b"")
            if b"%00" in raw or b"\x00" in raw or "\x00" in scope.get("path", ""):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = b'{"detail":"the URL must not contain NUL (%00) characters"}'
                await _send_json(send, 422, body)
                return
        await self.app(scope, receive, send)


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _too_large(send: Send, limit: int) -> None:
    body = (
        b'{"detail":"request body too large: the limit for this endpoint is '
        + str(limit).encode()
        + b' bytes"}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(ctx: HubContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.live.attach_loop(asyncio.get_running_loop())
        yield

    app = HubApp(
        title="gridward hub API",
        version="1",
        description=(
            "Devices, positions, alerts, zones and grid cells, users and the audit log of a "
            "gridward site. Every route needs a session or API token unless marked public; "
            "`x-permission` on each operation names the permission it needs."
        ),
        lifespan=lifespan,
        # /docs is our own route (hub.api.docs): Swagger UI from the installed package, no CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.refusals = Refusals()
    tls = ctx.config.api.tls_cert_file is not None
    app.security_headers = security_headers(ctx.config.ui, tls=tls)
    app.field_security_headers = security_headers(ctx.config.ui, tls=tls, field_page=True)
    guard = [Depends(enforce_access)]
    for router in (
        users_routes.router,
        users_routes.users_router,
        devices_routes.router,
        commands_routes.router,
        positions_routes.router,
        alerts_routes.router,
        geo_routes.router,
        geo_routes.poi_router,
        org_routes.router,
        routes_system.router,
        mapview_routes.router,
        routes_ingest.router,
        audit_routes.router,
        warnings_routes.router,
        notifications_routes.router,
        fieldreports_routes.router,
        open311_routes.router,
        classify_routes.router,
        # Before the incidents router: /incidents/export.csv must not read as an incident id.
        incstats_routes.router,
        incidents_routes.router,
        tasks_routes.router,
        dispatch_routes.router,
        bundles_routes.router,
        watchlists_routes.router,
        matches_routes.router,
    ):
        app.include_router(router, dependencies=guard)
    # Public like /openapi.json (on PUBLIC_ROUTES): static documentation, no data.
    app.include_router(docs.router)
    ws = APIRouter(prefix="/api/v1", tags=["live"])
    ws.add_api_websocket_route("/live", routes_system.live_stream)
    app.include_router(ws)

    dashboard = ctx.config.api.dashboard_dir or DASHBOARD_DIR
    index = dashboard / "index.html"

    @app.get("/", include_in_schema=False, response_model=None)
    def index_page() -> FileResponse | HTMLResponse:
        if index.exists():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return HTMLResponse("<h1>gridward hub</h1><p>API: <a href='/docs'>/docs</a></p>")

    field_index = dashboard / "field" / "index.html"

    # StaticFiles serves no index for a directory: the field page's address (its manifest's
    # start_url and its service worker's scope) is the directory /ui/field/.
    @app.get("/ui/field/", include_in_schema=False)
    def field_page() -> FileResponse:
        if not field_index.exists():
            raise NotFound("this hub serves no field page")
        return FileResponse(field_index, headers={"Cache-Control": "no-cache"})

    if dashboard.is_dir():
        app.mount("/ui", StaticFiles(directory=dashboard), name="ui")

    errors.install(app)  # domain errors to statuses (one table); anything else: generic 500

    app.add_middleware(RefuseNul)
    app.add_middleware(
        BodyLimit,
        max_bytes=ctx.config.api.max_body_bytes,
        geojson_max_bytes=ctx.config.api.max_geojson_bytes,
        upload_max_bytes=ctx.config.field_reports.max_request_bytes,
        enrol_max_bytes=ctx.config.watchlists.photo_max_bytes + FORM_FIELDS_BYTES,
    )
    return app
