"""The relational store on SQLite and on a real PostgreSQL: migrations, idempotent ingest,
newest-wins upserts, retention, and the audit chain."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, select, update

from edge.protocol import (
    Alert,
    AlertKind,
    CmdChannel,
    ConfigPush,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    EntityKind,
    Health,
    Inbound,
    Position,
    PositionBatch,
    Severity,
    decode_device_message,
    device_topic,
    encode,
)
from edge.validators import utcnow
from hub import audit, retention
from hub.commands.outbox import CommandOutbox
from hub.config import AuditConfig, RetentionConfig
from hub.schema import (
    alerts,
    audit_log,
    command_outbox,
    device_state,
    latest_positions,
    metadata,
    positions,
)
from hub.store import Store


def _in(msg: Alert | DeviceState | PositionBatch | Health, kind: str = "camera") -> Inbound:
    channel = {Alert: "alert", DeviceState: "state", PositionBatch: "pos", Health: "health"}[
        type(msg)
    ]
    return decode_device_message(device_topic(msg.site, kind, msg.device, channel), encode(msg))


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url)
    yield s  # type: ignore[misc]
    s.close()


def test_migrations_match_the_schema(store: Store) -> None:
    store.migrate()  # a second run is a no-op
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_alerts_are_idempotent(store: Store) -> None:
    a = Alert(site="s", device="d", kind=AlertKind.SOS, severity=Severity.HIGH)
    b = Alert(site="s", device="d", kind=AlertKind.TAMPER, severity=Severity.LOW)
    first = store.write_batch([_in(a), _in(b), _in(a)])
    assert first.acks == {("s", "d"): [a.id, b.id]}  # one ack per id, even sent twice
    again = store.write_batch([_in(a)])
    assert again.acks == {("s", "d"): [a.id]}
    assert store.count_alerts("s") == 2
    with store.engine.connect() as conn:
        payload = conn.execute(select(alerts.c.payload).where(alerts.c.id == a.id)).scalar_one()
    assert payload["kind"] == "sos"


def test_latest_position_and_state_newest_wins(store: Store) -> None:
    now = utcnow()
    new = Position(entity="w1", entity_kind=EntityKind.WEARER, lon=2.0, lat=2.0, ts=now)
    old = new.model_copy(update={"lon": 1.0, "ts": now - timedelta(seconds=5)})
    store.write_batch([_in(PositionBatch(site="s", device="d", positions=[new]), "wristband")])
    store.write_batch([_in(PositionBatch(site="s", device="d", positions=[old]), "wristband")])
    with store.engine.connect() as conn:
        assert conn.execute(select(latest_positions.c.lon)).scalar_one() == 2.0
        assert conn.execute(select(func.count()).select_from(positions)).scalar_one() == 2
    online = DeviceState(
        site="s", device="d", state=DeviceStatus.ONLINE, kind=DeviceKind.CAMERA, ts=now
    )
    stale = online.model_copy(
        update={"state": DeviceStatus.STOPPED, "ts": now - timedelta(seconds=1)}
    )
    store.write_batch([_in(online)])
    store.write_batch([_in(stale)])  # a replayed older state must not win
    with store.engine.connect() as conn:
        assert conn.execute(select(device_state.c.state)).scalar_one() == "online"
    # The last will was composed at connect time, before "online": it wins all the same.
    will = online.model_copy(update={"state": DeviceStatus.OFFLINE,
                                     "ts": now - timedelta(seconds=30)})
    store.write_batch([_in(will)])
    with store.engine.connect() as conn:
        assert conn.execute(select(device_state.c.state)).scalar_one() == "offline"


def test_retention_keeps_unacknowledged_alerts(store: Store) -> None:
    old_ts = utcnow() - timedelta(days=400)
    acked = Alert(site="s", device="d", kind=AlertKind.SOS, severity=Severity.HIGH, ts=old_ts)
    open_ = Alert(site="s", device="d", kind=AlertKind.SOS, severity=Severity.HIGH, ts=old_ts)
    pos = Position(
        entity="w", entity_kind=EntityKind.WEARER, lon=0, lat=0, ts=utcnow() - timedelta(days=40)
    )
    store.write_batch(
        [
            _in(acked),
            _in(open_),
            _in(PositionBatch(site="s", device="d", positions=[pos]), "wristband"),
            _in(Health(site="s", device="d", uptime_s=1, ts=utcnow())),
        ]
    )
    with store.engine.begin() as conn:
        conn.execute(update(alerts).where(alerts.c.id == acked.id).values(status="acknowledged"))
    deleted = retention.enforce(store.engine, RetentionConfig())
    assert deleted == {
        "positions": 1,
        "health": 0,
        "replies": 0,
        "evidence": 0,
        "face_crops": 0,
        "alerts": 1,
        "rejected": 0,
        "commands": 0,
    }
    assert store.alert_ids("s") == [open_.id]


def _keyed_trail(store: Store, tmp_path: Path) -> audit.AuditTrail:
    config = AuditConfig(directory=tmp_path / "audit", key_env=None, checkpoint_every_records=3)
    paths = audit.AuditPaths.resolve(config, store.url)
    return audit.AuditTrail(store.engine, audit.AuditSettings.open(config, paths))


def test_audit_chain_detects_edits_and_deletions(store: Store, tmp_path: Path) -> None:
    trail = _keyed_trail(store, tmp_path)
    for i in range(6):
        trail.record("alice", "thing.done", f"t{i}", {"n": i, "note": "检查"})
    result = trail.verify()
    assert result.ok and result.records == 8  # 6 + checkpoint records 4 and 8
    with store.engine.begin() as conn:  # an insider edits one record's details
        conn.execute(
            update(audit_log).where(audit_log.c.seq == 3).values(details={"n": 99, "note": "检查"})
        )
    broken = trail.verify()
    assert broken.problems[0] == (
        "record 3: HMAC does not match: edited, forged without the audit key, or written under "
        "another key"
    )
    with store.engine.begin() as conn:
        conn.execute(
            update(audit_log).where(audit_log.c.seq == 3).values(details={"n": 2, "note": "检查"})
        )
    assert trail.verify().ok
    with store.engine.begin() as conn:  # deletes one in the middle
        conn.execute(delete(audit_log).where(audit_log.c.seq == 5))
    problems = trail.verify().problems
    assert "record 6: records 5..5 before it are missing (deleted)" in problems
    assert any(p.startswith("record 6: previous-hash link broken") for p in problems)


def test_audit_checkpoint_catches_tail_deletion(store: Store, tmp_path: Path) -> None:
    trail = _keyed_trail(store, tmp_path)
    for i in range(3):
        trail.record("bob", "x", str(i))
    with store.engine.begin() as conn:  # the newest record (checkpoint 1 signs it) goes
        conn.execute(delete(audit_log).where(audit_log.c.seq == 4))
    assert trail.verify().problems == [
        "checkpoint line 1 (record 4): signs record 4 but the log ends at record 3: "
        "newest records deleted"
    ]


def test_retention_deletes_only_finished_commands(store: Store) -> None:
    """A command still pending or sent is the hub's promise to deliver it: never expired by age;
    answered, failed and superseded ones go after ``commands_days``."""
    old = utcnow() - timedelta(days=100)
    ids: dict[str, str] = {}
    with store.engine.begin() as conn:
        for state in ("pending", "sent", "answered", "failed", "superseded"):
            for age, when in (("old", old), ("new", utcnow())):
                push = ConfigPush(site="s", device="d", config_version=1, config={})
                ids[f"{state}-{age}"] = CommandOutbox(clock=lambda when=when: when).enqueue(
                    conn, push, CmdChannel.CONFIG, created_by="test"
                )
                conn.execute(
                    update(command_outbox)
                    .where(command_outbox.c.id == push.id)
                    .values(state=state)
                )
    deleted = retention.enforce(store.engine, RetentionConfig())
    assert deleted["commands"] == 3
    with store.engine.connect() as conn:
        left = set(conn.execute(select(command_outbox.c.id)).scalars())
    gone = {ids[f"{s}-old"] for s in ("answered", "failed", "superseded")}
    assert left == set(ids.values()) - gone
