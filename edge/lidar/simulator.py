"""A LiDAR device simulator: renders a :class:`~edge.lidar.scene.SceneConfig` into the real byte
format of the chosen scanner (LD06/LD19 frames or RPLIDAR standard-scan nodes) and serves it on
a pseudo-terminal pair at the device's baud rate and sample rate, so the agent opens a serial
port and reads it exactly as it would read the device.

Faults: byte corruption and garbage bursts (from the scene's ``faults``), stalls (the device
goes quiet) and unplugging (the pty pair disappears with its device path and comes back later).

:class:`ScannerStream` is the time-driven byte source without any I/O; tests use it directly to
replay long runs in seconds, :class:`SimulatedScanner` paces it onto a pty in real time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import termios
import threading
import time
import tty
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bridges.lidar import ld06, rplidar
from bridges.lidar.drivers import MODELS, ScannerModel, line_bytes_per_s
from edge.lidar.scene import SceneConfig, SceneRenderer

log = logging.getLogger(__name__)

INTENSITY_HIT = 200
RPLIDAR_QUALITY_HIT = 47


class ScannerStream:
    """Everything the device would have sent up to a given time, in its real format.

    Sample ``k`` is measured at ``k / sample_rate_hz`` seconds at scanner angle
    ``k * step`` (step = 360 * scan_rate / sample_rate degrees).
    """

    def __init__(self, scene: SceneConfig, *, baud_rate: int | None = None) -> None:
        self.scene = scene
        self.model: ScannerModel = MODELS[scene.model]
        self.baud_rate = baud_rate or self.model.baud_rate
        self.protocol = self.model.protocol
        self.renderer = SceneRenderer(scene, scene.max_range_m or self.model.max_range_m)
        self.rate = float(self.model.sample_rate_hz)
        self.step_deg = 360.0 * self.model.scan_rate_hz / self.rate
        self.unit = ld06.POINTS_PER_FRAME if self.protocol == "ld06" else 1
        self._next_sample = 0
        self._rng = np.random.default_rng(scene.seed + 7)
        self._requests = rplidar.RequestParser()
        # An LD06 streams from power-on; an RPLIDAR waits for SCAN.
        self.scanning = self.protocol == "ld06"
        self.counters: Counter[str] = Counter()

    # -- host requests (RPLIDAR) ---------------------------------------------------------

    def host_bytes(self, data: bytes) -> bytes:
        """Bytes the host wrote; returns the device's immediate answer (descriptors, health)."""
        if self.protocol != "rplidar":
            return b""
        reply = bytearray()
        for cmd, _payload in self._requests.feed(data):
            self.counters["requests"] += 1
            if cmd in (rplidar.Command.SCAN, rplidar.Command.FORCE_SCAN):
                self.scanning = True
                reply += rplidar.encode_descriptor(rplidar.DataType.SCAN)
            elif cmd in (rplidar.Command.STOP, rplidar.Command.RESET):
                self.scanning = False
            elif cmd == rplidar.Command.GET_HEALTH:
                reply += rplidar.encode_health(rplidar.Health(0, 0))
            elif cmd == rplidar.Command.GET_INFO:
                reply += rplidar.encode_info(rplidar.DeviceInfo(0x18, (1, 29), 7, "00" * 16))
        return bytes(reply)

    # -- samples -------------------------------------------------------------------------

    def units_until(self, t_s: float, *, emit: bool = True) -> list[bytes]:
        """Frames (LD06) or nodes (RPLIDAR) measured before ``t_s``, each as its bytes (faults
        applied). With ``emit`` False (or while not scanning) they are skipped: lost."""
        last = int(t_s * self.rate) // self.unit * self.unit
        first = self._next_sample
        if last <= first:
            return []
        self._next_sample = last
        if not emit or not self.scanning:
            self.counters["units_not_sent"] += (last - first) // self.unit
            return []
        k = np.arange(first, last)
        angles = np.mod(k * self.step_deg, 360.0)
        t_mid = (first + last) / 2 / self.rate
        ranges = self.renderer.ranges(t_mid, angles)
        units = (self._ld06_frames(k, angles, ranges) if self.protocol == "ld06"
                 else self._rplidar_nodes(k, angles, ranges))
        self.counters["units"] += len(units)
        return [self._faults(u) for u in units]

    def _ld06_frames(self, k: np.ndarray, angles: np.ndarray, ranges: np.ndarray) -> list[bytes]:
        mm = np.where(np.isnan(ranges), 0, np.clip(np.round(ranges * 1000), 1, 65535)).astype(int)
        inten = np.where(mm > 0, INTENSITY_HIT, 0)
        speed = round(360 * self.model.scan_rate_hz)
        frames = []
        n = ld06.POINTS_PER_FRAME
        for j in range(0, len(k), n):
            t_ms = int(k[j] * 1000 // self.rate) % ld06.TIMESTAMP_WRAP_MS
            frames.append(ld06.encode_frame(ld06.Ld06Frame(
                speed_dps=speed,
                start_angle_cdeg=round(angles[j] * 100) % 36000,
                end_angle_cdeg=round(angles[j + n - 1] * 100) % 36000,
                timestamp_ms=t_ms,
                distances_mm=tuple(mm[j : j + n].tolist()),
                intensities=tuple(inten[j : j + n].tolist()),
            )))
        return frames

    def _rplidar_nodes(self, k: np.ndarray, angles: np.ndarray,
                       ranges: np.ndarray) -> list[bytes]:
        q2 = np.where(np.isnan(ranges), 0, np.clip(np.round(ranges * 4000), 1, 65535)).astype(int)
        turns = np.floor(k * self.step_deg / 360.0)
        prev_turns = np.floor((k - 1) * self.step_deg / 360.0)
        starts = turns != prev_turns
        q6 = (np.round(angles * 64).astype(int)) % (360 * 64)
        # Vectorised form of rplidar.encode_node (the tests check they agree).
        s = starts.astype(int)
        quality = np.where(q2 > 0, RPLIDAR_QUALITY_HIT, 0)
        raw = np.empty((len(k), rplidar.NODE_LEN), dtype=np.uint8)
        raw[:, 0] = (quality << 2) | ((s ^ 1) << 1) | s
        raw[:, 1] = ((q6 << 1) | 1) & 0xFF
        raw[:, 2] = q6 >> 7
        raw[:, 3] = q2 & 0xFF
        raw[:, 4] = q2 >> 8
        return [row.tobytes() for row in raw]

    def _faults(self, unit: bytes) -> bytes:
        f = self.scene.faults
        if f.corrupt_rate <= 0 and f.garbage_rate <= 0:
            return unit
        out = unit
        if f.corrupt_rate > 0 and self._rng.random() < f.corrupt_rate:
            data = bytearray(unit)
            pos = int(self._rng.integers(0, len(data)))
            data[pos] ^= int(self._rng.integers(1, 256))
            out = bytes(data)
            self.counters["units_corrupted"] += 1
        if f.garbage_rate > 0 and self._rng.random() < f.garbage_rate:
            size = int(self._rng.integers(1, f.garbage_max_bytes + 1))
            junk = self._rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            self.counters["garbage_bytes"] += size
            self.counters["garbage_bursts"] += 1
            out = junk + out
        return out

    def chunks(self, duration_s: float, tick_s: float = 0.02) -> Iterator[tuple[float, bytes]]:
        """Offline replay: (time, bytes sent during the tick ending then), no pacing."""
        steps = round(duration_s / tick_s)
        for i in range(1, steps + 1):
            t = i * tick_s
            yield t, b"".join(self.units_until(t))


class SimulatedScanner:
    """Serves a :class:`ScannerStream` on a pty pair whose slave is reachable at ``link``
    (a symlink, like a udev ``/dev/serial/by-id`` name)."""

    def __init__(
        self,
        scene: SceneConfig,
        link: Path,
        *,
        baud_rate: int | None = None,
        tick_s: float = 0.01,
        device_buffer_bytes: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = ScannerStream(scene, baud_rate=baud_rate)
        self.link = link
        self.tick_s = tick_s
        self.device_buffer_bytes = device_buffer_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._plugged = False
        self._stall_until = 0.0
        self._t0 = 0.0
        self._pending = bytearray()
        self.counters: Counter[str] = Counter()

    @property
    def counts(self) -> Counter[str]:
        return self.counters + self.stream.counters

    def scene_time(self) -> float:
        return self._clock() - self._t0

    def start(self) -> None:
        self._t0 = self._clock()
        self.replug()
        self._thread = threading.Thread(target=self._run, name=f"lidar-sim-{self.link.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.unplug()

    def unplug(self) -> None:
        """The USB device vanishes: the port errors for its reader and its path disappears."""
        with self._lock:
            if not self._plugged:
                return
            self._plugged = False
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None
            self._pending.clear()
            self.counters["unplugs"] += 1
            if self.stream.protocol == "rplidar":
                self.stream.scanning = False  # power cycle: it waits for SCAN again

    def replug(self) -> None:
        with self._lock:
            if self._plugged:
                return
            master, slave = os.openpty()
            tty.setraw(slave)
            speed = getattr(termios, f"B{self.stream.baud_rate}", None)
            if speed is not None:
                attrs = termios.tcgetattr(slave)
                attrs[4] = attrs[5] = speed
                termios.tcsetattr(slave, termios.TCSANOW, attrs)
            os.set_blocking(master, False)
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(os.ttyname(slave))
            tmp.replace(self.link)
            self._master, self._slave = master, slave
            self._plugged = True
            self.counters["plugs"] += 1

    def stall(self, seconds: float) -> None:
        """The device keeps running but sends nothing for ``seconds`` (the data is lost)."""
        self._stall_until = self._clock() + seconds

    def _run(self) -> None:
        last = self._clock()
        budget = 0.0
        line_rate = line_bytes_per_s(self.stream.baud_rate)
        while not self._stop.wait(self.tick_s):
            now = self._clock()
            budget = min(budget + (now - last) * line_rate, line_rate * 0.1)
            last = now
            with self._lock:
                budget -= self._tick(now, budget)

    def _tick(self, now: float, budget: float) -> int:
        """Advance the device to ``now``; returns the bytes written to the line."""
        master = self._master
        sending = self._plugged and now >= self._stall_until
        if master is not None:
            self._read_host(master)
        units = self.stream.units_until(now - self._t0, emit=sending)
        if not sending or master is None:
            return 0
        for unit in units:
            self._pending += unit
        overflow = len(self._pending) - self.device_buffer_bytes
        if overflow > 0:  # a UART FIFO does not wait: the oldest bytes are lost
            del self._pending[:overflow]
            self.counters["device_overflow_bytes"] += overflow
        allowed = int(budget)
        if allowed <= 0 or not self._pending:
            return 0
        try:
            written = os.write(master, self._pending[:allowed])
        except BlockingIOError:
            written = 0
            self.counters["host_not_reading"] += 1
        except OSError as err:
            log.debug("pty write failed: %s", err)
            return 0
        del self._pending[:written]
        self.counters["bytes_sent"] += written
        return written

    def _read_host(self, master: int) -> None:
        ready, _, _ = select.select([master], [], [], 0)
        if not ready:
            return
        try:
            data = os.read(master, 4096)
        except OSError:
            return
        reply = self.stream.host_bytes(data)
        if reply:
            self._pending[:0] = reply  # answers go out before further samples
