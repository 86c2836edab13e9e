"""RPLIDAR A-series standard scan: requests, descriptors, nodes, resynchronisation."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridges.lidar import rplidar
from bridges.lidar.drivers import MODELS, RplidarDriver, driver_for


def nodes(n: int, first: int = 0, step_q6: int = 64) -> list[rplidar.ScanNode]:
    out = []
    for k in range(first, first + n):
        q6 = (k * step_q6) % (360 * 64)
        out.append(rplidar.ScanNode(q6 < step_q6, (k * 5) % 64, q6, (k * 37) % 65536))
    return out


def stream(ns: list[rplidar.ScanNode]) -> bytes:
    return rplidar.encode_descriptor(rplidar.DataType.SCAN) + b"".join(
        rplidar.encode_node(n) for n in ns)


def test_documented_byte_sequences() -> None:
    assert rplidar.encode_request(rplidar.Command.SCAN) == b"\xa5\x20"
    assert rplidar.encode_request(rplidar.Command.STOP) == b"\xa5\x25"
    assert rplidar.encode_descriptor(rplidar.DataType.SCAN) == bytes.fromhex("a55a0500004081")
    assert rplidar.encode_descriptor(rplidar.DataType.HEALTH) == bytes.fromhex("a55a0300000006")
    # A bit-7 request carries its payload size and an XOR checksum.
    pwm = rplidar.encode_request(rplidar.Command.SET_MOTOR_PWM, b"\x58\x02")
    assert pwm == bytes([0xA5, 0xF0, 2, 0x58, 0x02, 0xA5 ^ 0xF0 ^ 2 ^ 0x58 ^ 0x02])
    with pytest.raises(ValueError, match="no payload"):
        rplidar.encode_request(rplidar.Command.SCAN, b"\x01")


def test_node_bit_layout() -> None:
    node = rplidar.ScanNode(True, 47, 90 * 64, 4000)
    data = rplidar.encode_node(node)
    assert data[0] == (47 << 2) | 0b01
    assert data[1] & 1 == 1
    assert ((data[1] >> 1) | (data[2] << 7)) == 90 * 64
    assert int.from_bytes(data[3:5], "little") == 4000
    assert node.angle_deg == 90.0
    assert node.distance_mm == 1000.0
    with pytest.raises(ValueError, match="6 bits"):
        rplidar.encode_node(rplidar.ScanNode(False, 64, 0, 0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=40))
def test_round_trip_under_any_chunking(cuts: list[int]) -> None:
    sent = nodes(720)
    data = stream(sent)
    dec = rplidar.RplidarDecoder()
    out: list[rplidar.Response] = []
    pos = 0
    for cut in cuts * 40:
        out += dec.feed(data[pos : pos + cut])
        pos += cut
    out += dec.feed(data[pos:])
    assert out == sent
    assert dec.stats.revolutions == 2
    assert dec.stats.bad_nodes == 0
    assert dec.stats.samples_dropped == 0


def test_health_and_info_responses() -> None:
    dec = rplidar.RplidarDecoder()
    data = (rplidar.encode_health(rplidar.Health(1, 0x1234))
            + rplidar.encode_info(rplidar.DeviceInfo(0x18, (1, 29), 7, "ab" * 16)))
    assert dec.feed(data) == [rplidar.Health(1, 0x1234),
                              rplidar.DeviceInfo(0x18, (1, 29), 7, "ab" * 16)]


def test_resync_after_corruption_and_garbage() -> None:
    rng = random.Random(3)
    sent = nodes(2000, step_q6=58)
    data = bytearray(rplidar.encode_descriptor(rplidar.DataType.SCAN))
    damaged = set(rng.sample(range(10, 1990), 30))
    for i, n in enumerate(sent):
        raw = bytearray(rplidar.encode_node(n))
        if i in damaged:
            raw[0] ^= 0x01  # S == !S: fails the check
        data += raw
    dec = rplidar.RplidarDecoder()
    out = [n for n in dec.feed(bytes(data)) if isinstance(n, rplidar.ScanNode)]
    assert dec.stats.bad_nodes > 0
    kept = {(n.angle_q6, n.distance_q2) for n in out}
    # Nearly everything undamaged survives, and nothing is invented out of misaligned bytes.
    originals = {(n.angle_q6, n.distance_q2) for n in sent}
    assert kept <= originals
    assert len(out) >= len(sent) - 30 - 30
    assert dec.stats.samples_dropped == len(sent) - len(out)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    dec = rplidar.RplidarDecoder()
    dec.feed(rplidar.encode_descriptor(rplidar.DataType.SCAN))
    for i in range(0, len(data), 13):
        dec.feed(data[i : i + 13])
    assert len(dec._buf) < 64


def test_bogus_descriptor_in_garbage_does_not_stall() -> None:
    dec = rplidar.RplidarDecoder()
    junk = bytes.fromhex("a55affffff7f99")  # A5 5A with an absurd length
    out = dec.feed(junk + stream(nodes(10)))
    assert [n for n in out if isinstance(n, rplidar.ScanNode)] == nodes(10)


def test_request_parser_handles_fragments_and_checksums() -> None:
    parser = rplidar.RequestParser()
    data = (b"\x00" + rplidar.encode_request(rplidar.Command.STOP)
            + rplidar.encode_request(rplidar.Command.SET_MOTOR_PWM, b"\x07"))
    got = []
    for b in data:
        got += parser.feed(bytes([b]))
    assert got == [(rplidar.Command.STOP, b""), (rplidar.Command.SET_MOTOR_PWM, b"\x07")]
    assert parser.bad_bytes == 1
    bad = bytearray(rplidar.encode_request(rplidar.Command.SET_MOTOR_PWM, b"\x07"))
    bad[-1] ^= 1
    assert parser.feed(bytes(bad)) == []


def test_driver_registry_and_start_sequence() -> None:
    assert set(MODELS) == {"ld06", "ld19", "rplidar_a1", "rplidar_a2"}
    drv = driver_for("rplidar_a1")
    assert isinstance(drv, RplidarDriver)
    assert drv.start_bytes().endswith(b"\xa5\x20")
    block = drv.decode(rplidar.encode_health(rplidar.Health(0, 0)) + stream(nodes(400)))
    assert drv.health == rplidar.Health(0, 0)
    assert len(block) == 400
    assert block.starts == [0, 360]
    with pytest.raises(ValueError, match="unknown scanner model"):
        driver_for("nope")
