"""Warning recompute latency after one incident change, against a full recompute.

    .venv/bin/python bench/incidents_warnings.py [--cells 1000] [--incidents 100000]
                                                 [--open-share 0.1] [--changes 20]

A SQLite hub database with ``--cells`` grid cells (a 40-wide grid) and ``--incidents``
incidents spread over them, ``--open-share`` of them open (the rest closed, as a district's
history is), with levels, categories, ages and deadlines mixed. The real
:class:`~hub.warnings.service.WarningService` and :class:`~hub.warnings.worker.WarningsWorker`
on a ManualClock. Measured in the same run:

- the baseline: a full recompute of every cell (what the worker does every
  ``full_every_ticks``), in steady state (nothing to write);
- the latency after one incident change: change one open incident's level (as the incident
  service does, ``updated_at`` = now), then one incremental worker tick that finds the changed
  cell and writes its new colour, history row and audit record. Median and worst of
  ``--changes`` changes; the ratio is baseline / median.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware-bridges"))

from sqlalchemy import update

from edge.validators import new_id
from hub.clock import ManualClock
from hub.config import AuditConfig, HubConfig
from hub.schema import grid_cells, incidents
from hub.service import HubService

START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
SIZE = 0.002
LEVELS = ("low", "medium", "high", "critical")
CATEGORIES = ("garbage", "noise", "road_damage", "streetlight", "public_order", "fire_hazard")


def _square(i: int) -> dict[str, object]:
    w, s = 114.0 + (i % 40) * SIZE, 22.5 + (i // 40) * SIZE
    e, n = w + SIZE, s + SIZE
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def _seed(service: HubService, n_cells: int, n_incidents: int, open_share: float) -> list[str]:
    rng = random.Random(12)
    cells = [
        {
            "id": f"c{i:05d}",
            "site": "bench",
            "name": f"C{i}",
            "team": "",
            "geometry": _square(i),
            "properties": {},
            "updated_at": START,
        }
        for i in range(n_cells)
    ]
    rows = []
    open_ids = []
    for n in range(n_incidents):
        created = START - timedelta(minutes=rng.uniform(0, 60 * 24 * 60))
        is_open = rng.random() < open_share
        # Open ones skew low: a district where every cell is red measures nothing.
        level = rng.choices(LEVELS, weights=(60, 30, 8, 2) if is_open else (1, 1, 1, 1))[0]
        deadline = created + timedelta(hours=rng.choice((4, 24, 72, 24 * 30)))
        incident_id = new_id()
        if is_open:
            open_ids.append(incident_id)
        rows.append(
            {
                "id": incident_id,
                "number": f"I-{n + 1:06d}",
                "site": "bench",
                "source": "manual",
                "category": rng.choice(CATEGORIES),
                "level": level,
                "title": "bench",
                "description": "",
                "cell_id": cells[rng.randrange(n_cells)]["id"],
                "state": "new" if is_open else "closed",
                "deadline_at": deadline,
                "escalation_stage": 0,
                "alert_count": 0,
                "opened_by": "bench",
                "created_at": created,
                "updated_at": created,
                "closed_at": None if is_open else created + timedelta(hours=2),
                "version": 1,
            }
        )
    with service.store.engine.begin() as conn:
        conn.execute(grid_cells.insert(), cells)
        for start in range(0, len(rows), 5000):
            conn.execute(incidents.insert(), rows[start : start + 5000])
    return open_ids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--incidents", type=int, default=100_000)
    ap.add_argument("--open-share", type=float, default=0.1)
    ap.add_argument("--changes", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(START)
        config = HubConfig.model_validate(
            {
                "site": "bench",
                "database_url": f"sqlite:///{tmp}/hub.sqlite",
                "audit": AuditConfig(directory=Path(tmp) / "audit"),
                "warnings": {"tick_s": 3600, "full_every_ticks": 100_000},
            }
        )
        service = HubService(config, clock=clock)
        try:
            open_ids = _seed(service, args.cells, args.incidents, args.open_share)
            warnings = service.ctx.warnings
            worker = service.warnings_worker
            t0 = time.perf_counter()
            first = worker.tick()  # the first tick is a full pass: colours every cell
            initial_s = time.perf_counter() - t0
            full = []
            for _ in range(3):
                t0 = time.perf_counter()
                assert warnings.recompute() == []
                full.append(time.perf_counter() - t0)
            baseline_s = statistics.median(full)
            rng = random.Random(7)
            latencies = []
            written = 0
            for _ in range(args.changes):
                clock.advance(1)
                incident_id = rng.choice(open_ids)
                with service.store.engine.begin() as conn:
                    conn.execute(
                        update(incidents)
                        .where(incidents.c.id == incident_id)
                        .values(level="critical", updated_at=clock.now())
                    )
                t0 = time.perf_counter()
                changes = worker.tick()
                latencies.append(time.perf_counter() - t0)
                written += len(changes)
        finally:
            service.store.close()
    median_s = statistics.median(latencies)
    coloured = sum(1 for c in first if c.level)
    print(
        f"{args.cells} cells, {args.incidents} incidents "
        f"({args.open_share:.0%} open), SQLite; {coloured} cells coloured by the first pass"
    )
    print(f"first full pass (writes every colour)  {initial_s * 1000:10.1f} ms")
    print(f"full recompute, steady (baseline)      {baseline_s * 1000:10.1f} ms  1.000")
    print(
        f"after one incident change: median     {median_s * 1000:10.1f} ms  "
        f"{baseline_s / median_s:5.1f}x faster"
    )
    print(f"after one incident change: worst      {max(latencies) * 1000:10.1f} ms")
    print(f"cells changed by the {args.changes} changes: {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
