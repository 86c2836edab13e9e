"""AgentRuntime pieces that need no broker."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from edge.agent import AgentRuntime
from edge.alert_details import BatteryLowDetails, IntrusionDetails
from edge.bus import BusConfig
from edge.config import AgentConfig, SupervisionConfig
from edge.protocol import (
    AlertKind,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    LoopState,
    Severity,
    decode_as,
)
from hub.broker import free_port
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until


def test_agent_health_fields_override_the_runtime_defaults(tmp_path: Path) -> None:
    def fields() -> dict[str, Any]:
        return {"cpu_temp_c": 61.5, "fps": 9.5, "queue_depth": 3, "dropped": {"frames": 2}}

    cfg = AgentConfig(site="s", device="d", data_dir=tmp_path,
                      mqtt=BusConfig(port=free_port()))
    runtime = AgentRuntime(cfg, DeviceKind.CAMERA, health_fields=fields)
    try:
        health = runtime.health_message()
    finally:
        runtime.bus.stop()
        runtime.outbox.close()
    assert health.cpu_temp_c == 61.5
    assert health.fps == 9.5
    assert health.queue_depth == 3
    assert health.dropped["frames"] == 2
    assert health.dropped["bad_command"] == 0


def test_a_full_outbox_is_an_alarmed_alerts_dropped_figure_not_a_frame_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Defect 8: with the hub away the outbox fills; the next alert is lost, and that must be
    loud: counted as ``alerts_dropped``, health ``ok`` false, logged at error level."""
    cfg = AgentConfig(site="s", device="d", data_dir=tmp_path, outbox_max_items=10,
                      mqtt=BusConfig(port=free_port()))
    runtime = AgentRuntime(cfg, DeviceKind.LIDAR)
    try:
        with caplog.at_level(logging.ERROR, logger="edge.agent"):
            alerts = [runtime.raise_alert(IntrusionDetails(source="lidar", track_id=f"t1-{i}"),
                                          severity=Severity.HIGH) for i in range(13)]
        health = runtime.health_message()
        kept = runtime.outbox.ids()
    finally:
        runtime.bus.stop()
        runtime.outbox.close()
    assert kept == [a.id for a in alerts[:10]]  # the oldest are kept, never overwritten
    assert runtime.alerts_dropped == 3
    assert (health.alerts_dropped, health.dropped["alerts_dropped"], health.ok) == (3, 3, False)
    assert runtime.counters["frame_errors"] == 0 and runtime.counters["alerts"] == 10
    dropped_logs = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped_logs) == 3 and all(r.levelno == logging.ERROR for r in dropped_logs)
    assert alerts[12].id in dropped_logs[-1].getMessage()


def test_health_cannot_be_told_a_dead_loop_is_fine(tmp_path: Path) -> None:
    """The agent's own health fields cannot override the runtime's liveness figures."""
    cfg = AgentConfig(site="s", device="d", data_dir=tmp_path, mqtt=BusConfig(port=free_port()))
    runtime = AgentRuntime(cfg, DeviceKind.CAMERA,
                           health_fields=lambda: {"ok": True, "loops": {}, "alerts_dropped": 0})
    stop = threading.Event()

    def broken() -> None:
        raise OSError("camera gone")

    loop = runtime.supervise("frames", broken, stop)
    loop.config = SupervisionConfig(max_crashes=1)
    try:
        loop.run()
        health = runtime.health_message()
        state = decode_as(DeviceState, runtime._state_payload(DeviceStatus.ONLINE))
    finally:
        runtime.bus.stop()
        runtime.outbox.close()
    assert not health.ok and health.loops["frames"].state is LoopState.DEAD
    assert state.dead_loops == ["frames"]


def test_alert_kind_comes_from_its_typed_details(tmp_path: Path) -> None:
    cfg = AgentConfig(site="s", device="d", data_dir=tmp_path, mqtt=BusConfig(port=free_port()))
    runtime = AgentRuntime(cfg, DeviceKind.WRISTBAND)
    try:
        alert = runtime.raise_alert(BatteryLowDetails(battery_pct=9), severity=Severity.LOW)
    finally:
        runtime.bus.stop()
        runtime.outbox.close()
    assert alert.kind is AlertKind.BATTERY_LOW and alert.details == {"battery_pct": 9}


def test_a_failing_health_reading_does_not_end_the_heartbeat(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    device = f"{site}-hb"
    mqtt = broker.add_device(site, DeviceKind.LIDAR, device)
    calls = {"n": 0}

    def flaky() -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise KeyError("sensor gone")
        return {}

    cfg = AgentConfig(site=site, device=device, data_dir=tmp_path, mqtt=mqtt,
                      health_interval_s=0.05)
    runtime = AgentRuntime(cfg, DeviceKind.LIDAR, health_fields=flaky)
    runtime.start()
    try:
        wait_until(lambda: calls["n"] >= 4, message="heartbeats after two failed readings")
    finally:
        runtime.stop()
    assert runtime.counters["health_error"] == 2


def test_state_and_health_providers_add_fields_but_cannot_override_the_runtime(
        tmp_path: Path) -> None:
    """The hooks a face-matching device's watchlist uses: its fields reach the retained state
    and the heartbeat; the runtime's own fields win, and a failing provider costs only its
    fields, never the state (which is also the last will)."""
    cfg = AgentConfig(site="s", device="d", data_dir=tmp_path, mqtt=BusConfig(port=free_port()))
    runtime = AgentRuntime(cfg, DeviceKind.CAMERA,
                           health_fields=lambda: {"dropped": {"frames": 1}, "metrics": {"a": 1.0}})
    runtime.add_state_provider(lambda: {"watchlist_version": 4, "dead_loops": ["forged"],
                                        "state": "stopped"})

    def broken() -> dict[str, Any]:
        raise RuntimeError("provider bug")

    runtime.add_state_provider(broken)
    runtime.add_health_provider(lambda: {"dropped": {"bundle_stale": 2}, "metrics": {"b": 2.0}})
    try:
        state = decode_as(DeviceState, runtime._state_payload(DeviceStatus.ONLINE))
        health = runtime.health_message()
    finally:
        runtime.bus.stop()
        runtime.outbox.close()
    assert (state.watchlist_version, state.dead_loops, state.state) == (
        4, [], DeviceStatus.ONLINE)
    assert runtime.counters["state_provider_error"] == 1
    assert (health.dropped["frames"], health.dropped["bundle_stale"]) == (1, 2)
    assert health.metrics == {"a": 1.0, "b": 2.0}
