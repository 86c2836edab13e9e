"""A serial BLE bridge board read through pyserial; lines are decoded by :mod:`serial_lines`."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from bridges.ble.adstruct import AdStructureError, manufacturer_data, parse_ad
from bridges.ble.serial_lines import BridgeAdvert, BridgeHeartbeat, BridgeLineError, LineDecoder
from bridges.ble.sources import AdvertSink, HeardAdvert

log = logging.getLogger(__name__)


class SerialBridgeError(RuntimeError):
    """The bridge's serial port could not be opened."""


class SerialBridgeSource:
    def __init__(self, receiver: str, port: str, *, baudrate: int = 115_200,
                 read_timeout_s: float = 0.2) -> None:
        self.receiver = receiver
        self.port = port
        self.baudrate = baudrate
        self.read_timeout_s = read_timeout_s
        self.errors: Counter[str] = Counter()
        self.adverts = 0
        self.last_heartbeat: BridgeHeartbeat | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: object | None = None

    def start(self, sink: AdvertSink) -> None:
        import serial

        try:
            port = serial.Serial(self.port, self.baudrate, timeout=self.read_timeout_s)
        except (serial.SerialException, OSError) as err:
            raise SerialBridgeError(
                f"cannot open BLE bridge {self.receiver} on {self.port}: {err}"
            ) from err
        self._serial = port
        self._thread = threading.Thread(target=self._run, args=(port, sink),
                                        name=f"serial-{self.receiver}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, port: object, sink: AdvertSink) -> None:
        import serial

        decoder = LineDecoder()
        try:
            while not self._stop.is_set():
                try:
                    data = port.read(512)  # type: ignore[attr-defined]
                except (serial.SerialException, OSError) as err:
                    self.errors["read_error"] += 1
                    log.warning("BLE bridge %s read failed: %s", self.receiver, err)
                    self._stop.wait(1.0)
                    continue
                if data:
                    self._handle(decoder.feed(data), sink)
        finally:
            port.close()  # type: ignore[attr-defined]

    def _handle(self, frames: list[BridgeAdvert | BridgeHeartbeat | BridgeLineError],
                sink: AdvertSink) -> None:
        now = time.monotonic()
        for frame in frames:
            if isinstance(frame, BridgeLineError):
                self.errors[frame.reason] += 1
            elif isinstance(frame, BridgeHeartbeat):
                self.last_heartbeat = frame
            else:
                try:
                    mfr = manufacturer_data(parse_ad(frame.ad))
                except AdStructureError as err:
                    self.errors[f"ad_{err.reason}"] += 1
                    continue
                self.adverts += 1
                sink(HeardAdvert(self.receiver, frame.address, frame.rssi_dbm, mfr, now))
