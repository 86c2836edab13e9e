"""Audited changes and the rules of the audit log: append under a lock, checkpoint, verify.

A change and its audit record commit together or not at all. Appends are serialised for the whole
transaction (SQLite: ``BEGIN IMMEDIATE``, which also holds across processes sharing the file;
PostgreSQL: an advisory transaction lock, which holds across replicas), so two appenders never
read the same last record.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from edge.validators import utcnow
from hub.audit import checkpoints, repository
from hub.audit.chain import (
    CHAIN_HMAC,
    CHAIN_LEGACY,
    GENESIS,
    digest_matches,
    normalise_ts,
    record_hash,
    record_mac,
)
from hub.audit.checkpoints import Checkpoint
from hub.audit.keys import AuditKeyError, load_or_create_key
from hub.audit.report import Failure, VerifyResult
from hub.audit.repository import CHECKPOINT_ACTION
from hub.config import AuditConfig, HubConfig

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DEFAULT_DIRECTORY: Final = Path("/var/lib/gridward/audit")
CHECKPOINT_ACTOR: Final = "audit"
MAX_TIMER_POLL_S: Final = 60.0


# The key each engine's trail appends with, so that ``audit.append(conn, ...)`` called by code that
# holds only a connection signs with the same key as the trail (instead of being refused).
_KEY_BY_ENGINE: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()


class AuditLogKeyedError(AuditKeyError):
    """An unkeyed appender met a keyed log: writing would downgrade the chain."""


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's write lock from its first statement.

    pysqlite's default transaction handling begins lazily (deferred) right before the first
    INSERT/UPDATE, so two audited transactions could both read the same last record. The driver
    is put in autocommit mode for this connection only (SQLAlchemy restores the pool's level on
    check-in) and the transaction is begun explicitly with ``BEGIN IMMEDIATE``, which waits up to
    the busy timeout for other writers, in this process or another.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        with conn.begin():
            # With the driver in autocommit mode, commit() and rollback() on the DBAPI connection
            # end this explicit transaction.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn


@dataclass(frozen=True, slots=True)
class AuditPaths:
    """Where the audit secrets and checkpoints are (resolved from :class:`AuditConfig`)."""

    key_file: Path
    key_env: str | None
    signing_key_file: Path
    public_key_file: Path
    checkpoint_file: Path

    @classmethod
    def resolve(
        cls, config: AuditConfig, database_url: str, legacy_head_file: Path | None = None
    ) -> AuditPaths:
        directory = config.directory
        if directory is None and legacy_head_file is not None:
            directory = legacy_head_file.parent
        if directory is None:
            url = make_url(database_url)
            if url.get_backend_name() == "sqlite" and url.database not in {None, "", ":memory:"}:
                directory = Path(str(url.database)).resolve().parent / "audit"
            else:
                directory = DEFAULT_DIRECTORY
        return cls(
            key_file=config.key_file or directory / "audit-hmac.key",
            key_env=config.key_env,
            signing_key_file=config.signing_key_file or directory / "checkpoint-signing.pem",
            public_key_file=config.public_key_file or directory / "checkpoint-public.pem",
            checkpoint_file=config.checkpoint_file or directory / "checkpoints.jsonl",
        )


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The keys and checkpoint policy an :class:`AuditTrail` appends with."""

    key: bytes | None
    signing_key: Ed25519PrivateKey | None = None  # None: this process writes no checkpoints
    checkpoint_file: Path | None = None
    every_records: int = 100
    every_minutes: float = 10.0
    public_key: Ed25519PublicKey | None = None  # to verify checkpoints another process wrote

    @classmethod
    def open(cls, config: AuditConfig, paths: AuditPaths) -> AuditSettings:
        """Load the keys, creating any that are missing (first start)."""
        key = load_or_create_key(paths.key_file, paths.key_env)
        signing = None
        public = None
        if config.write_checkpoints:
            signing = checkpoints.load_or_create_signing_key(
                paths.signing_key_file, paths.public_key_file
            )
            public = signing.public_key()
        elif paths.public_key_file.exists():
            public = checkpoints.load_public_key(paths.public_key_file)
        return cls(
            key=key,
            signing_key=signing,
            checkpoint_file=paths.checkpoint_file,
            every_records=config.checkpoint_every_records,
            every_minutes=config.checkpoint_every_minutes,
            public_key=public,
        )


@dataclass(frozen=True, slots=True)
class Appended:
    seq: int
    hash: str
    ts: datetime


Record = tuple[str, str, str, dict[str, Any] | None]  # actor, action, target, details


def _append(
    conn: Connection,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any] | None,
    *,
    key: bytes | None,
    clock: Clock,
) -> Appended:
    appended = _append_many(conn, [(actor, action, target, details)], key=key, clock=clock)
    return appended[-1]


def _append_many(
    conn: Connection, records: list[Record], *, key: bytes | None, clock: Clock
) -> list[Appended]:
    """Chain ``records`` after the last one, in order, under one append lock and one insert."""
    if not records:
        return []
    repository.lock_for_append(conn)
    last = repository.last_record(conn)
    if key is None and last is not None and last.chain == CHAIN_HMAC:
        raise AuditLogKeyedError(
            "the audit log is keyed but this process has no audit key: "
            "configure audit.key_file or the key environment variable"
        )
    seq = last.seq if last else 0
    prev = last.hash if last else GENESIS
    rows: list[dict[str, Any]] = []
    appended: list[Appended] = []
    for actor, action, target, details in records:
        clean: dict[str, Any] = json.loads(json.dumps(details or {}, default=str))
        seq += 1
        ts = clock()
        if key is not None:
            digest = record_mac(key, seq, ts, actor, action, target, clean, prev)
        else:
            digest = record_hash(seq, ts, actor, action, target, clean, prev)
        rows.append(
            {
                "seq": seq,
                "ts": ts,
                "actor": actor,
                "action": action,
                "target": target,
                "details": clean,
                "prev_hash": prev,
                "hash": digest,
                "chain": CHAIN_HMAC if key is not None else CHAIN_LEGACY,
            }
        )
        appended.append(Appended(seq, digest, ts))
        prev = digest
    repository.insert_many(conn, rows)
    return appended


@dataclass(slots=True)
class AuditBatch:
    """The transaction of :meth:`AuditTrail.changes` and the records it will append."""

    conn: Connection
    records: list[Record] = field(default_factory=list)

    def add(
        self, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> None:
        self.records.append((actor, action, target, details))


def append(
    conn: Connection,
    actor: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    *,
    key: bytes | None = None,
    clock: Clock = utcnow,
) -> int:
    """Append one record in the caller's transaction; returns its sequence number.

    Without ``key``, the key of the :class:`AuditTrail` built for this engine is used. Prefer
    :meth:`AuditTrail.change`: it holds the write lock for the whole transaction and writes
    checkpoints after commit."""
    if key is None:
        key = _KEY_BY_ENGINE.get(conn.engine)
    return _append(conn, actor, action, target, details, key=key, clock=clock).seq


class AuditTrail:
    """Audited changes: the change and its audit record commit together, or neither does."""

    def __init__(
        self, engine: Engine, settings: AuditSettings | None = None, *, clock: Clock = utcnow
    ) -> None:
        self.engine = engine
        self.settings = settings or AuditSettings(key=None)
        self.clock = clock
        self.stats: dict[str, int] = {"checkpoints": 0, "checkpoint_errors": 0}
        self._checkpoint_lock = threading.Lock()
        self._last_checkpoint_seq: int | None = None
        self._last_checkpoint_ts: datetime | None = None
        self._timer: threading.Thread | None = None
        self._timer_stop = threading.Event()
        if self.settings.key is not None:
            _KEY_BY_ENGINE[engine] = self.settings.key

    @classmethod
    def from_config(cls, engine: Engine, config: HubConfig, *, clock: Clock = utcnow) -> AuditTrail:
        """The trail a hub process or CLI command appends with (keys created on first use)."""
        paths = AuditPaths.resolve(
            config.audit, config.resolved_database_url(), config.audit_head_file
        )
        return cls(engine, AuditSettings.open(config.audit, paths), clock=clock)

    @property
    def keyed(self) -> bool:
        return self.settings.key is not None

    @property
    def writes_checkpoints(self) -> bool:
        s = self.settings
        return s.signing_key is not None and s.checkpoint_file is not None

    @contextmanager
    def change(
        self, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> Iterator[Connection]:
        with write_transaction(self.engine) as conn:
            yield conn
            appended = _append(
                conn, actor, action, target, details, key=self.settings.key, clock=self.clock
            )
        self._after_commit(appended.seq)

    @contextmanager
    def changes(self) -> Iterator[AuditBatch]:
        """Several audited changes in one transaction, one record each (``batch.add``): the
        records are chained in the order added, after the caller's writes, and commit with
        them or not at all. A batch that adds nothing appends nothing."""
        with write_transaction(self.engine) as conn:
            batch = AuditBatch(conn)
            yield batch
            appended = _append_many(conn, batch.records, key=self.settings.key, clock=self.clock)
        if appended:
            self._after_commit(appended[-1].seq)

    def record(
        self, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> None:
        """An audited event that changes nothing else (a login, an export, a failed attempt)."""
        with self.change(actor, action, target, details):
            pass

    def _after_commit(self, seq: int) -> None:
        if not self.writes_checkpoints:
            return
        if self._last_checkpoint_seq is None:
            self._load_last_checkpoint()
        if seq - (self._last_checkpoint_seq or 0) < self.settings.every_records:
            return
        try:
            self.checkpoint(due="records")
        except Exception:  # the change is committed; the next append or the timer retries
            self.stats["checkpoint_errors"] += 1
            log.exception("writing an audit checkpoint failed")

    def _load_last_checkpoint(self) -> None:
        with self.engine.connect() as conn:
            last = repository.last_checkpoint_record(conn)
        self._last_checkpoint_seq = last.seq if last else 0
        self._last_checkpoint_ts = normalise_ts(last.ts) if last else None

    def checkpoint(self, due: Literal["records", "timer", "now"] = "now") -> Checkpoint | None:
        """Announce a checkpoint in the log, then sign it into the checkpoint file.

        ``due``: "records" writes one only if ``every_records`` records came since the last,
        "timer" only if anything came since the last, "now" always (if the log is not empty).
        """
        signing, path = self.settings.signing_key, self.settings.checkpoint_file
        if signing is None or path is None:
            return None
        with self._checkpoint_lock:
            with write_transaction(self.engine) as conn:
                repository.lock_for_append(conn)
                last_cp = repository.last_checkpoint_record(conn)
                head = repository.last_record(conn)
                since = (head.seq if head else 0) - (last_cp.seq if last_cp else 0)
                if (
                    head is None
                    or (due == "records" and since < self.settings.every_records)
                    or (due == "timer" and since <= 0)
                ):
                    self._last_checkpoint_seq = last_cp.seq if last_cp else 0
                    return None
                number = int(last_cp.details.get("checkpoint", 0)) + 1 if last_cp else 1
                appended = _append(
                    conn,
                    CHECKPOINT_ACTOR,
                    CHECKPOINT_ACTION,
                    "",
                    {"checkpoint": number, "covers": head.seq},
                    key=self.settings.key,
                    clock=self.clock,
                )
            cp = Checkpoint(number, appended.seq, appended.hash, appended.ts)
            checkpoints.append(path, checkpoints.sign(cp, signing))
            self._last_checkpoint_seq = appended.seq
            self._last_checkpoint_ts = normalise_ts(appended.ts)
            self.stats["checkpoints"] += 1
        log.info("audit checkpoint %d written at record %d", number, appended.seq)
        return cp

    def tick(self) -> Checkpoint | None:
        """The timer's step: a checkpoint when ``every_minutes`` passed and the log moved."""
        if not self.writes_checkpoints:
            return None
        if self._last_checkpoint_seq is None:
            self._load_last_checkpoint()
        now = normalise_ts(self.clock())
        last = self._last_checkpoint_ts
        if last is not None and now - last < timedelta(minutes=self.settings.every_minutes):
            return None
        cp = self.checkpoint(due="timer")
        if cp is None:
            # Nothing new: wait another interval before looking again.
            self._last_checkpoint_ts = now
        return cp

    def start_timer(self) -> None:
        if not self.writes_checkpoints or self._timer is not None:
            return
        self._timer_stop.clear()
        poll_s = min(MAX_TIMER_POLL_S, self.settings.every_minutes * 60 / 4)

        def run() -> None:
            while True:
                try:
                    self.tick()
                except Exception:  # keep the timer alive; the next poll retries
                    self.stats["checkpoint_errors"] += 1
                    log.exception("audit checkpoint timer failed")
                if self._timer_stop.wait(poll_s):
                    return

        self._timer = threading.Thread(target=run, name="hub-audit-checkpoints", daemon=True)
        self._timer.start()

    def stop_timer(self) -> None:
        self._timer_stop.set()
        if self._timer is not None:
            self._timer.join(timeout=10)
            self._timer = None

    def verify(self, public_key: Ed25519PublicKey | None = None) -> VerifyResult:
        """Everything this trail's own keys can check."""
        public_key = public_key or self.settings.public_key
        if public_key is None and self.settings.signing_key is not None:
            public_key = self.settings.signing_key.public_key()
        # Under the checkpoint lock: no checkpoint of this process is between its commit and
        # its line in the file while the log is read.
        with self._checkpoint_lock:
            return verify(
                self.engine,
                key=self.settings.key,
                public_key=public_key,
                checkpoint_file=self.settings.checkpoint_file,
            )


@dataclass(slots=True)
class _Walk:
    prev: str = GENESIS
    expected_seq: int = 1
    keyed_since: int | None = None
    legacy: int = 0
    last_seq: int = 0
    heads: dict[int, str] = field(default_factory=dict)
    announced: list[tuple[int, int]] = field(default_factory=list)  # (record seq, number)


def verify(
    engine: Engine,
    key: bytes | None = None,
    public_key: Ed25519PublicKey | None = None,
    checkpoint_file: Path | None = None,
    *,
    max_failures: int = 50,
) -> VerifyResult:
    """Walk the chain from the first record and check the signed checkpoints.

    ``key`` (the HMAC secret) proves each keyed record's content; ``public_key`` with
    ``checkpoint_file`` proves that the log still holds every signed head (no newest records
    deleted, no chain rewritten) and needs no secret at all. Whatever could not be checked is
    listed in ``not_checked``.
    """
    result = VerifyResult(hmac_checked=key is not None)
    scan = None
    if public_key is not None and checkpoint_file is not None and checkpoint_file.exists():
        scan = checkpoints.scan(checkpoint_file, public_key)
        result.failures.extend(scan.failures)
    wanted = {cp.seq for _, cp in scan.by_number.values()} if scan else set()
    walk = _Walk()
    stopped = False
    with engine.connect() as conn:
        for row in repository.iter_records(conn):
            result.records += 1
            _check_record(row, walk, key, result.failures)
            if row.seq in wanted:
                walk.heads[row.seq] = row.hash
            if row.action == CHECKPOINT_ACTION and isinstance(row.details, dict):
                number = row.details.get("checkpoint")
                if isinstance(number, int):
                    walk.announced.append((row.seq, number))
            walk.prev = row.hash
            walk.expected_seq = row.seq + 1
            walk.last_seq = row.seq
            if len(result.failures) >= max_failures:
                stopped = True
                break
    result.head_hash = walk.prev
    result.legacy_records = walk.legacy
    if stopped:
        result.not_checked.append(
            f"stopped at record {walk.last_seq} after {max_failures} failures: "
            "later records were not checked"
        )
    _check_checkpoints(result, walk, scan, public_key, checkpoint_file, stopped=stopped)
    _explain_limits(result, walk, key)
    return result


def _check_record(row: Any, walk: _Walk, key: bytes | None, failures: list[Failure]) -> None:
    seq = int(row.seq)
    if seq != walk.expected_seq:
        failures.append(
            Failure(
                "record",
                f"records {walk.expected_seq}..{seq - 1} before it are missing (deleted)",
                seq=seq,
            )
        )
    if row.prev_hash != walk.prev:
        failures.append(
            Failure(
                "record",
                "previous-hash link broken: the record before it was edited, deleted or replaced",
                seq=seq,
            )
        )
    fields = (seq, row.ts, row.actor, row.action, row.target, row.details, row.prev_hash)
    if row.chain == CHAIN_HMAC:
        if walk.keyed_since is None:
            walk.keyed_since = seq
        if key is not None and not digest_matches(row.hash, record_mac(key, *fields)):
            failures.append(
                Failure(
                    "record",
                    "HMAC does not match: edited, forged without the audit key, "
                    "or written under another key",
                    seq=seq,
                )
            )
    elif row.chain == CHAIN_LEGACY:
        if walk.keyed_since is not None:
            failures.append(
                Failure(
                    "record",
                    f"unkeyed record after the log became keyed at record "
                    f"{walk.keyed_since}: forged or downgraded",
                    seq=seq,
                )
            )
            return
        walk.legacy += 1
        if not digest_matches(row.hash, record_hash(*fields)):
            failures.append(Failure("record", "content does not match its hash (edited)", seq=seq))
    else:
        failures.append(Failure("record", f"unknown chain kind {str(row.chain)[:16]!r}", seq=seq))


def _check_checkpoints(
    result: VerifyResult,
    walk: _Walk,
    scan: checkpoints.CheckpointScan | None,
    public_key: Ed25519PublicKey | None,
    checkpoint_file: Path | None,
    *,
    stopped: bool,
) -> None:
    if public_key is None or checkpoint_file is None:
        result.not_checked.append(
            "checkpoints not verified: no checkpoint public key or checkpoint file given"
        )
        return
    result.checkpoints_checked = True
    if scan is None:
        if walk.announced:
            seq, number = walk.announced[-1]
            result.failures.append(
                Failure(
                    "checkpoint",
                    f"the checkpoint file {checkpoint_file} is missing but "
                    f"the log announces {len(walk.announced)} checkpoints",
                    seq=seq,
                    line=number,
                )
            )
        else:
            result.not_checked.append(
                "no checkpoint written yet: newest-record deletion cannot be detected"
            )
        return
    result.checkpoints = len(scan.by_number)
    for number in sorted(scan.by_number):
        line, cp = scan.by_number[number]
        stored = walk.heads.get(cp.seq)
        if stored is None:
            if stopped and cp.seq > walk.last_seq:
                continue
            if cp.seq > walk.last_seq:
                reason = (
                    f"signs record {cp.seq} but the log ends at record {walk.last_seq}: "
                    "newest records deleted"
                )
            else:
                reason = f"record {cp.seq} it signs is missing from the log (deleted)"
            result.failures.append(Failure("checkpoint", reason, seq=cp.seq, line=line))
        elif not digest_matches(stored, cp.head):
            result.failures.append(
                Failure(
                    "checkpoint",
                    "the log's hash at this record differs from the signed "
                    "head: the chain was rewritten up to here",
                    seq=cp.seq,
                    line=line,
                )
            )
    _check_announced(result, walk, scan, checkpoint_file)
    signed = [cp.seq for _, cp in scan.by_number.values()]
    last_signed = max(signed, default=0)
    if walk.last_seq > last_signed and not stopped:
        result.not_checked.append(
            f"records {last_signed + 1}..{walk.last_seq} are newer than the last checkpoint: "
            "their deletion would not be detected yet"
        )


def _check_announced(
    result: VerifyResult, walk: _Walk, scan: checkpoints.CheckpointScan, path: Path
) -> None:
    """Each checkpoint the (keyed) log announces must be in the file: catches truncation."""
    missing = [(seq, n) for seq, n in walk.announced if n not in scan.by_number]
    if missing:
        # Another process may have committed a checkpoint and written its line while the log
        # was read: look again before calling it missing.
        later = checkpoints.scan(path, public_key=scan.public_key) if path.exists() else None
        missing = [(s, n) for s, n in missing if later is None or n not in later.by_number]
    for seq, number in missing:
        result.failures.append(
            Failure(
                "checkpoint",
                f"checkpoint {number}, announced by record {seq}, is "
                "missing from the checkpoint file (lines deleted or file truncated)",
                seq=seq,
                line=number,
            )
        )


def _explain_limits(result: VerifyResult, walk: _Walk, key: bytes | None) -> None:
    if walk.keyed_since is not None and key is None:
        result.not_checked.append(
            "record contents not verified (HMAC): no audit key given; only the hash links "
            "and the signed checkpoints were checked"
        )
    if walk.legacy:
        anchor = (
            f"; keyed record {walk.keyed_since} anchors them from then on"
            if walk.keyed_since is not None
            else ""
        )
        result.not_checked.append(
            f"records 1..{walk.legacy} are legacy, unkeyed (SHA-256 from before the audit key "
            f"existed): anyone with database access could have rewritten them{anchor}"
        )
