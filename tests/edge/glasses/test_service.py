"""The glasses agent against the real broker: receipt, dedupe, render, durable answers,
offline catch-up through the persistent session, restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.bus import Bus
from edge.glasses.config import GlassesConfig
from edge.glasses.service import AnswerError, GlassesAgent
from edge.protocol import (
    CmdChannel,
    DeviceKind,
    HubAck,
    Notify,
    OfficerAnswer,
    Severity,
    cmd_topic,
    device_filter,
    encode,
)
from tests.edge.glasses.support import (
    Clock,
    HubListener,
    RecordingRenderer,
    RecordingSink,
    glasses_config,
    notify,
)
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


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


def test_answer_goes_through_the_outbox_until_the_hub_acks(rig: Rig) -> None:
    agent = rig.start()
    note = notify(rig.site, rig.device)
    rig.send(note)
    wait_until(lambda: len(agent.queue) == 1, message="queued")
    with pytest.raises(AnswerError) as err:
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
    with pytest.raises(AnswerError) as err:
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
