"""User and token rules: login with rate limiting, logout, API tokens, user administration.

Every change is audited; a password is never audited (only that it changed). Deactivating a
user or changing their password revokes all their tokens in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from hub.audit import AuditTrail
from hub.auth import (
    AuthError,
    LoginRateLimiter,
    LoginTicket,
    Principal,
    Role,
    authenticate_password,
    check_password_strength,
    create_user,
    hash_password,
    issue_token,
)
from hub.errors import Conflict, Invalid, NotFound, RateLimited
from hub.users import repository

logger = logging.getLogger(__name__)


class UserNotFound(NotFound):
    pass


class UserExists(Conflict):
    pass


class TokenNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once
    token_id: str
    expires_at: datetime | None
    username: str
    role: Role


class UserService:
    def __init__(
        self, engine: Engine, audit: AuditTrail, limiter: LoginRateLimiter | None = None
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.limiter = limiter or LoginRateLimiter()

    # -- sessions and tokens --------------------------------------------------------------

    def login(self, username: str, password: str, client: str, ttl: timedelta) -> IssuedToken:
        """A session token for valid credentials; failures are rate limited per user and
        client address (and more loosely per address), and audited without the password;
        each lockout is audited too (``auth.lockout``)."""
        ticket = self.limiter.admit(*self.limiter.keys_for(username, client))
        if not isinstance(ticket, LoginTicket):
            retry = int(ticket) + 1
            raise RateLimited(f"too many failed logins; try again in {retry} s", retry)
        actor = username[:64] or "?"
        try:
            with self.engine.begin() as conn:
                role = authenticate_password(conn, username, password)
                token, token_id, expires = issue_token(
                    conn, username, "session", "dashboard session", ttl
                )
        except AuthError as err:
            locked = self.limiter.failed(ticket)
            self.audit.record(actor, "auth.login_failed", "", {"client": client})
            for key in locked:
                until = self.limiter.retry_after_s(key)
                scope = "address" if key.startswith("addr:") else "user and address"
                logger.warning("login lockout by %s for %.0f s", scope, until)
                self.audit.record(
                    actor,
                    "auth.lockout",
                    "",
                    {"client": client, "scope": scope, "seconds": round(until)},
                )
            raise AuthError("wrong username or password") from err
        except BaseException:
            self.limiter.cancelled(ticket)  # not a wrong password: give the attempt back
            raise
        self.limiter.succeeded(ticket)
        self.audit.record(username, "auth.login", "", {"client": client})
        return IssuedToken(token, token_id, expires, username, role)

    def logout(self, me: Principal) -> None:
        with self.audit.change(me.username, "auth.logout") as conn:
            repository.revoke_token(conn, me.token_id)

    def display_name(self, username: str) -> str:
        with self.engine.connect() as conn:
            row = repository.get_user(conn, username)
        if row is None:
            raise UserNotFound(f"no user {username!r}")
        return str(row.display_name)

    def create_token(self, me: Principal, name: str, ttl: timedelta | None) -> IssuedToken:
        """An API token for an integration, with this user's role."""
        with self.audit.change(me.username, "token.create", name) as conn:
            token, token_id, expires = issue_token(conn, me.username, "api", name, ttl)
        return IssuedToken(token, token_id, expires, me.username, me.role)

    def tokens(self, username: str) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.tokens_of(conn, username)

    def revoke_token(self, me: Principal, token_id: str) -> None:
        with self.audit.change(me.username, "token.revoke", token_id) as conn:
            if not repository.revoke_token(conn, token_id, me.username):
                raise TokenNotFound("no such token of yours")

    # -- users ----------------------------------------------------------------------------

    def page(self, *, limit: int, after: str | None) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.users_page(conn, limit=limit, after=after)

    def add(
        self, actor: str, username: str, password: str, role: Role, display_name: str = ""
    ) -> Any:
        try:
            with self.audit.change(actor, "user.create", username, {"role": role.value}) as conn:
                if repository.get_user(conn, username) is not None:
                    raise UserExists(f"user {username!r} already exists")
                create_user(conn, username, password, role, display_name)
                return repository.get_user(conn, username)
        except IntegrityError as err:  # a concurrent create of the same name
            raise UserExists(f"user {username!r} already exists") from err

    def update(
        self,
        actor: str,
        username: str,
        *,
        role: Role | None = None,
        active: bool | None = None,
        display_name: str | None = None,
        password: str | None = None,
    ) -> Any:
        values: dict[str, object] = {}
        if role is not None:
            values["role"] = role.value
        if active is not None:
            values["active"] = active
        if display_name is not None:
            values["display_name"] = display_name
        if password is not None:
            check_password_strength(password, username)
            values["password_hash"] = hash_password(password)
        if not values:
            raise Invalid("nothing to change: send role, active, password or display_name")
        audited = {k: v for k, v in values.items() if k != "password_hash"}
        if "password_hash" in values:
            audited["password"] = "changed"  # noqa: S105 - an audit note, not a secret
        with self.audit.change(actor, "user.update", username, audited) as conn:
            if not repository.update_user(conn, username, values):
                raise UserNotFound(f"no user {username!r}")
            if active is False or password is not None:
                repository.revoke_all(conn, username)
            return repository.get_user(conn, username)
