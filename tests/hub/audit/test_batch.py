"""AuditTrail.changes: several audited changes in one transaction, one chained record each,
committed with the changes or not at all, checkpointed like single appends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from hub.audit import verify
from hub.schema import audit_log, pois
from hub.store import Store
from tests.hub.audit.appender import poi_row
from tests.hub.audit.conftest import TrailFactory


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def _records(store: Store) -> list[tuple[int, str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.seq, audit_log.c.action, audit_log.c.target).order_by(
                audit_log.c.seq
            )
        ).all()
    return [(int(r.seq), str(r.action), str(r.target)) for r in rows]


def _poi_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(pois)).scalar_one())


def test_a_batch_chains_one_record_per_change_in_order(
    store: Store, make_trail: TrailFactory
) -> None:
    keyed = make_trail(store, every_records=1000)
    keyed.trail.record("alice", "before")
    with keyed.trail.changes() as batch:
        for i in range(3):
            batch.conn.execute(pois.insert().values(**poi_row(f"b{i}")))
            batch.add("alice", "poi.create", f"b{i}", {"n": i, "note": "检查"})
    keyed.trail.record("alice", "after")
    assert _records(store) == [
        (1, "before", ""),
        (2, "poi.create", "b0"),
        (3, "poi.create", "b1"),
        (4, "poi.create", "b2"),
        (5, "after", ""),
    ]
    assert _poi_count(store) == 3
    result = verify(store.engine, keyed.key)
    assert result.ok, result.failures


def test_a_failing_batch_appends_nothing_and_changes_nothing(
    store: Store, make_trail: TrailFactory
) -> None:
    keyed = make_trail(store)
    keyed.trail.record("alice", "before")

    def failing_change() -> None:
        with keyed.trail.changes() as batch:
            batch.conn.execute(pois.insert().values(**poi_row("lost")))
            batch.add("alice", "poi.create", "lost")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError, match="the change failed"):
        failing_change()
    assert _records(store) == [(1, "before", "")]
    assert _poi_count(store) == 0
    keyed.trail.record("alice", "after")  # the chain goes on from the last committed record
    assert verify(store.engine, keyed.key).ok


def test_an_empty_batch_appends_nothing(store: Store, make_trail: TrailFactory) -> None:
    keyed = make_trail(store)
    with keyed.trail.changes() as batch:
        batch.conn.execute(pois.insert().values(**poi_row("unaudited")))
    assert _records(store) == []
    assert _poi_count(store) == 1


def test_a_batch_past_the_checkpoint_interval_is_checkpointed(
    store: Store, make_trail: TrailFactory
) -> None:
    keyed = make_trail(store, every_records=5)
    with keyed.trail.changes() as batch:
        for i in range(7):
            batch.add("alice", "thing.done", f"t{i}")
    lines = keyed.paths.checkpoint_file.read_text().splitlines()
    assert len(lines) == 1  # one checkpoint covering the whole batch, signed after commit
    result = keyed.trail.verify()
    assert result.ok and result.records == 8 and result.checkpoints == 1, result
    assert result.not_checked == []
