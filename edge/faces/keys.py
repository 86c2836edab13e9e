"""Keys of watchlist bundles: the device's X25519 key (bundles are encrypted for it) and the
hub's Ed25519 signing keys the device pins by key id.

- The device key lives in a PEM (PKCS #8) file created on first start, mode 0600, atomically: it
  appears under its name only once complete, and a second process starting at the same moment
  uses the first one's key instead of writing its own. A key file that group or others can read
  is refused (the key decrypts every bundle sent to this device).
- A hub key id is the first 16 hex characters of SHA-256 over the raw 32-byte Ed25519 public
  key. The edge config maps key ids to base64 public keys; :func:`load_hub_keys` checks each id
  matches its key, so a key pasted under the wrong id is caught at start, not at the first bundle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from edge.errors import GridwardError
from edge.secret_files import write_new_secret

KEY_BYTES = 32
KEY_ID_HEX = 16


class BundleKeyError(GridwardError, ValueError):
    """A key file or a pinned key that cannot be used; the message says what to fix."""


def b64_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _raw_from_b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BundleKeyError(f"{what} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise BundleKeyError(f"{what} must be {KEY_BYTES} bytes (base64 of 44 characters), "
                             f"not {len(raw)}")
    return raw


def _raw_public(key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# -- the device's X25519 key ------------------------------------------------------------------


def public_key_b64(key: X25519PrivateKey | X25519PublicKey) -> str:
    """Base64 of the raw 32-byte X25519 public key (``DeviceState.bundle_key_b64``)."""
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return b64_key(_raw_public(public))


def x25519_public_from_b64(text: str) -> X25519PublicKey:
    """The device public key a hub read from ``DeviceState.bundle_key_b64``."""
    return X25519PublicKey.from_public_bytes(_raw_from_b64(text, "the device bundle key"))


def load_or_create_device_key(path: Path) -> X25519PrivateKey:
    """This device's bundle key, created (0600) if the file does not exist yet."""
    key = _load_or_create(path, X25519PrivateKey.generate)
    if not isinstance(key, X25519PrivateKey):
        raise BundleKeyError(f"{path}: holds a {type(key).__name__}, not an X25519 key")
    return key


# -- the hub's Ed25519 signing keys -----------------------------------------------------------


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The hub's bundle signing key, created (0600) if the file does not exist yet."""
    key = _load_or_create(path, Ed25519PrivateKey.generate)
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleKeyError(f"{path}: holds a {type(key).__name__}, not an Ed25519 key")
    return key


def ed25519_public_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return b64_key(_raw_public(public))


def ed25519_public_from_b64(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_raw_from_b64(text, "a hub signing key"))


def key_id_of(public_key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The id a bundle names its signing key by (first 16 hex of SHA-256 of the raw key)."""
    public = (public_key.public_key() if isinstance(public_key, Ed25519PrivateKey)
              else public_key)
    return hashlib.sha256(_raw_public(public)).hexdigest()[:KEY_ID_HEX]


def load_hub_keys(mapping: Mapping[str, str]) -> dict[str, Ed25519PublicKey]:
    """Pinned hub keys by id from ``{key_id: base64 public key}``; refuses a mismatched id."""
    keys: dict[str, Ed25519PublicKey] = {}
    for key_id, text in mapping.items():
        key = ed25519_public_from_b64(text)
        actual = key_id_of(key)
        if actual != key_id:
            raise BundleKeyError(
                f"hub key {key_id!r} does not match its public key (whose id is {actual!r}): "
                "copy both from `gridward hub watchlist-key`")
        keys[key_id] = key
    return keys


# -- key files --------------------------------------------------------------------------------


def check_private_file(path: Path) -> None:
    """Refuse a secret file that group or others may read or write."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BundleKeyError(f"{path}: this key file is open to others (mode "
                             f"{stat.S_IMODE(mode):o}); run: chmod 600 {path}")


def _load_or_create(path: Path, generate: Callable[[], X25519PrivateKey | Ed25519PrivateKey]
                    ) -> PrivateKeyTypes:
    if not path.exists():
        pem = generate().private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
        write_new_secret(path, pem, 0o600)
    check_private_file(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise BundleKeyError(f"{path}: not a PEM private key ({err})") from None
    return key
