"""Report classification rate and incident statistics over 100,000 incidents.

    .venv/bin/python bench/incidents_classify.py [--incidents 100000] [--rounds 20]

Classification: the shipped classifier (hub.classify) on the held-out report texts, repeated;
the baseline, measured in the same run, is its tokenizer alone (``features``) on the same
texts, so the ratio is what the scoring adds. Also the training time at load.

Statistics: ``IncidentStats.rows`` per category, cell and worker, and the full CSV export,
over N incidents in a SQLite file (rows inserted directly, spread over 200 cells, 20
departments, 11 categories, 500 workers; a third closed, a third resolved, a third open with
deadlines half past). The baseline is a bare ``SELECT COUNT(*)`` over the same table.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "firmware-bridges"))

from sqlalchemy import func, insert, select

from edge.validators import new_id
from hub.classify import classifier as clf
from hub.clock import ManualClock
from hub.config import HubConfig
from hub.incidents.categories import Vocabulary
from hub.incstats.repository import IncidentFilter
from hub.incstats.service import IncidentStats
from hub.schema import incidents
from hub.store import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def bench_classify(rounds: int) -> None:
    t0 = time.perf_counter()
    train, held = clf.split(clf.load_examples())
    model = clf.ReportClassifier(train, categories=[c.id for c in Vocabulary().reportable()])
    load_s = time.perf_counter() - t0
    texts = [r.text for r in held] * rounds
    t0 = time.perf_counter()
    for text in texts:
        clf.features(text)
    base = len(texts) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for text in texts:
        model.suggest(text)
    rate = len(texts) / (time.perf_counter() - t0)
    print(f"classifier: trained on {len(train)} rows in {load_s * 1000:.0f} ms")
    print(f"  tokenizer alone (baseline): {base:,.0f} texts/s")
    print(f"  classify (suggest):         {rate:,.0f} texts/s  ({rate / base:.2f}x baseline)")


def _fill(store: Store, n: int) -> None:
    rng = random.Random(12)
    cats = [c.id for c in Vocabulary().reportable()]
    rows = []
    for i in range(n):
        created = T0 + timedelta(minutes=5 * i)
        kind = i % 3
        rows.append({
            "id": new_id(), "number": f"I-{i:07d}", "site": "bench", "category": cats[i % 11],
            "source": "report" if i % 2 else "manual", "level": "medium", "title": f"t{i}",
            "description": "", "cell_id": f"c{rng.randrange(200)}",
            "department_id": f"d{rng.randrange(20)}", "assignee": f"w{rng.randrange(500)}",
            "opened_by": f"w{rng.randrange(500)}", "state": ("closed", "resolved", "new")[kind],
            "deadline_at": created + timedelta(days=rng.choice((1, 10_000))),
            "resolved_at": created + timedelta(hours=rng.randrange(1, 48)) if kind < 2 else None,
            "closed_at": created + timedelta(hours=rng.randrange(48, 96)) if kind == 0 else None,
            "lon": 114 + rng.random() / 10, "lat": 22.5 + rng.random() / 10,
            "escalation_stage": 0, "alert_count": 0, "created_at": created,
            "updated_at": created, "version": 1,
        })  # fmt: skip
    with store.engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(incidents), rows[start : start + 5000])


def _timed(fn: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def bench_stats(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.sqlite")
        try:
            t0 = time.perf_counter()
            _fill(store, n)
            print(
                f"stats over {n:,} incidents (SQLite; filled in {time.perf_counter() - t0:.1f} s)"
            )
            config = HubConfig.model_validate({"site": "bench"})
            stats = IncidentStats(store.engine, config, ManualClock(T0 + timedelta(days=400)))
            everything = IncidentFilter(site="bench")

            def count() -> None:
                with store.engine.connect() as conn:
                    conn.execute(select(func.count()).select_from(incidents)).scalar_one()

            base = _timed(count)
            print(f"  bare COUNT(*) (baseline):   {base * 1000:8.1f} ms")
            for by in ("category", "cell", "worker"):
                took = _timed(lambda by=by: stats.rows(by, everything))  # type: ignore[misc]
                print(f"  rows(by={by:<8}):          {took * 1000:8.1f} ms  ({took / base:.0f}x)")
            took = _timed(lambda: sum(len(c) for c in stats.export_csv(everything)), repeat=1)
            print(f"  export.csv, all rows:       {took * 1000:8.1f} ms  ({took / base:.0f}x)")
        finally:
            store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    bench_classify(args.rounds)
    bench_stats(args.incidents)
    return 0


if __name__ == "__main__":
    sys.exit(main())
