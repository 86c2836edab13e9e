"""Band key files: format, refusal of loose permissions, and no key bytes in any message."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridges.ble.keys import (
    ENV_KEYS,
    ENV_KEYS_FILE,
    BandKey,
    KeyFileError,
    format_keys,
    load_keys,
    parse_keys,
)

SECRET = "00112233445566778899aabbccddeeff"


@given(st.dictionaries(st.integers(0, 2**32 - 1),
                       st.lists(st.sampled_from([16, 32]).flatmap(
                           lambda n: st.binary(min_size=n, max_size=n)), min_size=1, max_size=3)
                       .map(tuple), max_size=5))
def test_format_parse_round_trip(keys: dict[int, tuple[bytes, ...]]) -> None:
    assert parse_keys(format_keys(keys)) == keys


@pytest.mark.parametrize(
    "text",
    [f"0x1 {SECRET} extra", f"zz {SECRET}", f"0x100000000 {SECRET}", "1 nothex!", "1 0011",
     f"-1 {SECRET}"],
)
def test_bad_lines_name_the_line_but_not_the_key(text: str) -> None:
    with pytest.raises(KeyFileError) as info:
        parse_keys("# header\n" + text, "keys.txt")
    assert "keys.txt:2" in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None or SECRET not in str(info.value.__cause__)


def test_comments_commas_and_rotation() -> None:
    keys = parse_keys(f"# c\n0x10 {SECRET}  # current\n16 {'ff' * 32}, 17 {SECRET}\n")
    assert keys == {16: (bytes.fromhex(SECRET), b"\xff" * 32), 17: (bytes.fromhex(SECRET),)}


def test_load_from_file_env_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text(f"1 {SECRET}\n")
    path.chmod(0o600)
    assert load_keys(path, environ={}) == {1: (bytes.fromhex(SECRET),)}
    assert load_keys(None, environ={ENV_KEYS_FILE: str(path)}) == {1: (bytes.fromhex(SECRET),)}
    assert load_keys(None, environ={ENV_KEYS: f"2 {SECRET}"}) == {2: (bytes.fromhex(SECRET),)}
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_keys(path, environ={})
    with pytest.raises(KeyFileError, match="cannot read"):
        load_keys(tmp_path / "missing", environ={})
    with pytest.raises(KeyFileError, match="no band keys"):
        load_keys(None, environ={})


def test_band_key_repr_hides_secret() -> None:
    key = BandKey(5, bytes.fromhex(SECRET))
    assert SECRET not in repr(key)
    assert "16 bytes" in repr(key)
