"""Secret files (private keys) created once, atomically, and never half-written.

Shared by the edge (the device's watchlist bundle key) and the hub (audit and signing keys).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_new_secret(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data`` unless it exists; readers never see a half-written file
    because it appears under its name (a hard link) only once complete and synced. If another
    process (hub, CLI, a second agent) linked its file first, that one stays."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
