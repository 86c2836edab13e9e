"""The audit secrets: where they come from, how they are created, what is refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hub.audit.checkpoints import CheckpointKeyError, load_or_create_signing_key
from hub.audit.keys import AuditKeyError, load_existing_key, load_or_create_key


def test_key_file_is_created_once_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "audit-hmac.key"
    key = load_or_create_key(path, None)
    assert key is not None and len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(path, None) == key
    assert load_existing_key(path, None) == key


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "audit-hmac.key"
    keys: list[bytes | None] = []
    start = threading.Barrier(8)

    def first_start() -> None:
        start.wait()
        keys.append(load_or_create_key(path, None))

    threads = [threading.Thread(target=first_start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and keys[0] is not None
    assert [p.name for p in tmp_path.iterdir()] == ["audit-hmac.key"]  # no temp files left


def test_environment_wins_and_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_AUDIT_KEY", "ab" * 32)
    assert load_or_create_key(tmp_path / "k", "GW_TEST_AUDIT_KEY") == b"\xab" * 32
    assert not (tmp_path / "k").exists()  # no file written when the environment holds it
    monkeypatch.setenv("GW_TEST_AUDIT_KEY", "ab" * 8)
    with pytest.raises(AuditKeyError, match="at least 32 bytes"):
        load_or_create_key(None, "GW_TEST_AUDIT_KEY")
    monkeypatch.setenv("GW_TEST_AUDIT_KEY", "not hex at all")
    with pytest.raises(AuditKeyError, match="must be hex") as err:
        load_or_create_key(None, "GW_TEST_AUDIT_KEY")
    assert "not hex" not in str(err.value)  # the value itself is never echoed


def test_loose_or_garbage_key_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit-hmac.key"
    load_or_create_key(path, None)
    path.chmod(0o640)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        load_or_create_key(path, None)
    path.chmod(0o600)
    path.write_text("zz" * 40)
    with pytest.raises(AuditKeyError, match="must be hex"):
        load_existing_key(path, None)
    assert load_existing_key(tmp_path / "missing", None) is None  # a verifier never creates


def test_signing_key_pair_is_created_and_must_match(tmp_path: Path) -> None:
    private, public = tmp_path / "sign.pem", tmp_path / "pub.pem"
    key = load_or_create_signing_key(private, public)
    assert private.stat().st_mode & 0o777 == 0o600
    assert public.stat().st_mode & 0o777 == 0o644
    assert load_or_create_signing_key(private, public).public_key() == key.public_key()
    other = tmp_path / "other.pem"
    load_or_create_signing_key(other, tmp_path / "other-pub.pem")
    public.write_bytes((tmp_path / "other-pub.pem").read_bytes())
    with pytest.raises(CheckpointKeyError, match="not the public half"):
        load_or_create_signing_key(private, public)
    private.write_text("garbage")
    with pytest.raises(CheckpointKeyError, match="cannot load"):
        load_or_create_signing_key(private, public)
