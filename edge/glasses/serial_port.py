"""A serial peripheral of the glasses (GNSS receiver, button remote) read on its own thread,
reopened after an unplug: a flaky cable costs readings, never the agent."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class SerialDevice:
    """Subclasses implement :meth:`_read` (loop until ``self._stop`` is set; raise
    ``OSError``/``SerialException`` when the port goes away)."""

    def __init__(self, name: str, port: str, baudrate: int, *, read_timeout_s: float,
                 reopen_s: float = 1.0) -> None:
        self.name = name
        self.port = port
        self.baudrate = baudrate
        self._read_timeout_s = read_timeout_s
        self._reopen_s = reopen_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.opened = 0
        self.port_errors = 0
        self.connected = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"glasses-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _read(self, port: Any) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        import serial

        while not self._stop.is_set():
            try:
                port = serial.Serial(self.port, self.baudrate, timeout=self._read_timeout_s)
            except (serial.SerialException, OSError) as err:
                self.port_errors += 1
                log.info("%s port %s not open: %s", self.name, self.port, err)
                self._stop.wait(self._reopen_s)
                continue
            # pyserial flushes the input on open: from here on nothing sent is lost.
            self.opened += 1
            self.connected = True
            try:
                self._read(port)
            except (serial.SerialException, OSError) as err:
                self.port_errors += 1
                log.warning("%s port %s lost: %s", self.name, self.port, err)
            finally:
                self.connected = False
                port.close()
            self._stop.wait(self._reopen_s)
