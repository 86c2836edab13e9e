"""Sealing and opening watchlist bundles, and the keys they use: every refusal reason is
provoked by a hostile bundle, and the order of the checks is pinned."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import os
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.faces.bundle import (
    MAX_ENTRIES,
    BundleEntry,
    BundlePayload,
    BundleRefusal,
    BundleRefusedError,
    BundleTooLargeError,
    MalformedPayloadError,
    assemble_parts,
    decode_payload,
    encode_raw_payload,
    entries_per_envelope,
    open_bundle,
    open_part,
    payload_from_rows,
    seal_bytes,
    wire_time,
)
from edge.faces.keys import (
    BundleKeyError,
    ed25519_public_b64,
    key_id_of,
    load_hub_keys,
    load_or_create_device_key,
    load_or_create_signing_key,
    public_key_b64,
    x25519_public_from_b64,
)
from edge.protocol import WatchlistBundleEnvelope, decode_as, encode
from tests.edge.faces.bundles import DIM, MODEL, T0, Keys, payload, unit_rows

MAX_AGE_S = 7 * 86_400


def _open(keys: Keys, env: WatchlistBundleEnvelope, **kw: Any) -> BundlePayload:
    args: dict[str, Any] = {"site": "s1", "device": "cam-1", "device_key": keys.device,
                            "hub_keys": keys.hub_keys, "applied_version": 0,
                            "now": T0 + timedelta(seconds=30), "max_age_s": MAX_AGE_S,
                            "model": MODEL}
    args.update(kw)
    return open_bundle(env, **args)


def _refusal(keys: Keys, env: WatchlistBundleEnvelope, **kw: Any) -> BundleRefusal:
    with pytest.raises(BundleRefusedError) as info:
        _open(keys, env, **kw)
    return info.value.reason


def _header(p: BundlePayload, **overrides: Any) -> dict[str, Any]:
    header: dict[str, Any] = {
        "version": p.version, "issued_at": wire_time(p.issued_at),
        "expires_at": wire_time(p.expires_at), "model": p.model, "dim": p.dim,
        "count": len(p.entries), "dtype": "float32",
        "ids": "\n".join(e.entry_id for e in p.entries)}
    header.update(overrides)
    return header


def _body(p: BundlePayload, rows: np.ndarray | None = None, expiries: list[int] | None = None
          ) -> bytes:
    """The expiries and the matrix as the format lays them out (float32 rows)."""
    stamps = expiries if expiries is not None else [
        math.floor(e.expires_at.timestamp()) for e in p.entries]
    matrix = p.embeddings() if rows is None else rows
    return np.array(stamps, dtype="<i8").tobytes() + np.asarray(matrix, dtype="<f4").tobytes()


def _seal_raw(keys: Keys, p: BundlePayload, header: dict[str, Any], body: bytes
              ) -> WatchlistBundleEnvelope:
    """A bundle the real hub key signs and encrypts, whose plaintext is whatever we say."""
    return seal_bytes(encode_raw_payload(header, body), version=p.version,
                      issued_at=p.issued_at, expires_at=p.expires_at, site="s1",
                      device="cam-1", recipient_key=keys.device.public_key(),
                      signing_key=keys.signing, key_id=keys.key_id)


def _flip(text: str, at: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


def _with(env: WatchlistBundleEnvelope, **changes: Any) -> WatchlistBundleEnvelope:
    return WatchlistBundleEnvelope.model_validate({**env.model_dump(), **changes})


# -- round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "max_error"), [("float16", 1e-3), ("float32", 1e-6)])
def test_a_bundle_survives_the_wire_and_opens_to_its_entries(dtype: str, max_error: float
                                                             ) -> None:
    keys = Keys()
    sent = payload(version=7, n=50, entry_valid_s=[3600.75 + i for i in range(50)])
    env = keys.seal(sent, dtype=dtype)
    wire = decode_as(WatchlistBundleEnvelope, encode(env))  # JSON times and base64 as sent
    got = _open(keys, wire, applied_version=6)
    assert (got.version, got.model, got.dim, got.issued_at, got.expires_at) == (
        7, MODEL, DIM, sent.issued_at, sent.expires_at)
    assert [e.entry_id for e in got.entries] == [e.entry_id for e in sent.entries]
    # Expiries are floored to the second: an entry never outlives the hub's expiry.
    for g, s in zip(got.entries, sent.entries, strict=True):
        assert timedelta(0) <= s.expires_at - g.expires_at < timedelta(seconds=1)
    cosines = np.sum(got.embeddings() * sent.embeddings(), axis=1)
    assert float(np.abs(cosines - 1.0).max()) < max_error
    assert np.allclose(np.linalg.norm(got.embeddings(), axis=1), 1.0, atol=1e-6)


def test_the_hub_builds_a_payload_from_repository_rows() -> None:
    """``active_embeddings`` gives (id, expires_at, float32 bytes); that seals and opens."""
    keys = Keys()
    rows = unit_rows(3)
    expiry = T0 + timedelta(days=3, microseconds=5)
    p = payload_from_rows([(f"w{i}", expiry, rows[i].tobytes()) for i in range(3)], version=2,
                          issued_at=T0, expires_at=T0 + timedelta(days=1), model=MODEL, dim=DIM)
    got = _open(keys, keys.seal(p))
    assert got.entry_ids() == ("w0", "w1", "w2")
    assert got.entries[1].expires_at == T0 + timedelta(days=3)
    assert np.allclose(got.embeddings(), rows, atol=1e-3)
    with pytest.raises(ValueError, match="shape"):
        payload_from_rows([("w0", expiry, rows[0][:10].tobytes())], version=2, issued_at=T0,
                          expires_at=T0 + timedelta(days=1), model=MODEL, dim=DIM)


def test_the_envelope_reveals_no_entry_id_and_no_embedding() -> None:
    keys = Keys()
    base = payload(n=5)
    sent = BundlePayload(base.version, base.issued_at, base.expires_at, MODEL, DIM, tuple(
        BundleEntry(f"person-of-interest-{i}", e.expires_at, e.embedding)
        for i, e in enumerate(base.entries)))
    raw = encode(keys.seal(sent, dtype="float32"))
    for entry in sent.entries:
        assert entry.entry_id.encode() not in raw
        assert base64.b64encode(entry.embedding.tobytes()[:12]) not in raw


def test_two_seals_of_one_payload_share_no_key_material() -> None:
    keys = Keys()
    p = payload()
    a, b = keys.seal(p), keys.seal(p)
    assert a.epk_b64 != b.epk_b64 and a.nonce_b64 != b.nonce_b64
    assert a.ciphertext_b64 != b.ciphertext_b64


# -- refusals -----------------------------------------------------------------------------------


def _other_signer(keys: Keys, env: WatchlistBundleEnvelope) -> WatchlistBundleEnvelope:
    forger = Keys(device=keys.device)
    forged = forger.seal(payload(), key_id=keys.key_id)  # claims the pinned key's id
    assert forged.key_id == env.key_id
    return forged


TAMPERS: dict[str, tuple[Callable[[Keys, WatchlistBundleEnvelope], WatchlistBundleEnvelope],
                         BundleRefusal]] = {
    "unsigned": (lambda k, e: _with(e, signature_b64=""), BundleRefusal.BAD_SIGNATURE),
    "garbage signature": (lambda k, e: _with(
        e, signature_b64=base64.b64encode(os.urandom(64)).decode()),
        BundleRefusal.BAD_SIGNATURE),
    "signature not base64": (lambda k, e: _with(e, signature_b64="%%%%"),
                             BundleRefusal.BAD_SIGNATURE),
    "one bit of the ciphertext": (lambda k, e: _with(
        e, ciphertext_b64=_flip(e.ciphertext_b64, 40)), BundleRefusal.BAD_SIGNATURE),
    "a non-ASCII ciphertext": (lambda k, e: _with(e, ciphertext_b64="\u00e9" + e.ciphertext_b64),
                               BundleRefusal.BAD_SIGNATURE),
    "one bit of the nonce": (lambda k, e: _with(e, nonce_b64=_flip(e.nonce_b64, 0)),
                             BundleRefusal.BAD_SIGNATURE),
    "a later expiry in the header": (lambda k, e: _with(
        e, expires_at=e.expires_at + timedelta(microseconds=1)), BundleRefusal.BAD_SIGNATURE),
    "a higher version in the header": (lambda k, e: _with(
        e, bundle_version=e.bundle_version + 1), BundleRefusal.BAD_SIGNATURE),
    "another message id": (lambda k, e: _with(e, id="0190f0c0-0000-7000-8000-000000000000"),
                           BundleRefusal.BAD_SIGNATURE),
    "unpinned key id": (lambda k, e: _with(e, key_id="0123456789abcdef"),
                        BundleRefusal.UNKNOWN_KEY),
    "signed by another key": (_other_signer, BundleRefusal.BAD_SIGNATURE),
    "for another device": (lambda k, e: k.seal(payload(), device="cam-2"),
                           BundleRefusal.WRONG_RECIPIENT),
    "for another site": (lambda k, e: k.seal(payload(), site="s2"),
                         BundleRefusal.WRONG_RECIPIENT),
    "encrypted for another device key": (lambda k, e: k.seal(
        payload(), recipient_key=X25519PrivateKey.generate().public_key()),
        BundleRefusal.UNDECRYPTABLE),
    "wrong model": (lambda k, e: k.seal(payload(model="arcface-r50")),
                    BundleRefusal.WRONG_MODEL),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_a_hostile_bundle_is_refused_with_its_reason(case: str) -> None:
    keys = Keys()
    env = keys.seal(payload())
    tamper, reason = TAMPERS[case]
    assert _refusal(keys, tamper(keys, env)) is reason
    _open(keys, env)  # the untouched bundle still opens: the refusal came from the tamper


def test_an_older_or_equal_version_is_a_replay() -> None:
    keys = Keys()
    env = keys.seal(payload(version=4))
    assert _refusal(keys, env, applied_version=5) is BundleRefusal.REPLAYED
    assert _refusal(keys, env, applied_version=4) is BundleRefusal.REPLAYED
    assert _open(keys, env, applied_version=3).version == 4


def test_staleness_and_expiry_go_by_the_edge_clock() -> None:
    keys = Keys()
    env = keys.seal(payload(valid_s=60))
    assert _refusal(keys, env, now=T0 + timedelta(seconds=60)) is BundleRefusal.EXPIRED
    _open(keys, env, now=T0 + timedelta(seconds=59))
    long_lived = keys.seal(payload(valid_s=30 * 86_400))
    late = T0 + timedelta(seconds=MAX_AGE_S + 1)
    assert _refusal(keys, long_lived, now=late) is BundleRefusal.STALE
    _open(keys, long_lived, now=late - timedelta(seconds=2))


def test_the_checks_run_in_the_documented_order() -> None:
    """Each bundle fails two checks; the earlier one is the reason given."""
    keys = Keys()
    late = T0 + timedelta(days=400)
    other_device = keys.seal(payload(valid_s=60), device="cam-2")
    assert _refusal(keys, _with(other_device, key_id="0123456789abcdef")
                    ) is BundleRefusal.UNKNOWN_KEY
    assert _refusal(keys, _with(other_device, signature_b64="")) is BundleRefusal.BAD_SIGNATURE
    assert _refusal(keys, other_device, now=late, applied_version=9
                    ) is BundleRefusal.WRONG_RECIPIENT
    old_expired = keys.seal(payload(version=2, valid_s=60))
    assert _refusal(keys, old_expired, now=late, applied_version=9) is BundleRefusal.REPLAYED
    assert _refusal(keys, keys.seal(payload(valid_s=30 * 86_400)), now=late
                    ) is BundleRefusal.STALE
    undecryptable_and_wrong_model = keys.seal(
        payload(model="arcface-r50", valid_s=60),
        recipient_key=X25519PrivateKey.generate().public_key())
    assert _refusal(keys, undecryptable_and_wrong_model, now=T0 + timedelta(seconds=61)
                    ) is BundleRefusal.EXPIRED
    assert _refusal(keys, undecryptable_and_wrong_model) is BundleRefusal.UNDECRYPTABLE


def _with_value(p: BundlePayload, value: float) -> np.ndarray:
    rows = p.embeddings().copy()
    rows[1, 5] = value
    return rows


MALFORMED: dict[str, Callable[[BundlePayload], tuple[dict[str, Any], bytes]]] = {
    "huge count": lambda p: (_header(p, count=10**9), _body(p)),
    "count above the bound": lambda p: (_header(p, count=MAX_ENTRIES + 1), b""),
    "count disagrees with the ids": lambda p: (_header(p, ids="e0\ne1"), _body(p)),
    "count of 0 with ids": lambda p: (_header(p, count=0), b""),
    "matrix one row short": lambda p: (_header(p), _body(p)[:-DIM * 4]),
    "one byte too many": lambda p: (_header(p), _body(p) + b"\x00"),
    "NaN embedding": lambda p: (_header(p), _body(p, _with_value(p, np.nan))),
    "infinite embedding": lambda p: (_header(p), _body(p, _with_value(p, np.inf))),
    "embedding not unit length": lambda p: (_header(p), _body(p, p.embeddings() * 1.5)),
    "zero embedding": lambda p: (_header(p), _body(p, p.embeddings() * 0.0)),
    "duplicate ids": lambda p: (_header(p, ids="e0\ne1\ne0"), _body(p)),
    "id with a slash": lambda p: (_header(p, ids="e0\ne/1\ne2"), _body(p)),
    "empty id": lambda p: (_header(p, ids="e0\n\ne2"), _body(p)),
    "id of 65 characters": lambda p: (_header(p, ids="e0\n" + "x" * 65 + "\ne2"), _body(p)),
    "ids as a list": lambda p: (_header(p, ids=["e0", "e1", "e2"]), _body(p)),
    "negative expiry": lambda p: (_header(p), _body(p, expiries=[1, -5, 2])),
    "expiry beyond 2242": lambda p: (_header(p), _body(p, expiries=[1, 2**40, 2])),
    "dim of zero": lambda p: (_header(p, dim=0), b""),
    "unknown dtype": lambda p: (_header(p, dtype="float64"), _body(p)),
    "version differs from the envelope": lambda p: (_header(p, version=p.version + 1),
                                                   _body(p)),
    "validity differs from the envelope": lambda p: (_header(
        p, expires_at=wire_time(p.expires_at + timedelta(days=1))), _body(p)),
    "time not in the bundle form": lambda p: (_header(p, issued_at="yesterday"), _body(p)),
    "boolean version": lambda p: (_header(p, version=True), _body(p)),
    "model with capitals": lambda p: (_header(p, model="SFace"), _body(p)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_signed_but_malformed_payload_is_refused(case: str) -> None:
    keys = Keys()
    p = payload(n=3)
    header, body = MALFORMED[case](p)
    assert _refusal(keys, _seal_raw(keys, p, header, body)) is BundleRefusal.MALFORMED
    _open(keys, _seal_raw(keys, p, _header(p), _body(p)))  # the control opens


@pytest.mark.parametrize("plaintext", [b"", b"GWWB", b"GWWB\x01\xff\xff\xff\xff{}",
                                       b"GWWB\x02\x02\x00\x00\x00{}", b"\x00" * 64,
                                       b"GWWB\x01\x02\x00\x00\x00[]"])
def test_garbage_plaintext_is_malformed(plaintext: bytes) -> None:
    keys = Keys()
    p = payload()
    env = seal_bytes(plaintext, version=1, issued_at=p.issued_at, expires_at=p.expires_at,
                     site="s1", device="cam-1", recipient_key=keys.device.public_key(),
                     signing_key=keys.signing, key_id=keys.key_id)
    assert _refusal(keys, env) is BundleRefusal.MALFORMED


def test_the_hub_cannot_seal_what_an_edge_would_refuse() -> None:
    keys = Keys()
    p = payload(n=2)
    bad = BundlePayload(p.version, p.issued_at, p.expires_at, p.model, p.dim, (
        p.entries[0], BundleEntry("e0", p.entries[1].expires_at, p.entries[1].embedding)))
    with pytest.raises(ValueError, match="unique"):
        keys.seal(bad)
    newline = BundlePayload(p.version, p.issued_at, p.expires_at, p.model, p.dim, (
        p.entries[0], BundleEntry("e1\ne2", p.entries[1].expires_at, p.entries[1].embedding)))
    with pytest.raises(ValueError, match="count"):
        keys.seal(newline)  # an id with a newline would split into two on the edge
    nan = BundlePayload(p.version, p.issued_at, p.expires_at, p.model, p.dim, (
        p.entries[0], BundleEntry("e1", p.entries[1].expires_at,
                                  np.full(DIM, np.nan, dtype=np.float32))))
    with pytest.raises(ValueError, match="finite"):
        keys.seal(nan)


def test_a_bundle_too_big_for_one_envelope_is_refused_at_sealing() -> None:
    """entries_per_envelope is exact enough to plan by: that many fit, five more do not."""
    keys = Keys()
    fit = entries_per_envelope(DIM, id_chars=36)
    assert 4_000 < fit < 6_000

    def big(n: int) -> BundlePayload:
        rows = unit_rows(n, seed=3)
        entries = tuple(BundleEntry(f"{i:036d}", T0 + timedelta(days=30), rows[i])
                        for i in range(n))
        return BundlePayload(1, T0, T0 + timedelta(days=1), MODEL, DIM, entries)

    env = keys.seal(big(fit))
    assert len(encode(env)) <= WatchlistBundleEnvelope.MAX_BYTES
    assert len(_open(keys, env).entries) == fit
    with pytest.raises(BundleTooLargeError, match="entries"):
        keys.seal(big(fit + 5))


# -- keys ---------------------------------------------------------------------------------------


def test_the_device_key_is_created_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "bundle.key"
    key = load_or_create_device_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_b64(load_or_create_device_key(path)) == public_key_b64(key)
    assert x25519_public_from_b64(public_key_b64(key)).public_bytes_raw() == (
        key.public_key().public_bytes_raw())
    assert not [p for p in path.parent.iterdir() if p.name != "bundle.key"]  # no temp left


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bundle.key"
    load_or_create_device_key(path)
    path.chmod(0o640)
    with pytest.raises(BundleKeyError, match="chmod 600"):
        load_or_create_device_key(path)


def test_a_key_file_of_the_wrong_kind_or_garbage_is_refused(tmp_path: Path) -> None:
    signing = tmp_path / "signing.key"
    load_or_create_signing_key(signing)
    with pytest.raises(BundleKeyError, match="not an X25519"):
        load_or_create_device_key(signing)
    junk = tmp_path / "junk.key"
    junk.write_bytes(b"not a key")
    junk.chmod(0o600)
    with pytest.raises(BundleKeyError, match="PEM"):
        load_or_create_device_key(junk)


def test_hub_keys_are_pinned_by_the_id_of_their_public_key() -> None:
    signing = Ed25519PrivateKey.generate()
    raw = signing.public_key().public_bytes_raw()
    key_id = key_id_of(signing.public_key())
    assert key_id == hashlib.sha256(raw).hexdigest()[:16]
    pinned = load_hub_keys({key_id: ed25519_public_b64(signing)})
    assert pinned[key_id].public_bytes_raw() == raw
    other = ed25519_public_b64(Ed25519PrivateKey.generate())
    with pytest.raises(BundleKeyError, match="does not match"):
        load_hub_keys({key_id: other})
    with pytest.raises(BundleKeyError, match="base64"):
        load_hub_keys({key_id: "%%%"})
    with pytest.raises(BundleKeyError, match="32 bytes"):
        load_hub_keys({key_id: base64.b64encode(raw[:31]).decode()})


# -- the decoder against arbitrary bytes ----------------------------------------------------------

_VALID = encode_raw_payload(_header(payload(n=3)), _body(payload(n=3)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_are_refused_cleanly(data: bytes) -> None:
    with contextlib.suppress(MalformedPayloadError):
        decode_payload(data)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.integers(1, 255), st.integers(0, 40))
def test_a_damaged_plaintext_decodes_or_is_refused_cleanly(at: int, xor: int, cut: int) -> None:
    """Flip a byte anywhere and drop a tail: only MalformedPayloadError, and whatever decodes
    still holds unit, finite rows (the gallery's assumptions)."""
    data = bytearray(_VALID)
    data[at] ^= xor
    try:
        got = decode_payload(bytes(data[:len(data) - cut]))
    except MalformedPayloadError:
        return
    rows = got.embeddings()
    assert np.isfinite(rows).all()
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert len(set(got.entry_ids())) == len(got.entries) == rows.shape[0]


# -- bundles in parts ---------------------------------------------------------------------------


def _open_parts(keys: Keys, parts: list[WatchlistBundleEnvelope]) -> BundlePayload:
    plain = [open_part(p, site="s1", device="cam-1", device_key=keys.device,
                       hub_keys=keys.hub_keys, applied_version=0, now=T0 + timedelta(seconds=30),
                       max_age_s=MAX_AGE_S) for p in parts]
    return assemble_parts(parts, plain, MODEL)


def test_parts_join_to_the_payload_and_only_as_one_complete_sealing() -> None:
    keys = Keys()
    p = payload(version=2, n=40)
    parts = keys.seal_parts(p, part_bytes=4000)
    assert [(e.part, e.parts) for e in parts] == [(i, len(parts)) for i in range(len(parts))]
    assert len(parts) == 3
    assert np.array_equal(_open_parts(keys, parts).embeddings(),
                          _open(keys, keys.seal(p)).embeddings())
    # A part alone is not a bundle: open_bundle will not take it.
    assert _refusal(keys, parts[0]) == BundleRefusal.MALFORMED
    other = keys.seal_parts(p, part_bytes=4000)  # the same version sealed again
    for wrong in (parts[:2], [parts[1], parts[0], parts[2]], [parts[0], other[1], parts[2]]):
        with pytest.raises(BundleRefusedError) as info:
            _open_parts(keys, wrong)
        assert info.value.reason == BundleRefusal.PART_MISMATCH
    with pytest.raises(BundleTooLargeError, match="parts"):
        keys.seal_parts(p, part_bytes=1000, max_parts=4)


def test_a_future_dated_envelope_is_refused_beyond_the_skew() -> None:
    keys = Keys()
    now = T0 + timedelta(seconds=30)
    env = keys.seal(payload(version=1, issued_at=now + timedelta(seconds=121)))
    assert _refusal(keys, env) == BundleRefusal.FUTURE
    assert len(_open(keys, env, max_skew_s=130).entries) == 3
