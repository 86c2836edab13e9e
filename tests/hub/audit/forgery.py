"""What an attacker with write access to the database (but not the audit key) can do: rewrite
records and recompute every later link with whatever hash function they have."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update

from hub.audit import CHAIN_HMAC, GENESIS, record_hash, record_mac
from hub.schema import audit_log

Hasher = Callable[[int, datetime, str, str, str, dict[str, Any], str], str]


def legacy_hasher(*fields: Any) -> str:
    return record_hash(*fields)


def keyed_hasher(key: bytes) -> Hasher:
    def digest(*fields: Any) -> str:
        return record_mac(key, *fields)

    return digest


def rewrite_chain(
    engine: Engine,
    start_seq: int,
    hasher: Hasher,
    *,
    edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    chain: str = CHAIN_HMAC,
    stop_seq: int | None = None,
) -> None:
    """Edit record ``start_seq`` (via ``edit``), then recompute its and every later link (up
    to ``stop_seq`` included)."""
    with engine.begin() as conn:
        rows = [r._asdict() for r in conn.execute(select(audit_log).order_by(audit_log.c.seq))]
        prev = GENESIS
        for row in rows:
            if row["seq"] >= start_seq and (stop_seq is None or row["seq"] <= stop_seq):
                if row["seq"] == start_seq and edit is not None:
                    row = edit(row)  # noqa: PLW2901
                digest = hasher(
                    row["seq"],
                    row["ts"],
                    row["actor"],
                    row["action"],
                    row["target"],
                    row["details"],
                    prev,
                )
                conn.execute(
                    update(audit_log)
                    .where(audit_log.c.seq == row["seq"])
                    .values(
                        details=row["details"],
                        prev_hash=prev,
                        hash=digest,
                        chain=chain,
                        actor=row["actor"],
                    )
                )
                row["hash"] = digest
            prev = row["hash"]


def delete_from(engine: Engine, seq: int) -> None:
    with engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq >= seq))


def append_forged(
    engine: Engine,
    hasher: Hasher,
    actor: str,
    action: str,
    *,
    target: str = "",
    details: dict[str, Any] | None = None,
    ts: datetime,
) -> int:
    with engine.begin() as conn:
        last = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).first()
        seq = last.seq + 1 if last else 1
        prev = last.hash if last else GENESIS
        details = details or {}
        conn.execute(
            audit_log.insert().values(
                seq=seq,
                ts=ts,
                actor=actor,
                action=action,
                target=target,
                details=details,
                prev_hash=prev,
                hash=hasher(seq, ts, actor, action, target, details, prev),
                chain=CHAIN_HMAC,
            )
        )
    return seq
