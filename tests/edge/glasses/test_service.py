"""The glasses agent against the real broker: receipt, dedupe, render, durable answers,
offline catch-up through the persistent session, restart."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from edge.agent import AgentRuntime
from edge.bus import Bus, BusConfig
from edge.glasses.config import GlassesConfig
from edge.glasses.gnss import GnssReader
from edge.glasses.service import GlassesAgent, RefusedError
from edge.protocol import (
    CmdChannel,
    DeviceKind,
    DispatchAnswer,
    EntityKind,
    HubAck,
    Notify,
    OfficerAnswer,
    ProtocolError,
    Reply,
    Severity,
    cmd_topic,
    device_filter,
    encode,
)
from edge.validators import new_id
from tests.edge.glasses.support import (
    Clock,
    HubListener,
    PtyReceiver,
    RecordingRenderer,
    RecordingSink,
    glasses_config,
    nmea,
    notify,
)
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

GGA = "GPGGA,123519,3954.522,N,11624.000,E,1,08,0.9,45.4,M,-8.9,M,,"
RMC = "GPRMC,123519,A,3954.522,N,11624.000,E,003.0,084.4,011226,,,A"


class Rig:
    def __init__(self, broker: BrokerHarness, site: str, tmp_path: Path) -> None:
        self.site = site
        self.device = f"{site}-glasses"
        self.mqtt = broker.add_device(site, DeviceKind.GLASSES, self.device)
        self.tmp = tmp_path
        self.listener = HubListener()
        self.hub = Bus(broker.hub_config(), client_id=f"{site}-hub")
        self.hub.subscribe(device_filter(site), self.listener, qos=1)
        self.hub.start()
        assert self.hub.wait_connected(5)
        self.clock = Clock()
        self.agent: GlassesAgent | None = None

    def config(self, **overrides: object) -> GlassesConfig:
        return glasses_config(self.site, self.device, self.mqtt, self.tmp / "data", **overrides)

    def start(self, **overrides: object) -> GlassesAgent:
        self.renderer, self.sink = RecordingRenderer(), RecordingSink()
        self.agent = GlassesAgent(self.config(**overrides), renderer=self.renderer,
                                  sink=self.sink, now=self.clock)
        self.agent.start()
        assert self.agent.runtime.bus.wait_connected(5)
        return self.agent

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    def send(self, message: Notify | HubAck) -> None:
        channel = CmdChannel.NOTIFY if isinstance(message, Notify) else CmdChannel.ACK
        self.hub.publish(cmd_topic(self.site, self.device, channel), encode(message), qos=1)

    def close(self) -> None:
        self.stop_agent()
        self.hub.stop()


@pytest.fixture
def rig(broker: BrokerHarness, site: str, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(broker, site, tmp_path)
    yield r
    r.close()


def test_notify_is_replied_queued_rendered_and_shown_once(rig: Rig) -> None:
    agent = rig.start()
    note = notify(rig.site, rig.device)
    rig.send(note)
    rig.send(note)  # the hub's outbox retried: same id
    wait_until(lambda: len(rig.listener.drain().replies) == 2, message="two receipts")
    assert {r.request_id for r in rig.listener.replies} == {note.id}
    assert all(r.ok for r in rig.listener.replies)
    wait_until(lambda: any(v.items for v in rig.renderer.views), message="a frame with it")
    view = rig.renderer.last()
    assert [i.notify_id for i in view.items] == [note.id]
    assert view.items[0].dispatch_id == note.dispatch_id and not view.items[0].stale
    assert rig.sink.frames >= 1
    assert agent.counters["notify_duplicate"] == 1


def test_a_withdrawn_dispatch_leaves_the_hud_even_when_the_withdrawal_comes_first(
    rig: Rig,
) -> None:
    agent = rig.start()
    kept, cancelled, late = (notify(rig.site, rig.device) for _ in range(3))
    rig.send(kept)
    rig.send(cancelled)
    wait_until(lambda: len(agent.queue) == 2, message="two queued")
    rig.send(notify(rig.site, rig.device, withdraws=cancelled.id))
    # The withdrawal of ``late`` overtakes it (an outage reorders the hub's retries).
    rig.send(notify(rig.site, rig.device, withdraws=late.id))
    rig.send(late)
    wait_until(lambda: len(rig.listener.drain().replies) == 5, message="five receipts")
    wait_until(lambda: agent.counters["notify_duplicate"] == 1, message="late one refused")
    assert [q.notify.id for q in agent.queue.items()] == [kept.id]
    wait_until(lambda: [i.notify_id for i in rig.renderer.last().items] == [kept.id],
               message="a frame without the withdrawn")
    assert agent.counters["notify_withdrawn"] == 1
    assert agent.counters["withdraw_before_notify"] == 1


def test_answer_goes_through_the_outbox_until_the_hub_acks(rig: Rig) -> None:
    agent = rig.start()
    note = notify(rig.site, rig.device)
    rig.send(note)
    wait_until(lambda: len(agent.queue) == 1, message="queued")
    with pytest.raises(RefusedError) as err:
        agent.answer("0190a1b2-0000-7000-8000-000000000000", OfficerAnswer.ACKNOWLEDGE)
    assert err.value.code == "unknown_notify"
    sent = agent.answer(None, OfficerAnswer.ACKNOWLEDGE)  # the selected (only) item
    wait_until(lambda: bool(rig.listener.drain().answers), message="answer at the hub")
    got = rig.listener.answers[0]
    assert (got.id, got.dispatch_id, got.notify_id) == (sent.id, note.dispatch_id, note.id)
    assert got.officer == "officer-li" and got.answer is OfficerAnswer.ACKNOWLEDGE
    # Not acked yet: it stays on disk (and would be resent).
    assert agent.runtime.outbox.ids() == [sent.id]
    assert agent.state()["items"][0]["answer"] == "acknowledge"
    rig.send(HubAck(site=rig.site, device=rig.device, ids=[sent.id]))
    wait_until(lambda: agent.runtime.outbox.depth() == 0, message="outbox emptied by the ack")


def test_information_only_notify_cannot_be_answered(rig: Rig) -> None:
    agent = rig.start()
    rig.send(notify(rig.site, rig.device, dispatch=False))
    wait_until(lambda: len(agent.queue) == 1, message="queued")
    with pytest.raises(RefusedError) as err:
        agent.answer(None, OfficerAnswer.ACKNOWLEDGE)
    assert err.value.code == "not_a_dispatch"
    assert agent.runtime.outbox.depth() == 0


def test_offline_catch_up_is_shown_stale_and_the_queue_survives_restart(rig: Rig) -> None:
    agent = rig.start(stale_after_s=60)
    first = notify(rig.site, rig.device)
    rig.send(first)
    wait_until(lambda: len(agent.queue) == 1, message="first queued")
    agent.answer(first.id, OfficerAnswer.ON_MY_WAY)
    rig.stop_agent()
    # The glasses are off; the broker keeps the QoS 1 notify in the persistent session.
    missed = notify(rig.site, rig.device, severity=Severity.CRITICAL)
    rig.send(missed)
    rig.clock.advance(90)  # they come back 90 s later: the missed one is older than 60 s
    agent = rig.start(stale_after_s=60)
    wait_until(lambda: len(agent.queue) == 2, message="missed notify delivered on reconnect")
    wait_until(lambda: any(r.request_id == missed.id for r in rig.listener.drain().replies),
               message="receipt of the missed notify")
    view = agent.tick()
    by_id = {i.notify_id: i for i in view.items}
    assert by_id[missed.id].stale
    assert by_id[first.id].answer is OfficerAnswer.ON_MY_WAY  # kept across the restart
    assert view.items[0].notify_id == missed.id  # unanswered before answered
    # The answer given before the restart was never acked: it is still in the outbox.
    assert agent.runtime.outbox.depth() == 1
    assert agent.counters["notify_stale_on_arrival"] == 1


def test_a_fresh_item_goes_stale_later(rig: Rig) -> None:
    agent = rig.start(stale_after_s=30)
    note = notify(rig.site, rig.device)
    rig.send(note)
    wait_until(lambda: len(agent.queue) == 1, message="queued")
    assert not agent.tick().items[0].stale
    rig.clock.advance(31)
    assert agent.tick().items[0].stale


def test_demo_auto_answer_needs_demo_flag(rig: Rig) -> None:
    with pytest.raises(ValueError, match="demo"):
        rig.config(auto_answer={"after_s": 1})
    agent = rig.start(demo=True, auto_answer={"after_s": 5})
    rig.send(notify(rig.site, rig.device))
    wait_until(lambda: len(agent.queue) == 1, message="queued")
    agent.tick()
    assert agent.runtime.outbox.depth() == 0
    for _ in range(4):
        rig.clock.advance(5)
        agent.tick()
    wait_until(lambda: len(rig.listener.drain().answers) == 3, message="three demo answers")
    assert [a.answer for a in rig.listener.answers] == [
        OfficerAnswer.ACKNOWLEDGE, OfficerAnswer.ON_MY_WAY, OfficerAnswer.ARRIVED]


class Cues:
    def __init__(self) -> None:
        self.said: list[tuple[str, str]] = []

    def say(self, text: str, language: str) -> bool:
        self.said.append((text, language))
        return True


def test_positions_follow_the_pty_gnss_at_the_configured_rate(rig: Rig) -> None:
    pty = PtyReceiver()
    config = rig.config(position={"source": "gnss", "port": pty.port}, position_interval_s=0.2)
    reader = GnssReader(config.position)  # type: ignore[arg-type]
    agent = GlassesAgent(config, renderer=RecordingRenderer(), sink=RecordingSink(),
                         position=reader)
    agent.start()
    try:
        wait_until(lambda: reader.connected, message="GNSS port open")
        wait_until(lambda: agent.counters["position_no_fix"] >= 1, message="no fix, no position")
        assert not rig.listener.drain().positions

        def feed() -> bool:
            pty.write(nmea(GGA) + nmea(RMC))
            return len(rig.listener.drain().positions) >= 4

        wait_until(feed, message="positions from the receiver")
        first = rig.listener.positions[0].positions[0]
        assert (first.entity, first.entity_kind) == ("officer-li", EntityKind.OFFICER)
        assert first.heading_deg == pytest.approx(84.4)
        assert first.lat == pytest.approx(39.9087, abs=1e-4)
        stamps = [b.ts for b in rig.listener.positions]
        # Never faster than the configured interval (the loop waits it out between batches).
        assert all((b - a).total_seconds() >= 0.19 for a, b in pairwise(stamps))
        health = agent.runtime.health_message()
        assert health.metrics["gnss_fix"] == 2.0 and health.metrics["positions"] >= 4
    finally:
        agent.stop()
        pty.close()


def test_health_counts_queue_stale_and_unsent_answers(rig: Rig) -> None:
    agent = rig.start(stale_after_s=30)
    fresh, old = notify(rig.site, rig.device), notify(rig.site, rig.device)
    rig.send(fresh)
    rig.send(old)
    wait_until(lambda: len(agent.queue) == 2, message="queued")
    agent.answer(fresh.id, OfficerAnswer.ACKNOWLEDGE)
    rig.clock.advance(60)
    agent.tick()
    metrics = agent.runtime.health_message().metrics
    assert metrics["notifications"] == 2 and metrics["stale"] == 2
    assert metrics["unanswered"] == 1 and metrics["unsent_answers"] == 1


def test_new_urgent_items_are_spoken_once_stale_and_low_ones_not(rig: Rig) -> None:
    cues = Cues()
    rig.renderer, rig.sink = RecordingRenderer(), RecordingSink()
    agent = GlassesAgent(rig.config(language="zh-CN", stale_after_s=60), renderer=rig.renderer,
                         sink=rig.sink, now=rig.clock, speaker=cues)
    rig.agent = agent
    agent.start()
    urgent = notify(rig.site, rig.device, severity=Severity.CRITICAL)
    for note in (urgent, urgent, notify(rig.site, rig.device, severity=Severity.LOW),
                 notify(rig.site, rig.device, severity=Severity.HIGH,
                        ts=rig.clock() - timedelta(seconds=600))):
        agent.on_notify(note)
    agent.tick()
    agent.tick()
    assert len(cues.said) == 1 and cues.said[0][1] == "zh-CN"
    assert "入侵" in cues.said[0][0]  # the kind, from the catalogue


def test_the_outbox_takes_answers_but_no_telemetry_or_foreign_messages(tmp_path: Path) -> None:
    config = glasses_config("s1", "g1", BusConfig(), tmp_path / "data")
    runtime = AgentRuntime(config, DeviceKind.GLASSES)
    try:
        answer = DispatchAnswer(site="s1", device="g1", dispatch_id=new_id(),
                                notify_id=new_id(), officer="officer-li",
                                answer=OfficerAnswer.REJECT)
        assert runtime.send_durable(answer)
        (item,) = runtime.outbox.due(float("inf"), 10)
        assert item.topic == "gw/v1/s1/glasses/g1/answer"
        with pytest.raises(ProtocolError, match="its own messages"):
            runtime.send_durable(answer.model_copy(update={"device": "g2"}))
        with pytest.raises(ProtocolError, match="outbox"):
            runtime.send_durable(Reply(site="s1", device="g1", request_id=new_id(), ok=True))
        assert runtime.outbox.depth() == 1
    finally:
        runtime.stop()


def test_a_notify_the_box_cannot_store_gets_no_receipt(tmp_path: Path) -> None:
    """The receipt stops the hub's retries: it must not go out for a notify that is lost."""
    config = glasses_config("s1", "g1", BusConfig(), tmp_path / "data")
    agent = GlassesAgent(config, renderer=RecordingRenderer(), sink=RecordingSink())
    try:
        agent.queue.close()  # the box's storage fails
        with pytest.raises(sqlite3.Error):
            agent.on_notify(notify("s1", "g1"))
        assert len(agent.runtime.telemetry) == 0
    finally:
        agent.stop()
