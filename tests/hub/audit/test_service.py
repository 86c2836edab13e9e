"""Audited changes under concurrency (threads, processes, PostgreSQL), signed checkpoints, the
legacy migration, and every forgery the brief names, each against a real database and key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, func, select

from hub.audit import (
    CHAIN_LEGACY,
    GENESIS,
    AuditLogKeyedError,
    AuditTrail,
    Checkpoint,
    VerifyResult,
    record_hash,
    verify,
)
from hub.audit import checkpoints as cps
from hub.schema import audit_log, pois
from hub.store import MIGRATIONS, Store
from tests.hub.audit.appender import poi_row
from tests.hub.audit.conftest import Keyed, TrailFactory
from tests.hub.audit.forgery import (
    append_forged,
    delete_from,
    keyed_hasher,
    legacy_hasher,
    rewrite_chain,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def _fill(keyed: Keyed, n: int, actor: str = "alice") -> None:
    for i in range(n):
        keyed.trail.record(actor, "thing.done", f"t{i}", {"n": i, "note": "检查"})


def _full(keyed: Keyed) -> VerifyResult:
    return keyed.trail.verify()


def _public_only(keyed: Keyed) -> VerifyResult:
    return verify(
        keyed.trail.engine,
        key=None,
        public_key=cps.load_public_key(keyed.paths.public_key_file),
        checkpoint_file=keyed.paths.checkpoint_file,
    )


def _failures(result: VerifyResult) -> list[tuple[str, int | None, int | None]]:
    return [(f.kind, f.seq, f.line) for f in result.failures]


# --- defect 2: the race -------------------------------------------------------------------


def test_concurrent_audited_changes_all_commit(store: Store, make_trail: TrailFactory) -> None:
    """4 threads x 50 audited changes: before the fix, SQLite gave 'UNIQUE constraint failed:
    audit_log.seq' and rolled back the change with it."""
    keyed = make_trail(store, every_records=20)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def worker(n: int) -> None:
        start.wait()
        for i in range(50):
            try:
                if i % 2:
                    with keyed.trail.change(f"user{n}", "poi.put", f"p{n}-{i}") as conn:
                        conn.execute(pois.insert().values(**poi_row(f"p{n}-{i}")))
                else:  # an event that changes nothing else (a login, a view): no write first
                    keyed.trail.record(f"user{n}", "poi.view", f"p{n}-{i}")
            except Exception as err:  # noqa: BLE001 - collected and asserted below
                errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(pois)).scalar_one() == 100
        changes = conn.execute(
            select(func.count())
            .select_from(audit_log)
            .where(audit_log.c.action.in_(["poi.put", "poi.view"]))
        ).scalar_one()
    assert changes == 200
    result = _full(keyed)
    assert result.ok, result.problems
    # Checkpoints interleave with the changes (about one per 20 records) and still verify.
    assert result.checkpoints >= 5 and result.records == 200 + result.checkpoints


def test_two_processes_share_one_sqlite_file(
    sqlite_store: Store, make_trail: TrailFactory, tmp_path: Path
) -> None:
    """A CLI command and the hub are two processes on one SQLite file: a threading lock alone
    cannot serialise them."""
    keyed = make_trail(sqlite_store, every_records=20)  # creates the keys both processes use
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'firmware-bridges'}"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.hub.audit.appender",
                sqlite_store.url,
                str(keyed.paths.key_file.parent),
                str(go),
                "100",
                name,
            ],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("cli", "hub")
    ]
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(pois)).scalar_one() == 100
    result = _full(keyed)
    assert result.ok, result.problems
    assert result.records == 200 + result.checkpoints
    assert result.checkpoints >= 5  # about one per 20 records, whoever wrote them


def test_append_in_a_plain_transaction_still_takes_the_lock(
    store: Store, make_trail: TrailFactory
) -> None:
    """Code that calls ``audit.append`` inside its own ``engine.begin()`` is serialised too."""
    from hub import audit

    keyed = make_trail(store, every_records=1000)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        for i in range(25):
            try:
                with store.engine.begin() as conn:
                    # No key passed: the one of the trail built for this engine is used.
                    audit.append(conn, f"u{n}", "thing.done", str(i))
            except Exception as err:  # noqa: BLE001 - collected and asserted below
                errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = _full(keyed)
    assert result.ok and result.records == 100 and result.legacy_records == 0


# --- checkpoints ----------------------------------------------------------------------------


def test_checkpoints_every_n_records_are_signed_and_announced(
    sqlite_store: Store, make_trail: TrailFactory
) -> None:
    keyed = make_trail(sqlite_store, every_records=5)
    _fill(keyed, 10)
    lines = keyed.paths.checkpoint_file.read_text().splitlines()
    assert len(lines) == 2
    public = cps.load_public_key(keyed.paths.public_key_file)
    first, second = (cps.parse_line(line, public) for line in lines)
    assert (first.number, first.seq, second.number, second.seq) == (1, 6, 2, 12)
    result = _full(keyed)
    assert result.ok and result.records == 12 and result.checkpoints == 2
    assert result.hmac_checked and result.checkpoints_checked
    assert result.not_checked == []
    # The key files: secret ones 0600, the public key readable for backup.
    assert keyed.paths.key_file.stat().st_mode & 0o077 == 0
    assert keyed.paths.signing_key_file.stat().st_mode & 0o077 == 0
    assert b"BEGIN PUBLIC KEY" in keyed.paths.public_key_file.read_bytes()


def test_timer_checkpoints_on_the_injected_clock(
    sqlite_store: Store, make_trail: TrailFactory
) -> None:
    now = [datetime(2026, 12, 1, 8, 0, tzinfo=UTC)]
    keyed = make_trail(sqlite_store, every_records=1000, every_minutes=10, clock=lambda: now[0])
    trail = keyed.trail
    assert trail.tick() is None  # empty log: nothing to sign
    _fill(keyed, 2)
    now[0] += timedelta(minutes=9)
    assert trail.tick() is None  # the interval has not passed
    now[0] += timedelta(minutes=2)
    first = trail.tick()
    assert first is not None and (first.number, first.seq) == (1, 3)
    now[0] += timedelta(minutes=11)
    assert trail.tick() is None  # nothing new since: no checkpoint of a checkpoint
    _fill(keyed, 1)
    now[0] += timedelta(minutes=11)
    second = trail.tick()
    assert second is not None and (second.number, second.seq) == (2, 5)
    assert second.ts == now[0]
    assert _full(keyed).ok


def test_unkeyed_appender_cannot_downgrade_a_keyed_log(
    sqlite_store: Store, make_trail: TrailFactory
) -> None:
    keyed = make_trail(sqlite_store)
    _fill(keyed, 1)
    with pytest.raises(AuditLogKeyedError, match="keyed"):
        AuditTrail(sqlite_store.engine).record("mallory", "thing.done")
    assert _full(keyed).records == 1


# --- defect 3: forgeries ------------------------------------------------------------------


@pytest.fixture
def ten(sqlite_store: Store, make_trail: TrailFactory) -> Keyed:
    """Records 1..5, checkpoint record 6 (line 1), 7..11, checkpoint record 12 (line 2)."""
    keyed = make_trail(sqlite_store, every_records=5)
    _fill(keyed, 10)
    assert _full(keyed).ok
    return keyed


def _edit(row: dict[str, object]) -> dict[str, object]:
    return {**row, "details": {"n": 99, "note": "改"}}


def test_edit_and_recompute_the_old_way(ten: Keyed) -> None:
    rewrite_chain(ten.trail.engine, 3, legacy_hasher, edit=_edit)
    result = _full(ten)
    assert not result.ok
    assert result.failures[0].seq == 3 and "HMAC does not match" in result.failures[0].reason
    assert ("checkpoint", 6, 1) in _failures(result)
    # A verifier holding only the public key still sees the rewrite at the signed heads.
    public = _public_only(ten)
    assert ("checkpoint", 6, 1) in _failures(public) and ("checkpoint", 12, 2) in _failures(public)
    assert any("HMAC" in note for note in public.not_checked)


def test_edit_and_recompute_with_a_wrong_key(ten: Keyed) -> None:
    rewrite_chain(ten.trail.engine, 3, keyed_hasher(b"\x01" * 32), edit=_edit)
    result = _full(ten)
    assert str(result.failures[0]).startswith("record 3: HMAC does not match")
    assert [f.seq for f in result.failures if f.kind == "record"] == list(range(3, 13))
    assert "checkpoint line 1 (record 6): the log's hash" in result.problems[-2]


def test_edit_and_downgrade_to_unkeyed(ten: Keyed) -> None:
    rewrite_chain(ten.trail.engine, 3, legacy_hasher, edit=_edit, chain=CHAIN_LEGACY)
    result = _full(ten)
    assert result.problems[0] == (
        "record 3: unkeyed record after the log became keyed at record 1: forged or downgraded"
    )


def test_downgrade_of_the_whole_log_is_caught_by_the_checkpoints(ten: Keyed) -> None:
    rewrite_chain(ten.trail.engine, 1, legacy_hasher, chain=CHAIN_LEGACY)
    result = _full(ten)
    assert result.legacy_records == 12  # looks like an old log...
    assert ("checkpoint", 6, 1) in _failures(result)  # ...but the signed heads say otherwise


def test_delete_the_last_records(ten: Keyed) -> None:
    delete_from(ten.trail.engine, 10)
    result = _full(ten)
    assert result.problems == [
        "checkpoint line 2 (record 12): signs record 12 but the log ends at record 9: "
        "newest records deleted"
    ]
    assert _failures(_public_only(ten)) == [("checkpoint", 12, 2)]


def test_records_newer_than_the_last_checkpoint_are_reported_unprotected(ten: Keyed) -> None:
    _fill(ten, 2)
    delete_from(ten.trail.engine, 14)  # an undetectable deletion: say so instead of "all fine"
    result = _full(ten)
    assert result.ok
    assert "records 13..13 are newer than the last checkpoint" in result.not_checked[0]


def test_delete_the_last_records_and_append_forged_ones(ten: Keyed) -> None:
    engine = ten.trail.engine
    delete_from(engine, 10)
    ts = datetime.now(UTC)
    for i in range(3):
        append_forged(engine, legacy_hasher, "alice", "thing.done", target=f"f{i}", ts=ts)
    result = _full(ten)
    record_failures = [f.seq for f in result.failures if f.kind == "record"]
    assert record_failures == [10, 11, 12]
    assert "checkpoint line 2 (record 12): the log's hash at this record differs" in str(
        result.failures[-1]
    )
    # Forged with a key of the attacker's own, it is the same story.
    delete_from(engine, 10)
    for i in range(3):
        append_forged(engine, keyed_hasher(b"\x02" * 32), "alice", "x", target=f"g{i}", ts=ts)
    assert [f.seq for f in _full(ten).failures][:3] == [10, 11, 12]
    assert _failures(_public_only(ten)) == [("checkpoint", 12, 2)]


def test_truncate_the_checkpoint_file(ten: Keyed) -> None:
    path = ten.paths.checkpoint_file
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0])
    assert _full(ten).problems == [
        "checkpoint line 2 (record 12): checkpoint 2, announced by record 12, is missing from "
        "the checkpoint file (lines deleted or file truncated)"
    ]
    path.write_text("")
    assert _failures(_full(ten)) == [("checkpoint", 6, 1), ("checkpoint", 12, 2)]
    path.unlink()
    assert "checkpoint file" in _full(ten).problems[0] and "announces 2" in _full(ten).problems[0]


def test_forge_a_checkpoint_with_a_different_key(ten: Keyed) -> None:
    path = ten.paths.checkpoint_file
    with ten.trail.engine.connect() as conn:
        last = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).one()
    mallory = Ed25519PrivateKey.generate()
    forged = cps.sign(Checkpoint(3, last.seq, last.hash, datetime.now(UTC)), mallory)
    with path.open("a") as fh:
        fh.write(forged + "\n")
    result = _full(ten)
    assert len(result.failures) == 1
    failure = result.failures[0]
    assert (failure.kind, failure.line) == ("checkpoint", 3)
    assert "signed with another key" in failure.reason
    # Re-signing the whole file with the attacker's key fails every line.
    path.write_text(
        "".join(
            cps.sign(Checkpoint(n, seq, "f" * 64, datetime.now(UTC)), mallory) + "\n"
            for n, seq in ((1, 6), (2, 12))
        )
    )
    assert [f.line for f in _full(ten).failures if "another key" in f.reason] == [1, 2]


def test_move_a_checkpoints_head_hash(ten: Keyed) -> None:
    path = ten.paths.checkpoint_file
    lines = path.read_text().splitlines()
    moved = json.loads(lines[1])
    with ten.trail.engine.connect() as conn:
        rec9 = conn.execute(select(audit_log).where(audit_log.c.seq == 9)).one()
    moved.update(seq=9, head=rec9.hash)  # point the signed head at an earlier record
    path.write_text(lines[0] + "\n" + json.dumps(moved) + "\n")
    result = _full(ten)
    assert str(result.failures[0]) == (
        "checkpoint line 2: signature invalid: the line was altered after signing"
    )


def test_garbage_lines_in_the_checkpoint_file_are_named(ten: Keyed) -> None:
    path = ten.paths.checkpoint_file
    with path.open("a") as fh:
        fh.write("{not json\n")
        fh.write("x" * 10_000 + "\n")
        fh.write('{"v": 1}\n')
    problems = _full(ten).problems
    assert problems[0].startswith("checkpoint line 3: not JSON")
    assert problems[1] == "checkpoint line 4: line too long"
    assert problems[2] == "checkpoint line 5: fields missing or unknown"


def test_replayed_checkpoint_line_is_named(ten: Keyed) -> None:
    path = ten.paths.checkpoint_file
    first = path.read_text().splitlines()[0]
    with path.open("a") as fh:
        fh.write(first + "\n")
    assert _full(ten).problems == [
        "checkpoint line 3 (record 6): checkpoint 1 appears twice (also line 1)"
    ]


def test_verify_without_any_key_says_what_it_did_not_check(ten: Keyed) -> None:
    result = verify(ten.trail.engine)
    assert result.ok and not result.hmac_checked and not result.checkpoints_checked
    assert len(result.not_checked) == 2


# --- migration of an existing (unkeyed) log -------------------------------------------------


def test_legacy_log_is_reported_unkeyed_and_anchored(
    tmp_path: Path, make_trail: TrailFactory
) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite"
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")  # the schema before the keyed chain
        prev = GENESIS
        for seq in (1, 2, 3):  # records as the old hub wrote them
            # naive UTC, as SQLite stores it
            ts = datetime(2026, 11, 1, 12, seq, tzinfo=UTC).replace(tzinfo=None)
            digest = record_hash(seq, ts, "old", "thing.done", str(seq), {}, prev)
            conn.exec_driver_sql(
                "INSERT INTO audit_log (seq, ts, actor, action, target, details, prev_hash, hash)"
                " VALUES (?, ?, 'old', 'thing.done', ?, '{}', ?, ?)",
                (seq, ts.isoformat(sep=" "), str(seq), prev, digest),
            )
            prev = digest
    engine.dispose()
    store = Store(url)  # migrates: the old records are marked legacy
    try:
        keyed = make_trail(store, every_records=100)
        _fill(keyed, 2)
        result = _full(keyed)
        assert result.ok and result.legacy_records == 3
        assert any(
            "records 1..3 are legacy, unkeyed" in n and "keyed record 4 anchors them" in n
            for n in result.not_checked
        )
        # Once anchored, rewriting the legacy part breaks the first keyed record's link.
        rewrite_chain(store.engine, 2, legacy_hasher, edit=_edit, chain=CHAIN_LEGACY, stop_seq=3)
        assert _full(keyed).problems == [
            "record 4: previous-hash link broken: the record before it was edited, deleted or "
            "replaced"
        ]
    finally:
        store.close()
