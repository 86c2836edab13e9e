"""Validators shared by the wire contract, the configs and the hub.

Every id that becomes an MQTT topic segment goes through :data:`SEGMENT_RE`; every message id is
a UUIDv7 (time-ordered, so ids sort by creation) made by :func:`new_id`; every timestamp is an
aware UTC datetime inside a plausible window.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

SEGMENT_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SEGMENT_RE = re.compile(SEGMENT_PATTERN)

# UUID (any version, canonical lower/upper hex form) or a 26-character Crockford ULID.
MESSAGE_ID_PATTERN = (
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26})$"
)
MESSAGE_ID_RE = re.compile(MESSAGE_ID_PATTERN)

# Devices stamp UTC from a synchronised clock; anything outside this window is a broken clock
# or a forged message, never data worth storing.
EARLIEST_TS = datetime(2020, 1, 1, tzinfo=UTC)
LATEST_TS = datetime(2100, 1, 1, tzinfo=UTC)


class InvalidSegmentError(ValueError):
    """An id that would become a topic segment does not match SEGMENT_PATTERN."""


def check_segment(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a safe topic segment, else raise with a sentence saying why."""
    if not isinstance(value, str) or not SEGMENT_RE.fullmatch(value):
        raise InvalidSegmentError(
            f"{what} {value!r} is not a valid id: use 1-64 characters from A-Z, a-z, 0-9, '_' "
            "and '-' (no '/', '+', '#', spaces or dots)"
        )
    return value


SegmentId = Annotated[str, StringConstraints(pattern=SEGMENT_PATTERN)]
MessageId = Annotated[str, StringConstraints(pattern=MESSAGE_ID_PATTERN)]


def _check_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a time zone (UTC, e.g. '2026-01-01T00:00:00Z')")
    value = value.astimezone(UTC)
    if not EARLIEST_TS <= value < LATEST_TS:
        raise ValueError(
            f"timestamp {value.isoformat()} is outside the plausible window "
            f"{EARLIEST_TS.year}-{LATEST_TS.year}: check the device clock (chrony)"
        )
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_check_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


_uuid7_lock = threading.Lock()
_uuid7_last_ms = 0
_uuid7_seq = 0


def new_id() -> str:
    """A UUIDv7 (RFC 9562): 48-bit unix milliseconds, then a 12-bit counter, then random bits.

    The counter keeps ids strictly increasing within one process even inside a millisecond.
    """
    global _uuid7_last_ms, _uuid7_seq  # noqa: PLW0603 - process-wide monotonic state by design
    with _uuid7_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _uuid7_last_ms:
            _uuid7_seq += 1
            if _uuid7_seq > 0xFFF:
                _uuid7_last_ms += 1
                _uuid7_seq = 0
            ms = _uuid7_last_ms
        else:
            _uuid7_last_ms = ms
            _uuid7_seq = int.from_bytes(os.urandom(2), "big") & 0x3FF
        seq = _uuid7_seq
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    return str(uuid.UUID(int=value))
