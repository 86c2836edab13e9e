"""The bumble route: a simulated band advertising and serving GATT on bumble's in-process
virtual link, heard by the bumble scanner and driven by the gateway's GATT client."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from bridges.ble.advert import BandAdvert, decode_advert, encode_advert
from bridges.ble.auth import AdvertVerifier, Verdict
from bridges.ble.bumble_transport import (
    BumbleAdvertSource,
    BumbleError,
    BumbleScanner,
    band_session,
)
from bridges.ble.key_rotation import Rotation
from bridges.ble.sources import HeardAdvert
from edge.wristband.virtual_band import VirtualBand
from tests.support.waiting import wait_until

BAND = 0x0000_1001
T = TypeVar("T")


def _device(link: LocalLink, name: str, address: str) -> Device:
    controller = Controller(name, link=link, public_address=address)
    return Device(address=Address(address), host=Host(controller, AsyncPipeSink(controller)))


async def _world() -> tuple[VirtualBand, Device]:
    """A band and a gateway controller on one virtual link; both powered on."""
    link = LocalLink()  # type: ignore[no-untyped-call]  # bumble leaves __init__ unannotated
    band_dev = _device(link, "band", "F1:F1:F1:F1:F1:F1")
    gw_dev = _device(link, "gateway", "F2:F2:F2:F2:F2:F2")
    await band_dev.power_on()
    await gw_dev.power_on()
    band = VirtualBand(band_dev, BAND, os.urandom(16), battery_pct=73)
    await band.start(advertising_interval_ms=20)
    return band, gw_dev


async def _until(cond: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _run(coro: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(coro(), 30))


def _verdicts(heard: list[HeardAdvert], verifier: AdvertVerifier) -> list[tuple[int, Verdict]]:
    out = []
    for h in heard:
        signed = decode_advert(h.manufacturer_data[0xFFFF])
        out.append((signed.advert.counter, verifier.check(signed, 0.0)))
    return out


def test_scanner_hears_authentic_adverts_and_reads_battery() -> None:
    async def scenario() -> None:
        band, gw = await _world()
        heard: list[HeardAdvert] = []
        scanner = BumbleScanner("rx-bumble", gw)
        await scanner.start(heard.append)
        await _until(lambda: len(heard) >= 1, "first advert")
        for _ in range(3):
            await band.advertise_next()
            want = band.counter
            await _until(lambda n=want: any(  # type: ignore[misc]
                decode_advert(h.manufacturer_data[0xFFFF]).advert.counter == n for h in heard),
                f"advert {want}")
        await scanner.stop()
        verifier = AdvertVerifier({BAND: (band.key,)})
        firsts: dict[int, Verdict] = {}
        for counter, verdict in _verdicts(heard, verifier):
            firsts.setdefault(counter, verdict)
        assert set(firsts) >= {1, 2, 3, 4}
        assert all(v is Verdict.ACCEPTED for v in firsts.values())
        assert heard[0].receiver == "rx-bumble"
        assert heard[0].address  # the band's random address, as bumble reports it
        assert scanner.detections == len(heard)

        async with band_session(gw, band.device.random_address) as session:
            assert await session.battery_pct() == 73
            band.battery_pct = 12
            assert await session.battery_pct() == 12
            epoch, proof = (await session.key_state())[:4], (await session.key_state())[4:]
            assert int.from_bytes(epoch, "big") == 0 and proof == bytes(16)

    _run(scenario)


def test_key_rotation_then_only_new_key_adverts_verify() -> None:
    async def scenario() -> None:
        band, gw = await _world()
        old, new = band.key, os.urandom(32)
        rotation = Rotation(BAND, epoch=1, new_key=new)
        async with band_session(gw, band.device.random_address) as session:
            assert await session.rotate_key(rotation, old) is True
        assert band.key == new and band.epoch == 1

        heard: list[HeardAdvert] = []
        scanner = BumbleScanner("rx-bumble", gw)
        await scanner.start(heard.append)
        await band.advertise_next()
        want = band.counter
        await _until(lambda: any(
            decode_advert(h.manufacturer_data[0xFFFF]).advert.counter == want for h in heard),
            "an advert after the rotation")
        await scanner.stop()
        # the gateway drops the old key once the band proved it holds the new one
        verifier = AdvertVerifier({BAND: (new,)})
        mine = [h for h in heard
                if decode_advert(h.manufacturer_data[0xFFFF]).advert.counter == want]
        assert _verdicts(mine[:1], verifier) == [(want, Verdict.ACCEPTED)]
        # a clone still holding the old key, even with a higher counter, is refused
        clone = decode_advert(encode_advert(BandAdvert(BAND, want + 100, 90), old))
        assert verifier.check(clone, 1.0) is Verdict.FORGED

    _run(scenario)


def test_replayed_forged_and_misaddressed_rotations_are_refused() -> None:
    async def scenario() -> None:
        band, gw = await _world()
        k0, k1, k2 = band.key, os.urandom(16), os.urandom(16)
        first = Rotation(BAND, epoch=5, new_key=k1)
        async with band_session(gw, band.device.random_address) as session:
            assert await session.rotate_key(first, k0)
            # the same frame again (captured and replayed): epoch not above 5
            with pytest.raises(BumbleError, match="refused"):
                await session.rotate_key(first, k0)
            # an attacker who knows the frame format but not the key
            with pytest.raises(BumbleError, match="refused"):
                await session.rotate_key(Rotation(BAND, 6, k2), os.urandom(16))
            # a lower epoch under the right key
            with pytest.raises(BumbleError, match="refused"):
                await session.rotate_key(Rotation(BAND, 4, k2), k1)
            # a frame made for another band
            with pytest.raises(BumbleError, match="refused"):
                await session.rotate_key(Rotation(BAND + 1, 6, k2), k1)
            assert band.key == k1 and band.epoch == 5
            # the next genuine rotation chains under the current key
            assert await session.rotate_key(Rotation(BAND, 6, k2), k1)
        assert band.key == k2
        assert dict(band.refused) == {"replayed": 2, "forged": 1, "wrong_band": 1}

    _run(scenario)


def test_bumble_advert_source_feeds_the_pipeline_from_its_own_thread() -> None:
    keys: dict[str, Any] = {}

    async def factory() -> Device:
        band, gw = await _world()
        keys["band"] = band
        keys["gw"] = gw
        return gw

    source = BumbleAdvertSource("rx-bumble", device_factory=factory)
    heard: list[HeardAdvert] = []
    lock = threading.Lock()

    def sink(h: HeardAdvert) -> None:
        with lock:
            heard.append(h)

    source.start(sink)
    try:
        wait_until(lambda: len(heard) >= 2, timeout_s=30, message="adverts through the source")
        band: VirtualBand = keys["band"]

        async def battery() -> int:
            async with band_session(keys["gw"], band.device.random_address) as session:
                return await session.battery_pct()

        assert source.run_coroutine(battery()) == 73
    finally:
        source.stop()
    verifier = AdvertVerifier({BAND: (keys["band"].key,)})
    with lock:
        assert _verdicts(heard[:1], verifier) == [(1, Verdict.ACCEPTED)]
    with pytest.raises(ValueError, match="exactly one"):
        BumbleAdvertSource("rx", hci="usb:0", device_factory=factory)


def test_config_builds_a_bumble_receiver_that_reports_a_missing_controller(
    tmp_path: Path,
) -> None:
    from edge.bus import BusConfig
    from edge.wristband.config import WristbandConfig
    from edge.wristband.service import build_sources

    cfg = WristbandConfig.model_validate({
        "site": "s", "device": "gw", "mqtt": BusConfig(), "data_dir": tmp_path,
        "receivers": [{"id": "rx-1", "lon": 114.0, "lat": 22.5,
                       "transport": {"type": "bumble", "hci": "serial:/dev/no-such-dongle"}}]})
    [source] = build_sources(cfg)
    assert isinstance(source, BumbleAdvertSource)
    with pytest.raises(BumbleError, match="HCI transport"):
        source.start(lambda _h: None)
