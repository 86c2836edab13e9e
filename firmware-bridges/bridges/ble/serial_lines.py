"""Line protocol of the serial BLE bridge board (an ESP32-class scanner on a UART).

One ASCII line per event, NMEA-style: ``$`` body ``*`` two hex digits of the XOR of the body's
bytes, then ``\\n`` (a preceding ``\\r`` is ignored)::

    $ADV,<address AA:BB:CC:DD:EE:FF>,<rssi dBm>,<advertising data as hex>*<checksum>
    $HB,<uptime ms>,<adverts dropped by the board>*<checksum>

:class:`LineDecoder` is sans-IO: feed it whatever bytes the UART gave, get frames and counted
errors out. A line longer than ``MAX_LINE`` is discarded up to the next newline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce

MAX_LINE = 1024
_MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$")
_HEX_RE = re.compile(r"^(?:[0-9A-Fa-f]{2})*$")


class BridgeLineError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BridgeAdvert:
    address: str
    rssi_dbm: int
    ad: bytes


@dataclass(frozen=True, slots=True)
class BridgeHeartbeat:
    uptime_ms: int
    dropped: int


BridgeFrame = BridgeAdvert | BridgeHeartbeat


def checksum(body: bytes) -> int:
    return reduce(lambda a, b: a ^ b, body, 0)


def _wrap(body: str) -> bytes:
    raw = body.encode("ascii")
    return b"$" + raw + b"*" + f"{checksum(raw):02X}".encode("ascii") + b"\n"


def format_frame(frame: BridgeFrame) -> bytes:
    if isinstance(frame, BridgeAdvert):
        return _wrap(f"ADV,{frame.address.upper()},{frame.rssi_dbm},{frame.ad.hex().upper()}")
    return _wrap(f"HB,{frame.uptime_ms},{frame.dropped}")


def _int(text: str, lo: int, hi: int, what: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,13}", text):
        raise BridgeLineError("bad_field", f"{what} {text!r} is not an integer")
    value = int(text)
    if not lo <= value <= hi:
        raise BridgeLineError("bad_field", f"{what} {value} is outside {lo}..{hi}")
    return value


def parse_line(line: bytes) -> BridgeFrame:
    """One line without its newline. Only ever raises :class:`BridgeLineError`."""
    line = line.rstrip(b"\r")
    if len(line) > MAX_LINE:
        raise BridgeLineError("too_long", f"line is {len(line)} bytes")
    if len(line) < 4 or line[:1] != b"$" or line[-3:-2] != b"*":
        raise BridgeLineError("bad_frame", "line is not $...*XX")
    body, check = line[1:-3], line[-2:]
    try:
        text = body.decode("ascii")
        expected = int(check.decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError) as err:
        raise BridgeLineError("bad_frame", "line is not ASCII with a hex checksum") from err
    if not re.fullmatch(rb"[0-9A-Fa-f]{2}", check):
        raise BridgeLineError("bad_frame", "checksum is not two hex digits")
    if checksum(body) != expected:
        raise BridgeLineError("bad_checksum", "checksum mismatch")
    fields = text.split(",")
    if fields[0] == "ADV" and len(fields) == 4:
        _, address, rssi, ad_hex = fields
        if not _MAC_RE.fullmatch(address):
            raise BridgeLineError("bad_field", f"address {address!r} is not AA:BB:CC:DD:EE:FF")
        if not _HEX_RE.fullmatch(ad_hex) or len(ad_hex) > 2 * 255:
            raise BridgeLineError("bad_field", "advertising data is not hex (max 255 bytes)")
        return BridgeAdvert(address.upper(), _int(rssi, -127, 20, "rssi"), bytes.fromhex(ad_hex))
    if fields[0] == "HB" and len(fields) == 3:
        return BridgeHeartbeat(_int(fields[1], 0, 2**40, "uptime"),
                               _int(fields[2], 0, 2**32, "dropped"))
    raise BridgeLineError("unknown_line", f"unknown line type {fields[0][:8]!r}")


class LineDecoder:
    """Reassembles lines from arbitrary chunks; errors are returned, never raised."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[BridgeFrame | BridgeLineError]:
        out: list[BridgeFrame | BridgeLineError] = []
        self._buf += data
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE:
                    if not self._discarding:
                        out.append(BridgeLineError("too_long", "line longer than MAX_LINE"))
                    self._discarding = True
                    self._buf.clear()
                return out
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if self._discarding:
                self._discarding = False
                continue
            if not line.strip():
                continue
            try:
                out.append(parse_line(line))
            except BridgeLineError as err:
                out.append(err)
