"""Exactly once across replicas: two hub processes sweep the same PostgreSQL database over a
few hundred due timers at once. Every timer fires once, each with one timeline event, one
notification and one audit record, and the audit chain the two wrote together verifies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.audit import verify
from hub.clock import ManualClock
from hub.incidents.config import IncidentsConfig
from hub.incidents.model import IncidentLevel
from hub.incidents.timers import ACTOR
from hub.schema import audit_log, incident_events, incident_timers, notifications
from hub.store import Store
from tests.support.incident_timers import T0, World, seed_people, shared_audit
from tests.support.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parents[3]
INCIDENTS = 120  # x 3 timers


@pytest.mark.postgres
@pytest.mark.slow
def test_two_hub_processes_fire_every_timer_exactly_once(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.new_database()
    store = Store(url)
    audit_dir = tmp_path / "audit"
    seed_people(store)
    world = World(store, shared_audit(store, audit_dir), IncidentsConfig(), ManualClock(T0))
    ids = [world.open(level=IncidentLevel.CRITICAL).id for _ in range(INCIDENTS)]
    now = T0 + timedelta(days=1)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'firmware-bridges'}"}
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.timer_racer",
                url,
                now.isoformat(),
                hub,
                str(audit_dir),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for hub in ("hub-a", "hub-b")
    ]
    try:
        for proc in racers:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in racers:  # both start sweeping together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.communicate(timeout=240)[0].splitlines()[-1]) for proc in racers]
    finally:
        for proc in racers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [p.returncode for p in racers] == [0, 0]
    total = INCIDENTS * 3
    assert sum(r["fired"] for r in results) == total
    assert all(r["fired"] > 0 for r in results), results  # they really raced...
    assert sum(r["lost"] for r in results) > 0, results  # ...over the same timers
    assert all(r["failed"] == 0 for r in results), results

    with store.engine.connect() as conn:
        timers = conn.execute(select(incident_timers)).all()
        assert len(timers) == total
        assert all(t.fired_at is not None for t in timers)
        by_hub = Counter(t.fired_by for t in timers)
        assert by_hub == {r["hub"]: r["fired"] for r in results}
        events = Counter(
            (e.incident_id, e.details["timer"])
            for e in conn.execute(
                select(incident_events).where(incident_events.c.actor == ACTOR)
            ).all()
        )
        assert set(events) == {
            (i, k) for i in ids for k in ("reminder", "escalate_supervisor", "escalate_commander")
        }
        assert set(events.values()) == {1}
        per_incident = Counter(
            (n.incident_id, n.kind) for n in conn.execute(select(notifications)).all()
        )
        assert len(per_incident) == total
        assert set(per_incident.values()) == {1}  # one recipient per rung here, once
        audited = conn.execute(select(func.count()).where(audit_log.c.actor == ACTOR)).scalar_one()
        assert audited == total
    result = verify(store.engine, world.audit.settings.key)
    assert result.ok, result
    store.close()
