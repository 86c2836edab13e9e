"""The one lookup Open311 needs of its own: which gridward user an ``api_key`` belongs to."""

from __future__ import annotations

from sqlalchemy import Engine

from hub.auth import Principal, resolve_token


def principal_for_key(engine: Engine, api_key: str) -> Principal | None:
    with engine.connect() as conn:
        return resolve_token(conn, api_key)
