"""The one base class of every error gridward raises on purpose.

Catching :class:`GridwardError` separates "the input or the state was refused, with a reason"
from a bug; anything else that escapes is a defect and surfaces as one (a 500, a crash report).
"""

from __future__ import annotations


class GridwardError(Exception):
    """An expected, explained failure: bad input, a refused change, an unavailable service."""
