"""The hub's command line: config validation, device provisioning and retirement, users, and
audit verification that fails loudly on a tampered log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, update

from hub.schema import audit_log

ROOT = Path(__file__).resolve().parents[2]


def _gw(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, input=stdin, timeout=120, check=False)


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "hub.yaml"
    (tmp_path / "broker").mkdir()
    cfg.write_text(
        f"database_url: sqlite:///{tmp_path}/hub.sqlite\n"
        f"ca_dir: {tmp_path}/ca\n"
        "audit:\n"
        f"  directory: {tmp_path}/audit\n"
        "broker:\n"
        f"  password_file: {tmp_path}/broker/passwd\n"
        f"  acl_file: {tmp_path}/broker/acl\n"
    )
    return cfg


def test_validate_config_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("database_url: sqlite:///x\napi:\n  port: 99999\n  colour: red\n")
    res = _gw("hub", "serve", "--config", str(bad), "--validate-config")
    assert res.returncode == 2
    assert "bad.yaml:line 3: api.port" in res.stderr
    assert "bad.yaml:line 4: api.colour: Extra inputs are not permitted" in res.stderr
    good = _config(tmp_path)
    res = _gw("hub", "serve", "--config", str(good), "--validate-config")
    assert res.returncode == 0, res.stderr


def test_device_lifecycle_and_audit_verify(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    out = tmp_path / "creds"
    res = _gw("device", "add", "--config", str(cfg), "--site", "north", "--kind", "camera",
              "--id", "cam-1", "--certificate", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ca.pem", "cert.pem", "key.pem",
                                                     "mqtt_password"]
    assert (out / "key.pem").stat().st_mode & 0o077 == 0
    acl = (tmp_path / "broker/acl").read_text()
    assert (
        "user cam-1\ntopic read gw/v1/north/cmd/cam-1/+\ntopic write gw/v1/north/camera/cam-1/+"
    ) in acl
    assert "cam-1:$7$" in (tmp_path / "broker/passwd").read_text()
    again = _gw("device", "add", "--config", str(cfg), "--site", "north", "--kind", "camera",
                "--id", "cam-1")
    assert again.returncode == 2 and "already exists" in again.stderr
    bad_id = _gw("device", "add", "--config", str(cfg), "--site", "north", "--kind", "camera",
                 "--id", "cam/1")
    assert bad_id.returncode == 2 and "not a valid id" in bad_id.stderr
    res = _gw("device", "retire", "--config", str(cfg), "--id", "cam-1", "--reason", "stolen")
    assert res.returncode == 0, res.stderr
    assert "cam-1" not in (tmp_path / "broker/acl").read_text()
    listing = _gw("device", "list", "--config", str(cfg)).stdout
    assert "cam-1" in listing and "retired" in listing
    res = _gw("user", "add", "--config", str(cfg), "--username", "ops1", "--role", "operator",
              stdin="a-long-operator-password\n")
    assert res.returncode == 0, res.stderr
    weak = _gw("user", "add", "--config", str(cfg), "--username", "ops2", "--role", "operator",
               stdin="short\n")
    assert weak.returncode == 2 and "at least 12" in weak.stderr
    ok = _gw("audit", "verify", "--config", str(cfg))
    assert ok.returncode == 0 and "audit log OK: 3 records" in ok.stdout
    engine = create_engine(f"sqlite:///{tmp_path}/hub.sqlite")
    with engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 2)
                     .values(details=json.loads('{"reason": "routine"}')))
    engine.dispose()
    broken = _gw("audit", "verify", "--config", str(cfg))
    assert broken.returncode == 1
    assert "record 2: HMAC does not match" in broken.stderr
