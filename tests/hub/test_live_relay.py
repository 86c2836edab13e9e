"""One shared truth across hub replicas (issue 13 item 2): two hubs on one PostgreSQL and one
broker, each serving its own WebSocket clients. A user's change on one reaches the other's
clients live; a replica's own relayed events are not shown twice; a device cannot publish on
(nor read) the relay; a malformed frame is refused and counted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

import pytest
from paho.mqtt.reasoncodes import ReasonCode
from websockets.sync.client import ClientConnection, connect

from edge.bus import Bus
from edge.protocol import (
    Alert,
    AlertKind,
    DeviceKind,
    Severity,
    decode_device_message,
    device_topic,
    encode,
    hub_relay_filter,
    hub_relay_topic,
)
from hub.auth import Role
from hub.live import Layer, LiveBroadcaster, LiveEvent
from hub.live_relay import RELAY_MAX_BYTES, LiveRelay
from hub.service import HubService
from tests.hub.broker.test_attacks import NOT_AUTHORIZED, _connect_ok, _provision
from tests.hub.conftest import RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_until

Event = dict[str, Any]


def _replica(broker: BrokerHarness, first: RunningHub, tmp_path: Path, name: str) -> RunningHub:
    """A second hub process on the first one's database and broker (its users already exist)."""
    config = first.service.config.model_copy(update={"client_id": f"{first.site}-hub-{name}"})
    service = HubService(config, broker_reload=broker.proc.reload)
    service.registry.extra_accounts = lambda: list(broker.accounts.values())
    broker.extra_sources.append(service.registry.device_accounts)
    service.start()
    assert service.bus.wait_connected(30)
    return RunningHub(service, first.site, f"http://127.0.0.1:{service.api_port}")


@pytest.fixture
def replicas(
    broker: BrokerHarness, postgres: PostgresCluster, site: str, tmp_path: Path
) -> Iterator[tuple[RunningHub, RunningHub]]:
    a = start_hub(broker, site, tmp_path, database_url=postgres.new_database())
    try:
        b = _replica(broker, a, tmp_path, "b")
        try:
            yield a, b
        finally:
            stop_hub(broker, b)
    finally:
        stop_hub(broker, a)


class LiveSocket:
    """A WebSocket client of one hub that keeps every event it has read, in order."""

    def __init__(self, hub: RunningHub, stack: ExitStack) -> None:
        token = hub.client(Role.OPERATOR).headers["Authorization"].split()[1]
        layers = "alerts,incidents,warnings"
        self.ws: ClientConnection = stack.enter_context(
            connect(f"ws://127.0.0.1:{hub.port}/api/v1/live?token={token}&layers={layers}")
        )
        assert json.loads(self.ws.recv(timeout=5))["layer"] == "hello"
        self.seen: list[Event] = []

    def until(self, wanted: Callable[[Event], bool], timeout_s: float = 30.0) -> Event:
        deadline = time.monotonic() + timeout_s
        while True:
            frame = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            events: list[Event] = frame["events"] if frame["layer"] == "batch" else [frame]
            for event in events:
                self.seen.append(event)
                if wanted(event):
                    return event


def _alert(hub: RunningHub, device: str) -> str:
    """An alert stored as ingest stores one (the path is not what this test is about)."""
    alert = Alert(
        site=hub.site, device=device, kind=AlertKind.SOS, severity=Severity.HIGH, title="SOS"
    )
    topic = device_topic(hub.site, DeviceKind.WRISTBAND, device, "alert")
    hub.service.store.write_batch([decode_device_message(topic, encode(alert))])
    return alert.id


def _change(layer: str, change: str, key: str, value: object) -> Callable[[Event], bool]:
    return lambda e: e["layer"] == layer and e.get("change") == change and e.get(key) == value


@pytest.mark.postgres
def test_changes_on_one_replica_reach_the_other_replicas_browsers(
    replicas: tuple[RunningHub, RunningHub], broker: BrokerHarness
) -> None:
    a, b = replicas
    device = f"{a.site}-band"
    password = _provision(a, device, "wristband")
    alert_id = _alert(a, device)
    op_a, op_b = a.client(Role.OPERATOR), b.client(Role.OPERATOR)
    with ExitStack() as stack:
        on_a, on_b = LiveSocket(a, stack), LiveSocket(b, stack)
        # An acknowledgement on A: B's operator sees who and when, at once.
        op_a.post(f"/api/v1/alerts/{alert_id}/ack", json={"note": "on my way"}).raise_for_status()
        acked = on_b.until(_change("alerts", "ack", "id", alert_id))
        assert acked["acknowledged_by"] == f"{a.site}-operator"
        assert acked["acknowledged_at"].endswith(("Z", "+00:00"))
        assert acked["note"]["text"] == "on my way"
        on_a.until(_change("alerts", "ack", "id", alert_id))  # A's own browsers, directly
        # A drops its own frame when the broker hands it back ...
        wait_until(lambda: a.service.live.stats["relay_own_echoes"] >= 1, message="A's echo")

        # An incident opened, assigned and commented on A: each change reaches B.
        res = op_a.post(
            "/api/v1/incidents",
            json={"site": a.site, "category": "garbage", "level": "low", "title": "bins"},
        )
        res.raise_for_status()
        incident = res.json()["id"]
        on_b.until(_change("incidents", "incident.open", "id", incident))
        # ... so A showed the acknowledgement once: nothing but the incident came after it.
        on_a.until(_change("incidents", "incident.open", "id", incident))
        acks_on_a = [e for e in on_a.seen if e.get("change") == "ack"]
        assert len(acks_on_a) == 1, acks_on_a

        officer = f"{a.site}-{Role.OFFICER.value}"
        op_a.post(
            f"/api/v1/incidents/{incident}/assign", json={"assignee": officer, "version": 1}
        ).raise_for_status()
        assigned = on_b.until(_change("incidents", "incident.assign", "id", incident))
        assert assigned["assignee"] == officer
        assert assigned["state"] == "assigned"
        op_a.post(
            f"/api/v1/incidents/{incident}/comments", json={"text": "crew sent"}
        ).raise_for_status()
        on_b.until(_change("incidents", "incident.comment", "id", incident))

        # The other way round: a note on B reaches A's browsers.
        op_b.post(f"/api/v1/alerts/{alert_id}/notes", json={"text": "arrived"}).raise_for_status()
        noted = on_a.until(_change("alerts", "note", "id", alert_id))
        assert noted["note"]["author"] == f"{b.site}-operator"

        # A warning set by hand on A turns the cell red on B's map.
        commander = a.client(Role.COMMANDER)
        cell = f"{a.site}-c1"
        ring = [[114.0, 22.5], [114.01, 22.5], [114.01, 22.51], [114.0, 22.51], [114.0, 22.5]]
        commander.put(
            f"/api/v1/grid-cells/{cell}",
            json={
                "type": "Feature",
                "id": cell,
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"site": a.site, "name": "C1"},
            },
        ).raise_for_status()
        commander.post(
            f"/api/v1/grid-cells/{cell}/warning", json={"level": "red", "reason": "flooding"}
        ).raise_for_status()
        warned = on_b.until(lambda e: e["layer"] == "warnings" and e.get("cell") == cell)
        assert warned["level"] == "red"

        # A device forging a relay frame: the broker refuses the publish and the read.
        forger = _connect_ok(broker.port, device, password, device)
        try:
            assert forger.subscribe(hub_relay_filter(a.site)) == [NOT_AUTHORIZED]
            codes: list[int] = []
            done = threading.Event()

            def on_publish(*args: Any) -> None:
                codes.append(cast(ReasonCode, args[3]).value)
                done.set()

            forger.client.on_publish = on_publish
            frame = {
                "v": 1,
                "origin": "forger",
                "events": [
                    {
                        "layer": "alerts",
                        "site": a.site,
                        "data": {"id": "forged", "change": "ack", "acknowledged_by": "nobody"},
                    }
                ],
            }
            forger.client.publish(
                hub_relay_topic(a.site, "forger"), json.dumps(frame).encode(), qos=1
            )
            assert done.wait(5)
            assert codes == [NOT_AUTHORIZED]
        finally:
            forger.close()
        # Whatever the broker did, B's browsers never saw it: a marker change arrives after.
        op_a.post(
            f"/api/v1/incidents/{incident}/comments", json={"text": "marker"}
        ).raise_for_status()
        on_b.until(lambda e: e.get("change") == "incident.comment" and e["id"] == incident)
        assert not [e for e in on_b.seen if e.get("id") == "forged"]
        assert b.service.live.stats["relay_frames_rejected"] == 0


class _Sink(LiveBroadcaster):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[LiveEvent] = []

    def publish(self, events: list[LiveEvent], *, relayed: bool = False) -> None:
        assert relayed
        self.got.extend(events)


def test_malformed_relay_frames_are_refused_and_counted() -> None:
    live = _Sink()
    # Decoding needs no broker; the bus is never touched on the way in.
    relay = LiveRelay(cast(Bus, object()), live, replica="hub-b", site="s1")
    good = {
        "v": 1,
        "origin": "hub-a",
        "events": [{"layer": "alerts", "site": "s1", "data": {"id": "x", "change": "ack"}}],
    }
    topic = hub_relay_topic("s1", "hub-a")
    bad: list[tuple[str, bytes]] = [
        (topic, b"not json"),
        (topic, json.dumps({**good, "origin": "hub-c"}).encode()),  # names another replica
        (topic, json.dumps({**good, "v": 2}).encode()),
        (topic, json.dumps({**good, "events": []}).encode()),
        (topic, json.dumps({**good, "extra": 1}).encode()),
        (
            topic,
            json.dumps({**good, "events": [{"layer": "nope", "site": "s1", "data": {}}]}).encode(),
        ),
        (topic, b"{" + b" " * RELAY_MAX_BYTES + b"}"),
        ("gw/v1/_relay/s1/hub-a/extra", json.dumps(good).encode()),
    ]
    for t, payload in bad:
        relay.handle(t, payload)
    assert live.got == []
    assert live.stats["relay_frames_rejected"] == len(bad)
    relay.handle(hub_relay_topic("s1", "hub-b"), json.dumps(good).encode())  # its own echo
    assert live.got == []
    assert live.stats["relay_own_echoes"] == 1
    relay.handle(topic, json.dumps(good).encode())
    assert [(e.layer, e.data["id"]) for e in live.got] == [(Layer.ALERTS, "x")]
    assert live.stats["relay_frames_received"] == 1


def test_big_batches_are_split_into_bounded_frames() -> None:
    sent: list[tuple[str, bytes, int]] = []

    class _Bus:
        def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
            sent.append((topic, payload, qos))

    live = LiveBroadcaster()
    relay = LiveRelay(cast(Bus, _Bus()), live, replica="hub-a", site=None)
    events = [
        LiveEvent(Layer.POSITIONS, "s1", {"entity": f"e{i}", "pad": "x" * 400}, 114.0, 22.5)
        for i in range(5000)
    ]
    relay.send([*events, LiveEvent(Layer.ALERTS, "s1", {"id": "a1", "change": "ack"})])
    assert len(sent) > 1
    assert all(len(p) <= RELAY_MAX_BYTES for _, p, _ in sent)
    relayed = [e for _, p, _ in sent for e in json.loads(p)["events"]]
    assert len(relayed) == 5001  # split, none lost
    assert {t for t, _, _ in sent} == {hub_relay_topic("_all", "hub-a")}
    # Telemetry-only frames go QoS 0; the frame carrying the acknowledgement QoS 1.
    assert sent[0][2] == 0
    assert sent[-1][2] == 1
