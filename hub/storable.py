"""What every store can keep and every response can carry, checked once where input enters.

PostgreSQL refuses NUL in text and in JSONB; a NaN or an infinity is not JSON, so a stored one
turns every later read of the object into a server error; a structure nested hundreds deep
costs recursion everywhere it is walked. Checking at the door turns each into a 422 that says
where the problem is, instead of a 500 on one backend and silent acceptance on another.
"""

from __future__ import annotations

import math
from typing import Any

MAX_JSON_DEPTH = 32


class UnstorableError(ValueError):
    """Input no store can keep as given; the message names where and what."""


def check_text(value: str, where: str) -> str:
    if "\x00" in value:
        raise UnstorableError(f"{where}: text must not contain NUL (\\u0000) characters")
    return value


def check_json(value: Any, where: str = "body", depth: int = 0) -> None:
    """Refuse NUL in any string or key, non-finite numbers, and nesting past the limit."""
    if depth > MAX_JSON_DEPTH:
        raise UnstorableError(f"{where}: nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise UnstorableError(f"{where}: numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                check_text(key, f"{where} key {key[:40]!r}")
            check_json(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json(item, f"{where}[{i}]", depth + 1)
