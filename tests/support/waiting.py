"""Polling helper: tests wait for a condition with a generous deadline, never for a fixed time.

The default deadline is sized for a loaded 2-core CI worker running two test files at once: a
passing test returns as soon as its condition holds, so only a failing one pays for it."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object],
    timeout_s: float = 30.0,
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
