"""The gridward wristband advertisement, version 1 (sans-IO: bytes in, typed frames out).

The frame is the payload of a Manufacturer Specific Data AD structure (after the 2-byte company
id, which defaults to 0xFFFF, the Bluetooth SIG's id for internal/test use). All integers are
big-endian::

    off size field
    0   1    header: high nibble = version (1); low nibble = flags
             bit0 SOS pressed, bit1 strap open (tamper), bit2 charging, bit3 GNSS fix present
    1   4    band id (uint32)
    5   4    counter (uint32, monotonic, never reset; persisted in band flash)
    9   1    battery percent 0..100, 255 = unknown
    [GNSS only]
    10  4    latitude  (int32, 1e-7 degree)
    14  4    longitude (int32, 1e-7 degree)
    18  1    horizontal accuracy in metres (uint8, 255 = 255 m or worse)
    end 8    tag = HMAC-SHA256(band key, company id (2 bytes LE) || all bytes above)[:8]

18 bytes without a fix, 27 with one: both fit a legacy (31-byte) advertisement.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import IntFlag

VERSION = 1
DEFAULT_COMPANY_ID = 0xFFFF
TAG_LEN = 8
_BASE = struct.Struct(">BIIB")
_GNSS = struct.Struct(">iiB")
BASE_LEN = _BASE.size + TAG_LEN  # 18
GNSS_LEN = _BASE.size + _GNSS.size + TAG_LEN  # 27
BATTERY_UNKNOWN = 255
MAX_COUNTER = 0xFFFF_FFFF
MAX_BAND_ID = 0xFFFF_FFFF


class AdvertFlags(IntFlag):
    SOS = 0x1
    TAMPER = 0x2
    CHARGING = 0x4
    GNSS = 0x8


class AdvertError(ValueError):
    """A frame that is not a valid v1 wristband advert. ``reason`` is a short counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GnssFix:
    lat: float
    lon: float
    accuracy_m: int


@dataclass(frozen=True, slots=True)
class BandAdvert:
    """The signed fields of an advert."""

    band_id: int
    counter: int
    battery_pct: int | None
    sos: bool = False
    tamper: bool = False
    charging: bool = False
    gnss: GnssFix | None = None

    @property
    def flags(self) -> AdvertFlags:
        f = AdvertFlags(0)
        if self.sos:
            f |= AdvertFlags.SOS
        if self.tamper:
            f |= AdvertFlags.TAMPER
        if self.charging:
            f |= AdvertFlags.CHARGING
        if self.gnss is not None:
            f |= AdvertFlags.GNSS
        return f


@dataclass(frozen=True, slots=True)
class SignedAdvert:
    """A decoded frame: the fields, the bytes the tag covers and the tag (not yet verified)."""

    advert: BandAdvert
    signed: bytes
    tag: bytes

    def verify(self, key: bytes, company_id: int = DEFAULT_COMPANY_ID) -> bool:
        return hmac.compare_digest(compute_tag(key, self.signed, company_id), self.tag)


def compute_tag(key: bytes, signed: bytes, company_id: int = DEFAULT_COMPANY_ID) -> bytes:
    # The company id is bound into the tag so a frame cannot be replayed under another id.
    msg = company_id.to_bytes(2, "little") + signed
    return hmac.new(key, msg, hashlib.sha256).digest()[:TAG_LEN]


def _degrees_to_e7(value: float, limit: float, what: str) -> int:
    if not -limit <= value <= limit:
        raise AdvertError("bad_gnss", f"{what} {value} is outside +-{limit}")
    return round(value * 1e7)


def encode_advert(advert: BandAdvert, key: bytes, company_id: int = DEFAULT_COMPANY_ID) -> bytes:
    """The frame a band with ``key`` would send for ``advert``."""
    if not 0 <= advert.band_id <= MAX_BAND_ID:
        raise AdvertError("bad_band_id", f"band id {advert.band_id} is not a uint32")
    if not 0 <= advert.counter <= MAX_COUNTER:
        raise AdvertError("bad_counter", f"counter {advert.counter} is not a uint32")
    battery = BATTERY_UNKNOWN if advert.battery_pct is None else advert.battery_pct
    if not (0 <= battery <= 100 or battery == BATTERY_UNKNOWN):
        raise AdvertError("bad_battery", f"battery {battery}% is not 0..100")
    header = (VERSION << 4) | int(advert.flags)
    signed = _BASE.pack(header, advert.band_id, advert.counter, battery)
    if advert.gnss is not None:
        fix = advert.gnss
        if not 0 <= fix.accuracy_m <= 255:
            raise AdvertError("bad_gnss", f"accuracy {fix.accuracy_m} m is not 0..255")
        signed += _GNSS.pack(_degrees_to_e7(fix.lat, 90, "latitude"),
                             _degrees_to_e7(fix.lon, 180, "longitude"), fix.accuracy_m)
    return signed + compute_tag(key, signed, company_id)


def decode_advert(frame: bytes) -> SignedAdvert:
    """Parse a frame. Only ever raises :class:`AdvertError`; the tag is checked by the caller
    (it needs the band's key, found from the band id)."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise AdvertError("bad_type", "advert frame must be bytes")
    frame = bytes(frame)
    if len(frame) < 1:
        raise AdvertError("short", "empty advert frame")
    header = frame[0]
    version = header >> 4
    if version != VERSION:
        raise AdvertError("bad_version", f"advert version {version}; this gateway reads v1")
    flags = AdvertFlags(header & 0x0F)
    expected = GNSS_LEN if flags & AdvertFlags.GNSS else BASE_LEN
    if len(frame) != expected:
        raise AdvertError(
            "bad_length", f"advert is {len(frame)} bytes; header says {expected}"
        )
    _, band_id, counter, battery = _BASE.unpack_from(frame, 0)
    if battery > 100 and battery != BATTERY_UNKNOWN:
        raise AdvertError("bad_battery", f"battery byte {battery} is not 0..100 or 255")
    fix = None
    if flags & AdvertFlags.GNSS:
        lat_e7, lon_e7, acc = _GNSS.unpack_from(frame, _BASE.size)
        if not (-900_000_000 <= lat_e7 <= 900_000_000 and
                -1_800_000_000 <= lon_e7 <= 1_800_000_000):
            raise AdvertError("bad_gnss", "GNSS fix is outside WGS84 bounds")
        fix = GnssFix(lat=lat_e7 / 1e7, lon=lon_e7 / 1e7, accuracy_m=acc)
    signed_len = expected - TAG_LEN
    advert = BandAdvert(
        band_id=band_id, counter=counter,
        battery_pct=None if battery == BATTERY_UNKNOWN else battery,
        sos=bool(flags & AdvertFlags.SOS), tamper=bool(flags & AdvertFlags.TAMPER),
        charging=bool(flags & AdvertFlags.CHARGING), gnss=fix,
    )
    return SignedAdvert(advert=advert, signed=frame[:signed_len], tag=frame[signed_len:])
