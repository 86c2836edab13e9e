"""Two hubs recomputing the same cells at the same time on one PostgreSQL database write one
history row and one audit record per change (compare-and-set on warning_version)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.schema import audit_log, cell_warning_history
from tests.hub.warnings.conftest import make_warnings
from tests.support.postgres import PostgresCluster

CELLS = 40


@pytest.mark.postgres
def test_two_hubs_racing_on_postgresql_write_each_change_once(
    postgres: PostgresCluster, site: str, tmp_path: Path
) -> None:
    url = postgres.new_database()
    hubs = [make_warnings(site, tmp_path / name, database_url=url) for name in ("a", "b")]
    try:
        a = hubs[0]
        for i in range(CELLS):
            a.cell(f"c{i}", i)
            a.incident(f"c{i}", "critical")
        barrier = threading.Barrier(2)
        written: list[int] = []

        def race(index: int) -> None:
            barrier.wait()
            written.append(len(hubs[index].ctx.warnings.recompute()))

        threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sum(written) == CELLS  # every change made by exactly one of the two
        with a.ctx.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(cell_warning_history)).scalar()
            audited = conn.execute(
                select(func.count()).where(audit_log.c.action == "cell.warning")
            ).scalar()
        assert rows == CELLS
        assert audited == CELLS
        assert {a.level(f"c{i}") for i in range(CELLS)} == {"red"}
    finally:
        for w in hubs:
            w.service.store.close()
