"""Poison-proof ingest on SQLite and a real PostgreSQL: a message the database refuses is kept
as a dead letter and the rest of its batch is stored and acked; a database that cannot be
reached is retried, not blamed on a message; the dead-letter table stays bounded."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select

from edge.bus import Bus, BusConfig
from edge.protocol import (
    Alert,
    AlertKind,
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
    parse_topic,
)
from edge.validators import utcnow
from hub import retention
from hub.config import RetentionConfig
from hub.ingest import DEAD_LETTERS_PENDING_MAX, DeadLetterLimiter, Ingest
from hub.schema import device_state, health, positions, rejected_messages
from hub.store import (
    DEAD_LETTER_HEAD_BYTES,
    BatchResult,
    DeadLetter,
    Store,
    StoreUnavailableError,
)
from tests.support.waiting import wait_until

CHANNELS = {Alert: "alert", DeviceState: "state", PositionBatch: "pos", Health: "health"}


def _in(msg: Alert | DeviceState | PositionBatch | Health) -> Inbound:
    # Wearer positions come from wristband gateways (hub/ownership.py).
    kind = "wristband" if isinstance(msg, PositionBatch) else "camera"
    topic = device_topic(msg.site, kind, msg.device, CHANNELS[type(msg)])
    if getattr(msg, "config_version", None) == POISON_VERSION:
        return Inbound(parse_topic(topic), msg)  # type: ignore[arg-type]
    return decode_device_message(topic, encode(msg))


POISON_VERSION = 2**64


def _poison_state(device: str = "d") -> DeviceState:
    """No database column takes this config_version: PostgreSQL's INTEGER says "out of
    range", SQLite's driver cannot bind a 65-bit integer. The contract refuses it now
    (issue 11, item 6), so it is built unvalidated: it stands for any value the contract
    lets through and the database does not."""
    return DeviceState.model_construct(
        site="s",
        device=device,
        state=DeviceStatus.ONLINE,
        kind=DeviceKind.CAMERA,
        config_version=POISON_VERSION,
    )


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def _count(store: Store, table: object) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_the_poison_message_really_fails_the_database(store: Store) -> None:
    """The premise of the isolation tests: this message does fail the write on its own."""
    with pytest.raises(Exception) as info:  # noqa: PT011  (driver-specific class)
        store._write([_in(_poison_state())])  # the unisolated write path
    assert not isinstance(info.value, StoreUnavailableError)


def test_one_refused_message_does_not_fail_its_batch(store: Store) -> None:
    alert = Alert(site="s", device="d", kind=AlertKind.SOS, severity=Severity.HIGH)
    pos = Position(entity="w1", entity_kind=EntityKind.WEARER, lon=1.0, lat=2.0, ts=utcnow())
    beat = Health(site="s", device="d", uptime_s=5)
    poison = _poison_state()
    batch = [
        _in(alert),
        _in(poison),
        _in(PositionBatch(site="s", device="d", positions=[pos])),
        _in(beat),
    ]
    result = store.write_batch(batch)
    assert result.acks == {("s", "d"): [alert.id]}
    assert result.alerts_new == 1 and result.positions == 1 and result.health == 1
    assert [r.item.message.id for r in result.rejected] == [poison.id]
    assert result.rejected_by_reason() == {"store_bad_value": 1}
    assert store.alert_ids("s") == [alert.id]
    assert _count(store, positions) == 1 and _count(store, health) == 1
    assert _count(store, device_state) == 0
    [letter] = store.dead_letters(limit=10)
    assert letter.reason == "store_bad_value" and letter.message_id == poison.id
    assert (letter.site, letter.device, letter.channel) == ("s", "d", "state")
    assert letter.topic == "gw/v1/s/camera/d/state"
    assert json.loads(letter.payload_head)["config_version"] == POISON_VERSION
    # The database's own words, never the statement or its parameters.
    assert "INSERT" not in letter.error and letter.error
    # The same batch again: nothing is stored twice, the poison is refused again.
    again = store.write_batch(batch[:2])
    assert again.alerts_duplicate == 1 and len(again.rejected) == 1
    assert store.count_alerts("s") == 1


def test_every_message_refused_still_returns(store: Store) -> None:
    result = store.write_batch([_in(_poison_state(f"d{i}")) for i in range(3)])
    assert len(result.rejected) == 3 and not result.acks
    assert len(store.dead_letters(limit=10)) == 3


def test_dead_letters_are_bounded(store: Store) -> None:
    letters = [
        DeadLetter("gw/v1/s/camera/d/alert", "bad_json", b"x" * 5000, "e" * 2000)
        for _ in range(250)
    ]
    store.write_dead_letters(letters)
    newest = store.dead_letters(limit=1)[0]
    assert len(newest.payload_head) == DEAD_LETTER_HEAD_BYTES and newest.payload_bytes == 5000
    assert len(newest.error) == 500
    assert store.trim_dead_letters(100) == 150
    kept = store.dead_letters(limit=1000)
    assert len(kept) == 100 and kept[0].id == newest.id
    assert store.trim_dead_letters(100) == 0
    # Paging, newest first, and the filters.
    page = store.dead_letters(limit=10, before_id=kept[9].id)
    assert [r.id for r in page] == [r.id for r in kept[10:20]]
    assert store.dead_letters(limit=10, device="other") == []
    assert len(store.dead_letters(limit=1000, reason="bad_json")) == 100


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.postgres
def test_unreachable_database_is_retried_not_blamed_on_a_message(tmp_path: Path) -> None:
    store = Store(f"postgresql+psycopg://gw@127.0.0.1:{_dead_port()}/gw", migrate=False)
    alert = Alert(site="s", device="d", kind=AlertKind.SOS, severity=Severity.HIGH)
    try:
        with pytest.raises(StoreUnavailableError) as info:
            store.write_batch([_in(alert)])
        assert [i.message.id for i in info.value.remaining] == [alert.id]
        assert not info.value.stored.acks
        bus = Bus(BusConfig(), client_id="never-connects")
        ingest = Ingest(bus, store, retry_s=0.05)
        ingest.start()
        try:
            ingest.handle("gw/v1/s/camera/d/alert", encode(alert))
            wait_until(lambda: ingest.stats.store_errors >= 2, message="retried")
            assert ingest.worker_status().alive
            assert not ingest.stats.rejected  # not the message's fault
        finally:
            ingest.stop()
            bus.stop()
        assert ingest.stats.rejected == {"store_unavailable": 1}
        assert ingest.stats.acks_sent == 0
    finally:
        store.close()


def test_limiter_refills_with_the_clock() -> None:
    now = [0.0]
    limiter = DeadLetterLimiter(per_s=2, burst=3, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5
    assert limiter.allow() and not limiter.allow()
    now[0] += 100
    assert sum(limiter.allow() for _ in range(10)) == 3  # never more than the burst


def test_a_flood_of_garbage_is_counted_but_recorded_within_bounds(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/flood.sqlite")
    bus = Bus(BusConfig(), client_id="flood")
    now = [0.0]
    ingest = Ingest(
        bus, store, dead_letters_per_s=5, dead_letter_max_rows=100, clock=lambda: now[0]
    )
    try:
        for i in range(5000):
            ingest.handle("gw/v1/s/camera/d/alert", b"{" + str(i).encode())
        assert ingest.stats.received == 5000 and ingest.stats.rejected == {"bad_json": 5000}
        assert ingest.stats.dead_letters_skipped == 5000 - 50  # burst: 10 s at 5/s
        ingest._flush_dead_letters()  # what the worker does each round
        assert _count(store, rejected_messages) == 50
        for _ in range(10):  # time passes, the flood goes on
            now[0] += 60
            for i in range(200):
                ingest.handle("gw/v1/s/camera/d/health", b"\xff" + bytes([i]))
            ingest._flush_dead_letters()  # what the worker does each round
        assert ingest.stats.rejected["bad_json"] == 7000
        assert _count(store, rejected_messages) <= 100 + 50  # trimmed every 100 kept
        [row] = store.dead_letters(limit=1)
        assert row.reason == "bad_json" and row.channel == "health" and row.device == "d"
        now[0] += 60
        ingest.handle("gw/v1/s/camera/d/pos", b"[" * 100_000)  # over any limit, kept short
        ingest._flush_dead_letters()  # what the worker does each round
        [big] = store.dead_letters(limit=1)
        assert big.reason == "too_large" and big.payload_bytes == 100_000
        assert bytes(big.payload_head) == b"[" * DEAD_LETTER_HEAD_BYTES
    finally:
        bus.stop()
        store.close()


def test_a_full_queue_never_holds_the_mqtt_thread_for_ever(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/full.sqlite")
    bus = Bus(BusConfig(), client_id="full")
    ingest = Ingest(bus, store, queue_max=1, alert_wait_s=0.05)  # no worker: nothing drains
    try:
        first = Alert(site="s", device="d", kind=AlertKind.SOS, severity=Severity.HIGH)
        second = Alert(site="s", device="d", kind=AlertKind.SOS, severity=Severity.HIGH)
        ingest.handle("gw/v1/s/camera/d/alert", encode(first))
        ingest.handle("gw/v1/s/camera/d/alert", encode(second))  # returns: left unacked
        assert ingest.stats.alerts_deferred == 1 and len(ingest.queue) == 1
        beat = Health(site="s", device="d", uptime_s=1)
        ingest.handle("gw/v1/s/camera/d/health", encode(beat))  # telemetry drops the oldest
        assert ingest.queue_stats()["dropped"] == {"health_queue_full": 1}
        assert store.count_alerts() == 0 and ingest.stats.acks_sent == 0
    finally:
        bus.stop()
        store.close()


class CountingStore(Store):
    """A real store that counts its transactions and can lose the database after ``down_after``
    of them (the one fault a test cannot make a real server produce on cue mid-batch)."""

    def __init__(self, url: str, down_after: int | None = None) -> None:
        super().__init__(url)
        self.writes = 0
        self.down_after = down_after

    def _write(self, items: Sequence[Inbound]) -> BatchResult:
        self.writes += 1
        if self.down_after is not None and self.writes > self.down_after:
            raise sa_exc.OperationalError("INSERT", {}, ConnectionError("server closed"))
        return super()._write(items)


def _beats(n: int) -> list[Inbound]:
    return [_in(Health(site="s", device="d", uptime_s=i)) for i in range(n)]


def test_isolation_halves_the_batch_instead_of_writing_one_by_one(db_url: str) -> None:
    store = CountingStore(db_url)
    try:
        batch = _beats(64)
        batch[37] = _in(_poison_state())
        result = store.write_batch(batch)
        assert result.health == 63 and len(result.rejected) == 1
        assert result.rejected[0].item is batch[37]
        # 1 refused batch, then two halves per level down to the one poison: 1 + 2*6 = 13.
        assert store.writes == 13
        assert _count(store, health) == 63
    finally:
        store.close()


def test_database_lost_while_isolating_keeps_what_was_stored(db_url: str) -> None:
    store = CountingStore(db_url, down_after=2)  # the full batch fails, the first half works
    try:
        alerts_ = [
            _in(Alert(site="s", device="d", kind=AlertKind.SOS, severity=Severity.HIGH))
            for _ in range(4)
        ]
        batch = [*alerts_[:2], _in(_poison_state()), *alerts_[2:]]
        with pytest.raises(StoreUnavailableError) as info:
            store.write_batch(batch)
        stored, remaining = info.value.stored, info.value.remaining
        assert stored.acks == {("s", "d"): [a.message.id for a in alerts_[:2]]}
        assert remaining == batch[2:]  # retried later, from the first message not yet stored
        store.down_after = None
        again = store.write_batch(remaining)
        assert again.alerts_new == 2 and len(again.rejected) == 1
        assert store.count_alerts("s") == 4
    finally:
        store.close()


def test_a_failing_gate_rejects_instead_of_killing_the_mqtt_thread(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/gate.sqlite")
    bus = Bus(BusConfig(), client_id="gate")

    def broken_gate(_inbound: Inbound) -> str | None:
        raise LookupError("registry bug")

    ingest = Ingest(bus, store, gate=broken_gate)
    try:
        alert = Alert(site="s", device="d", kind=AlertKind.SOS, severity=Severity.HIGH)
        ingest.handle("gw/v1/s/camera/d/alert", encode(alert))  # must not raise
        assert ingest.stats.rejected == {"gate_error": 1} and len(ingest.queue) == 0
    finally:
        bus.stop()
        store.close()


def test_retention_expires_old_dead_letters(store: Store) -> None:
    old = DeadLetter(
        "gw/v1/s/camera/d/alert", "bad_json", b"{", received_at=utcnow() - timedelta(days=15)
    )
    new = DeadLetter("gw/v1/s/camera/d/alert", "bad_json", b"{")
    store.write_dead_letters([old, new])
    assert retention.enforce(store.engine, RetentionConfig(rejected_days=14))["rejected"] == 1
    assert len(store.dead_letters(limit=10)) == 1
    store.write_dead_letters([new] * 150)
    assert retention.enforce(store.engine, RetentionConfig(rejected_max_rows=100))["rejected"] == 51


def test_dead_letters_waiting_for_a_stuck_worker_are_bounded(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/stuck.sqlite")
    bus = Bus(BusConfig(), client_id="stuck")
    ingest = Ingest(bus, store, dead_letters_per_s=1000)  # the rate would allow them all
    try:
        for _ in range(5000):  # and nothing flushes them: the worker is not running
            ingest.handle("gw/v1/s/camera/d/alert", b"\xff" * 1000)
        assert ingest.queue_stats()["dead_letters_pending"] == DEAD_LETTERS_PENDING_MAX
        assert ingest.stats.dead_letters_skipped == 5000 - DEAD_LETTERS_PENDING_MAX
        assert ingest.stats.rejected == {"bad_json": 5000}
    finally:
        bus.stop()
        store.close()
