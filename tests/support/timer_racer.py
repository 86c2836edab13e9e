"""One hub replica's timer sweeper in its own process, for the exactly-once test.

    python -m tests.support.timer_racer DATABASE_URL NOW_ISO HUB_ID AUDIT_DIR

Waits for a line on stdin (so both racers start together), sweeps until nothing is due, and
prints its counters as one JSON line.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from hub.clock import ManualClock
from hub.incidents import deadline_repository
from hub.incidents.config import IncidentsConfig
from hub.incidents.deadline_config import DeadlinesConfig
from hub.incidents.timers import TimerSweeper
from hub.store import Store
from tests.support.incident_timers import shared_audit


def main() -> None:
    url, now_text, hub_id, audit_dir = sys.argv[1:5]
    now = datetime.fromisoformat(now_text)
    store = Store(url)
    config = IncidentsConfig(deadlines=DeadlinesConfig(sweep_batch=7))
    sweeper = TimerSweeper(
        store.engine, shared_audit(store, Path(audit_dir)), config, ManualClock(now), hub_id=hub_id
    )
    print("ready", flush=True)
    sys.stdin.readline()
    passes = 0
    while True:
        passes += 1
        sweeper.sweep()
        with store.engine.connect() as conn:
            if deadline_repository.pending_count(conn, now) == 0:
                break
    print(json.dumps({"hub": hub_id, "passes": passes, **sweeper.stats}), flush=True)
    store.close()


if __name__ == "__main__":
    main()
