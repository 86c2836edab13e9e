"""Deadlines and timers with time travel (ManualClock), on SQLite and PostgreSQL: when each
timer fires, what it writes, what cancels, reopens and moves it, and what a failure costs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from hub.clock import ManualClock
from hub.incidents import deadline_repository
from hub.incidents.config import IncidentsConfig
from hub.incidents.deadline_config import DeadlinesConfig
from hub.incidents.deadlines import TimerKind, aware
from hub.incidents.model import IncidentLevel, IncidentState
from hub.incidents.timers import ACTOR, TimerSweeper
from hub.schema import audit_log, incident_timers, incidents, users
from hub.store import Store
from tests.support.incident_timers import (
    ASSIGNEE,
    DEPT_COMMANDER,
    SUPERVISOR,
    T0,
    World,
    seed_people,
    shared_audit,
)

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
S = timedelta(seconds=1)
LEVEL = IncidentLevel


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    store = Store(db_url)
    seed_people(store)
    yield World(store, shared_audit(store, tmp_path / "audit"), IncidentsConfig(), ManualClock(T0))
    store.close()


def fired_kinds(world: World, sweeper: TimerSweeper | None = None) -> list[str]:
    return sorted(f.kind.value for f in (sweeper or world.sweeper()).sweep())


def audit_actions(world: World, incident_id: str) -> list[str]:
    with world.store.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action)
            .where((audit_log.c.actor == ACTOR) & (audit_log.c.target == incident_id))
            .order_by(audit_log.c.seq)
        ).scalars()
        return list(rows)


def test_opening_sets_the_deadline_and_schedules_three_timers(world: World) -> None:
    row = world.open(level=LEVEL.MEDIUM)  # 24 h by default
    deadline = T0 + 24 * H
    assert aware(row.deadline_at) == deadline
    timers = world.timers(row.id)
    assert {k: aware(t.due_at) for k, t in timers.items()} == {
        "reminder": deadline - 6 * H,  # 25 % of 24 h
        "escalate_supervisor": deadline,
        "escalate_commander": deadline + 60 * MIN,
    }
    assert not any(t.cancelled or t.fired_at for t in timers.values())


def test_the_reminder_fires_before_the_deadline_and_not_before_its_time(world: World) -> None:
    row = world.open(level=LEVEL.CRITICAL)  # 1 h: 25 % is 15 min, above the 10 min floor
    world.clock.advance(45 * MIN - S)
    assert fired_kinds(world) == []
    world.clock.advance(S)
    assert fired_kinds(world) == ["reminder"]
    assert fired_kinds(world) == []  # once
    [note] = world.inbox(ASSIGNEE)
    assert note.message_key == "notify.incident_reminder"
    assert note.params["number"] == row.number
    assert note.incident_id == row.id
    [event] = world.events(row.id, "reminder")
    assert event.actor == ACTOR
    assert event.details["notified"] == [ASSIGNEE]
    assert world.get(row.id).escalation_stage == 0
    assert audit_actions(world, row.id) == ["incident.remind"]


def test_the_reminder_floor_applies_to_short_deadlines(world: World) -> None:
    world.config = IncidentsConfig(
        deadlines=DeadlinesConfig(
            hours_by_level={"low": 1, "medium": 1, "high": 0.5, "critical": 0.25},
            reminder_min_minutes=10,
        )
    )
    row = world.open(level=LEVEL.CRITICAL)  # 15 min: 25 % is 3.75 min, the floor says 10
    assert aware(world.timers(row.id)["reminder"].due_at) == T0 + 5 * MIN


def test_supervisor_at_the_deadline_then_commander_later(world: World) -> None:
    row = world.open(level=LEVEL.HIGH)  # 4 h
    world.clock.advance(4 * H - S)
    assert fired_kinds(world) == ["reminder"]
    world.clock.advance(S)
    assert fired_kinds(world) == ["escalate_supervisor"]
    assert world.get(row.id).escalation_stage == 1
    assert [n.message_key for n in world.inbox(SUPERVISOR)] == ["notify.incident_overdue"]
    world.clock.advance(60 * MIN - S)
    assert fired_kinds(world) == []
    world.clock.advance(S)
    assert fired_kinds(world) == ["escalate_commander"]
    assert world.get(row.id).escalation_stage == 2
    assert [n.message_key for n in world.inbox(DEPT_COMMANDER)] == ["notify.incident_escalated"]
    assert world.inbox("cmd-chen") == []  # the department named its commander
    assert len(world.events(row.id, "escalated")) == 2
    assert audit_actions(world, row.id) == [
        "incident.remind",
        "incident.escalate",
        "incident.escalate",
    ]


def test_every_active_commander_when_the_department_names_none(world: World) -> None:
    with world.store.engine.begin() as conn:
        conn.execute(update(users).where(users.c.username == DEPT_COMMANDER).values(active=False))
    row = world.open(level=LEVEL.CRITICAL)
    world.clock.advance(2 * H)
    assert fired_kinds(world) == ["escalate_commander", "escalate_supervisor", "reminder"]
    # The named commander is inactive: the stage-2 rung falls to every active commander.
    assert [n.message_key for n in world.inbox("cmd-chen")] == ["notify.incident_escalated"]
    assert world.inbox(DEPT_COMMANDER) == []
    assert world.get(row.id).escalation_stage == 2


def test_an_inactive_supervisor_passes_stage_one_to_the_commander(world: World) -> None:
    with world.store.engine.begin() as conn:
        conn.execute(update(users).where(users.c.username == SUPERVISOR).values(active=False))
    world.open(level=LEVEL.CRITICAL, assignee=None)
    world.clock.advance(1 * H)
    # reminder: no assignee, supervisor inactive: nobody; stage 1: the department's commander
    assert fired_kinds(world) == ["escalate_supervisor", "reminder"]
    assert [n.message_key for n in world.inbox(DEPT_COMMANDER)] == ["notify.incident_overdue"]
    assert world.inbox(SUPERVISOR) == []


def test_an_unrouted_incident_still_escalates_to_the_commanders(world: World) -> None:
    row = world.open(level=LEVEL.CRITICAL, department=None, assignee=None)
    world.clock.advance(2 * H)
    sweeper = world.sweeper()
    assert fired_kinds(world, sweeper) == ["escalate_commander", "escalate_supervisor", "reminder"]
    assert sweeper.stats["unrouted"] == 1  # the reminder had nobody; it is counted
    assert len(world.events(row.id, "reminder")) == 1  # still on the timeline
    assert sorted(n.message_key for n in world.inbox("cmd-chen")) == [
        "notify.incident_escalated",
        "notify.incident_overdue",
    ]


def test_resolving_cancels_every_timer(world: World) -> None:
    row = world.open(level=LEVEL.CRITICAL)
    world.clock.advance(10 * MIN)
    world.change(row.id, state=IncidentState.RESOLVED.value, resolved_at=world.clock.now())
    assert all(t.cancelled for t in world.timers(row.id).values())
    world.clock.advance(30 * 24 * H)
    assert fired_kinds(world) == []
    assert world.notification_count() == 0


def test_reopening_reschedules_from_the_reopening(world: World) -> None:
    row = world.open(level=LEVEL.CRITICAL)
    world.clock.advance(90 * MIN)
    assert fired_kinds(world) == ["escalate_supervisor", "reminder"]
    assert world.get(row.id).escalation_stage == 1
    world.change(row.id, state=IncidentState.CLOSED.value, closed_at=world.clock.now())
    world.clock.advance(3 * H)
    reopened_at = world.clock.now()
    world.change(row.id, state=IncidentState.ASSIGNED.value)
    after = world.get(row.id)
    assert aware(after.deadline_at) == reopened_at + H
    assert after.escalation_stage == 0
    timers = world.timers(row.id)
    assert all(t.fired_at is None and not t.cancelled for t in timers.values())
    assert aware(timers["escalate_commander"].due_at) == reopened_at + 2 * H
    world.clock.advance(H)
    assert fired_kinds(world) == ["escalate_supervisor", "reminder"]  # again, once each
    assert len(world.inbox(SUPERVISOR)) == 2


def test_relevelling_moves_the_timers_from_the_same_start(world: World) -> None:
    row = world.open(level=LEVEL.LOW)  # 72 h
    world.clock.advance(10 * MIN)
    world.change(row.id, level=LEVEL.CRITICAL.value)  # 1 h, counted from the opening
    assert aware(world.get(row.id).deadline_at) == T0 + H
    timers = world.timers(row.id)
    assert aware(timers["reminder"].due_at) == T0 + 45 * MIN
    assert aware(timers["escalate_commander"].due_at) == T0 + 2 * H
    world.clock.advance(50 * MIN)  # T0 + 60 min
    assert fired_kinds(world) == ["escalate_supervisor", "reminder"]
    world.change(row.id, level=LEVEL.MEDIUM.value)  # back to 24 h: fired timers stay fired
    timers = world.timers(row.id)
    assert timers["escalate_supervisor"].fired_at is not None
    assert aware(timers["escalate_commander"].due_at) == T0 + 25 * H
    world.clock.advance(24 * H)
    assert fired_kinds(world) == ["escalate_commander"]


def test_a_change_that_moves_no_deadline_writes_nothing(world: World) -> None:
    row = world.open()
    before = world.timers(row.id)
    world.clock.advance(MIN)
    world.change(row.id, state=IncidentState.ASSIGNED.value, assignee="someone")
    assert world.timers(row.id) == before


def test_relevelling_past_the_deadline_skips_the_reminder(world: World) -> None:
    row = world.open(level=LEVEL.LOW)
    world.clock.advance(2 * H)
    world.change(row.id, level=LEVEL.CRITICAL.value)  # deadline T0 + 1 h: already passed
    assert world.timers(row.id)["reminder"].cancelled
    assert fired_kinds(world) == ["escalate_commander", "escalate_supervisor"]


def test_a_category_override_sets_its_own_deadline(world: World) -> None:
    world.config = IncidentsConfig(
        deadlines=DeadlinesConfig(category_hours={"fire_hazard": {"medium": 2}})
    )
    fire = world.open(category="fire_hazard")
    other = world.open(category="garbage")
    assert aware(fire.deadline_at) == T0 + 2 * H
    assert aware(other.deadline_at) == T0 + 24 * H  # the level default


def test_a_timer_whose_incident_vanished_mid_sweep(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = world.open(level=LEVEL.CRITICAL)
    kept = world.open(level=LEVEL.CRITICAL)
    world.clock.advance(50 * MIN)
    real = deadline_repository.due_timers

    def due_then_delete(*args: Any, **kwargs: Any) -> Any:
        due = real(*args, **kwargs)
        with world.store.engine.begin() as conn:
            conn.execute(delete(incidents).where(incidents.c.id == gone.id))
        return due

    monkeypatch.setattr(deadline_repository, "due_timers", due_then_delete)
    fired = world.sweeper().sweep()
    assert [(f.incident_id, f.kind) for f in fired] == [(kept.id, TimerKind.REMINDER)]


def test_a_timer_of_an_incident_closed_behind_its_back_is_cancelled(world: World) -> None:
    row = world.open(level=LEVEL.CRITICAL)
    with world.store.engine.begin() as conn:  # a change that skipped on_change
        conn.execute(update(incidents).where(incidents.c.id == row.id).values(state="closed"))
    world.clock.advance(3 * H)
    sweeper = world.sweeper()
    assert sweeper.sweep() == []
    assert sweeper.stats["skipped"] == 3
    assert all(t.cancelled and t.fired_at is None for t in world.timers(row.id).values())
    assert world.notification_count() == 0


def test_a_failing_timer_is_counted_and_does_not_stop_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of one: the failing timer comes first and must not hold back the next page.
    world.config = IncidentsConfig(deadlines=DeadlinesConfig(sweep_batch=1))
    bad = world.open(level=LEVEL.CRITICAL)
    good = world.open(level=LEVEL.CRITICAL)
    world.clock.advance(50 * MIN)
    sweeper = world.sweeper()
    real: Callable[..., list[str]] = sweeper._recipients

    def broken(conn: Any, kind: TimerKind, incident: Any) -> list[str]:
        if incident.id == bad.id:
            raise RuntimeError("department directory exploded")
        return real(conn, kind, incident)

    monkeypatch.setattr(sweeper, "_recipients", broken)
    fired = sweeper.sweep()
    assert [f.incident_id for f in fired] == [good.id]
    assert sweeper.stats["failed"] == 1
    # Rolled back whole: the claim, the timeline, the inbox and the audit record.
    assert world.timers(bad.id)["reminder"].fired_at is None
    assert world.events(bad.id, "reminder") == []
    assert audit_actions(world, bad.id) == []
    monkeypatch.undo()
    assert [f.incident_id for f in world.sweeper().sweep()] == [bad.id]  # retried next sweep


def test_a_second_sweeper_finds_nothing_to_fire(world: World) -> None:
    world.open(level=LEVEL.CRITICAL)
    world.clock.advance(3 * H)
    a, b = world.sweeper("hub-a"), world.sweeper("hub-b")
    assert len(a.sweep()) == 3
    assert b.sweep() == []
    with world.store.engine.connect() as conn:
        fired_by = set(conn.execute(select(incident_timers.c.fired_by)).scalars())
    assert fired_by == {"hub-a"}


def test_a_claim_loses_to_an_earlier_one(world: World) -> None:
    row = world.open(level=LEVEL.CRITICAL)
    now = world.clock.advance(3 * H)
    timer_id = int(world.timers(row.id)["reminder"].id)
    with world.store.engine.begin() as conn:
        assert deadline_repository.claim(conn, timer_id, now=now, hub_id="hub-a")
        assert not deadline_repository.claim(conn, timer_id, now=now, hub_id="hub-b")


def test_a_claim_loses_to_a_move_later(world: World) -> None:
    """A sweeper read the timer as due, then a re-level moved it later: no firing."""
    row = world.open(level=LEVEL.CRITICAL)
    now = world.clock.advance(50 * MIN)
    timer_id = int(world.timers(row.id)["reminder"].id)
    world.change(row.id, level=LEVEL.LOW.value)
    with world.store.engine.begin() as conn:
        assert not deadline_repository.claim(conn, timer_id, now=now, hub_id="hub-a")


def test_many_due_timers_fire_across_batches(world: World) -> None:
    world.config = IncidentsConfig(deadlines=DeadlinesConfig(sweep_batch=4))
    for _ in range(5):
        world.open(level=LEVEL.CRITICAL)
    world.clock.advance(3 * H)
    assert len(world.sweeper().sweep()) == 15
    with world.store.engine.connect() as conn:
        assert deadline_repository.pending_count(conn, world.clock.now()) == 0
        stages = set(conn.execute(select(incidents.c.escalation_stage)).scalars())
        assert stages == {2}
        assert conn.execute(select(func.count()).select_from(incident_timers)).scalar_one() == 15


def test_disabled_deadlines_schedule_nothing(world: World) -> None:
    world.config = IncidentsConfig(deadlines=DeadlinesConfig(enabled=False))
    row = world.open()
    assert row.deadline_at is None
    assert world.timers(row.id) == {}


def test_a_stopping_sweeper_leaves_the_rest_due(world: World) -> None:
    for _ in range(3):
        world.open(level=LEVEL.CRITICAL)
    world.clock.advance(3 * H)
    sweeper = world.sweeper()
    sweeper.stop()  # as HubService.stop does mid-sweep: nothing more is started
    assert sweeper.sweep() == []
    with world.store.engine.connect() as conn:
        assert deadline_repository.pending_count(conn, world.clock.now()) == 9
    assert len(world.sweeper().sweep()) == 9
