"""The audit HMAC key: from an environment variable or a 0600 key file, never from the database
and never logged. A missing key file is created on first start."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from edge.secret_files import write_new_secret
from hub.audit.chain import KEY_BYTES

__all__ = ["AuditKeyError", "check_private", "load_existing_key", "load_or_create_key",
           "parse_key", "write_new_secret"]


class AuditKeyError(Exception):
    """The audit key cannot be used as configured (bad format, loose permissions)."""


def parse_key(text: str, source: str) -> bytes:
    value = text.strip()
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise AuditKeyError(f"{source}: the audit key must be hex") from None
    if len(key) < KEY_BYTES:
        raise AuditKeyError(f"{source}: the audit key must be at least {KEY_BYTES} bytes")
    return key


def check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(
            f"{path}: this secret key file is readable by others "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )


def load_or_create_key(key_file: Path | None, env_name: str | None) -> bytes | None:
    """The key from ``env_name`` if set there, else from ``key_file`` (created if missing);
    None when neither is configured."""
    if env_name and os.environ.get(env_name):
        return parse_key(os.environ[env_name], f"${env_name}")
    if key_file is None:
        return None
    if not key_file.exists():
        write_new_secret(key_file, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"), 0o600)
    check_private(key_file)
    return parse_key(key_file.read_text(encoding="ascii"), str(key_file))


def load_existing_key(key_file: Path | None, env_name: str | None) -> bytes | None:
    """Like :func:`load_or_create_key` but never creates a key (for verifiers)."""
    if env_name and os.environ.get(env_name):
        return parse_key(os.environ[env_name], f"${env_name}")
    if key_file is None or not key_file.exists():
        return None
    check_private(key_file)
    return parse_key(key_file.read_text(encoding="ascii"), str(key_file))
