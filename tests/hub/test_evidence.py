"""Evidence snapshots live in their own table on SQLite and PostgreSQL: written with their
alert, never in its payload, expired by their own retention, moved out of old payloads by the
migration."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select, true, update

from edge.protocol import (
    Alert,
    AlertKind,
    Evidence,
    Severity,
    decode_device_message,
    device_topic,
    encode,
)
from edge.validators import utcnow
from hub import retention
from hub.config import RetentionConfig
from hub.schema import alerts, evidence
from hub.store import MIGRATIONS, Store
from tests.support.images import decoded_size, small_jpeg

JPEG = small_jpeg(64, 48)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def _alert(**extra: object) -> Alert:
    return Alert(
        site="s",
        device="cam",
        kind=AlertKind.INTRUSION,
        severity=Severity.HIGH,
        evidence=Evidence.from_jpeg(JPEG, 64, 48),
        **extra,  # type: ignore[arg-type]
    )


def _store_alert(store: Store, alert: Alert) -> None:
    topic = device_topic("s", "camera", "cam", "alert")
    store.write_batch([decode_device_message(topic, encode(alert))])


def _evidence_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(evidence)).scalar_one())


def test_snapshot_is_stored_apart_from_the_alert_payload(store: Store) -> None:
    alert = _alert()
    _store_alert(store, alert)
    _store_alert(store, alert)  # the device resends before it sees the ack
    with store.engine.connect() as conn:
        payload = conn.execute(select(alerts.c.payload)).scalar_one()
    assert "data_b64" not in str(payload)
    ref = payload["evidence"]
    snap = store.evidence_of(alert.id)
    assert snap is not None and ref["id"] == snap.id
    # The hub's own re-encoding is stored; the digests say which bytes are which.
    data = bytes(snap.data)
    assert decoded_size(data) == (64, 48)
    assert snap.sha256 == ref["sha256"] == hashlib.sha256(data).hexdigest()
    assert ref["source_sha256"] == hashlib.sha256(JPEG).hexdigest()
    assert (snap.width, snap.height, snap.size_bytes) == (64, 48, len(data))
    assert snap.content_type == "image/jpeg"
    assert _evidence_rows(store) == 1  # once, however often the alert arrives


def test_evidence_retention_keeps_the_alert_and_honours_holds(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = _alert(), _alert()
    _store_alert(store, old)
    _store_alert(store, new)
    with store.engine.begin() as conn:
        conn.execute(
            update(evidence)
            .where(evidence.c.alert_id == old.id)
            .values(created_at=utcnow() - timedelta(days=31))
        )
    old_snap = store.evidence_of(old.id)
    assert old_snap is not None
    held = RetentionConfig(evidence_days=30)
    monkeypatch.setattr(retention, "evidence_on_hold", true)  # e.g. an open incident links it
    assert retention.enforce(store.engine, held)["evidence"] == 0
    monkeypatch.undo()
    assert retention.enforce(store.engine, held)["evidence"] == 1
    assert store.evidence_of(old.id) is None and store.evidence_of(new.id) is not None
    with store.engine.connect() as conn:
        gone = conn.execute(select(alerts.c.payload).where(alerts.c.id == old.id)).scalar_one()
    # No client is offered a snapshot that is gone; the digest stays on the record.
    assert "evidence" not in gone
    assert gone["evidence_expired"]["sha256"] == old_snap.sha256
    assert sorted(store.alert_ids("s")) == sorted([old.id, new.id])
    assert "evidence" not in retention.enforce(store.engine, RetentionConfig(evidence_days=None))
    # An alert that expires takes its snapshot with it.
    with store.engine.begin() as conn:
        conn.execute(
            update(alerts)
            .where(alerts.c.id == new.id)
            .values(status="acknowledged", ts=utcnow() - timedelta(days=400))
        )
    assert retention.enforce(store.engine, RetentionConfig(evidence_days=None))["alerts"] == 1
    assert store.evidence_of(new.id) is None and _evidence_rows(store) == 0


def _alembic(store: Store, action: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def test_migration_moves_old_payload_evidence_out_and_back(db_url: str) -> None:
    store = Store(db_url, migrate=False)
    try:
        _alembic(store, "upgrade", "0005")
        alert = _alert()
        old_payload = alert.model_dump(mode="json", exclude_none=True)
        now = utcnow()
        with store.engine.begin() as conn:
            conn.execute(
                alerts.insert().values(
                    id=alert.id,
                    site="s",
                    device="cam",
                    kind="intrusion",
                    severity="high",
                    ts=alert.ts,
                    received_at=now,
                    payload=old_payload,
                )
            )
            bare = _alert().model_copy(update={"evidence": None})
            conn.execute(
                alerts.insert().values(
                    id=bare.id,
                    site="s",
                    device="cam",
                    kind="intrusion",
                    severity="high",
                    ts=bare.ts,
                    received_at=now,
                    payload=bare.model_dump(mode="json", exclude_none=True),
                )
            )
        store.migrate()
        with store.engine.connect() as conn:
            payload = conn.execute(
                select(alerts.c.payload).where(alerts.c.id == alert.id)
            ).scalar_one()
        assert "data_b64" not in str(payload)
        snap = store.evidence_of(alert.id)
        assert (
            snap is not None and bytes(snap.data) == JPEG and payload["evidence"]["id"] == snap.id
        )
        assert store.evidence_of(bare.id) is None
        _alembic(store, "downgrade", "0005")
        with store.engine.connect() as conn:
            back = conn.execute(
                select(alerts.c.payload).where(alerts.c.id == alert.id)
            ).scalar_one()
        assert base64.b64decode(back["evidence"]["data_b64"]) == JPEG
        assert Alert.model_validate(back) == alert
    finally:
        store.close()
