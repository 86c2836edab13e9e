"""The timer sweeper: fires due reminders and escalations exactly once across hub replicas.

Each hub runs one :class:`TimerSweeper` on a thread. A sweep reads due timers in keyset pages
and fires each page in one audited transaction: it locks the page's incidents in id order,
claims the page with one conditional UPDATE (``fired_at IS NULL AND NOT cancelled AND due_at
<= now``, RETURNING the ids this hub won), and writes only the won timers' timeline events,
escalation stages, notifications and audit records (one per timer). A timer another hub
claimed first is not returned, so nothing is written twice; a hub that dies mid-way commits
nothing, and its timers are still due for the next sweep (of any hub). A page that fails is
rolled back and fired again one timer per transaction, so a failing timer costs only itself.
Timers live in the database, so they survive restarts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from hub.audit import AuditTrail, write_transaction
from hub.audit.service import AuditBatch
from hub.clock import Clock
from hub.incidents import deadline_repository as repo
from hub.incidents import repository as incidents_repo
from hub.incidents.config import IncidentsConfig
from hub.incidents.deadlines import STAGE, TimerKind, aware
from hub.incidents.model import OPEN_STATES, EventKind, IncidentState
from hub.org.repository import department
from hub.workers import WorkerStatus, thread_alive

log = logging.getLogger(__name__)

# Not a valid username (":" is outside the id pattern), so no user can pose as the sweeper.
ACTOR = "system:timers"

MESSAGE_KEYS = {
    TimerKind.REMINDER: "notify.incident_reminder",
    TimerKind.ESCALATE_SUPERVISOR: "notify.incident_overdue",
    TimerKind.ESCALATE_COMMANDER: "notify.incident_escalated",
}
ACTIONS = {
    TimerKind.REMINDER: "incident.remind",
    TimerKind.ESCALATE_SUPERVISOR: "incident.escalate",
    TimerKind.ESCALATE_COMMANDER: "incident.escalate",
}


class LostClaimError(Exception):
    """Another hub fired the timer first (or it was cancelled or moved): roll back."""


@dataclass(frozen=True, slots=True)
class Fired:
    timer_id: int
    incident_id: str
    kind: TimerKind
    recipients: tuple[str, ...]


class TimerSweeper:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        config: IncidentsConfig,
        clock: Clock,
        *,
        hub_id: str,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config
        self.clock = clock
        self.hub_id = hub_id
        # fired: by this hub; lost: another hub (or a concurrent cancel) won the claim;
        # skipped: the incident was gone or no longer open, the timer cancelled;
        # failed: the effect raised (rolled back, retried on the next sweep).
        self.stats: dict[str, int] = {
            "sweeps": 0,
            "fired": 0,
            "lost": 0,
            "skipped": 0,
            "failed": 0,
            "unrouted": 0,
            "sweep_errors": 0,
        }
        self._lock = threading.Lock()
        self._directory: _Directory | None = None  # the page being fired's lookups
        # Told what this hub fired after each sweep (the hub puts it on the live map, so every
        # operator sees an escalation or a reminder as it happens); a failing hook is logged.
        self.on_fired: Callable[[list[Fired]], None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- one sweep -------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> list[Fired]:
        """Fire every timer due by ``now`` (default: the clock's now) that no other hub fired;
        returns what this hub fired. A failing timer is counted, logged and left due."""
        now = aware(now or self.clock.now())
        fired: list[Fired] = []
        after: tuple[Any, int] | None = None
        batch = self.config.deadlines.sweep_batch
        while not self._stop.is_set():
            with self.engine.connect() as conn:
                due = repo.due_timers(conn, now, after=after, limit=batch)
            if not due:
                break
            after = (due[-1].due_at, int(due[-1].id))
            try:
                fired.extend(self._fire_page(due, now))
            except Exception:
                # Rolled back whole: fire this page one timer per transaction, so that only
                # the failing timer stays due.
                log.warning(
                    "a page of %d timers failed as a batch; firing them one by one",
                    len(due),
                    exc_info=True,
                )
                if not self._fire_each(due, now, fired):
                    break
            if len(due) < batch:
                break
        # Shutting down: the rest stays due for the next hub (or this one, restarted) rather
        # than outlive the store.
        self._count("sweeps")
        if fired and self.on_fired is not None:
            try:
                self.on_fired(fired)
            except Exception:
                log.exception("telling the live map about %d fired timers failed", len(fired))
        return fired

    def _fire_each(self, due: Sequence[Any], now: datetime, fired: list[Fired]) -> bool:
        """The one-transaction-per-timer path; False when told to stop mid-way."""
        for timer in due:
            if self._stop.is_set():
                return False
            try:
                result = self._fire(timer, now)
            except Exception:
                self._count("failed")
                log.exception(
                    "timer %s (%s of incident %s) failed; it stays due",
                    timer.id,
                    timer.kind,
                    timer.incident_id,
                )
                continue
            if result is not None:
                fired.append(result)
        return True

    def _fire_page(self, due: Sequence[Any], now: datetime) -> list[Fired]:
        """Fire a page of due timers in one audited transaction, one audit record per timer:
        lock their incidents (id order), cancel the timers of incidents gone or done, claim the
        rest in one conditional UPDATE (what it does not return, another hub or a concurrent
        cancel or move won), then write the effects with executemany inserts."""
        counts = {"fired": 0, "lost": 0, "skipped": 0, "unrouted": 0}
        fired: list[Fired] = []
        try:
            with self.audit.changes() as batch:
                self._directory = _Directory(batch.conn)
                self._fire_in(batch, due, now, counts, fired)
        finally:
            self._directory = None
        counts["fired"] = len(fired)
        with self._lock:
            for name, n in counts.items():
                self.stats[name] += n
        return fired

    def _fire_in(
        self,
        batch: AuditBatch,
        due: Sequence[Any],
        now: datetime,
        counts: dict[str, int],
        fired: list[Fired],
    ) -> None:
        conn = batch.conn
        locked = repo.lock_incidents(conn, (str(t.incident_id) for t in due))
        live = []
        for timer in due:
            incident = locked.get(str(timer.incident_id))
            if incident is None or IncidentState(incident.state) not in OPEN_STATES:
                # Gone or done (a change that skipped on_change): cancel, so it is not read again.
                if repo.cancel_timer(conn, int(timer.id)):
                    counts["skipped"] += 1
            else:
                live.append(timer)
        won = repo.claim_many(conn, (int(t.id) for t in live), now=now, hub_id=self.hub_id)
        effects = _Effects()
        for timer in live:
            if int(timer.id) not in won:
                counts["lost"] += 1
                continue
            kind = TimerKind(timer.kind)
            incident = locked[str(timer.incident_id)]
            recipients = self._recipients(conn, kind, incident)
            if not recipients:
                counts["unrouted"] += 1
                _warn_unrouted(incident, kind)
            effects.add(kind, incident, recipients, now)
            batch.add(ACTOR, ACTIONS[kind], str(incident.id), self._details(timer, kind))
            fired.append(Fired(int(timer.id), str(incident.id), kind, tuple(recipients)))
        effects.write(conn)

    def _details(self, timer: Any, kind: TimerKind) -> dict[str, Any]:
        return {
            "timer": kind.value,
            "due_at": aware(timer.due_at).isoformat(),
            "hub": self.hub_id,
        }

    def _fire(self, timer: Any, now: datetime) -> Fired | None:
        kind = TimerKind(timer.kind)
        incident_id = str(timer.incident_id)
        with self.engine.connect() as conn:
            incident = incidents_repo.get(conn, incident_id)
        if incident is None or IncidentState(incident.state) not in OPEN_STATES:
            # on_change cancels timers when an incident is done; this catches a change made
            # without it (or a row removed by hand): cancel, so it is not read again.
            with write_transaction(self.engine) as conn:
                if repo.cancel_timer(conn, int(timer.id)):
                    self._count("skipped")
            return None
        details = self._details(timer, kind)
        try:
            with self.audit.change(ACTOR, ACTIONS[kind], incident_id, details) as conn:
                recipients = self._claimed(conn, int(timer.id), kind, incident_id, now)
        except LostClaimError:
            self._count("lost")
            return None
        self._count("fired")
        return Fired(int(timer.id), incident_id, kind, tuple(recipients))

    def _claimed(
        self, conn: Connection, timer_id: int, kind: TimerKind, incident_id: str, now: datetime
    ) -> list[str]:
        """Claim the timer and perform its effect; raises LostClaimError (rolling the whole
        transaction back, audit record included) when this hub did not win the claim."""
        current = repo.lock_incident(conn, incident_id)
        if current is None or IncidentState(current.state) not in OPEN_STATES:
            raise LostClaimError  # gone or done meanwhile: the next sweep's check cancels it
        if not repo.claim(conn, timer_id, now=now, hub_id=self.hub_id):
            raise LostClaimError
        recipients = self._recipients(conn, kind, current)
        self._effect(conn, kind, current, recipients, now)
        return recipients

    def _effect(
        self, conn: Connection, kind: TimerKind, incident: Any, recipients: list[str], now: datetime
    ) -> None:
        effects = _Effects()
        effects.add(kind, incident, recipients, now)
        effects.write(conn)
        if not recipients:
            self._count("unrouted")
            _warn_unrouted(incident, kind)

    def _recipients(self, conn: Connection, kind: TimerKind, incident: Any) -> list[str]:
        """Who hears of it: the reminder goes to the assignee (the supervisor while nobody is
        assigned); stage 1 to the department's supervisor; stage 2 to its commander, or every
        active commander when it names none. A named person who is not an active user is
        skipped for the next rung, so an escalation never ends in a dead inbox."""
        lookup = self._directory
        if lookup is None or lookup.conn is not conn:
            lookup = _Directory(conn)
        dept = lookup.department(str(incident.department_id)) if incident.department_id else None
        supervisor = dept.supervisor if dept is not None else None
        commander = dept.commander if dept is not None else None
        ladder: list[list[str | None]]
        if kind is TimerKind.REMINDER:
            ladder = [[incident.assignee], [supervisor]]
        elif kind is TimerKind.ESCALATE_SUPERVISOR:
            ladder = [[supervisor], [commander]]
        else:
            ladder = [[commander]]
        for rung in ladder:
            found = lookup.active_users([name for name in rung if name])
            if found:
                return found
        if kind is TimerKind.REMINDER:
            return []
        return lookup.active_commanders()

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    # --- the worker thread -----------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hub-timers", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        every = self.config.deadlines.sweep_every_s
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception:  # the database may be away; the next tick retries
                self._count("sweep_errors")
                log.exception("timer sweep failed")
            self._stop.wait(every)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def stats_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.stats)

    @property
    def started(self) -> bool:
        return self._thread is not None

    def worker_status(self) -> WorkerStatus:
        return WorkerStatus("timers", thread_alive(self._thread))


def _warn_unrouted(incident: Any, kind: TimerKind) -> None:
    log.warning(
        "incident %s: %s found nobody to notify (no assignee, supervisor or commander)",
        incident.number,
        kind.value,
    )


@dataclass(slots=True)
class _Directory:
    """Departments and active users as one transaction sees them, each looked up once: the
    timers of a page mostly name the same few people."""

    conn: Connection
    departments: dict[str, Any] = field(default_factory=dict)
    users: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    commanders: list[str] | None = None

    def department(self, department_id: str) -> Any | None:
        if department_id not in self.departments:
            self.departments[department_id] = department(self.conn, department_id)
        return self.departments[department_id]

    def active_users(self, names: list[str]) -> list[str]:
        key = tuple(sorted(set(names)))
        if key not in self.users:
            self.users[key] = repo.active_users(self.conn, key)
        return list(self.users[key])

    def active_commanders(self) -> list[str]:
        if self.commanders is None:
            self.commanders = repo.active_commanders(self.conn)
        return list(self.commanders)


@dataclass(slots=True)
class _Effects:
    """What fired timers write, gathered so a page writes it in a few statements: the raised
    stages, one timeline event per timer and one notification per recipient."""

    stages: dict[int, list[str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: TimerKind, incident: Any, recipients: list[str], now: datetime) -> None:
        incident_id = str(incident.id)
        stage = STAGE.get(kind)
        if stage is not None:
            self.stages.setdefault(stage, []).append(incident_id)
        deadline = aware(incident.deadline_at).isoformat() if incident.deadline_at else None
        self.events.append(
            {
                "incident_id": incident_id,
                "ts": now,
                "actor": ACTOR,
                "kind": EventKind.REMINDER if kind is TimerKind.REMINDER else EventKind.ESCALATED,
                "from_state": None,
                "to_state": None,
                "text": "",
                "details": {
                    "timer": kind.value,
                    "stage": stage or 0,
                    "deadline_at": deadline,
                    "notified": recipients,
                },
            }
        )
        params = {"number": incident.number, "title": incident.title, "deadline_at": deadline}
        self.notes.extend(
            {
                "username": username,
                "kind": kind.value,
                "incident_id": incident_id,
                "message_key": MESSAGE_KEYS[kind],
                "params": params,
                "created_at": now,
            }
            for username in recipients
        )

    def write(self, conn: Connection) -> None:
        repo.raise_stages(conn, self.stages)
        repo.add_events(conn, self.events)
        repo.add_notifications(conn, self.notes)
