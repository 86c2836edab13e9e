"""Append-only, hash-chained audit log.

Each record's ``hash`` is SHA-256 over its own canonical content and the previous record's hash,
so editing any record, or deleting one from the middle, breaks the chain at that point;
``gridward audit verify`` walks it. The head (count and last hash) is also kept in a sidecar
file outside the database when configured, which catches deletion of the newest records.
Records are appended inside the same transaction as the change they describe.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from edge.validators import utcnow
from hub.schema import audit_log

GENESIS = "0" * 64
_append_lock = threading.Lock()


def record_hash(  # noqa: PLR0917 - the hashed fields, in their fixed order
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    canonical = json.dumps(
        {
            "seq": seq,
            "ts": ts.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,
            "prev": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _normalise_ts(ts: datetime) -> datetime:
    # SQLite returns naive UTC, PostgreSQL aware in the session zone: hash naive UTC either way.
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.replace(tzinfo=None)


def append(
    conn: Connection,
    actor: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> int:
    """Append one record in the caller's transaction; returns its sequence number."""
    details = json.loads(json.dumps(details or {}, default=str))
    with _append_lock:
        if conn.dialect.name == "postgresql":
            # Serialise appenders across hub replicas for the rest of this transaction.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242002)")
        last = conn.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        ).first()
        seq = (last.seq + 1) if last else 1
        prev = last.hash if last else GENESIS
        ts = utcnow()
        digest = record_hash(seq, _normalise_ts(ts), actor, action, target, details, prev)
        conn.execute(
            audit_log.insert().values(
                seq=seq,
                ts=ts,
                actor=actor,
                action=action,
                target=target,
                details=details,
                prev_hash=prev,
                hash=digest,
            )
        )
    return seq


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    problems: list[str]
    head_hash: str


def verify(engine: Engine, head_file: Path | None = None, limit_problems: int = 20) -> VerifyResult:
    """Recompute the chain from the first record; report every break found."""
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    count = 0
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=2000).execute(
            select(audit_log).order_by(audit_log.c.seq)
        )
        for row in rows:
            count += 1
            if row.seq != expected_seq:
                problems.append(f"records {expected_seq}..{row.seq - 1} are missing (deleted)")
            if row.prev_hash != prev:
                problems.append(f"record {row.seq}: previous-hash link broken")
            digest = record_hash(
                row.seq,
                _normalise_ts(row.ts),
                row.actor,
                row.action,
                row.target,
                row.details,
                row.prev_hash,
            )
            if digest != row.hash:
                problems.append(f"record {row.seq}: content does not match its hash (edited)")
            prev = row.hash
            expected_seq = row.seq + 1
            if len(problems) >= limit_problems:
                break
    if head_file is not None and head_file.exists():
        head = json.loads(head_file.read_text(encoding="utf-8"))
        if head.get("records", 0) > count:
            problems.append(
                f"the log has {count} records but {head['records']} were written "
                "(newest records deleted)"
            )
    return VerifyResult(not problems, count, problems, prev)


def write_head(engine: Engine, head_file: Path) -> None:
    """Record the current head outside the database (see module docstring)."""
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
        last = conn.execute(
            select(audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        ).scalar()
    tmp = head_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"records": count, "hash": last or GENESIS}), encoding="utf-8")
    tmp.replace(head_file)


class AuditTrail:
    """Audited changes: the change and its audit record commit together, or neither does."""

    def __init__(self, engine: Engine, head_file: Path | None = None) -> None:
        self.engine = engine
        self.head_file = head_file

    @contextmanager
    def change(
        self, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn
            append(conn, actor, action, target, details)
        if self.head_file is not None:
            write_head(self.engine, self.head_file)

    def record(
        self, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> None:
        """An audited event that changes nothing else (a login, an export, a failed attempt)."""
        with self.change(actor, action, target, details):
            pass
