"""Defect 5: a sensing loop that raises is restarted with backoff, counted, and shown in health;
one that keeps failing is given up on and marked dead, in health and in the retained state.

The unit tests drive :class:`SupervisedLoop` with an injected clock and wait (no sleeping). The
service tests inject garbage into the real LiDAR and wristband agents (a corrupt revolution, an
advert whose payload is not bytes) and read the agent's own health and the retained state off
the real broker.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from bridges.ble.advert import BandAdvert, encode_advert
from bridges.ble.sources import HeardAdvert
from edge.bus import Bus
from edge.config import SupervisionConfig
from edge.lidar.scan import Scan
from edge.lidar.service import LidarService
from edge.protocol import (
    Channel,
    DeviceKind,
    DeviceState,
    LoopState,
    decode_as,
    device_topic,
)
from edge.supervision import SupervisedLoop
from edge.wristband.demo import GATEWAY, demo_config
from edge.wristband.service import WristbandService
from tests.edge.lidar.scenarios import config as lidar_config
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

ORIGIN = (114.0570, 22.5430)


class FakeTime:
    """The loop's clock and its backoff wait: waiting advances the clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


class Body:
    """Raises ``fail`` times (with a message that must never reach health), then returns."""

    def __init__(self, fail: int, error: type[Exception] = RuntimeError) -> None:
        self.fail = fail
        self.calls = 0
        self.error = error

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise self.error("wearer resident-7 at 22.5431,114.0571")


def test_crashes_restart_with_exponential_backoff_and_are_counted() -> None:
    t = FakeTime()
    body = Body(fail=3)
    loop = SupervisedLoop("scans", body, clock=t.clock, wait=t.wait,
                          config=SupervisionConfig(restart_min_s=0.5, restart_max_s=30,
                                                   max_crashes=5, crash_window_s=300))
    loop.run()
    assert body.calls == 4
    assert t.waits == [0.5, 1.0, 2.0]
    health = loop.health()
    assert (health.state, health.crashes, health.restarts) == (LoopState.STOPPED, 3, 3)
    # Only the exception class travels: the message may quote what was being processed.
    assert health.last_error == "RuntimeError"
    assert "resident" not in health.model_dump_json()


def test_backoff_is_capped() -> None:
    t = FakeTime()
    loop = SupervisedLoop("x", Body(fail=8), clock=t.clock, wait=t.wait,
                          config=SupervisionConfig(restart_min_s=1, restart_max_s=5,
                                                   max_crashes=100))
    loop.run()
    assert t.waits == [1, 2, 4, 5, 5, 5, 5, 5]


def test_a_burst_of_crashes_marks_the_loop_dead_and_calls_on_dead_once() -> None:
    t = FakeTime()
    body = Body(fail=1000, error=ZeroDivisionError)
    dead: list[str] = []
    loop = SupervisedLoop("frames", body, clock=t.clock, wait=t.wait,
                          config=SupervisionConfig(max_crashes=4, crash_window_s=300),
                          on_dead=lambda lp: dead.append(lp.name))
    loop.run()
    assert body.calls == 4 and dead == ["frames"]
    health = loop.health()
    assert (health.state, health.crashes, health.last_error) == (LoopState.DEAD, 4,
                                                                  "ZeroDivisionError")


def test_crashes_spread_beyond_the_window_never_kill_the_loop() -> None:
    t = FakeTime()
    body = Body(fail=10)

    def slow_wait(seconds: float) -> bool:
        t.waits.append(seconds)
        t.now += 200.0  # every crash comes 200 s after the one before
        return False

    loop = SupervisedLoop("adverts", body, clock=t.clock, wait=slow_wait,
                          config=SupervisionConfig(max_crashes=3, crash_window_s=300))
    loop.run()
    assert loop.state is LoopState.STOPPED and loop.crashes == 10
    assert max(t.waits) == 1.0  # at most two crashes in any window: the backoff stays short


def test_stop_during_backoff_ends_the_loop_as_stopped() -> None:
    stop = threading.Event()

    def wait(seconds: float) -> bool:
        stop.set()
        return True

    loop = SupervisedLoop("x", Body(fail=100), stop_event=stop, wait=wait)
    loop.run()
    assert loop.state is LoopState.STOPPED and loop.crashes == 1


def test_a_crash_is_logged_at_error_level_with_its_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTime()
    with caplog.at_level(logging.ERROR, logger="edge.supervision"):
        SupervisedLoop("scans", Body(fail=1), clock=t.clock, wait=t.wait).run()
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None and "scans" in record.getMessage()


# -- the real agents -------------------------------------------------------------------------

FAST = {"restart_min_s": 0.01, "restart_max_s": 0.05, "max_crashes": 3, "crash_window_s": 600}


def _retained_state(broker: BrokerHarness, site: str, kind: DeviceKind, device: str
                    ) -> list[DeviceState]:
    states: list[DeviceState] = []
    hub = Bus(broker.hub_config(), client_id=f"{site}-hub-state")
    hub.subscribe(device_topic(site, kind, device, Channel.STATE),
                  lambda _t, p: states.append(decode_as(DeviceState, p)))
    hub.start()
    try:
        wait_until(lambda: bool(states) and states[-1].dead_loops != [], timeout_s=30,
                   message="retained state naming the dead loop")
    finally:
        hub.stop()
    return states


def _bad_scan(t: float) -> Scan:
    # A revolution whose angle and range arrays disagree: the pipeline cannot process it.
    return Scan(t, np.array([1.0, 2.0, 3.0]), np.array([1.0]))


def test_lidar_scan_loop_survives_a_crash_and_dies_after_a_burst(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    device = f"{site}-lidar"
    mqtt = broker.add_device(site, DeviceKind.LIDAR, device)
    cfg = lidar_config("ld06", site=site, device=device, mqtt=mqtt, data_dir=tmp_path / "data",
                       health_interval_s=60, supervision=FAST,
                       scanner={"model": "ld06", "port": str(tmp_path / "no-such-tty")})
    service = LidarService(cfg)
    service.start()
    try:
        assert service.runtime.bus.wait_connected(30)
        service.scans.put_drop_oldest(_bad_scan(0.0), reason="test")
        wait_until(lambda: service.loop.health().restarts == 1, message="scan loop restarted")
        service.scans.put_drop_oldest(Scan(0.2, np.array([1.0]), np.array([2.0])),
                                      reason="test")
        wait_until(lambda: service.pipeline.scans == 2, message="a good scan after the restart")
        health = service.runtime.health_message()
        assert health.ok and health.loops["scans"].state is LoopState.ALIVE
        assert (health.loops["scans"].crashes, health.loops["scans"].last_error) == (
            1, "IndexError")

        for i in range(2):  # two more crashes: three in the window, the loop is given up
            service.scans.put_drop_oldest(_bad_scan(1.0 + i), reason="test")
            wait_until(lambda n=i: service.loop.crashes == 2 + n, message="crash counted")
        wait_until(lambda: service.loop.state is LoopState.DEAD, message="scan loop dead")
        health = service.runtime.health_message()
        assert not health.ok
        assert health.loops["scans"].state is LoopState.DEAD
        assert health.loops["scans"].crashes == 3
        states = _retained_state(broker, site, DeviceKind.LIDAR, device)
        assert states[-1].dead_loops == ["scans"] and states[-1].state == "online"
    finally:
        service.stop()


def test_wristband_advert_loop_restarts_and_then_is_reported_dead(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    mqtt = broker.add_device(site, DeviceKind.WRISTBAND, GATEWAY)
    config = demo_config(site, mqtt, tmp_path, ORIGIN).model_copy(
        update={"supervision": SupervisionConfig.model_validate(FAST)})
    keys = {b.band_id: (bytes(16),) for b in config.bands}
    service = WristbandService(config, keys=keys, sources=[])
    service.start()
    # A transport bug hands over an advert without its manufacturer data map: the tracker
    # raises on it (the codec itself only ever raises its own counted errors).
    garbage = HeardAdvert("rx-a", "02:00:00:00:00:01", -60, None, 0.0)  # type: ignore[arg-type]
    try:
        assert service.runtime.bus.wait_connected(30)
        service.submit(garbage)
        wait_until(lambda: service.loop.health().restarts == 1, message="advert loop restarted")
        health = service.runtime.health_message()
        assert health.ok and health.loops["adverts"].crashes == 1
        assert health.loops["adverts"].state is LoopState.ALIVE

        # An SOS heard just before the next bad advert is still raised, whether or not the
        # two end up in the same batch.
        band = config.bands[0].band_id
        sos = HeardAdvert("rx-a", "02:00:00:00:00:01", -60, {config.company_id: encode_advert(
            BandAdvert(band, 1, 80, sos=True), bytes(16))}, 1.0)
        service.submit(sos)
        service.submit(garbage)
        wait_until(lambda: service.loop.crashes == 2, message="crash counted")
        wait_until(lambda: service.runtime.counters["alerts"] == 1, message="the SOS alert")
        assert service.runtime.outbox.depth() == 1
        service.submit(garbage)
        wait_until(lambda: service.loop.crashes == 3, message="crash counted")
        wait_until(lambda: service.loop.state is LoopState.DEAD, message="advert loop dead")
        health = service.runtime.health_message()
        assert not health.ok and health.loops["adverts"].crashes == 3
        assert health.loops["adverts"].last_error == "AttributeError"
        states = _retained_state(broker, site, DeviceKind.WRISTBAND, GATEWAY)
        assert states[-1].dead_loops == ["adverts"]
    finally:
        service.stop()


def test_an_odd_exception_class_name_cannot_break_health() -> None:
    odd = type("bad name<script>", (RuntimeError,), {})
    t = FakeTime()
    loop = SupervisedLoop("x", Body(fail=1, error=odd), clock=t.clock, wait=t.wait)
    loop.run()
    assert loop.health().last_error == "bad_name_script_"


class FlakyPort:
    """A serial port whose library raises an unexpected error (not an OSError) while
    ``failures[0]`` is positive; otherwise a quiet line. The only fake here: the boundary is a
    USB serial device that cannot misbehave on demand."""

    def __init__(self, failures: list[int]) -> None:
        self.failures = failures
        self.in_waiting = 0
        self.dtr = False
        self._quiet = threading.Event()

    def read(self, _n: int) -> bytes:
        if self.failures[0] > 0:
            self.failures[0] -= 1
            raise RuntimeError("usb-serial library bug")
        self._quiet.wait(0.01)  # a blocking read with its timeout, as pyserial's
        return b""

    def write(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        return None


def test_lidar_port_reader_is_supervised_too(broker: BrokerHarness, site: str,
                                             tmp_path: Path) -> None:
    device = f"{site}-lidar-port"
    mqtt = broker.add_device(site, DeviceKind.LIDAR, device)
    cfg = lidar_config("ld06", site=site, device=device, mqtt=mqtt, data_dir=tmp_path / "data",
                       health_interval_s=60, supervision=FAST,
                       scanner={"model": "ld06", "port": "/dev/ttyFAKE0"})
    failures = [1]
    service = LidarService(cfg, serial_factory=lambda *_a, **_k: FlakyPort(failures))
    service.start()
    try:
        wait_until(lambda: service.port_loop.health().restarts == 1 and
                   service.transport.counters["opens"] == 2,
                   message="port reader restarted on a freshly opened port")
        health = service.runtime.health_message()
        assert health.ok and health.loops["port"].crashes == 1
        assert health.loops["port"].last_error == "RuntimeError"
        failures[0] = 1_000_000  # the library now fails on every read
        wait_until(lambda: service.port_loop.state is LoopState.DEAD, message="port loop dead")
        health = service.runtime.health_message()
        assert not health.ok and health.loops["port"].state is LoopState.DEAD
        assert health.loops["scans"].state is LoopState.ALIVE
    finally:
        service.stop()


class BrokenSource:
    """Stands in for the GStreamer ingest (the boundary): every read raises, as a decoder
    element that fails in a way the ingest does not handle would."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {"frames": 0, "reconnects": 0, "stream_errors": 0}
        self.dropped: dict[str, int] = {}
        self.connected = threading.Event()
        self.ended = threading.Event()

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def read(self, timeout_s: float) -> None:
        raise MemoryError


def test_camera_frame_loop_is_reported_dead_after_a_burst(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    from edge.camera.config import CameraConfig
    from edge.camera.service import CameraService

    device = f"{site}-cam"
    mqtt = broker.add_device(site, DeviceKind.CAMERA, device)
    cfg = CameraConfig.model_validate({
        "site": site, "device": device, "data_dir": str(tmp_path), "mqtt": mqtt.model_dump(),
        "health_interval_s": 60, "supervision": FAST,
        "source": {"type": "file", "path": str(tmp_path / "unused.avi")}})
    service = CameraService(cfg, source=BrokenSource())  # type: ignore[arg-type]
    service.start()
    try:
        wait_until(lambda: service.loop.state is LoopState.DEAD, message="frame loop dead")
        health = service.runtime.health_message()
        assert not health.ok
        assert (health.loops["frames"].crashes, health.loops["frames"].last_error) == (
            3, "MemoryError")
        states = _retained_state(broker, site, DeviceKind.CAMERA, device)
        assert states[-1].dead_loops == ["frames"]
    finally:
        service.stop()
