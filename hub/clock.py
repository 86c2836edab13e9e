"""One injectable clock for every hub timer (deadlines, reminders, escalations, warnings).

Production uses :class:`SystemClock`; tests travel in time with :class:`ManualClock`; the demo
runs the workflow on an accelerated :class:`ScaledClock`. Every clock returns aware UTC times.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


def as_utc(ts: datetime) -> datetime:
    """``ts`` as aware UTC. SQLite hands every stored timestamp back naive; the hub stores only
    UTC, so a naive value read from the store is UTC (never the server's local time)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (thread-safe)."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (a timedelta or seconds); returns the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += step
            return self._now


class ScaledClock:
    """Real time sped up by ``factor`` from the moment it is made (the demo's clock)."""

    def __init__(self, factor: float, start: datetime | None = None) -> None:
        if not factor > 0:
            raise ValueError("a clock's speed-up factor must be positive")
        self.factor = factor
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self.factor)
