"""bleak's real BlueZ backend against python-dbusmock's ``bluez5`` template.

The test starts its own dbus-daemon (a private bus standing in for the system bus) and the
dbusmock BlueZ server, points ``DBUS_SYSTEM_BUS_ADDRESS`` at it, and tears both down. Two mock
quirks are handled here: ``AddDevice`` creates ManufacturerData/ServiceData as *lists* (bleak
expects dicts), so the band object is added with dict properties through the generic
``AddObject`` and announced with ``InterfacesAdded`` (AddObject does not emit it); and bleak
reports a device only when its properties change during the scan, so each advert is a
``PropertiesChanged`` (``UpdateProperties``).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

dbus = pytest.importorskip("dbus", reason="dbus-python is a test dependency (libdbus-1-dev)")
pytest.importorskip("dbusmock", reason="python-dbusmock is a test dependency")

from bridges.ble.advert import BandAdvert, decode_advert, encode_advert  # noqa: E402
from bridges.ble.bleak_transport import BleakAdvertSource, ScannerError  # noqa: E402
from bridges.ble.sources import HeardAdvert  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

KEY = bytes(range(16))
DEVICE_IFACE = "org.bluez.Device1"
BAND_ADDR = "C0:FF:EE:00:10:01"


class BluezMock:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""
        self.bus: Any = None

    def start(self) -> None:
        daemon = shutil.which("dbus-daemon")
        if daemon is None:
            pytest.fail("dbus-daemon missing: apt-get install dbus")
        sock = self.directory / "system_bus_socket"
        proc = subprocess.Popen(
            [daemon, "--session", "--nofork", "--print-address=1",
             f"--address=unix:path={sock}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        assert proc.stdout is not None
        self.address = proc.stdout.readline().decode().strip()
        assert self.address.startswith("unix:")
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "dbusmock", "--system", "--template", "bluez5"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.bus = dbus.bus.BusConnection(self.address)
        wait_until(lambda: self.bus.name_has_owner("org.bluez"), timeout_s=20,
                   message="dbusmock bluez5 on the private bus")
        self.mock = dbus.Interface(self.bus.get_object("org.bluez", "/"), "org.bluez.Mock")
        self.generic = dbus.Interface(self.bus.get_object("org.bluez", "/"),
                                      "org.freedesktop.DBus.Mock")

    def stop(self) -> None:
        if self.bus is not None:
            self.bus.close()
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    @staticmethod
    def _mfr(frame: bytes) -> Any:
        return dbus.Dictionary({dbus.UInt16(0xFFFF): dbus.Array(frame, signature="y")},
                               signature="qv")

    def add_band(self, adapter: str, address: str, frame: bytes, rssi: int) -> str:
        path = f"/org/bluez/{adapter}/dev_{address.replace(':', '_')}"
        props = {
            "Address": dbus.String(address), "AddressType": dbus.String("random"),
            "Alias": dbus.String(address), "Adapter": dbus.ObjectPath(f"/org/bluez/{adapter}"),
            "Paired": dbus.Boolean(False), "Connected": dbus.Boolean(False),
            "Trusted": dbus.Boolean(False), "Blocked": dbus.Boolean(False),
            "LegacyPairing": dbus.Boolean(False), "ServicesResolved": dbus.Boolean(False),
            "UUIDs": dbus.Array([], signature="s"),
            "RSSI": dbus.Int16(rssi),
            "ManufacturerData": self._mfr(frame),
            "ServiceData": dbus.Dictionary({}, signature="sv"),
        }
        self.generic.AddObject(path, DEVICE_IFACE, props, [])
        # The generic AddObject does not announce the object; BlueZ would, and bleak needs it.
        self.generic.EmitSignal("org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
                                "oa{sa{sv}}", dbus.Array([
                                    dbus.ObjectPath(path),
                                    dbus.Dictionary({DEVICE_IFACE: dbus.Dictionary(
                                        props, signature="sv")}, signature="sa{sv}"),
                                ], signature="v"))
        return path

    def advertise(self, path: str, frame: bytes, rssi: int) -> None:
        obj = dbus.Interface(self.bus.get_object("org.bluez", path), "org.freedesktop.DBus.Mock")
        obj.UpdateProperties(DEVICE_IFACE, {"RSSI": dbus.Int16(rssi),
                                            "ManufacturerData": self._mfr(frame)})


@pytest.fixture
def bluez(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BluezMock]:
    mock = BluezMock(tmp_path)
    try:
        mock.start()
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", mock.address)
        yield mock
    finally:
        mock.stop()


def test_bleak_scanner_hears_authenticated_adverts(bluez: BluezMock) -> None:
    bluez.mock.AddAdapter("hci0", "gridward-gw")
    got: queue.Queue[HeardAdvert] = queue.Queue()
    source = BleakAdvertSource("gw-radio", adapter="hci0", scanning_mode="active")
    source.start(got.put)
    try:
        frames = [encode_advert(BandAdvert(0x1001, n, 77, sos=(n == 3)), KEY) for n in (1, 2, 3)]
        path = bluez.add_band("hci0", BAND_ADDR, frames[0], -60)
        for n, frame in enumerate(frames[1:], start=2):
            bluez.advertise(path, frame, -60 - n)
        heard: list[HeardAdvert] = []

        def all_counters() -> bool:
            while not got.empty():
                heard.append(got.get())
            return {decode_advert(h.manufacturer_data[0xFFFF]).advert.counter
                    for h in heard if 0xFFFF in h.manufacturer_data} >= {1, 2, 3}

        wait_until(all_counters, timeout_s=15, message="three adverts through bleak")
        last = next(h for h in reversed(heard)
                    if decode_advert(h.manufacturer_data[0xFFFF]).advert.counter == 3)
        assert last.receiver == "gw-radio"
        assert last.address == BAND_ADDR
        assert last.rssi_dbm == -63
        signed = decode_advert(last.manufacturer_data[0xFFFF])
        assert signed.verify(KEY)
        assert signed.advert.sos
    finally:
        source.stop()


def test_missing_adapter_is_a_clear_error(bluez: BluezMock) -> None:
    source = BleakAdvertSource("gw-radio", adapter="hci7")
    with pytest.raises(ScannerError, match="hci7"):
        source.start(lambda heard: None)
