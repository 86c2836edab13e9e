"""Incident rules: opening (from alerts, field reports, operators), routing, assignment,
transitions, comments, links and attachments; every change audited and written to the
timeline, and handed to the deadline hook (hub/incidents/deadlines.py) in its transaction.

Optimistic concurrency: the fields an operator edits (state, assignee, category, level, title,
description) carry ``version``; a change made from a stale view is refused with a conflict.
Alerts joining an incident, comments and links do not bump the version, so a busy alert group
never makes an operator's assignment fail.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from edge.validators import new_id
from hub.audit import AuditTrail, write_transaction
from hub.audit.service import append as audit_append
from hub.auth import Role
from hub.clock import Clock, SystemClock
from hub.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge, Unsupported
from hub.geo.locate import CellLocator
from hub.incidents import alert_rules, deadlines, repository
from hub.incidents.alert_rules import StoredAlert
from hub.incidents.config import AlertRule, IncidentsConfig
from hub.incidents.model import (
    DONE_STATES,
    EventKind,
    IncidentLevel,
    IncidentSource,
    IncidentState,
    check_transition,
)
from hub.incidents.repository import IncidentFilter, aware
from hub.incidents.routing import RouteDecision, RouteQuery, Router
from hub.live import Layer, LiveEvent
from hub.notifications.repository import notify
from hub.org import repository as org
from hub.snapshots import SnapshotRefusedError, reencode_jpeg

log = logging.getLogger(__name__)

ALERT_RULES_ACTOR = "system:alert-rules"
TITLE_MAX = 200
TEXT_MAX = 20_000
FILENAME_MAX = 200
LINKED_ALERTS_SHOWN = 500
ASSIGNEES_SHOWN = 500
EVENT_IDS_MAX = 50  # alert ids listed in one ALERT_LINKED timeline event
RETRIES = 5


class IncidentNotFound(NotFound):
    pass


class UnknownCategory(Invalid):
    pass


class StaleVersion(Conflict):
    pass


class UnknownAssignee(Invalid):
    pass


class AttachmentNotFound(NotFound):
    pass


@dataclass(slots=True)
class _GroupResult:
    opened: int = 0
    joined: int = 0
    linked: int = 0
    already_linked: int = 0
    rows: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NewIncident:
    site: str
    source: IncidentSource
    category: str
    level: IncidentLevel
    title: str
    description: str = ""
    lon: float | None = None
    lat: float | None = None
    cell_id: str | None = None  # None: located from lon/lat


@dataclass(frozen=True, slots=True)
class Attachment:
    data: bytes
    content_type: str
    filename: str


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    row: Any
    events: list[Any]
    alerts: list[Any]
    evidence_ids: list[str]
    attachments: list[Any]


@dataclass(slots=True)
class AlertIntakeStats:
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    healthy: bool = True  # False while the last pass failed (the hub reports it degraded)

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


# What an upload may be, by declared type: (kind, magic-byte check). Photos are re-encoded.
VOICE_TYPES = {
    "audio/mpeg": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
    "audio/ogg": (b"OggS",),
    "audio/webm": (b"\x1a\x45\xdf\xa3",),
    "audio/wav": (b"RIFF",),
    "audio/mp4": (),  # checked by the ftyp box below
}


def _check_text(name: str, value: str, limit: int, *, required: bool = False) -> str:
    if "\x00" in value:
        raise Invalid(f"{name} contains a NUL character")
    if len(value) > limit:
        raise TooLarge(f"{name} is {len(value)} characters; the limit is {limit}")
    if required and not value.strip():
        raise Invalid(f"{name} is required")
    return value


ChangeResult = tuple[dict[str, Any], list[dict[str, Any]]]
Changer = Callable[[Connection, Any, datetime], ChangeResult]


class IncidentService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        config: IncidentsConfig | None = None,
        clock: Clock | None = None,
        *,
        zone: tzinfo = UTC,
        locator: CellLocator | None = None,
        on_change: Callable[[Any, str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.config = config or IncidentsConfig()
        self.clock = clock or SystemClock()
        self.router = Router(self.config.routing, zone)
        self.locator = locator or CellLocator(engine)
        self.intake = AlertIntakeStats()
        # Called after commit with each changed incident row and the audited action that
        # changed it (the live map's hook: every operator sees every other's change).
        self.on_change = on_change
        # Called inside the transaction that opens (action ``incident.open``, with the alert
        # that opened it) or changes an incident, with its new row: dispatch asks officers in
        # the same transaction, so a second replica never asks them again.
        self.in_transaction: Callable[[Connection, Any, str, str | None], None] | None = None

    # --- reading ----------------------------------------------------------------------------

    def get(self, incident_id: str) -> Any:
        with self.engine.connect() as conn:
            row = repository.get(conn, incident_id)
        if row is None:
            raise IncidentNotFound(f"no incident {incident_id!r}")
        return row

    def detail(self, incident_id: str) -> IncidentDetail:
        with self.engine.connect() as conn:
            row = repository.get(conn, incident_id)
            if row is None:
                raise IncidentNotFound(f"no incident {incident_id!r}")
            return IncidentDetail(
                row,
                repository.events(conn, incident_id),
                repository.linked_alerts(conn, incident_id, limit=LINKED_ALERTS_SHOWN),
                repository.linked_evidence_ids(conn, incident_id),
                repository.attachments_meta(conn, incident_id),
            )

    def assignees(self, incident_id: str) -> tuple[list[Any], list[Any]]:
        """Whom the dashboard offers to assign to: the active members of the team responsible
        for the incident's cell, and the active officers (the first ``ASSIGNEES_SHOWN``)."""
        with self.engine.connect() as conn:
            row = repository.get(conn, incident_id)
            if row is None:
                raise IncidentNotFound(f"no incident {incident_id!r}")
            team = repository.cell_team_members(conn, row.cell_id) if row.cell_id else []
            officers = repository.active_users_of_role(
                conn, Role.OFFICER.value, limit=ASSIGNEES_SHOWN
            )
        return team, officers

    def page(self, f: IncidentFilter, *, limit: int, after: str | None) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.page(conn, f, limit=limit, after=after)

    def count(self, f: IncidentFilter) -> int:
        """How many incidents ``f`` selects (the figure a list's pages add up to)."""
        with self.engine.connect() as conn:
            return repository.count(conn, f)

    # --- opening ----------------------------------------------------------------------------

    def open_in(
        self,
        conn: Connection,
        actor: str,
        new: NewIncident,
        *,
        incident_id: str | None = None,
        alert: StoredAlert | None = None,
    ) -> Any:
        """Open an incident inside the caller's (audited) transaction; returns its row.

        Locates the cell from lon/lat when no cell is given, routes it to a department, and
        hands it to the deadline hook, all in the caller's transaction. With ``alert`` (a
        confirmed face match: hub/matches) the incident is opened from that stored alert: it
        is linked before the hook runs, so dispatch sees the alert it was opened for.
        """
        return self._insert(
            conn, actor, new, incident_id or new_id(), self.clock.now(), alert=alert
        )

    def open(self, actor: str, new: NewIncident) -> Any:
        incident_id = new_id()
        details = {"source": new.source.value, "category": new.category, "level": new.level}
        with self.audit.change(actor, "incident.open", incident_id, details) as conn:
            row = self._insert(conn, actor, new, incident_id, self.clock.now())
        self._changed(row, "incident.open")
        return row

    def _check_new(self, new: NewIncident) -> None:
        if self.config.category(new.category) is None:
            raise UnknownCategory(f"unknown incident category {new.category!r}")
        IncidentLevel(new.level)
        _check_text("title", new.title, TITLE_MAX, required=True)
        _check_text("description", new.description, TEXT_MAX)
        if (new.lon is None) != (new.lat is None):
            raise Invalid("give both lon and lat, or neither")
        if (
            new.lon is not None
            and new.lat is not None
            and not (-180 <= new.lon <= 180 and -90 <= new.lat <= 90)
        ):
            raise Invalid(f"[{new.lon}, {new.lat}] is outside WGS84 lon/lat range")

    def _insert(
        self,
        conn: Connection,
        actor: str,
        new: NewIncident,
        incident_id: str,
        now: datetime,
        *,
        group: dict[str, Any] | None = None,
        alert: StoredAlert | None = None,
    ) -> Any:
        self._check_new(new)
        cell_id = new.cell_id
        if cell_id is None and new.lon is not None and new.lat is not None:
            cell_id = self.locator.cell_at(new.site, new.lon, new.lat, conn)
        decision = self.route_in(
            conn,
            RouteQuery(new.category, IncidentLevel(new.level), now, cell_id, new.lon, new.lat),
        )
        repository.insert(
            conn,
            {
                "id": incident_id,
                "number": repository.next_number(conn),
                "site": new.site,
                "source": new.source.value,
                "category": new.category,
                "level": IncidentLevel(new.level).value,
                "title": new.title,
                "description": new.description,
                "cell_id": cell_id,
                "lon": new.lon,
                "lat": new.lat,
                "department_id": decision.department,
                "routing_rule": decision.rule,
                "state": IncidentState.NEW.value,
                "escalation_stage": 0,
                "alert_count": 0,
                "opened_by": actor,
                "created_at": now,
                "updated_at": now,
                "version": 1,
                **(group or {}),
            },
        )
        repository.add_event(
            conn,
            incident_id,
            ts=now,
            actor=actor,
            kind=EventKind.CREATED,
            to_state=IncidentState.NEW,
            details={"source": new.source.value, "category": new.category, "cell": cell_id},
        )
        repository.add_event(
            conn,
            incident_id,
            ts=now,
            actor=actor,
            kind=EventKind.ROUTED,
            details={
                "rule": decision.rule,
                "department": decision.department,
                "tried": [[s.rule, s.reason] for s in decision.trace],
            },
        )
        if alert is not None:
            repository.link_alert(conn, incident_id, alert.id, now)
            repository.set_alert_stats(
                conn, incident_id, alert_count=1, first_at=alert.ts, last_at=alert.ts, now=now
            )
            repository.add_event(
                conn,
                incident_id,
                ts=now,
                actor=actor,
                kind=EventKind.ALERT_LINKED,
                details={"count": 1, "alerts": [alert.id]},
            )
        row = repository.get(conn, incident_id)
        deadlines.on_change(conn, self.config, row, now)
        row = repository.get(conn, incident_id)
        if group is None and self.in_transaction is not None:
            self.in_transaction(conn, row, "incident.open", alert.id if alert else None)
        return row

    # --- routing ----------------------------------------------------------------------------

    def route_in(self, conn: Connection, query: RouteQuery) -> RouteDecision:
        def lookup(cell: str, line: str) -> str | None:
            return org.department_for_cell(conn, cell, line)

        return self.router.route(query, lookup)

    def dry_run(
        self,
        site: str,
        category: str,
        level: IncidentLevel,
        *,
        cell_id: str | None = None,
        lon: float | None = None,
        lat: float | None = None,
        at: datetime | None = None,
    ) -> tuple[RouteDecision, str | None, list[str]]:
        """The decision routing would make, the cell it used, and configuration warnings."""
        if self.config.category(category) is None:
            raise UnknownCategory(f"unknown incident category {category!r}")
        if at is not None and at.tzinfo is None:
            raise Invalid("at must be a timestamp with a time zone")
        with self.engine.connect() as conn:
            if cell_id is None and lon is not None and lat is not None:
                cell_id = self.locator.cell_at(site, lon, lat, conn)
            query = RouteQuery(category, level, at or self.clock.now(), cell_id, lon, lat)
            decision = self.route_in(conn, query)
            warnings = self._department_warnings(conn)
        if decision.department is not None and not self._department_known(decision.department):
            warnings.append(
                f"rule {decision.rule!r} chose unknown department {decision.department!r}"
            )
        return decision, cell_id, sorted(set(warnings))

    def check_departments(self) -> list[str]:
        """Warnings for routing rules naming a department the database does not hold."""
        with self.engine.connect() as conn:
            return self._department_warnings(conn)

    def _department_warnings(self, conn: Connection) -> list[str]:
        return [
            f"routing rule {r.name!r} names unknown department {r.department!r}"
            for r in self.router.rules
            if r.department is not None and org.department(conn, r.department) is None
        ]

    def _department_known(self, department_id: str) -> bool:
        with self.engine.connect() as conn:
            return org.department(conn, department_id) is not None

    # --- alerts -----------------------------------------------------------------------------

    def intake_batch(self, alerts: Sequence[StoredAlert]) -> None:
        """:meth:`process_alerts` for ingest's after-store callback: a failure is counted and
        logged, never raised, so it can never stop ingest (the alerts are stored already;
        linking them is retried by nobody, which the counter makes visible)."""
        try:
            self.process_alerts(alerts)
        except Exception:
            self.intake.add("errors")
            self.intake.healthy = False
            log.exception("alert rules failed for a batch of %d alerts", len(alerts))
        else:
            self.intake.healthy = True

    def process_alerts(self, alerts: Sequence[StoredAlert]) -> int:
        """Run freshly stored alerts through the alert rules: open an incident per new group,
        link the rest to their group's open incident. Idempotent: an alert already linked is
        skipped. Returns how many alerts were linked.

        The whole batch is one transaction (a commit per group would cost more than the
        work). When it collides with another replica (a group opened meanwhile: the unique
        group key; a deadlock between row locks) it is rolled back and every group is redone
        in a transaction of its own, each retried until it sees the other replica's work."""
        groups = self._grouped(alerts)
        if not groups:
            return 0
        try:
            with write_transaction(self.engine) as conn:
                results = [self._apply_group(conn, key, *g) for key, g in groups]
        except (IntegrityError, OperationalError) as err:
            self.intake.add("batch_fallbacks")
            log.debug("alert batch collided (%s); one transaction per group", type(err).__name__)
            results = [self._group_alone(key, *g) for key, g in groups]
        linked = 0
        for result in results:
            linked += self._after_group(result)
        return linked

    def _grouped(
        self, alerts: Sequence[StoredAlert]
    ) -> list[tuple[str, tuple[AlertRule, str | None, list[StoredAlert]]]]:
        """The batch's matching alerts by group key, each group in time order; groups with a
        live incident first, then new ones, each part by key (one lock order for replicas)."""
        groups: dict[str, tuple[AlertRule, str | None, list[StoredAlert]]] = {}
        # A device reports from one place: locate each distinct point once per batch.
        cells: dict[tuple[str, float, float], str | None] = {}
        with self.engine.connect() as conn:
            for alert in sorted(alerts, key=lambda a: (a.ts, a.id)):
                rule = alert_rules.first_match(self.config.alert_rules, alert)
                if rule is None:
                    self.intake.add("alerts_unmatched")
                    continue
                cell_id = None
                if alert.lon is not None and alert.lat is not None:
                    point = (alert.site, alert.lon, alert.lat)
                    if point not in cells:
                        cells[point] = self.locator.cell_at(*point, conn)
                    cell_id = cells[point]
                key = alert_rules.group_key(rule, alert, cell_id)
                groups.setdefault(key, (rule, cell_id, []))[2].append(alert)
            live = repository.live_groups(conn, list(groups))
        return sorted(groups.items(), key=lambda kv: (kv[0] not in live, kv[0]))

    def _group_alone(
        self, key: str, rule: AlertRule, cell_id: str | None, alerts: list[StoredAlert]
    ) -> _GroupResult:
        for attempt in range(RETRIES):
            try:
                with write_transaction(self.engine) as conn:
                    return self._apply_group(conn, key, rule, cell_id, alerts)
            except (IntegrityError, OperationalError) as err:
                # Another replica opened or joined this group meanwhile: read it again.
                self.intake.add("group_retries")
                if attempt == RETRIES - 1:
                    raise
                log.debug("alert group %s collided (%s); retrying", key, type(err).__name__)
        raise AssertionError("unreachable")

    def _apply_group(
        self,
        conn: Connection,
        key: str,
        rule: AlertRule,
        cell_id: str | None,
        alerts: list[StoredAlert],
    ) -> _GroupResult:
        """Every alert of one group, in the caller's transaction: join the live incident
        while within its window, open a new one when the window has closed."""
        result = _GroupResult()
        fresh = set(repository.fresh_alert_ids(conn, [a.id for a in alerts]))
        pending = [a for a in alerts if a.id in fresh]
        result.already_linked = len(alerts) - len(pending)
        window = timedelta(seconds=rule.group_window_s)
        now = self.clock.now()
        while pending:
            current = repository.by_group(conn, key, for_update=True)
            first = pending[0]
            last = aware(current.last_alert_at) if current is not None else None
            opened: dict[str, Any] | None = None
            if current is not None and last is not None and first.ts < last + window:
                target = current.id
                first_at = aware(current.first_alert_at) or first.ts
                count = int(current.alert_count)
                result.joined += 1
            else:
                target = new_id()
                details: dict[str, Any] = {"group": key, "rule": rule.name}
                if current is not None:  # the old group's window closed: it stops grouping
                    repository.release_group(conn, current.id)
                    details["released"] = current.id
                last = first_at = first.ts
                count = 0
                self._insert(
                    conn,
                    ALERT_RULES_ACTOR,
                    NewIncident(
                        site=first.site,
                        source=IncidentSource.ALERT,
                        category=rule.category,
                        level=rule.level,
                        title=(first.title or first.kind)[:TITLE_MAX],
                        lon=first.lon,
                        lat=first.lat,
                        cell_id=cell_id,
                    ),
                    target,
                    now,
                    group={"group_key": key, "first_alert_at": last, "last_alert_at": last},
                )
                opened = details
                result.opened += 1
            taken: list[StoredAlert] = []
            for alert in pending:
                if alert.ts >= last + window:
                    break
                taken.append(alert)
                last = max(last, alert.ts)
                first_at = min(first_at, alert.ts)
            repository.link_alerts(conn, target, [a.id for a in taken], now)
            pending = pending[len(taken) :]
            repository.set_alert_stats(
                conn,
                target,
                alert_count=count + len(taken),
                first_at=first_at,
                last_at=last,
                now=now,
            )
            repository.add_event(
                conn,
                target,
                ts=now,
                actor=ALERT_RULES_ACTOR,
                kind=EventKind.ALERT_LINKED,
                details={"count": len(taken), "alerts": [a.id for a in taken[:EVENT_IDS_MAX]]},
            )
            if opened is not None and self.in_transaction is not None:
                self.in_transaction(conn, repository.get(conn, target), "incident.open", first.id)
            if opened is not None:
                # Opening is audited (a decision the rules took); alerts joining an open
                # incident are ingest data, on its timeline, and like ingest not audited.
                opened["alerts"] = len(taken)
                audit_append(
                    conn,
                    ALERT_RULES_ACTOR,
                    "incident.open",
                    target,
                    opened,
                    key=self.audit.settings.key,
                    clock=self.audit.clock,
                )
            result.linked += len(taken)
            result.rows.append(repository.get(conn, target))
        return result

    def _after_group(self, result: _GroupResult) -> int:
        """Counters and live events, once the transaction has committed."""
        self.intake.add("incidents_opened", result.opened)
        self.intake.add("groups_joined", result.joined)
        self.intake.add("alerts_linked", result.linked)
        if result.already_linked:
            self.intake.add("alerts_already_linked", result.already_linked)
        for row in result.rows:
            self._changed(row, "incident.alerts")
        return result.linked

    # --- changes ----------------------------------------------------------------------------

    def _change(  # noqa: PLR0917 - private; every caller names the same five things
        self,
        actor: str,
        action: str,
        incident_id: str,
        version: int | None,
        changer: Changer,
        details: dict[str, Any] | None = None,
        *,
        versioned: bool = True,
    ) -> Any:
        now = self.clock.now()
        with self.audit.change(actor, action, incident_id, details) as conn:
            row = repository.get(conn, incident_id, for_update=True)
            if row is None:
                raise IncidentNotFound(f"no incident {incident_id!r}")
            if version is not None and row.version != version:
                raise StaleVersion(
                    f"incident {row.number} is at version {row.version}, not {version}: "
                    "reload it and try again"
                )
            values, events = changer(conn, row, now)
            values["updated_at"] = now
            if versioned:
                if not repository.update_versioned(conn, incident_id, row.version, values):
                    raise StaleVersion(f"incident {row.number} changed meanwhile: reload it")
            else:
                repository.update_plain(conn, incident_id, values)
            for event in events:
                repository.add_event(conn, incident_id, ts=now, actor=actor, **event)
            new = repository.get(conn, incident_id)
            deadlines.on_change(conn, self.config, new, now)
            new = repository.get(conn, incident_id)
            if self.in_transaction is not None:
                self.in_transaction(conn, new, action, None)
        self._changed(new, action)
        return new

    @staticmethod
    def _state_event(row: Any, target: IncidentState, text: str = "") -> dict[str, Any]:
        return {
            "kind": EventKind.STATE,
            "from_state": row.state,
            "to_state": target.value,
            "text": text,
        }

    def assign(self, actor: str, incident_id: str, assignee: str, version: int | None) -> Any:
        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            current = IncidentState(row.state)
            if current in DONE_STATES:
                raise Conflict(
                    f"incident {row.number} is {current.value}: reopen it (with a reason) first"
                )
            check_transition(current, IncidentState.ASSIGNED)
            if not repository.active_user(conn, assignee):
                raise UnknownAssignee(f"no active user {assignee!r} to assign to")
            _notify_assignee(conn, assignee, row, now)
            events = [
                {
                    "kind": EventKind.ASSIGNED,
                    "from_state": row.state,
                    "to_state": IncidentState.ASSIGNED.value,
                    "details": {"assignee": assignee, "previous": row.assignee},
                }
            ]
            return {"assignee": assignee, "state": IncidentState.ASSIGNED.value}, events

        return self._change(
            actor, "incident.assign", incident_id, version, change, {"assignee": assignee}
        )

    def _may_work(self, actor: str, row: Any, may_manage: bool) -> None:
        if not may_manage and row.assignee != actor:
            raise Forbidden(f"incident {row.number} is assigned to someone else")

    def start(self, actor: str, incident_id: str, version: int | None, *, may_manage: bool) -> Any:
        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            check_transition(IncidentState(row.state), IncidentState.IN_PROGRESS)
            self._may_work(actor, row, may_manage)
            return {"state": IncidentState.IN_PROGRESS.value}, [
                self._state_event(row, IncidentState.IN_PROGRESS)
            ]

        return self._change(actor, "incident.start", incident_id, version, change)

    def resolve(
        self, actor: str, incident_id: str, text: str, version: int | None, *, may_manage: bool
    ) -> Any:
        _check_text("text", text, TEXT_MAX, required=True)

        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            check_transition(IncidentState(row.state), IncidentState.RESOLVED)
            self._may_work(actor, row, may_manage)
            values = {"state": IncidentState.RESOLVED.value, "resolved_at": now, "group_key": None}
            return values, [self._state_event(row, IncidentState.RESOLVED, text)]

        return self._change(actor, "incident.resolve", incident_id, version, change)

    def close(self, actor: str, incident_id: str, text: str, version: int | None) -> Any:
        _check_text("text", text, TEXT_MAX)

        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            check_transition(IncidentState(row.state), IncidentState.CLOSED)
            values = {"state": IncidentState.CLOSED.value, "closed_at": now, "group_key": None}
            return values, [self._state_event(row, IncidentState.CLOSED, text)]

        return self._change(actor, "incident.close", incident_id, version, change)

    def reopen(self, actor: str, incident_id: str, reason: str, version: int | None) -> Any:
        _check_text("reason", reason, TEXT_MAX, required=True)

        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            current = IncidentState(row.state)
            if current not in DONE_STATES:
                raise Conflict(f"incident {row.number} is {current.value}, not resolved or closed")
            target = IncidentState.ASSIGNED if row.assignee else IncidentState.NEW
            check_transition(current, target)
            values = {"state": target.value, "resolved_at": None, "closed_at": None}
            return values, [self._state_event(row, target, reason)]

        return self._change(actor, "incident.reopen", incident_id, version, change)

    def edit(
        self,
        actor: str,
        incident_id: str,
        version: int | None,
        *,
        category: str | None = None,
        level: IncidentLevel | None = None,
        title: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Change what the incident is; its department stays (routing chose it when it
        opened; moving it is an assignment decision), its deadline follows."""
        if category is not None and self.config.category(category) is None:
            raise UnknownCategory(f"unknown incident category {category!r}")
        if title is not None:
            _check_text("title", title, TITLE_MAX, required=True)
        if description is not None:
            _check_text("description", description, TEXT_MAX)
        asked = {"category": category, "level": level, "title": title, "description": description}
        asked = {k: (v.value if isinstance(v, IncidentLevel) else v) for k, v in asked.items()}
        wanted = {k: v for k, v in asked.items() if v is not None}
        if not wanted:
            raise Invalid("nothing to change: give category, level, title or description")

        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            changed = {k: v for k, v in wanted.items() if getattr(row, k) != v}
            before = {k: getattr(row, k) for k in changed if k in ("category", "level")}
            after = {k: v for k, v in changed.items() if k in ("category", "level")}
            event = {
                "kind": EventKind.UPDATED,
                "details": {"before": before, "after": after, "fields": sorted(changed)},
            }
            return changed, [event] if changed else []

        return self._change(
            actor, "incident.edit", incident_id, version, change, {"fields": sorted(wanted)}
        )

    def comment(self, actor: str, incident_id: str, text: str) -> Any:
        _check_text("text", text, TEXT_MAX, required=True)

        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            return {}, [{"kind": EventKind.COMMENT, "text": text}]

        return self._change(actor, "incident.comment", incident_id, None, change, versioned=False)

    def accept(self, actor: str, incident_id: str, note: str) -> Any:
        """The assignee takes the task on: a timeline event, no state change (starting work is
        ``start``), so the version stays and a worker's accept never races an edit."""
        _check_text("note", note, TEXT_MAX, required=False)

        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            self._may_work(actor, row, may_manage=False)
            if IncidentState(row.state) is not IncidentState.ASSIGNED:
                raise Conflict(
                    f"incident {row.number} is {row.state}: only assigned tasks are accepted"
                )
            return {}, [{"kind": EventKind.ACCEPTED, "text": note}]

        return self._change(actor, "incident.accept", incident_id, None, change, versioned=False)

    def link_alert(self, actor: str, incident_id: str, alert_id: str) -> Any:
        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            if not repository.alert_exists(conn, alert_id):
                raise NotFound(f"no alert {alert_id!r}")
            if repository.is_alert_linked(conn, incident_id, alert_id):
                return {}, []  # linking twice is a no-op
            repository.link_alert(conn, incident_id, alert_id, now)
            values = {"alert_count": int(row.alert_count) + 1}
            return values, [{"kind": EventKind.ALERT_LINKED, "details": {"alerts": [alert_id]}}]

        return self._change(
            actor,
            "incident.link_alert",
            incident_id,
            None,
            change,
            {"alert": alert_id},
            versioned=False,
        )

    def link_evidence(self, actor: str, incident_id: str, evidence_id: str) -> Any:
        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            if not repository.evidence_exists(conn, evidence_id):
                raise NotFound(f"no evidence {evidence_id!r}")
            if repository.is_evidence_linked(conn, incident_id, evidence_id):
                return {}, []
            repository.link_evidence(conn, incident_id, evidence_id, now)
            event = {"kind": EventKind.EVIDENCE_LINKED, "details": {"evidence": evidence_id}}
            return {}, [event]

        return self._change(
            actor,
            "incident.link_evidence",
            incident_id,
            None,
            change,
            {"evidence": evidence_id},
            versioned=False,
        )

    # --- attachments ------------------------------------------------------------------------

    def add_attachment(self, actor: str, incident_id: str, upload: Attachment) -> Any:
        """Store a photo (re-encoded JPEG), voice note or PDF; returns its metadata row."""
        limits = self.config.attachments
        _check_text("filename", upload.filename, FILENAME_MAX)
        if len(upload.data) > limits.max_bytes:
            raise TooLarge(
                f"attachment is {len(upload.data)} bytes; the limit is {limits.max_bytes}"
            )
        if not upload.data:
            raise Invalid("attachment is empty")
        kind, data, width, height, content_type = _accept(upload)
        attachment_id = new_id()
        digest = _sha256(data)

        def change(conn: Connection, row: Any, now: datetime) -> ChangeResult:
            if repository.attachment_count(conn, incident_id) >= limits.max_per_incident:
                raise TooLarge(
                    f"incident {row.number} has {limits.max_per_incident} attachments already"
                )
            repository.insert_attachment(
                conn,
                {
                    "id": attachment_id,
                    "incident_id": incident_id,
                    "kind": kind,
                    "filename": upload.filename,
                    "content_type": content_type,
                    "sha256": digest,
                    "size_bytes": len(data),
                    "width": width,
                    "height": height,
                    "data": data,
                    "created_by": actor,
                    "created_at": now,
                },
            )
            event = {
                "kind": EventKind.ATTACHMENT,
                "details": {"attachment": attachment_id, "kind": kind, "size_bytes": len(data)},
            }
            return {}, [event]

        self._change(
            actor,
            "incident.attach",
            incident_id,
            None,
            change,
            {"attachment": attachment_id, "sha256": digest},
            versioned=False,
        )
        with self.engine.connect() as conn:
            return next(
                a for a in repository.attachments_meta(conn, incident_id) if a.id == attachment_id
            )

    def attachment(self, actor: str, incident_id: str, attachment_id: str) -> Any:
        """An attachment with its bytes; every download is audited."""
        with self.engine.connect() as conn:
            row = repository.attachment(conn, incident_id, attachment_id)
        if row is None:
            raise AttachmentNotFound(
                f"incident {incident_id!r} has no attachment {attachment_id!r}"
            )
        self.audit.record(
            actor, "incident.attachment_download", incident_id, {"attachment": attachment_id}
        )
        return row

    # --- after commit -----------------------------------------------------------------------

    def announce(self, row: Any, action: str) -> None:
        """Tell the live map about a change committed by a caller's own transaction
        (:meth:`open_in`); call after that transaction has committed."""
        self._changed(row, action)

    def _changed(self, row: Any, action: str) -> None:
        if self.on_change is None or row is None:
            return
        try:
            self.on_change(row, action)
        except Exception:  # the change is committed; a live-view failure must not undo it
            log.exception("incident change hook failed")


def incident_event(row: Any, change: str | None = None) -> LiveEvent:
    """The live map's view of a changed incident; ``change`` is the audited action
    (``incident.assign``, ``incident.comment``, ...) so a page knows what to re-read."""
    return LiveEvent(
        Layer.INCIDENTS,
        row.site,
        {
            "id": row.id,
            "number": row.number,
            "state": row.state,
            "category": row.category,
            "level": row.level,
            "cell_id": row.cell_id,
            "department_id": row.department_id,
            "assignee": row.assignee,
            "alert_count": row.alert_count,
            "version": row.version,
            "updated_at": _iso(aware(row.updated_at)),
            "change": change,
        },
        row.lon,
        row.lat,
    )


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def _notify_assignee(conn: Connection, username: str, row: Any, now: datetime) -> None:
    notify(
        conn,
        username,
        kind="incident_assigned",
        message_key="notify.incident_assigned",
        params={"number": row.number, "title": row.title},
        now=now,
        incident_id=row.id,
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _accept(upload: Attachment) -> tuple[str, bytes, int | None, int | None, str]:
    """(kind, stored bytes, width, height, content type) or a clear refusal."""
    ctype = upload.content_type.split(";")[0].strip().lower()
    data = upload.data
    if ctype in ("image/jpeg", "image/jpg"):
        try:
            snap = reencode_jpeg(data)
        except SnapshotRefusedError as err:
            raise Invalid(f"photo refused: {err}") from err
        return "photo", snap.data, snap.width, snap.height, "image/jpeg"
    if ctype in VOICE_TYPES:
        magics = VOICE_TYPES[ctype]
        ok = data[4:8] == b"ftyp" if ctype == "audio/mp4" else data.startswith(magics)
        if not ok:
            raise Invalid(f"the bytes are not {ctype}")
        return "voice", data, None, None, ctype
    if ctype == "application/pdf":
        if not data.startswith(b"%PDF-"):
            raise Invalid("the bytes are not a PDF")
        return "file", data, None, None, ctype
    raise Unsupported(
        f"attachments may be image/jpeg, application/pdf or {', '.join(sorted(VOICE_TYPES))}; "
        f"not {ctype!r}"
    )
