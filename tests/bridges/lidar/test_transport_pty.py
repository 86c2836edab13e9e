"""The pyserial transport against the simulated scanner on a real pseudo-terminal: data at the
device's format and rate, unplug/replug, stalls, and the RPLIDAR start handshake."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridges.lidar.drivers import SampleBlock, driver_for
from bridges.lidar.transport import SerialLidarTransport
from edge.lidar.scene import SceneConfig
from edge.lidar.simulator import SimulatedScanner
from tests.support.waiting import wait_until


class Sink:
    def __init__(self) -> None:
        self.samples = 0
        self.lock = threading.Lock()

    def __call__(self, block: SampleBlock) -> None:
        with self.lock:
            self.samples += len(block)


def room(model: str) -> SceneConfig:
    walls = [((-3, -3), (3, -3)), ((3, -3), (3, 3)), ((3, 3), (-3, 3)), ((-3, 3), (-3, -3))]
    return SceneConfig.model_validate({
        "model": model,
        "walls": [{"a": {"x_m": a[0], "y_m": a[1]}, "b": {"x_m": b[0], "y_m": b[1]}}
                  for a, b in walls],
    })


@pytest.fixture(params=["ld06", "rplidar_a1"])
def device(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimulatedScanner]:
    sim = SimulatedScanner(room(request.param), tmp_path / "ttyLIDAR")
    sim.start()
    yield sim
    sim.stop()


def start(sim: SimulatedScanner, **kw: float) -> tuple[SerialLidarTransport, Sink]:
    sink = Sink()
    transport = SerialLidarTransport(str(sim.link), driver_for(sim.stream.scene.model), sink,
                                     reopen_min_s=0.05, reopen_max_s=0.2, **kw)
    transport.start()
    return transport, sink


def test_reads_real_format_at_device_rate(device: SimulatedScanner) -> None:
    transport, sink = start(device)
    try:
        wait_until(lambda: sink.samples >= device.stream.model.sample_rate_hz // 2,
                   message="half a second of samples")
    finally:
        transport.stop()
    counters = transport.driver.counters()
    assert counters["crc_errors"] == 0
    assert transport.counters["opens"] == 1
    assert transport.baud_rate == device.stream.baud_rate
    assert device.counts["bytes_sent"] > 0
    # The RPLIDAR driver asks for DTR low (motor on); a pty has no modem lines: counted.
    expected_dtr_failures = 1 if device.stream.protocol == "rplidar" else 0
    assert transport.counters["dtr_unsupported"] == expected_dtr_failures


def test_unplug_and_replug_is_survived_and_counted(device: SimulatedScanner) -> None:
    transport, sink = start(device)
    try:
        wait_until(lambda: sink.samples > 500, message="first samples")
        device.unplug()
        wait_until(lambda: transport.counters["disconnects"] == 1, message="disconnect seen")
        wait_until(lambda: transport.counters["open_failures"] >= 1,
                   message="reopen attempts while the device is gone")
        before = sink.samples
        device.replug()
        wait_until(lambda: transport.counters["opens"] == 2, message="port reopened")
        wait_until(lambda: sink.samples > before + 500, message="samples after replug")
    finally:
        transport.stop()
    assert transport.disconnected_s > 0
    assert not transport.connected.is_set()


def test_three_stalls_reopen_the_port(device: SimulatedScanner) -> None:
    transport, sink = start(device, stall_timeout_s=0.2)
    try:
        wait_until(lambda: sink.samples > 500, message="first samples")
        device.stall(1.5)
        wait_until(lambda: transport.counters["opens"] >= 2, message="reopened after stalls")
        before = sink.samples
        wait_until(lambda: sink.samples > before + 500, message="samples after the reopen")
    finally:
        transport.stop()
    assert transport.counters["stalls"] >= 3
    assert transport.disconnected_s >= 0.5


def test_stall_is_counted_and_the_stream_resumes(device: SimulatedScanner) -> None:
    transport, sink = start(device, stall_timeout_s=0.25)
    try:
        wait_until(lambda: sink.samples > 500, message="first samples")
        device.stall(0.6)  # two stall periods: start bytes re-sent, port kept
        wait_until(lambda: transport.counters["stalls"] >= 1, message="stall counted")
        before = sink.samples
        wait_until(lambda: sink.samples > before + 500, message="samples after the stall")
    finally:
        transport.stop()
    # The samples the device measured while stalled are counted as dropped (exactly for the
    # LD06 from its timestamps; modulo whole revolutions for the RPLIDAR, from angles).
    assert transport.driver.counters()["samples_dropped"] > 0
    assert transport.counters["disconnects"] == 0


def test_missing_port_is_retried(tmp_path: Path) -> None:
    sink = Sink()
    transport = SerialLidarTransport(str(tmp_path / "nothing-here"), driver_for("ld06"), sink,
                                     reopen_min_s=0.02, reopen_max_s=0.05)
    transport.start()
    try:
        wait_until(lambda: transport.counters["open_failures"] >= 3, message="retries")
    finally:
        transport.stop()
    assert transport.last_error is not None
    assert sink.samples == 0
