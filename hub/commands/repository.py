"""SQL of the command outbox (SQLAlchemy Core)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, select, update

from hub.schema import command_outbox, replies

t = command_outbox
OPEN_STATES = ("pending", "sent")
STATES = ("pending", "sent", "answered", "failed", "superseded")


@dataclass(frozen=True, slots=True)
class Claimed:
    """A command this process claimed for one attempt: publish it after the claim commits."""

    id: str
    site: str
    device: str
    channel: str
    payload: bytes
    qos: int
    retain: bool
    attempts: int  # including this attempt


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(t.insert().values(**values))


def supersede_open(conn: Connection, device: str, channel: str, except_id: str, reason: str) -> int:
    res = conn.execute(
        update(t)
        .where(
            t.c.device == device,
            t.c.channel == channel,
            t.c.state.in_(OPEN_STATES),
            t.c.id != except_id,
        )
        .values(state="superseded", last_error=reason)
    )
    return int(res.rowcount)


def fail_one(conn: Connection, command_id: str, reason: str) -> None:
    conn.execute(
        update(t)
        .where(t.c.id == command_id, t.c.state.in_(OPEN_STATES))
        .values(state="failed", last_error=reason[:500])
    )


def fail_open_for_device(conn: Connection, device: str, reason: str) -> int:
    res = conn.execute(
        update(t)
        .where(t.c.device == device, t.c.state.in_(OPEN_STATES))
        .values(state="failed", last_error=reason[:500])
    )
    return int(res.rowcount)


def answered_candidates(conn: Connection) -> list[tuple[str, str, str]]:
    """(command id, device, reply payload) of open or failed commands their device answered.

    The reply must come from the device the command was sent to: a device cannot close
    another device's command by citing its id.
    """
    rows = conn.execute(
        select(t.c.id, t.c.device, replies.c.payload)
        .join(replies, and_(replies.c.request_id == t.c.id, replies.c.device == t.c.device))
        .where(t.c.state.in_((*OPEN_STATES, "failed")))
    ).all()
    return [(r.id, r.device, r.payload) for r in rows]


def mark_answered(
    conn: Connection,
    command_id: str,
    device: str,
    *,
    ok: bool,
    error: str | None,
    now: datetime,
) -> bool:
    res = conn.execute(
        update(t)
        .where(
            t.c.id == command_id,
            t.c.device == device,
            t.c.state.in_((*OPEN_STATES, "failed")),
        )
        .values(
            state="answered",
            answered_at=now,
            answer_ok=ok,
            answer_error=(error or None) and error[:500],
        )
    )
    return res.rowcount == 1


def fail_exhausted(conn: Connection, max_attempts: int, now: datetime) -> int:
    res = conn.execute(
        update(t)
        .where(t.c.state == "sent", t.c.attempts >= max_attempts, t.c.next_attempt_at <= now)
        .values(state="failed", last_error=f"no answer after {max_attempts} attempts")
    )
    return int(res.rowcount)


def fail_expired(conn: Connection, max_age: timedelta, now: datetime) -> int:
    res = conn.execute(
        update(t)
        .where(t.c.state.in_(OPEN_STATES), t.c.created_at < now - max_age)
        .values(state="failed", last_error=f"no answer within {int(max_age.total_seconds())} s")
    )
    return int(res.rowcount)


def due(conn: Connection, now: datetime, max_attempts: int, limit: int) -> list[Any]:
    """Open commands whose next attempt is due, locked for this transaction.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets replicas scan at the same time without
    waiting on (or taking) each other's rows; SQLite has one writer and ignores the clause.
    """
    stmt = (
        select(t)
        .where(t.c.state.in_(OPEN_STATES), t.c.next_attempt_at <= now, t.c.attempts < max_attempts)
        .order_by(t.c.next_attempt_at, t.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(conn.execute(stmt).all())


def claim(conn: Connection, row: Any, next_attempt_at: datetime) -> bool:
    """Count one attempt, guarded by the attempt count read: a second claimer matches nothing."""
    res = conn.execute(
        update(t)
        .where(t.c.id == row.id, t.c.attempts == row.attempts, t.c.state.in_(OPEN_STATES))
        .values(attempts=row.attempts + 1, next_attempt_at=next_attempt_at)
    )
    return res.rowcount == 1


def release(conn: Connection, claimed: Claimed, retry_at: datetime, error: str) -> None:
    """Undo a claim whose publish never left this process (broker unreachable)."""
    conn.execute(
        update(t)
        .where(t.c.id == claimed.id, t.c.attempts == claimed.attempts)
        .values(attempts=claimed.attempts - 1, next_attempt_at=retry_at, last_error=error[:500])
    )


def mark_sent(conn: Connection, command_ids: Sequence[str], now: datetime) -> None:
    # Only open commands: an answer or a newer push may have landed during the publish.
    if not command_ids:
        return
    conn.execute(
        update(t)
        .where(t.c.id.in_(list(command_ids)), t.c.state.in_(OPEN_STATES))
        .values(state="sent", sent_at=now, last_error=None)
    )


def get(conn: Connection, command_id: str) -> Any | None:
    return conn.execute(select(t).where(t.c.id == command_id)).first()


def page(
    conn: Connection,
    *,
    limit: int,
    after: str | None,
    device: str | None,
    state: str | None,
) -> list[Any]:
    """Newest first (ids are time-ordered UUIDv7)."""
    stmt = select(t).order_by(t.c.id.desc()).limit(limit)
    if device:
        stmt = stmt.where(t.c.device == device)
    if state:
        stmt = stmt.where(t.c.state == state)
    if after:
        stmt = stmt.where(t.c.id < after)
    return list(conn.execute(stmt).all())


def reply_answer(payload: str) -> tuple[bool, str | None]:
    """``ok`` and ``error`` from a stored Reply (ingest stored it only after validating it)."""
    data = json.loads(payload)
    error = data.get("error")
    return bool(data.get("ok")), str(error) if error is not None else None
