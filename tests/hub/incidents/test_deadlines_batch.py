"""The sweep's batch path: a page of due timers fires in one audited transaction. What a page
does with an incident closed meanwhile, a timer that fails, a page another sweeper fired in
part, and two sweepers racing over small pages; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from hub.audit import verify
from hub.clock import ManualClock
from hub.incidents import deadline_repository
from hub.incidents.config import IncidentsConfig
from hub.incidents.deadline_config import DeadlinesConfig
from hub.incidents.deadlines import TimerKind
from hub.incidents.model import IncidentLevel
from hub.incidents.timers import ACTOR, Fired, TimerSweeper
from hub.schema import audit_log, incident_events, incident_timers, incidents, notifications
from hub.store import Store
from tests.support.incident_timers import ASSIGNEE, T0, World, seed_people, shared_audit

MIN = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    store = Store(db_url)
    seed_people(store)
    yield World(store, shared_audit(store, tmp_path / "audit"), IncidentsConfig(), ManualClock(T0))
    store.close()


def no_single_path(sweeper: TimerSweeper, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-transaction-per-timer path is the fallback only: a page that does not fail must
    not use it."""

    def refuse(timer: Any, now: Any) -> Fired | None:
        raise AssertionError(f"timer {timer.id} fired on its own")

    monkeypatch.setattr(sweeper, "_fire", refuse)


def audited(world: World) -> Counter[str]:
    with world.store.engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.target).where(audit_log.c.actor == ACTOR))
        return Counter(str(t) for t in rows.scalars())


def test_a_page_fires_in_one_transaction_with_one_record_per_timer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [world.open(level=IncidentLevel.CRITICAL) for _ in range(4)]
    world.clock.advance(3 * H)  # reminder and both escalations due: 12 timers, one page
    sweeper = world.sweeper()
    no_single_path(sweeper, monkeypatch)
    fired = sweeper.sweep()
    assert len(fired) == 12
    assert sweeper.stats["fired"] == 12 and sweeper.stats["failed"] == 0
    assert audited(world) == {r.id: 3 for r in rows}
    for row in rows:
        assert world.get(row.id).escalation_stage == 2
        assert len(world.events(row.id, "reminder")) == 1
        assert len(world.events(row.id, "escalated")) == 2
    assert len(world.inbox(ASSIGNEE)) == 4
    assert verify(world.store.engine, world.audit.settings.key).ok
    assert world.sweeper().sweep() == []


def test_a_page_with_an_incident_closed_meanwhile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed (without on_change) between the page's read and its transaction: its timer is
    cancelled in the page's transaction, the others fire, it writes nothing."""
    closed = world.open(level=IncidentLevel.CRITICAL)
    kept = [world.open(level=IncidentLevel.CRITICAL) for _ in range(2)]
    world.clock.advance(50 * MIN)  # the reminders only
    real = deadline_repository.due_timers

    def due_then_close(*args: Any, **kwargs: Any) -> Any:
        due = real(*args, **kwargs)
        with world.store.engine.begin() as conn:
            conn.execute(
                update(incidents).where(incidents.c.id == closed.id).values(state="closed")
            )
        return due

    monkeypatch.setattr(deadline_repository, "due_timers", due_then_close)
    sweeper = world.sweeper()
    no_single_path(sweeper, monkeypatch)
    fired = sweeper.sweep()
    assert sorted(f.incident_id for f in fired) == sorted(r.id for r in kept)
    assert sweeper.stats["skipped"] == 1 and sweeper.stats["fired"] == 2
    reminder = world.timers(closed.id)["reminder"]
    assert reminder.cancelled and reminder.fired_at is None
    assert world.events(closed.id, "reminder") == []
    assert audited(world) == {r.id: 1 for r in kept}
    assert [n.incident_id for n in world.inbox(ASSIGNEE)].count(closed.id) == 0


def test_a_failing_timer_in_a_page_costs_only_itself(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [world.open(level=IncidentLevel.CRITICAL) for _ in range(5)]
    bad = rows[2]
    world.clock.advance(50 * MIN)
    sweeper = world.sweeper()
    real: Callable[..., list[str]] = sweeper._recipients

    def broken(conn: Any, kind: TimerKind, incident: Any) -> list[str]:
        if incident.id == bad.id:
            raise RuntimeError("department directory exploded")
        return real(conn, kind, incident)

    monkeypatch.setattr(sweeper, "_recipients", broken)
    fired = sweeper.sweep()
    assert sorted(f.incident_id for f in fired) == sorted(r.id for r in rows if r is not bad)
    assert sweeper.stats["failed"] == 1 and sweeper.stats["fired"] == 4
    # The failed page was rolled back whole and refired one by one: nothing twice.
    assert audited(world) == {r.id: 1 for r in rows if r is not bad}
    assert world.timers(bad.id)["reminder"].fired_at is None
    assert world.events(bad.id, "reminder") == []
    assert sorted(n.incident_id for n in world.inbox(ASSIGNEE)) == sorted(
        r.id for r in rows if r is not bad
    )
    assert verify(world.store.engine, world.audit.settings.key).ok
    monkeypatch.undo()
    assert [f.incident_id for f in world.sweeper().sweep()] == [bad.id]


def test_a_page_another_sweeper_fired_in_part(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hub-b fires part of hub-a's page between hub-a's read and its claim: hub-a fires the
    rest, counts the others lost, and each timer fires once."""
    rows = [world.open(level=IncidentLevel.CRITICAL) for _ in range(4)]
    now = world.clock.advance(3 * H)
    a, b = world.sweeper("hub-a"), world.sweeper("hub-b")
    real = deadline_repository.due_timers
    taken: list[Fired] = []

    def due_then_race(*args: Any, **kwargs: Any) -> Any:
        due = real(*args, **kwargs)
        if not taken:
            taken.extend(b._fire_page(due[::2], now))  # every other timer of the page
        return due

    monkeypatch.setattr(deadline_repository, "due_timers", due_then_race)
    no_single_path(a, monkeypatch)
    mine = a.sweep()
    assert len(taken) == 6 and len(mine) == 6
    assert {f.timer_id for f in taken}.isdisjoint(f.timer_id for f in mine)
    assert a.stats["lost"] == 6 and a.stats["fired"] == 6
    with world.store.engine.connect() as conn:
        by_hub = Counter(conn.execute(select(incident_timers.c.fired_by)).scalars())
    assert by_hub == {"hub-a": 6, "hub-b": 6}
    assert audited(world) == {r.id: 3 for r in rows}
    for row in rows:
        assert len(world.events(row.id, "reminder", "escalated")) == 3
    assert verify(world.store.engine, world.audit.settings.key).ok


def test_claims_decide_without_update_returning(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database without UPDATE ... RETURNING claims one row at a time, same outcome."""
    row = world.open(level=IncidentLevel.CRITICAL)
    now = world.clock.advance(3 * H)
    monkeypatch.setattr(world.store.engine.dialect, "update_returning", False)
    ids = [int(t.id) for t in world.timers(row.id).values()]
    with world.store.engine.begin() as conn:
        assert deadline_repository.claim_many(conn, ids[:1], now=now, hub_id="hub-b") == {ids[0]}
        assert deadline_repository.claim_many(conn, ids, now=now, hub_id="hub-a") == set(ids[1:])


def test_two_sweepers_racing_over_small_pages_fire_each_timer_once(world: World) -> None:
    world.config = IncidentsConfig(deadlines=DeadlinesConfig(sweep_batch=5))
    rows = [world.open(level=IncidentLevel.CRITICAL) for _ in range(20)]
    world.clock.advance(3 * H)
    sweepers = [world.sweeper("hub-a"), world.sweeper("hub-b")]
    start = threading.Barrier(2)
    errors: list[Exception] = []

    def run(sweeper: TimerSweeper) -> None:
        try:
            start.wait()
            while True:
                sweeper.sweep()
                with world.store.engine.connect() as conn:
                    if deadline_repository.pending_count(conn, world.clock.now()) == 0:
                        return
        except Exception as exc:  # noqa: BLE001 - handed to the test thread, which fails on it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in sweepers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    total = len(rows) * 3
    assert sum(s.stats["fired"] for s in sweepers) == total
    assert all(s.stats["failed"] == 0 for s in sweepers)
    with world.store.engine.connect() as conn:
        events = conn.execute(
            select(func.count()).where(incident_events.c.actor == ACTOR)
        ).scalar_one()
        notes = conn.execute(select(func.count()).select_from(notifications)).scalar_one()
        by_hub = Counter(conn.execute(select(incident_timers.c.fired_by)).scalars())
    assert events == total and notes == total
    assert by_hub == {s.hub_id: s.stats["fired"] for s in sweepers if s.stats["fired"]}
    assert audited(world) == {r.id: 3 for r in rows}
    assert verify(world.store.engine, world.audit.settings.key).ok
