"""Photo checks and the photo vault, pure: sniffing, header-only bomb refusal, AES-256-GCM
bound to the entry id, the 0600 key file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.errors import Invalid, TooLarge, Unavailable, Unsupported
from hub.watchlists.photos import PNG, PhotoVault, SealedPhoto, check_photo
from tests.hub.watchlists.conftest import as_png, photo, png_bomb

LIMITS = {"max_bytes": 5 * 1024 * 1024, "max_pixels": 25_000_000}


def test_check_photo_sniffs_and_bounds() -> None:
    checked = check_photo(as_png(), "image/x-png", **LIMITS)
    assert checked.content_type == PNG and checked.width > 100
    assert check_photo(photo("obama"), None, **LIMITS).content_type == "image/jpeg"
    with pytest.raises(Unsupported):
        check_photo(photo("obama"), "text/html", **LIMITS)
    with pytest.raises(Unsupported):
        check_photo(b"BM\x00\x00 a bitmap", "image/jpeg", **LIMITS)
    with pytest.raises(Invalid) as truncated:
        check_photo(b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", **LIMITS)
    assert truncated.value.code == "quality.unreadable_image"
    with pytest.raises(TooLarge):
        check_photo(b"\xff\xd8\xff" + b"\0" * 100, None, max_bytes=50, max_pixels=10**6)


def test_png_bomb_is_refused_from_its_header() -> None:
    bomb = png_bomb()
    assert len(bomb) < 100_000  # tens of kB that would decode to 108 MB of BGR
    with pytest.raises(TooLarge) as refused:
        check_photo(bomb, "image/png", **LIMITS)
    assert "pixels" in str(refused.value)


def test_vault_binds_ciphertext_to_its_entry_and_key(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "watchlist-photos.key"
    vault = PhotoVault(key_file)
    data = photo("obama")
    sealed = vault.seal("entry-a", data)
    assert data[:64] not in sealed.ciphertext and len(sealed.nonce) == 12
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert PhotoVault(key_file).open("entry-a", sealed) == data  # a restarted hub reads it
    with pytest.raises(Unavailable):  # copied onto another entry's row
        vault.open("entry-b", sealed)
    flipped = SealedPhoto(
        sealed.key_id, sealed.nonce, bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    )
    with pytest.raises(Unavailable):
        vault.open("entry-a", flipped)
    other = PhotoVault(tmp_path / "other.key")
    with pytest.raises(Unavailable) as wrong_key:
        other.open("entry-a", sealed)
    assert sealed.key_id in str(wrong_key.value)


def test_vault_refuses_a_key_file_others_can_read(tmp_path: Path) -> None:
    key_file = tmp_path / "watchlist-photos.key"
    key_file.write_text(os.urandom(32).hex())
    key_file.chmod(0o644)
    with pytest.raises(Unavailable):
        PhotoVault(key_file).seal("e", b"x")
