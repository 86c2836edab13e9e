"""``gridward hub watchlist-key``: creates the signing key once (0600) beside the audit keys and
prints what an installer pins in each edge's ``hub_keys``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.faces.keys import ed25519_public_b64, key_id_of, load_hub_keys

ROOT = Path(__file__).resolve().parents[3]


def _key(cfg: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "hub", "watchlist-key", "--config", str(cfg), *extra],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_watchlist_key_is_created_once_and_printed_for_the_edge_config(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(
        f"database_url: sqlite:///{tmp_path}/hub.sqlite\naudit:\n  directory: {tmp_path}/audit\n"
    )
    first = _key(cfg, "--json")
    assert first.returncode == 0, first.stderr
    printed = json.loads(first.stdout)
    path = tmp_path / "audit" / "watchlist-signing.key"
    assert path.stat().st_mode & 0o777 == 0o600
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    assert printed == {
        "key_id": key_id_of(private.public_key()),
        "public_key_b64": ed25519_public_b64(private.public_key()),
    }
    # Again: the same key (never replaced), printed as the YAML the edge config takes.
    second = _key(cfg)
    assert second.returncode == 0, second.stderr
    yaml_lines = [line for line in second.stdout.splitlines() if not line.startswith("#")]
    assert yaml_lines == ["hub_keys:", f"  {printed['key_id']}: {printed['public_key_b64']}"]
    assert load_hub_keys({printed["key_id"]: printed["public_key_b64"]})  # what the edge accepts
    # A key file others can read is refused with the fix, not used.
    path.chmod(0o644)
    loose = _key(cfg)
    assert loose.returncode == 1
    assert "chmod 600" in loose.stderr and "Traceback" not in loose.stderr
