"""Mosquitto as gridward's broker: generated config, password file, per-device ACL, process.

The password file and ACL are regenerated from the device registry and reloaded with SIGHUP, so
provisioning or retiring a device takes effect within seconds without dropping other clients.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edge.protocol import DeviceKind, device_acl, hub_acl
from edge.validators import check_segment
from hub.pki import CertPair, SiteCA

log = logging.getLogger(__name__)

PBKDF2_ITERATIONS = 101  # mosquitto 2.0's own default for the "$7$" PBKDF2-SHA512 format


# Limits that keep one flooding device from costing the others their messages (docs/hub.md,
# "Flooding devices"). Mosquitto 2.0 has no per-client publish rate limit; what it has:
FLOOD_LIMITS: tuple[str, ...] = (
    # QoS 0 to an online subscriber is dropped once that client's unsent packets reach this
    # (out_packet_count; no byte limit applies to them in 2.0). The hub is the one busy
    # subscriber: this is its buffer while it falls behind, about 60 MB at 300-byte
    # messages, enough for a burst of 200,000 that the hub then drains (it discards a
    # flooder's excess before decoding). QoS 1 queues for offline sessions share the bound.
    "max_queued_messages 200000",
    # Unacked QoS 1 per client, both ways: a device flooding alerts waits for PUBACKs.
    "max_inflight_messages 100",
    # One packet at most 3 MB (a snapshot alert); the connection of a device that sends
    # more is closed. Replaces message_size_limit, which 2.0 deprecates.
    "max_packet_size 3000000",
    # $SYS counters (dropped, clients) every 2 s, read by hub/broker_stats.py.
    "sys_interval 2",
)


class BrokerError(RuntimeError):
    """The broker could not be configured or started."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Mosquitto 2.x password-file hash (``$7$`` = PBKDF2-SHA512), as ``mosquitto_passwd``."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    return (
        f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}$"
        f"{base64.b64encode(digest).decode()}"
    )


def new_password() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Account:
    """A broker user: the hub service, a device, or a read-only observer."""

    username: str
    password_hash: str | None
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()

    @classmethod
    def device(
        cls, site: str, kind: DeviceKind | str, device: str, password_hash: str | None
    ) -> Account:
        write, read = device_acl(site, kind, device)
        return cls(check_segment(device, "device"), password_hash, read=(read,), write=(write,))

    @classmethod
    def hub(cls, username: str, password_hash: str | None) -> Account:
        return cls(
            check_segment(username, "username"),
            password_hash,
            read=(hub_acl(), "$SYS/#"),
            write=(hub_acl(),),
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class BrokerLayout:
    """Files and ports of one broker instance."""

    directory: Path
    port: int = field(default_factory=free_port)
    tls_port: int | None = None
    ws_port: int | None = None
    bind: str = "127.0.0.1"
    persistence: bool = False
    server_cert: CertPair | None = None
    ca_file: Path | None = None

    @property
    def conf_file(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def password_file(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.directory / "acl"

    @classmethod
    def with_tls(
        cls, directory: Path, ca: SiteCA, *, websockets: bool = True, persistence: bool = False
    ) -> BrokerLayout:
        layout = cls(
            directory,
            tls_port=free_port(),
            ws_port=free_port() if websockets else None,
            persistence=persistence,
        )
        layout.server_cert = ca.issue_server("localhost", directory / "tls")
        layout.ca_file = ca.cert_file
        return layout

    def write_accounts(self, accounts: Iterable[Account]) -> None:
        write_accounts(self.password_file, self.acl_file, accounts)

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Mosquitto started as root drops to user "mosquitto" and must still read these files.
        self.directory.chmod(0o755)
        lines = [
            "# generated by gridward",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
            *FLOOD_LIMITS,
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages false",
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if self.persistence:
            lines += [f"persistence_location {self.directory}/", "autosave_interval 5"]
        lines += ["", f"listener {self.port} {self.bind}", "protocol mqtt"]
        if self.tls_port is not None:
            if self.server_cert is None or self.ca_file is None:
                raise BrokerError("a TLS listener needs server_cert and ca_file")
            lines += [
                "",
                f"listener {self.tls_port} {self.bind}",
                "protocol mqtt",
                f"cafile {self.ca_file}",
                f"certfile {self.server_cert.cert_file}",
                f"keyfile {self.server_cert.key_file}",
                "require_certificate true",
                "use_identity_as_username true",
                "tls_version tlsv1.2",
            ]
        if self.ws_port is not None:
            lines += ["", f"listener {self.ws_port} {self.bind}", "protocol websockets"]
        _atomic_write(self.conf_file, "\n".join(lines) + "\n")
        for path in (self.password_file, self.acl_file):
            if not path.exists():
                _atomic_write(path, "")
        if self.server_cert is not None:
            self.server_cert.key_file.chmod(0o644 if os.geteuid() != 0 else 0o600)
        return self.conf_file


def write_accounts(password_file: Path, acl_file: Path, accounts: Iterable[Account]) -> None:
    """Write the password file and ACL atomically, readable by the broker user."""
    pw_lines: list[str] = []
    acl_lines: list[str] = ["# generated by gridward; edits are overwritten"]
    for acct in accounts:
        if acct.password_hash is not None:
            pw_lines.append(f"{acct.username}:{acct.password_hash}")
        acl_lines.append(f"\nuser {acct.username}")
        acl_lines.extend(f"topic read {t}" for t in acct.read)
        acl_lines.extend(f"topic write {t}" for t in acct.write)
    _atomic_write(password_file, "\n".join(pw_lines) + "\n")
    _atomic_write(acl_file, "\n".join(acl_lines) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(path)


class Mosquitto:
    """A mosquitto process for one :class:`BrokerLayout`. ``stop`` ends it by pid."""

    def __init__(self, layout: BrokerLayout, binary: str | None = None) -> None:
        self.layout = layout
        found = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(found).exists():
            raise BrokerError(
                "mosquitto is not installed: run the README's set-up command "
                "(apt-get install mosquitto)"
            )
        self.binary = found
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = layout.directory / "mosquitto.log"

    def start(self, timeout_s: float = 10.0) -> None:
        conf = self.layout.write_config()
        logf = self._log.open("ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(conf)], stdout=logf, stderr=logf, stdin=subprocess.DEVNULL
            )
        finally:
            logf.close()
        deadline = time.monotonic() + timeout_s
        ports = [p for p in (self.layout.port, self.layout.tls_port, self.layout.ws_port) if p]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with {self.proc.returncode}: {self.log_tail()}"
                )
            if all(_port_open(self.layout.bind, p) for p in ports):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not open {ports} in {timeout_s}s: {self.log_tail()}")

    def reload(self) -> None:
        """Re-read the password file and ACL (SIGHUP)."""
        if self.proc is None or self.proc.poll() is not None:
            raise BrokerError("mosquitto is not running")
        self.proc.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """Hard kill (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
