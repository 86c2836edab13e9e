"""A simulated wristband on bumble: advertises real, signed v1 adverts and serves GATT (Battery
Service 0x180F/0x2A19 and the gridward key-rotation characteristic), as firmware would.

Runs on a bumble ``Device`` (on a virtual ``LocalLink`` in tests and demos, or on a real
controller). The band keeps its counter and key epoch like flash would: a rotation frame is
accepted once, with an epoch above the current one and a MAC under the current key.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from bridges.ble.adstruct import AD_FLAGS, AdItem, build_ad, manufacturer_item
from bridges.ble.advert import DEFAULT_COMPANY_ID, BandAdvert, encode_advert
from bridges.ble.key_rotation import (
    BAND_SERVICE_UUID,
    KEY_ROTATION_CHAR_UUID,
    RotationError,
    decode_rotation,
    encode_state,
)

log = logging.getLogger(__name__)

ATT_APPLICATION_ERROR = 0x80  # first of the application error codes (Core Vol 3 Part F 3.4.1.1)
LE_GENERAL_DISCOVERABLE_BR_EDR_NOT_SUPPORTED = 0x06


class VirtualBand:
    def __init__(self, device: Any, band_id: int, key: bytes, *, battery_pct: int = 80,
                 company_id: int = DEFAULT_COMPANY_ID) -> None:
        self.device = device
        self.band_id = band_id
        self._key = key
        self.epoch = 0
        self.counter = 0
        self.battery_pct = battery_pct
        self.company_id = company_id
        self.sos = False
        self.tamper = False
        self.refused: Counter[str] = Counter()

    @property
    def key(self) -> bytes:
        return self._key

    def advertising_data(self) -> bytes:
        """The next advertising payload: Flags + the signed frame (new counter each call)."""
        self.counter += 1
        frame = encode_advert(BandAdvert(self.band_id, self.counter, self.battery_pct,
                                         sos=self.sos, tamper=self.tamper),
                              self._key, self.company_id)
        return build_ad([AdItem(AD_FLAGS, bytes([LE_GENERAL_DISCOVERABLE_BR_EDR_NOT_SUPPORTED])),
                         manufacturer_item(self.company_id, frame)])

    async def start(self, advertising_interval_ms: float = 100.0) -> None:
        from bumble.gatt import Characteristic, CharacteristicValue, Service
        from bumble.profiles.battery_service import BatteryService

        self.device.add_service(BatteryService(lambda _conn: self.battery_pct))
        self.device.add_service(Service(BAND_SERVICE_UUID, [Characteristic(
            KEY_ROTATION_CHAR_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.WRITE,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue(read=self._read_state, write=self._write_rotation))]))
        await self.device.start_advertising(
            advertising_data=self.advertising_data(), auto_restart=True,
            advertising_interval_min=advertising_interval_ms,
            advertising_interval_max=advertising_interval_ms)

    async def advertise_next(self) -> None:
        """Move to the next counter (a band does this every advertising period)."""
        await self.device.stop_advertising()
        await self.device.start_advertising(advertising_data=self.advertising_data(),
                                            auto_restart=True)

    def _read_state(self, _connection: Any) -> bytes:
        return encode_state(self.band_id, self.epoch, self._key if self.epoch else None)

    def _write_rotation(self, _connection: Any, value: bytes) -> None:
        from bumble.att import ATT_Error

        try:
            rotation = decode_rotation(bytes(value), band_id=self.band_id,
                                       current_epoch=self.epoch, keys=(self._key,))
        except RotationError as err:
            self.refused[err.reason] += 1
            log.info("band 0x%08x refused a key rotation: %s", self.band_id, err.reason)
            raise ATT_Error(ATT_APPLICATION_ERROR, message=err.reason) from err
        self._key, self.epoch = rotation.new_key, rotation.epoch
        log.info("band 0x%08x installed key epoch %d", self.band_id, self.epoch)
