"""LDROBOT LD06 / LD19 measurement frames, from the public LD06/LD19 development manuals.

Frame layout (47 bytes, little-endian)::

    0      header      0x54
    1      ver_len     0x2C: packet type 1 (upper 3 bits), 12 points (lower 5 bits)
    2..3   speed       rotation speed, degrees per second (3600 = 10 Hz)
    4..5   start_angle 0.01 degree units
    6..41  12 points   distance uint16 (mm) + intensity uint8
    42..43 end_angle   0.01 degree units
    44..45 timestamp   milliseconds, wraps at 30000
    46     crc8        CRC-8 over bytes 0..45, polynomial 0x4D, init 0, not reflected

The scanner streams frames continuously at 230400 baud (about 4500 points/s, 375 frames/s at
10 Hz). Angles grow clockwise seen from above; point ``i`` lies at
``start + i * (end - start) / 11`` (with ``end`` unwrapped past 360 degrees). A distance of 0
means "no return".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

HEADER = 0x54
VER_LEN = 0x2C
POINTS_PER_FRAME = 12
FRAME_LEN = 47
BAUD_RATE = 230_400
NOMINAL_SAMPLE_RATE_HZ = 4500
TIMESTAMP_WRAP_MS = 30_000
CRC_POLY = 0x4D

_SYNC = bytes((HEADER, VER_LEN))
_FRAME = struct.Struct("<BBHH" + "HB" * POINTS_PER_FRAME + "HHB")


def _make_crc_table(poly: int) -> bytes:
    table = bytearray(256)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table[i] = crc
    return bytes(table)


CRC_TABLE = _make_crc_table(CRC_POLY)


def crc8(data: bytes | bytearray | memoryview) -> int:
    crc = 0
    table = CRC_TABLE
    for byte in data:
        crc = table[crc ^ byte]
    return crc


@dataclass(frozen=True, slots=True)
class Ld06Frame:
    speed_dps: int
    start_angle_cdeg: int
    end_angle_cdeg: int
    timestamp_ms: int
    distances_mm: tuple[int, ...]
    intensities: tuple[int, ...]

    @property
    def step_cdeg(self) -> float:
        """Angular step between consecutive points (0.01 degree units)."""
        span = (self.end_angle_cdeg - self.start_angle_cdeg) % 36000
        return span / (POINTS_PER_FRAME - 1)

    def angles_deg(self) -> list[float]:
        start = self.start_angle_cdeg
        step = self.step_cdeg
        return [((start + step * i) % 36000) / 100.0 for i in range(POINTS_PER_FRAME)]


def encode_frame(frame: Ld06Frame) -> bytes:
    """The 47 bytes the scanner would send for ``frame`` (used by the simulator and tests)."""
    if len(frame.distances_mm) != POINTS_PER_FRAME or len(frame.intensities) != POINTS_PER_FRAME:
        raise ValueError(f"an LD06 frame carries exactly {POINTS_PER_FRAME} points")
    points: list[int] = []
    for dist, inten in zip(frame.distances_mm, frame.intensities, strict=True):
        points.extend((dist, inten))
    body = _FRAME.pack(HEADER, VER_LEN, frame.speed_dps, frame.start_angle_cdeg, *points,
                       frame.end_angle_cdeg, frame.timestamp_ms, 0)
    return body[:-1] + bytes((crc8(body[:-1]),))


def decode_frame(data: bytes | bytearray | memoryview) -> Ld06Frame:
    """Decode one complete, CRC-checked frame (raises :class:`ValueError` otherwise)."""
    if len(data) != FRAME_LEN:
        raise ValueError(f"an LD06 frame is {FRAME_LEN} bytes, got {len(data)}")
    fields = _FRAME.unpack(data)
    if fields[0] != HEADER or fields[1] != VER_LEN:
        raise ValueError("not an LD06 frame header (0x54 0x2C)")
    if crc8(memoryview(data)[:-1]) != fields[-1]:
        raise ValueError("LD06 frame CRC mismatch")
    return _frame_from_fields(fields)


def _frame_from_fields(fields: tuple[int, ...]) -> Ld06Frame:
    pts = fields[4 : 4 + 2 * POINTS_PER_FRAME]
    return Ld06Frame(
        speed_dps=fields[2], start_angle_cdeg=fields[3],
        end_angle_cdeg=fields[-3], timestamp_ms=fields[-2],
        distances_mm=pts[0::2], intensities=pts[1::2],
    )


@dataclass
class Ld06Stats:
    """Cumulative decoder counters. ``frames_dropped`` is inferred from angle gaps between
    consecutive good frames, so it also covers frames lost to CRC errors or to the port."""

    frames: int = 0
    crc_errors: int = 0
    bad_angles: int = 0
    bytes_skipped: int = 0
    frames_dropped: int = 0


@dataclass
class Ld06Decoder:
    """Incremental decoder: feed any chunking of the byte stream, get the good frames back.

    Resynchronises on the two-byte 0x54 0x2C header; a frame whose CRC fails is discarded and
    the search resumes one byte after its header (a header inside garbage must not swallow the
    real frame that follows).
    """

    max_buffer: int = 64 * FRAME_LEN
    stats: Ld06Stats = field(default_factory=Ld06Stats)
    _buf: bytearray = field(default_factory=bytearray)
    _last: Ld06Frame | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Ld06Frame]:
        buf = self._buf
        buf += data
        frames: list[Ld06Frame] = []
        pos = 0
        n = len(buf)
        unpack = _FRAME.unpack_from
        table = CRC_TABLE
        while True:
            idx = buf.find(_SYNC, pos)
            if idx < 0:
                # Keep a trailing 0x54: it may be the first half of the next header.
                keep = 1 if n and buf[-1] == HEADER else 0
                self.stats.bytes_skipped += max(0, n - pos - keep)
                pos = n - keep
                break
            self.stats.bytes_skipped += idx - pos
            if idx + FRAME_LEN > n:
                pos = idx
                break
            crc = 0
            for byte in buf[idx : idx + FRAME_LEN - 1]:
                crc = table[crc ^ byte]
            fields = unpack(buf, idx)
            if crc != fields[-1]:
                self.stats.crc_errors += 1
                self.stats.bytes_skipped += 1
                pos = idx + 1
                continue
            frame = _frame_from_fields(fields)
            if frame.start_angle_cdeg >= 36000 or frame.end_angle_cdeg >= 36000:
                self.stats.bad_angles += 1
                self.stats.bytes_skipped += 1
                pos = idx + 1
                continue
            self._count_gap(frame)
            frames.append(frame)
            pos = idx + FRAME_LEN
        del buf[:pos]
        if len(buf) > self.max_buffer:  # unreachable with sane input; bound it regardless
            self.stats.bytes_skipped += len(buf) - FRAME_LEN
            del buf[: len(buf) - FRAME_LEN]
        self.stats.frames += len(frames)
        return frames

    def reset(self) -> None:
        """Forget partial data (after the port was reopened); counters are kept."""
        self.stats.bytes_skipped += len(self._buf)
        self._buf.clear()
        self._last = None

    def _count_gap(self, frame: Ld06Frame) -> None:
        last = self._last
        self._last = frame
        if last is None or last.speed_dps <= 0:
            return
        # The frame period follows from the angular span and the rotation speed; the
        # millisecond timestamp then says how many periods passed (up to its 30 s wrap).
        step = last.step_cdeg
        span_deg = ((last.end_angle_cdeg - last.start_angle_cdeg) % 36000 + step) / 100.0
        period_ms = span_deg / last.speed_dps * 1000.0
        if period_ms <= 0:
            return
        dt_ms = (frame.timestamp_ms - last.timestamp_ms) % TIMESTAMP_WRAP_MS
        missing = round(dt_ms / period_ms) - 1
        if missing > 0:
            self.stats.frames_dropped += missing
