"""The demo officers' simulated GNSS receiver writes NMEA 0183 that a real parser accepts, with
the position, course and speed of the walk, on a pty a serial port can open."""

from __future__ import annotations

from datetime import UTC, datetime

import pynmea2
import pytest
import serial

from edge.sim import RoutePoint
from sitedemo.gnss import SimulatedGnss, nmea_fix


@pytest.mark.parametrize(("lon", "lat"), [(114.0579, 22.5431), (-70.6693, -33.4489)])
def test_fix_sentences_parse_back_to_the_position(lon: float, lat: float) -> None:
    when = datetime(2026, 12, 1, 18, 5, 9, 420_000, tzinfo=UTC)
    rmc, gga = (pynmea2.parse(s.decode("ascii").strip(), check=True)
                for s in nmea_fix(lon, lat, 273.4, 1.4, when))
    assert isinstance(rmc, pynmea2.RMC) and isinstance(gga, pynmea2.GGA)
    for msg in (rmc, gga):
        assert msg.latitude == pytest.approx(lat, abs=1e-6)
        assert msg.longitude == pytest.approx(lon, abs=1e-6)
    assert rmc.status == "A"
    assert float(rmc.true_course) == pytest.approx(273.4)
    assert float(rmc.spd_over_grnd) == pytest.approx(1.4 * 1.943844, abs=0.01)
    assert rmc.datetime == when.replace(microsecond=420_000)
    assert int(gga.gps_qual) == 1


def test_the_walker_streams_fixes_on_its_pty() -> None:
    t = [0.0]
    route = [RoutePoint(lon=114.0, lat=22.5), RoutePoint(lon=114.001, lat=22.5)]
    gnss = SimulatedGnss(route, speed_mps=10.0, interval_s=0.01, clock=lambda: t[0])
    gnss.start()
    port = serial.Serial(gnss.port, 9600, timeout=2)
    try:
        lines = [port.readline().decode("ascii").strip() for _ in range(4)]
    finally:
        port.close()
        gnss.stop()
    parsed = [pynmea2.parse(line, check=True) for line in lines if line]
    rmcs = [m for m in parsed if isinstance(m, pynmea2.RMC)]
    assert rmcs, lines
    # The clock stands still at the start of the beat, heading east along its first leg.
    assert rmcs[0].longitude == pytest.approx(114.0, abs=1e-6)
    assert float(rmcs[0].true_course) == pytest.approx(90.0, abs=0.5)
