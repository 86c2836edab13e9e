"""NMEA 0183 in, a fix out: real sentences, bad checksums and garbage, stale fixes, and the
serial reader on a pseudo-terminal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from edge.glasses.config import GnssPosition
from edge.glasses.gnss import GnssReader, NmeaParser
from edge.validators import utcnow
from tests.edge.glasses.support import PtyReceiver, nmea
from tests.support.waiting import wait_until

GGA = "GPGGA,123519,3954.522,N,11624.000,E,1,08,0.9,45.4,M,-8.9,M,,"
RMC_MOVING = "GPRMC,123519,A,3954.522,N,11624.000,E,003.0,084.4,011226,,,A"
RMC_STILL = "GPRMC,123520,A,3954.522,N,11624.000,E,000.1,301.0,011226,,,A"
RMC_VOID = "GPRMC,123521,V,,,,,,,011226,,,N"
HDT = "GPHDT,274.07,T"
THS = "GNTHS,77.52,A"
VTG = "GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A"


def test_gga_gives_position_and_accuracy() -> None:
    parser, now = NmeaParser(), utcnow()
    parser.feed(nmea(GGA), now)
    pose = parser.pose(now)
    assert pose is not None
    assert pose.lat == pytest.approx(39.9087, abs=1e-4)
    assert pose.lon == pytest.approx(116.4, abs=1e-6)
    assert pose.accuracy_m == pytest.approx(4.5)
    assert pose.heading_deg is None and pose.fix_at == now


def test_course_over_ground_is_the_heading_only_while_moving() -> None:
    parser, now = NmeaParser(min_speed_mps=0.5), utcnow()
    parser.feed(nmea(RMC_MOVING), now)
    pose = parser.pose(now)
    assert pose is not None and pose.heading_deg == pytest.approx(84.4)
    parser.feed(nmea(RMC_STILL), now)  # 0.1 kn: standing still, course is noise
    pose = parser.pose(now)
    assert pose is not None and pose.heading_deg is None
    parser.feed(nmea(VTG), now)  # 10.2 km/h
    pose = parser.pose(now)
    assert pose is not None and pose.heading_deg == pytest.approx(54.7)


def test_true_heading_wins_over_course_and_ths_is_parsed() -> None:
    parser, now = NmeaParser(), utcnow()
    parser.feed(nmea(RMC_MOVING), now)
    parser.feed(nmea(HDT), now)
    pose = parser.pose(now)
    assert pose is not None and pose.heading_deg == pytest.approx(274.07)
    parser.feed(nmea(THS), now)
    pose = parser.pose(now)
    assert pose is not None and pose.heading_deg == pytest.approx(77.52)
    parser.feed(nmea("GNTHS,12.00,V"), now)  # V: invalid, ignored
    pose = parser.pose(now)
    assert pose is not None and pose.heading_deg == pytest.approx(77.52)


def test_fix_goes_stale_and_void_rmc_does_not_refresh_it() -> None:
    parser, t0 = NmeaParser(max_fix_age_s=5), utcnow()
    parser.feed(nmea(GGA), t0)
    later = t0 + timedelta(seconds=6)
    parser.feed(nmea(RMC_VOID), later)
    parser.feed(nmea("GPGGA,123521,,,,,0,00,,,M,,M,,"), later)  # quality 0: no fix
    assert parser.pose(later) is None
    assert parser.fix_state(later) == "stale"
    assert parser.fix_state(t0) == "fix"
    assert NmeaParser().fix_state(t0) == "none"


@pytest.mark.parametrize("line", [
    nmea(GGA, bad_checksum=True),
    nmea(THS, bad_checksum=True),
    b"$GPGGA,123519,3954.522,N,11624.000,E,1,08,0.9,45.4,M,-8.9,M,,\r\n",  # none at all
])
def test_bad_checksums_are_counted_and_change_nothing(line: bytes) -> None:
    parser, now = NmeaParser(), utcnow()
    parser.feed(line, now)
    assert parser.counters["bad_checksum"] == 1
    assert parser.pose(now) is None


@pytest.mark.parametrize("line", [
    b"\xff\xfe\x00garbage\r\n", b"hello\r\n", b"$" + b"A" * 500 + b"\n",
    nmea("GPGGA,123519,39x4.522,N,11624.000,E,1,08,0.9,45.4,M,-8.9,M,,"),
    nmea("GPGGA,123519,9954.522,N,11624.000,E,1,08,0.9,45.4,M,-8.9,M,,"),  # lat 99
    nmea("GPHDT,north,T"),
])
def test_garbage_is_counted_never_raised(line: bytes) -> None:
    parser, now = NmeaParser(), utcnow()
    parser.feed(line, now)
    assert parser.counters["garbage"] + parser.counters["malformed"] == 1
    assert parser.pose(now) is None


def test_reader_on_a_pty_keeps_going_through_noise() -> None:
    receiver = PtyReceiver()
    reader = GnssReader(GnssPosition(port=receiver.port), reopen_s=0.05)
    reader.start()
    try:
        wait_until(lambda: reader.connected, message="port opened")
        receiver.write(b"\x00\xff noise without a newline " * 10)
        receiver.write(b"\r\n" + nmea(GGA, bad_checksum=True) + nmea(GGA) + nmea(HDT))
        wait_until(lambda: reader.parser.counters["sentences"] == 2, message="two sentences")
        pose = reader.pose(utcnow())
        assert pose is not None and pose.heading_deg == pytest.approx(274.07)
        health = reader.health()
        assert health["gnss_fix"] == 2.0 and health["gnss_bad_checksum"] == 1.0
        assert health["gnss_garbage"] >= 1.0
    finally:
        reader.stop()
        receiver.close()


def test_reader_reopens_the_port_after_an_unplug(tmp_path: Path) -> None:
    link = tmp_path / "ttyGNSS"  # a stable name, as udev gives a receiver
    receiver = PtyReceiver()
    link.symlink_to(receiver.port)
    reader = GnssReader(GnssPosition(port=str(link)), reopen_s=0.05)
    reader.start()
    try:
        wait_until(lambda: reader.connected, message="port opened")
        receiver.write(nmea(GGA))
        wait_until(lambda: reader.parser.counters["sentences"] == 1, message="first fix")
        receiver.close()  # unplugged
        link.unlink()
        wait_until(lambda: not reader.connected, message="loss noticed")
        receiver = PtyReceiver()  # plugged back in
        link.symlink_to(receiver.port)
        wait_until(lambda: reader.connected and reader.opened == 2, message="reopened")
        receiver.write(nmea(HDT))
        wait_until(lambda: reader.parser.counters["sentences"] == 2, message="reading again")
        assert reader.health()["gnss_port_errors"] >= 1
    finally:
        reader.stop()
        receiver.close()
