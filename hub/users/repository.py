"""SQL for users and API tokens (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from hub.schema import api_tokens, users


def get_user(conn: Connection, username: str) -> Any | None:
    return conn.execute(select(users).where(users.c.username == username)).first()


def insert_user(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(users.insert().values(**values))


def update_user(conn: Connection, username: str, values: dict[str, Any]) -> bool:
    res = conn.execute(update(users).where(users.c.username == username).values(**values))
    return res.rowcount == 1


def users_page(conn: Connection, *, limit: int, after: str | None) -> list[Any]:
    stmt = select(users).order_by(users.c.username).limit(limit)
    if after is not None:
        stmt = stmt.where(users.c.username > after)
    return list(conn.execute(stmt).all())


def insert_token(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(api_tokens.insert().values(**values))


def token_with_user(conn: Connection, token_hash: str) -> Any | None:
    return conn.execute(
        select(
            api_tokens.c.id,
            api_tokens.c.kind,
            api_tokens.c.expires_at,
            api_tokens.c.revoked,
            users.c.username,
            users.c.role,
            users.c.active,
        )
        .join(users, users.c.username == api_tokens.c.username)
        .where(api_tokens.c.token_hash == token_hash)
    ).first()


def touch_token(conn: Connection, token_id: str, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def revoke_token(conn: Connection, token_id: str, username: str | None = None) -> bool:
    stmt = update(api_tokens).where(api_tokens.c.id == token_id)
    if username is not None:
        stmt = stmt.where(api_tokens.c.username == username)
    return conn.execute(stmt.values(revoked=True)).rowcount == 1


def revoke_all(conn: Connection, username: str) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.username == username).values(revoked=True))


def tokens_of(conn: Connection, username: str, limit: int = 500) -> list[Any]:
    return list(
        conn.execute(
            select(api_tokens)
            .where(api_tokens.c.username == username)
            .order_by(api_tokens.c.created_at.desc())
            .limit(limit)
        ).all()
    )
