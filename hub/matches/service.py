"""Possible face matches: intake from face_match alerts, human review (one or two distinct
reviewers), the incident a confirmation opens, the officer's outcome, audited crop views,
the export, and the retention of rejected crops.

A face_match alert is a *possible* match until humans decide it. Intake makes one pending
match per stored face_match alert (the unique alert id: a resend or a second replica makes
none); nothing reaches an officer before a confirmation. Exactly once across replicas: a
review locks the match row and decides it with a conditional UPDATE (``status = 'pending'``),
in the transaction that also opens the incident, so only one transaction ever confirms a match
and opens its incident; dispatch asks officers (action ``verify``) in that same transaction.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine

from edge.alert_details import FaceMatchDetails, parse_details
from edge.protocol import AlertKind, ProtocolError
from edge.validators import new_id
from hub.audit import AuditTrail, write_transaction
from hub.audit.service import append as audit_append
from hub.auth import Permission, Principal
from hub.clock import Clock, SystemClock, as_utc
from hub.csv_export import write_csv
from hub.dispatch import repository as dispatch_repo
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.incidents import repository as incidents_repo
from hub.incidents.alert_rules import StoredAlert
from hub.incidents.model import EventKind, IncidentSource
from hub.incidents.service import IncidentService, NewIncident
from hub.live import Layer, LiveBroadcaster, LiveEvent
from hub.matches import repository as repo
from hub.matches.config import MatchesConfig
from hub.matches.entries import entry_labels
from hub.notifications.repository import notify as notify_user
from hub.workers import Sweeper, WorkerStatus

log = logging.getLogger(__name__)

ACTOR = "system:matches"  # not a valid username (":"), so nobody can pose as it
NOTE_MAX = 500
SWEEP_BATCH = 200
EXPORT_MAX_ROWS = 100_000
RECOVER_WINDOW = timedelta(days=1)  # how far back a sweep looks for alerts intake missed
INBOX_KEY = "review.inbox_pending"


class Decision(StrEnum):
    CONFIRM = "confirm"
    REJECT = "reject"


class Outcome(StrEnum):
    IDENTITY_CONFIRMED = "identity_confirmed"  # identity documents checked by the officer
    NOT_THE_PERSON = "not_the_person"
    NOT_FOUND = "not_found"


class Image(StrEnum):
    CROP = "crop"
    SNAPSHOT = "snapshot"


class MatchNotFound(NotFound):
    pass


class ReviewRefused(Conflict):
    pass


@dataclass(slots=True)
class _Announce:
    match_ids: list[str]
    incident: Any | None = None


class MatchService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        config: MatchesConfig,
        *,
        incidents: IncidentService,
        live: LiveBroadcaster,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config
        self.incidents = incidents
        self.live = live
        self.clock = clock or SystemClock()
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self.healthy = True  # False while the last intake failed (the hub reports it)
        self._sweeper = Sweeper(
            "matches",
            self.sweep,
            lambda: self.config.sweep_interval_s,
            lambda: self.count("sweep_errors"),
        )

    def count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    def stats_snapshot(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self.stats)

    def _audit(
        self, conn: Connection, actor: str, action: str, target: str, details: dict[str, Any]
    ) -> None:
        audit_append(
            conn,
            actor,
            action,
            target,
            details,
            key=self.audit.settings.key,
            clock=self.audit.clock,
        )

    # --- intake ------------------------------------------------------------------------------

    def intake_batch(self, alert_ids: Collection[str]) -> None:
        """:meth:`intake` for ingest's after-store callback: a failure is counted and logged,
        never raised (the alerts are stored; the sweeper picks up what intake missed)."""
        try:
            self.intake(alert_ids)
        except Exception:
            self.count("intake_errors")
            self.healthy = False
            log.exception("match intake failed for %d alerts", len(alert_ids))
        else:
            self.healthy = True

    def intake(self, alert_ids: Collection[str]) -> int:
        """One pending match per stored face_match alert among ``alert_ids``; returns how many
        this call created (an alert that has its match already creates none)."""
        with self.engine.connect() as conn:
            rows = repo.face_match_alerts(conn, alert_ids)
        if not rows:
            return 0
        now = self.clock.now()
        created: list[str] = []
        with write_transaction(self.engine) as conn:
            commanders = dispatch_repo.active_commanders(conn)
            for row in rows:
                match_id = self._intake_one(conn, row, now, commanders)
                if match_id is not None:
                    created.append(match_id)
        self.count("matches_new", len(created))
        self._publish(created)
        return len(created)

    def _intake_one(
        self, conn: Connection, alert: Any, now: datetime, commanders: list[str]
    ) -> str | None:
        payload = dict(alert.payload or {})
        try:
            details = parse_details(AlertKind.FACE_MATCH, payload.get("details") or {})
        except ProtocolError:
            # Stored (the wire accepted it) but not a match we can review: counted, no match.
            self.count("bad_details")
            log.warning("face_match alert %s has no usable match details", alert.id)
            return None
        if not isinstance(details, FaceMatchDetails):  # the kind's model, by the registry
            self.count("bad_details")
            return None
        match_id = new_id()
        reviews_needed = 2 if self.config.two_reviewers else 1
        values = {
            "id": match_id,
            "alert_id": alert.id,
            "site": alert.site,
            "device": alert.device,
            "entry_id": details.entry_id,
            "score": details.score,
            "threshold": details.threshold,
            "bundle_version": details.bundle_version,
            "backend": details.backend,
            "frames_matched": details.frames_matched,
            "frames_seen": details.frames_seen,
            "lon": alert.lon,
            "lat": alert.lat,
            "seen_at": as_utc(alert.ts),
            "created_at": now,
            "status": "pending",
            "reviews_needed": reviews_needed,
        }
        if not repo.insert_match(conn, values):
            self.count("intake_duplicates")
            return None
        self._audit(
            conn,
            ACTOR,
            "match.new",
            match_id,
            {
                "alert": alert.id,
                "device": alert.device,
                "entry": details.entry_id,
                "score": details.score,
                "threshold": details.threshold,
                "bundle_version": details.bundle_version,
            },
        )
        params = {"entry": details.entry_id, "device": alert.device, "score": details.score}
        for username in commanders:
            notify_user(
                conn, username, kind="match_pending", message_key=INBOX_KEY, params=params, now=now
            )
        return match_id

    # --- reading -----------------------------------------------------------------------------

    def page(self, status: str | None, *, limit: int, after: str | None) -> list[dict[str, Any]]:
        if status is not None and status not in repo.STATUSES:
            raise Invalid(f"unknown match status {status!r}: one of {', '.join(repo.STATUSES)}")
        with self.engine.connect() as conn:
            rows = repo.page(conn, status, limit=limit, after=after)
            return self._views(conn, rows)

    def get(self, match_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = repo.get(conn, match_id)
            if row is None:
                raise MatchNotFound(f"no match {match_id!r}")
            return self._views(conn, [row])[0]

    def _views(self, conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
        reviews = repo.reviews_of(conn, [r.id for r in rows])
        labels = entry_labels(conn, [r.entry_id for r in rows])
        out = []
        for r in rows:
            label = labels.get(r.entry_id)
            out.append(
                match_json(
                    r,
                    reviews.get(r.id, []),
                    label.label if label else None,
                    label.category if label else None,
                )
            )
        return out

    def image(self, actor: str, match_id: str, which: Image) -> bytes:
        """The match's face crop or frame snapshot (JPEG); every view audited, a missing one
        (deleted by retention) too: the attempt is part of the record."""
        with self.audit.change(actor, "match.crop_view", match_id, {"image": which.value}) as conn:
            row = repo.get(conn, match_id)
            if row is None:
                raise MatchNotFound(f"no match {match_id!r}")
            data = (
                repo.crop(conn, row.alert_id)
                if which is Image.CROP
                else repo.snapshot(conn, row.alert_id)
            )
        if data is None:
            raise NotFound(f"match {match_id} has no {which.value} (deleted, or none was sent)")
        return data

    # --- review ------------------------------------------------------------------------------

    def review(self, actor: str, match_id: str, decision: Decision, note: str) -> dict[str, Any]:
        """Record ``actor``'s decision; confirms (opening the incident) or rejects the match
        when that decision settles it."""
        note = _note(note)
        now = self.clock.now()
        announce = _Announce([match_id])
        with write_transaction(self.engine) as conn:
            row = repo.lock(conn, match_id)
            if row is None:
                raise MatchNotFound(f"no match {match_id!r}")
            if row.status != "pending":
                raise ReviewRefused(f"match {match_id} is {row.status} already: nothing to review")
            if not repo.insert_review(
                conn,
                {
                    "match_id": match_id,
                    "reviewer": actor,
                    "decision": decision.value,
                    "note": note,
                    "at": now,
                },
            ):
                raise ReviewRefused(
                    "you have reviewed this match already; another reviewer must decide it"
                )
            reviews = repo.reviews_of(conn, [match_id]).get(match_id, [])
            confirms = sum(1 for r in reviews if r.decision == Decision.CONFIRM.value)
            details = {
                "decision": decision.value,
                "note": note,
                "confirms": confirms,
                "needed": int(row.reviews_needed),
            }
            self._audit(conn, actor, "match.review", match_id, details)
            if decision is Decision.REJECT:
                if repo.decide(conn, match_id, "rejected", now):
                    self._audit(conn, actor, "match.rejected", match_id, {"alert": row.alert_id})
                    self.count("rejected")
            elif confirms >= int(row.reviews_needed) and repo.decide(
                conn, match_id, "confirmed", now
            ):
                announce.incident = self._confirm(conn, actor, row, reviews, now)
                self.count("confirmed")
        self._announce(announce)
        return self.get(match_id)

    def _confirm(
        self, conn: Connection, actor: str, row: Any, reviews: list[Any], now: datetime
    ) -> Any:
        """The incident of a confirmed match, in the confirming transaction."""
        alert = StoredAlert(
            id=str(row.alert_id),
            site=str(row.site),
            device=str(row.device),
            kind=AlertKind.FACE_MATCH.value,
            severity="high",
            ts=as_utc(row.seen_at),
            lon=row.lon,
            lat=row.lat,
        )
        # The entry id, not its label: incidents are seen by more roles than matches are.
        title = f"Confirmed watchlist match {row.entry_id} at {row.device}"
        new = NewIncident(
            site=str(row.site),
            source=IncidentSource.ALERT,
            category=self.config.incident_category,
            level=self.config.incident_level,
            title=title,
            lon=row.lon,
            lat=row.lat,
        )
        incident_id = new_id()
        linked = alert if incidents_repo.alert_exists(conn, alert.id) else None
        incident = self.incidents.open_in(conn, actor, new, incident_id=incident_id, alert=linked)
        reviewers = [r.reviewer for r in reviews if r.decision == Decision.CONFIRM.value]
        repo.set_values(conn, str(row.id), {"incident_id": incident_id})
        incidents_repo.add_event(
            conn,
            incident_id,
            ts=now,
            actor=actor,
            kind=EventKind.MATCH,
            details={
                "change": "confirmed",
                "match": str(row.id),
                "entry": row.entry_id,
                "score": row.score,
                "reviewers": reviewers,
            },
        )
        self._audit(
            conn,
            actor,
            "incident.open",
            incident_id,
            {"source": "match", "match": str(row.id), "category": new.category},
        )
        self._audit(
            conn,
            actor,
            "match.confirmed",
            str(row.id),
            {"incident": incident_id, "reviewers": reviewers, "alert": row.alert_id},
        )
        return incident

    # --- the officer's outcome ---------------------------------------------------------------

    def record_outcome(
        self, principal: Principal, match_id: str, outcome: Outcome, note: str
    ) -> dict[str, Any]:
        """What the officer found at the place (verified by lawful means: identity documents
        checked in person; no further biometric capture). By a reviewer, or by an officer
        dispatched to the match's incident. Returns the match as the caller may see it: the
        whole record with ``matches:read``, else the officer's view (:meth:`for_officer`)."""
        note = _note(note)
        now = self.clock.now()
        actor = principal.username
        reviewer = principal.can(Permission.MATCHES_REVIEW)
        with write_transaction(self.engine) as conn:
            row = repo.lock(conn, match_id)
            # An officer learns nothing from a guessed id: an unknown match is refused like
            # another officer's (whether it exists is not theirs to know).
            if not reviewer and not (
                row is not None
                and principal.can(Permission.DISPATCH_ANSWER)
                and row.incident_id is not None
                and repo.officer_dispatched(conn, str(row.incident_id), actor)
            ):
                self.count("outcome_refused")
                raise Forbidden(
                    "only a reviewer or an officer dispatched to this match's incident may "
                    "record its outcome"
                )
            if row is None:
                raise MatchNotFound(f"no match {match_id!r}")
            if row.status != "confirmed" or row.incident_id is None:
                raise ReviewRefused(
                    f"match {match_id} is {row.status}: an outcome is recorded for a confirmed "
                    "match, after officers went to verify it"
                )
            if row.outcome is not None:
                raise ReviewRefused(
                    f"the outcome of match {match_id} is recorded already ({row.outcome})"
                )
            repo.set_values(
                conn,
                match_id,
                {
                    "outcome": outcome.value,
                    "outcome_note": note,
                    "outcome_by": actor,
                    "outcome_at": now,
                },
            )
            details = {"outcome": outcome.value, "note": note, "incident": row.incident_id}
            self._audit(conn, actor, "match.outcome", match_id, details)
            incidents_repo.add_event(
                conn,
                str(row.incident_id),
                ts=now,
                actor=actor,
                kind=EventKind.MATCH,
                text=note,
                details={"change": "outcome", "match": match_id, "outcome": outcome.value},
            )
        self.count(f"outcome_{outcome.value}")
        self._announce(_Announce([match_id]))
        if principal.can(Permission.MATCHES_READ):
            return self.get(match_id)
        # The officer gets back what their own dispatch shows of the match, no more (read by
        # id: the dispatch may be called off the moment after this commit).
        with self.engine.connect() as conn:
            return officer_match_json(repo.with_confirmations(conn, match_id))

    def for_officer(self, officer: str, incident_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """By incident id, the confirmed match of each incident among ``incident_ids`` that
        ``officer`` is sent to: what the officer needs to verify it and no more. No entry label
        (that is ``watchlist:read``), no face crop and no score (``matches:read``: the
        reviewers' tools), no reviewer names; the alert id, so the phone can show the camera
        frame the officer's ``alerts:read`` already allows (that view is audited)."""
        with self.engine.connect() as conn:
            rows = repo.of_officer_incidents(conn, officer, incident_ids)
        return {str(r.incident_id): officer_match_json(r) for r in rows}

    # --- export ------------------------------------------------------------------------------

    def export_csv(self, actor: str, status: str | None) -> str:
        if status is not None and status not in repo.STATUSES:
            raise Invalid(f"unknown match status {status!r}: one of {', '.join(repo.STATUSES)}")
        with self.engine.connect() as conn:
            rows = self._views(conn, repo.all_rows(conn, status, EXPORT_MAX_ROWS))
        flat = [
            {
                **{c: r[c] for c in EXPORT_COLUMNS if c in r and c != "reviewers"},
                "reviewers": " ".join(f"{v['reviewer']}:{v['decision']}" for v in r["reviews"]),
            }
            for r in rows
        ]
        self.audit.record(actor, "match.export", "matches", {"rows": len(flat), "status": status})
        return write_csv(EXPORT_COLUMNS, flat)

    # --- the sweeper -------------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> dict[str, int]:
        """One pass: matches intake missed, pending matches past their time, and the images of
        rejected or expired matches past ``rejected_crop_ttl_s``."""
        now = now or self.clock.now()
        done: Counter[str] = Counter(recovered=0, expired=0, crops_deleted=0)
        with self.engine.connect() as conn:
            missed = repo.alerts_without_match(conn, now - RECOVER_WINDOW, SWEEP_BATCH)
        if missed:
            done["recovered"] = self.intake(missed)
        with self.engine.connect() as conn:
            overdue = repo.overdue_pending(
                conn, now - timedelta(seconds=self.config.pending_ttl_s), SWEEP_BATCH
            )
        expired = []
        for match_id in overdue:
            with write_transaction(self.engine) as conn:
                if repo.decide(conn, match_id, "expired", now):
                    self._audit(conn, ACTOR, "match.expired", match_id, {})
                    expired.append(match_id)
        done["expired"] = len(expired)
        with self.engine.connect() as conn:
            due = repo.crops_due(
                conn, now - timedelta(seconds=self.config.rejected_crop_ttl_s), SWEEP_BATCH
            )
        deleted = []
        for row in due:
            with write_transaction(self.engine) as conn:
                crops, snaps = repo.delete_images(conn, str(row.alert_id))
                repo.set_values(conn, str(row.id), {"crop_deleted_at": now})
                self._audit(
                    conn,
                    ACTOR,
                    "match.crop_deleted",
                    str(row.id),
                    {"crops": crops, "snapshots": snaps},
                )
            deleted.append(str(row.id))
        done["crops_deleted"] = len(deleted)
        for key, n in done.items():
            if n:
                self.count(key, n)
        self._publish([*expired, *deleted])
        return dict(done)

    def start(self) -> None:
        self._sweeper.start()

    def stop(self) -> None:
        self._sweeper.stop()

    @property
    def started(self) -> bool:
        return self._sweeper.started

    def worker_status(self) -> WorkerStatus:
        return self._sweeper.status()

    # --- after commit ------------------------------------------------------------------------

    def _announce(self, announce: _Announce) -> None:
        if announce.incident is not None:
            # The live map and dispatch's own after-commit work (the outbox wake-up).
            self.incidents.announce(announce.incident, "incident.open")
        self._publish(announce.match_ids)

    def _publish(self, match_ids: list[str]) -> None:
        if not match_ids:
            return
        with self.engine.connect() as conn:
            views = self._views(conn, repo.by_ids(conn, match_ids))
        self.live.publish(
            [LiveEvent(Layer.MATCHES, v["site"], {"type": "match", "match": v}) for v in views]
        )


def _note(note: str) -> str:
    if "\x00" in note:
        raise Invalid("note contains a NUL character")
    if len(note) > NOTE_MAX:
        raise Invalid(f"note is {len(note)} characters; the limit is {NOTE_MAX}")
    return note


def _iso(ts: datetime | None) -> str | None:
    return as_utc(ts).isoformat() if ts is not None else None


EXPORT_COLUMNS = (
    "id",
    "alert_id",
    "site",
    "device",
    "entry_id",
    "entry_label",
    "category",
    "score",
    "threshold",
    "bundle_version",
    "seen_at",
    "status",
    "reviewers",
    "incident_number",
    "outcome",
    "outcome_by",
    "outcome_at",
    "crop_deleted_at",
)


def match_json(
    row: Any, reviews: list[Any], label: str | None, category: str | None
) -> dict[str, Any]:
    """The match object of the API, the live stream and the export."""
    return {
        "id": row.id,
        "alert_id": row.alert_id,
        "site": row.site,
        "device": row.device,
        "entry_id": row.entry_id,
        "entry_label": label,
        "category": category,
        "score": row.score,
        "threshold": row.threshold,
        "bundle_version": row.bundle_version,
        "seen_at": _iso(row.seen_at),
        "status": row.status,
        "reviews": [
            {"reviewer": r.reviewer, "decision": r.decision, "note": r.note, "at": _iso(r.at)}
            for r in reviews
        ],
        "reviews_needed": row.reviews_needed,
        "decided_at": _iso(row.decided_at),
        "incident_id": row.incident_id,
        "incident_number": row.incident_number,
        "outcome": row.outcome,
        "outcome_note": row.outcome_note,
        "outcome_by": row.outcome_by,
        "outcome_at": _iso(row.outcome_at),
        "crop_deleted_at": _iso(row.crop_deleted_at),
    }


def officer_match_json(row: Any) -> dict[str, Any]:
    """The match as an officer sent to verify it sees it (:meth:`MatchService.for_officer`)."""
    return {
        "id": row.id,
        "alert_id": row.alert_id,
        "entry_id": row.entry_id,
        "device": row.device,
        "seen_at": _iso(row.seen_at),
        "status": row.status,
        "confirmations": int(row.confirmations),
        "decided_at": _iso(row.decided_at),
        "outcome": row.outcome,
        "outcome_note": row.outcome_note,
        "outcome_by": row.outcome_by,
        "outcome_at": _iso(row.outcome_at),
    }
