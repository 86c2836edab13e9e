"""The officer's fix from a GNSS receiver speaking NMEA 0183 on a serial port.

:class:`NmeaParser` is sans-IO (lines in, a :class:`~edge.glasses.view.Pose` out) so it is
tested sentence by sentence; :class:`GnssReader` feeds it from pyserial on its own thread and
reopens the port when the receiver is unplugged. Bad checksums and garbage are counted and
skipped: a receiver that babbles never stops the agent.

Heading: a true heading (HDT, THS; a dual-antenna receiver or an IMU) wins while it is fresh;
otherwise course over ground (RMC, VTG), but only while moving faster than ``min_speed_mps``:
standing still, GNSS course is noise.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import InvalidOperation
from typing import Any

import pynmea2  # type: ignore[import-untyped]

from edge.glasses.config import GnssPosition
from edge.glasses.serial_port import SerialDevice
from edge.glasses.view import Pose
from edge.validators import utcnow

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 128  # NMEA 0183 sentences are at most 82 characters
KNOT_MPS = 0.514444
# A GGA HDOP times this is the usual rough 1-sigma horizontal error of a consumer receiver.
UERE_M = 5.0
THS_VALID = frozenset({"A", "E"})  # autonomous, estimated (dead reckoning)


@dataclass(frozen=True, slots=True)
class Ths:
    """True heading and status (NMEA 0183 v4: $--THS,heading,mode), which pynmea2 lacks."""

    headt: str
    mode: str
    sentence_type: str = "THS"


_BAD_CHECKSUM = Ths("", "", "bad")


def _other_sentence(text: str) -> Ths | None:
    """THS parsed by hand (checksum checked); None for any other unknown sentence."""
    body, star, checksum = text[1:].partition("*")
    fields = body.split(",")
    if not fields[0].endswith("THS") or len(fields) != 3:
        return None
    expected = 0
    for char in body.encode("ascii"):
        expected ^= char
    if not star or checksum.strip().upper() != f"{expected:02X}":
        return _BAD_CHECKSUM
    return Ths(headt=fields[1], mode=fields[2])


class NmeaParser:
    def __init__(self, *, max_fix_age_s: float = 5.0, min_speed_mps: float = 0.5) -> None:
        self.max_fix_age_s = max_fix_age_s
        self.min_speed_mps = min_speed_mps
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._lonlat: tuple[float, float] | None = None
        self._fix_at: datetime | None = None
        self._accuracy_m: float | None = None
        self._fix_quality = 0
        self._speed_mps: float | None = None
        self._course_deg: float | None = None
        self._course_at: datetime | None = None
        self._heading_deg: float | None = None
        self._heading_at: datetime | None = None

    def feed(self, line: bytes | str, now: datetime) -> None:
        """One line from the receiver; anything unusable is counted, never raised."""
        text = self._text(line)
        if text is None:
            return
        sentence = self._parse(text)
        if sentence is None:
            return
        handler = self._handlers.get(getattr(sentence, "sentence_type", ""))
        if handler is None:
            self.counters["ignored"] += 1
            return
        try:
            with self._lock:
                handler(sentence, now)
        except (ValueError, TypeError, AttributeError, InvalidOperation):
            self.counters["malformed"] += 1
            return
        self.counters["sentences"] += 1

    def _text(self, line: bytes | str) -> str | None:
        if isinstance(line, bytes):
            try:
                line = line.decode("ascii") if len(line) <= MAX_LINE_BYTES else ""
            except UnicodeError:
                line = ""
            if not line:  # undecodable or a run-on line (not an empty one: stripped below)
                self.counters["garbage"] += 1
                return None
        text = line.strip()
        if text and not text.startswith(("$", "!")):
            self.counters["garbage"] += 1
            return None
        return text or None

    def _parse(self, text: str) -> Any:
        try:
            return pynmea2.parse(text, check=True)
        except pynmea2.ChecksumError:
            self.counters["bad_checksum"] += 1
        except pynmea2.SentenceTypeError:
            other = _other_sentence(text)
            if other is _BAD_CHECKSUM:
                self.counters["bad_checksum"] += 1
            elif other is None:
                self.counters["unsupported"] += 1
            else:
                return other
        except (pynmea2.ParseError, ValueError, TypeError, AttributeError):
            self.counters["garbage"] += 1
        return None

    @property
    def _handlers(self) -> dict[str, Callable[[Any, datetime], None]]:
        return {"GGA": self._gga, "RMC": self._rmc, "VTG": self._vtg, "HDT": self._hdt,
                "THS": self._ths}

    def _gga(self, s: Any, now: datetime) -> None:
        self._fix_quality = int(s.gps_qual or 0)
        if self._fix_quality > 0 and s.lat and s.lon:
            self._set_fix(float(s.latitude), float(s.longitude), now)
            hdop = float(s.horizontal_dil) if s.horizontal_dil else None
            self._accuracy_m = round(hdop * UERE_M, 1) if hdop is not None else None

    def _rmc(self, s: Any, now: datetime) -> None:
        if s.status != "A":
            return  # the receiver says the fix is void: keep the last one to age out
        if s.lat and s.lon:
            self._set_fix(float(s.latitude), float(s.longitude), now)
        if s.spd_over_grnd is not None:
            self._set_course(float(s.spd_over_grnd) * KNOT_MPS, s.true_course, now)

    def _vtg(self, s: Any, now: datetime) -> None:
        if s.spd_over_grnd_kmph is not None:
            self._set_course(float(s.spd_over_grnd_kmph) / 3.6, s.true_track, now)

    def _hdt(self, s: Any, now: datetime) -> None:
        if s.heading is not None and str(s.heading) != "":
            self._set_heading(float(s.heading), now)

    def _ths(self, s: Any, now: datetime) -> None:
        if s.mode in THS_VALID and s.headt:
            self._set_heading(float(s.headt), now)

    def _set_fix(self, lat: float, lon: float, now: datetime) -> None:
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError("coordinates out of range")
        self._lonlat = (lon, lat)
        self._fix_at = now

    def _set_course(self, speed_mps: float, course: object, now: datetime) -> None:
        self._speed_mps = speed_mps
        if course is not None and str(course) != "" and speed_mps >= self.min_speed_mps:
            self._course_deg = float(str(course)) % 360.0
            self._course_at = now
        else:
            self._course_deg = None

    def _set_heading(self, heading: float, now: datetime) -> None:
        self._heading_deg = heading % 360.0
        self._heading_at = now

    def _fresh(self, at: datetime | None, now: datetime) -> bool:
        return at is not None and 0 <= (now - at).total_seconds() <= self.max_fix_age_s

    def pose(self, now: datetime) -> Pose | None:
        """The latest fix if it is fresh, else None (stale or never had one)."""
        with self._lock:
            if self._lonlat is None or self._fix_at is None or not self._fresh(
                    self._fix_at, now):
                return None
            heading: float | None = None
            if self._fresh(self._heading_at, now):
                heading = self._heading_deg
            elif self._course_deg is not None and self._fresh(self._course_at, now):
                heading = self._course_deg
            return Pose(lon=self._lonlat[0], lat=self._lonlat[1], fix_at=self._fix_at,
                        heading_deg=heading, accuracy_m=self._accuracy_m)

    def fix_state(self, now: datetime) -> str:
        with self._lock:
            if self._lonlat is None:
                return "none"
            return "fix" if self._fresh(self._fix_at, now) else "stale"

    @property
    def speed_mps(self) -> float | None:
        return self._speed_mps


FIX_STATES = {"none": 0.0, "stale": 1.0, "fix": 2.0}


class GnssReader(SerialDevice):
    """Reads the receiver's serial port on a thread; reopens it after an unplug."""

    def __init__(self, config: GnssPosition, *, now: Callable[[], datetime] = utcnow,
                 reopen_s: float = 1.0) -> None:
        super().__init__("gnss", config.port, config.baudrate, read_timeout_s=0.2,
                         reopen_s=reopen_s)
        self.config = config
        self.parser = NmeaParser(max_fix_age_s=config.max_fix_age_s,
                                 min_speed_mps=config.min_speed_mps)
        self._now = now

    def pose(self, now: datetime) -> Pose | None:
        return self.parser.pose(now)

    def health(self) -> dict[str, float]:
        c = self.parser.counters
        return {
            "gnss_fix": FIX_STATES[self.parser.fix_state(self._now())],
            "gnss_connected": 1.0 if self.connected else 0.0,
            "gnss_sentences": float(c["sentences"]),
            "gnss_bad_checksum": float(c["bad_checksum"]),
            "gnss_garbage": float(c["garbage"] + c["malformed"]),
            "gnss_port_errors": float(self.port_errors),
        }

    def _read(self, port: Any) -> None:
        pending = b""
        while not self._stop.is_set():
            chunk: bytes = port.readline(MAX_LINE_BYTES + 1)
            if not chunk:
                continue
            pending += chunk
            if not pending.endswith(b"\n"):
                if len(pending) > MAX_LINE_BYTES:
                    self.parser.counters["garbage"] += 1
                    pending = b""  # drop the run-on line; resync at the next newline
                continue
            self.parser.feed(pending, self._now())
            pending = b""
