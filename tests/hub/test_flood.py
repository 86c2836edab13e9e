"""Issue 11 item 4: one flooding device cannot starve the others.

The goal test floods a real Mosquitto with 100,000 QoS 0 messages from one device (Mosquitto's
own C client, another process) while two other devices send alerts (QoS 1) and positions; the
hub must store every alert, lose under 1% of their positions, see no broker drop, and flag the
flooder in /stats, /health and the dashboard's device list. On the code before this change the
same scenario lost 30-70% of the quiet devices' positions and up to 40% of their alerts, with
``$SYS/broker/publish/messages/dropped`` at ~55,000 and nothing in the hub's stats.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

import hub.broker
from edge.bus import Bus, BusConfig
from edge.protocol import Channel, DeviceKind, device_topic
from hub.auth import Role
from hub.broker import BrokerLayout
from hub.broker_stats import BrokerStats
from hub.dashboard_config import DashboardConfig
from hub.flood import FloodConfig, FloodGuard
from hub.mapview.service import device_status
from tests.hub.conftest import start_hub, stop_hub
from tests.support.broker import BrokerHarness, unique_site
from tests.support.flood import FLOODER, VICTIMS, run_flood
from tests.support.waiting import wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


WALL = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _guard(clock: FakeClock, **cfg: object) -> FloodGuard:
    config = FloodConfig.model_validate({"device_rate_per_s": 10, "device_burst": 20, **cfg})
    return FloodGuard(config, clock=clock, wall=lambda: WALL)


def _topic(device: str, channel: Channel, site: str = "s1") -> str:
    return device_topic(site, DeviceKind.CAMERA, device, channel)


# -- the limiter, with a moved clock ------------------------------------------------------------


def test_burst_then_rate_then_counted_by_device_and_reason() -> None:
    clock = FakeClock()
    guard = _guard(clock)
    pos = _topic("loud", Channel.POS)
    assert sum(guard.admit(pos) for _ in range(100)) == 20  # the burst, then nothing
    clock.now += 1.0
    assert sum(guard.admit(pos) for _ in range(100)) == 10  # one second of rate
    assert sum(guard.admit(_topic("loud", Channel.HEALTH)) for _ in range(5)) == 0
    assert guard.dropped_by_device() == {
        "s1/loud": {"pos_rate_limited": 170, "health_rate_limited": 5}
    }
    assert guard.dropped_total == 175
    flooding = guard.flooding()
    assert [(f.site, f.device) for f in flooding] == [("s1", "loud")]
    assert flooding[0].since == WALL - timedelta(seconds=1)


def test_alerts_replies_and_state_are_never_metered_even_from_a_flooder() -> None:
    clock = FakeClock()
    guard = _guard(clock)
    for _ in range(1000):
        guard.admit(_topic("loud", Channel.POS))
    for channel in (Channel.ALERT, Channel.REPLY, Channel.STATE):
        assert all(guard.admit(_topic("loud", channel)) for _ in range(500)), channel


def test_a_quiet_device_keeps_its_whole_budget_while_another_floods() -> None:
    clock = FakeClock()
    guard = _guard(clock)
    for _ in range(10_000):
        guard.admit(_topic("loud", Channel.POS))
    assert all(guard.admit(_topic("quiet", Channel.POS)) for _ in range(20))
    # Same device name on another site is another device.
    assert all(guard.admit(_topic("loud", Channel.POS, site="s2")) for _ in range(20))
    assert [f.device for f in guard.flooding()] == ["loud"]


def test_flag_clears_after_the_hold_and_a_new_episode_starts_a_new_since() -> None:
    clock = FakeClock()
    guard = _guard(clock, flag_hold_s=60)
    pos = _topic("loud", Channel.POS)
    for _ in range(30):
        guard.admit(pos)
    clock.now += 59
    assert guard.flooding()
    clock.now += 2
    assert guard.flooding() == []
    for _ in range(30):  # refilled to the burst, so 10 of these are dropped
        guard.admit(pos)
    (episode,) = guard.flooding()
    assert episode.since == WALL  # the new episode, not the first drop 61 s ago
    assert episode.dropped == {"pos_rate_limited": 20}  # totals since start are kept


def test_garbage_topics_pass_to_the_decoder_which_counts_them() -> None:
    guard = _guard(FakeClock())
    for topic in ("", "/", "gw/v1", "a/b/c/d/e/pos", "gw/v1/s/camera/d/pos/extra", "x" * 70_000):
        for _ in range(50):
            assert guard.admit(topic)
    assert guard.dropped_total == 0


def test_the_device_table_is_bounded_and_keeps_flagged_devices() -> None:
    clock = FakeClock()
    guard = _guard(clock, max_devices=10)
    for _ in range(30):
        guard.admit(_topic("loud", Channel.POS))
    for n in range(500):  # forged device names (an unprovisioned lab hub would see them)
        clock.now += 0.01
        guard.admit(_topic(f"d{n}", Channel.POS))
    assert guard.stats()["tracked_devices"] <= 10  # type: ignore[operator]
    assert guard.forgotten > 0
    assert [f.device for f in guard.flooding()] == ["loud"]


def test_flooding_device_is_degraded_with_the_reason() -> None:
    ui = DashboardConfig()
    now = datetime.now(UTC)
    status, reasons = device_status("online", None, now, ui, flood_dropped=5)
    assert status == "degraded"
    assert {"code": "flooding", "n": 5} in reasons
    assert device_status("offline", None, now, ui, flood_dropped=5) == (
        "offline",
        [{"code": "offline"}],
    )


# -- the broker's counters ------------------------------------------------------------------------


def test_broker_counter_parsing_refuses_garbage_and_counts_it() -> None:
    stats = BrokerStats(Bus(BusConfig(port=1), client_id="unused"))
    stats.handle("$SYS/broker/publish/messages/dropped", b"55145")
    stats.handle("$SYS/broker/load/publish/dropped/1min", b"12.5")
    for topic, payload in [
        ("$SYS/broker/publish/messages/dropped", b"nan"),
        ("$SYS/broker/publish/messages/dropped", b"inf"),
        ("$SYS/broker/publish/messages/dropped", b"-1"),
        ("$SYS/broker/publish/messages/dropped", b"9" * 5001),
        ("$SYS/broker/publish/messages/dropped", b"\xff\xfe"),
        ("$SYS/broker/unknown", b"1"),
        ("gw/v1/s/camera/d/pos", b"1"),
    ]:
        stats.handle(topic, payload)
    assert stats.refused == 7
    snap = stats.snapshot()
    assert snap["publish_dropped"] == 55145
    assert snap["publish_dropped_per_min"] == 12.5
    assert stats.dropped() == 55145


def test_generated_config_sets_the_flood_limits(tmp_path: Path) -> None:
    text = BrokerLayout(tmp_path).write_config().read_text()
    for line in ("max_queued_messages 200000", "max_inflight_messages 100",
                 "max_packet_size 3000000", "sys_interval 2"):  # fmt: skip
        assert f"\n{line}\n" in text
    assert "message_size_limit" not in text


def test_the_hub_reads_the_brokers_drop_counter_when_the_broker_drops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real drop: a subscriber that stops reading, on a broker with a tiny queue."""
    monkeypatch.setattr(hub.broker, "FLOOD_LIMITS", ("max_queued_messages 10", "sys_interval 1"))
    harness = BrokerHarness(tmp_path / "broker")
    harness.start()
    stuck = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="stuck", protocol=MQTTProtocolVersion.MQTTv5
    )
    bus = Bus(harness.hub_config(), client_id="stats-reader")
    stats = BrokerStats(bus)
    try:
        site = unique_site("dr")
        harness.add_device(site, DeviceKind.CAMERA, "loud")
        stuck.username_pw_set("hub", harness.passwords["hub"])
        stuck.connect("127.0.0.1", harness.port)
        topic = device_topic(site, DeviceKind.CAMERA, "loud", Channel.POS)
        stuck.subscribe(topic, qos=0)
        for _ in range(20):  # CONNACK and SUBACK, then it never reads again
            stuck.loop(timeout=0.05)
        stats.attach()
        bus.start()
        assert bus.wait_connected(30)
        payload = b"x" * 1000
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(harness.port), "-u", "loud",
             "-i", "loud", "-P", harness.passwords["loud"], "-t", topic, "-q", "0", "-l"],
            input=(payload + b"\n") * 20_000, check=True, timeout=60,
        )  # fmt: skip
        wait_until(lambda: (stats.dropped() or 0) > 0, message="a counted drop")
        snap = stats.snapshot()
        assert snap["clients_connected"] in (2, 3)  # stuck, the reader (and loud, until it left)
        assert isinstance(snap["age_s"], float)
    finally:
        bus.stop()
        stuck._reset_sockets()
        harness.stop()


# -- the bus's per-topic routes -------------------------------------------------------------------


def test_bus_routes_follow_a_subscription_added_after_a_topic_was_seen() -> None:
    bus = Bus(BusConfig(port=1), client_id="routes")
    got: list[tuple[str, str]] = []
    bus.subscribe("a/+", lambda t, p: got.append(("wide", t)))
    msg = mqtt.MQTTMessage(topic=b"b/1")
    bus._handle_message(bus._client, None, msg)  # no route, remembered as none
    bus.subscribe("b/#", lambda t, p: got.append(("b", t)))
    bus._handle_message(bus._client, None, msg)
    bus._handle_message(bus._client, None, mqtt.MQTTMessage(topic=b"a/1"))
    assert got == [("b", "b/1"), ("wide", "a/1")]
    bus._client._reset_sockets()


# -- the goal, against the real broker and hub ----------------------------------------------------


@pytest.mark.timeout(300)
def test_one_device_flooding_costs_the_others_no_alert_and_under_1pct_of_positions(
    own_broker: BrokerHarness, site: str, tmp_path: Path
) -> None:
    # The hub's default keepalive (see tests/support/flood.py start_hub).
    running = start_hub(own_broker, site, tmp_path, mqtt=own_broker.hub_config(keepalive_s=30))
    try:
        hub = running.service
        installer = running.client(Role.INSTALLER)
        for name in (FLOODER, *VICTIMS):  # provisioned, so the registry gate is on the path
            res = installer.post(
                "/api/v1/devices", json={"id": name, "site": site, "kind": "camera"}
            )
            assert res.status_code == 201, res.text
            own_broker.passwords[name] = res.json()["mqtt_password"]
        result = run_flood(own_broker, hub, site, flood_n=100_000, alerts=50, positions=500)
        print(result.summary())
        for device in VICTIMS:
            assert result.alerts_stored[device] == result.alerts_sent[device] == 50, device
            assert result.positions_sent[device] == 500
            assert result.position_loss(device) < 0.01, (device, result.summary())
        # The broker reports what it dropped; it dropped nothing for the hub.
        wait_until(lambda: hub.broker_stats.dropped() is not None, timeout_s=30,
                   message="broker $SYS counters")  # fmt: skip
        assert hub.broker_stats.dropped() == 0, result.summary()
        # The flooder was cut before decoding, counted by device and reason, and flagged.
        dropped = hub.ingest.flood.dropped_by_device() if hub.ingest.flood else {}
        assert set(dropped) == {f"{site}/{FLOODER}"}
        assert dropped[f"{site}/{FLOODER}"]["pos_rate_limited"] > 50_000
        admin = running.client()
        stats = admin.get("/api/v1/stats").json()
        assert [f["device"] for f in stats["flood"]["flooding"]] == [FLOODER]
        assert stats["broker"]["publish_dropped"] == 0
        health = running.client(None).get("/api/v1/health").json()
        assert health["flooding_devices"] == 1
        assert health["broker_dropped"] == 0
        assert FLOODER not in str(health)  # public: counts only
        devices = admin.get("/api/v1/ui/devices").json()
        by_id = {f["id"]: f["properties"] for f in devices["features"]}
        flooder = by_id[FLOODER]
        assert flooder["status"] == "degraded"
        assert "flooding" in [r["code"] for r in flooder["status_reasons"]]
        for device in VICTIMS:
            assert "flooding" not in str(by_id[device]["status_reasons"])
    finally:
        stop_hub(own_broker, running)
