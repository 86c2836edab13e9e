"""Thin pyserial transport: open the port, feed the driver, reopen when the device vanishes.

It only moves bytes: decoding is the driver's job and what happens to the samples is the
caller's. A USB scanner that is unplugged makes reads fail (``SerialException``/``OSError``);
the transport closes the port, counts a disconnect and retries the open with backoff until the
device node comes back. A stream that goes quiet for ``stall_timeout_s`` is counted as a stall;
the start bytes are re-sent (an RPLIDAR that reset stops scanning) and after three stalls in a
row the port is reopened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bridges.lidar.drivers import LidarDriver, SampleBlock

log = logging.getLogger(__name__)

SerialFactory = Callable[..., Any]


class LidarPortError(Exception):
    """The serial port cannot be used (the sentence says why)."""


def _default_factory() -> SerialFactory:
    try:
        import serial
    except ImportError as err:
        raise LidarPortError(
            "pyserial is not installed: install gridward with the 'lidar' extra") from err
    factory: SerialFactory = serial.Serial
    return factory


class SerialLidarTransport:
    def __init__(
        self,
        port: str,
        driver: LidarDriver,
        on_samples: Callable[[SampleBlock], None],
        *,
        baud_rate: int | None = None,
        read_size: int = 4096,
        read_timeout_s: float = 0.05,
        stall_timeout_s: float = 2.0,
        reopen_min_s: float = 0.1,
        reopen_max_s: float = 5.0,
        serial_factory: SerialFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.driver = driver
        self.baud_rate = baud_rate or driver.model.baud_rate
        self._on_samples = on_samples
        self._read_size = read_size
        self._read_timeout_s = read_timeout_s
        self._stall_timeout_s = stall_timeout_s
        self._reopen_min_s = reopen_min_s
        self._reopen_max_s = reopen_max_s
        self._factory = serial_factory or _default_factory()
        self._clock = clock
        self._serial: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counters: Counter[str] = Counter()
        self.connected = threading.Event()
        # Cumulative time without data because the port was lost (from the last byte received
        # to the reopen), after the first open.
        self.disconnected_s = 0.0
        self._last_data_at = clock()
        self.last_error: str | None = None

    @property
    def stop_event(self) -> threading.Event:
        """Set to make :meth:`run` return; :meth:`stop` sets it too."""
        return self._stop

    def start(self) -> None:
        """Run :meth:`run` on a thread of its own (a caller with a supervisor runs it there)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"lidar-serial-{self.port}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close(send_stop=True)

    def run(self) -> None:
        """Read until :attr:`stop_event` is set. An unexpected error (a driver or serial library
        bug) closes the port, so whoever restarts this starts from a fresh open and a reset
        driver, and propagates to that supervisor."""
        try:
            self._run()
        except Exception:
            self._close()
            raise

    # -- internals -------------------------------------------------------------------------

    def _open(self) -> bool:
        try:
            ser = self._factory(self.port, self.baud_rate, timeout=self._read_timeout_s)
            if self.driver.motor_dtr is not None:
                self._set_dtr(ser, self.driver.motor_dtr)
            start = self.driver.start_bytes()
            if start:
                ser.write(start)
        except (OSError, ValueError) as err:  # SerialException is an OSError subclass
            self.counters["open_failures"] += 1
            self.last_error = str(err)
            return False
        self._serial = ser
        self.driver.reset()
        self.counters["opens"] += 1
        self.connected.set()
        log.info("lidar port %s open at %s baud", self.port, self.baud_rate)
        return True

    def _set_dtr(self, ser: Any, level: bool) -> None:
        try:
            ser.dtr = level
        except OSError as err:
            # A port without modem lines (native UART, pseudo-terminal): the motor is wired
            # to power instead, so there is nothing to switch.
            self.counters["dtr_unsupported"] += 1
            log.debug("cannot set DTR on %s: %s", self.port, err)

    def _close(self, *, send_stop: bool = False) -> None:
        ser, self._serial = self._serial, None
        self.connected.clear()
        if ser is None:
            return
        try:
            if send_stop and self.driver.stop_bytes():
                ser.write(self.driver.stop_bytes())
        except (OSError, ValueError):
            pass  # the device is gone: nothing to stop
        try:
            ser.close()
        except (OSError, ValueError):
            log.debug("closing %s failed", self.port)

    def _run(self) -> None:
        backoff = self._reopen_min_s
        lost_at: float | None = None
        while not self._stop.is_set():
            if self._serial is None:
                if not self._open():
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self._reopen_max_s)
                    continue
                backoff = self._reopen_min_s
                if lost_at is not None:
                    self.disconnected_s += self._clock() - lost_at
                    lost_at = None
            if not self._pump():
                self._close()
                self.counters["disconnects"] += 1
                lost_at = self._last_data_at
                log.warning("lidar port %s lost (%s); reopening", self.port, self.last_error)

    def _pump(self) -> bool:
        """Read until the port fails (False) or the transport stops (True)."""
        ser = self._serial
        last_data = self._clock()
        stalls = 0
        while not self._stop.is_set():
            try:
                waiting = ser.in_waiting
                data = ser.read(max(1, min(waiting, 65536)) if waiting else self._read_size)
            except (OSError, ValueError) as err:
                self.last_error = str(err)
                return False
            now = self._clock()
            if not data:
                if now - last_data >= self._stall_timeout_s:
                    stalls += 1
                    self.counters["stalls"] += 1
                    last_data = now
                    if stalls >= 3:
                        self.last_error = "no data for three stall periods"
                        return False
                    try:
                        if self.driver.start_bytes():
                            ser.write(self.driver.start_bytes())
                    except (OSError, ValueError) as err:
                        self.last_error = str(err)
                        return False
                continue
            stalls = 0
            last_data = self._last_data_at = now
            self.counters["bytes"] += len(data)
            block = self.driver.decode(data)
            if len(block):
                self._on_samples(block)
        return True
