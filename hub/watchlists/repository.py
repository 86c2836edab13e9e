"""SQL for watchlist entries and their encrypted photos (SQLAlchemy Core).

``active_embeddings`` (bundles) and ``entry_summaries`` (matches) are the hooks other areas
read through; nothing outside this module writes these tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from hub.clock import as_utc
from hub.schema import watchlist_entries, watchlist_photos

PENDING = "pending"
ACTIVE = "active"
REFUSED = "refused"
REVOKED = "revoked"
EXPIRED = "expired"
STATUSES = (PENDING, ACTIVE, REFUSED, REVOKED, EXPIRED)
_LAPSING = (PENDING, ACTIVE)

# Every column but the embedding: what lists and detail views read.
_ENTRY = [c for c in watchlist_entries.c if c.name != "embedding"]


@dataclass(frozen=True, slots=True)
class EntrySummary:
    id: str
    label: str
    category: str
    status: str  # as of the ``now`` asked about: an active entry past expires_at is "expired"
    expires_at: datetime


def status_at(status: str, expires_at: datetime, now: datetime) -> str:
    """The status an entry has at ``now``: active and pending entries expire at
    ``expires_at`` whether or not the sweeper has marked them yet (so nothing reads a lapsed
    entry as active, nor approves one)."""
    if status in _LAPSING and as_utc(expires_at) <= now:
        return EXPIRED
    return status


def insert(conn: Connection, values: dict[str, Any], photo: dict[str, Any]) -> None:
    conn.execute(watchlist_entries.insert().values(**values))
    conn.execute(watchlist_photos.insert().values(entry_id=values["id"], **photo))


def get(conn: Connection, entry_id: str, *, for_update: bool = False) -> Any | None:
    stmt = select(*_ENTRY).where(watchlist_entries.c.id == entry_id)
    if for_update:
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def page(
    conn: Connection, *, status: str | None, now: datetime, limit: int, after: str | None
) -> list[Any]:
    """Newest first (ids are UUIDv7); ``status`` as of ``now`` (see :func:`status_at`)."""
    stmt = select(*_ENTRY)
    c = watchlist_entries.c
    if status in _LAPSING:
        stmt = stmt.where(c.status == status, c.expires_at > now)
    elif status == EXPIRED:
        lapsed = and_(c.status.in_(_LAPSING), c.expires_at <= now)
        stmt = stmt.where(or_(c.status == EXPIRED, lapsed))
    elif status is not None:
        stmt = stmt.where(c.status == status)
    if after is not None:
        stmt = stmt.where(c.id < after)
    return list(conn.execute(stmt.order_by(c.id.desc()).limit(limit)).all())


def transition(conn: Connection, entry_id: str, from_status: str, values: dict[str, Any]) -> bool:
    """Set ``values`` if the entry is still ``from_status`` (one winner among concurrent
    approvals, refusals and revocations); True if this call changed it."""
    result = conn.execute(
        update(watchlist_entries)
        .where(watchlist_entries.c.id == entry_id, watchlist_entries.c.status == from_status)
        .values(**values)
    )
    return result.rowcount == 1


def due_expiry(conn: Connection, now: datetime, limit: int) -> list[Any]:
    c = watchlist_entries.c
    stmt = (
        select(c.id, c.expires_at)
        .where(c.status.in_(_LAPSING), c.expires_at <= now)
        .order_by(c.expires_at)
        .limit(limit)
    )
    return list(conn.execute(stmt).all())


def photo(conn: Connection, entry_id: str) -> Any | None:
    return conn.execute(
        select(watchlist_photos).where(watchlist_photos.c.entry_id == entry_id)
    ).first()


def active_embeddings(
    conn: Connection, model: str, now: datetime
) -> list[tuple[str, datetime, bytes]]:
    """What a bundle holds: (entry id, expires_at, float32 embedding bytes) of every entry
    approved, not revoked and not yet expired at ``now``, computed by ``model``; by id."""
    c = watchlist_entries.c
    stmt = (
        select(c.id, c.expires_at, c.embedding)
        .where(c.status == ACTIVE, c.expires_at > now, c.model == model)
        .order_by(c.id)
    )
    return [(r.id, as_utc(r.expires_at), bytes(r.embedding)) for r in conn.execute(stmt)]


def entry_summaries(
    conn: Connection, ids: Iterable[str], now: datetime | None = None
) -> dict[str, EntrySummary]:
    """Label, category, status and expiry of the entries named (unknown ids are left out).
    With ``now``, an active entry past its expiry reads as expired."""
    wanted: Sequence[str] = sorted(set(ids))
    if not wanted:
        return {}
    c = watchlist_entries.c
    out: dict[str, EntrySummary] = {}
    for start in range(0, len(wanted), 500):  # bound the IN list
        stmt = select(c.id, c.label, c.category, c.status, c.expires_at).where(
            c.id.in_(wanted[start : start + 500])
        )
        for r in conn.execute(stmt):
            expires_at = as_utc(r.expires_at)
            status = r.status if now is None else status_at(r.status, expires_at, now)
            out[r.id] = EntrySummary(r.id, r.label, r.category, status, expires_at)
    return out
