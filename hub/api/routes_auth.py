"""Login, logout, who-am-I, API tokens, users."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from hub.api.deps import SESSION_COOKIE, Ctx, Me, PageDep, encode_cursor, guarded
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
from hub.auth import (
    ROLE_PERMISSIONS,
    AuthError,
    Permission,
    WeakPasswordError,
    authenticate_password,
    check_password_strength,
    create_user,
    hash_password,
    issue_token,
)
from hub.schema import api_tokens, users

router = APIRouter(prefix="/api/v1", tags=["auth"])


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
    client = request.client.host if request.client else "unknown"
    keys = (f"user:{body.username.lower()}", f"addr:{client}")
    wait = ctx.login_limiter.retry_after_s(*keys)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins; try again in {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    ttl = timedelta(seconds=ctx.config.api.session_ttl_s)
    try:
        with ctx.engine.begin() as conn:
            role = authenticate_password(conn, body.username, body.password)
            token, token_id, expires = issue_token(
                conn, body.username, "session", "dashboard session", ttl
            )
    except AuthError as err:
        ctx.login_limiter.failed(*keys)
        ctx.audit.record(body.username[:64] or "?", "auth.login_failed", "", {"client": client})
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password") from err
    ctx.login_limiter.succeeded(keys[0])
    ctx.audit.record(body.username, "auth.login", "", {"client": client})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx.config.api.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=ctx.config.api.tls_cert_file is not None,
    )
    return TokenResponse(
        token=token, token_id=token_id, expires_at=expires, username=body.username, role=role
    )


@router.post("/auth/logout", status_code=204, **guarded(Permission.SELF))
def logout(me: Me, response: Response, ctx: Ctx) -> None:
    """Revoke the token this request used."""
    with ctx.audit.change(me.username, "auth.logout") as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.id == me.token_id).values(revoked=True))
    response.delete_cookie(SESSION_COOKIE)


@router.get("/auth/me", response_model=MeResponse, **guarded(Permission.SELF))
def who_am_i(me: Me, ctx: Ctx) -> MeResponse:
    with ctx.engine.connect() as conn:
        name = conn.execute(
            select(users.c.display_name).where(users.c.username == me.username)
        ).scalar_one()
    return MeResponse(
        username=me.username,
        role=me.role,
        display_name=name,
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[me.role]),
    )


@router.post(
    "/auth/tokens", response_model=TokenResponse, status_code=201, **guarded(Permission.SELF)
)
def create_api_token(body: TokenCreate, me: Me, ctx: Ctx) -> TokenResponse:
    """Create an API token for an integration, with this user's role. Shown once."""
    ttl = timedelta(days=body.ttl_days) if body.ttl_days else None
    with ctx.audit.change(me.username, "token.create", body.name) as conn:
        token, token_id, expires = issue_token(conn, me.username, "api", body.name, ttl)
    return TokenResponse(
        token=token, token_id=token_id, expires_at=expires, username=me.username, role=me.role
    )


@router.get("/auth/tokens", response_model=list[TokenInfo], **guarded(Permission.SELF))
def list_tokens(me: Me, ctx: Ctx) -> list[TokenInfo]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(api_tokens)
            .where(api_tokens.c.username == me.username)
            .order_by(api_tokens.c.created_at.desc())
            .limit(500)
        ).all()
    return [TokenInfo.model_validate(r._mapping) for r in rows]


@router.delete("/auth/tokens/{token_id}", status_code=204, **guarded(Permission.SELF))
def revoke_token(token_id: Annotated[str, Path(max_length=64)], me: Me, ctx: Ctx) -> None:
    with ctx.audit.change(me.username, "token.revoke", token_id) as conn:
        res = conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.username == me.username)
            .values(revoked=True)
        )
        if res.rowcount != 1:
            raise HTTPException(404, "no such token of yours")


users_router = APIRouter(prefix="/api/v1/users", tags=["users"])


@users_router.get("", response_model=Paged[UserInfo], **guarded(Permission.USERS_READ))
def list_users(ctx: Ctx, page: PageDep) -> Paged[UserInfo]:
    stmt = select(users).order_by(users.c.username).limit(page.limit)
    if page.after:
        stmt = stmt.where(users.c.username > str(page.after[0]))
    with ctx.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    items = [UserInfo.model_validate(r._mapping) for r in rows]
    nxt = encode_cursor([items[-1].username]) if len(items) == page.limit else None
    return Paged[UserInfo](items=items, next_cursor=nxt)


@users_router.post("", response_model=UserInfo, status_code=201, **guarded(Permission.USERS_WRITE))
def add_user(body: UserCreate, me: Me, ctx: Ctx) -> UserInfo:
    try:
        with ctx.audit.change(
            me.username, "user.create", body.username, {"role": body.role.value}
        ) as conn:
            create_user(conn, body.username, body.password, body.role, body.display_name)
            row = conn.execute(select(users).where(users.c.username == body.username)).one()
    except WeakPasswordError as err:
        raise HTTPException(422, str(err)) from err
    except IntegrityError as err:
        raise HTTPException(409, f"user {body.username!r} already exists") from err
    return UserInfo.model_validate(row._mapping)


@users_router.patch("/{username}", response_model=UserInfo, **guarded(Permission.USERS_WRITE))
def change_user(
    username: Annotated[str, Path(max_length=64)], body: UserUpdate, me: Me, ctx: Ctx
) -> UserInfo:
    values: dict[str, object] = {}
    if body.role is not None:
        values["role"] = body.role.value
    if body.active is not None:
        values["active"] = body.active
    if body.display_name is not None:
        values["display_name"] = body.display_name
    if body.password is not None:
        try:
            check_password_strength(body.password, username)
        except WeakPasswordError as err:
            raise HTTPException(422, str(err)) from err
        values["password_hash"] = hash_password(body.password)
    if not values:
        raise HTTPException(422, "nothing to change: send role, active, password or display_name")
    audited = {k: v for k, v in values.items() if k != "password_hash"}
    if "password_hash" in values:
        audited["password"] = "changed"  # noqa: S105 - an audit note, not a secret
    with ctx.audit.change(me.username, "user.update", username, audited) as conn:
        res = conn.execute(update(users).where(users.c.username == username).values(**values))
        if res.rowcount != 1:
            raise HTTPException(404, f"no user {username!r}")
        if body.active is False or body.password is not None:
            conn.execute(
                update(api_tokens).where(api_tokens.c.username == username).values(revoked=True)
            )
        row = conn.execute(select(users).where(users.c.username == username)).one()
    return UserInfo.model_validate(row._mapping)
