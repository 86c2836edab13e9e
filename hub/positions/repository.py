"""SQL for latest positions and position history (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from hub.alerts.repository import BBox, bbox_clauses
from hub.schema import latest_positions, positions


def latest_page(
    conn: Connection,
    *,
    limit: int,
    after: tuple[str, str] | None,
    site: str | None,
    bbox: BBox | None,
    entity_kind: str | None,
    since: datetime | None,
) -> list[Any]:
    t = latest_positions
    stmt = select(t).where(*bbox_clauses(t, bbox)).order_by(t.c.site, t.c.entity)
    if site:
        stmt = stmt.where(t.c.site == site)
    if entity_kind:
        stmt = stmt.where(t.c.entity_kind == entity_kind)
    if since:
        stmt = stmt.where(t.c.ts >= since)
    if after is not None:
        a_site, a_entity = after
        stmt = stmt.where((t.c.site > a_site) | ((t.c.site == a_site) & (t.c.entity > a_entity)))
    return list(conn.execute(stmt.limit(limit)).all())


def history_page(
    conn: Connection,
    *,
    limit: int,
    after: tuple[datetime, int] | None,
    entity: str | None,
    site: str | None,
    bbox: BBox | None,
    since: datetime | None,
    until: datetime | None,
) -> list[Any]:
    t = positions
    stmt = select(t).where(*bbox_clauses(t, bbox)).order_by(t.c.ts, t.c.seq)
    if entity:
        stmt = stmt.where(t.c.entity == entity)
    if site:
        stmt = stmt.where(t.c.site == site)
    if since:
        stmt = stmt.where(t.c.ts >= since)
    if until:
        stmt = stmt.where(t.c.ts < until)
    if after is not None:
        ts, seq = after
        stmt = stmt.where((t.c.ts > ts) | ((t.c.ts == ts) & (t.c.seq > seq)))
    return list(conn.execute(stmt.limit(limit)).all())
