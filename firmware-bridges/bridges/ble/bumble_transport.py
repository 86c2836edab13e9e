"""Google's ``bumble`` Bluetooth stack as an advert transport and as the gateway's GATT client.

bumble runs the host stack in Python over any HCI transport (``usb:0``, ``serial:/dev/ttyACM0``,
``hci-socket:0``, ...) without BlueZ, and offers an in-process virtual link (``LocalLink``) on
which tests run a simulated band and this scanner together. Only bytes move here: every
advertising report becomes a :class:`HeardAdvert` (parsed by :mod:`bridges.ble.adstruct`), the
same as bleak or the serial bridge produce.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bridges.ble.adstruct import AdStructureError, manufacturer_data, parse_ad
from bridges.ble.key_rotation import (
    BAND_SERVICE_UUID,
    BATTERY_LEVEL_CHAR_UUID16,
    BATTERY_SERVICE_UUID16,
    KEY_ROTATION_CHAR_UUID,
    Rotation,
    confirms,
    encode_rotation,
)
from bridges.ble.sources import AdvertSink, HeardAdvert

log = logging.getLogger(__name__)

GATT_MTU = 100  # the rotation frame (up to 58 bytes) in one write


class BumbleError(RuntimeError):
    """The bumble controller or a band could not be used; the message says what to check."""


class BumbleScanner:
    """Passive scanning on a powered-on bumble ``Device`` (runs on the device's event loop)."""

    def __init__(self, receiver: str, device: Any) -> None:
        self.receiver = receiver
        self.device = device
        self.detections = 0
        self.malformed = 0
        self._sink: AdvertSink | None = None

    async def start(self, sink: AdvertSink) -> None:
        self._sink = sink
        self.device.on("advertisement", self._on_advertisement)
        await self.device.start_scanning(active=False, filter_duplicates=False)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):  # the controller may already be gone
            await self.device.stop_scanning()
        self.device.remove_listener("advertisement", self._on_advertisement)

    def _on_advertisement(self, advertisement: Any) -> None:
        try:
            items = parse_ad(bytes(advertisement.data_bytes))
        except AdStructureError:
            self.malformed += 1
            return
        data = manufacturer_data(items)
        if not data or self._sink is None:
            return
        self.detections += 1
        self._sink(HeardAdvert(
            receiver=self.receiver, address=str(advertisement.address),
            rssi_dbm=int(advertisement.rssi), manufacturer_data=data,
            monotonic_s=time.monotonic()))


DeviceFactory = Callable[[], Awaitable[Any]]


class BumbleAdvertSource:
    """An :class:`~bridges.ble.sources.AdvertSource` on a thread with its own asyncio loop.

    ``hci`` names a bumble transport (e.g. ``usb:0``). ``device_factory`` replaces it: a
    coroutine run on this source's loop that returns a powered-on ``Device`` (tests build a
    virtual link and a simulated band there).
    """

    def __init__(self, receiver: str, *, hci: str | None = None,
                 device_factory: DeviceFactory | None = None,
                 start_timeout_s: float = 10.0) -> None:
        if (hci is None) == (device_factory is None):
            raise ValueError("give exactly one of hci and device_factory")
        self.receiver = receiver
        self.hci = hci
        self.device_factory = device_factory
        self.start_timeout_s = start_timeout_s
        self.scanner: BumbleScanner | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self, sink: AdvertSink) -> None:
        self._thread = threading.Thread(target=self._run, args=(sink,),
                                        name=f"bumble-{self.receiver}", daemon=True)
        self._thread.start()
        if not self._started.wait(self.start_timeout_s):
            self.stop()
            raise BumbleError(f"bumble receiver {self.receiver} did not start in time")
        if self._error is not None:
            err = self._error
            self.stop()
            raise BumbleError(f"bumble receiver {self.receiver} ({self.hci or 'factory'}) "
                              f"failed: {err}; check the HCI transport name and the dongle"
                              ) from err

    def stop(self) -> None:
        loop, stop = self.loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def run_coroutine(self, coro: Awaitable[Any], timeout_s: float = 10.0) -> Any:
        """Run ``coro`` on this source's loop (GATT work on the same controller) and wait."""
        if self.loop is None:
            raise BumbleError("bumble receiver is not running")
        async def wrap() -> Any:
            return await coro
        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(timeout_s)

    def _run(self, sink: AdvertSink) -> None:
        try:
            asyncio.run(self._main(sink))
        except Exception as err:  # noqa: BLE001 - bumble/transports raise many types; reported to start() or logged
            self._error = err
            self._started.set()
            log.warning("bumble receiver %s stopped: %s", self.receiver, err)

    async def _main(self, sink: AdvertSink) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            if self.device_factory is not None:
                device = await self.device_factory()
            else:
                from bumble.device import Device
                from bumble.hci import Address
                from bumble.transport import open_transport

                transport = await open_transport(str(self.hci))
                stack.push_async_callback(transport.close)
                device = Device.with_hci(f"gridward-{self.receiver}",
                                         Address("F0:F1:F2:F3:F4:F5"), transport.source,
                                         transport.sink)
                await device.power_on()
            self.scanner = BumbleScanner(self.receiver, device)
            await self.scanner.start(sink)
            stack.push_async_callback(self.scanner.stop)
            self._started.set()
            await self._stop.wait()


# -- GATT client: battery and key rotation -----------------------------------------------------


class BandSession:
    """A GATT connection to one band (use :func:`band_session`)."""

    def __init__(self, peer: Any) -> None:
        self.peer = peer

    def _char(self, uuid: Any) -> Any:
        chars = self.peer.get_characteristics_by_uuid(uuid)
        if not chars:
            raise BumbleError(f"band has no characteristic {uuid}")
        return chars[0]

    async def battery_pct(self) -> int:
        from bumble.core import UUID

        value = await self._char(UUID.from_16_bits(BATTERY_LEVEL_CHAR_UUID16)).read_value()
        return int(bytes(value)[0])

    async def key_state(self) -> bytes:
        from bumble.core import UUID

        return bytes(await self._char(UUID(KEY_ROTATION_CHAR_UUID)).read_value())

    async def rotate_key(self, rotation: Rotation, old_key: bytes) -> bool:
        """Write the rotation frame, then read the band's state back: True only when the band
        proves it holds the new key at the new epoch. A refusal raises :class:`BumbleError`."""
        from bumble.att import ATT_Error
        from bumble.core import UUID

        char = self._char(UUID(KEY_ROTATION_CHAR_UUID))
        try:
            await char.write_value(encode_rotation(rotation, old_key), with_response=True)
        except ATT_Error as err:
            raise BumbleError(f"band refused the key rotation (ATT error {err.error_code:#x})"
                              ) from err
        return confirms(await self.key_state(), rotation)


@contextlib.asynccontextmanager
async def band_session(device: Any, address: Any) -> AsyncIterator[BandSession]:
    """Connect to a band, discover its battery and gridward services, disconnect at the end."""
    from bumble.core import UUID
    from bumble.device import Peer

    connection = await device.connect(address)
    try:
        peer = Peer(connection)
        await peer.request_mtu(GATT_MTU)
        await peer.discover_services([UUID.from_16_bits(BATTERY_SERVICE_UUID16),
                                      UUID(BAND_SERVICE_UUID)])
        for service in peer.services:
            await service.discover_characteristics()
        yield BandSession(peer)
    finally:
        with contextlib.suppress(Exception):
            await connection.disconnect()
