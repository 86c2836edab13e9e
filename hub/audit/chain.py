"""The record hash chain: pure functions, no I/O.

Each record's ``hash`` covers its own canonical content and the previous record's hash. Records
written since the audit key was introduced use HMAC-SHA256 under a secret kept outside the
database, so someone who can write the database but does not hold the key cannot recompute a
valid chain after editing, deleting or appending records. Records written before that (``chain``
= ``sha256``) are plain SHA-256: anyone could have recomputed them, so a verifier reports them as
legacy, unkeyed instead of trusting them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any, Final

GENESIS: Final = "0" * 64
CHAIN_LEGACY: Final = "sha256"
CHAIN_HMAC: Final = "hmac-sha256"
KEY_BYTES: Final = 32


def normalise_ts(ts: datetime) -> datetime:
    """Naive UTC: SQLite returns naive UTC, PostgreSQL aware in the session zone."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.replace(tzinfo=None)


def canonical(  # noqa: PLR0917 - the hashed fields, in their fixed order
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    prev_hash: str,
) -> bytes:
    return json.dumps(
        {
            "seq": seq,
            "ts": normalise_ts(ts).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,
            "prev": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    ).encode("utf-8")


def record_hash(  # noqa: PLR0917 - the hashed fields, in their fixed order
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """The legacy, unkeyed SHA-256 link (records written before the audit key existed)."""
    return hashlib.sha256(canonical(seq, ts, actor, action, target, details, prev_hash)).hexdigest()


def record_mac(  # noqa: PLR0917 - the key, then the hashed fields in their fixed order
    key: bytes,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """The keyed HMAC-SHA256 link."""
    message = canonical(seq, ts, actor, action, target, details, prev_hash)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def digest_matches(stored: str, expected: str) -> bool:
    return hmac.compare_digest(stored.encode("ascii", "replace"), expected.encode("ascii"))
