"""Open311 GeoReport v2 (JSON): /open311/v2/... on the public list of the bearer check.

These routes check their own ``api_key`` (hub/open311/service.py) and answer every error in
Open311's format, ``[{"code": <status>, "description": "..."}]``. Parameters are read as
plain strings and checked by the service, so a malformed one is an Open311 error too, not
FastAPI's own 422 shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from hub.api.deps import Ctx, client_address
from hub.api.errors import status_of
from hub.errors import DomainError, Invalid, NotFound, RateLimited, Unsupported
from hub.fieldreports.routes import read_part
from hub.i18n import Language
from hub.open311.service import Caller, Open311Service, choose_lang

PREFIX = "/open311/v2"
router = APIRouter(prefix=PREFIX, tags=["open311"])
Text = Annotated[str | None, Query()]
POST_FIELDS = frozenset(
    {
        "api_key",
        "jurisdiction_id",
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "description",
        "media_url",
        "email",
        "device_id",
        "account_id",
        "first_name",
        "last_name",
        "phone",
        "attribute[client_request_id]",
    }
)
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": 'Open311 error list: [{"code": 400, "description": "..."}]'},
    403: {"description": "api_key missing, invalid or without the permission"},
    404: {"description": "no such service or request"},
    429: {"description": "rate limited; Retry-After says when to try again"},
}
PUBLIC_PATHS: tuple[tuple[str, str], ...] = (
    ("GET", f"{PREFIX}/discovery.json"),
    ("GET", f"{PREFIX}/services.json"),
    ("GET", f"{PREFIX}/services/{{service_code}}.json"),
    ("GET", f"{PREFIX}/requests.json"),
    ("POST", f"{PREFIX}/requests.json"),
    ("GET", f"{PREFIX}/requests/{{service_request_id}}.json"),
)


def open311_error(err: DomainError) -> JSONResponse:
    status = status_of(err)
    if status == 422:
        status = 400  # the spec's status for a request it cannot take
    headers = {"Retry-After": str(err.retry_after_s)} if isinstance(err, RateLimited) else {}
    return JSONResponse(
        [{"code": status, "description": str(err)}], status_code=status, headers=headers
    )


def _service(ctx: Ctx) -> Open311Service:
    if not ctx.config.field_reports.open311.enabled:
        raise NotFound("this hub does not serve Open311")
    return ctx.open311


def _key(request: Request, api_key: str | None) -> str | None:
    """The ``api_key`` parameter, else a gridward token in ``Authorization: Bearer`` (better:
    a key in a URL ends up in proxy and server logs)."""
    if api_key:
        return api_key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _caller(request: Request, ctx: Ctx, api_key: str | None) -> Caller:
    address = client_address(request, ctx.config.api.trusted_proxies)
    return _service(ctx).caller(_key(request, api_key), address)


def _check_jurisdiction(ctx: Ctx, jurisdiction_id: str | None) -> None:
    served = ctx.open311.jurisdiction  # None: a hub of several sites serves each of them
    if jurisdiction_id and served is not None and jurisdiction_id != served:
        raise NotFound(f"this endpoint serves jurisdiction {ctx.open311.jurisdiction!r} only")


def _answer(call: Callable[[], Any], status: int = 200) -> JSONResponse:
    try:
        return JSONResponse(call(), status_code=status)
    except DomainError as err:
        return open311_error(err)


def _lang(request: Request, locale: str | None) -> Language:
    return choose_lang(locale, request.headers.get("accept-language"))


@router.get("/discovery.json", responses=ERRORS)
def discovery(request: Request, ctx: Ctx) -> JSONResponse:
    """Where this endpoint is and what it speaks (GeoReport v2, JSON)."""

    def call() -> Any:
        _caller(request, ctx, None)
        return ctx.open311.discovery(str(request.base_url).rstrip("/") + PREFIX)

    return _answer(call)


@router.get("/services.json", responses=ERRORS)
def services(
    request: Request,
    ctx: Ctx,
    jurisdiction_id: Text = None,
    locale: Text = None,
    api_key: Text = None,
) -> JSONResponse:
    """The services: the field-reportable categories (names in en, or zh-CN by ``locale`` or
    Accept-Language)."""

    def call() -> Any:
        _caller(request, ctx, api_key)
        _check_jurisdiction(ctx, jurisdiction_id)
        return ctx.open311.services(_lang(request, locale))

    return _answer(call)


@router.get("/services/{service_code}.json", responses=ERRORS)
def service_definition(
    service_code: str,
    request: Request,
    ctx: Ctx,
    jurisdiction_id: Text = None,
    api_key: Text = None,
) -> JSONResponse:
    """A service's attributes: one optional ``client_request_id`` (makes a POST idempotent)."""

    def call() -> Any:
        _caller(request, ctx, api_key)
        _check_jurisdiction(ctx, jurisdiction_id)
        return ctx.open311.definition(service_code)

    return _answer(call)


@router.get("/requests.json", responses=ERRORS)
def list_requests(
    request: Request,
    ctx: Ctx,
    api_key: Text = None,
    jurisdiction_id: Text = None,
    service_request_id: Text = None,
    service_code: Text = None,
    start_date: Text = None,
    end_date: Text = None,
    status: Text = None,
    locale: Text = None,
) -> JSONResponse:
    """Requests, newest first (the last 90 days unless start_date/end_date say otherwise)."""
    query = {
        "service_request_id": service_request_id or "",
        "service_code": service_code or "",
        "start_date": start_date or "",
        "end_date": end_date or "",
        "status": status or "",
    }

    def call() -> Any:
        caller = _caller(request, ctx, api_key)
        _check_jurisdiction(ctx, jurisdiction_id)
        return ctx.open311.requests(caller, query, _lang(request, locale))

    return _answer(call)


@router.get("/requests/{service_request_id}.json", responses=ERRORS)
def get_request(
    service_request_id: str,
    request: Request,
    ctx: Ctx,
    api_key: Text = None,
    jurisdiction_id: Text = None,
    locale: Text = None,
) -> JSONResponse:
    """One request and its status (``open`` until its incident is resolved)."""

    def call() -> Any:
        caller = _caller(request, ctx, api_key)
        _check_jurisdiction(ctx, jurisdiction_id)
        return ctx.open311.request(caller, service_request_id, _lang(request, locale))

    return _answer(call)


POST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "required": ["api_key", "service_code", "description"],
                    "properties": {
                        **{name: {"type": "string"} for name in sorted(POST_FIELDS)},
                        **(
                            {"media": {"type": "string", "format": "binary"}}
                            if media == "multipart/form-data"
                            else {}
                        ),
                    },
                }
            }
            for media in ("application/x-www-form-urlencoded", "multipart/form-data")
        },
    }
}


async def _form(request: Request, ctx: Ctx) -> tuple[dict[str, str], bytes | None]:
    config = ctx.config.field_reports
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise Unsupported("POST requests.json as application/x-www-form-urlencoded or multipart")
    try:
        form = await request.form(max_files=1, max_fields=len(POST_FIELDS), max_part_size=64 * 1024)
    except HTTPException as err:
        raise Invalid(f"the form was refused: {err.detail}") from err
    try:
        fields: dict[str, str] = {}
        media: bytes | None = None
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "media" or media is not None:
                    raise Invalid("the only file part is one 'media' photo")
                media = await read_part(value, config.max_photo_bytes, "media")
            elif key in POST_FIELDS:
                if key in fields:
                    raise Invalid(f"{key} is given twice")
                fields[key] = value
            elif key.startswith("attribute["):
                raise Invalid(f"unknown attribute {key[:80]!r}; see services/<code>.json")
            # Other fields (an unknown client's extras) are ignored, as Open311 servers do.
    finally:
        await form.close()
    return fields, media


@router.post(
    "/requests.json",
    status_code=201,
    responses={**ERRORS, 200: {"description": "a resend (same client_request_id)"}},
    openapi_extra=POST_BODY,
)
async def create_request(request: Request, ctx: Ctx) -> JSONResponse:
    """File a request (a field report on the open311 channel). ``api_key`` is required;
    ``attribute[client_request_id]`` makes it idempotent (without it every POST is new)."""
    try:
        service = _service(ctx)
        fields, media = await _form(request, ctx)
        address = client_address(request, ctx.config.api.trusted_proxies)
        key = _key(request, fields.get("api_key"))
        caller = await run_in_threadpool(service.caller, key, address)
        _check_jurisdiction(ctx, fields.get("jurisdiction_id"))
        body, created = await run_in_threadpool(service.create, caller, fields, media)
    except DomainError as err:
        return open311_error(err)
    return JSONResponse([body], status_code=201 if created else 200)
