"""Bundle rules: device bundle keys, one hub-wide version per change of the active set, a
sealed envelope per device through the command outbox, the devices' answers.

Every push is written in the transaction that records ``version_pushed`` and its audit entry;
the outbox publishes after commit. The version is claimed under the lock of the one
``bundle_state`` row, so two hub replicas reacting to one change issue one version between
them (the second finds the digest current) and never the same number twice.

Nothing here logs or audits an embedding: entry ids, versions, counts and sizes only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import ValidationError
from sqlalchemy import Connection, Engine

from edge.faces.bundle import (
    NORM_TOLERANCE,
    BundlePayload,
    BundleRefusal,
    BundleTooLargeError,
    payload_from_rows,
    seal_bundle_parts,
)
from edge.protocol import (
    CmdChannel,
    DeviceState,
    Inbound,
    ProtocolError,
    Reply,
    WatchlistBundleEnvelope,
    encode,
)
from hub.audit import AuditTrail
from hub.audit.service import AuditBatch
from hub.bundles import repository
from hub.bundles.config import BundlesConfig
from hub.bundles.signing import LazySigningKey, SigningKey
from hub.clock import Clock, SystemClock, as_utc
from hub.commands.outbox import CommandOutbox
from hub.workers import Sweeper, WorkerStatus

log = logging.getLogger(__name__)

ACTOR = "system:bundles"
ActiveRow = tuple[str, datetime, bytes]
ActiveSet = Callable[[Connection, str, datetime], Sequence[ActiveRow]]
"""(entry id, entry expiry, float32 embedding bytes) of every active entry at ``now``."""
Sealer = Callable[..., list[WatchlistBundleEnvelope]]
"""One device's envelopes of a payload: one, or the parts of one (seal_bundle_parts)."""
ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a bundle's id list carries


def watchlist_active_set(conn: Connection, model: str, now: datetime) -> Sequence[ActiveRow]:
    # Imported here: hub.watchlists imports the hub's services, which import this module.
    from hub.watchlists.repository import active_embeddings

    return active_embeddings(conn, model, now)


@dataclass(frozen=True, slots=True)
class DeviceBundleStatus:
    device: str
    site: str
    kind: str
    key_registered: bool
    key_registered_at: datetime | None
    version_pushed: int | None
    pushed_at: datetime | None
    version_applied: int | None
    applied_at: datetime | None
    parts: int | None  # envelopes the pushed version was sealed as (1: one envelope)
    parts_acknowledged: int | None  # of them the device answered ok
    version_reported: int | None
    entries: int | None
    last_error: str | None
    last_error_at: datetime | None


@dataclass(frozen=True, slots=True)
class SyncResult:
    version: int  # in force after the pass (0: none issued yet)
    issued: bool  # this pass issued ``version``
    pushed: tuple[str, ...]  # devices a sealed envelope was enqueued for
    failed: tuple[str, ...]  # devices whose envelope could not be sent (kept their previous)


@dataclass(frozen=True, slots=True)
class _Active:
    entries: tuple[ActiveRow, ...]  # sorted by entry id, each embedding of ``dim`` values
    dim: int
    digest: str
    next_expiry: datetime | None


def _digest(rows: Iterable[tuple[str, datetime, bytes]]) -> str:
    """What a version is made of: entry ids, their expiries and embeddings (an entry enrolled
    again under its id is a change too)."""
    h = hashlib.sha256()
    for entry_id, expires_at, blob in rows:
        h.update(entry_id.encode("utf-8") + b"\0")
        h.update(as_utc(expires_at).isoformat().encode("ascii") + b"\0")
        h.update(hashlib.sha256(blob).digest())
    return h.hexdigest()


def _sealable(entry_id: str, blob: bytes, dim: int) -> bool:
    """What every edge would accept: a wire id, ``dim`` finite float32 values of unit norm."""
    if not ENTRY_ID.fullmatch(entry_id) or len(blob) != 4 * dim:
        return False
    vector = np.frombuffer(blob, dtype="<f4")
    if not np.isfinite(vector).all():
        return False
    return abs(float(np.sqrt(np.dot(vector, vector))) - 1.0) <= NORM_TOLERANCE / 2


def parse_device_key(key_b64: str) -> X25519PublicKey:
    """The device's X25519 public key; ValueError when it is not one a bundle can be sealed
    for (a low-order point would make the shared secret public)."""
    try:
        raw = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError("bundle key is not base64") from err
    if len(raw) != 32:
        raise ValueError("bundle key is not 32 bytes")
    key = X25519PublicKey.from_public_bytes(raw)
    X25519PrivateKey.generate().exchange(key)  # raises ValueError on a low-order point
    return key


class BundleService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        config: BundlesConfig,
        outbox: CommandOutbox,
        signing_key: LazySigningKey,
        *,
        clock: Clock | None = None,
        hub_id: str = "hub",
        active_set: ActiveSet = watchlist_active_set,
        seal: Sealer = seal_bundle_parts,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config
        self.outbox = outbox
        self._signing = signing_key
        self.clock: Clock = clock or SystemClock()
        self.hub_id = hub_id
        self._active_set = active_set
        self._seal = seal
        self._kinds = [k.value for k in config.kinds]
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._sweeper = Sweeper(
            "bundles",
            self.sync,
            self._sleep_s,
            lambda: self.count("sync_errors"),
            # a due expiry would otherwise retry (and log) in a tight loop
            error_interval_s=lambda: min(5.0, self.config.sweep_max_interval_s),
        )
        self._next_due: datetime | None = None

    # --- reading ---------------------------------------------------------------------------

    def signing_key(self) -> SigningKey:
        return self._signing.get()

    def devices(self) -> list[DeviceBundleStatus]:
        with self.engine.connect() as conn:
            rows = repository.status_rows(conn, self._kinds)
        return [
            DeviceBundleStatus(
                device=r.device,
                site=r.site,
                kind=r.kind,
                key_registered=r.key_b64 is not None,
                key_registered_at=_aware(r.key_registered_at),
                version_pushed=r.version_pushed,
                pushed_at=_aware(r.pushed_at),
                version_applied=r.version_applied,
                applied_at=_aware(r.applied_at),
                parts=r.push_parts,
                parts_acknowledged=r.parts_acked,
                version_reported=r.version_reported,
                entries=r.push_entries,
                last_error=r.last_error,
                last_error_at=_aware(r.last_error_at),
            )
            for r in rows
        ]

    def current_version(self) -> int:
        with self.engine.connect() as conn:
            return int(repository.read_state(conn).version)

    def count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self._stats[name] += n

    def stats_snapshot(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self._stats)

    # --- building and pushing --------------------------------------------------------------

    def sync(self) -> SyncResult:
        """Issue a new version if the active set changed (approve, revoke, an expiry passed) or
        the bundle is due for refresh, then push the version in force to every device that
        lacks it. Takes the write lock only when there is something to do."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            state = repository.read_state(conn)
            # Counted and logged by the read under the lock only: once per pass.
            active = self._read_active(conn, now, report=False)
            self._next_due = self._due_at(state, active)
            if not self._new_version_reason(state, active, now) and not (
                state.version and repository.needing_push(conn, state.version, self._kinds)
            ):
                return SyncResult(int(state.version), False, (), ())
        pushed: list[str] = []
        failed: list[str] = []
        with self.audit.changes() as batch:
            conn = batch.conn
            state = repository.lock_state(conn)
            # Read again under the lock: what another replica committed meanwhile counts.
            active = self._read_active(conn, now)
            version = int(state.version)
            issued_at = as_utc(state.issued_at) if state.issued_at else now
            expires_at = as_utc(state.expires_at) if state.expires_at else now
            reason = self._new_version_reason(state, active, now)
            if reason is not None:
                version += 1
                issued_at = now
                expires_at = now + timedelta(seconds=self.config.lifetime_s)
                repository.issue_version(
                    conn,
                    {
                        "version": version,
                        "digest": active.digest,
                        "entries": len(active.entries),
                        "issued_at": issued_at,
                        "expires_at": expires_at,
                        "issued_by": self.hub_id,
                    },
                    model=self.config.model,
                    reason=reason,
                )
                batch.add(
                    ACTOR,
                    "bundle.issue",
                    str(version),
                    {"entries": len(active.entries), "reason": reason, "digest": active.digest},
                )
            if version == 0:
                return SyncResult(0, False, (), ())
            payload = payload_from_rows(
                active.entries,
                version=version,
                issued_at=issued_at,
                expires_at=expires_at,
                model=self.config.model,
                dim=active.dim,
            )
            for device in repository.needing_push(conn, version, self._kinds):
                if self._push_one(batch, device, payload, now):
                    pushed.append(device.device)
                else:
                    failed.append(device.device)
        self._next_due = self._due_at_values(issued_at, active)
        if reason is not None:
            self.count("versions_issued")
            log.info(
                "watchlist bundle version %d issued (%s, %d entries)",
                version,
                reason,
                len(active.entries),
            )
        if pushed:
            self.count("pushed", len(pushed))
            self.outbox.wake()
        return SyncResult(version, reason is not None, tuple(pushed), tuple(failed))

    def _read_active(self, conn: Connection, now: datetime, *, report: bool = True) -> _Active:
        rows = sorted(self._active_set(conn, self.config.model, now), key=lambda r: r[0])
        kept: list[ActiveRow] = []
        # From the config, not from the entries: an empty bundle (the last entry revoked) must
        # still say what it is.
        dim = self.config.embedding_dim
        for entry_id, expires_at, blob in rows:
            if not _sealable(entry_id, blob, dim):
                # Left out, counted: one bad row (another dimension, not finite, not unit norm,
                # an id no bundle carries) must not stop every other entry and each revocation.
                if report:
                    self.count("entries_skipped")
                    log.warning("watchlist entry %r cannot go in a bundle; left out", entry_id[:64])
                continue
            kept.append((entry_id, as_utc(expires_at), bytes(blob)))
        expiries = [expiry for _, expiry, _ in kept if expiry > now]
        return _Active(tuple(kept), dim, _digest(kept), min(expiries) if expiries else None)

    def _new_version_reason(self, state: Any, active: _Active, now: datetime) -> str | None:
        if not state.version:
            return "change" if active.entries else None
        if state.digest != active.digest:
            return "change"
        refresh_at = as_utc(state.issued_at) + timedelta(seconds=self.config.refresh_after_s)
        return "refresh" if now >= refresh_at else None

    def _due_at(self, state: Any, active: _Active) -> datetime | None:
        issued = as_utc(state.issued_at) if state.version and state.issued_at else None
        return self._due_at_values(issued, active)

    def _due_at_values(self, issued_at: datetime | None, active: _Active) -> datetime | None:
        """When the sweeper must look again: the next entry expiry or the refresh time."""
        due = [active.next_expiry] if active.next_expiry is not None else []
        if issued_at is not None:
            due.append(issued_at + timedelta(seconds=self.config.refresh_after_s))
        return min(due) if due else None

    def _push_one(
        self, batch: AuditBatch, device: Any, payload: BundlePayload, now: datetime
    ) -> bool:
        conn = batch.conn
        key = self.signing_key()
        try:
            envelopes = self._seal(
                payload,
                site=device.site,
                device=device.device,
                recipient_key=parse_device_key(device.key_b64),
                signing_key=key.private,
                key_id=key.key_id,
                part_bytes=self.config.part_bytes,
                max_parts=self.config.max_parts,
            )
            sizes = [len(encode(envelope)) for envelope in envelopes]
        except (ProtocolError, ValidationError, ValueError) as err:
            too_large = isinstance(err, (BundleTooLargeError, ValidationError)) or (
                isinstance(err, ProtocolError) and err.reason == "too_large"
            )
            error = (
                f"bundle version {payload.version} ({len(payload.entries)} entries) needs more "
                f"than {self.config.max_parts} parts of {self.config.part_bytes} bytes; the "
                "device keeps its previous bundle"
                if too_large
                else f"bundle version {payload.version} cannot be sealed for this device: {err}"
            )
            self.count("too_large" if too_large else "seal_errors")
            # Not log.exception: the traceback would show the payload being sealed.
            log.error("watchlist bundle for %s not sent: %s", device.device, error)  # noqa: TRY400
            repository.update_device(
                conn,
                device.device,
                {
                    "failed_version": payload.version,
                    "last_error": error[:500],
                    "last_error_at": now,
                },
            )
            batch.add(
                ACTOR,
                "bundle.push_failed",
                device.device,
                {
                    "version": payload.version,
                    "entries": len(payload.entries),
                    "reason": "too_large" if too_large else "seal_error",
                },
            )
            return False
        command_ids: list[str] = []
        for envelope, size in zip(envelopes, sizes, strict=True):
            # The first part supersedes every open command on the channel, the parts of an
            # older version not yet delivered included; the later parts must not supersede it.
            command_ids.append(
                self.outbox.enqueue(
                    conn,
                    envelope,
                    CmdChannel.WATCHLIST,
                    created_by=ACTOR,
                    supersede=not command_ids,
                )
            )
            repository.insert_push(
                conn,
                {
                    "command_id": envelope.id,
                    "device": device.device,
                    "version": payload.version,
                    "entries": len(payload.entries),
                    "size_bytes": size,
                    "pushed_at": now,
                    "part": envelope.part,
                    "parts": envelope.parts,
                    "set_sha256": envelope.set_sha256,
                },
            )
        repository.update_device(
            conn,
            device.device,
            {
                "version_pushed": payload.version,
                "pushed_at": now,
                "push_command_id": command_ids[-1],
                "push_entries": len(payload.entries),
                "pushed_key_b64": device.key_b64,
                "failed_version": None,
                "push_parts": len(envelopes),
                "push_set": envelopes[0].set_sha256,
                "parts_acked": 0,
            },
        )
        batch.add(
            ACTOR,
            "bundle.push",
            device.device,
            {
                "version": payload.version,
                "entries": len(payload.entries),
                "command_id": command_ids[0],
                "parts": len(envelopes),
                "size_bytes": sum(sizes),
            },
        )
        return True

    # --- what devices say (ingest's after-store callback) ----------------------------------

    def on_stored(self, batch: Sequence[Inbound]) -> None:
        """Device states (bundle key, version in force) and Replies to bundle pushes from a
        committed ingest batch. Never raises: ingest must go on."""
        states = [i for i in batch if isinstance(i.message, DeviceState)]
        replies = [i for i in batch if isinstance(i.message, Reply)]
        try:
            # Every state is recorded: no short-circuit.
            changed = any([self._on_state(i) for i in states])  # noqa: C419
            for item in replies:
                self._on_reply(item)
        except Exception:  # the store may be away; the device repeats its state and reply
            self.count("callback_errors")
            log.exception("bundle bookkeeping failed for a batch of %d", len(batch))
            return
        if changed:
            self.wake()

    def _on_state(self, item: Inbound) -> bool:
        """Record the device's key and reported version; True when its key is new or changed."""
        msg = item.message
        if not isinstance(msg, DeviceState):
            return False
        if msg.kind.value not in self._kinds:
            return False
        device = item.topic.device  # the broker ACL binds this segment to the login
        now = self.clock.now()
        with self.engine.connect() as conn:
            registered = repository.registered_device(conn, device)
            row = repository.device_row(conn, device)
        if registered is None or registered.status != "active" or registered.kind != msg.kind.value:
            return False
        key_b64 = msg.bundle_key_b64
        new_key = key_b64 is not None and (row is None or row.key_b64 != key_b64)
        reported = msg.watchlist_version
        new_report = reported is not None and (row is None or row.version_reported != reported)
        if not new_key and not new_report:
            return False
        if new_key and key_b64 is not None:
            try:
                parse_device_key(key_b64)
            except ValueError as err:
                self.count("bad_device_keys")
                log.warning("device %s sent an unusable bundle key: %s", device, err)
                new_key = False
                if not new_report:
                    return False
        with self.audit.changes() as audit_batch:
            conn = audit_batch.conn
            row = repository.device_row(conn, device)  # again, inside the write lock
            if row is None:
                repository.insert_device(
                    conn,
                    {"device": device, "site": registered.site, "kind": registered.kind},
                )
            if new_key and (row is None or row.key_b64 != key_b64):
                first = row is None or row.key_b64 is None
                repository.update_device(
                    conn,
                    device,
                    {
                        "key_b64": key_b64,
                        "key_registered_at": now,
                        "key_changed_at": now,
                    },
                )
                audit_batch.add(
                    f"device:{device}",
                    "bundle.device_key_changed",
                    device,
                    {
                        "first": first,
                        "key_sha256": hashlib.sha256((key_b64 or "").encode("ascii")).hexdigest()[
                            :16
                        ],
                    },
                )
                self.count("device_keys_registered" if first else "device_keys_changed")
            else:
                new_key = False
            if new_report and reported is not None:
                repository.record_reported(conn, device, reported, now)
        return new_key

    def _on_reply(self, item: Inbound) -> None:
        msg = item.message
        if not isinstance(msg, Reply):
            return
        device = item.topic.device
        with self.engine.connect() as conn:
            push = repository.push_for_reply(conn, msg.request_id)
        if push is None:
            return  # an answer to something else (a config push, a notify, a request)
        if push.device != device:
            # Another device citing this bundle's id: its topic is its own (the ACL), so it is
            # lying about whose bundle it applied. Counted; the push stays unanswered.
            self.count("forged_replies")
            log.warning(
                "device %s answered the watchlist bundle sent to %s; ignored", device, push.device
            )
            return
        now = self.clock.now()
        reason = None if msg.ok else (msg.error or "refused")[:64]
        # A part the device holds while it waits for the others: progress, not yet applied.
        received = msg.ok and push.parts is not None and msg.result.get("complete") is not True
        with self.audit.changes() as batch:
            conn = batch.conn
            outcome = "received" if received else "applied" if msg.ok else "refused"
            if not repository.answer_push(
                conn, push.command_id, device, outcome=outcome, reason=reason, now=now
            ):
                self.count("replies_repeated")
                return
            if msg.ok:
                repository.count_part_acked(conn, device, push.set_sha256, push.command_id)
            if received:
                self.count("parts_received")
                return
            if reason == BundleRefusal.INCOMPLETE and push.parts is not None:
                # The device gave up waiting for a part (its outbox row may have failed):
                # seal the version again for it, with every part.
                repository.update_device(conn, device, {"version_pushed": None})
                self.count("parts_incomplete")
                self.wake()
            if msg.ok:
                repository.mark_applied(conn, device, int(push.version), now)
                batch.add(
                    f"device:{device}",
                    "bundle.applied",
                    device,
                    {"version": int(push.version), "command_id": push.command_id},
                )
            else:
                repository.update_device(
                    conn,
                    device,
                    {
                        "last_error": f"refused version {push.version}: {reason}",
                        "last_error_at": now,
                    },
                )
                batch.add(
                    f"device:{device}",
                    "bundle.refused",
                    device,
                    {"version": int(push.version), "reason": reason, "command_id": push.command_id},
                )
        self.count("applied" if msg.ok else "refused")
        if not msg.ok:
            log.warning(
                "device %s refused watchlist bundle version %s: %s", device, push.version, reason
            )

    # --- the sweeper -----------------------------------------------------------------------

    def wake(self) -> None:
        """A change (approve, revoke, a device key): look now. The watchlists service calls
        this after its commit (``on_change``)."""
        self._sweeper.wake()

    def start(self) -> None:
        if self._sweeper.started:
            return
        self.signing_key()  # first start creates it; a broken key file stops the hub here
        self._sweeper.start()

    def stop(self) -> None:
        self._sweeper.stop()

    @property
    def started(self) -> bool:
        return self._sweeper.started

    def worker_status(self) -> WorkerStatus:
        return self._sweeper.status()

    def _sleep_s(self) -> float:
        sleep = self.config.sweep_max_interval_s
        if self._next_due is not None:
            until = (self._next_due - self.clock.now()).total_seconds()
            sleep = min(sleep, max(0.05, until))
        return sleep


def _aware(ts: datetime | None) -> datetime | None:
    return as_utc(ts) if ts is not None else None
