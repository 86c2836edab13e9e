"""Band key rotation over GATT (sans-IO): the frame the gateway writes to the band's key-rotation
characteristic, and the band's confirmation.

The new key travels encrypted and authenticated under the band's current key (encrypt-then-MAC,
both from HMAC-SHA256 with distinct labels, so the band needs nothing beyond the HMAC it already
has for its adverts). All integers are big-endian::

    off  size  field
    0    1     version (1)
    1    4     band id (uint32): a frame for another band is refused
    5    4     key epoch (uint32): must be above the band's current epoch (kept in flash);
               an old frame replayed is refused even before its MAC is checked
    9    1     new key length: 16 or 32
    10   n     new key XOR HMAC-SHA256(old key, "gridward-rot-enc" || bytes 0..9)[:n]
    10+n 16    MAC = HMAC-SHA256(old key, "gridward-rot-mac" || bytes 0..10+n)[:16]

After installing the key the band answers reads of the characteristic with its state::

    0    4     key epoch (uint32)
    4    16    proof = HMAC-SHA256(new key, "gridward-rot-ack" || band id || epoch)[:16]
               (all zero before any rotation)

so the gateway knows the band holds the new key before it drops the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field

VERSION = 1
MAC_LEN = 16
PROOF_LEN = 16
KEY_LENGTHS = (16, 32)
_HEADER = struct.Struct(">BIIB")
_STATE = struct.Struct(">I")
MAX_EPOCH = 0xFFFF_FFFF
STATE_LEN = _STATE.size + PROOF_LEN

# The gridward band GATT service (custom 128-bit UUIDs; see docs/wristband.md).
BAND_SERVICE_UUID = "6a0f0000-7c1d-4b6e-9d9e-3f2a5c0b7e10"
KEY_ROTATION_CHAR_UUID = "6a0f0001-7c1d-4b6e-9d9e-3f2a5c0b7e10"
BATTERY_SERVICE_UUID16 = 0x180F
BATTERY_LEVEL_CHAR_UUID16 = 0x2A19


class RotationError(ValueError):
    """A rotation frame the band must refuse. ``reason`` is a short counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rotation:
    band_id: int
    epoch: int
    new_key: bytes = field(repr=False)


def _stream(old_key: bytes, header: bytes, n: int) -> bytes:
    return hmac.new(old_key, b"gridward-rot-enc" + header, hashlib.sha256).digest()[:n]


def _mac(old_key: bytes, body: bytes) -> bytes:
    return hmac.new(old_key, b"gridward-rot-mac" + body, hashlib.sha256).digest()[:MAC_LEN]


def encode_rotation(rotation: Rotation, old_key: bytes) -> bytes:
    """The frame the gateway writes to install ``rotation.new_key`` on a band holding
    ``old_key``."""
    n = len(rotation.new_key)
    if n not in KEY_LENGTHS:
        raise RotationError("bad_key_length", f"a band key is 16 or 32 bytes, not {n}")
    if not 0 <= rotation.band_id <= 0xFFFF_FFFF:
        raise RotationError("bad_band_id", "band id is not a uint32")
    if not 1 <= rotation.epoch <= MAX_EPOCH:
        raise RotationError("bad_epoch", "epoch is 1..2^32-1")
    header = _HEADER.pack(VERSION, rotation.band_id, rotation.epoch, n)
    cipher = bytes(a ^ b for a, b in zip(rotation.new_key, _stream(old_key, header, n),
                                         strict=True))
    body = header + cipher
    return body + _mac(old_key, body)


def decode_rotation(frame: bytes, *, band_id: int, current_epoch: int,
                    keys: tuple[bytes, ...]) -> Rotation:
    """What a band does with a written frame. ``keys`` are the keys the band may be addressed
    under (its current key). Only ever raises :class:`RotationError`."""
    frame = bytes(frame)
    if len(frame) < _HEADER.size:
        raise RotationError("short", "rotation frame is too short")
    version, target, epoch, n = _HEADER.unpack_from(frame, 0)
    if version != VERSION:
        raise RotationError("bad_version", f"rotation version {version}; the band reads v1")
    if n not in KEY_LENGTHS or len(frame) != _HEADER.size + n + MAC_LEN:
        raise RotationError("bad_length", "rotation frame length does not match its key length")
    if target != band_id:
        raise RotationError("wrong_band", "rotation frame is for another band")
    if epoch <= current_epoch:
        raise RotationError("replayed", "rotation epoch is not above the band's current epoch")
    body, mac = frame[:-MAC_LEN], frame[-MAC_LEN:]
    for key in keys:
        if hmac.compare_digest(_mac(key, body), mac):
            header = body[: _HEADER.size]
            cipher = body[_HEADER.size :]
            new_key = bytes(a ^ b for a, b in zip(cipher, _stream(key, header, n), strict=True))
            return Rotation(target, epoch, new_key)
    raise RotationError("forged", "rotation frame MAC does not verify under the band's key")


def rotation_proof(new_key: bytes, band_id: int, epoch: int) -> bytes:
    msg = b"gridward-rot-ack" + struct.pack(">II", band_id, epoch)
    return hmac.new(new_key, msg, hashlib.sha256).digest()[:PROOF_LEN]


def encode_state(band_id: int, epoch: int, key: bytes | None) -> bytes:
    """The band's answer to a read: epoch and proof of holding the key installed at it."""
    proof = bytes(PROOF_LEN) if key is None or epoch == 0 else rotation_proof(key, band_id, epoch)
    return _STATE.pack(epoch) + proof


def decode_state(data: bytes) -> tuple[int, bytes]:
    data = bytes(data)
    if len(data) != STATE_LEN:
        raise RotationError("bad_length", f"key state is {len(data)} bytes, not {STATE_LEN}")
    (epoch,) = _STATE.unpack_from(data, 0)
    return epoch, data[_STATE.size :]


def confirms(state: bytes, rotation: Rotation) -> bool:
    """True when the band's state read back proves it installed ``rotation``."""
    try:
        epoch, proof = decode_state(state)
    except RotationError:
        return False
    return epoch == rotation.epoch and hmac.compare_digest(
        proof, rotation_proof(rotation.new_key, rotation.band_id, rotation.epoch))
