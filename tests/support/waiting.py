"""Polling helper: tests wait for a condition with a generous deadline, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object],
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
    message: str = "condition",
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    if condition():
        return
    raise AssertionError(f"timed out after {timeout_s}s waiting for {message}")
