"""The hash chain's pure functions: the legacy link must stay byte-for-byte what old hubs wrote,
and the keyed link must depend on the key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hub.audit.chain import record_hash, record_mac

FIELDS = (
    7,
    datetime(2026, 11, 30, 8, 15, 1, 123456, tzinfo=UTC),
    "alice",
    "zone.put",
    "z-1",
    {"kind": "exclusion", "n": [1, 2]},
    "ab" * 32,
)
# Computed with hub/audit.py as it was before the keyed chain: existing logs must still verify.
OLD_HUB_HASH = "96ad2a8bd4b49a22f25a3bbcae13bf1fe8cb3216536a85985ffc5e0c406523f7"


def test_legacy_link_is_what_old_hubs_wrote() -> None:
    assert record_hash(*FIELDS) == OLD_HUB_HASH


def test_the_same_instant_in_any_zone_hashes_alike() -> None:
    utc = FIELDS[1]
    assert isinstance(utc, datetime)
    beijing = utc.astimezone(timezone(timedelta(hours=8)))
    naive = utc.replace(tzinfo=None)  # as SQLite returns it
    key = b"k" * 32
    mac = record_mac(key, *FIELDS)
    assert mac == record_mac(key, FIELDS[0], beijing, *FIELDS[2:])
    assert mac == record_mac(key, FIELDS[0], naive, *FIELDS[2:])


def test_keyed_link_depends_on_key_and_every_field() -> None:
    key = b"k" * 32
    mac = record_mac(key, *FIELDS)
    assert mac != record_hash(*FIELDS)
    assert mac != record_mac(b"K" * 32, *FIELDS)
    for i in range(len(FIELDS)):
        changed: list[Any] = list(FIELDS)
        if isinstance(changed[i], int):
            changed[i] = changed[i] + 1
        elif isinstance(changed[i], datetime):
            changed[i] = changed[i] + timedelta(microseconds=1)
        elif isinstance(changed[i], dict):
            changed[i] = {**changed[i], "n": [1, 3]}
        else:
            changed[i] = str(changed[i]) + "x"
        assert record_mac(key, *changed) != mac, f"field {i} is not covered"
