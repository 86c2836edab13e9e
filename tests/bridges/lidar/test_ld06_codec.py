"""LD06/LD19 frame codec: the documented CRC table, round trips, resynchronisation on garbage,
CRC and drop counting, under any chunking of the byte stream."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridges.lidar import ld06

# First 32 entries of CrcTable[] in the LD06/LD19 development manual.
DOCUMENTED_TABLE_HEAD = bytes([
    0x00, 0x4D, 0x9A, 0xD7, 0x79, 0x34, 0xE3, 0xAE, 0xF2, 0xBF, 0x68, 0x25, 0x8B, 0xC6, 0x11,
    0x5C, 0xA9, 0xE4, 0x33, 0x7E, 0xD0, 0x9D, 0x4A, 0x07, 0x5B, 0x16, 0xC1, 0x8C, 0x22, 0x6F,
    0xB8, 0xF5,
])


def frame(i: int, *, speed: int = 3600, per_frame_cdeg: int = 960) -> ld06.Ld06Frame:
    start = (i * per_frame_cdeg) % 36000
    return ld06.Ld06Frame(
        speed_dps=speed, start_angle_cdeg=start,
        end_angle_cdeg=(start + 880) % 36000,
        timestamp_ms=round(i * 1000 * per_frame_cdeg / 100 / speed) % 30000,
        distances_mm=tuple((i * 7 + k * 131) % 12000 for k in range(12)),
        intensities=tuple((i + k * 17) % 256 for k in range(12)),
    )


def test_crc_table_matches_the_manual() -> None:
    assert ld06.CRC_TABLE[:32] == DOCUMENTED_TABLE_HEAD


def test_frame_layout() -> None:
    data = ld06.encode_frame(frame(3))
    assert len(data) == ld06.FRAME_LEN == 47
    assert data[:2] == b"\x54\x2c"
    assert ld06.crc8(data[:-1]) == data[-1]
    assert int.from_bytes(data[2:4], "little") == 3600


def test_angles_interpolate_and_wrap() -> None:
    f = ld06.Ld06Frame(3600, 35600, 480, 0, (1,) * 12, (0,) * 12)
    angles = f.angles_deg()
    assert angles[0] == pytest.approx(356.0)
    assert angles[-1] == pytest.approx(4.8)
    assert f.step_cdeg == pytest.approx(80.0)


def test_every_single_byte_flip_is_rejected_or_reframed() -> None:
    good = ld06.encode_frame(frame(1))
    for pos in range(ld06.FRAME_LEN):
        for bit in range(8):
            bad = bytearray(good)
            bad[pos] ^= 1 << bit
            dec = ld06.Ld06Decoder()
            assert dec.feed(bytes(bad)) == [], (pos, bit)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10_000),
       st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=50))
def test_round_trip_under_any_chunking(seed: int, cuts: list[int]) -> None:
    frames = [frame(seed + i) for i in range(20)]
    stream = b"".join(ld06.encode_frame(f) for f in frames)
    dec = ld06.Ld06Decoder()
    out: list[ld06.Ld06Frame] = []
    pos = 0
    for cut in cuts * 10:
        out += dec.feed(stream[pos : pos + cut])
        pos += cut
    out += dec.feed(stream[pos:])
    assert out == frames
    assert dec.stats.crc_errors == 0
    assert dec.stats.frames_dropped == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=120), min_size=21, max_size=21))
def test_garbage_between_frames_is_skipped(junk: list[bytes]) -> None:
    frames = [frame(i) for i in range(20)]
    stream = b"".join(j + ld06.encode_frame(f) for j, f in zip(junk, frames, strict=False))
    stream += junk[-1]
    dec = ld06.Ld06Decoder()
    assert dec.feed(stream) == frames


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=3000))
def test_random_bytes_never_raise_and_buffer_stays_bounded(data: bytes) -> None:
    dec = ld06.Ld06Decoder()
    for i in range(0, len(data), 97):
        dec.feed(data[i : i + 97])
    assert len(dec._buf) <= dec.max_buffer


def test_corrupted_frames_are_counted_and_inferred_as_dropped() -> None:
    rng = random.Random(5)
    frames = [frame(i) for i in range(500)]
    corrupted = set(rng.sample(range(1, 499), 40))
    stream = bytearray()
    for i, f in enumerate(frames):
        data = bytearray(ld06.encode_frame(f))
        if i in corrupted:
            data[rng.randrange(2, 47)] ^= 0x5A  # keep the header: a pure CRC failure
        stream += data
    dec = ld06.Ld06Decoder()
    out = dec.feed(bytes(stream))
    assert len(out) == 500 - 40
    assert dec.stats.crc_errors == 40
    assert dec.stats.frames_dropped == 40


def test_missing_frames_are_counted_from_timestamps() -> None:
    frames = [frame(i) for i in range(100)]
    kept = [f for i, f in enumerate(frames) if not 30 <= i < 55]
    dec = ld06.Ld06Decoder()
    dec.feed(b"".join(ld06.encode_frame(f) for f in kept))
    assert dec.stats.frames_dropped == 25
    assert dec.stats.crc_errors == 0


def test_reset_forgets_partial_frame_and_last_timestamp() -> None:
    dec = ld06.Ld06Decoder()
    data = ld06.encode_frame(frame(0))
    dec.feed(data[:20])
    dec.reset()
    assert dec.feed(ld06.encode_frame(frame(900))) == [frame(900)]
    assert dec.stats.frames_dropped == 0


def test_decode_frame_errors() -> None:
    good = ld06.encode_frame(frame(2))
    assert ld06.decode_frame(good) == frame(2)
    with pytest.raises(ValueError, match="47 bytes"):
        ld06.decode_frame(good[:-1])
    with pytest.raises(ValueError, match="CRC"):
        ld06.decode_frame(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ValueError, match="header"):
        ld06.decode_frame(b"\x55" + good[1:])
    with pytest.raises(ValueError, match="exactly 12"):
        ld06.encode_frame(ld06.Ld06Frame(0, 0, 0, 0, (1,), (1,)))
