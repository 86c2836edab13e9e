"""Login, logout, who-am-I, API tokens, users."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from hub.api.deps import (
    SESSION_COOKIE,
    Ctx,
    Me,
    PageDep,
    client_address,
    encode_cursor,
    guarded,
)
from hub.api.models import (
    LoginRequest,
    MeResponse,
    Paged,
    TokenCreate,
    TokenInfo,
    TokenResponse,
    UserCreate,
    UserInfo,
    UserUpdate,
)
from hub.auth import ROLE_PERMISSIONS, Permission
from hub.users.service import IssuedToken

router = APIRouter(prefix="/api/v1", tags=["auth"])
users_router = APIRouter(prefix="/api/v1/users", tags=["users"])


def _token_response(issued: IssuedToken) -> TokenResponse:
    return TokenResponse(
        token=issued.token,
        token_id=issued.token_id,
        expires_at=issued.expires_at,
        username=issued.username,
        role=issued.role,
    )


@router.post(
    "/auth/login",
    response_model=TokenResponse,
    responses={
        401: {"description": "wrong credentials"},
        429: {"description": "too many failed attempts"},
    },
)
def login(body: LoginRequest, request: Request, response: Response, ctx: Ctx) -> TokenResponse:
    """Exchange a username and password for a session token (also set as an HttpOnly cookie)."""
    client = client_address(request, ctx.config.api.trusted_proxies)
    ttl = timedelta(seconds=ctx.config.api.session_ttl_s)
    issued = ctx.users.login(body.username, body.password, client, ttl)
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=ctx.config.api.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=ctx.config.api.tls_cert_file is not None,
    )
    return _token_response(issued)


@router.post("/auth/logout", status_code=204, **guarded(Permission.SELF))
def logout(me: Me, response: Response, ctx: Ctx) -> None:
    """Revoke the token this request used."""
    ctx.users.logout(me)
    response.delete_cookie(SESSION_COOKIE)


@router.get("/auth/me", response_model=MeResponse, **guarded(Permission.SELF))
def who_am_i(me: Me, ctx: Ctx) -> MeResponse:
    return MeResponse(
        username=me.username,
        role=me.role,
        display_name=ctx.users.display_name(me.username),
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[me.role]),
    )


@router.post(
    "/auth/tokens", response_model=TokenResponse, status_code=201, **guarded(Permission.SELF)
)
def create_api_token(body: TokenCreate, me: Me, ctx: Ctx) -> TokenResponse:
    """Create an API token for an integration, with this user's role. Shown once."""
    ttl = timedelta(days=body.ttl_days) if body.ttl_days else None
    return _token_response(ctx.users.create_token(me, body.name, ttl))


@router.get("/auth/tokens", response_model=list[TokenInfo], **guarded(Permission.SELF))
def list_tokens(me: Me, ctx: Ctx) -> list[TokenInfo]:
    return [TokenInfo.model_validate(r._mapping) for r in ctx.users.tokens(me.username)]


@router.delete("/auth/tokens/{token_id}", status_code=204, **guarded(Permission.SELF))
def revoke_token(token_id: Annotated[str, Path(max_length=64)], me: Me, ctx: Ctx) -> None:
    ctx.users.revoke_token(me, token_id)


@users_router.get("", response_model=Paged[UserInfo], **guarded(Permission.USERS_READ))
def list_users(ctx: Ctx, page: PageDep) -> Paged[UserInfo]:
    after = page.after_text()
    items = [
        UserInfo.model_validate(r._mapping) for r in ctx.users.page(limit=page.limit, after=after)
    ]
    nxt = encode_cursor([items[-1].username]) if len(items) == page.limit else None
    return Paged[UserInfo](items=items, next_cursor=nxt)


@users_router.post("", response_model=UserInfo, status_code=201, **guarded(Permission.USERS_WRITE))
def add_user(body: UserCreate, me: Me, ctx: Ctx) -> UserInfo:
    row = ctx.users.add(me.username, body.username, body.password, body.role, body.display_name)
    return UserInfo.model_validate(row._mapping)


@users_router.patch("/{username}", response_model=UserInfo, **guarded(Permission.USERS_WRITE))
def change_user(
    username: Annotated[str, Path(max_length=64)], body: UserUpdate, me: Me, ctx: Ctx
) -> UserInfo:
    row = ctx.users.update(
        me.username,
        username,
        role=body.role,
        active=body.active,
        display_name=body.display_name,
        password=body.password,
    )
    return UserInfo.model_validate(row._mapping)
