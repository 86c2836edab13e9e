"""Security headers on every HTTP response the hub sends (API, dashboard files, errors, 404s,
/docs), including the generic 500 that Starlette's outermost error middleware writes.

The Content-Security-Policy allows scripts, styles and fonts from the hub only (no inline
script, no eval), images from the hub plus the configured tile server's origin, and connections
(fetch, the live WebSocket) to the hub only. ``'self'`` covers ``ws:``/``wss:`` to the same host
under CSP Level 3, which is what the live stream needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

from hub.dashboard_config import DashboardConfig

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def tile_origins(ui: DashboardConfig) -> list[str]:
    """The origins the browser loads map tiles from, for ``img-src`` (none when the tiles
    come from the hub itself or there is no tile layer)."""
    if ui.base_layer != "url" or ui.tile_url is None or ui.tile_url.startswith("/"):
        return []
    # Leaflet picks {s} from the subdomain letters; each letter is its own origin.
    hosts = (
        [ui.tile_url.replace("{s}", sub) for sub in ui.tile_subdomains]
        if "{s}" in ui.tile_url
        else [ui.tile_url]
    )
    origins: list[str] = []
    for url in hosts:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if "{" in parts.netloc:  # another placeholder in the host: allow that host's domain
            origin = f"{parts.scheme}://*.{parts.netloc.rsplit('}', 1)[-1].lstrip('.-')}"
        if origin not in origins:
            origins.append(origin)
    return origins


FIELD_PAGE_PREFIX = "/ui/field/"


def content_security_policy(ui: DashboardConfig, *, field_page: bool = False) -> str:
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *tile_origins(ui)],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    if field_page:
        # The field page plays back the voice note it just recorded (a blob: URL) before it
        # is queued; nothing else plays media.
        directives["media-src"] = ["'self'", "blob:"]
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(
    ui: DashboardConfig, *, tls: bool, field_page: bool = False
) -> list[tuple[bytes, bytes]]:
    # Only the field page (under FIELD_PAGE_PREFIX) may ask for the microphone (voice notes)
    # and the position; photos come through a file input, which needs no camera permission.
    allowed = (
        "microphone=(self), geolocation=(self)" if field_page else "microphone=(), geolocation=()"
    )
    headers = {
        "content-security-policy": content_security_policy(ui, field_page=field_page),
        "x-content-type-options": "nosniff",
        # Not no-referrer: under it browsers send "Origin: null" on the dashboard's own
        # POSTs, and the CSRF check needs the real origin. same-origin still tells no
        # third party (tile servers) anything.
        "referrer-policy": "same-origin",
        "x-frame-options": "DENY",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
        "permissions-policy": f"camera=(), {allowed}, payment=(), usb=()",
    }
    if tls:
        headers["strict-transport-security"] = "max-age=31536000"
    return [(k.encode(), v.encode()) for k, v in headers.items()]


class SecurityHeaders:
    """Set the security headers on every HTTP response, replacing any a handler set."""

    def __init__(
        self,
        app: ASGIApp,
        headers: list[tuple[bytes, bytes]],
        field_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.app = app
        self.headers = headers
        self.field_headers = field_headers or headers
        self._names = {name for name, _ in headers} | {name for name, _ in self.field_headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        path = str(scope.get("path", ""))
        headers = self.field_headers if path.startswith(FIELD_PAGE_PREFIX) else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in self._names
                ]
                message["headers"] = kept + headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HubApp(FastAPI):
    """FastAPI with :class:`SecurityHeaders` outside everything, even Starlette's own
    error middleware (``add_middleware`` would place it inside, missing the 500s)."""

    security_headers: list[tuple[bytes, bytes]] = []  # noqa: RUF012 - set once by create_app
    field_security_headers: list[tuple[bytes, bytes]] = []  # noqa: RUF012 - the same, /ui/field/

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(
            super().build_middleware_stack(), self.security_headers, self.field_security_headers
        )
