"""The hub's watchlist bundle signing key: Ed25519, PKCS#8 PEM, mode 0600, created on first
start in the hub's secrets directory (the audit directory unless configured). Edges pin its
public key by key id (``hub_keys`` in their watchlist config); ``gridward hub watchlist-key``
prints both for the installer."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.faces.keys import ed25519_public_b64, key_id_of
from hub.audit.keys import AuditKeyError, check_private, write_new_secret
from hub.audit.service import AuditPaths
from hub.config import HubConfig

FILE_NAME = "watchlist-signing.key"


class SigningKeyError(Exception):
    """The signing key file cannot be used (unreadable, not an Ed25519 key, loose mode)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: Ed25519PrivateKey
    key_id: str
    public_key_b64: str
    path: Path


def key_path(config: HubConfig) -> Path:
    if config.bundles.signing_key_file is not None:
        return config.bundles.signing_key_file
    paths = AuditPaths.resolve(config.audit, config.resolved_database_url(), config.audit_head_file)
    return paths.key_file.parent / FILE_NAME


def load_or_create(path: Path) -> SigningKey:
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Two replicas starting together on a shared directory: the first link wins, both
        # then read the same key.
        write_new_secret(path, pem, 0o600)
    try:
        check_private(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, AuditKeyError) as err:
        raise SigningKeyError(f"{path}: cannot load the watchlist signing key: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: not an Ed25519 private key")
    public = key.public_key()
    return SigningKey(key, key_id_of(public), ed25519_public_b64(public), path)


class LazySigningKey:
    """Loaded (or created) on first use, once, thread-safe: building a hub context for a test
    or a CLI command that never signs creates no key file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: SigningKey | None = None
        self._lock = threading.Lock()

    def get(self) -> SigningKey:
        with self._lock:
            if self._key is None:
                self._key = load_or_create(self.path)
            return self._key
