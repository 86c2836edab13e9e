"""The key-rotation frame and the band's state: round trips, and every way to break a frame."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridges.ble.key_rotation import (
    MAC_LEN,
    STATE_LEN,
    Rotation,
    RotationError,
    confirms,
    decode_rotation,
    decode_state,
    encode_rotation,
    encode_state,
)

keys = st.sampled_from([16, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
band_ids = st.integers(0, 0xFFFF_FFFF)
epochs = st.integers(1, 0xFFFF_FFFF)


@given(band=band_ids, epoch=epochs, old=keys, new=keys)
def test_round_trip(band: int, epoch: int, old: bytes, new: bytes) -> None:
    frame = encode_rotation(Rotation(band, epoch, new), old)
    assert len(frame) == 10 + len(new) + MAC_LEN
    assert new not in frame  # the key never travels in clear
    got = decode_rotation(frame, band_id=band, current_epoch=epoch - 1, keys=(old,))
    assert got == Rotation(band, epoch, new)
    state = encode_state(band, epoch, new)
    assert len(state) == STATE_LEN
    assert confirms(state, got)
    # HMAC zero-pads short keys, so 16 zero bytes and 32 zero bytes are the same HMAC key
    if old.rstrip(b"\0") != new.rstrip(b"\0"):
        assert not confirms(encode_state(band, epoch, old), got)


@given(band=band_ids, epoch=epochs, old=keys, new=keys, data=st.data())
def test_any_flipped_bit_is_refused(band: int, epoch: int, old: bytes, new: bytes,
                                    data: st.DataObject) -> None:
    frame = bytearray(encode_rotation(Rotation(band, epoch, new), old))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(RotationError):
        decode_rotation(bytes(frame), band_id=band, current_epoch=epoch - 1, keys=(old,))


@settings(max_examples=500)
@given(raw=st.binary(max_size=80), band=band_ids, epoch=st.integers(0, 0xFFFF_FFFF), key=keys)
def test_arbitrary_bytes_only_raise_rotation_error(raw: bytes, band: int, epoch: int,
                                                   key: bytes) -> None:
    try:
        got = decode_rotation(raw, band_id=band, current_epoch=epoch, keys=(key,))
    except RotationError as err:
        assert err.reason in {"short", "bad_version", "bad_length", "wrong_band", "replayed",
                              "forged"}
    else:  # only a frame with a valid MAC under the key gets through
        assert encode_rotation(got, key) == raw


def test_each_refusal_reason() -> None:
    old, new = bytes(range(16)), bytes(range(16, 48))
    good = encode_rotation(Rotation(7, 3, new), old)

    def reason(frame: bytes, **kw: object) -> str:
        args: dict[str, object] = {"band_id": 7, "current_epoch": 2, "keys": (old,)} | kw
        with pytest.raises(RotationError) as info:
            decode_rotation(frame, **args)  # type: ignore[arg-type]
        return info.value.reason

    assert reason(good[:5]) == "short"
    assert reason(b"\x02" + good[1:]) == "bad_version"
    assert reason(good[:-1]) == "bad_length"
    assert reason(good[:9] + b"\x18" + good[10:]) == "bad_length"
    assert reason(good, band_id=8) == "wrong_band"
    assert reason(good, current_epoch=3) == "replayed"
    assert reason(good, keys=(new,)) == "forged"
    # during a hand-over the band may accept either of two keys
    assert decode_rotation(good, band_id=7, current_epoch=2, keys=(new, old)).new_key == new


def test_encoder_refuses_bad_input() -> None:
    with pytest.raises(RotationError, match="16 or 32"):
        encode_rotation(Rotation(1, 1, b"short"), bytes(16))
    with pytest.raises(RotationError, match="epoch"):
        encode_rotation(Rotation(1, 0, bytes(16)), bytes(16))
    with pytest.raises(RotationError, match="uint32"):
        encode_rotation(Rotation(-1, 1, bytes(16)), bytes(16))
    with pytest.raises(RotationError, match="bytes"):
        decode_state(b"\x00" * 3)
    assert not confirms(b"garbage", Rotation(1, 1, bytes(16)))
    assert "new_key" not in repr(Rotation(1, 1, bytes(16)))  # keys never reach a log line
