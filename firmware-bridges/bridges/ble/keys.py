"""Per-band keys provisioned by the hub, and their loader.

Format (a keys file, or the same text in an environment variable), one key per line::

    # band id (decimal or 0x hex)   key (hex, 16 or 32 bytes)
    0x00001001  8f1c...e2

A band may have several lines: the first is its current key, later ones are accepted during a
key rotation. Key bytes never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

KEY_LENGTHS = (16, 32)
ENV_KEYS = "GRIDWARD_BAND_KEYS"
ENV_KEYS_FILE = "GRIDWARD_BAND_KEYS_FILE"


class KeyFileError(ValueError):
    """A keys file that cannot be used; says which line (never the key)."""


@dataclass(frozen=True, slots=True)
class BandKey:
    band_id: int
    secret: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"BandKey(band_id=0x{self.band_id:08x}, secret=<{len(self.secret)} bytes>)"


def parse_band_id(text: str) -> int:
    value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    if not 0 <= value <= 0xFFFF_FFFF:
        raise ValueError("band id is not a uint32")
    return value


def parse_keys(text: str, source: str = "<keys>") -> dict[int, tuple[bytes, ...]]:
    """``{band id: (current key, older keys...)}``; entries may be split by newlines or commas."""
    keys: dict[int, list[bytes]] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        for entry in raw.split(","):
            line = entry.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise KeyFileError(f"{source}:{lineno}: expected '<band id> <hex key>'")
            try:
                band_id = parse_band_id(parts[0])
            except ValueError as err:
                raise KeyFileError(f"{source}:{lineno}: bad band id {parts[0]!r}") from err
            try:
                secret = bytes.fromhex(parts[1])
            except ValueError:
                # `from None`: the offending text is key material and must not be chained.
                raise KeyFileError(f"{source}:{lineno}: key is not hex") from None
            if len(secret) not in KEY_LENGTHS:
                raise KeyFileError(
                    f"{source}:{lineno}: key is {len(secret)} bytes; use 16 or 32"
                )
            keys.setdefault(band_id, []).append(secret)
    return {band: tuple(secrets) for band, secrets in keys.items()}


def load_keys(path: Path | None = None,
              environ: Mapping[str, str] | None = None) -> dict[int, tuple[bytes, ...]]:
    """Keys from ``path``, else from ``$GRIDWARD_BAND_KEYS_FILE``, else ``$GRIDWARD_BAND_KEYS``.

    A keys file readable by group or others is refused: anyone who reads it can clone bands.
    """
    env = os.environ if environ is None else environ
    if path is None and env.get(ENV_KEYS_FILE):
        path = Path(env[ENV_KEYS_FILE])
    if path is not None:
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyFileError(
                    f"{path}: keys file is accessible by group/others; run chmod 600 {path}"
                )
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise KeyFileError(f"cannot read keys file {path}: {err.strerror}") from err
        return parse_keys(text, str(path))
    if env.get(ENV_KEYS):
        return parse_keys(env[ENV_KEYS], f"${ENV_KEYS}")
    raise KeyFileError(f"no band keys: set keys_file, ${ENV_KEYS_FILE} or ${ENV_KEYS}")


def format_keys(keys: Mapping[int, tuple[bytes, ...]]) -> str:
    """The keys-file text for ``keys`` (what the hub's provisioning writes)."""
    lines = ["# band id    key (hex); first line per band = current key"]
    for band_id, secrets in sorted(keys.items()):
        lines.extend(f"0x{band_id:08x}  {s.hex()}" for s in secrets)
    return "\n".join(lines) + "\n"
