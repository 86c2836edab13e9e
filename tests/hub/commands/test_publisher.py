"""The command outbox against a real broker and real databases: commands are published only
after their transaction commits, retried with backoff on an injected clock until the device
that was addressed answers, failed when exhausted, and claimed once per attempt by replicas."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from edge.bus import Bus
from edge.protocol import (
    AlertKind,
    Channel,
    CmdChannel,
    ConfigPush,
    DeviceKind,
    Notify,
    Reply,
    Severity,
    cmd_filter,
    decode_device_message,
    device_topic,
    encode,
)
from hub.commands.config import CommandOutboxConfig
from hub.commands.outbox import CommandOutbox
from hub.commands.publisher import CommandPublisher
from hub.commands.service import CommandService
from hub.errors import Invalid, TooLarge
from hub.schema import command_outbox
from hub.store import Store
from tests.support.broker import BrokerHarness
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_until

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
CONFIG = CommandOutboxConfig(
    retry_initial_s=10, retry_max_s=40, max_attempts=3, max_age_s=3600, broker_retry_s=5
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Watcher:
    """Counts what reaches a device's command topics (message id -> deliveries)."""

    def __init__(self, broker: BrokerHarness, site: str, device: str, name: str) -> None:
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.bus = Bus(broker.hub_config(), client_id=f"{name}-watch")
        self.bus.subscribe(cmd_filter(site, device), self._on, 1)
        self.bus.start()
        assert self.bus.wait_connected(30)

    def _on(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.seen[json.loads(payload)["id"]] += 1

    def count(self, command_id: str) -> int:
        with self._lock:
            return self.seen[command_id]

    def stop(self) -> None:
        self.bus.stop()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture
def hub_bus(broker: BrokerHarness, site: str) -> Iterator[Bus]:
    bus = Bus(broker.hub_config(), client_id=f"{site}-pub")
    bus.start()
    assert bus.wait_connected(30)
    yield bus
    bus.stop()


def _push(site: str, device: str, version: int = 1) -> ConfigPush:
    return ConfigPush(site=site, device=device, config_version=version, config={"v": version})


def _state(store: Store, command_id: str) -> str:
    return CommandService(store.engine).get(command_id).state


def _reply(store: Store, site: str, device: str, request_id: str, *, ok: bool) -> None:
    reply = Reply(
        site=site, device=device, request_id=request_id, ok=ok, error=None if ok else "no"
    )
    topic = device_topic(site, DeviceKind.CAMERA, device, Channel.REPLY)
    store.write_batch([decode_device_message(topic, encode(reply))])


def test_rolled_back_change_never_publishes(
    store: Store, hub_bus: Bus, broker: BrokerHarness, site: str
) -> None:
    device = f"{site}-cam"
    clock = Clock()
    outbox = CommandOutbox(clock)
    publisher = CommandPublisher(store.engine, hub_bus, outbox, CONFIG, clock)
    watcher = Watcher(broker, site, device, site)
    push = _push(site, device)
    try:

        def failing_change() -> None:
            with store.engine.begin() as conn:
                outbox.enqueue(conn, push, CmdChannel.CONFIG, created_by="t")
                raise RuntimeError("the change that caused the command fails")

        with pytest.raises(RuntimeError):
            failing_change()
        assert publisher.publish_due() == 0
        with store.engine.connect() as conn:
            assert conn.execute(select(command_outbox)).first() is None
        # and a committed one goes out, once
        with store.engine.begin() as conn:
            outbox.enqueue(conn, push, CmdChannel.CONFIG, created_by="t")
        assert publisher.publish_due() == 1
        wait_until(lambda: watcher.count(push.id) == 1, message="the committed push")
        assert _state(store, push.id) == "sent"
    finally:
        watcher.stop()


def test_retries_with_backoff_then_fails_visibly(
    store: Store, hub_bus: Bus, broker: BrokerHarness, site: str
) -> None:
    device = f"{site}-mute"
    clock = Clock()
    outbox = CommandOutbox(clock)
    publisher = CommandPublisher(store.engine, hub_bus, outbox, CONFIG, clock)
    watcher = Watcher(broker, site, device, site)
    push = _push(site, device)
    try:
        with store.engine.begin() as conn:
            outbox.enqueue(conn, push, CmdChannel.CONFIG, created_by="t")
        for delivered, wait_s in enumerate((10, 20), start=1):  # retry_initial_s, then doubled
            assert publisher.publish_due() == 1
            wait_until(lambda n=delivered: watcher.count(push.id) == n, message="attempt")
            clock.advance(wait_s - 1)
            assert publisher.publish_due() == 0, "retried before its backoff ran out"
            clock.advance(1)
        assert publisher.publish_due() == 1  # the third and last attempt
        wait_until(lambda: watcher.count(push.id) == 3, message="third attempt")
        command = CommandService(store.engine).get(push.id)
        assert (command.state, command.attempts) == ("sent", 3)
        clock.advance(39)
        assert publisher.publish_due() == 0
        assert _state(store, push.id) == "sent"  # still waiting for the last answer
        clock.advance(1)
        publisher.publish_due()
        failed = CommandService(store.engine).get(push.id)
        assert failed.state == "failed"
        assert failed.last_error == "no answer after 3 attempts"
        assert failed.next_attempt_at is None
        assert watcher.count(push.id) == 3
        assert publisher.stats["failed"] == 1
    finally:
        watcher.stop()


def test_only_the_addressed_devices_reply_answers(store: Store, hub_bus: Bus, site: str) -> None:
    device, other = f"{site}-cam", f"{site}-intruder"
    clock = Clock()
    outbox = CommandOutbox(clock)
    publisher = CommandPublisher(store.engine, hub_bus, outbox, CONFIG, clock)
    push = _push(site, device)
    with store.engine.begin() as conn:
        outbox.enqueue(conn, push, CmdChannel.CONFIG, created_by="t")
    publisher.publish_due()
    _reply(store, site, other, push.id, ok=True)  # a forged answer from another device
    publisher.publish_due()
    assert _state(store, push.id) == "sent"
    _reply(store, site, device, push.id, ok=False)
    clock.advance(CONFIG.retry_initial_s)
    assert publisher.publish_due() == 0, "an answered command is not retried"
    answered = CommandService(store.engine).get(push.id)
    assert (answered.state, answered.answer_ok, answered.answer_error) == ("answered", False, "no")
    assert answered.attempts == 1


def test_broker_unreachable_gives_the_attempt_back(
    store: Store, broker: BrokerHarness, site: str
) -> None:
    clock = Clock()
    outbox = CommandOutbox(clock)
    never_started = Bus(broker.hub_config(), client_id=f"{site}-down")
    publisher = CommandPublisher(store.engine, never_started, outbox, CONFIG, clock)
    push = _push(site, f"{site}-cam")
    with store.engine.begin() as conn:
        outbox.enqueue(conn, push, CmdChannel.CONFIG, created_by="t")
    assert publisher.publish_due() == 0
    pending = CommandService(store.engine).get(push.id)
    assert (pending.state, pending.attempts) == ("pending", 0)
    assert pending.last_error is not None and "broker unreachable" in pending.last_error
    assert pending.next_attempt_at == T0 + timedelta(seconds=CONFIG.broker_retry_s)
    assert publisher.stats["broker_unavailable"] == 1


def test_a_newer_config_supersedes_the_older(
    store: Store, hub_bus: Bus, broker: BrokerHarness, site: str
) -> None:
    device = f"{site}-cam"
    clock = Clock()
    outbox = CommandOutbox(clock)
    publisher = CommandPublisher(store.engine, hub_bus, outbox, CONFIG, clock)
    watcher = Watcher(broker, site, device, site)
    first, second = _push(site, device, 1), _push(site, device, 2)
    try:
        for push in (first, second):
            with store.engine.begin() as conn:
                outbox.enqueue(conn, push, CmdChannel.CONFIG, created_by="t", supersede=True)
        assert publisher.publish_due() == 1
        wait_until(lambda: watcher.count(second.id) == 1, message="the newer push")
        assert watcher.count(first.id) == 0
        assert _state(store, first.id) == "superseded"
    finally:
        watcher.stop()


def test_an_unpublishable_row_fails_and_the_rest_go_out(
    store: Store, hub_bus: Bus, broker: BrokerHarness, site: str
) -> None:
    device = f"{site}-cam"
    clock = Clock()
    outbox = CommandOutbox(clock)
    publisher = CommandPublisher(store.engine, hub_bus, outbox, CONFIG, clock)
    watcher = Watcher(broker, site, device, site)
    bad, good = _push(site, device, 1), _push(site, device, 2)
    try:
        with store.engine.begin() as conn:
            outbox.enqueue(conn, bad, CmdChannel.CONFIG, created_by="t")
            outbox.enqueue(conn, good, CmdChannel.CONFIG, created_by="t")
            # a row no hub can publish (an unknown channel), first in line
            conn.execute(
                command_outbox.update()
                .where(command_outbox.c.id == bad.id)
                .values(channel="telepathy", next_attempt_at=T0 - timedelta(seconds=1))
            )
        assert publisher.publish_due() == 1
        wait_until(lambda: watcher.count(good.id) == 1, message="the good command")
        failed = CommandService(store.engine).get(bad.id)
        assert failed.state == "failed"
        assert failed.last_error is not None and "cannot be published" in failed.last_error
    finally:
        watcher.stop()


def test_enqueue_refuses_what_cannot_be_sent(store: Store, site: str) -> None:
    outbox = CommandOutbox()
    huge = ConfigPush(
        site=site, device=f"{site}-cam", config_version=1, config={"x": "a" * 300_000}
    )
    note = Notify(
        site=site,
        device=f"{site}-g",
        alert_id=huge.id,
        kind=AlertKind.SOS,
        severity=Severity.HIGH,
        title="t",
    )
    with store.engine.begin() as conn:
        with pytest.raises(TooLarge):
            outbox.enqueue(conn, huge, CmdChannel.CONFIG, created_by="t")
        with pytest.raises(Invalid):
            outbox.enqueue(conn, note, CmdChannel.CONFIG, created_by="t")  # wrong channel
        assert conn.execute(select(command_outbox)).first() is None


@pytest.mark.postgres
def test_two_replicas_publish_each_attempt_once(
    postgres: PostgresCluster, broker: BrokerHarness, site: str
) -> None:
    url = postgres.new_database()
    stores = [Store(url), Store(url, migrate=False)]
    buses = [Bus(broker.hub_config(), client_id=f"{site}-r{i}") for i in range(2)]
    for bus in buses:
        bus.start()
        assert bus.wait_connected(30)
    clock = Clock()
    outbox = CommandOutbox(clock)
    publishers = [
        CommandPublisher(s.engine, b, CommandOutbox(clock), CONFIG, clock)
        for s, b in zip(stores, buses, strict=True)
    ]
    device = f"{site}-cam"
    watcher = Watcher(broker, site, device, site)
    pushes = [_push(site, device, v) for v in range(1, 41)]
    try:
        with stores[0].engine.begin() as conn:
            for push in pushes:
                outbox.enqueue(conn, push, CmdChannel.CONFIG, created_by="t")
        for attempt in range(1, CONFIG.max_attempts + 1):
            start = threading.Barrier(2)
            results: list[int] = []

            def run(
                p: CommandPublisher,
                barrier: threading.Barrier = start,
                out: list[int] = results,
            ) -> None:
                barrier.wait()
                out.append(p.publish_due())

            threads = [threading.Thread(target=run, args=(p,)) for p in publishers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sum(results) == len(pushes), f"attempt {attempt}: {results}"
            wait_until(
                lambda n=attempt: all(watcher.count(p.id) >= n for p in pushes),
                message=f"attempt {attempt} delivered",
            )
            assert all(watcher.count(p.id) == attempt for p in pushes)
            clock.advance(CONFIG.retry_max_s)
    finally:
        watcher.stop()
        for bus in buses:
            bus.stop()
        for s in stores:
            s.close()
