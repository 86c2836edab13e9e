"""RSSI smoothing and zone-level presence (pure, clock passed in). The path-loss model lives in
:mod:`edge.positioning`."""

from __future__ import annotations

import math


class RssiKalman:
    """1-D Kalman filter on RSSI in dB with a random-walk model (variance grows with time)."""

    def __init__(self, process_var_db2_per_s: float = 4.0, measurement_sigma_db: float = 4.0
                 ) -> None:
        self.q = process_var_db2_per_s
        self.r = measurement_sigma_db**2
        self.value: float | None = None
        self.variance = 0.0
        self.last_s = 0.0

    def update(self, rssi_dbm: float, t_s: float) -> float:
        if self.value is None:
            self.value, self.variance, self.last_s = float(rssi_dbm), self.r, t_s
            return self.value
        self.variance += self.q * max(t_s - self.last_s, 0.0)
        gain = self.variance / (self.variance + self.r)
        self.value += gain * (rssi_dbm - self.value)
        self.variance *= 1 - gain
        self.last_s = t_s
        return self.value

    @property
    def sigma_db(self) -> float:
        return math.sqrt(self.variance)


class ZonePresence:
    """Which receiver (and so which zone) a band is nearest, with hysteresis.

    The band moves to another receiver only when that receiver's smoothed RSSI beats the current
    one by ``hysteresis_db`` continuously for ``min_hold_s`` (or the current one went silent).
    """

    def __init__(self, hysteresis_db: float = 6.0, min_hold_s: float = 3.0) -> None:
        self.hysteresis_db = hysteresis_db
        self.min_hold_s = min_hold_s
        self.current: str | None = None
        self._challenger: str | None = None
        self._since = 0.0

    def update(self, smoothed: dict[str, float], t_s: float) -> str | None:
        """``smoothed`` holds the fresh receivers only. Returns the current receiver."""
        if not smoothed:
            self.current = self._challenger = None
            return None
        best = max(smoothed, key=lambda r: smoothed[r])
        if self.current is None or self.current not in smoothed:
            self.current, self._challenger = best, None
            return self.current
        if best == self.current or smoothed[best] < smoothed[self.current] + self.hysteresis_db:
            self._challenger = None
            return self.current
        if self._challenger != best:
            self._challenger, self._since = best, t_s
        if t_s - self._since >= self.min_hold_s:
            self.current, self._challenger = best, None
        return self.current
