"""The one table that maps domain errors to HTTP statuses, and the handler for everything else.

A domain error's message is meant for the caller and is returned as ``detail``. Any other
exception is a defect: it is logged with its traceback and answered with a generic 500 that
names no internals (no paths, no SQL, no exception text).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hub.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    Unsupported,
)

log = logging.getLogger(__name__)

# Most specific first: the first entry the error is an instance of wins.
DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (Unsupported, 415),
    (Invalid, 422),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (RateLimited, 429),
    (Unavailable, 503),
)
INTERNAL_ERROR_DETAIL = "internal error: the hub logged the details"


def status_of(err: DomainError) -> int:
    for kind, status in DOMAIN_STATUS:
        if isinstance(err, kind):
            return status
    return 400  # a DomainError of no listed kind: still the caller's, never a 500


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, DomainError):  # registered for DomainError only
        return await unexpected_error(request, exc)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    body: dict[str, str] = {"detail": str(exc)}
    if exc.code is not None:
        body["code"] = exc.code
    return JSONResponse(body, status_code=status_of(exc), headers=headers)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unhandled %s in %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return JSONResponse({"detail": INTERNAL_ERROR_DETAIL}, status_code=500)


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite numbers as text: JSON has no NaN, and a 422 that echoes the
    request's NaN back must not become a 500 while it is rendered."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(errors))})


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(Exception, unexpected_error)
