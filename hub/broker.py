"""Mosquitto as gridward's broker: generated config, password file, per-device ACL, process.

Passwords live in Mosquitto's ``password_file`` (reloaded with SIGHUP, which also disconnects a
client whose password vanished). ACLs live in the dynamic-security plugin shipped with Mosquitto
2.0 (``mosquitto_dynamic_security.so``), because the plain ``acl_file`` of 2.0 never checks
subscriptions: a device could join ``$share/hub/...`` and starve the hub of its share of every
message. Dynamic security denies any subscription outside a device's own command topics (SUBACK
0x87) and binds each device's client id to its username, so nobody can take over another
client's session. Its clients carry no password, so authentication falls through to the password
file. The plugin reads its JSON only at start: a running broker is changed through its
``$CONTROL/dynamic-security/v1`` topic (:class:`DynsecControl`), and the JSON is rewritten on
every change so that a broker (re)started later loads the same state. A user in the password file
that dynamic security does not know gets no ACL at all (fail closed: no acl_file is configured).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from edge.bus_config import BusConfig, TlsConfig
from edge.protocol import DeviceKind, device_acl, hub_acl
from edge.validators import check_segment
from hub.pki import CertPair, SiteCA

log = logging.getLogger(__name__)

PBKDF2_ITERATIONS = 101  # mosquitto 2.0's own default for the "$7$" PBKDF2-SHA512 format
DYNSEC_CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
DYNSEC_RESPONSE_TOPIC = f"{DYNSEC_CONTROL_TOPIC}/response"


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
    # Subscriptions allowed (may include $share/...); None means exactly the read filters.
    subscribe: tuple[str, ...] | None = None
    # Devices must connect with client id == username; services (the hub and its replicas,
    # watchers) use several ids, none of which a device can claim since devices are bound.
    bind_client_id: bool = False

    @classmethod
    def device(
        cls, site: str, kind: DeviceKind | str, device: str, password_hash: str | None
    ) -> Account:
        write, read = device_acl(site, kind, device)
        return cls(
            check_segment(device, "device"),
            password_hash,
            read=(read,),
            write=(write,),
            bind_client_id=True,
        )

    @classmethod
    def hub(cls, username: str, password_hash: str | None) -> Account:
        return cls(
            check_segment(username, "username"),
            password_hash,
            read=(hub_acl(), "$SYS/#", DYNSEC_RESPONSE_TOPIC),
            write=(hub_acl(), DYNSEC_CONTROL_TOPIC),
            subscribe=(
                hub_acl(),
                f"$share/+/{hub_acl()}",
                "$SYS/#",
                DYNSEC_RESPONSE_TOPIC,
            ),
        )

    def with_hash(self, password_hash: str | None) -> Account:
        return Account(
            self.username,
            password_hash,
            self.read,
            self.write,
            self.subscribe,
            self.bind_client_id,
        )

    @property
    def rolename(self) -> str:
        return f"gw-{self.username}"

    def dynsec_role(self) -> dict[str, Any]:
        acls: list[dict[str, Any]] = [
            {"acltype": "publishClientSend", "topic": t, "priority": 0, "allow": True}
            for t in self.write
        ]
        acls += [
            {"acltype": "publishClientReceive", "topic": t, "priority": 0, "allow": True}
            for t in self.read
        ]
        acls += [
            {"acltype": "subscribePattern", "topic": t, "priority": 0, "allow": True}
            for t in (self.subscribe if self.subscribe is not None else self.read)
        ]
        return {"rolename": self.rolename, "acls": acls}

    def dynsec_client(self) -> dict[str, Any]:
        client: dict[str, Any] = {
            "username": self.username,
            "roles": [{"rolename": self.rolename}],
        }
        if self.bind_client_id:
            client["clientid"] = self.username
        return client


def dynsec_document(accounts: Iterable[Account]) -> dict[str, Any]:
    """The dynamic-security plugin's JSON for these accounts (passwords stay in password_file)."""
    accts = list(accounts)
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [a.dynsec_client() for a in accts],
        "groups": [],
        "roles": [a.dynsec_role() for a in accts],
    }


def verify_password(password: str, digest: str) -> bool:
    """Whether ``digest`` (a ``$7$`` line of :func:`hash_password`) is the hash of ``password``."""
    parts = digest.split("$")
    if len(parts) != 5 or parts[1] != "7" or parts[2] != str(PBKDF2_ITERATIONS):
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    return secrets.compare_digest(hash_password(password, salt), digest)


def dynsec_plugin() -> str:
    """Path of the dynamic-security plugin shipped in Debian's mosquitto package."""
    found = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))
    found += [p for p in (Path("/usr/lib/mosquitto_dynamic_security.so"),) if p.exists()]
    if not found:
        raise BrokerError(
            "mosquitto_dynamic_security.so not found: install Debian's mosquitto package"
        )
    return str(found[0])


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
        """The dynamic-security plugin's JSON: the per-client ACL and client-id binding."""
        return self.directory / "dynsec.json"

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
        if os.geteuid() == 0:
            _let_others_traverse(self.directory)
        lines = [
            "# generated by gridward",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            # -- security: ACLs and client-id binding (see the module docstring) --
            f"plugin {dynsec_plugin()}",
            f"plugin_opt_config_file {self.acl_file}",
            *FLOOD_LIMITS,
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages false",
            # Small QoS 1 frames (an alert, its PUBACK, a notify) must not wait for Nagle's
            # algorithm to coalesce them: measured in bench/e2e.py, p95 broker hop 69 -> 12 ms.
            "set_tcp_nodelay true",
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto drops to this user before it reads any file.
            lines.append("user mosquitto")
        if self.persistence:
            data = self.directory / "data"
            data.mkdir(exist_ok=True)
            if os.geteuid() == 0:
                user = pwd.getpwnam("mosquitto")
                os.chown(data, user.pw_uid, user.pw_gid)
            lines += [f"persistence_location {data}/", "autosave_interval 5"]
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
                # A certificate login skips the password check, where dynamic security binds
                # client ids: bind them here instead.
                "use_username_as_clientid true",
                "tls_version tlsv1.2",
            ]
        if self.ws_port is not None:
            # Mosquitto 2.0's websockets listener ignores the address on the listener line and
            # listens on every interface; bind_interface (by interface name) restricts it.
            lines += ["", f"listener {self.ws_port} {self.bind}", "protocol websockets"]
            lines += [f"socket_domain {'ipv6' if ':' in self.bind else 'ipv4'}"]
            iface = _interface_of(self.bind)
            if iface is not None:
                lines.append(f"bind_interface {iface}")
        _atomic_write(self.conf_file, "\n".join(lines) + "\n")
        if not self.password_file.exists():
            _atomic_write(self.password_file, "")
        if not self.acl_file.exists():
            _atomic_write(self.acl_file, json.dumps(dynsec_document([])))
        if self.server_cert is not None:
            self.server_cert.key_file.chmod(0o600)
            if os.geteuid() == 0:
                # The broker reads its key after dropping to the mosquitto user.
                user = pwd.getpwnam("mosquitto")
                os.chown(self.server_cert.key_file, user.pw_uid, user.pw_gid)
        return self.conf_file


def _let_others_traverse(directory: Path) -> None:
    """Add the search bit (not read) for others on every ancestor, so the broker's user can
    reach its files in, say, a 0700 temporary directory without listing anything."""
    for parent in directory.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            log.info("letting the broker user traverse %s", parent)
            parent.chmod((mode & 0o7777) | 0o001)


def _interface_of(address: str) -> str | None:
    """The network interface that holds ``address`` (None for a wildcard or unknown one)."""
    import psutil

    if address in ("0.0.0.0", "::", ""):  # noqa: S104 - recognising the wildcard, not binding
        return None
    for name, addrs in psutil.net_if_addrs().items():
        if any(a.address.split("%")[0] == address for a in addrs):
            return name
    return None


def write_accounts(password_file: Path, acl_file: Path, accounts: Iterable[Account]) -> None:
    """Write the password file and the dynamic-security JSON atomically, readable by the broker
    user. A running broker needs SIGHUP (passwords) and :meth:`DynsecControl.apply` (ACLs)."""
    accts = list(accounts)
    pw_lines = [f"{a.username}:{a.password_hash}" for a in accts if a.password_hash is not None]
    _atomic_write(password_file, "\n".join(pw_lines) + "\n")
    _atomic_write(acl_file, json.dumps(dynsec_document(accts), indent=1))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(path)


class DynsecControl:
    """Brings a running broker's dynamic-security state to a list of accounts, over MQTT.

    Each call opens its own short connection (a clean session with its own client id) as a
    service account allowed on ``$CONTROL/dynamic-security/v1``, so it works the same right
    after a broker restart. Clients and roles the accounts do not name are deleted, which
    disconnects a retired device at once; missing ones are created (without password: the
    password file authenticates)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: Callable[[], str | None],
        client_id: str,
        *,
        timeout_s: float = 5.0,
        tls: TlsConfig | None = None,
        transport: Literal["tcp", "websockets"] = "tcp",
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.client_id = client_id
        self.timeout_s = timeout_s
        self.tls = tls
        self.transport = transport

    @classmethod
    def for_bus(cls, config: BusConfig, client_id: str) -> DynsecControl | None:
        """Log in like a service's own bus (None without a username: a certificate login on
        the TLS listener takes the certificate's name as client id, which replicas share)."""
        if config.username is None:
            return None
        return cls(
            config.host,
            config.port,
            config.username,
            config.password,
            client_id,
            tls=config.tls,
            transport=config.transport,
        )

    def apply(self, accounts: Iterable[Account]) -> None:
        """Raise :class:`BrokerUnreachable` if the broker cannot be reached, BrokerError if it
        refuses a command."""
        wanted = {a.username: a for a in accounts}
        listed = self._request(
            [
                {"command": "listClients", "verbose": True},
                {"command": "listRoles", "verbose": True},
            ]
        )
        live_clients = {
            str(c.get("username")): _client_key(c)
            for c in _data(listed[0]).get("clients", [])
            if isinstance(c, dict)
        }
        live_roles = {
            str(r.get("rolename")): _role_key(r)
            for r in _data(listed[1]).get("roles", [])
            if isinstance(r, dict)
        }
        # An account whose rights or binding changed (a device id reused on another site in a
        # lab, an older hub ACL) is recreated: deleting the client also disconnects it.
        changed = {
            name
            for name, acct in wanted.items()
            if (name in live_clients and live_clients[name] != _client_key(acct.dynsec_client()))
            or (
                acct.rolename in live_roles
                and live_roles[acct.rolename] != _role_key(acct.dynsec_role())
            )
        }
        gone_clients = sorted((live_clients.keys() - wanted.keys()) | changed)
        wanted_roles = {a.rolename for a in wanted.values()}
        # Only roles this module made (gw-*): an operator's own roles are left alone.
        gone_roles = sorted(
            {r for r in live_roles if r.startswith("gw-") and r not in wanted_roles}
            | {wanted[name].rolename for name in changed}
        )
        commands: list[dict[str, Any]] = [
            {"command": "deleteClient", "username": name} for name in gone_clients
        ]
        commands += [{"command": "deleteRole", "rolename": role} for role in gone_roles]
        for name, acct in sorted(wanted.items()):
            if acct.rolename not in live_roles or acct.rolename in gone_roles:
                commands.append({"command": "createRole", **acct.dynsec_role()})
            if name not in live_clients or name in gone_clients:
                commands.append({"command": "createClient", **acct.dynsec_client()})
        if commands:
            for answer in self._request(commands):
                # Another hub replica may have made the same change a moment earlier.
                error = str(answer.get("error", ""))
                if error and not error.endswith(("already exists", "not found")):
                    raise BrokerError(
                        f"dynamic security refused {answer.get('command')}: {error}"
                    )
            log.info("broker ACLs updated (%d changes)", len(commands))

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            transport=self.transport,
        )
        client.username_pw_set(self.username, self._password())
        if self.tls is not None:
            client.tls_set(
                ca_certs=str(self.tls.ca_file),
                certfile=str(self.tls.cert_file) if self.tls.cert_file else None,
                keyfile=str(self.tls.key_file) if self.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            if self.tls.insecure_skip_hostname:
                client.tls_insecure_set(True)
        return client

    def _exchange(
        self,
        client: mqtt.Client,
        payload: str,
        done: threading.Event,
        subscribed: threading.Event,
        refused: list[str],
    ) -> None:
        """Publish the commands once subscribed to the answers; return when they came."""
        deadline = time.monotonic() + self.timeout_s
        published = False
        while not done.is_set():
            if refused:
                # A misconfigured hub account, not an outage: make it visible.
                raise BrokerError(refused[0])
            if time.monotonic() > deadline:
                raise BrokerUnreachable("dynamic security did not answer in time")
            if client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS and not refused:
                raise BrokerUnreachable("broker connection lost")
            if subscribed.is_set() and not published:
                client.publish(DYNSEC_CONTROL_TOPIC, payload, qos=1)
                published = True

    def _request(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Other admins share the response topic: keep only the answers to this request.
        tag = secrets.token_hex(8)
        commands = [{**c, "correlationData": tag} for c in commands]
        got: list[dict[str, Any]] = []
        done = threading.Event()
        subscribed = threading.Event()
        refused: list[str] = []

        def on_connect(c: mqtt.Client, _u: object, _f: object, rc: Any, _p: object) -> None:
            if rc.is_failure:
                refused.append(f"the broker refused the control login of {self.username}: {rc}")
            else:
                c.subscribe(DYNSEC_RESPONSE_TOPIC, qos=1)

        def on_subscribe(_c: mqtt.Client, _u: object, _m: int, codes: Any, _p: object) -> None:
            if any(code.is_failure for code in codes):
                refused.append(f"{self.username} may not read {DYNSEC_RESPONSE_TOPIC}")
            subscribed.set()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            try:
                answers = [r for r in json.loads(msg.payload)["responses"] if isinstance(r, dict)]
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable dynamic-security response ignored")
                return
            mine = [r for r in answers if r.get("correlationData") == tag]
            got.extend(mine)
            if mine:
                done.set()

        client = self._client()
        client.on_connect = on_connect
        client.on_message = on_message
        client.on_subscribe = on_subscribe
        try:
            client.connect(self.host, self.port, keepalive=10)
        except (OSError, ssl.SSLError) as err:
            client._reset_sockets()
            raise BrokerUnreachable(f"broker {self.host}:{self.port} unreachable: {err}") from err
        try:
            self._exchange(client, json.dumps({"commands": commands}), done, subscribed, refused)
        finally:
            client.disconnect()
            client.loop(timeout=0.05)
            # Paho keeps its wake-up socket pair until garbage collection: close it now.
            client._reset_sockets()
        return [r for r in got if r.get("correlationData") == tag]


class BrokerUnreachable(BrokerError):  # noqa: N818 - reads as the condition it reports
    """The broker is down or refused the control connection; its files are still right."""


def _client_key(client: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    roles = client.get("roles") or []
    return client.get("clientid"), tuple(
        sorted(str(r.get("rolename")) for r in roles if isinstance(r, dict))
    )


def _role_key(role: dict[str, Any]) -> frozenset[tuple[str, str, bool]]:
    return frozenset(
        (str(a.get("acltype")), str(a.get("topic")), bool(a.get("allow")))
        for a in role.get("acls") or []
        if isinstance(a, dict)
    )


def _data(answer: dict[str, Any]) -> dict[str, Any]:
    if "error" in answer:
        raise BrokerError(f"dynamic security refused {answer.get('command')}: {answer['error']}")
    data = answer.get("data", {})
    return data if isinstance(data, dict) else {}


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
        """Re-read the password file (SIGHUP). A stopped broker reads it when it starts."""
        if self.proc is None or self.proc.poll() is not None:
            log.info("mosquitto is not running; it reads the new files when it starts")
            return
        self.proc.send_signal(signal.SIGHUP)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

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
