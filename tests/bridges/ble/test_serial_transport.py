"""The serial bridge transport through a real pseudo-terminal pair in raw mode."""

from __future__ import annotations

import os
import queue
import tty
from collections.abc import Iterator

import pytest

from bridges.ble.adstruct import AdItem, build_ad, manufacturer_item
from bridges.ble.advert import BandAdvert, encode_advert
from bridges.ble.serial_lines import BridgeAdvert, BridgeHeartbeat, format_frame
from bridges.ble.serial_transport import SerialBridgeError, SerialBridgeSource
from bridges.ble.sources import HeardAdvert
from tests.support.waiting import wait_until

KEY = bytes(16)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        os.close(slave)
        os.close(master)


def test_adverts_arrive_in_chunks_and_bad_lines_are_counted(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    frame = encode_advert(BandAdvert(0x1001, 5, 80, sos=True), KEY)
    ad = build_ad([AdItem(0x01, b"\x06"), manufacturer_item(0xFFFF, frame)])
    stream = (
        format_frame(BridgeHeartbeat(1234, 2))
        + b"$ADV,AA:BB:CC:DD:EE:FF,-60,0201*00\n"  # bad checksum
        + format_frame(BridgeAdvert("AA:BB:CC:DD:EE:01", -61, ad))
        + format_frame(BridgeAdvert("AA:BB:CC:DD:EE:02", -70, b"\x05\xff\x01"))  # truncated AD
        + format_frame(BridgeAdvert("AA:BB:CC:DD:EE:03", -72, ad))
    )
    got: queue.Queue[HeardAdvert] = queue.Queue()
    source = SerialBridgeSource("bridge-1", path, baudrate=115_200, read_timeout_s=0.05)
    source.start(got.put)
    try:
        for i in range(0, len(stream), 7):  # a UART delivers arbitrary chunks
            os.write(master, stream[i : i + 7])
        first, second = got.get(timeout=5), got.get(timeout=5)
        assert (first.receiver, first.address, first.rssi_dbm) == ("bridge-1",
                                                                   "AA:BB:CC:DD:EE:01", -61)
        assert first.manufacturer_data == {0xFFFF: frame}
        assert second.address == "AA:BB:CC:DD:EE:03"
        wait_until(lambda: source.errors["bad_checksum"] == 1 and
                   source.errors["ad_truncated"] == 1, timeout_s=5, message="errors counted")
        assert source.last_heartbeat == BridgeHeartbeat(1234, 2)
        assert source.adverts == 2
    finally:
        source.stop()


def test_missing_port_is_a_clear_error(tmp_path: object) -> None:
    source = SerialBridgeSource("bridge-x", "/dev/does-not-exist-gridward")
    with pytest.raises(SerialBridgeError, match="bridge-x"):
        source.start(lambda heard: None)
