"""SQL for the audit log (SQLAlchemy Core). Rules and locking live in the service."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from hub.schema import audit_log

CHECKPOINT_ACTION = "audit.checkpoint"
# pg_advisory_xact_lock key that serialises appenders across hub replicas.
PG_APPEND_LOCK = 4242002


def lock_for_append(conn: Connection) -> None:
    """Hold the database's write lock from here to the end of the caller's transaction, so the
    last record read below is still the last when the new one is inserted."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_APPEND_LOCK})")
    elif conn.dialect.name == "sqlite":
        # A write that changes nothing still takes SQLite's RESERVED lock (waiting up to the
        # busy timeout), for callers whose transaction did not start with BEGIN IMMEDIATE.
        conn.execute(update(audit_log).where(audit_log.c.seq < 0).values(seq=audit_log.c.seq))


def last_record(conn: Connection) -> Row[Any] | None:
    return conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).first()


def record(conn: Connection, seq: int) -> Row[Any] | None:
    return conn.execute(select(audit_log).where(audit_log.c.seq == seq)).first()


def insert(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(audit_log.insert().values(**values))


def insert_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(audit_log.insert(), rows)


def last_checkpoint_record(conn: Connection) -> Row[Any] | None:
    return conn.execute(
        select(audit_log)
        .where(audit_log.c.action == CHECKPOINT_ACTION)
        .order_by(audit_log.c.seq.desc())
        .limit(1)
    ).first()


def checkpoint_records(conn: Connection) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(audit_log.c.seq, audit_log.c.details, audit_log.c.hash)
            .where(audit_log.c.action == CHECKPOINT_ACTION)
            .order_by(audit_log.c.seq)
        )
    )


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


def iter_records(conn: Connection) -> Iterator[Row[Any]]:
    rows = conn.execution_options(yield_per=2000).execute(
        select(audit_log).order_by(audit_log.c.seq)
    )
    yield from rows


@dataclass(frozen=True, slots=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_seq: int | None = None  # keyset paging, newest first


def query(conn: Connection, q: AuditQuery, limit: int) -> list[Row[Any]]:
    t = audit_log
    stmt = select(t).order_by(t.c.seq.desc()).limit(limit)
    if q.actor:
        stmt = stmt.where(t.c.actor == q.actor)
    if q.action:
        stmt = stmt.where(t.c.action == q.action)
    if q.target:
        stmt = stmt.where(t.c.target == q.target)
    if q.since:
        stmt = stmt.where(t.c.ts >= q.since)
    if q.until:
        stmt = stmt.where(t.c.ts < q.until)
    if q.before_seq is not None:
        stmt = stmt.where(t.c.seq < q.before_seq)
    return list(conn.execute(stmt))
