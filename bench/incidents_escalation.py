"""One escalation sweep over 100,000 open incidents, on SQLite and PostgreSQL, against the bare
indexed read of the due timers measured in the same run.

    .venv/bin/python bench/incidents_escalation.py [--incidents 100000] [--due-share 0.01]
                                                     [--no-postgres]

The store holds ``--incidents`` open incidents with their three timers each (300,000 timer
rows), of which ``--due-share`` have their supervisor escalation due. Figures:
- baseline: reading every due timer with the sweeper's own keyset query (``due_timers``,
  pages of ``sweep_batch``), nothing claimed or written;
- sweep: ``TimerSweeper.sweep`` firing them all: per page of ``sweep_batch`` timers one
  audited transaction with the ordered incident locks, the conditional claim, the escalation
  stages, the timeline events, the notifications and one HMAC-chained audit record per timer
  (the audit log's append lock serialises the pages, by design);
- the ratio sweep / baseline, and fired/s; then a second sweep with nothing due (what every
  hub pays each tick), against the same baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.validators import new_id
from hub.clock import ManualClock
from hub.incidents import deadline_repository
from hub.incidents.config import IncidentsConfig
from hub.incidents.deadlines import TimerKind, plan
from hub.incidents.model import IncidentLevel
from hub.incidents.timers import TimerSweeper
from hub.schema import incident_deadlines, incident_timers, incidents
from hub.store import Store
from tests.support.incident_timers import ASSIGNEE, DEPARTMENT, T0, seed_people, shared_audit
from tests.support.postgres import PostgresCluster

CHUNK = 5000


def seed(store: Store, n: int, due_share: float, config: IncidentsConfig) -> int:
    """n open high-level incidents; every 1/due_share-th opened long enough ago that its
    supervisor escalation is due at T0 (but not its commander's, nor a reminder)."""
    seed_people(store)
    every = max(1, round(1 / due_share))
    due = 0
    level = IncidentLevel.HIGH
    for start in range(0, n, CHUNK):
        rows, timers, records = [], [], []
        for i in range(start, min(n, start + CHUNK)):
            is_due = i % every == 0
            due += is_due
            # due: the deadline (4 h) passed 10 min ago; the others opened just now
            opened = T0 - timedelta(hours=4, minutes=10) if is_due else T0
            deadline, times = plan(config, "garbage", level, opened)
            iid = new_id()
            rows.append({
                "id": iid, "number": f"I-{i:07d}", "site": "s1", "source": "manual",
                "category": "garbage", "level": level.value, "title": "Bins overflowing",
                "description": "", "department_id": DEPARTMENT, "assignee": ASSIGNEE,
                "state": "assigned", "deadline_at": deadline, "escalation_stage": 0,
                "alert_count": 0, "opened_by": "op", "created_at": opened,
                "updated_at": opened, "version": 1,
            })
            records.append({"incident_id": iid, "started_at": opened, "deadline_at": deadline,
                            "running": True})
            for kind, due_at in times.items():
                reminded = is_due and kind is TimerKind.REMINDER
                fired = T0 - timedelta(minutes=20) if reminded else None
                timers.append({"incident_id": iid, "kind": kind.value, "due_at": due_at,
                               "fired_at": fired, "fired_by": "seed" if fired else None,
                               "cancelled": False})
        with store.engine.begin() as conn:
            conn.execute(incidents.insert(), rows)
            conn.execute(incident_deadlines.insert(), records)
            conn.execute(incident_timers.insert(), timers)
    return due


def baseline_s(store: Store, config: IncidentsConfig) -> tuple[float, int]:
    t0 = time.perf_counter()
    seen = 0
    after: tuple[Any, int] | None = None
    batch = config.deadlines.sweep_batch
    with store.engine.connect() as conn:
        while True:
            page = deadline_repository.due_timers(conn, T0, after=after, limit=batch)
            seen += len(page)
            if len(page) < batch:
                break
            after = (page[-1].due_at, int(page[-1].id))
    return time.perf_counter() - t0, seen


def run(name: str, url: str, n: int, due_share: float, work: Path) -> None:
    config = IncidentsConfig()
    store = Store(url)
    t0 = time.perf_counter()
    due = seed(store, n, due_share, config)
    seeded = time.perf_counter() - t0
    with store.engine.connect() as conn:
        # PostgreSQL: fresh statistics, as autovacuum would have them by now.
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE incident_timers")
        else:
            conn.exec_driver_sql("ANALYZE")
    base, seen = min((baseline_s(store, config) for _ in range(3)), key=lambda r: r[0])
    assert seen == due, (seen, due)
    sweeper = TimerSweeper(store.engine, shared_audit(store, work / f"audit-{name}"), config,
                           ManualClock(T0), hub_id="bench")
    t0 = time.perf_counter()
    fired = sweeper.sweep()
    sweep = time.perf_counter() - t0
    assert len(fired) == due, (len(fired), due)
    t0 = time.perf_counter()
    assert sweeper.sweep() == []
    idle = time.perf_counter() - t0
    store.close()
    print(f"{name:<11} {n} open incidents ({3 * n} timers), {due} due; seeded in {seeded:.1f} s")
    print(f"  baseline   read the due timers          {base * 1000:9.1f} ms")
    print(f"  sweep      fire them all                {sweep * 1000:9.1f} ms   "
          f"{due / sweep:8.0f} fired/s   ratio {sweep / base:7.1f}x baseline")
    print(f"  idle sweep nothing due                  {idle * 1000:9.1f} ms   "
          f"ratio {idle / base:7.2f}x baseline")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--due-share", type=float, default=0.01)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run("SQLite", f"sqlite:///{work}/hub.sqlite", args.incidents, args.due_share, work)
        if not args.no_postgres:
            pg = PostgresCluster()
            pg.start()
            try:
                run("PostgreSQL", pg.new_database(), args.incidents, args.due_share, work)
            finally:
                pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
