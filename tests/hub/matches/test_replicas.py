"""Two hub replicas on one PostgreSQL: the same face_match alert reaches both (a resend after
a lost ack), and two reviewers confirm the match at the same moment, one on each replica. One
match, one confirmation, one incident, one dispatch; the loser is told the match is decided;
the audit chain the two wrote together verifies."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from edge.validators import utcnow
from hub.audit import verify
from hub.clock import ManualClock
from hub.matches.service import Decision, ReviewRefused
from hub.schema import audit_log, dispatches, incidents, matches
from hub.store import Store
from tests.hub.matches.support import face_alert, replica, seed_people
from tests.support.postgres import PostgresCluster


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except ReviewRefused as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.postgres
def test_two_replicas_confirming_at_once_open_one_incident(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.new_database()
    stores = [Store(url), Store(url, migrate=False)]
    clock = ManualClock(utcnow())
    try:
        seed_people(stores[0], clock.now(), {"near-a": 100.0})
        hubs = [
            replica(s, tmp_path / "audit", clock, hub_id=f"hub-{i}") for i, s in enumerate(stores)
        ]
        alert = face_alert()
        hubs[0].ingest(alert)
        hubs[1].matches.intake([alert.id])  # the resend reached the other replica
        match_id = hubs[0].match_of(alert.id)["id"]

        results = _race(
            [
                lambda: hubs[0].matches.review("rev-a", match_id, Decision.CONFIRM, ""),
                lambda: hubs[1].matches.review("rev-b", match_id, Decision.CONFIRM, ""),
            ]
        )
        won = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if isinstance(r, ReviewRefused)]
        assert (len(won), len(lost)) == (1, 1), results
        assert "confirmed already" in str(lost[0])
        engine = stores[0].engine
        with engine.connect() as conn:
            assert len(conn.execute(select(matches)).all()) == 1
            assert len(conn.execute(select(incidents)).all()) == 1
            assert conn.execute(select(dispatches.c.action)).scalars().all() == ["verify"]
            confirmed = (
                conn.execute(
                    select(audit_log.c.actor).where(audit_log.c.action == "match.confirmed")
                )
                .scalars()
                .all()
            )
        assert confirmed == [won[0]["reviews"][0]["reviewer"]]
        assert len(won[0]["reviews"]) == 1  # the loser's review rolled back with its refusal
        assert sum(h.matches.stats_snapshot().get("confirmed", 0) for h in hubs) == 1
        result = verify(engine, key=hubs[0].matches.audit.settings.key)
        assert result.ok, result
    finally:
        for s in stores:
            s.close()
