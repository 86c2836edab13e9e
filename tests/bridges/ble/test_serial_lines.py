"""The serial bridge line codec: exhaustive bad lines and hypothesis chunking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridges.ble.serial_lines import (
    MAX_LINE,
    BridgeAdvert,
    BridgeHeartbeat,
    BridgeLineError,
    LineDecoder,
    format_frame,
    parse_line,
)

macs = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
    lambda b: ":".join(f"{x:02X}" for x in b))
frames = st.one_of(
    st.builds(BridgeAdvert, macs, st.integers(-127, 20), st.binary(max_size=255)),
    st.builds(BridgeHeartbeat, st.integers(0, 2**40), st.integers(0, 2**32)),
)


@given(st.lists(frames, max_size=10), st.data())
def test_round_trip_through_any_chunking(items: list[BridgeAdvert | BridgeHeartbeat],
                                         data: st.DataObject) -> None:
    stream = b"".join(format_frame(f) for f in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    decoder = LineDecoder()
    out: list[object] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out += decoder.feed(stream[start:cut])
        start = cut
    assert out == items


@given(st.binary(max_size=300))
def test_garbage_never_raises(raw: bytes) -> None:
    for item in LineDecoder().feed(raw + b"\n"):
        assert isinstance(item, BridgeAdvert | BridgeHeartbeat | BridgeLineError)


def _sign(body: bytes) -> bytes:
    check = 0
    for b in body:
        check ^= b
    return b"$" + body + b"*" + f"{check:02X}".encode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "bad_frame"),
        (b"ADV,1*00", "bad_frame"),
        (b"$ADV,AA:BB:CC:DD:EE:FF,-60,02*00", "bad_checksum"),
        (b"$ADV*G1", "bad_frame"),
        (b"$\xff\xfe*00", "bad_frame"),
        (_sign(b"ADV,AA:BB:CC:DD:EE,-60,02"), "bad_field"),
        (_sign(b"ADV,AA:BB:CC:DD:EE:FF,-200,02"), "bad_field"),
        (_sign(b"ADV,AA:BB:CC:DD:EE:FF,x,02"), "bad_field"),
        (_sign(b"ADV,AA:BB:CC:DD:EE:FF,-60,0"), "bad_field"),
        (_sign(b"ADV,AA:BB:CC:DD:EE:FF,-60,ZZ"), "bad_field"),
        (_sign(b"ADV,AA:BB:CC:DD:EE:FF,-60,02,extra"), "unknown_line"),
        (_sign(b"HB,-1,0"), "bad_field"),
        (_sign(b"XYZ,1"), "unknown_line"),
        (b"$" + b"A" * MAX_LINE + b"*00", "too_long"),
    ],
)
def test_bad_lines(line: bytes, reason: str) -> None:
    with pytest.raises(BridgeLineError) as info:
        parse_line(line)
    assert info.value.reason == reason


def test_crlf_blank_lines_and_overlong_lines() -> None:
    good = format_frame(BridgeHeartbeat(5, 0))
    decoder = LineDecoder()
    out = decoder.feed(b"\r\n\n" + good.replace(b"\n", b"\r\n"))
    assert out == [BridgeHeartbeat(5, 0)]
    out = decoder.feed(b"x" * (MAX_LINE + 10))
    assert [type(o) for o in out] == [BridgeLineError]
    out = decoder.feed(b"y" * 50 + b"\n" + good)  # rest of the long line is skipped
    assert out == [BridgeHeartbeat(5, 0)]


def test_known_line() -> None:
    line = format_frame(BridgeAdvert("aa:bb:cc:dd:ee:ff", -61, b"\x02\x01\x06"))
    assert line.startswith(b"$ADV,AA:BB:CC:DD:EE:FF,-61,020106*")
    assert parse_line(line.rstrip(b"\n")) == BridgeAdvert("AA:BB:CC:DD:EE:FF", -61,
                                                          b"\x02\x01\x06")
