"""Watchlist bundles: the hub seals one per device, the device opens it. Pure code, no I/O.

Plaintext (never photos; embeddings and entry ids only)::

    b"GWWB" | u8 format (1) | u32 LE header length | header (UTF-8 JSON)
            | count x i64 LE entry expiries | count x dim embedding matrix

The header is a JSON object: ``version``, ``issued_at``, ``expires_at`` (ISO 8601 UTC, the same
instants as the envelope's), ``model`` (embedder name, e.g. ``sface-2021dec``), ``dim``,
``count``, ``dtype`` (``float16`` or ``float32``) and ``ids``: the ``count`` entry ids joined by
newlines in one string (each unique, 1-64 characters of ``A-Za-z0-9_-``). The entry expiries
follow as UNIX seconds, floored (the edge drops an entry at the start of its expiry second,
never later), then ``count`` rows of ``dim`` little-endian values, each row L2-normalised.
Only the header is JSON: per-entry data are arrays, so a 100,000-entry bundle is checked with
a handful of vectorised passes rather than 100,000 Python objects.

float16 is the default: half the bytes of float32, so twice the entries fit in one MQTT
envelope, for a cosine error below 2e-4 on unit vectors of dimension 128 (bench/faces_search.py
measures it; thresholds sit near 0.3-0.4, same-person scores are 0.5 and more above
different-person ones).

Sealing (hub side):

1. X25519 between a fresh ephemeral key (``epk_b64``) and the device's public key.
2. HKDF-SHA256 over the shared secret, salt = ephemeral public || device public, info = a
   domain string and the site, device and bundle version: a key for exactly this bundle.
3. AES-256-GCM with a random 96-bit nonce; the additional data is the canonical encoding of the
   envelope header (every field but nonce, ciphertext and signature).
4. Ed25519 over a domain-separated canonical encoding of every envelope field but the signature
   (the ciphertext by the SHA-256 of its base64 text).

The canonical encoding is a sequence of (u16 LE name length, name, u32 LE value length, value)
for a fixed list of fields, values as their wire text (integers in decimal, datetimes as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``), so no JSON serialiser's choices can change what is signed.

A plaintext larger than one envelope carries is sealed in parts (:func:`seal_parts`): slices of
it, each sealed as above with ``part`` and ``parts`` in the additional data and the signature
and ``set_sha256`` (:func:`set_digest` over every part's ciphertext) in the signature; the edge
opens each (:func:`open_part`) and joins them (:func:`assemble_parts`). One that fits is one
envelope without those fields, the bytes of the format before parts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, overload

import numpy as np
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from numpy.typing import NDArray

from edge.errors import GridwardError
from edge.protocol import MAX_BUNDLE_PARTS, PROTOCOL_VERSION, WatchlistBundleEnvelope, encode
from edge.validators import check_segment, new_id, utcnow

MAGIC = b"GWWB"
FORMAT = 1
_PREFIX = struct.Struct("<4sBI")  # magic, format, header length
Dtype = Literal["float16", "float32"]
_DTYPES: dict[str, np.dtype[Any]] = {"float16": np.dtype("<f2"), "float32": np.dtype("<f4")}
_EXPIRY = np.dtype("<i8")

# Bounds an edge applies before it allocates anything (a signed bundle is still checked: a hub
# bug must not exhaust a camera box). The MQTT envelope limit is far lower (see
# entries_per_envelope); these bound bundles handed over by other means (a file, a benchmark).
MAX_ENTRIES = 200_000
MAX_DIM = 1024
MAX_PLAINTEXT_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 1024 + 65 * MAX_ENTRIES
MODEL_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_IDS_RE = re.compile(r"[A-Za-z0-9_-]{1,64}(?:\n[A-Za-z0-9_-]{1,64})*")
# A unit vector stored as float16 keeps its norm within ~2e-4; anything further off was not
# normalised by the hub (a bug or a forgery), and would skew every score.
NORM_TOLERANCE = 1e-2

NONCE_BYTES = 12
GCM_TAG_BYTES = 16
_SIG_DOMAIN = b"gridward/watchlist-bundle/signature/v1\x00"
_AAD_DOMAIN = b"gridward/watchlist-bundle/aad/v1\x00"
_HKDF_INFO = b"gridward/watchlist-bundle/key/v1\x00"

# Envelope capacity: ciphertext_b64 may hold this many characters (edge.protocol).
_MAX_CIPHERTEXT_B64 = 2_000_000
PART_PLAINTEXT_BYTES = _MAX_CIPHERTEXT_B64 // 4 * 3 - GCM_TAG_BYTES
"""The most plaintext one envelope carries; a larger bundle is sealed in parts of this size."""
DEFAULT_MAX_SKEW_S = 120.0


class BundleRefusal(StrEnum):
    """Why an edge refused a bundle; the value is the Reply's ``error`` and a health counter."""

    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_RECIPIENT = "wrong_recipient"
    REPLAYED = "replayed"
    STALE = "stale"
    EXPIRED = "expired"
    UNDECRYPTABLE = "undecryptable"
    MALFORMED = "malformed"
    WRONG_MODEL = "wrong_model"
    FUTURE = "future"
    # Bundles in parts (the edge's collection of one version's parts):
    TOO_MANY_PARTS = "too_many_parts"
    TOO_LARGE = "too_large"
    PART_MISMATCH = "part_mismatch"
    INCOMPLETE = "incomplete"


class BundleRefusedError(GridwardError, ValueError):
    """A bundle the edge will not apply; ``reason`` says which check failed."""

    def __init__(self, reason: BundleRefusal, message: str = "") -> None:
        super().__init__(message or reason.value)
        self.reason = reason


class BundleTooLargeError(GridwardError, ValueError):
    """The sealed bundle does not fit one MQTT envelope; the message says how many entries do."""


@dataclass(frozen=True, slots=True)
class BundleEntry:
    entry_id: str
    expires_at: datetime
    embedding: NDArray[np.float32]  # (dim,), L2-normalised


class DecodedEntries(Sequence[BundleEntry]):
    """The entries of a decoded bundle, made on access: a 100,000-entry bundle is three arrays
    until someone asks for entry objects (the gallery never does)."""

    __slots__ = ("expiries_s", "ids", "matrix")

    def __init__(self, ids: tuple[str, ...], expiries_s: NDArray[np.int64],
                 matrix: NDArray[np.float32]) -> None:
        self.ids = ids
        self.expiries_s = expiries_s
        self.matrix = matrix

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> BundleEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[BundleEntry]: ...

    def __getitem__(self, index: int | slice) -> BundleEntry | Sequence[BundleEntry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return BundleEntry(self.ids[index],
                           datetime.fromtimestamp(int(self.expiries_s[index]), UTC),
                           self.matrix[index])


@dataclass(frozen=True, slots=True, eq=False)
class BundlePayload:
    """What a bundle carries: embeddings and entry ids with their expiries, never photos."""

    version: int
    issued_at: datetime
    expires_at: datetime
    model: str
    dim: int
    entries: Sequence[BundleEntry]

    def embeddings(self) -> NDArray[np.float32]:
        """The entries' embeddings stacked (count, dim), float32."""
        if isinstance(self.entries, DecodedEntries):
            return self.entries.matrix
        if not self.entries:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([e.embedding for e in self.entries]).astype(np.float32, copy=False)

    def entry_ids(self) -> tuple[str, ...]:
        if isinstance(self.entries, DecodedEntries):
            return self.entries.ids
        return tuple(e.entry_id for e in self.entries)

    def expiries_s(self) -> NDArray[np.float64]:
        """Entry expiries as UNIX seconds, aligned with :meth:`embeddings`."""
        if isinstance(self.entries, DecodedEntries):
            return self.entries.expiries_s.astype(np.float64)
        return np.array([e.expires_at.timestamp() for e in self.entries], dtype=np.float64)


def payload_from_rows(
    rows: Iterable[tuple[str, datetime, bytes | NDArray[np.float32]]],
    *,
    version: int,
    issued_at: datetime,
    expires_at: datetime,
    model: str,
    dim: int,
) -> BundlePayload:
    """A payload from (entry id, expires_at, float32 embedding as bytes or array) rows, the
    shape the hub's watchlist repository returns; kept as arrays, as a decoded one is."""
    ids: list[str] = []
    expiries: list[int] = []
    vectors: list[NDArray[np.float32]] = []
    for entry_id, entry_expiry, embedding in rows:
        vector = (np.frombuffer(embedding, dtype="<f4") if isinstance(embedding, bytes | bytearray)
                  else np.asarray(embedding, dtype=np.float32))
        if vector.shape != (dim,):
            raise ValueError(f"entry {entry_id}: embedding of shape {vector.shape}, not ({dim},)")
        ids.append(entry_id)
        expiries.append(math.floor(entry_expiry.timestamp()))
        vectors.append(vector)
    matrix = (np.stack(vectors).astype(np.float32) if vectors
              else np.zeros((0, dim), dtype=np.float32))
    return BundlePayload(version, issued_at, expires_at, model, dim,
                         DecodedEntries(tuple(ids), np.array(expiries, dtype=np.int64), matrix))


# -- plaintext ----------------------------------------------------------------------------------


def wire_time(value: datetime) -> str:
    """The one text form of an instant in signed data and in the payload header."""
    if value.tzinfo is None:
        raise ValueError("bundle times must be timezone-aware (UTC)")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MalformedPayloadError(ValueError):
    """A plaintext that is not a well-formed bundle payload; the message names the problem."""


def _parse_time(text: object) -> datetime:
    if not isinstance(text, str):
        raise MalformedPayloadError("a time must be a string")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise MalformedPayloadError(f"{text[:40]!r} is not a bundle time") from None


def encode_payload(payload: BundlePayload, dtype: Dtype = "float16") -> bytes:
    """The plaintext of a bundle. Raises ValueError for a payload an edge would refuse."""
    matrix = payload.embeddings()
    count = len(payload.entries)
    if matrix.shape != (count, payload.dim):
        raise ValueError(f"embeddings are {matrix.shape}, expected ({count}, {payload.dim})")
    header = {
        "version": payload.version,
        "issued_at": wire_time(payload.issued_at),
        "expires_at": wire_time(payload.expires_at),
        "model": payload.model,
        "dim": payload.dim,
        "count": count,
        "dtype": dtype,
        "ids": "\n".join(payload.entry_ids()),
    }
    expiries = np.floor(payload.expiries_s()).astype("<i8")
    body = expiries.tobytes() + np.ascontiguousarray(matrix, dtype=_DTYPES[dtype]).tobytes()
    data = encode_raw_payload(header, body)
    decode_payload(data)  # the hub refuses to seal what every edge would refuse
    return data


def encode_raw_payload(header: Mapping[str, Any], body: bytes) -> bytes:
    """Frame a header and a body (expiries, matrix) as they are, unchecked (tests build
    hostile bundles with it)."""
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return _PREFIX.pack(MAGIC, FORMAT, len(text)) + text + body


def decode_payload(data: bytes) -> BundlePayload:
    """Parse and check a plaintext; :class:`MalformedPayloadError` with the first problem."""
    header, body = _split(data)
    version = _bounded_int(header, "version", 1, 2**31 - 1)
    dim = _bounded_int(header, "dim", 1, MAX_DIM)
    count = _bounded_int(header, "count", 0, MAX_ENTRIES)
    model, dtype_name = header.get("model"), header.get("dtype")
    if not isinstance(model, str) or not MODEL_RE.fullmatch(model):
        raise MalformedPayloadError("model must be a short lower-case name")
    if not isinstance(dtype_name, str) or dtype_name not in _DTYPES:
        raise MalformedPayloadError(f"dtype must be one of {sorted(_DTYPES)}")
    issued_at = _parse_time(header.get("issued_at"))
    expires_at = _parse_time(header.get("expires_at"))
    ids = _entry_ids(header, count)
    if len(body) != count * (_EXPIRY.itemsize + dim * _DTYPES[dtype_name].itemsize):
        raise MalformedPayloadError(
            f"body is {len(body)} bytes, expected {count} expiries and {count}x{dim} "
            f"{dtype_name}")
    expires = _expiries(body[:count * _EXPIRY.itemsize])
    matrix = _matrix(body[count * _EXPIRY.itemsize:], count, dim, dtype_name)
    return BundlePayload(version, issued_at, expires_at, model, dim,
                         DecodedEntries(ids, expires, matrix))


def _split(data: bytes) -> tuple[dict[str, Any], memoryview]:
    if len(data) > MAX_PLAINTEXT_BYTES:
        raise MalformedPayloadError(f"plaintext of {len(data)} bytes exceeds "
                                    f"{MAX_PLAINTEXT_BYTES}")
    if len(data) < _PREFIX.size:
        raise MalformedPayloadError("plaintext too short")
    magic, fmt, header_len = _PREFIX.unpack_from(data)
    if magic != MAGIC or fmt != FORMAT:
        raise MalformedPayloadError("not a gridward watchlist bundle of format 1")
    if header_len > MAX_HEADER_BYTES or _PREFIX.size + header_len > len(data):
        raise MalformedPayloadError(f"header length {header_len} out of bounds")
    try:
        header = json.loads(data[_PREFIX.size:_PREFIX.size + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MalformedPayloadError(f"header is not JSON: {err}") from None
    if not isinstance(header, dict):
        raise MalformedPayloadError("header is not an object")
    return header, memoryview(data)[_PREFIX.size + header_len:]  # no copy of megabytes


def _bounded_int(header: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = header.get(name)
    if type(value) is not int or not low <= value <= high:
        raise MalformedPayloadError(f"{name} must be an integer in [{low}, {high}]")
    return value


def _entry_ids(header: Mapping[str, Any], count: int) -> tuple[str, ...]:
    joined = header.get("ids")
    if not isinstance(joined, str):
        raise MalformedPayloadError("ids must be one string of newline-separated ids")
    if count == 0:
        if joined:
            raise MalformedPayloadError("count is 0 but there are ids")
        return ()
    # One regex pass over the whole string: no valid id contains a newline.
    if len(joined) > 65 * count or not _IDS_RE.fullmatch(joined):
        raise MalformedPayloadError("an entry id is not 1-64 characters of A-Za-z0-9_-")
    ids = tuple(joined.split("\n"))
    if len(ids) != count:
        raise MalformedPayloadError(f"count is {count} but there are {len(ids)} ids")
    if len(set(ids)) != count:
        raise MalformedPayloadError("entry ids are not unique")
    return ids


def _expiries(block: memoryview) -> NDArray[np.int64]:
    expires = np.frombuffer(block, dtype=_EXPIRY).astype(np.int64)
    if len(expires) and not (int(expires.min()) > 0 and int(expires.max()) < 2**33):
        raise MalformedPayloadError("an entry expiry is not a plausible UNIX time")
    return expires


def _matrix(body: memoryview, count: int, dim: int, dtype_name: str) -> NDArray[np.float32]:
    matrix = np.frombuffer(body, dtype=_DTYPES[dtype_name]).reshape(count, dim).astype(np.float32)
    if not np.isfinite(matrix).all():
        raise MalformedPayloadError("an embedding has a value that is not finite")
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    if count and float(np.abs(norms - 1.0).max()) > NORM_TOLERANCE:
        raise MalformedPayloadError("an embedding is not L2-normalised")
    matrix /= norms[:, None]  # exact unit rows again after float16 rounding
    matrix.flags.writeable = False
    return matrix


# -- sealing ------------------------------------------------------------------------------------


def _canonical(fields: Sequence[tuple[str, str]]) -> bytes:
    out = bytearray()
    for name, value in fields:
        n, v = name.encode("ascii"), value.encode("utf-8")
        out += struct.pack("<H", len(n)) + n + struct.pack("<I", len(v)) + v
    return bytes(out)


def _header_fields(env: Mapping[str, Any]) -> list[tuple[str, str]]:
    fields = [("v", str(env["v"])), ("id", env["id"]), ("ts", wire_time(env["ts"])),
              ("site", env["site"]), ("device", env["device"]),
              ("bundle_version", str(env["bundle_version"])),
              ("issued_at", wire_time(env["issued_at"])),
              ("expires_at", wire_time(env["expires_at"])),
              ("key_id", env["key_id"]), ("epk_b64", env["epk_b64"])]
    # Absent in a one-envelope bundle, so its bytes are those of the format before parts.
    if env.get("parts") is not None:
        fields += [("part", str(env["part"])), ("parts", str(env["parts"]))]
    return fields


def _aad(env: Mapping[str, Any]) -> bytes:
    return _AAD_DOMAIN + _canonical(_header_fields(env))


def _signed_bytes(env: Mapping[str, Any], ciphertext_ascii: bytes | None = None) -> bytes:
    # The ciphertext enters by its SHA-256: one pass over it, instead of copying megabytes
    # into the message Ed25519 hashes again.
    if ciphertext_ascii is None:
        ciphertext_ascii = env["ciphertext_b64"].encode("ascii")
    digest = hashlib.sha256(ciphertext_ascii).hexdigest()
    fields = [*_header_fields(env), ("nonce_b64", env["nonce_b64"]),
              ("ciphertext_sha256", digest)]
    if env.get("set_sha256") is not None:
        fields.append(("set_sha256", env["set_sha256"]))
    return _SIG_DOMAIN + _canonical(fields)


def set_digest(ciphertexts_b64: Iterable[str]) -> str:
    """``set_sha256`` of a bundle in parts: SHA-256 over each part's ciphertext SHA-256, in
    part order. Not over the plaintext: a digest of the embeddings stays off the wire."""
    h = hashlib.sha256()
    for text in ciphertexts_b64:
        h.update(hashlib.sha256(text.encode("ascii")).digest())
    return h.hexdigest()


def _bundle_key(shared: bytes, epk: bytes, recipient: bytes, *, site: str, device: str,
                version: int) -> bytes:
    info = _HKDF_INFO + _canonical([("site", site), ("device", device),
                                    ("bundle_version", str(version))])
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk + recipient,
                info=info).derive(shared)


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def entries_per_envelope(dim: int = 128, id_chars: int = 36, dtype: Dtype = "float16") -> int:
    """How many entries of ``dim`` with ids of ``id_chars`` fit one MQTT envelope."""
    fixed = _PREFIX.size + 400 + GCM_TAG_BYTES  # header keys, times, model: well under 400
    # Each id is followed by a newline, which JSON escapes as two characters.
    per_entry = dim * _DTYPES[dtype].itemsize + id_chars + 2 + _EXPIRY.itemsize
    return ((_MAX_CIPHERTEXT_B64 // 4) * 3 - fixed) // per_entry


def _encrypt(plaintext: bytes, *, version: int, issued_at: datetime, expires_at: datetime,
             site: str, device: str, recipient_key: X25519PublicKey, key_id: str,
             part: tuple[int, int] | None) -> dict[str, Any]:
    """The envelope fields of one sealed plaintext, unsigned."""
    check_segment(site, "site")
    check_segment(device, "device")
    ephemeral = X25519PrivateKey.generate()
    epk = _raw(ephemeral.public_key())
    key = _bundle_key(ephemeral.exchange(recipient_key), epk, _raw(recipient_key), site=site,
                      device=device, version=version)
    nonce = os.urandom(NONCE_BYTES)
    # The id, ts and v the envelope carries are signed too: fix them before signing.
    stamped: dict[str, Any] = {
        "v": PROTOCOL_VERSION, "id": new_id(), "ts": utcnow(),
        "site": site, "device": device, "bundle_version": version, "issued_at": issued_at,
        "expires_at": expires_at, "key_id": key_id, "epk_b64": _b64(epk),
        "nonce_b64": _b64(nonce),
    }
    if part is not None:
        stamped["part"], stamped["parts"] = part
    stamped["ciphertext_b64"] = _b64(AESGCM(key).encrypt(nonce, plaintext, _aad(stamped)))
    return stamped


def _signed_envelope(stamped: dict[str, Any], signing_key: Ed25519PrivateKey,
                     check_size: bool) -> WatchlistBundleEnvelope:
    stamped["signature_b64"] = _b64(signing_key.sign(_signed_bytes(stamped)))
    if not check_size:
        return WatchlistBundleEnvelope.model_construct(**stamped)
    envelope = WatchlistBundleEnvelope.model_validate(stamped)
    encode(envelope)  # the wire limit of the whole message, checked here rather than at publish
    return envelope


def seal_bytes(
    plaintext: bytes,
    *,
    version: int,
    issued_at: datetime,
    expires_at: datetime,
    site: str,
    device: str,
    recipient_key: X25519PublicKey,
    signing_key: Ed25519PrivateKey,
    key_id: str,
    check_size: bool = True,
) -> WatchlistBundleEnvelope:
    """Encrypt and sign a plaintext as it is (:func:`seal_bundle` checks it first; tests use
    this to sign hostile payloads). ``check_size=False`` skips the wire limit (benchmarks
    only: such an envelope cannot be sent)."""
    stamped = _encrypt(plaintext, version=version, issued_at=issued_at, expires_at=expires_at,
                       site=site, device=device, recipient_key=recipient_key, key_id=key_id,
                       part=None)
    if check_size and len(stamped["ciphertext_b64"]) > _MAX_CIPHERTEXT_B64:
        raise BundleTooLargeError(
            f"the sealed watchlist bundle is {len(plaintext) + GCM_TAG_BYTES} bytes, more than "
            f"one MQTT envelope carries ({_MAX_CIPHERTEXT_B64 // 4 * 3} bytes, about "
            f"{entries_per_envelope()} entries of 128 dimensions); seal it in parts")
    return _signed_envelope(stamped, signing_key, check_size)


def seal_parts(
    plaintext: bytes,
    *,
    version: int,
    issued_at: datetime,
    expires_at: datetime,
    site: str,
    device: str,
    recipient_key: X25519PublicKey,
    signing_key: Ed25519PrivateKey,
    key_id: str,
    part_bytes: int = PART_PLAINTEXT_BYTES,
    max_parts: int = MAX_BUNDLE_PARTS,
) -> list[WatchlistBundleEnvelope]:
    """A plaintext as one envelope when it fits ``part_bytes`` (the format without parts,
    byte for byte), else as consecutive slices of ``part_bytes``, each its own envelope (own
    key agreement, nonce and id) signed over its index, the count and :func:`set_digest`.
    Raises :class:`BundleTooLargeError` above ``max_parts`` parts."""
    if not 1 <= part_bytes <= PART_PLAINTEXT_BYTES:
        raise ValueError(f"part_bytes must be in [1, {PART_PLAINTEXT_BYTES}]")
    common: dict[str, Any] = {"version": version, "issued_at": issued_at,
                              "expires_at": expires_at, "site": site, "device": device,
                              "recipient_key": recipient_key, "key_id": key_id}
    if len(plaintext) <= part_bytes:
        return [_signed_envelope(_encrypt(plaintext, **common, part=None), signing_key, True)]
    count = -(-len(plaintext) // part_bytes)
    if count > min(max_parts, MAX_BUNDLE_PARTS):
        raise BundleTooLargeError(
            f"the watchlist bundle is {len(plaintext)} bytes: {count} parts of {part_bytes} "
            f"bytes, more than the {min(max_parts, MAX_BUNDLE_PARTS)} allowed")
    view = memoryview(plaintext)
    stamped = [_encrypt(bytes(view[i * part_bytes:(i + 1) * part_bytes]), **common,
                        part=(i, count)) for i in range(count)]
    digest = set_digest(s["ciphertext_b64"] for s in stamped)
    for fields in stamped:
        fields["set_sha256"] = digest
    return [_signed_envelope(fields, signing_key, True) for fields in stamped]


def seal_bundle(
    payload: BundlePayload,
    *,
    site: str,
    device: str,
    recipient_key: X25519PublicKey,
    signing_key: Ed25519PrivateKey,
    key_id: str,
    dtype: Dtype = "float16",
    check_size: bool = True,
) -> WatchlistBundleEnvelope:
    """The envelope of ``payload`` for one device (hub side). Raises :class:`BundleTooLargeError`
    when it does not fit one MQTT message, ValueError for a payload an edge would refuse."""
    return seal_bytes(encode_payload(payload, dtype), version=payload.version,
                      issued_at=payload.issued_at, expires_at=payload.expires_at, site=site,
                      device=device, recipient_key=recipient_key, signing_key=signing_key,
                      key_id=key_id, check_size=check_size)


def seal_bundle_parts(
    payload: BundlePayload,
    *,
    site: str,
    device: str,
    recipient_key: X25519PublicKey,
    signing_key: Ed25519PrivateKey,
    key_id: str,
    dtype: Dtype = "float16",
    part_bytes: int = PART_PLAINTEXT_BYTES,
    max_parts: int = MAX_BUNDLE_PARTS,
) -> list[WatchlistBundleEnvelope]:
    """The envelopes of ``payload`` for one device: one when it fits, else parts
    (:func:`seal_parts`)."""
    return seal_parts(encode_payload(payload, dtype), version=payload.version,
                      issued_at=payload.issued_at, expires_at=payload.expires_at, site=site,
                      device=device, recipient_key=recipient_key, signing_key=signing_key,
                      key_id=key_id, part_bytes=part_bytes, max_parts=max_parts)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str | bytes) -> bytes:
    return base64.b64decode(text, validate=True)


# -- opening ------------------------------------------------------------------------------------


def verify_signature(envelope: WatchlistBundleEnvelope,
                     hub_keys: Mapping[str, Ed25519PublicKey]) -> None:
    """Checks 1 and 2 of :func:`open_bundle`: a pinned key signed every field."""
    _verify(envelope, hub_keys, None)


def _verify(envelope: WatchlistBundleEnvelope, hub_keys: Mapping[str, Ed25519PublicKey],
            ciphertext_ascii: bytes | None) -> None:
    key = hub_keys.get(envelope.key_id)
    if key is None:
        raise BundleRefusedError(BundleRefusal.UNKNOWN_KEY,
                                 f"signed by key {envelope.key_id!r}, which is not pinned")
    try:
        signature = _unb64(envelope.signature_b64)
        key.verify(signature, _signed_bytes(dict(envelope), ciphertext_ascii))
    except (InvalidSignature, binascii.Error, ValueError):
        raise BundleRefusedError(BundleRefusal.BAD_SIGNATURE,
                                 "the signature does not verify") from None


def open_bundle(
    envelope: WatchlistBundleEnvelope,
    *,
    site: str,
    device: str,
    device_key: X25519PrivateKey,
    hub_keys: Mapping[str, Ed25519PublicKey],
    applied_version: int,
    now: datetime,
    max_age_s: float,
    model: str,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> BundlePayload:
    """Verify, decrypt and check a bundle for this device, in this order: key id pinned,
    signature, recipient, newer than ``applied_version``, not stale (issued more than
    ``max_age_s`` before ``now``), not future-dated (issued more than ``max_skew_s`` after
    ``now``), not expired, decryptable, well-formed, same model.
    Raises :class:`BundleRefusedError` with the first failed check."""
    if envelope.parts is not None:
        raise BundleRefusedError(BundleRefusal.MALFORMED,
                                 "a part of a bundle: collect every part first")
    plaintext = open_part(envelope, site=site, device=device, device_key=device_key,
                          hub_keys=hub_keys, applied_version=applied_version, now=now,
                          max_age_s=max_age_s, max_skew_s=max_skew_s)
    return check_plaintext(plaintext, envelope, model)


def check_envelope(
    envelope: WatchlistBundleEnvelope,
    *,
    site: str,
    device: str,
    hub_keys: Mapping[str, Ed25519PublicKey],
    applied_version: int,
    now: datetime,
    max_age_s: float,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> bytes:
    """Checks 1-7 of :func:`open_bundle` short of decryption, for one envelope or one part;
    the ciphertext as ASCII (encoded once: megabytes)."""
    try:
        ciphertext_ascii: bytes | None = envelope.ciphertext_b64.encode("ascii")
    except UnicodeEncodeError:
        ciphertext_ascii = None  # not base64, so not what the hub signed: check 2 says so
    _verify(envelope, hub_keys, ciphertext_ascii)
    if ciphertext_ascii is None:  # _verify refused it already; this narrows the type
        raise BundleRefusedError(BundleRefusal.BAD_SIGNATURE, "the ciphertext is not base64")
    if (envelope.site, envelope.device) != (site, device):
        raise BundleRefusedError(BundleRefusal.WRONG_RECIPIENT,
                                 f"sealed for {envelope.site}/{envelope.device}")
    if envelope.bundle_version <= applied_version:
        raise BundleRefusedError(BundleRefusal.REPLAYED,
                                 f"version {envelope.bundle_version} is not newer than "
                                 f"{applied_version}")
    age_s = (now - envelope.issued_at).total_seconds()
    if age_s > max_age_s:
        raise BundleRefusedError(BundleRefusal.STALE, f"issued {age_s:.0f} s ago")
    if -age_s > max_skew_s:
        # A hub clock running ahead, or a bundle made to outlive its window: refused, or it
        # would stay "fresh" for max_age_s plus however far ahead it claims to be.
        raise BundleRefusedError(BundleRefusal.FUTURE, f"issued {-age_s:.0f} s in the future")
    if envelope.expires_at <= now:
        raise BundleRefusedError(BundleRefusal.EXPIRED, "expired")
    return ciphertext_ascii


def open_part(
    envelope: WatchlistBundleEnvelope,
    *,
    site: str,
    device: str,
    device_key: X25519PrivateKey,
    hub_keys: Mapping[str, Ed25519PublicKey],
    applied_version: int,
    now: datetime,
    max_age_s: float,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
) -> bytes:
    """Checks 1-8 of one envelope (a whole bundle or one part): its decrypted plaintext."""
    ciphertext_ascii = check_envelope(envelope, site=site, device=device, hub_keys=hub_keys,
                                      applied_version=applied_version, now=now,
                                      max_age_s=max_age_s, max_skew_s=max_skew_s)
    return decrypt_envelope(envelope, device_key, ciphertext_ascii)


def assemble_parts(parts: Sequence[WatchlistBundleEnvelope], plaintexts: Sequence[bytes],
                   model: str) -> BundlePayload:
    """The payload of a complete set of parts, each already opened (:func:`open_part`), in
    part order: same version, count and set digest in every part, the digest over their
    ciphertexts, then the payload checks of :func:`open_bundle`."""
    first = parts[0]
    if (len(parts) != len(plaintexts) or first.parts != len(parts)
            or [p.part for p in parts] != list(range(len(parts)))
            or any((p.bundle_version, p.parts, p.set_sha256, p.issued_at, p.expires_at)
                   != (first.bundle_version, first.parts, first.set_sha256, first.issued_at,
                       first.expires_at) for p in parts)):
        raise BundleRefusedError(BundleRefusal.PART_MISMATCH,
                                 "the parts are not one complete sealing")
    if set_digest(p.ciphertext_b64 for p in parts) != first.set_sha256:
        raise BundleRefusedError(BundleRefusal.PART_MISMATCH,
                                 "the parts' ciphertexts are not those of their set digest")
    total = sum(len(p) for p in plaintexts)
    if total > MAX_PLAINTEXT_BYTES:
        raise BundleRefusedError(BundleRefusal.TOO_LARGE, f"{total} bytes of plaintext")
    return check_plaintext(b"".join(plaintexts), first, model)


def check_plaintext(plaintext: bytes, envelope: WatchlistBundleEnvelope,
                    model: str) -> BundlePayload:
    """Checks 9 and 10 of :func:`open_bundle`: well-formed, matching the envelope, same model."""
    try:
        payload = decode_payload(plaintext)
    except ValueError as err:
        raise BundleRefusedError(BundleRefusal.MALFORMED, str(err)) from None
    if (payload.version, payload.issued_at, payload.expires_at) != (
            envelope.bundle_version, envelope.issued_at, envelope.expires_at):
        raise BundleRefusedError(BundleRefusal.MALFORMED,
                                 "the payload's version or validity differs from the envelope's")
    if payload.model != model:
        raise BundleRefusedError(BundleRefusal.WRONG_MODEL,
                                 f"embeddings of {payload.model!r}, this edge runs {model!r}")
    return payload


def decrypt_envelope(envelope: WatchlistBundleEnvelope, device_key: X25519PrivateKey,
                     ciphertext_ascii: bytes) -> bytes:
    """Check 8: the plaintext of an envelope :func:`check_envelope` passed."""
    try:
        epk = _unb64(envelope.epk_b64)
        nonce = _unb64(envelope.nonce_b64)
        ciphertext = _unb64(ciphertext_ascii)
        if len(nonce) != NONCE_BYTES:
            raise InvalidTag  # noqa: TRY301 - one refusal for every way decryption cannot work
        # An all-zero shared secret (a low-order ephemeral key) raises ValueError here.
        shared = device_key.exchange(X25519PublicKey.from_public_bytes(epk))
        key = _bundle_key(shared, epk, _raw(device_key.public_key()), site=envelope.site,
                          device=envelope.device, version=envelope.bundle_version)
        return AESGCM(key).decrypt(nonce, ciphertext, _aad(dict(envelope)))
    except (InvalidTag, binascii.Error, ValueError):
        raise BundleRefusedError(BundleRefusal.UNDECRYPTABLE,
                                 "not encrypted for this device's key") from None
