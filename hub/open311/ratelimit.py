"""A token bucket per client: ``burst`` requests at once, then ``rate_per_s`` on average.

Kept in memory per hub process (a client spread over several replicas gets each replica's
allowance; the limit is there to stop a runaway script or a flood, not to meter use).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class ClientRateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate_per_s > 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self.admitted = 0
        self.refused = 0
        self.evicted = 0

    def admit(self, client: str) -> float | None:
        """None when ``client`` may go ahead (one token spent); else seconds until it may."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._forget(now)
                bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            else:
                elapsed = max(0.0, now - bucket.updated)
                bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
                bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                self.admitted += 1
                return None
            self.refused += 1
            return (1.0 - bucket.tokens) / self.rate_per_s

    def _forget(self, now: float) -> None:
        # Full buckets are the same as no bucket: dropping them loses nothing.
        full_after = self.burst / self.rate_per_s
        kept = {k: b for k, b in self._buckets.items() if now - b.updated < full_after}
        if len(kept) >= self.max_clients:
            # Still full of active clients (an address spray): keep the most recent half.
            recent = sorted(kept.items(), key=lambda kv: kv[1].updated)[len(kept) // 2 :]
            kept = dict(recent)
        self.evicted += len(self._buckets) - len(kept)
        self._buckets = kept

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "admitted": self.admitted,
                "refused": self.refused,
                "evicted": self.evicted,
                "clients": len(self._buckets),
            }


def retry_after_s(wait_s: float) -> int:
    """Whole seconds for a Retry-After header (never 0: "now" would be a busy loop)."""
    return max(1, math.ceil(wait_s))
