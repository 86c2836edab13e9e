"""A bounded, thread-safe queue with an explicit, counted overflow rule per item.

Telemetry may drop the oldest item when full (counted per reason); items that must not be lost
wait for room instead (the producer blocks, which back-pressures the MQTT loop and so the broker).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueClosedError(Exception):
    """The queue was closed while a producer waited for room."""


class BoundedQueue(Generic[T]):
    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._items)

    def put_drop_oldest(self, item: T, reason: str = "queue_full") -> bool:
        """Append; if full, drop the oldest item and count it under ``reason``.

        Returns False when an item was dropped.
        """
        with self._cond:
            kept = True
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped[reason] += 1
                kept = False
            self._items.append(item)
            self._cond.notify()
            return kept

    def put_wait(self, item: T, timeout_s: float | None = None) -> bool:
        """Append, waiting for room. Returns False on timeout (nothing was added)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while len(self._items) >= self.maxsize:
                if self._closed:
                    raise QueueClosedError("queue closed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 0.5)
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get_batch(self, max_items: int, timeout_s: float) -> list[T]:
        """Up to ``max_items`` items; waits up to ``timeout_s`` for the first one."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout_s)
            batch: list[T] = []
            while self._items and len(batch) < max_items:
                batch.append(self._items.popleft())
            if batch:
                self._cond.notify_all()
            return batch

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
