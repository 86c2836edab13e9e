"""The ownership rule (hub/ownership.py) and the store's timestamp window, without a broker:
pure rules by property, the window on SQLite and PostgreSQL with an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from edge.protocol import (
    DeviceKind,
    EntityKind,
    Inbound,
    Position,
    PositionBatch,
    decode_device_message,
    device_topic,
    encode,
)
from edge.tracking import track_entity
from hub.ownership import NOT_OWNED, Owner, is_track_of, refusal
from hub.schema import entity_owners, latest_positions, positions
from hub.store import Store, TimestampWindow

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
segment = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=64)


@given(device=segment, track=st.text("abcdef0123456789", min_size=1, max_size=40))
def test_every_track_id_a_device_makes_is_its_own(device: str, track: str) -> None:
    assert is_track_of(device, track_entity(device, track))


@given(device=segment, entity=segment)
def test_a_track_id_is_only_ever_a_prefix_of_the_device_id_and_a_dash(
    device: str, entity: str
) -> None:
    if is_track_of(device, entity):
        assert any(
            entity[cut] == "-" and device.startswith(entity[:cut]) and cut < len(entity) - 1
            for cut in range(1, min(len(device), len(entity) - 1) + 1)
        )


def test_another_devices_track_is_not_its_own() -> None:
    assert not is_track_of("cam-1", "cam-2-7")
    assert not is_track_of("cam-1", "cam-1-")  # no track id
    assert not is_track_of("cam", "officer-2")
    assert not is_track_of("cam-north", "cam-7")  # a shorter id is only allowed at 64 chars


def test_the_rule_by_kind_and_owner() -> None:
    cam, lidar, glasses, band = (
        DeviceKind.CAMERA.value,
        DeviceKind.LIDAR.value,
        DeviceKind.GLASSES.value,
        DeviceKind.WRISTBAND.value,
    )
    assert refusal(cam, "cam-1", "cam-1-7", EntityKind.TRACK, None) is None
    assert refusal(lidar, "lid", "lid-7", EntityKind.TRACK, None) is None
    assert refusal(cam, "cam-1", "cam-2-7", EntityKind.TRACK, None) is not None
    assert refusal(cam, "cam-1", "officer-2", EntityKind.OFFICER, None) is not None
    assert refusal(glasses, "g1", "officer-2", EntityKind.OFFICER, None) is None
    assert refusal(glasses, "g1", "officer-2", EntityKind.OFFICER, Owner("officer", "g1")) is None
    assert refusal(glasses, "g2", "officer-2", EntityKind.OFFICER, Owner("officer", "g1"))
    assert refusal(band, "gw-b", "w1", EntityKind.WEARER, Owner("wearer", "gw-a")) is None
    assert refusal("fusion", "fusion", "w1", EntityKind.WEARER, Owner("wearer", "gw-a")) is None
    assert refusal(band, "gw-a", "w1", EntityKind.WEARER, Owner("officer", "g1"))
    assert refusal(band, "gw-a", "w1", EntityKind.OFFICER, None)


@pytest.fixture
def clocked(db_url: str) -> Iterator[tuple[Store, list[datetime]]]:
    now = [NOW]
    store = Store(db_url, window=TimestampWindow(120, 3600), clock=lambda: now[0])
    yield store, now
    store.close()


def _batch(device: str, *stamps: tuple[str, float, datetime]) -> Inbound:
    msg = PositionBatch(
        site="s",
        device=device,
        positions=[
            Position(entity=e, entity_kind=EntityKind.OFFICER, lon=lon, lat=1.0, ts=ts)
            for e, lon, ts in stamps
        ],
    )
    return decode_device_message(device_topic("s", "glasses", device, "pos"), encode(msg))


def _latest(store: Store) -> dict[str, float]:
    with store.engine.connect() as conn:
        return {r.entity: r.lon for r in conn.execute(select(latest_positions))}


def test_the_window_edges(clocked: tuple[Store, list[datetime]]) -> None:
    store, _ = clocked
    result = store.write_batch(
        [
            _batch(
                "g1",
                ("o1", 1.0, NOW + timedelta(seconds=120)),  # at the edge: taken
                ("o2", 2.0, NOW + timedelta(seconds=121)),  # past it: refused
                ("o3", 3.0, NOW - timedelta(seconds=3600)),  # as old as allowed: latest
                ("o4", 4.0, NOW - timedelta(seconds=3601)),  # older: history only
            )
        ]
    )
    assert result.positions == 3 and result.positions_stale == 1
    assert result.rejected_by_reason() == {"ts_in_future": 1}
    assert _latest(store) == {"o1": 1.0, "o3": 3.0}
    assert [r["entity"] for r in result.live_positions] == ["o1", "o3"]
    with store.engine.connect() as conn:
        hist = sorted(r.entity for r in conn.execute(select(positions.c.entity)))
        owners = {r.entity: r.device for r in conn.execute(select(entity_owners))}
    assert hist == ["o1", "o3", "o4"]
    assert owners == {"o1": "g1", "o3": "g1", "o4": "g1"}  # a refused fix claims nothing


def test_a_future_fix_never_pins_latest_as_the_clock_moves(
    clocked: tuple[Store, list[datetime]],
) -> None:
    store, now = clocked
    store.write_batch([_batch("g1", ("o1", 1.0, NOW))])
    store.write_batch([_batch("g1", ("o1", 9.0, NOW + timedelta(days=365 * 70)))])
    now[0] = NOW + timedelta(seconds=10)
    store.write_batch([_batch("g1", ("o1", 2.0, now[0]))])
    assert _latest(store) == {"o1": 2.0}


def test_first_claim_wins_within_one_batch_and_across_batches(
    clocked: tuple[Store, list[datetime]],
) -> None:
    store, _ = clocked
    result = store.write_batch(
        [_batch("g1", ("o1", 1.0, NOW)), _batch("g2", ("o1", 5.0, NOW), ("o2", 6.0, NOW))]
    )
    [refused] = result.rejected
    assert refused.reason == NOT_OWNED and refused.item.message.device == "g2"
    assert "1 of 2 positions" in refused.error
    # The rest of g2's message is stored and goes on, trimmed, to the live map and time series.
    trimmed = result.trimmed[id(refused.item)].message
    assert isinstance(trimmed, PositionBatch)
    assert [p.entity for p in trimmed.positions] == ["o2"]
    assert _latest(store) == {"o1": 1.0, "o2": 6.0}
    again = store.write_batch([_batch("g2", ("o1", 7.0, NOW + timedelta(seconds=1)))])
    assert again.rejected_by_reason() == {NOT_OWNED: 1} and again.trimmed == {}
    assert _latest(store) == {"o1": 1.0, "o2": 6.0}
