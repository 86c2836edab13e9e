"""The hub commands the Ansible roles run (ansible/roles/hub, broker): each is repeatable and
says ``changed`` only when it changed something, so that a second play run reports no change."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cryptography import x509

from edge.cli import main
from hub.broker import hash_password, verify_password
from tests.hub.test_cli import _config


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_ca_and_server_certificate_are_made_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(_config(tmp_path))
    out = tmp_path / "broker-tls"
    args = ("hub", "ca", "--config", cfg, "--server-cert", "broker.internal", "--out", str(out))
    assert _run(capsys, *args).startswith("changed")
    first = (out / "server.crt").read_bytes()
    ca = (tmp_path / "ca" / "ca.crt").read_bytes()
    assert _run(capsys, *args).startswith("unchanged")
    assert (out / "server.crt").read_bytes() == first
    assert (out / "server.key").stat().st_mode & 0o077 == 0
    # another broker name: a new certificate from the same CA
    renamed = ("hub", "ca", "--config", cfg, "--server-cert", "mqtt.site", "--out", str(out))
    assert _run(capsys, *renamed).startswith("changed")
    cert = x509.load_pem_x509_certificate((out / "server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mqtt.site" in names.get_values_for_type(x509.DNSName)
    assert (tmp_path / "ca" / "ca.crt").read_bytes() == ca


def test_service_account_line_is_kept_until_the_password_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tmp_path)
    accounts = tmp_path / "service-accounts"
    cfg.write_text(cfg.read_text() + f"  service_accounts_file: {accounts}\n")
    accounts.write_text(f"watcher:{hash_password('w')}\n")
    args = ("hub", "service-account", "--config", str(cfg), "--username", "hub")
    for password, expected in (("s3cret", "changed"), ("s3cret", "unchanged"),
                               ("other", "changed")):
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        assert _run(capsys, *args).startswith(expected + " "), (password, expected)
    lines = accounts.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["watcher", "hub"]
    assert verify_password("other", lines[1].split(":", 1)[1])
    assert "other" not in accounts.read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(list(args)) == 2


def test_broker_files_are_rewritten_from_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(_config(tmp_path))
    assert _run(capsys, "hub", "broker-files", "--config", cfg).startswith("changed")
    assert _run(capsys, "hub", "broker-files", "--config", cfg).startswith("unchanged")
    _run(capsys, "device", "add", "--config", cfg, "--site", "north", "--kind", "lidar",
         "--id", "lidar-1", "--out", str(tmp_path / "creds"))
    (tmp_path / "broker" / "passwd").write_text("")  # lost, or edited by hand
    assert _run(capsys, "hub", "broker-files", "--config", cfg).startswith("changed")
    assert (tmp_path / "broker" / "passwd").read_text().startswith("lidar-1:$7$")


def test_verify_password_refuses_what_is_not_its_hash() -> None:
    digest = hash_password("right")
    assert verify_password("right", digest)
    assert not verify_password("wrong", digest)
    for bad in ("", "$6$abc$def", "$7$101$!!!$x", digest.replace("$101$", "$1000$"), "$7$101$"):
        assert not verify_password("right", bad), bad
