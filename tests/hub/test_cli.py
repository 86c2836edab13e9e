"""The hub's command line: config validation, device provisioning and retirement, users, and
audit verification that fails loudly on a tampered log."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, delete, update

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
    acl = json.loads((tmp_path / "broker/acl").read_text())  # the dynamic-security JSON
    assert {"username": "cam-1", "clientid": "cam-1", "roles": [{"rolename": "gw-cam-1"}]} in acl[
        "clients"
    ]
    role = next(r for r in acl["roles"] if r["rolename"] == "gw-cam-1")
    assert {(a["acltype"], a["topic"]) for a in role["acls"]} == {
        ("publishClientSend", "gw/v1/north/camera/cam-1/+"),
        ("publishClientReceive", "gw/v1/north/cmd/cam-1/+"),
        ("subscribePattern", "gw/v1/north/cmd/cam-1/+"),
    }
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


def test_audit_verify_reports_what_it_checked_and_what_failed(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    for name in ("ops1", "ops2", "ops3"):
        res = _gw("user", "add", "--config", str(cfg), "--username", name, "--role", "operator",
                  stdin="a-long-operator-password\n")
        assert res.returncode == 0, res.stderr
    res = _gw("audit", "checkpoint", "--config", str(cfg))
    assert res.returncode == 0 and "checkpoint 1 signed at record 4" in res.stdout, res.stderr
    audit_dir = tmp_path / "audit"
    assert (audit_dir / "audit-hmac.key").stat().st_mode & 0o077 == 0
    ok = _gw("audit", "verify", "--config", str(cfg))
    assert ok.returncode == 0, ok.stderr
    assert "audit log OK: 4 records" in ok.stdout and "(checked: HMAC, 1 checkpoints)" in ok.stdout
    # An auditor with only a backed-up public key and no HMAC key.
    backup = tmp_path / "backup.pem"
    backup.write_bytes((audit_dir / "checkpoint-public.pem").read_bytes())
    (audit_dir / "checkpoint-public.pem").unlink()
    public_only = _gw("audit", "verify", "--config", str(cfg), "--no-key",
                      "--public-key", str(backup))
    assert public_only.returncode == 0, public_only.stderr
    assert "not checked: record contents not verified (HMAC): no audit key given" in (
        public_only.stdout
    )
    engine = create_engine(f"sqlite:///{tmp_path}/hub.sqlite")
    with engine.begin() as conn:  # the newest records go, the signed checkpoint among them
        conn.execute(delete(audit_log).where(audit_log.c.seq >= 3))
    engine.dispose()
    broken = _gw("audit", "verify", "--config", str(cfg), "--no-key", "--public-key", str(backup))
    assert broken.returncode == 1
    assert ("checkpoint line 1 (record 4): signs record 4 but the log ends at record 2: newest "
            "records deleted") in broken.stderr
    no_pub = _gw("audit", "verify", "--config", str(cfg))
    assert no_pub.returncode == 0  # HMAC chain intact; the deletion needs the checkpoints...
    assert "not checked: checkpoints not verified" in no_pub.stdout  # ...and it says so
    (audit_dir / "audit-hmac.key").chmod(0o644)
    loose = _gw("audit", "verify", "--config", str(cfg))
    assert loose.returncode == 2 and "readable by others" in loose.stderr


def test_legacy_audit_head_file_setting(tmp_path: Path) -> None:
    from hub.audit import AuditPaths
    from hub.config import HubConfig

    old = HubConfig.model_validate({"audit_head_file": str(tmp_path / "x" / "audit.head")})
    paths = AuditPaths.resolve(old.audit, old.database_url, old.audit_head_file)
    assert paths.key_file == tmp_path / "x" / "audit-hmac.key"
    assert paths.checkpoint_file == tmp_path / "x" / "checkpoints.jsonl"
    both = tmp_path / "both.yaml"
    both.write_text(f"audit_head_file: {tmp_path}/h\naudit:\n  directory: {tmp_path}/a\n")
    res = _gw("hub", "serve", "--config", str(both), "--validate-config")
    assert res.returncode == 2 and "keep only audit.directory" in res.stderr


def test_cli_role_names_match_the_roles() -> None:
    from hub.auth import Role
    from hub.cli import ROLE_NAMES

    assert [role.value for role in Role] == ROLE_NAMES


def test_serve_says_ingesting_only_once_subscribed(tmp_path: Path) -> None:
    """Before: "ingesting" was printed as the bus thread started, before any SUBACK; two
    replicas started together could then leave one without a share of a burst (the replicas
    test waits for the line). With no broker listening the hub must not claim it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens once closed
    cfg = _config(tmp_path)
    with cfg.open("a", encoding="utf-8") as f:
        f.write(f"mqtt:\n  port: {closed_port}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "hub", "serve", "--config", str(cfg), "--no-api",
         "--broker-wait-s", "0.5"],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        status = proc.stdout.readline()  # the only stdout line before a stop
        assert proc.poll() is None, "the hub must keep running (and reconnecting)"
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    assert status.startswith("gridward hub: broker not reachable yet"), status + rest
