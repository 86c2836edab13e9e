"""Two hub replicas on one PostgreSQL: the alert that opens an incident reaches both (a resend
after a lost ack), both sweep the due round at the same moment, both decide the same answer.
One incident, one dispatch per officer of each ring, one widening, one accepted answer, and
the audit chain the two wrote together verifies."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from edge.validators import new_id
from hub.audit import verify
from hub.clock import ManualClock
from hub.commands.outbox import CommandOutbox
from hub.dispatch.config import DispatchConfig
from hub.dispatch.service import DispatchService
from hub.incidents.config import IncidentsConfig
from hub.incidents.service import IncidentService
from hub.live import LiveBroadcaster
from hub.schema import (
    audit_log,
    command_outbox,
    dispatch_answers,
    dispatch_rounds,
    dispatches,
    incidents,
)
from hub.store import Store
from tests.hub.dispatch.support import seed_officers
from tests.hub.incidents.support import T0, add_alert
from tests.support.incident_timers import shared_audit
from tests.support.postgres import PostgresCluster

SITE = "s1"
OFFICERS = {"near-a": 100, "near-b": 300, "mid-a": 1000, "mid-b": 1500}


def _seed(store: Store, now: datetime) -> None:
    with store.engine.begin() as conn:
        seed_officers(conn, site=SITE, north_m=OFFICERS, now=now, lon=114.0, lat=22.5)


def _replica(
    store: Store, audit_dir: Path, clock: ManualClock, hub_id: str
) -> tuple[IncidentService, DispatchService]:
    audit = shared_audit(store, audit_dir)
    dispatch = DispatchService(
        store.engine,
        audit,
        DispatchConfig(),
        outbox=CommandOutbox(),
        live=LiveBroadcaster(),
        clock=clock,
        hub_id=hub_id,
    )
    incidents_ = IncidentService(
        store.engine, audit, IncidentsConfig(), clock, on_change=dispatch.after_incident
    )
    incidents_.in_transaction = dispatch.on_incident
    return incidents_, dispatch


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            failures.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures, failures
    return results


@pytest.mark.postgres
def test_two_replicas_dispatch_widen_and_decide_once(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.new_database()
    stores = [Store(url), Store(url, migrate=False)]
    clock = ManualClock(T0)
    try:
        _seed(stores[0], T0)
        replicas = [
            _replica(s, tmp_path / "audit", clock, f"hub-{i}") for i, s in enumerate(stores)
        ]
        alert = add_alert(stores[0].engine, SITE, lon=114.0, lat=22.5, ts=T0)
        _race([lambda r=r: r[0].process_alerts([alert]) for r in replicas])
        engine = stores[0].engine
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(incidents)).scalar() == 1
            asked = conn.execute(select(dispatches.c.officer, dispatches.c.round)).all()
            sent = conn.execute(select(func.count()).select_from(command_outbox)).scalar()
        assert sorted(asked) == [("near-a", 0), ("near-b", 0)], [
            (r[0].intake.as_dict(), r[1].stats_snapshot()) for r in replicas
        ]
        assert sent == 2

        clock.advance(61)
        fired = _race([lambda r=r: r[1].sweep() for r in replicas])
        assert sorted(fired) == [0, 1]
        with engine.connect() as conn:
            rows = conn.execute(
                select(dispatches.c.officer, dispatches.c.round, dispatches.c.state)
            ).all()
            rounds = conn.execute(select(dispatch_rounds.c.round, dispatch_rounds.c.fired_by)).all()
            sent = conn.execute(select(func.count()).select_from(command_outbox)).scalar()
        assert sorted(rows) == [
            ("mid-a", 1, "notified"),
            ("mid-b", 1, "notified"),
            ("near-a", 0, "timed_out"),
            ("near-b", 0, "timed_out"),
        ]
        assert sent == 4
        assert sorted(r.round for r in rounds) == [0, 1]

        # One answer, decided by both replicas at once: accepted once.
        with engine.connect() as conn:
            target = conn.execute(select(dispatches).where(dispatches.c.officer == "mid-a")).one()
        answer_id = new_id()
        with engine.begin() as conn:
            conn.execute(
                dispatch_answers.insert().values(
                    id=answer_id,
                    site=SITE,
                    device=target.device,
                    dispatch_id=target.id,
                    notify_id=target.notify_id,
                    officer="mid-a",
                    answer="acknowledge",
                    ts=clock.now(),
                    note="",
                    received_at=clock.now(),
                )
            )
        before = [r[1].stats_snapshot().get("answers_accepted", 0) for r in replicas]
        outcomes = _race([lambda r=r: r[1].process_answer(answer_id) for r in replicas])
        # The loser either lost the claim (None) or read the winner's committed outcome.
        assert sorted(o[0] or "" for o in outcomes) in (["", "accepted"], ["accepted", "accepted"])
        applied = [
            r[1].stats_snapshot().get("answers_accepted", 0) - b
            for r, b in zip(replicas, before, strict=True)
        ]
        assert sorted(applied) == [0, 1]
        with engine.connect() as conn:
            state = conn.execute(
                select(dispatches.c.state).where(dispatches.c.id == target.id)
            ).scalar()
            assignee = conn.execute(select(incidents.c.assignee)).scalar()
            answered = conn.execute(
                select(func.count())
                .select_from(audit_log)
                .where(audit_log.c.action == "dispatch.answer")
            ).scalar()
        assert (state, assignee, answered) == ("acknowledged", "mid-a", 1)
        result = verify(engine, key=replicas[0][1].audit.settings.key)
        assert result.ok, result
    finally:
        for s in stores:
            s.close()
