"""Watchlist rules: who may propose, approve, refuse and revoke an entry, and when it lapses.

An entry is proposed (``pending``) by one user with its photo, category, reason, legal basis
and an expiry within ``max_expiry_days``; it becomes ``active`` only when a *different* user
holding ``watchlist:approve`` approves it. Until then it is in no bundle. Any step is audited
(actor and entry id; never the photo, never the embedding). After each commit that changes the
set of active entries, every ``on_change`` callback runs (bundlepush re-seals the bundles).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from edge.config import ConfigError
from edge.faces.types import EnrolmentRefusedError, FaceModelMissingError
from edge.validators import new_id
from hub.audit import AuditTrail
from hub.auth import Permission, Principal
from hub.clock import Clock, SystemClock, as_utc
from hub.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from hub.watchlists import repository as repo
from hub.watchlists.config import WatchlistsConfig
from hub.watchlists.faces import FaceEngine
from hub.watchlists.photos import PhotoVault, SealedPhoto, check_photo
from hub.workers import Sweeper, WorkerStatus

log = logging.getLogger(__name__)

ACTOR = "system:watchlists"
LABEL_MAX = 200
REASON_MAX = 1000
LEGAL_BASIS_MAX = 500
SWEEP_BATCH = 500


class EntryNotFound(NotFound):
    code = "watchlist.not_found"


class GovernanceRefused(Invalid):
    """An entry that breaks a governance rule (a missing reason, an expiry too far...)."""


class GovernanceForbidden(Forbidden):
    """The caller may not take this step on this entry (their own, or no approver)."""


class WrongState(Conflict):
    code = "governance.wrong_state"


class QualityRefused(Invalid):
    """The photo's face is not good enough to enrol; ``code`` is ``quality.<reason>``."""


@dataclass(frozen=True, slots=True)
class EnrolInput:
    label: str
    category: str
    reason: str
    legal_basis: str
    expires_at: datetime
    photo: bytes
    photo_type: str | None  # the part's declared content type


def _text(value: str, field: str, limit: int, what: str) -> str:
    text = value.strip()
    if not text:
        raise GovernanceRefused(f"an entry needs {what}", code=f"governance.missing_{field}")
    if len(text) > limit:
        raise GovernanceRefused(
            f"the {field.replace('_', ' ')} is longer than {limit} characters",
            code=f"governance.{field}_too_long",
        )
    return text


class WatchlistService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        config: WatchlistsConfig,
        *,
        vault: PhotoVault,
        faces: FaceEngine | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config
        self.vault = vault
        self.faces = faces or FaceEngine(config.face, config.quality)
        self.clock: Clock = clock or SystemClock()
        self.on_change: list[Callable[[], None]] = []
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._sweeper = Sweeper(
            "watchlists",
            self.expire_due,
            lambda: self.config.sweep_interval_s,
            lambda: self.count("sweep_errors"),
        )

    def count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    def stats_snapshot(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self.stats)

    # --- reads -------------------------------------------------------------------------------

    def page(self, status: str | None, *, limit: int, after: str | None) -> list[Any]:
        with self.engine.connect() as conn:
            return repo.page(conn, status=status, now=self.clock.now(), limit=limit, after=after)

    def get(self, entry_id: str) -> Any:
        with self.engine.connect() as conn:
            row = repo.get(conn, entry_id)
        if row is None:
            raise EntryNotFound(f"no watchlist entry {entry_id}")
        return row

    def status_of(self, row: Any) -> str:
        return repo.status_at(row.status, row.expires_at, self.clock.now())

    def photo(self, actor: Principal, entry_id: str) -> tuple[bytes, str]:
        """The enrolment photo, decrypted in memory; the view is audited before it is given."""
        with self.audit.change(actor.username, "watchlist.photo_view", entry_id) as conn:
            sealed = repo.photo(conn, entry_id)
            if sealed is None:
                raise EntryNotFound(f"no watchlist entry {entry_id}")
        data = self.vault.open(
            entry_id, SealedPhoto(sealed.key_id, bytes(sealed.nonce), bytes(sealed.ciphertext))
        )
        self.count("photo_views")
        return data, sealed.content_type

    # --- changes -----------------------------------------------------------------------------

    def _governance(self, item: EnrolInput, now: datetime) -> EnrolInput:
        label = _text(item.label, "label", LABEL_MAX, "a label (who the entry is)")
        if item.category not in self.config.categories:
            raise GovernanceRefused(
                f"category {item.category[:64]!r} is not one of "
                f"{', '.join(self.config.categories)}",
                code="governance.unknown_category",
            )
        reason = _text(item.reason, "reason", REASON_MAX, "a reason (why this person is sought)")
        legal_basis = _text(
            item.legal_basis,
            "legal_basis",
            LEGAL_BASIS_MAX,
            "a legal basis (the warrant, order or statute that allows it)",
        )
        if item.expires_at.tzinfo is None:
            raise GovernanceRefused(
                "expires_at needs a time zone (e.g. 2027-01-31T00:00:00Z)",
                code="governance.expiry_without_zone",
            )
        expires_at = as_utc(item.expires_at)
        if expires_at <= now:
            raise GovernanceRefused(
                "the expiry is in the past: choose a date after today",
                code="governance.expiry_in_past",
            )
        limit = now + timedelta(days=self.config.max_expiry_days)
        if expires_at > limit:
            raise GovernanceRefused(
                f"the expiry is more than {self.config.max_expiry_days} days away: choose "
                f"{limit.date().isoformat()} or earlier (renew it by enrolling again)",
                code="governance.expiry_too_far",
            )
        return EnrolInput(
            label, item.category, reason, legal_basis, expires_at, item.photo, item.photo_type
        )

    def enrol(self, actor: Principal, item: EnrolInput) -> Any:
        """A pending entry from a photo that passed the checks; nothing is written otherwise."""
        if not actor.can(Permission.WATCHLIST_ENROL):
            raise GovernanceForbidden(
                "enrolling needs the watchlist:enrol permission", code="governance.no_permission"
            )
        now = self.clock.now()
        try:
            item = self._governance(item, now)
            photo = check_photo(
                item.photo,
                item.photo_type,
                max_bytes=self.config.photo_max_bytes,
                max_pixels=self.config.photo_max_pixels,
            )
            try:
                face = self.faces.enrol(photo.data)
            except EnrolmentRefusedError as err:
                raise QualityRefused(str(err), code=f"quality.{err.reason.value}") from err
            except (FaceModelMissingError, ConfigError) as err:
                raise Unavailable(str(err), code="quality.models_missing") from err
        except (Invalid, Unavailable) as err:
            self.count(f"refused_{err.code or 'other'}")
            log.info("watchlist enrolment by %s refused: %s", actor.username, err.code)
            raise
        entry_id = new_id()
        sealed = self.vault.seal(entry_id, photo.data)
        values = {
            "id": entry_id,
            "label": item.label,
            "category": item.category,
            "reason": item.reason,
            "legal_basis": item.legal_basis,
            "status": repo.PENDING,
            "enrolled_by": actor.username,
            "enrolled_at": now,
            "expires_at": item.expires_at,
            "model": face.model,
            "dim": int(face.embedding.shape[0]),
            "embedding": face.embedding.tobytes(),
            "quality": face.quality,
        }
        details = {"category": item.category, "expires_at": item.expires_at.isoformat()}
        with self.audit.change(actor.username, "watchlist.enrol", entry_id, details) as conn:
            repo.insert(
                conn,
                values,
                {
                    "key_id": sealed.key_id,
                    "nonce": sealed.nonce,
                    "ciphertext": sealed.ciphertext,
                    "content_type": photo.content_type,
                },
            )
        self.count("enrolled")
        return self.get(entry_id)

    def _decide(self, actor: Principal, entry_id: str, verb: str) -> Any:
        if not actor.can(Permission.WATCHLIST_APPROVE):
            raise GovernanceForbidden(
                f"to {verb} an entry needs the watchlist:approve permission",
                code="governance.not_an_approver",
            )
        row = self.get(entry_id)
        if row.enrolled_by == actor.username:
            raise GovernanceForbidden(
                f"you enrolled this entry: another approver must {verb} it",
                code="governance.own_entry",
            )
        if self.status_of(row) != repo.PENDING:
            raise WrongState(f"the entry is {self.status_of(row)}, not pending")
        return row

    def approve(self, actor: Principal, entry_id: str) -> Any:
        self._decide(actor, entry_id, "approve")
        now = self.clock.now()
        with self.audit.change(actor.username, "watchlist.approve", entry_id) as conn:
            row = repo.get(conn, entry_id)
            if (
                row is None
                or as_utc(row.expires_at) <= now
                or not repo.transition(
                    conn,
                    entry_id,
                    repo.PENDING,
                    {"status": repo.ACTIVE, "approved_by": actor.username, "approved_at": now},
                )
            ):
                raise WrongState("the entry changed meanwhile: it is no longer pending")
        self.count("approved")
        self._changed()
        return self.get(entry_id)

    def refuse(self, actor: Principal, entry_id: str, reason: str) -> Any:
        text = _text(reason, "reason", REASON_MAX, "a reason for the refusal")
        self._decide(actor, entry_id, "refuse")
        now = self.clock.now()
        with self.audit.change(actor.username, "watchlist.refuse", entry_id) as conn:
            if not repo.transition(
                conn,
                entry_id,
                repo.PENDING,
                {
                    "status": repo.REFUSED,
                    "refused_by": actor.username,
                    "refused_at": now,
                    "refuse_reason": text,
                },
            ):
                raise WrongState("the entry changed meanwhile: it is no longer pending")
        self.count("refused")
        return self.get(entry_id)

    def revoke(self, actor: Principal, entry_id: str, reason: str) -> Any:
        """Withdraw a pending or active entry at once (it leaves every bundle)."""
        if not actor.can(Permission.WATCHLIST_ENROL):
            raise GovernanceForbidden(
                "revoking needs the watchlist:enrol permission", code="governance.no_permission"
            )
        text = _text(reason, "reason", REASON_MAX, "a reason for the revocation")
        row = self.get(entry_id)
        status = self.status_of(row)
        if status not in (repo.PENDING, repo.ACTIVE):
            raise WrongState(f"the entry is {status}: only pending or active entries are revoked")
        now = self.clock.now()
        with self.audit.change(actor.username, "watchlist.revoke", entry_id) as conn:
            if not repo.transition(
                conn,
                entry_id,
                row.status,
                {
                    "status": repo.REVOKED,
                    "revoked_by": actor.username,
                    "revoked_at": now,
                    "revoke_reason": text,
                },
            ):
                raise WrongState("the entry changed meanwhile: try again")
        self.count("revoked")
        if row.status == repo.ACTIVE:
            self._changed()
        return self.get(entry_id)

    def expire_due(self, now: datetime | None = None) -> int:
        """Mark entries past their expiry ``expired`` (audited each); returns how many.

        Reads already treat them as expired at ``expires_at`` and bundles carry each entry's
        expiry, so this pass only records the fact; running it on several replicas is safe
        (the conditional update lets one of them win each entry)."""
        now = now or self.clock.now()
        with self.engine.connect() as conn:
            due = repo.due_expiry(conn, now, SWEEP_BATCH)
        expired_active = 0
        marked = 0
        for entry in due:
            with self.audit.changes() as batch:
                row = repo.get(batch.conn, entry.id)
                if row is None or row.status not in (repo.ACTIVE, repo.PENDING):
                    continue
                if repo.transition(
                    batch.conn, entry.id, row.status, {"status": repo.EXPIRED, "expired_at": now}
                ):
                    batch.add(
                        ACTOR,
                        "watchlist.expire",
                        entry.id,
                        {"was": row.status, "expires_at": as_utc(row.expires_at).isoformat()},
                    )
                    marked += 1
                    expired_active += row.status == repo.ACTIVE
        if marked:
            self.count("expired", marked)
        if expired_active:
            self._changed()
        return marked

    def _changed(self) -> None:
        for callback in list(self.on_change):
            try:
                callback()
            except Exception:  # one listener's failure must not undo or hide the change
                self.count("on_change_errors")
                log.exception("a watchlist change listener failed")

    # --- sweeper -----------------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper.start()

    def stop(self) -> None:
        self._sweeper.stop()

    @property
    def started(self) -> bool:
        return self._sweeper.started

    def worker_status(self) -> WorkerStatus:
        return self._sweeper.status()
