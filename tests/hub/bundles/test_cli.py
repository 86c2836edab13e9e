"""``gridward hub watchlist-key``: creates the signing key once (0600) beside the audit keys and
prints what an installer pins in each edge's ``hub_keys``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.cli import main
from edge.faces.keys import ed25519_public_b64, key_id_of, load_hub_keys


def _key(cfg: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    # In process (the parser and handler ``gridward`` runs): a subprocess per call costs seconds.
    code = main(["hub", "watchlist-key", "--config", str(cfg), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_watchlist_key_is_created_once_and_printed_for_the_edge_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(
        f"database_url: sqlite:///{tmp_path}/hub.sqlite\naudit:\n  directory: {tmp_path}/audit\n"
    )
    code, out, err = _key(cfg, capsys, "--json")
    assert code == 0, err
    printed = json.loads(out)
    path = tmp_path / "audit" / "watchlist-signing.key"
    assert path.stat().st_mode & 0o777 == 0o600
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    assert printed == {
        "key_id": key_id_of(private.public_key()),
        "public_key_b64": ed25519_public_b64(private.public_key()),
    }
    # Again: the same key (never replaced), printed as the YAML the edge config takes.
    code, out, err = _key(cfg, capsys)
    assert code == 0, err
    yaml_lines = [line for line in out.splitlines() if not line.startswith("#")]
    assert yaml_lines == ["hub_keys:", f"  {printed['key_id']}: {printed['public_key_b64']}"]
    assert load_hub_keys({printed["key_id"]: printed["public_key_b64"]})  # what the edge accepts
    # A key file others can read is refused with the fix, not used.
    path.chmod(0o644)
    code, out, err = _key(cfg, capsys)
    assert code == 1
    assert "chmod 600" in err and out == ""
