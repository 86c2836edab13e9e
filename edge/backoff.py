"""Full-jitter exponential backoff, shared by the MQTT bus and the camera's stream reconnects
(paho-free, so modules that only need the backoff do not load the MQTT client)."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Full-jitter exponential backoff (AWS architecture blog): ``uniform(0, min(max, min*2^n))``.

    A floor of ``min/2`` keeps a tight reconnect loop from spinning.
    """

    def __init__(
        self, min_s: float, max_s: float, rng: Callable[[float, float], float] | None = None
    ) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng or random.uniform

    def next_delay(self) -> float:
        cap = min(self.max_s, self.min_s * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        return max(self.min_s / 2, self._rng(0.0, cap))

    def reset(self) -> None:
        self.attempt = 0
