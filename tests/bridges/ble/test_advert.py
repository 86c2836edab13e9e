"""The v1 advert codec: exhaustive malformed cases and hypothesis round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridges.ble.adstruct import (
    AdItem,
    AdStructureError,
    build_ad,
    manufacturer_data,
    manufacturer_item,
    parse_ad,
)
from bridges.ble.advert import (
    BASE_LEN,
    GNSS_LEN,
    TAG_LEN,
    AdvertError,
    BandAdvert,
    GnssFix,
    decode_advert,
    encode_advert,
)
from bridges.ble.auth import AdvertVerifier, Verdict

KEY = bytes(range(16))
OTHER_KEY = bytes(range(1, 17))

fixes = st.builds(
    GnssFix,
    lat=st.integers(-900_000_000, 900_000_000).map(lambda v: v / 1e7),
    lon=st.integers(-1_800_000_000, 1_800_000_000).map(lambda v: v / 1e7),
    accuracy_m=st.integers(0, 255),
)
adverts = st.builds(
    BandAdvert,
    band_id=st.integers(0, 2**32 - 1),
    counter=st.integers(0, 2**32 - 1),
    battery_pct=st.one_of(st.none(), st.integers(0, 100)),
    sos=st.booleans(), tamper=st.booleans(), charging=st.booleans(),
    gnss=st.one_of(st.none(), fixes),
)


@given(adverts, st.binary(min_size=16, max_size=32), st.integers(0, 0xFFFF))
def test_round_trip(advert: BandAdvert, key: bytes, company: int) -> None:
    frame = encode_advert(advert, key, company)
    assert len(frame) == (GNSS_LEN if advert.gnss else BASE_LEN)
    assert len(frame) <= 27  # fits a legacy advert's manufacturer data
    signed = decode_advert(frame)
    assert signed.advert == advert
    assert signed.verify(key, company)


@given(adverts, st.data())
def test_any_single_bit_flip_is_caught(advert: BandAdvert, data: st.DataObject) -> None:
    frame = bytearray(encode_advert(advert, KEY))
    bit = data.draw(st.integers(0, len(frame) * 8 - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    try:
        signed = decode_advert(bytes(frame))
    except AdvertError:
        return
    assert not signed.verify(KEY)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_only_raise_advert_error(frame: bytes) -> None:
    try:
        signed = decode_advert(frame)
    except AdvertError as err:
        assert err.reason in {"short", "bad_version", "bad_length", "bad_battery", "bad_gnss"}
        return
    assert len(frame) in (BASE_LEN, GNSS_LEN)
    assert signed.signed + signed.tag == frame


def _base(**kw: object) -> bytes:
    fields: dict[str, object] = {"band_id": 7, "counter": 1, "battery_pct": 50, **kw}
    return encode_advert(BandAdvert(**fields), KEY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "short"),
        (bytes([0x20]) + _base()[1:], "bad_version"),
        (bytes([0x00]) + _base()[1:], "bad_version"),
        (_base()[:-1], "bad_length"),
        (_base() + b"\x00", "bad_length"),
        # the GNSS flag promises 9 more bytes than a plain frame has
        (bytes([_base()[0] | 0x08]) + _base()[1:], "bad_length"),
        (_base()[:9] + bytes([101]) + _base()[10:], "bad_battery"),
        (_base()[:9] + bytes([254]) + _base()[10:], "bad_battery"),
        (_base(gnss=GnssFix(0, 0, 1))[:10] + (900_000_001).to_bytes(4, "big", signed=True)
         + _base(gnss=GnssFix(0, 0, 1))[14:], "bad_gnss"),
        (_base(gnss=GnssFix(0, 0, 1))[:14] + (-1_800_000_001).to_bytes(4, "big", signed=True)
         + _base(gnss=GnssFix(0, 0, 1))[18:], "bad_gnss"),
    ],
)
def test_malformed_frames(frame: bytes, reason: str) -> None:
    with pytest.raises(AdvertError) as info:
        decode_advert(frame)
    assert info.value.reason == reason


def test_decode_refuses_non_bytes() -> None:
    with pytest.raises(AdvertError) as info:
        decode_advert("not bytes")  # type: ignore[arg-type]
    assert info.value.reason == "bad_type"


@pytest.mark.parametrize(
    ("advert", "reason"),
    [
        (BandAdvert(-1, 0, 1), "bad_band_id"),
        (BandAdvert(2**32, 0, 1), "bad_band_id"),
        (BandAdvert(1, 2**32, 1), "bad_counter"),
        (BandAdvert(1, 0, 101), "bad_battery"),
        (BandAdvert(1, 0, 1, gnss=GnssFix(91, 0, 1)), "bad_gnss"),
        (BandAdvert(1, 0, 1, gnss=GnssFix(0, 181, 1)), "bad_gnss"),
        (BandAdvert(1, 0, 1, gnss=GnssFix(0, 0, 256)), "bad_gnss"),
    ],
)
def test_encode_refuses_out_of_range(advert: BandAdvert, reason: str) -> None:
    with pytest.raises(AdvertError) as info:
        encode_advert(advert, KEY)
    assert info.value.reason == reason


def test_known_vector_layout() -> None:
    frame = encode_advert(BandAdvert(0x01020304, 0x0A0B0C0D, 42, sos=True, charging=True), KEY)
    assert frame[:10] == bytes([0x15, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 42])
    assert len(frame) == 10 + TAG_LEN
    assert decode_advert(frame).advert.battery_pct == 42
    unknown = encode_advert(BandAdvert(1, 1, None), KEY)
    assert unknown[9] == 255
    assert decode_advert(unknown).advert.battery_pct is None


def test_tag_binds_company_id_and_key() -> None:
    frame = _base()
    assert decode_advert(frame).verify(KEY, 0xFFFF)
    assert not decode_advert(frame).verify(KEY, 0x0059)
    assert not decode_advert(frame).verify(OTHER_KEY, 0xFFFF)


# -- verifier -------------------------------------------------------------------------------


def test_verifier_verdicts() -> None:
    v = AdvertVerifier({7: (KEY,)}, duplicate_window_s=5)
    first = decode_advert(_base(counter=10))
    assert v.check(first, 0.0) is Verdict.ACCEPTED
    assert v.check(first, 1.0) is Verdict.DUPLICATE  # repeated event / second receiver
    assert v.check(first, 10.0) is Verdict.REPLAYED  # the same frame much later
    assert v.check(decode_advert(_base(counter=9)), 10.0) is Verdict.REPLAYED
    assert v.check(decode_advert(_base(counter=10, battery_pct=49)), 1.0) is Verdict.REPLAYED
    assert v.check(decode_advert(_base(counter=11)), 11.0) is Verdict.ACCEPTED
    forged = decode_advert(encode_advert(BandAdvert(7, 12, 50), OTHER_KEY))
    assert v.check(forged, 12.0) is Verdict.FORGED
    stranger = decode_advert(encode_advert(BandAdvert(8, 1, 50), KEY))
    assert v.check(stranger, 12.0) is Verdict.UNKNOWN_BAND
    assert v.counters() == {7: 11}


def test_verifier_accepts_rotated_keys_and_restored_counters() -> None:
    v = AdvertVerifier({7: (OTHER_KEY, KEY)})
    assert v.check(decode_advert(_base(counter=3)), 0.0) is Verdict.ACCEPTED
    fresh = AdvertVerifier({7: (KEY,)})
    fresh.restore_counters({7: 3}, 0.0)
    assert fresh.check(decode_advert(_base(counter=3)), 0.1) is Verdict.REPLAYED
    assert fresh.check(decode_advert(_base(counter=4)), 0.2) is Verdict.ACCEPTED


# -- AD structures ----------------------------------------------------------------------------


@given(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=8))
def test_ad_round_trip(items: list[tuple[int, bytes]]) -> None:
    ad = [AdItem(t, d) for t, d in items]
    assert parse_ad(build_ad(ad)) == ad


@given(st.binary(max_size=80))
def test_ad_parse_arbitrary(raw: bytes) -> None:
    try:
        items = parse_ad(raw)
    except AdStructureError as err:
        assert err.reason == "truncated"
        return
    assert all(isinstance(i.data, bytes) for i in items)


def test_ad_manufacturer_and_errors() -> None:
    frame = _base()
    ad = build_ad([AdItem(0x01, b"\x06"), manufacturer_item(0xFFFF, frame)])
    assert len(ad) <= 31
    assert manufacturer_data(parse_ad(ad + b"\x00\x00")) == {0xFFFF: frame}
    with pytest.raises(AdStructureError):
        parse_ad(b"\x05\xff\x01")
    with pytest.raises(AdStructureError):
        parse_ad(b"\x02" * 2000)
    with pytest.raises(AdStructureError):
        build_ad([AdItem(1, b"x" * 255)])
