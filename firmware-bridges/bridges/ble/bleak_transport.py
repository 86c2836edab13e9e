"""bleak scanning, moved onto a thread of its own with a private asyncio loop.

Only bytes move here: each detection becomes a :class:`HeardAdvert` for the pipeline. Passive
scanning on BlueZ needs an advertisement monitor with ``or_patterns``; we match our company id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any, Literal

from bridges.ble.sources import AdvertSink, HeardAdvert

log = logging.getLogger(__name__)


class ScannerError(RuntimeError):
    """The BLE adapter could not be used; the message says what to check."""


class BleakAdvertSource:
    def __init__(self, receiver: str, *, adapter: str | None = None,
                 scanning_mode: Literal["active", "passive"] = "active",
                 company_id: int = 0xFFFF, start_timeout_s: float = 10.0) -> None:
        self.receiver = receiver
        self.adapter = adapter
        self.scanning_mode = scanning_mode
        self.company_id = company_id
        self.start_timeout_s = start_timeout_s
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.detections = 0

    def start(self, sink: AdvertSink) -> None:
        self._thread = threading.Thread(target=self._run, args=(sink,),
                                        name=f"bleak-{self.receiver}", daemon=True)
        self._thread.start()
        if not self._started.wait(self.start_timeout_s):
            self.stop()
            raise ScannerError(f"BLE scanner {self.receiver} did not start in time")
        if self._error is not None:
            err = self._error
            self.stop()
            raise ScannerError(
                f"BLE scanner {self.receiver} (adapter {self.adapter or 'default'}) failed: "
                f"{err}; check that bluetoothd runs and the adapter is up"
            ) from err

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self, sink: AdvertSink) -> None:
        try:
            asyncio.run(self._scan(sink))
        except Exception as err:  # noqa: BLE001 - bleak/dbus raise many types; reported to start() or logged; never kills the process
            self._error = err
            self._started.set()
            log.warning("BLE scanner %s stopped: %s", self.receiver, err)

    async def _scan(self, sink: AdvertSink) -> None:
        from bleak import BleakScanner

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def on_detect(device: Any, adv: Any) -> None:
            self.detections += 1
            sink(HeardAdvert(
                receiver=self.receiver, address=str(device.address),
                rssi_dbm=int(adv.rssi),
                manufacturer_data={int(k): bytes(v) for k, v in adv.manufacturer_data.items()},
                monotonic_s=time.monotonic(),
            ))

        bluez: dict[str, Any] = {}
        if self.adapter:
            bluez["adapter"] = self.adapter
        if self.scanning_mode == "passive":
            from bleak.args.bluez import OrPattern
            from bleak.assigned_numbers import AdvertisementDataType

            bluez["or_patterns"] = [OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA,
                                              self.company_id.to_bytes(2, "little"))]
        scanner = BleakScanner(on_detect, scanning_mode=self.scanning_mode,
                               bluez=bluez)  # type: ignore[arg-type]
        await scanner.start()
        try:
            self._started.set()
            await self._stop.wait()
        finally:
            await scanner.stop()
