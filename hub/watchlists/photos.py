"""Enrolment photos: sniffed, bounded, and encrypted at rest (AES-256-GCM).

The key is 32 random bytes in a 0600 file among the hub's secrets (created on first use, never
in the database, never logged); its id (a digest prefix) is stored with every photo so a
rotated key is named, not guessed. The photo's entry id is the associated data: a ciphertext
copied onto another entry's row does not decrypt. The plaintext lives only in memory: it is
decrypted for one audited view and handed to the caller, never written to a file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image, UnidentifiedImageError

from hub.audit.keys import AuditKeyError, check_private, write_new_secret
from hub.errors import Invalid, TooLarge, Unavailable, Unsupported

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE_NAME = "watchlist-photos.key"
log = logging.getLogger(__name__)
JPEG = "image/jpeg"
PNG = "image/png"
_MAGIC = ((b"\xff\xd8\xff", JPEG), (b"\x89PNG\r\n\x1a\n", PNG))
# What a browser or curl may call the same two formats.
_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "image/x-png": PNG}


class PhotoTooLarge(TooLarge):
    code = "photo.too_large"


class PhotoWrongType(Unsupported):
    code = "photo.unsupported_type"


class PhotoUnreadable(Invalid):
    code = "quality.unreadable_image"


class PhotoKeyUnavailable(Unavailable):
    code = "photo.key_unavailable"


@dataclass(frozen=True, slots=True)
class CheckedPhoto:
    data: bytes
    content_type: str  # JPEG or PNG, from the bytes
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    return None


def check_photo(
    data: bytes, declared_type: str | None, *, max_bytes: int, max_pixels: int
) -> CheckedPhoto:
    """``data`` if it is a JPEG or PNG within the limits, by its bytes and its header.

    The pixel count is read from the header before anything is decoded, so a small PNG that
    inflates to gigabytes (a decompression bomb) is refused without being inflated."""
    if len(data) > max_bytes:
        raise PhotoTooLarge(f"the photo is over the limit of {max_bytes} bytes")
    if not data:
        raise PhotoUnreadable("the photo part is empty: send a JPEG or PNG portrait")
    content_type = sniff(data)
    if content_type is None:
        raise PhotoWrongType("the photo is not a JPEG or PNG image (by its content)")
    declared = (declared_type or "").split(";")[0].strip().lower()
    declared = _ALIASES.get(declared, declared)
    if declared not in ("", "application/octet-stream", content_type):
        raise PhotoWrongType(
            f"the photo was sent as {declared[:40]!r} but its content is {content_type}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise PhotoUnreadable("the photo cannot be read as an image (truncated?)") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise PhotoTooLarge(f"the photo has too many pixels (at most {max_pixels})") from err
    if width <= 0 or height <= 0 or width * height > max_pixels:
        raise PhotoTooLarge(
            f"the photo is {width}x{height} pixels; at most {max_pixels} pixels are accepted"
        )
    return CheckedPhoto(data, content_type, width, height)


@dataclass(frozen=True, slots=True)
class SealedPhoto:
    key_id: str
    nonce: bytes
    ciphertext: bytes


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(b"gridward watchlist photo key\x00" + key).hexdigest()[:16]


class PhotoVault:
    """Encrypts and decrypts enrolment photos with the key file's key (loaded on first use:
    a hub that never sees an enrolment never creates the file)."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def _load(self) -> bytes:
        with self._lock:
            if self._key is None:
                try:
                    if not self.key_file.exists():
                        write_new_secret(
                            self.key_file,
                            (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"),
                            0o600,
                        )
                    check_private(self.key_file)
                    key = bytes.fromhex(self.key_file.read_text(encoding="ascii").strip())
                except (OSError, ValueError, AuditKeyError) as err:
                    # The traceback names the file and the cause; never the key.
                    log.exception("watchlist photo key %s cannot be used", self.key_file)
                    raise PhotoKeyUnavailable(
                        "the watchlist photo key cannot be used: see the hub log"
                    ) from err
                if len(key) != KEY_BYTES:
                    raise PhotoKeyUnavailable(
                        f"{self.key_file.name} must hold {KEY_BYTES} bytes as hex"
                    )
                self._key = key
            return self._key

    @property
    def key_id(self) -> str:
        return key_id_of(self._load())

    def seal(self, entry_id: str, plaintext: bytes) -> SealedPhoto:
        key = self._load()
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(key).encrypt(nonce, plaintext, entry_id.encode())
        return SealedPhoto(key_id_of(key), nonce, ciphertext)

    def open(self, entry_id: str, sealed: SealedPhoto) -> bytes:
        key = self._load()
        if sealed.key_id != key_id_of(key):
            raise PhotoKeyUnavailable(
                f"this photo was encrypted with key {sealed.key_id}, which this hub does not hold"
            )
        try:
            return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, entry_id.encode())
        except InvalidTag as err:
            raise PhotoKeyUnavailable(
                "the stored photo does not decrypt (altered, or not this entry's)"
            ) from err
