"""Dispatch rules: who is asked when an incident opens, what the officers' answers do, widening
when nobody acknowledges, and telling the commander after the last ring.

Every change happens in one transaction with its audit records, its timeline events and the
Notify it sends (written to the command outbox, published after commit). Live events and the
outbox wake-up go after the commit.

Exactly once across replicas: the first round is asked in the transaction that opens the
incident (only one replica opens it); later rounds are asked by the hub that claims the due
round with a conditional UPDATE (``fired_at IS NULL``), as the incident timers do; an answer
is decided by the hub that claims its row (``outcome IS NULL``), so a redelivered or replayed
answer changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from edge.protocol import (
    AlertKind,
    CmdChannel,
    Evidence,
    ExpectedAction,
    Location,
    Notify,
    OfficerAnswer,
    ProtocolError,
    Severity,
    decode_as,
)
from edge.validators import new_id
from hub.audit import AuditTrail, write_transaction
from hub.audit.service import append as audit_append
from hub.clock import Clock, SystemClock, as_utc
from hub.commands.outbox import CommandOutbox
from hub.dispatch import policy
from hub.dispatch import repository as repo
from hub.dispatch.config import DispatchConfig
from hub.dispatch.policy import Availability, Candidate, Fix, OfficerStatus
from hub.errors import Conflict, Invalid, NotFound
from hub.incidents import repository as incidents_repo
from hub.incidents.model import (
    DONE_STATES,
    OPEN_STATES,
    EventKind,
    IncidentState,
    check_transition,
)
from hub.live import Layer, LiveBroadcaster, LiveEvent
from hub.notifications.repository import notify as notify_user
from hub.workers import Sweeper, WorkerStatus

log = logging.getLogger(__name__)

# Not valid usernames (":" is outside the id pattern), so nobody can pose as these.
ACTOR = "system:dispatch"
NOTE_MAX = 500
PENDING_MAX = 1000  # incidents whose dispatch live events wait for their commit
SWEEP_BATCH = 100
LEVEL_SEVERITY = {
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
# How far along a dispatch is; an answer never moves it back.
PROGRESS = {
    "notified": 0,
    "timed_out": 0,
    "acknowledged": 1,
    "en_route": 2,
    "on_scene": 3,
    "verified": 4,
}
ANSWER_STATE = {
    OfficerAnswer.ACKNOWLEDGE: "acknowledged",
    OfficerAnswer.ON_MY_WAY: "en_route",
    OfficerAnswer.ARRIVED: "on_scene",
    OfficerAnswer.VERIFY: "verified",
    OfficerAnswer.NEED_BACKUP: "acknowledged",
}
CLOSED_STATES = ("rejected", "cancelled", "done")


class DispatchNotFound(NotFound):
    pass


class OfficerNotFound(NotFound):
    pass


class AnswerRefused(Conflict):
    pass


@dataclass(frozen=True, slots=True)
class OfficerView:
    username: str
    display_name: str
    device: str | None
    on_duty: bool
    availability: Availability
    busy_with: str | None
    last_fix: Fix | None


@dataclass(slots=True)
class _Announce:
    """What a transaction changed, announced once it has committed."""

    events: list[tuple[str, str | None, str, str | None, str | None]] = field(
        default_factory=list
    )  # (change, dispatch id, incident id, officer, answer)
    incidents: dict[str, str] = field(default_factory=dict)  # incident id -> audited action
    notified: bool = False

    def add(
        self,
        change: str,
        incident_id: str,
        dispatch_id: str | None = None,
        *,
        officer: str | None = None,
        answer: str | None = None,
    ) -> None:
        self.events.append((change, dispatch_id, incident_id, officer, answer))
        if change == "notified":
            self.notified = True


class DispatchService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        config: DispatchConfig,
        *,
        outbox: CommandOutbox,
        live: LiveBroadcaster,
        clock: Clock | None = None,
        hub_id: str = "hub-1",
        kind_for_category: Callable[[str], AlertKind | None] | None = None,
        announce_incident: Callable[[Any, str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config
        self.outbox = outbox
        self.live = live
        self.clock = clock or SystemClock()
        self.hub_id = hub_id
        self.kind_for_category = kind_for_category or (lambda _category: None)
        # Tells the live map about an incident a dispatch changed (assigned, in progress).
        self.announce_incident = announce_incident
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._pending: OrderedDict[str, _Announce] = OrderedDict()
        self._pending_lock = threading.Lock()
        self._sweeper = Sweeper(
            "dispatch",
            self.sweep,
            lambda: self.config.sweep_interval_s,
            lambda: self.count("sweep_errors"),
        )

    # --- counters ----------------------------------------------------------------------------

    def count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    def stats_snapshot(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self.stats)

    # --- officers ----------------------------------------------------------------------------

    def _statuses(self, conn: Connection) -> tuple[list[OfficerStatus], dict[str, str]]:
        rows = repo.officer_users(conn)
        states = repo.device_states(conn, [r.device for r in rows if r.device])
        fixes = repo.latest_fixes(conn, [r.username for r in rows])
        busy = repo.busy_with(conn)
        statuses = []
        for r in rows:
            fix_row = fixes.get(r.username)
            fix = (
                Fix(fix_row.lon, fix_row.lat, as_utc(fix_row.ts), fix_row.heading_deg)
                if fix_row is not None
                else None
            )
            statuses.append(
                OfficerStatus(
                    username=r.username,
                    device=r.device,
                    on_duty=bool(r.on_duty),
                    device_offline=r.device is not None and states.get(r.device) == "offline",
                    fix=fix,
                    busy_with=busy.get(r.username),
                )
            )
        return statuses, {r.username: r.display_name for r in rows}

    def officers(self) -> list[OfficerView]:
        now = self.clock.now()
        with self.engine.connect() as conn:
            statuses, names = self._statuses(conn)
        return [self._view(s, names.get(s.username, ""), now) for s in statuses]

    def officer(self, username: str) -> OfficerView:
        for view in self.officers():
            if view.username == username:
                return view
        raise OfficerNotFound(f"no active officer {username!r}")

    def _view(self, s: OfficerStatus, display_name: str, now: datetime) -> OfficerView:
        return OfficerView(
            username=s.username,
            display_name=display_name,
            device=s.device,
            on_duty=s.on_duty,
            availability=policy.availability(s, now, self.config.offline_after_s),
            busy_with=s.busy_with,
            last_fix=s.fix,
        )

    def set_officer(
        self, actor: str, username: str, *, device: str | None, on_duty: bool
    ) -> OfficerView:
        """Bind a glasses device to an officer (None: unbind) and set their duty."""
        now = self.clock.now()
        details = {"officer": username, "device": device, "on_duty": on_duty}
        with self.audit.change(actor, "officer.update", username, details) as conn:
            self._check_officer(conn, username)
            if device is not None:
                row = repo.device(conn, device)
                if row is None:
                    raise NotFound(f"no device {device!r}")
                if row.kind != "glasses" or row.status != "active":
                    raise Invalid(f"device {device!r} is not an active glasses device")
                holder = repo.officer_of_device(conn, device)
                if holder is not None and holder != username:
                    raise Conflict(f"device {device!r} is bound to officer {holder!r}")
            self._write_duty(conn, actor, username, now, device=device, on_duty=on_duty)
        return self.officer(username)

    def set_duty(self, username: str, *, on_duty: bool) -> OfficerView:
        """The officer's own duty switch (their device binding stays)."""
        now = self.clock.now()
        details = {"officer": username, "on_duty": on_duty}
        with self.audit.change(username, "officer.duty", username, details) as conn:
            self._check_officer(conn, username)
            current = repo.duty_row(conn, username)
            device = current.device if current is not None else None
            self._write_duty(conn, username, username, now, device=device, on_duty=on_duty)
        return self.officer(username)

    @staticmethod
    def _check_officer(conn: Connection, username: str) -> None:
        if not repo.officer_users(conn, username):
            raise OfficerNotFound(f"no active officer {username!r}")

    @staticmethod
    def _write_duty(
        conn: Connection,
        actor: str,
        username: str,
        now: datetime,
        *,
        device: str | None,
        on_duty: bool,
    ) -> None:
        current = repo.duty_row(conn, username)
        since = now if current is None or bool(current.on_duty) != on_duty else current.since
        repo.upsert_officer(
            conn,
            {
                "username": username,
                "device": device,
                "on_duty": on_duty,
                "since": since,
                "updated_at": now,
                "updated_by": actor,
            },
        )

    # --- reading dispatches ------------------------------------------------------------------

    def of_incident(self, incident_id: str) -> list[Any]:
        with self.engine.connect() as conn:
            if incidents_repo.get(conn, incident_id) is None:
                raise NotFound(f"no incident {incident_id!r}")
            return repo.of_incident(conn, incident_id)

    def get(self, dispatch_id: str) -> Any:
        with self.engine.connect() as conn:
            row = repo.get(conn, dispatch_id)
        if row is None:
            raise DispatchNotFound(f"no dispatch {dispatch_id!r}")
        return row

    def mine(self, officer: str) -> list[tuple[Any, Notify | None]]:
        """The officer's open dispatches with the Notify each carried, most urgent first."""
        with self.engine.connect() as conn:
            rows = repo.open_of_officer(conn, officer)
        out: list[tuple[Any, Notify | None]] = []
        for r in rows:
            try:
                message = decode_as(Notify, bytes(r.notify_payload))
            except ProtocolError:  # a row written by another version: still listed
                message = None
            out.append((r, message if isinstance(message, Notify) else None))
        rank = {s: n for n, s in enumerate(("critical", "high", "medium", "low"))}
        out.sort(key=lambda p: (rank.get(p[0].incident_level, 9), as_utc(p[0].respond_by)))
        return out

    # --- the incident hook (inside the incident's transaction) -------------------------------

    def on_incident(self, conn: Connection, row: Any, action: str, alert_id: str | None) -> None:
        """Called by IncidentService in the transaction that opens or changes an incident."""
        now = self.clock.now()
        announce = self._pending_for(str(row.id))
        if action == "incident.open":
            if policy.needs_response(self.config, row.level, row.category):
                self._ask_from(conn, row, 0, now, announce, alert_id=alert_id)
        elif (
            action == "incident.edit"
            and IncidentState(row.state) in OPEN_STATES
            and policy.needs_response(self.config, row.level, row.category)
            and not repo.of_incident(conn, str(row.id))
        ):
            # Raised to a level that needs officers (or into a dispatched category): asked now,
            # once; an incident that has had dispatches keeps its own course.
            self._ask_from(conn, row, 0, now, announce)
        elif IncidentState(row.state) in DONE_STATES:
            self._close_all(conn, row, now, announce, f"incident {row.state}")

    def after_incident(self, row: Any, _action: str) -> None:
        """After the incident's transaction committed: its dispatches on the live map."""
        with self._pending_lock:
            announce = self._pending.pop(str(row.id), None)
        if announce is not None:
            self._announce(announce)

    def _pending_for(self, incident_id: str) -> _Announce:
        with self._pending_lock:
            announce = self._pending.get(incident_id)
            if announce is None:
                announce = self._pending[incident_id] = _Announce()
                # A rolled-back transaction never announces: bound what it leaves behind.
                while len(self._pending) > PENDING_MAX:
                    self._pending.popitem(last=False)
            return announce

    # --- asking ------------------------------------------------------------------------------

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

    def _timeline(
        self, conn: Connection, incident_id: str, actor: str, now: datetime, **details: Any
    ) -> None:
        incidents_repo.add_event(
            conn, incident_id, ts=now, actor=actor, kind=EventKind.DISPATCH, details=details
        )

    @staticmethod
    def _point(incident: Any) -> tuple[float, float] | None:
        if incident.lon is None or incident.lat is None:
            return None
        return (float(incident.lon), float(incident.lat))

    def _ask_from(
        self,
        conn: Connection,
        incident: Any,
        first_ring: int,
        now: datetime,
        announce: _Announce,
        *,
        alert_id: str | None = None,
        actor: str = ACTOR,
    ) -> bool:
        """Ask the first ring from ``first_ring`` on that has available officers, with its
        round timer; tells the commander when none has. True when someone was asked."""
        statuses, _ = self._statuses(conn)
        team = repo.team_usernames(conn, incident.cell_id)
        dispatched = repo.of_incident(conn, str(incident.id))
        asked = {d.officer for d in dispatched}
        alert_id = alert_id or next((d.alert_id for d in dispatched if d.alert_id), None)
        rings = self.config.rings
        for index in range(first_ring, len(rings)):
            chosen = policy.choose_ring(
                statuses,
                index,
                rings,
                self._point(incident),
                team,
                asked,
                now,
                self.config.offline_after_s,
                incident_id=str(incident.id),
            )
            if not chosen:
                continue
            due = now + timedelta(seconds=self.config.ack_timeout_s)
            if not repo.insert_round(conn, str(incident.id), index, due):
                # Asked already (a replica's widening won this round): never twice.
                self.count("rounds_taken")
                return True
            for candidate in chosen:
                self._notify(
                    conn,
                    incident,
                    candidate,
                    index,
                    self._action(alert_id, conn),
                    now,
                    due,
                    announce,
                    alert_id=alert_id,
                    actor=actor,
                )
            self.count("rounds_asked")
            return True
        self._unanswered(conn, incident, now, announce)
        return False

    def _action(self, alert_id: str | None, conn: Connection) -> ExpectedAction:
        # A face match is a possible match until a human confirms it: go and verify.
        if alert_id is not None:
            found = repo.alert(conn, alert_id)
            if found is not None and found.kind == AlertKind.FACE_MATCH.value:
                return ExpectedAction.VERIFY
        return ExpectedAction.ATTEND

    def _notify(  # noqa: PLR0917
        self,
        conn: Connection,
        incident: Any,
        candidate: Candidate,
        round_no: int,
        action: ExpectedAction,
        now: datetime,
        respond_by: datetime,
        announce: _Announce,
        *,
        alert_id: str | None,
        actor: str,
    ) -> str:
        device = repo.device(conn, candidate.device)
        site = device.site if device is not None else incident.site
        dispatch_id = new_id()
        message = Notify(
            site=site,
            device=candidate.device,
            alert_id=alert_id,
            kind=self._kind(conn, incident, alert_id),
            severity=LEVEL_SEVERITY.get(incident.level, Severity.HIGH),
            title=str(incident.title)[:200],
            body=str(incident.description or "")[:1000],
            location=(
                Location(lon=incident.lon, lat=incident.lat)
                if incident.lon is not None and incident.lat is not None
                else None
            ),
            evidence=self._evidence(conn, alert_id),
            dispatch_id=dispatch_id,
            incident_id=str(incident.id),
            incident_number=str(incident.number),
            action=action,
            respond_by=respond_by,
        )
        notify_id = self.outbox.enqueue(conn, message, CmdChannel.NOTIFY, created_by=actor)
        repo.insert_dispatch(
            conn,
            {
                "id": dispatch_id,
                "incident_id": str(incident.id),
                "site": incident.site,
                "officer": candidate.username,
                "device": candidate.device,
                "round": round_no,
                "action": action.value,
                "state": "notified",
                "distance_m": candidate.distance_m,
                "notify_id": notify_id,
                "notified_at": now,
                "respond_by": respond_by,
                "alert_id": alert_id,
                "created_by": actor,
                "updated_at": now,
            },
        )
        details = {
            "dispatch": dispatch_id,
            "officer": candidate.username,
            "device": candidate.device,
            "round": round_no,
            "action": action.value,
            "distance_m": candidate.distance_m,
        }
        self._audit(conn, actor, "dispatch.notify", str(incident.id), details)
        self._timeline(conn, str(incident.id), actor, now, change="notified", **details)
        announce.add("notified", str(incident.id), dispatch_id, officer=candidate.username)
        self.count("notified")
        return dispatch_id

    def _kind(self, conn: Connection, incident: Any, alert_id: str | None) -> AlertKind:
        if alert_id is not None:
            found = repo.alert(conn, alert_id)
            if found is not None:
                try:
                    return AlertKind(found.kind)
                except ValueError:
                    pass
        return self.kind_for_category(str(incident.category)) or AlertKind.INTRUSION

    def _evidence(self, conn: Connection, alert_id: str | None) -> Evidence | None:
        if alert_id is None or self.config.evidence_max_bytes == 0:
            return None
        found = repo.small_evidence(conn, alert_id, self.config.evidence_max_bytes)
        if found is None:
            return None
        try:
            return Evidence.from_jpeg(bytes(found.data), found.width, found.height)
        except ProtocolError:
            return None

    def _unanswered(
        self,
        conn: Connection,
        incident: Any,
        now: datetime,
        announce: _Announce,
        *,
        key: str = "dispatch.unanswered",
    ) -> None:
        """Nobody (more) to ask: every active commander is told, on the timeline and live."""
        commanders = repo.active_commanders(conn)
        params = {"number": incident.number, "title": incident.title}
        for username in commanders:
            notify_user(
                conn,
                username,
                kind="dispatch_unanswered",
                message_key=key,
                params=params,
                now=now,
                incident_id=str(incident.id),
            )
        details = {"notified": commanders, "key": key}
        self._audit(conn, ACTOR, "dispatch.unanswered", str(incident.id), details)
        self._timeline(conn, str(incident.id), ACTOR, now, change="unanswered", **details)
        announce.add("unanswered", str(incident.id))
        self.count("unanswered")

    def _close_all(
        self, conn: Connection, incident: Any, now: datetime, announce: _Announce, reason: str
    ) -> None:
        values = {"updated_at": now, "cancel_reason": reason}
        done = repo.close_open_of_incident(
            conn, str(incident.id), repo.BUSY_STATES, {**values, "state": "done"}
        )
        cancelled = repo.close_open_of_incident(
            conn, str(incident.id), ("notified",), {**values, "state": "cancelled"}
        )
        repo.cancel_rounds(conn, str(incident.id))
        for dispatch_id in done:
            announce.add("cancelled", str(incident.id), dispatch_id)
        for dispatch_id in cancelled:
            announce.add("cancelled", str(incident.id), dispatch_id)
        self._take_back(conn, incident, [*done, *cancelled], ACTOR, announce)
        if done or cancelled:
            self.count("closed_with_incident", len(done) + len(cancelled))

    def _take_back(
        self,
        conn: Connection,
        incident: Any,
        dispatch_ids: Sequence[str],
        actor: str,
        announce: _Announce,
    ) -> None:
        """A Notify withdrawing each dispatch's first one, so it leaves the officer's HUD
        (through the command outbox like every Notify: a box offline gets it later)."""
        for row in repo.by_ids(conn, set(dispatch_ids)):
            device = repo.device(conn, row.device)
            message = Notify(
                site=device.site if device is not None else incident.site,
                device=row.device,
                alert_id=row.alert_id,
                kind=self._kind(conn, incident, row.alert_id),
                severity=LEVEL_SEVERITY.get(incident.level, Severity.HIGH),
                title=str(incident.title)[:200],
                dispatch_id=row.id,
                incident_id=str(incident.id),
                incident_number=str(incident.number),
                action=ExpectedAction(row.action),
                withdraws=row.notify_id,
            )
            self.outbox.enqueue(conn, message, CmdChannel.NOTIFY, created_by=actor)
            announce.notified = True  # wakes the command publisher after the commit

    # --- manual dispatch and cancel ----------------------------------------------------------

    def dispatch(
        self, actor: str, incident_id: str, officer: str, action: ExpectedAction, *, force: bool
    ) -> Any:
        now = self.clock.now()
        announce = _Announce()
        details = {"officer": officer, "action": action.value, "force": force}
        with self._changing(actor, "dispatch.manual", incident_id, details) as conn:
            incident = repo.lock_incident(conn, incident_id)
            if incident is None:
                raise NotFound(f"no incident {incident_id!r}")
            if IncidentState(incident.state) not in OPEN_STATES:
                raise Conflict(f"incident {incident.number} is {incident.state}")
            statuses, _ = self._statuses(conn)
            status = next((s for s in statuses if s.username == officer), None)
            if status is None:
                raise OfficerNotFound(f"no active officer {officer!r}")
            if status.device is None:
                raise Conflict(f"officer {officer!r} has no glasses device bound")
            state = policy.availability(
                status, now, self.config.offline_after_s, incident_id=incident_id
            )
            if state in (Availability.OFFLINE, Availability.OFF_DUTY) and not force:
                raise Conflict(f"officer {officer!r} is {state.value} (send force to insist)")
            existing = repo.of_incident(conn, incident_id)
            if any(d.officer == officer and d.state in repo.OPEN_STATES for d in existing):
                raise Conflict(f"officer {officer!r} is already dispatched to this incident")
            round_no = max((d.round for d in existing), default=0)
            point = self._point(incident)
            dist = (
                policy.distance_m(point[0], point[1], status.fix.lon, status.fix.lat)
                if point is not None and status.fix is not None
                else None
            )
            alert_id = next((d.alert_id for d in existing if d.alert_id), None)
            dispatch_id = self._notify(
                conn,
                incident,
                Candidate(officer, status.device, dist),
                round_no,
                action,
                now,
                now + timedelta(seconds=self.config.ack_timeout_s),
                announce,
                alert_id=alert_id,
                actor=actor,
            )
        self._announce(announce)
        return self.get(dispatch_id)

    def cancel(self, actor: str, dispatch_id: str, reason: str) -> Any:
        if len(reason) > NOTE_MAX or "\x00" in reason:
            raise Invalid(f"reason must be at most {NOTE_MAX} characters, without NUL")
        now = self.clock.now()
        announce = _Announce()
        with self.engine.connect() as conn:
            row = repo.get(conn, dispatch_id)
        if row is None:
            raise DispatchNotFound(f"no dispatch {dispatch_id!r}")
        details = {"dispatch": dispatch_id, "officer": row.officer, "reason": reason}
        with self._changing(actor, "dispatch.cancel", row.incident_id, details) as conn:
            incident = repo.lock_incident(conn, row.incident_id)
            values = {"state": "cancelled", "cancel_reason": reason or None, "updated_at": now}
            if not repo.update_state(conn, dispatch_id, repo.OPEN_STATES, values):
                raise Conflict(f"dispatch {dispatch_id} is not open")
            if incident is not None:
                self._take_back(conn, incident, [dispatch_id], actor, announce)
            self._timeline(
                conn,
                row.incident_id,
                actor,
                now,
                change="cancelled",
                dispatch=dispatch_id,
                officer=row.officer,
                reason=reason,
            )
            announce.add("cancelled", row.incident_id, dispatch_id, officer=row.officer)
        self._announce(announce)
        return self.get(dispatch_id)

    @contextmanager
    def _changing(
        self, actor: str, action: str, target: str, details: dict[str, Any]
    ) -> Iterator[Connection]:
        with write_transaction(self.engine) as conn:
            yield conn
            self._audit(conn, actor, action, target, details)

    # --- answers -----------------------------------------------------------------------------

    def answer_http(
        self,
        officer: str,
        dispatch_id: str,
        answer: OfficerAnswer,
        note: str,
        location: Location | None,
    ) -> Any:
        """The phone's answer: only the dispatch's own officer (anyone else: not found)."""
        with self.engine.connect() as conn:
            row = repo.get(conn, dispatch_id)
        if row is None or row.officer != officer:
            raise DispatchNotFound(f"no dispatch {dispatch_id!r} for you")
        answer_id = new_id()
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            repo.insert_answer(
                conn,
                {
                    "id": answer_id,
                    "site": row.site,
                    "device": None,
                    "dispatch_id": dispatch_id,
                    "notify_id": None,
                    "officer": officer,
                    "answer": answer.value,
                    "ts": now,
                    "note": note,
                    "lon": location.lon if location else None,
                    "lat": location.lat if location else None,
                    "received_at": now,
                    "outcome": None,
                },
            )
        outcome, reason = self.process_answer(answer_id)
        if outcome == "refused":
            raise AnswerRefused(f"answer refused: {reason}")
        return self.get(dispatch_id)

    def process_answers(self, answer_ids: Sequence[str]) -> None:
        """Ingest's after-store hook: decide each newly stored answer; a failure is counted
        and logged (the sweeper retries what stays undecided), never raised into ingest."""
        for answer_id in answer_ids:
            try:
                self.process_answer(answer_id)
            except Exception:
                self.count("answer_errors")
                log.exception("dispatch answer %s failed; the sweeper retries it", answer_id)

    def process_answer(self, answer_id: str) -> tuple[str | None, str | None]:
        """Decide one stored answer (once, whichever hub gets there first)."""
        now = self.clock.now()
        announce = _Announce()
        with self.engine.connect() as conn:
            stored = repo.answer(conn, answer_id)
        if stored is None or stored.outcome is not None:
            return (stored.outcome if stored else None), None
        with write_transaction(self.engine) as conn:
            dispatch = repo.get(conn, stored.dispatch_id)
            incident = repo.lock_incident(conn, dispatch.incident_id) if dispatch else None
            dispatch = repo.get(conn, stored.dispatch_id, for_update=True) if dispatch else None
            reason = self._refusal(stored, dispatch)
            outcome = "refused" if reason else "accepted"
            if not repo.claim_answer(conn, answer_id, outcome, reason):
                self.count("answers_lost")
                return None, None
            if reason is not None or dispatch is None or incident is None:
                self._refuse(conn, stored, reason or "unknown_dispatch")
            else:
                self._apply(conn, stored, dispatch, incident, now, announce)
        if reason is None:
            self.count("answers_accepted")
        self._announce(announce)
        return outcome, reason

    @staticmethod
    def _refusal(stored: Any, dispatch: Any | None) -> str | None:
        if dispatch is None:
            return "unknown_dispatch"
        if stored.device is not None and stored.device != dispatch.device:
            return "wrong_device"
        if stored.officer != dispatch.officer:
            return "wrong_officer"
        if stored.notify_id is not None and stored.notify_id != dispatch.notify_id:
            return "wrong_notify"
        if dispatch.state in CLOSED_STATES:
            return "dispatch_closed"
        return None

    def _refuse(self, conn: Connection, stored: Any, reason: str) -> None:
        self.count(f"refused_{reason}")
        details = {
            "answer": stored.id,
            "dispatch": stored.dispatch_id,
            "device": stored.device,
            "officer": stored.officer,
            "reason": reason,
        }
        self._audit(
            conn,
            stored.device or stored.officer,
            "dispatch.answer_refused",
            stored.dispatch_id,
            details,
        )
        log.warning(
            "dispatch answer %s refused (%s) from device %s", stored.id, reason, stored.device
        )

    def _apply(  # noqa: PLR0917
        self,
        conn: Connection,
        stored: Any,
        dispatch: Any,
        incident: Any,
        now: datetime,
        announce: _Announce,
    ) -> None:
        answer = OfficerAnswer(stored.answer)
        officer = str(dispatch.officer)
        incident_id = str(dispatch.incident_id)
        first_yes = (
            dispatch.state in ("notified", "timed_out") and answer is not OfficerAnswer.REJECT
        )
        if answer is OfficerAnswer.REJECT:
            state = "rejected"
        else:
            target = ANSWER_STATE[answer]
            state = target if PROGRESS[target] > PROGRESS[dispatch.state] else dispatch.state
        repo.update_state(
            conn,
            str(dispatch.id),
            (dispatch.state,),
            {"state": state, "last_answer": answer.value, "answered_at": now, "updated_at": now},
        )
        location = {"lon": stored.lon, "lat": stored.lat} if stored.lon is not None else None
        details = {
            "dispatch": str(dispatch.id),
            "officer": officer,
            "answer": answer.value,
            "state": state,
            "note": stored.note,
            "location": location,
            "via": "mqtt" if stored.device else "http",
            "message": stored.id,
        }
        self._audit(conn, officer, "dispatch.answer", incident_id, details)
        self._timeline(conn, incident_id, officer, now, change="answered", **details)
        announce.add(
            "answered", incident_id, str(dispatch.id), officer=officer, answer=answer.value
        )
        open_incident = IncidentState(incident.state) in OPEN_STATES
        if first_yes and open_incident:
            incident = self._assign_if_free(conn, incident, officer, now, announce)
        if answer is OfficerAnswer.ON_MY_WAY and open_incident:
            self._start_work(conn, incident, officer, now, announce)
        elif answer is OfficerAnswer.REJECT and open_incident:
            self._replace(conn, incident, dispatch, now, announce)
        elif answer is OfficerAnswer.NEED_BACKUP and open_incident:
            self._backup(conn, incident, dispatch, now, announce)

    def _assign_if_free(
        self, conn: Connection, incident: Any, officer: str, now: datetime, announce: _Announce
    ) -> Any:
        if incident.assignee is not None or IncidentState(incident.state) is not IncidentState.NEW:
            return incident
        return self._move(
            conn,
            incident,
            officer,
            now,
            announce,
            target=IncidentState.ASSIGNED,
            kind=EventKind.ASSIGNED,
            action="incident.assign",
            values={"assignee": officer},
            details={"assignee": officer, "previous": None},
        )

    def _start_work(
        self, conn: Connection, incident: Any, officer: str, now: datetime, announce: _Announce
    ) -> None:
        if incident.assignee != officer or incident.state != IncidentState.ASSIGNED.value:
            return
        self._move(
            conn,
            incident,
            officer,
            now,
            announce,
            target=IncidentState.IN_PROGRESS,
            kind=EventKind.STATE,
            action="incident.start",
            values={},
            details={},
        )

    def _move(
        self,
        conn: Connection,
        incident: Any,
        officer: str,
        now: datetime,
        announce: _Announce,
        *,
        target: IncidentState,
        kind: EventKind,
        action: str,
        values: dict[str, Any],
        details: dict[str, Any],
    ) -> Any:
        """An incident transition an officer's answer made: the row (version bumped), its
        timeline event and audit record, in the answer's transaction."""
        incident_id = str(incident.id)
        check_transition(IncidentState(incident.state), target)
        changed = {**values, "state": target.value, "updated_at": now}
        incidents_repo.update_versioned(conn, incident_id, int(incident.version), changed)
        incidents_repo.add_event(
            conn,
            incident_id,
            ts=now,
            actor=officer,
            kind=kind,
            from_state=incident.state,
            to_state=target.value,
            details={**details, "via": "dispatch"},
        )
        self._audit(conn, officer, action, incident_id, {**details, "via": "dispatch"})
        announce.incidents[incident_id] = action
        return incidents_repo.get(conn, incident_id)

    def _replace(
        self, conn: Connection, incident: Any, dispatch: Any, now: datetime, announce: _Announce
    ) -> None:
        """Someone declined: ask the next officer at once, in the incident's current round
        (whose timer is stretched to give them the full time) or, when that round has fired,
        in a round of its own."""
        rounds = repo.rounds_of(conn, str(incident.id))
        latest = rounds[-1] if rounds else None
        ring_from = min(int(dispatch.round), len(self.config.rings) - 1)
        found = self._one_more(conn, incident, ring_from, now)
        if found is None:
            if not any(r.fired_at is None and not r.cancelled for r in rounds) and not any(
                d.state in repo.OPEN_STATES for d in repo.of_incident(conn, str(incident.id))
            ):
                self._unanswered(conn, incident, now, announce)
            return
        _, candidate = found
        due = now + timedelta(seconds=self.config.ack_timeout_s)
        if latest is not None and latest.fired_at is None and not latest.cancelled:
            round_no = int(latest.round)
            repo.stretch_round(conn, int(latest.id), due)
        else:
            round_no = int(latest.round) + 1 if latest is not None else 0
            repo.insert_round(conn, str(incident.id), round_no, due)
        self._notify(
            conn,
            incident,
            candidate,
            round_no,
            ExpectedAction(dispatch.action),
            now,
            due,
            announce,
            alert_id=dispatch.alert_id,
            actor=ACTOR,
        )
        self.count("replaced")

    def _backup(
        self, conn: Connection, incident: Any, dispatch: Any, now: datetime, announce: _Announce
    ) -> None:
        found = self._one_more(conn, incident, 0, now)
        if found is None:
            self._unanswered(conn, incident, now, announce, key="dispatch.no_backup")
            return
        _, candidate = found
        rounds = repo.rounds_of(conn, str(incident.id))
        round_no = int(rounds[-1].round) if rounds else 0
        self._notify(
            conn,
            incident,
            candidate,
            round_no,
            ExpectedAction.ASSIST,
            now,
            now + timedelta(seconds=self.config.ack_timeout_s),
            announce,
            alert_id=dispatch.alert_id,
            actor=ACTOR,
        )
        self.count("backup")

    def _one_more(
        self, conn: Connection, incident: Any, ring_from: int, now: datetime
    ) -> tuple[int, Candidate] | None:
        statuses, _ = self._statuses(conn)
        asked = {d.officer for d in repo.of_incident(conn, str(incident.id))}
        return policy.next_in_rings(
            statuses,
            ring_from,
            self.config.rings,
            self._point(incident),
            repo.team_usernames(conn, incident.cell_id),
            asked,
            now,
            self.config.offline_after_s,
            incident_id=str(incident.id),
        )

    # --- the sweeper -------------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> int:
        """One pass: receipts, undecided answers, due rounds; returns rounds this hub fired."""
        now = now or self.clock.now()
        with write_transaction(self.engine) as conn:
            delivered = repo.mark_delivered(conn)
        if delivered:
            self.count("delivered", len(delivered))
        with self.engine.connect() as conn:
            undecided = repo.unprocessed_answers(conn, SWEEP_BATCH)
        self.process_answers(undecided)
        with self.engine.connect() as conn:
            due = repo.due_rounds(conn, now, SWEEP_BATCH)
        fired = 0
        for round_row in due:
            if self._sweeper.stopping:
                break
            try:
                if self._fire(round_row, now):
                    fired += 1
            except Exception:
                self.count("round_errors")
                log.exception(
                    "dispatch round %s of incident %s failed; it stays due",
                    round_row.round,
                    round_row.incident_id,
                )
        return fired

    def _fire(self, round_row: Any, now: datetime) -> bool:
        announce = _Announce()
        incident_id = str(round_row.incident_id)
        with write_transaction(self.engine) as conn:
            incident = repo.lock_incident(conn, incident_id)
            if incident is None or IncidentState(incident.state) not in OPEN_STATES:
                repo.cancel_rounds(conn, incident_id)
                self.count("rounds_skipped")
                return False
            if not repo.claim_round(conn, int(round_row.id), now, self.hub_id):
                self.count("rounds_lost")
                return False
            timed_out = repo.time_out_round(conn, incident_id, int(round_row.round), now)
            for dispatch_id in timed_out:
                announce.add("widened", incident_id, dispatch_id)
            dispatched = repo.of_incident(conn, incident_id)
            taken = any(d.state in (*repo.BUSY_STATES, "done") for d in dispatched)
            pending = any(d.state == "notified" for d in dispatched)
            details = {
                "round": int(round_row.round),
                "timed_out": timed_out,
                "hub": self.hub_id,
            }
            self._audit(conn, ACTOR, "dispatch.round", incident_id, details)
            if not taken and not pending:
                self._timeline(conn, incident_id, ACTOR, now, change="widened", **details)
                self._ask_from(conn, incident, int(round_row.round) + 1, now, announce)
        self.count("rounds_fired")
        self._announce(announce)
        return True

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
        if announce.notified:
            self.outbox.wake()
        if self.announce_incident is not None and announce.incidents:
            with self.engine.connect() as conn:
                rows = [(incidents_repo.get(conn, i), a) for i, a in announce.incidents.items()]
            for row, action in rows:
                if row is not None:
                    self.announce_incident(row, action)
        if not announce.events:
            return
        ids = {d for _, d, _, _, _ in announce.events if d is not None}
        with self.engine.connect() as conn:
            found = {r.id: r for r in repo.by_ids(conn, ids)}
            sites = {}
            for _, _, incident_id, _, _ in announce.events:
                if incident_id not in sites:
                    row = incidents_repo.get(conn, incident_id)
                    sites[incident_id] = row
        events = []
        for change, dispatch_id, incident_id, officer, answer in announce.events:
            incident = sites.get(incident_id)
            if incident is None or (dispatch_id is not None and dispatch_id not in found):
                continue  # rolled back: nothing happened
            row = found.get(dispatch_id) if dispatch_id else None
            events.append(
                LiveEvent(
                    Layer.DISPATCH,
                    incident.site,
                    {
                        "change": change,
                        "incident_id": incident_id,
                        "dispatch": dispatch_json(row) if row is not None else None,
                        "officer": officer or (row.officer if row is not None else None),
                        "answer": answer,
                    },
                    incident.lon,
                    incident.lat,
                )
            )
        self.live.publish(events)


def _iso(ts: datetime | None) -> str | None:
    return as_utc(ts).isoformat() if ts is not None else None


def dispatch_json(row: Any) -> dict[str, Any]:
    """The dispatch object of the API and the live stream."""
    return {
        "id": row.id,
        "incident_id": row.incident_id,
        "officer": row.officer,
        "device": row.device,
        "round": row.round,
        "action": row.action,
        "state": row.state,
        "distance_m": row.distance_m,
        "notified_at": _iso(row.notified_at),
        "respond_by": _iso(row.respond_by),
        "last_answer": row.last_answer,
        "answered_at": _iso(row.answered_at),
        "notify_id": row.notify_id,
        "delivered_at": _iso(row.delivered_at),
    }
