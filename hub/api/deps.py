"""Authentication, authorisation and pagination shared by every route.

Deny by default: an app-wide dependency authenticates every request whose route is not in
``PUBLIC_ROUTES``; a route that declares no permission is admin-only. Routes declare their
permission with ``**guarded(Permission.X)``, which also documents it in OpenAPI
(``x-permission``).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Query, Request, WebSocket, status
from fastapi.routing import APIRoute
from sqlalchemy import update

from edge.validators import utcnow
from hub.auth import Permission, Principal, Role, resolve_token
from hub.context import HubContext
from hub.schema import api_tokens

SESSION_COOKIE = "gw_session"
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/health"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/"),
        # Open311 GeoReport v2: each route checks its own api_key (hub/open311/service.py).
        ("GET", "/open311/v2/discovery.json"),
        ("GET", "/open311/v2/services.json"),
        ("GET", "/open311/v2/services/{service_code}.json"),
        ("GET", "/open311/v2/requests.json"),
        ("POST", "/open311/v2/requests.json"),
        ("GET", "/open311/v2/requests/{service_request_id}.json"),
    }
)
PERMISSION_KEY = "x-permission"


def ctx_of(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.ctx
    return ctx


Ctx = Annotated[HubContext, Depends(ctx_of)]


def _header_token(request: Request | WebSocket) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            return value.strip()
    return None


def _bearer(request: Request | WebSocket) -> str | None:
    return _header_token(request) or request.cookies.get(SESSION_COOKIE)


# --- client addresses and origins ---------------------------------------------------------------

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Network = IPv4Network | IPv6Network


def _ip(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: IPv4Address | IPv6Address | None, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in proxies)


def client_address(request: Request | WebSocket, proxies: Sequence[Network]) -> str:
    """The address a request came from: the TCP peer, unless the peer is one of the configured
    reverse proxies; then the nearest ``X-Forwarded-For`` hop that is not one of them.

    Read from the right: a proxy appends the address it saw, so only the entries our own
    proxies added are facts; anything further left was written by the client itself.
    """
    peer = request.client.host if request.client else "unknown"
    if not _trusted(_ip(peer), proxies):
        return peer
    hops = ",".join(request.headers.getlist("x-forwarded-for")).split(",")
    nearest = peer
    for hop in reversed([h for h in hops if h.strip()]):
        address = _ip(hop)
        if address is None:  # a garbled hop: stop at the last address we could vouch for
            return nearest
        nearest = str(address)
        if not _trusted(address, proxies):
            return nearest
    return nearest


class Refusals:
    """Requests refused by the web guards (CSRF, WebSocket origin), by reason, for /stats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def count(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def refusals_of(request: Request | WebSocket) -> Refusals:
    refusals: Refusals = request.app.state.refusals  # made by create_app
    return refusals


def own_origin(request: Request | WebSocket, proxies: Sequence[Network]) -> str:
    """The origin the browser used to reach this hub (behind a trusted proxy: its scheme)."""
    scheme = "https" if request.url.scheme in ("https", "wss") else "http"
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-proto", "").strip().lower()
    if forwarded in ("http", "https") and _trusted(_ip(peer), proxies):
        scheme = forwarded
    return f"{scheme}://{request.headers.get('host', '')}".lower()


def _origin_of(request: Request | WebSocket) -> str | None:
    """The Origin header, else the origin part of Referer; None when neither is sent."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.strip().lower()
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer.strip())
        return f"{parts.scheme}://{parts.netloc}".lower()
    return None


def origin_allowed(origin: str, request: Request | WebSocket, ctx: HubContext) -> bool:
    api = ctx.config.api
    allowed = {own_origin(request, api.trusted_proxies), *(o.lower() for o in api.allowed_origins)}
    return origin in allowed  # "null" (sandboxed frames, opaque origins) never matches


def check_origin(request: Request, ctx: HubContext, *, required: bool) -> None:
    """Refuse a cross-site state change (CSRF): the browser attaches the session cookie to
    requests any web page makes, but it also says which page made them (Origin)."""
    origin = _origin_of(request)
    if origin is None:
        if not required:
            return
        refusals_of(request).count("csrf_no_origin")
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "a change made with the session cookie needs an Origin header (browsers send it); "
            "scripts should send 'Authorization: Bearer <token>' instead",
        )
    if not origin_allowed(origin, request, ctx):
        refusals_of(request).count("csrf_origin")
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "cross-site request refused: its Origin is neither this hub nor in api.allowed_origins",
        )


def authenticate(ctx: HubContext, token: str | None) -> Principal | None:
    if not token:
        return None
    with ctx.engine.begin() as conn:
        principal = resolve_token(conn, token)
        if principal is not None:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == principal.token_id)
                .values(last_used_at=utcnow())
            )
    return principal


def required_permission(request: Request) -> Permission | None:
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and route.openapi_extra:
        value = route.openapi_extra.get(PERMISSION_KEY)
        return Permission(value) if value else None
    return None


def enforce_access(request: Request) -> None:
    """App-wide dependency: 401 without valid credentials, 403 without the permission, 403
    for a state change made with the session cookie from another origin (CSRF); a request with
    ``Authorization: Bearer`` is not a browser's ambient credential and needs no Origin.

    A plain ``def`` on purpose: the token lookup is blocking SQLAlchemy work, and FastAPI runs
    sync dependencies in its threadpool. As ``async def`` it ran on the event loop and every
    request (map tiles included) stalled the WebSocket pumps while the database answered.
    """
    route = request.scope.get("route")
    path = route.path if isinstance(route, APIRoute) else request.url.path
    ctx = ctx_of(request)
    unsafe = request.method not in SAFE_METHODS
    if (request.method, path) in PUBLIC_ROUTES:
        if unsafe:  # login CSRF: a page must not log a browser into the attacker's account
            check_origin(request, ctx, required=False)
        return
    token = _header_token(request)
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
        if token and unsafe:
            check_origin(request, ctx, required=True)
    principal = authenticate(ctx, token)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authentication required: log in or send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    permission = required_permission(request)
    allowed = principal.can(permission) if permission else principal.role is Role.ADMIN
    if not allowed:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"role {principal.role.value} may not do this "
            f"(needs {permission.value if permission else 'admin'})",
        )
    request.state.principal = principal


def current_principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # only reachable from a public route that asked for a principal
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "authentication required")
    return principal


Me = Annotated[Principal, Depends(current_principal)]


def guarded(
    permission: Permission, responses: dict[int | str, Any] | None = None
) -> dict[str, Any]:
    """Route keyword arguments that declare (and document) the permission a route needs."""
    return {
        "openapi_extra": {PERMISSION_KEY: permission.value},
        "responses": {
            401: {"description": "not authenticated"},
            403: {"description": f"needs {permission.value}"},
            **(responses or {}),
        },
    }


# --- pagination --------------------------------------------------------------------------------

MAX_LIMIT = 1000


BAD_CURSOR = "cursor is not one this API issued: pass next_cursor as is"
CURSOR_TEXT_MAX_CHARS = 256
CURSOR_INT_MAX = 2**63 - 1  # the databases' BIGINT; a larger key cannot name a row


def _bad_cursor(err: BaseException | None = None) -> HTTPException:
    exc = HTTPException(422, BAD_CURSOR)
    exc.__cause__ = err
    return exc


@dataclass(frozen=True, slots=True)
class Page:
    """``limit`` and the decoded cursor. Routes read the cursor through the typed accessors,
    which check the shape the route itself issued: a hand-made cursor is a 422, never a
    crash, a wrong comparison or an overflow in the database."""

    limit: int
    after: list[Any] | None

    def after_text(self) -> str | None:
        """A cursor of one text key (an id or a name)."""
        if self.after is None:
            return None
        return _text_key(_shaped(self.after, 1)[0])

    def after_int(self, *, minimum: int = 0) -> int | None:
        """A cursor of one integer key (a sequence number or a row id)."""
        if self.after is None:
            return None
        return _int_key(_shaped(self.after, 1)[0], minimum)

    def after_texts(self, n: int) -> list[str] | None:
        """A cursor of ``n`` text keys (a composite key such as site, entity)."""
        if self.after is None:
            return None
        return [_text_key(v) for v in _shaped(self.after, n)]

    def after_time_seq(self) -> tuple[datetime, int] | None:
        """A cursor of (ISO 8601 timestamp, integer sequence)."""
        if self.after is None:
            return None
        ts_text, seq = _shaped(self.after, 2)
        try:
            ts = datetime.fromisoformat(_text_key(ts_text))
        except ValueError as err:
            raise _bad_cursor(err) from err
        return ts, _int_key(seq, 0)


def _shaped(values: list[Any], n: int) -> list[Any]:
    if len(values) != n:
        raise _bad_cursor()
    return values


def _text_key(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > CURSOR_TEXT_MAX_CHARS:
        raise _bad_cursor()
    if "\x00" in value:
        raise _bad_cursor()
    return value


def _int_key(value: Any, minimum: int) -> int:
    # bool is an int in Python; and 27 digits would overflow the database's BIGINT.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad_cursor()
    if not minimum <= value <= CURSOR_INT_MAX:
        raise _bad_cursor()
    return value


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page")
    ] = None,
) -> Page:
    return Page(limit, decode_cursor(cursor) if cursor else None)


PageDep = Annotated[Page, Depends(page_params)]


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a cursor value")


def decode_cursor(cursor: str) -> list[Any]:
    """A cursor's values: a short list of strings and integers, nothing else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # NaN/Infinity are refused here; 1e999 parses to inf and is refused below.
        values = json.loads(raw, parse_constant=_refuse_constant)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as err:
        raise _bad_cursor(err) from err
    if not isinstance(values, list) or not 1 <= len(values) <= 4:
        raise _bad_cursor()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _bad_cursor()
    return values


def parse_bbox(bbox: str | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        west, south, east, north = (float(v) for v in bbox.split(","))
    except ValueError as err:
        raise HTTPException(422, "bbox must be 'west,south,east,north' in degrees") from err
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise HTTPException(422, "bbox must satisfy -180<=west<=east<=180, -90<=south<=north<=90")
    return west, south, east, north


BBoxQuery = Annotated[
    str | None,
    Query(
        description="west,south,east,north (WGS84 degrees)", examples=["114.05,22.53,114.07,22.55"]
    ),
]
