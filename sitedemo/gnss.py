"""A simulated GNSS receiver for the demo's officers: NMEA 0183 on a pseudo-terminal.

Each demo officer's glasses agent reads its position the way a real box does, from a serial
GNSS receiver (``position: {source: gnss, port: ...}``); here the "receiver" is the master side
of a pty that walks the officer's beat (edge/sim.py's ``walk``) and writes ``$GPRMC`` and
``$GPGGA`` sentences once a second. Positions therefore keep coming from the glasses device
itself, with the heading from the course over ground.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import tty
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from edge.sim import RoutePoint, walk

log = logging.getLogger(__name__)
KNOTS_PER_MPS = 1.943844


def _checksum(body: str) -> str:
    value = 0
    for ch in body.encode("ascii"):
        value ^= ch
    return f"{value:02X}"


def _sentence(body: str) -> bytes:
    return f"${body}*{_checksum(body)}\r\n".encode("ascii")


def _angle(value: float, degree_digits: int) -> str:
    degrees = int(abs(value))
    minutes = (abs(value) - degrees) * 60
    return f"{degrees:0{degree_digits}d}{minutes:07.4f}"


def nmea_fix(lon: float, lat: float, course_deg: float, speed_mps: float, when: datetime
             ) -> list[bytes]:
    """An RMC (position, speed, course, date) and a GGA (fix quality, satellites, HDOP)."""
    hms = when.strftime("%H%M%S") + f".{when.microsecond // 10_000:02d}"
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    lat_s, lon_s = _angle(lat, 2), _angle(lon, 3)
    rmc = (f"GPRMC,{hms},A,{lat_s},{ns},{lon_s},{ew},{speed_mps * KNOTS_PER_MPS:.2f},"
           f"{course_deg % 360:.1f},{when.strftime('%d%m%y')},,,A")
    gga = f"GPGGA,{hms},{lat_s},{ns},{lon_s},{ew},1,09,0.9,12.0,M,-2.0,M,,"
    return [_sentence(rmc), _sentence(gga)]


class SimulatedGnss:
    """Walks ``route`` at ``speed_mps`` and writes a fix every ``interval_s`` to a pty whose
    other end (``port``) the glasses agent opens as its GNSS serial port."""

    def __init__(self, route: Sequence[RoutePoint], *, speed_mps: float = 1.4,
                 interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.route = list(route)
        self.speed_mps = speed_mps
        self.interval_s = interval_s
        self._clock = clock
        self._master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes as a UART would deliver them
        os.set_blocking(self._master, False)  # a full pty (nobody reading) never blocks
        self.port = os.ttyname(slave)
        self._slave = slave  # held open so the pty survives until the agent opens it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sentences = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"gnss-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                log.debug("pty fd %d already closed", fd)

    def _run(self) -> None:
        started = self._clock()
        while not self._stop.is_set():
            lon, lat, heading = walk(self.route, (self._clock() - started) * self.speed_mps)
            try:
                for line in nmea_fix(lon, lat, heading, self.speed_mps, datetime.now(UTC)):
                    os.write(self._master, line)
                    self.sentences += 1
            except OSError as err:  # nobody reads yet and the pty buffer is full: try later
                log.debug("gnss pty write failed: %s", err)
            self._stop.wait(self.interval_s)
