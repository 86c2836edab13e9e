"""The hub's relational store (SQLAlchemy 2 Core): SQLite (WAL) by default, PostgreSQL for
shared multi-replica sites. Alerts are inserted idempotently by message id.

A batch is written in one transaction. If the database refuses it, the batch is written again
one message at a time, so one bad message is rejected into the dead-letter table
(``rejected_messages``) and the rest are stored; a database that cannot be reached at all is
not a bad message and raises :class:`StoreUnavailableError` for the caller to retry.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Row, Table, create_engine, delete, event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from edge.protocol import (
    Alert,
    DeviceState,
    DeviceStatus,
    DispatchAnswer,
    Health,
    Inbound,
    Position,
    PositionBatch,
    ProtocolError,
    Reply,
    encode,
    parse_topic,
)
from edge.validators import new_id, utcnow
from hub.ownership import FUSION_REPORTER, NOT_OWNED, Owner, refusal
from hub.schema import (
    alerts,
    device_state,
    dispatch_answers,
    entity_owners,
    evidence,
    face_crops,
    health,
    latest_positions,
    positions,
    rejected_messages,
    replies,
)
from hub.snapshots import SnapshotRefusedError, reencode_jpeg

log = logging.getLogger(__name__)
LATEST_COLUMNS = (
    "entity_kind",
    "device",
    "lon",
    "lat",
    "accuracy_m",
    "heading_deg",
    "speed_mps",
    "ts",
)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEAD_LETTER_HEAD_BYTES = 512
DEAD_LETTER_ERROR_CHARS = 500
DEAD_LETTER_TOPIC_CHARS = 256
ALERT_ID_TAKEN = "alert_id_taken"
ANSWER_ID_TAKEN = "answer_id_taken"
TS_IN_FUTURE = "ts_in_future"
_IN_CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit


@dataclass(frozen=True, slots=True)
class TimestampWindow:
    """How far a device's clock may be from the hub's before its positions are not trusted.

    A position stamped more than ``max_future_skew_s`` ahead is refused (``ts_in_future``):
    it would stay "latest" until that time and outlive every retention cut. One more than
    ``max_past_age_s`` old is kept in the history but never becomes the latest position nor
    goes to the live map (counted as ``positions_stale``).
    """

    max_future_skew_s: float = 120.0
    max_past_age_s: float = 86_400.0

    def too_new(self, ts: datetime, now: datetime) -> bool:
        return (ts - now).total_seconds() > self.max_future_skew_s

    def too_old(self, ts: datetime, now: datetime) -> bool:
        return (now - ts).total_seconds() > self.max_past_age_s


@dataclass(frozen=True, slots=True)
class RejectedItem:
    """A message the database refused; it went to the dead-letter table, not stored, not acked."""

    item: Inbound
    reason: str
    error: str


@dataclass(slots=True)
class BatchResult:
    """What one committed batch did; ``acks`` maps (site, device) to alert ids now stored."""

    alerts_new: int = 0
    alerts_duplicate: int = 0
    positions: int = 0
    health: int = 0
    states: int = 0
    evidence: int = 0
    acks: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    rejected: list[RejectedItem] = field(default_factory=list)
    # Ids of the alerts this batch inserted (not duplicates): the only ones the live map shows.
    new_alert_ids: set[str] = field(default_factory=set)
    # Position rows that may move the live map (stored, owned, inside the timestamp window).
    live_positions: list[dict[str, Any]] = field(default_factory=list)
    positions_stale: int = 0
    # id(item) -> the item with only its accepted positions, for a message partly refused
    # (it is also in ``rejected``, with the reason of its refused positions).
    trimmed: dict[int, Inbound] = field(default_factory=dict)
    # Ids of the officer answers this batch inserted, for dispatch to decide (hub/dispatch).
    new_answer_ids: list[str] = field(default_factory=list)

    def merge(self, other: BatchResult) -> None:
        self.alerts_new += other.alerts_new
        self.alerts_duplicate += other.alerts_duplicate
        self.positions += other.positions
        self.health += other.health
        self.states += other.states
        self.evidence += other.evidence
        for key, ids in other.acks.items():
            self.acks.setdefault(key, []).extend(ids)
        self.rejected.extend(other.rejected)
        self.new_alert_ids |= other.new_alert_ids
        self.live_positions.extend(other.live_positions)
        self.positions_stale += other.positions_stale
        self.trimmed.update(other.trimmed)
        self.new_answer_ids.extend(other.new_answer_ids)

    def refused_whole(self) -> set[int]:
        """``id()`` of the items nothing of which was stored."""
        return {id(r.item) for r in self.rejected if id(r.item) not in self.trimmed}

    def rejected_by_reason(self) -> Counter[str]:
        return Counter(r.reason for r in self.rejected)


class StoreUnavailableError(Exception):
    """The database cannot take writes (down, unreachable, locked, full): no message's fault.

    ``stored`` is what was committed before it happened (acknowledge it); ``remaining`` are
    the messages still to write.
    """

    def __init__(self, detail: str, stored: BatchResult, remaining: list[Inbound]) -> None:
        super().__init__(detail)
        self.stored = stored
        self.remaining = remaining


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused message as the dead-letter table keeps it (bounded, never the full payload)."""

    topic: str
    reason: str
    payload: bytes
    error: str = ""
    received_at: datetime = field(default_factory=utcnow)
    message_id: str | None = None
    size_bytes: int | None = None  # of the whole payload, when ``payload`` is only its head

    def row(self) -> dict[str, Any]:
        site: str | None = None
        device: str | None = None
        channel: str | None = None
        try:
            parsed = parse_topic(self.topic)
            site, device, channel = parsed.site, parsed.device, str(parsed.channel)
        except ProtocolError:
            pass  # a topic outside the contract: kept as text only
        return {
            "received_at": self.received_at,
            "topic": self.topic[:DEAD_LETTER_TOPIC_CHARS],
            "site": site,
            "device": device,
            "channel": channel,
            "message_id": self.message_id,
            "reason": self.reason[:64],
            "error": self.error[:DEAD_LETTER_ERROR_CHARS],
            "payload_bytes": len(self.payload) if self.size_bytes is None else self.size_bytes,
            "payload_head": bytes(self.payload[:DEAD_LETTER_HEAD_BYTES]),
        }

    @classmethod
    def of_rejected(cls, rejected: RejectedItem, now: datetime) -> DeadLetter:
        msg = rejected.item.message
        try:
            payload = encode(msg)
        except ProtocolError:
            payload = msg.model_dump_json().encode()
        return cls(
            topic=str(rejected.item.topic),
            reason=rejected.reason,
            payload=payload,
            error=rejected.error,
            received_at=now,
            message_id=msg.id,
        )


def is_unavailable(err: BaseException) -> bool:
    """True when ``err`` says the database cannot take writes, rather than refusing one row.

    OperationalError is the DB-API's class for connection loss, timeouts, SQLite's "database is
    locked" and a full disk; retrying later is right for all of them.
    """
    if isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated:
        return True
    return isinstance(
        err,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError,
    )


def rejection_reason(err: BaseException) -> str:
    if isinstance(err, sa_exc.IntegrityError):
        return "store_constraint"
    if isinstance(err, sa_exc.DataError | OverflowError):
        return "store_bad_value"
    return "store_failed"


def error_text(err: BaseException) -> str:
    """The database's own message, without the SQL or its parameters (which may hold a
    snapshot or a watchlist entry id), bounded for the dead-letter table and the log."""
    orig = getattr(err, "orig", None) if isinstance(err, sa_exc.StatementError) else None
    cause = orig if orig is not None else err
    return f"{type(cause).__name__}: {cause}"[:DEAD_LETTER_ERROR_CHARS]


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL and a busy timeout so readers never block ingest."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class Store:
    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        window: TimestampWindow | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._dialect = self.engine.dialect.name
        self.window = window or TimestampWindow()
        self.clock = clock
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (idempotent; safe on every start)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if self._dialect == "postgresql":
                # Two hub replicas starting together must not both run the migration.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def _insert(self, table: Table) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def write_batch(self, items: Sequence[Inbound]) -> BatchResult:
        """Store a batch; safe to call again with the same items.

        One transaction when the database takes it (the fast path). When it refuses the batch,
        the batch is split in halves, each written in its own transaction, and so on down to
        single messages: the refused ones come back in ``result.rejected`` and are kept as
        dead letters, the rest are stored. k bad messages in n cost about 2k·log2(n)
        transactions, not n. Raises :class:`StoreUnavailableError` when the database cannot
        take writes at all.

        :class:`SightingBatch` items are not stored raw: :mod:`hub.fusion` turns them into
        positions, stored with :meth:`write_fused_positions`.
        """
        try:
            result = self._write(items)
        except Exception as err:
            if is_unavailable(err):
                raise StoreUnavailableError(error_text(err), BatchResult(), list(items)) from err
            log.warning(
                "store refused a batch of %d (%s); isolating the refused messages",
                len(items),
                error_text(err),
            )
            first_error = err
        else:
            self._keep_dead_letters(result)  # refused by ownership, or a snapshot not an image
            return result
        result = BatchResult()
        if len(items) == 1:
            self._reject(items[0], first_error, result)
        else:
            mid = len(items) // 2
            self._isolate(items, 0, mid, result)
            self._isolate(items, mid, len(items), result)
        self._keep_dead_letters(result)
        return result

    def _isolate(self, items: Sequence[Inbound], start: int, end: int, result: BatchResult) -> None:
        """Write ``items[start:end]``, halving on refusal; adds to ``result`` in item order,
        so on :class:`StoreUnavailableError` everything before ``start`` is in ``result``."""
        try:
            one = self._write(items[start:end])
        except Exception as err:
            if is_unavailable(err):
                self._keep_dead_letters(result)
                raise StoreUnavailableError(error_text(err), result, list(items[start:])) from err
            if end - start == 1:
                self._reject(items[start], err, result)
                return
        else:
            result.merge(one)
            return
        mid = (start + end) // 2
        self._isolate(items, start, mid, result)
        self._isolate(items, mid, end, result)

    @staticmethod
    def _reject(item: Inbound, err: BaseException, result: BatchResult) -> None:
        reason = rejection_reason(err)
        result.rejected.append(RejectedItem(item, reason, error_text(err)))
        log.warning(
            "store refused %s %s from %s: %s",
            item.topic.channel,
            item.message.id,
            item.topic.device,
            reason,
        )

    def _keep_dead_letters(self, result: BatchResult) -> None:
        if not result.rejected:
            return
        now = utcnow()
        try:
            self.write_dead_letters([DeadLetter.of_rejected(r, now) for r in result.rejected])
        # Why blind: the rejection is counted either way, only its record is lost; and a
        # traceback would log the SQL parameters, which hold device payloads.
        except Exception as err:  # noqa: BLE001
            log.error("could not keep %d dead letters: %s", len(result.rejected), error_text(err))  # noqa: TRY400

    def _write(self, items: Sequence[Inbound]) -> BatchResult:
        result = BatchResult()
        rows = _BatchRows.of(items, result)
        with self.engine.begin() as conn:
            if rows.alerts:
                self._write_alerts(conn, rows, result)
            if rows.position_items:
                self._write_positions(conn, rows.position_items, result)
            if rows.health:
                stmt = self._insert(health).on_conflict_do_nothing(index_elements=["id"])
                conn.execute(stmt, rows.health)
                result.health = len(rows.health)
            if rows.answer_items:
                self._write_answers(conn, rows.answer_items, result)
            if rows.replies:
                stmt = self._insert(replies).on_conflict_do_nothing(index_elements=["id"])
                conn.execute(stmt, rows.replies)
            for state in rows.states.values():
                self._upsert_state(conn, state)
                result.states += 1
        return result

    def _write_alerts(self, conn: Connection, rows: _BatchRows, result: BatchResult) -> None:
        """Insert new alert ids; the first body of an id wins, ever.

        An alert id belongs to the device that stored it first. Its resends (any body) are
        acked again, since the device needs the ack to clear its outbox; the same id from
        another device is refused (``alert_id_taken``) and never acked, or that device
        would delete an alert the hub never stored.
        """
        stmt = self._insert(alerts).on_conflict_do_nothing(index_elements=["id"])
        # RETURNING counts the rows really inserted on every backend (executemany
        # rowcount is -1 on PostgreSQL).
        res = conn.execute(stmt.returning(alerts.c.id), list(rows.alerts.values()))
        new_ids = {r[0] for r in res.all()}
        owner = {i: (rows.alerts[i]["site"], rows.alerts[i]["device"]) for i in new_ids}
        known = [i for i in rows.alerts if i not in new_ids]
        for start in range(0, len(known), _IN_CHUNK):
            chunk = known[start : start + _IN_CHUNK]
            stmt_owner = select(alerts.c.id, alerts.c.site, alerts.c.device).where(
                alerts.c.id.in_(chunk)
            )
            owner.update({r.id: (r.site, r.device) for r in conn.execute(stmt_owner)})
        counted: set[str] = set()
        for item in rows.alert_items:
            msg = item.message
            stored_by = owner.get(msg.id)
            if stored_by is None:  # deleted by retention since the insert: resent, stored then
                continue
            if stored_by != (msg.site, msg.device):
                result.rejected.append(
                    RejectedItem(
                        item, ALERT_ID_TAKEN, f"alert id {msg.id} is stored for another device"
                    )
                )
                continue
            if msg.id in new_ids and msg.id not in counted:
                counted.add(msg.id)
                result.alerts_new += 1
            else:
                result.alerts_duplicate += 1
            acks = result.acks.setdefault((msg.site, msg.device), [])
            if msg.id not in acks:
                acks.append(msg.id)
        result.new_alert_ids = new_ids
        # A resent alert already has its snapshot: only new alerts add one.
        ev_rows = [rows.evidence[i] for i in new_ids if i in rows.evidence]
        if ev_rows:
            conn.execute(evidence.insert(), ev_rows)
            result.evidence = len(ev_rows)
        crop_rows = [rows.crops[i] for i in new_ids if i in rows.crops]
        if crop_rows:
            conn.execute(face_crops.insert(), crop_rows)

    def _write_answers(self, conn: Connection, items: list[Inbound], result: BatchResult) -> None:
        """Insert new answer ids (the first body wins, ever) and ack them like alerts: a resend
        is acked again; the same id from another device is refused and never acked."""
        now = utcnow()
        rows: dict[str, dict[str, Any]] = {}
        for item in items:
            msg = item.message
            if isinstance(msg, DispatchAnswer) and msg.id not in rows:
                rows[msg.id] = _answer_row(msg, now)
        stmt = self._insert(dispatch_answers).on_conflict_do_nothing(index_elements=["id"])
        res = conn.execute(stmt.returning(dispatch_answers.c.id), list(rows.values()))
        new_ids = {r[0] for r in res.all()}
        owner = {i: (rows[i]["site"], rows[i]["device"]) for i in new_ids}
        known = [i for i in rows if i not in new_ids]
        for start in range(0, len(known), _IN_CHUNK):
            stmt_owner = select(
                dispatch_answers.c.id, dispatch_answers.c.site, dispatch_answers.c.device
            ).where(dispatch_answers.c.id.in_(known[start : start + _IN_CHUNK]))
            owner.update({r.id: (r.site, r.device) for r in conn.execute(stmt_owner)})
        for item in items:
            msg = item.message
            if owner.get(msg.id) != (msg.site, msg.device):
                result.rejected.append(
                    RejectedItem(
                        item, ANSWER_ID_TAKEN, f"answer id {msg.id} is stored for another sender"
                    )
                )
                continue
            acks = result.acks.setdefault((msg.site, msg.device), [])
            if msg.id not in acks:
                acks.append(msg.id)
        result.new_answer_ids.extend(sorted(new_ids))

    def _owners(self, conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Owner]:
        t = entity_owners
        found: dict[tuple[str, str], Owner] = {}
        by_site: dict[str, list[str]] = {}
        for site, entity in keys:
            by_site.setdefault(site, []).append(entity)
        for site, ents in by_site.items():
            for start in range(0, len(ents), _IN_CHUNK):
                stmt = select(t.c.entity, t.c.entity_kind, t.c.device).where(
                    t.c.site == site, t.c.entity.in_(ents[start : start + _IN_CHUNK])
                )
                for r in conn.execute(stmt):
                    found[(site, r.entity)] = Owner(r.entity_kind, r.device)
        return found

    def _judge_positions(
        self, conn: Connection, claims: Sequence[tuple[str, str, str, Position]]
    ) -> list[str | None]:
        """For each (site, device, reporter kind, position): None to store it, or why not.

        Entities nobody owns yet are claimed, in this transaction, by their first reporter
        in the batch; the owners are read back after the claim, so of two replicas claiming
        at once only the one whose row landed wins.
        """
        now = self.clock()
        pre: list[str | None] = []
        for _site, device, reporter, p in claims:
            if self.window.too_new(p.ts, now):
                pre.append(TS_IN_FUTURE)
            else:
                pre.append(refusal(reporter, device, p.entity, p.entity_kind, None))
        keys = {(c[0], c[3].entity) for c, why in zip(claims, pre, strict=True) if why is None}
        owners = self._owners(conn, keys) if keys else {}
        new: dict[tuple[str, str], dict[str, Any]] = {}
        for (site, device, _, p), why in zip(claims, pre, strict=True):
            key = (site, p.entity)
            if why is None and key not in owners and key not in new:
                new[key] = {
                    "site": site,
                    "entity": p.entity,
                    "entity_kind": p.entity_kind.value,
                    "device": device,
                    "claimed_at": now,
                }
        if new:
            stmt = self._insert(entity_owners).on_conflict_do_nothing(
                index_elements=["site", "entity"]
            )
            conn.execute(stmt, list(new.values()))
            owners.update(self._owners(conn, set(new)))
        out: list[str | None] = []
        for (site, device, reporter, p), first in zip(claims, pre, strict=True):
            owner = owners.get((site, p.entity))
            out.append(first or refusal(reporter, device, p.entity, p.entity_kind, owner))
        return out

    def _write_positions(
        self,
        conn: Connection,
        items: Sequence[tuple[Inbound, PositionBatch]],
        result: BatchResult,
    ) -> None:
        claims = [
            (msg.site, msg.device, item.topic.kind.value, p)
            for item, msg in items
            for p in msg.positions
        ]
        verdicts = iter(self._judge_positions(conn, claims))
        now = self.clock()
        history: list[dict[str, Any]] = []
        fresh: list[dict[str, Any]] = []
        for item, msg in items:
            kept: list[Position] = []
            refused: Counter[str] = Counter()
            detail = ""
            for p in msg.positions:
                why = next(verdicts)
                if why is not None:
                    reason = why if why == TS_IN_FUTURE else NOT_OWNED
                    refused[reason] += 1
                    detail = detail or (
                        f"position ts {p.ts.isoformat()} is ahead of the hub's clock"
                        if reason == TS_IN_FUTURE
                        else why
                    )
                    continue
                kept.append(p)
                row = position_row(msg.id, msg.site, msg.device, p)
                history.append(row)
                if self.window.too_old(p.ts, now):
                    result.positions_stale += 1
                else:
                    fresh.append(row)
            if refused:
                reason = refused.most_common(1)[0][0]
                result.rejected.append(
                    RejectedItem(
                        item,
                        reason,
                        f"{sum(refused.values())} of {len(msg.positions)} positions refused: "
                        f"{detail}",
                    )
                )
                if kept:
                    trimmed = msg.model_copy(update={"positions": kept})
                    result.trimmed[id(item)] = Inbound(item.topic, trimmed)
        if history:
            conn.execute(positions.insert(), history)
            result.positions = len(history)
        if fresh:
            self._upsert_latest(conn, fresh)
            result.live_positions.extend(fresh)

    # -- dead letters and evidence ---------------------------------------------------------

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> int:
        if not letters:
            return 0
        with self.engine.begin() as conn:
            conn.execute(rejected_messages.insert(), [d.row() for d in letters])
        return len(letters)

    def trim_dead_letters(self, max_rows: int) -> int:
        """Keep only the newest ``max_rows`` dead letters; returns how many were deleted."""
        with self.engine.begin() as conn:
            return trim_dead_letters(conn, max_rows)

    def dead_letters(
        self,
        *,
        limit: int,
        before_id: int | None = None,
        device: str | None = None,
        reason: str | None = None,
    ) -> list[Row[Any]]:
        """Dead letters, newest first."""
        t = rejected_messages
        stmt = select(t).order_by(t.c.id.desc()).limit(limit)
        if before_id is not None:
            stmt = stmt.where(t.c.id < before_id)
        if device is not None:
            stmt = stmt.where(t.c.device == device)
        if reason is not None:
            stmt = stmt.where(t.c.reason == reason)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).all())

    def evidence_of(self, alert_id: str) -> Row[Any] | None:
        """The evidence snapshot stored with an alert, if it has one that retention kept."""
        stmt = select(evidence).where(evidence.c.alert_id == alert_id).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(stmt).first()

    def write_fused_positions(
        self,
        items: Sequence[tuple[str, Position]],
        *,
        device: str,
        supersede_within_s: float,
    ) -> int:
        """Store positions the hub computed itself (e.g. multi-gateway fusion) as ``device``.

        History always gets them. A band's latest position is replaced when it is not newer,
        or when it is less accurate (or of unknown accuracy) and at most ``supersede_within_s``
        newer: a gateway's coarse guess made a moment later must not hide a better hub fix.
        """
        if not items:
            return 0
        msg_id = new_id()
        grace = timedelta(seconds=supersede_within_s)
        now = self.clock()
        with self.engine.begin() as conn:
            # Fused from gateways' sightings: their timestamps and ids are no more trusted
            # than a gateway's own positions.
            verdicts = self._judge_positions(
                conn, [(site, device, FUSION_REPORTER, p) for site, p in items]
            )
            rows = [
                position_row(msg_id, site, device, p)
                for (site, p), why in zip(items, verdicts, strict=True)
                if why is None
            ]
            if len(rows) < len(items):
                log.warning("%d fused positions refused", len(items) - len(rows))
            if not rows:
                return 0
            conn.execute(positions.insert(), rows)
            self._replace_latest_fused(conn, rows, grace, now)
        return len(rows)

    def _replace_latest_fused(
        self, conn: Connection, rows: list[dict[str, Any]], grace: timedelta, now: datetime
    ) -> None:
        t = latest_positions
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            if self.window.too_old(row["ts"], now):
                continue  # history only, like any stale position
            key = (row["site"], row["entity"])
            if key not in newest or newest[key]["ts"] <= row["ts"]:
                newest[key] = row
        current: dict[tuple[str, str], tuple[datetime, float | None]] = {}
        for site in {k[0] for k in newest}:
            ents = [k[1] for k in newest if k[0] == site]
            stmt = select(t.c.entity, t.c.ts, t.c.accuracy_m).where(
                t.c.site == site, t.c.entity.in_(ents)
            )
            for entity, ts, acc in conn.execute(stmt):
                current[(site, entity)] = (_aware(ts), acc)
        replace = []
        for key, row in newest.items():
            old = current.get(key)
            if old is None or old[0] <= row["ts"]:
                replace.append(row)
                continue
            worse = old[1] is None or (
                row["accuracy_m"] is not None and old[1] > row["accuracy_m"]
            )
            if worse and old[0] <= row["ts"] + grace:
                replace.append(row)
        if replace:
            self._upsert_latest(conn, replace, newer_only=False)

    def _upsert_latest(
        self, conn: Connection, rows: list[dict[str, Any]], *, newer_only: bool = True
    ) -> None:
        """Make each (site, entity)'s newest row in ``rows`` its latest position; with
        ``newer_only`` an older row never replaces a newer stored one."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            key = (row["site"], row["entity"])
            if key not in latest or latest[key]["ts"] <= row["ts"]:
                latest[key] = row
        stmt = self._insert(latest_positions)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site", "entity"],
                set_={c: stmt.excluded[c] for c in LATEST_COLUMNS},
                where=(latest_positions.c.ts <= stmt.excluded.ts) if newer_only else None,
            ),
            [{k: v for k, v in r.items() if k != "msg_id"} for r in latest.values()],
        )

    def _upsert_state(self, conn: Connection, msg: DeviceState) -> None:
        row = {
            "site": msg.site,
            "device": msg.device,
            "kind": msg.kind.value,
            "state": msg.state.value,
            "ts": msg.ts,
            "received_at": utcnow(),
            "sw_version": msg.sw_version,
            "config_version": msg.config_version,
        }
        stmt = self._insert(device_state)
        cols = ("kind", "state", "ts", "received_at", "sw_version", "config_version")
        update = {k: stmt.excluded[k] for k in cols}
        # A retained state replayed after a newer one (reconnect races) must not win. The
        # broker's last will ("offline") always does: it was composed when the connection was
        # made, so its timestamp predates the "online" it overrides.
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site", "device"],
                set_=update,
                where=(device_state.c.ts <= stmt.excluded.ts)
                | (stmt.excluded.state == DeviceStatus.OFFLINE.value),
            ),
            row,
        )

    # -- reads used by the CLI, tests and the API ------------------------------------------

    def count_alerts(self, site: str | None = None) -> int:
        stmt = select(func.count()).select_from(alerts)
        if site is not None:
            stmt = stmt.where(alerts.c.site == site)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def alert_ids(self, site: str | None = None) -> list[str]:
        stmt = select(alerts.c.id)
        if site is not None:
            stmt = stmt.where(alerts.c.site == site)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def device_states(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(device_state))]

    def close(self) -> None:
        self.engine.dispose()


@dataclass(slots=True)
class _BatchRows:
    """The rows one batch writes, by table (built before the transaction opens)."""

    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # first body of each id
    alert_items: list[Inbound] = field(default_factory=list)  # every alert, in batch order
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    crops: dict[str, dict[str, Any]] = field(default_factory=dict)  # face crops by alert id
    position_items: list[tuple[Inbound, PositionBatch]] = field(default_factory=list)
    health: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    answer_items: list[Inbound] = field(default_factory=list)
    states: dict[tuple[str, str], DeviceState] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Sequence[Inbound], result: BatchResult) -> _BatchRows:
        rows = cls()
        now = utcnow()
        for item in items:
            msg = item.message
            if isinstance(msg, Alert):
                try:
                    row, ev = _alert_row(msg, now)
                    crop = _crop_row(msg, now)
                except SnapshotRefusedError as err:
                    # Refused before the transaction: not stored, not acked, dead-lettered.
                    result.rejected.append(RejectedItem(item, err.reason, str(err)))
                    continue
                rows.alert_items.append(item)
                if msg.id not in rows.alerts:
                    rows.alerts[msg.id] = row
                    if ev is not None:
                        rows.evidence[msg.id] = ev
                    if crop is not None:
                        rows.crops[msg.id] = crop
            elif isinstance(msg, PositionBatch):
                rows.position_items.append((item, msg))
            elif isinstance(msg, Health):
                rows.health.append(
                    {
                        "id": msg.id,
                        "site": msg.site,
                        "device": msg.device,
                        "ts": msg.ts,
                        "payload": msg.model_dump(mode="json"),
                    }
                )
            elif isinstance(msg, DeviceState):
                key = (msg.site, msg.device)
                if key not in rows.states or rows.states[key].ts <= msg.ts:
                    rows.states[key] = msg
            elif isinstance(msg, DispatchAnswer):
                rows.answer_items.append(item)
            elif isinstance(msg, Reply):
                rows.replies.append(
                    {
                        "id": msg.id,
                        "request_id": msg.request_id,
                        "site": msg.site,
                        "device": msg.device,
                        "ts": msg.ts,
                        "payload": msg.model_dump_json(),
                    }
                )
        return rows


def _alert_row(msg: Alert, now: datetime) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The alert's row and, if it carries a snapshot, its evidence row. The payload keeps
    only a reference to the snapshot (id, digest, size), never the bytes (nor a face crop's:
    :func:`_crop_row`)."""
    payload = json.loads(
        msg.model_dump_json(exclude_none=True, exclude={"evidence", "face_crop"})
    )
    ev_row = None
    if msg.evidence is not None:
        # The stored bytes are the hub's own re-encoding (hub.snapshots); its digest and size
        # describe what is stored, the device's digest stays as ``source_sha256``.
        snap = reencode_jpeg(msg.evidence.jpeg())
        ev_row = {
            "id": new_id(),
            "alert_id": msg.id,
            "site": msg.site,
            "device": msg.device,
            "content_type": "image/jpeg",
            "sha256": snap.sha256,
            "width": snap.width,
            "height": snap.height,
            "size_bytes": len(snap.data),
            "data": snap.data,
            "created_at": now,
        }
        payload["evidence"] = {
            "id": ev_row["id"],
            "content_type": "image/jpeg",
            "sha256": snap.sha256,
            "source_sha256": msg.evidence.sha256,
            "size_bytes": len(snap.data),
            "width": snap.width,
            "height": snap.height,
        }
    row = {
        "id": msg.id,
        "site": msg.site,
        "device": msg.device,
        "kind": msg.kind.value,
        "severity": msg.severity.value,
        "ts": msg.ts,
        "received_at": now,
        "lon": msg.location.lon if msg.location else None,
        "lat": msg.location.lat if msg.location else None,
        "zone": msg.zone,
        "entity": msg.entity,
        "payload": payload,
    }
    return row, ev_row


def _crop_row(msg: Alert, now: datetime) -> dict[str, Any] | None:
    """The face crop of a face_match alert as a ``face_crops`` row (re-encoded like the
    snapshot; hub/matches links it to the possible match and deletes it early when rejected)."""
    if msg.face_crop is None:
        return None
    snap = reencode_jpeg(msg.face_crop.jpeg())
    return {
        "alert_id": msg.id,
        "site": msg.site,
        "device": msg.device,
        "content_type": "image/jpeg",
        "sha256": snap.sha256,
        "source_sha256": msg.face_crop.sha256,
        "width": snap.width,
        "height": snap.height,
        "size_bytes": len(snap.data),
        "data": snap.data,
        "created_at": now,
    }


def _answer_row(msg: DispatchAnswer, now: datetime) -> dict[str, Any]:
    """An officer's answer as stored; dispatch decides it after the commit (``outcome``)."""
    return {
        "id": msg.id,
        "site": msg.site,
        "device": msg.device,
        "dispatch_id": msg.dispatch_id,
        "notify_id": msg.notify_id,
        "officer": msg.officer,
        "answer": msg.answer.value,
        "ts": msg.ts,
        "note": msg.note,
        "lon": msg.location.lon if msg.location else None,
        "lat": msg.location.lat if msg.location else None,
        "received_at": now,
        "outcome": None,
        "reason": None,
    }


def trim_dead_letters(conn: Connection, max_rows: int) -> int:
    """Delete all but the newest ``max_rows`` dead letters; returns how many went."""
    t = rejected_messages
    cutoff = conn.execute(select(t.c.id).order_by(t.c.id.desc()).offset(max_rows).limit(1)).scalar()
    if cutoff is None:
        return 0
    return int(conn.execute(delete(t).where(t.c.id <= cutoff)).rowcount)


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def position_row(msg_id: str, site: str, device: str, p: Position) -> dict[str, Any]:
    return {
        "msg_id": msg_id,
        "site": site,
        "device": device,
        "entity": p.entity,
        "entity_kind": p.entity_kind.value,
        "lon": p.lon,
        "lat": p.lat,
        "accuracy_m": p.accuracy_m,
        "heading_deg": p.heading_deg,
        "speed_mps": p.speed_mps,
        "ts": p.ts,
    }


def position_rows(msg: PositionBatch) -> list[dict[str, Any]]:
    return [position_row(msg.id, msg.site, msg.device, p) for p in msg.positions]
