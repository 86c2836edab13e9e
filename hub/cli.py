"""``gridward hub ...``, ``gridward device ...``, ``gridward user ...`` and
``gridward audit ...``. Every command that changes something is audited as ``cli:<user>``."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from edge.config import load_config

# Kept in step with hub.auth.Role (tests/hub/test_cli.py); hub.auth is not imported here so
# that ``gridward --help`` does not load the password hasher.
ROLE_NAMES = ["admin", "commander", "operator", "officer", "installer", "auditor", "worker"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hub = sub.add_parser("hub", help="hub services")
    hsub = hub.add_subparsers(dest="hub_cmd", required=True)
    serve = hsub.add_parser("serve", help="run ingest, the API and the live stream")
    serve.add_argument("--config", type=Path, required=True)
    serve.add_argument(
        "--validate-config",
        action="store_true",
        help="check the config, print problems with line numbers, exit",
    )
    serve.add_argument("--no-api", action="store_true", help="ingest only (extra replicas)")
    serve.add_argument(
        "--broker-wait-s",
        type=float,
        default=30.0,
        help="how long to wait for the broker (connected and subscribed) before saying whether"
        " the hub is ingesting; it keeps reconnecting either way",
    )
    serve.set_defaults(func=_serve)
    migrate = hsub.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--config", type=Path, required=True)
    migrate.set_defaults(func=_migrate)
    wkey = hsub.add_parser(
        "watchlist-key",
        help="print the watchlist bundle signing key (created if missing) to pin in edge configs",
    )
    wkey.add_argument("--config", type=Path, required=True)
    wkey.add_argument("--json", action="store_true", help="as JSON: {key_id, public_key_b64}")
    wkey.set_defaults(func=_watchlist_key)

    _register_install(hsub)

    device = sub.add_parser("device", help="provision and retire devices")
    dsub = device.add_subparsers(dest="device_cmd", required=True)
    add = dsub.add_parser("add", help="create a device identity and its broker credentials")
    add.add_argument("--config", type=Path, required=True, help="hub config")
    add.add_argument("--site", required=True)
    add.add_argument("--kind", required=True, choices=["camera", "lidar", "wristband", "glasses"])
    add.add_argument("--id", required=True, dest="device_id")
    add.add_argument("--name", default="")
    add.add_argument("--certificate", action="store_true", help="also issue a client cert")
    add.add_argument("--no-password", action="store_true", help="certificate only")
    add.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for the credential files (0600); default: print once",
    )
    add.set_defaults(func=_device_add)
    retire = dsub.add_parser("retire", help="revoke a device's access within seconds")
    retire.add_argument("--config", type=Path, required=True)
    retire.add_argument("--id", required=True, dest="device_id")
    retire.add_argument("--reason", required=True)
    retire.set_defaults(func=_device_retire)
    dlist = dsub.add_parser("list", help="list devices")
    dlist.add_argument("--config", type=Path, required=True)
    dlist.set_defaults(func=_device_list)

    user = sub.add_parser("user", help="hub users")
    usub = user.add_subparsers(dest="user_cmd", required=True)
    uadd = usub.add_parser("add", help="add a user (password read from stdin or prompted)")
    uadd.add_argument("--config", type=Path, required=True)
    uadd.add_argument("--username", required=True)
    uadd.add_argument(
        "--role",
        required=True,
        choices=ROLE_NAMES,
    )
    uadd.set_defaults(func=_user_add)

    _register_audit(sub)


def _register_install(hsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands an installer (ansible/roles/hub and broker) runs; each prints ``changed`` or
    ``unchanged`` so that a repeated run reports no change."""
    ca = hsub.add_parser("ca", help="create the site CA if missing; optionally a server cert")
    ca.add_argument("--config", type=Path, required=True)
    ca.add_argument("--server-cert", metavar="HOST", default=None,
                    help="issue a server certificate for HOST (the broker's name) if missing")
    ca.add_argument("--out", type=Path, default=None, help="directory of server.crt/.key")
    ca.set_defaults(func=_hub_ca)
    account = hsub.add_parser(
        "service-account",
        help="put a hub service's broker login (password on stdin) in service_accounts_file",
    )
    account.add_argument("--config", type=Path, required=True)
    account.add_argument("--username", required=True)
    account.set_defaults(func=_hub_service_account)
    files = hsub.add_parser(
        "broker-files", help="rewrite the broker's password file and ACL from the device registry"
    )
    files.add_argument("--config", type=Path, required=True)
    files.set_defaults(func=_hub_broker_files)


def _hub_ca(args: argparse.Namespace) -> int:
    from cryptography import x509

    from hub.pki import SiteCA

    config = _config(args.config)
    if config.ca_dir is None:
        print("gridward: the hub config has no ca_dir", file=sys.stderr)
        return 2
    existed = (config.ca_dir / "ca.crt").exists() and (config.ca_dir / "ca.key").exists()
    ca = SiteCA(config.ca_dir)
    changed = not existed
    if args.server_cert is not None:
        out = args.out or config.ca_dir / "server"
        cert_file = out / "server.crt"
        current = None
        if cert_file.exists() and (out / "server.key").exists():
            current = x509.load_pem_x509_certificate(cert_file.read_bytes())
        if current is None or not _names(current, args.server_cert) or _expires_soon(current):
            out.mkdir(parents=True, exist_ok=True)
            ca.issue_server(args.server_cert, out)
            changed = True
    print("changed" if changed else "unchanged", ca.cert_file)
    return 0


def _names(cert: Any, host: str) -> bool:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if host in alt.get_values_for_type(x509.DNSName):
            return True
    except x509.ExtensionNotFound:
        pass
    return any(a.value == host for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


def _expires_soon(cert: Any) -> bool:
    import datetime as dt

    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return bool(left < dt.timedelta(days=30))


def _hub_service_account(args: argparse.Namespace) -> int:
    from hub.broker import hash_password, verify_password

    config = _config(args.config)
    path = config.broker.service_accounts_file if config.broker else None
    if path is None:
        print("gridward: the hub config has no broker.service_accounts_file", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("gridward: give the service account's password on stdin", file=sys.stderr)
        return 2
    lines = path.read_text().splitlines() if path.exists() else []
    prefix = f"{args.username}:"
    kept = [line for line in lines if not line.startswith(prefix)]
    current = [line[len(prefix):] for line in lines if line.startswith(prefix)]
    if len(current) == 1 and verify_password(password, current[0]):
        print("unchanged", path)
        return 0
    kept.append(prefix + hash_password(password))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(kept) + "\n")
    print("changed", path)
    return 0


def _hub_broker_files(args: argparse.Namespace) -> int:
    from hub.errors import DomainError

    registry, store = _devices(args.config)
    broker = registry.broker
    if broker is None:
        store.close()
        print("gridward: the hub config has no broker section", file=sys.stderr)
        return 2

    def contents() -> list[bytes | None]:
        return [p.read_bytes() if p.exists() else None
                for p in (broker.password_file, broker.acl_file)]

    before = contents()
    try:
        registry.sync_broker()
    except DomainError as err:
        print(f"gridward: {err}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print("changed" if contents() != before else "unchanged", broker.password_file)
    return 0


def _register_audit(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the tamper-evident audit log")
    asub = audit.add_subparsers(dest="audit_cmd", required=True)
    verify = asub.add_parser(
        "verify", help="detect edited, deleted or forged audit records and checkpoints"
    )
    verify.add_argument("--config", type=Path, required=True)
    verify.add_argument(
        "--public-key",
        type=Path,
        default=None,
        help="checkpoint public key (PEM); default: audit.public_key_file of the config",
    )
    verify.add_argument(
        "--checkpoints", type=Path, default=None, help="checkpoint file; default: from the config"
    )
    verify.add_argument(
        "--no-key",
        action="store_true",
        help="do not use the HMAC key (an auditor who holds only the public key)",
    )
    verify.set_defaults(func=_audit_verify)
    checkpoint = asub.add_parser("checkpoint", help="write a signed checkpoint now")
    checkpoint.add_argument("--config", type=Path, required=True)
    checkpoint.set_defaults(func=_audit_checkpoint)


def _config(path: Path) -> Any:
    from hub.config import HubConfig

    return load_config(path, HubConfig)


def _actor() -> str:
    return f"cli-{getpass.getuser()}"[:64].replace(".", "_")


def _store(path: Path) -> Any:
    from hub.store import Store

    return Store(_config(path).resolved_database_url())


def _serve(args: argparse.Namespace) -> int:
    from hub.service import HubService

    config = _config(args.config)
    if args.validate_config:
        print(f"{args.config}: OK")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service = HubService(config)
    service.start(api=not args.no_api)
    if not args.no_api:
        print(f"gridward hub: API on {config.api.host}:{service.api_port}", flush=True)
    # "ingesting" means subscribed: a replica that said so before its SUBACK let the other
    # replicas take every message sent meanwhile (and a supervisor reading the line be wrong).
    if service.bus.wait_connected(args.broker_wait_s):
        print("gridward hub: ingesting", flush=True)
    else:
        print("gridward hub: broker not reachable yet; ingesting once connected", flush=True)
    stop.wait()
    service.stop()
    print(f"gridward hub: stopped; ingest {json.dumps(service.ingest.stats.as_dict())}", flush=True)
    return 0


def _watchlist_key(args: argparse.Namespace) -> int:
    from hub.bundles.signing import SigningKeyError, key_path, load_or_create

    try:
        key = load_or_create(key_path(_config(args.config)))
    except SigningKeyError as err:
        print(f"gridward hub watchlist-key: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"key_id": key.key_id, "public_key_b64": key.public_key_b64}))
        return 0
    print(f"# {key.path}: pin this in each face-matching edge's watchlist config")
    print("hub_keys:")
    print(f"  {key.key_id}: {key.public_key_b64}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    store = _store(args.config)
    store.close()
    print("schema up to date")
    return 0


def _devices(config_path: Path) -> Any:
    """The same device service the API uses (audited, broker files synced), and its store."""
    from hub.audit import AuditTrail
    from hub.devices.service import DeviceService, dynsec_control
    from hub.pki import SiteCA
    from hub.store import Store

    config = _config(config_path)
    store = Store(config.resolved_database_url())
    audit = AuditTrail.from_config(store.engine, config)
    ca = SiteCA(config.ca_dir) if config.ca_dir else None
    service = DeviceService(
        store.engine, audit, config.broker, ca=ca, control=dynsec_control(config)
    )
    service.reserved_ids.add(config.client_id)
    return service, store


def _device_add(args: argparse.Namespace) -> int:
    from hub.errors import DomainError

    registry, store = _devices(args.config)
    try:
        creds = registry.add(
            _actor(),
            args.site,
            args.kind,
            args.device_id,
            args.name,
            with_password=not args.no_password,
            with_certificate=args.certificate,
        )
    except DomainError as err:
        print(f"gridward: {err}", file=sys.stderr)
        return 2
    finally:
        store.close()
    secrets = {
        "mqtt_password": creds.mqtt_password,
        "cert.pem": creds.cert_pem,
        "key.pem": creds.key_pem,
        "ca.pem": creds.ca_pem,
    }
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, value in secrets.items():
            if value:
                fd = os.open(args.out / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(value)
        print(f"device {creds.device} provisioned; credentials written to {args.out}/ (0600)")
    else:
        print(
            json.dumps(
                {"device": creds.device, **{k: v for k, v in secrets.items() if v}}, indent=2
            )
        )
        print(
            "store these now: the hub keeps only a hash of the password and no private key",
            file=sys.stderr,
        )
    return 0


def _device_retire(args: argparse.Namespace) -> int:
    from hub.errors import DomainError

    registry, store = _devices(args.config)
    try:
        registry.retire(_actor(), args.device_id, args.reason)
    except DomainError as err:
        print(f"gridward: {err}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"device {args.device_id} retired; the broker no longer accepts it")
    return 0


def _device_list(args: argparse.Namespace) -> int:
    registry, store = _devices(args.config)
    try:
        rows = registry.all()
    finally:
        store.close()
    for r in rows:
        print(f"{r.site:16} {r.id:32} {r.kind:10} {r.status}")
    return 0


def _user_add(args: argparse.Namespace) -> int:
    from hub.audit import AuditTrail
    from hub.auth import Role
    from hub.errors import DomainError
    from hub.users.service import UserService

    password = (
        sys.stdin.readline().rstrip("\n")
        if not sys.stdin.isatty()
        else getpass.getpass(f"password for {args.username}: ")
    )
    config = _config(args.config)
    store = _store(args.config)
    users = UserService(store.engine, AuditTrail.from_config(store.engine, config))
    try:
        users.add(_actor(), args.username, password, Role(args.role))
    except DomainError as err:
        print(f"gridward: {err}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"user {args.username} ({args.role}) added")
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from hub import audit
    from hub.audit.checkpoints import CheckpointKeyError, load_public_key
    from hub.audit.keys import AuditKeyError, load_existing_key

    config = _config(args.config)
    paths = audit.AuditPaths.resolve(
        config.audit, config.resolved_database_url(), config.audit_head_file
    )
    public_path = args.public_key or paths.public_key_file
    checkpoint_file = args.checkpoints or paths.checkpoint_file
    try:
        key = None if args.no_key else load_existing_key(paths.key_file, paths.key_env)
        public_key = load_public_key(public_path) if public_path.exists() else None
    except (AuditKeyError, CheckpointKeyError) as err:
        print(f"gridward: {err}", file=sys.stderr)
        return 2
    store = _store(args.config)
    try:
        result = audit.verify(
            store.engine, key=key, public_key=public_key, checkpoint_file=checkpoint_file
        )
    finally:
        store.close()
    checked = [
        "HMAC" if result.hmac_checked else None,
        f"{result.checkpoints} checkpoints" if result.checkpoints_checked else None,
    ]
    how = ", ".join(c for c in checked if c) or "hash links only"
    if result.ok:
        print(
            f"audit log OK: {result.records} records, head {result.head_hash[:16]} (checked: {how})"
        )
    else:
        print(f"audit log BROKEN ({result.records} records; checked: {how}):", file=sys.stderr)
        for failure in result.failures:
            print(f"  - {failure}", file=sys.stderr)
    if public_key is None:
        print(f"  no checkpoint public key at {public_path}", file=sys.stderr)
    for note in result.not_checked:
        print(f"  not checked: {note}")
    return 0 if result.ok else 1


def _audit_checkpoint(args: argparse.Namespace) -> int:
    from hub.audit import AuditTrail

    config = _config(args.config)
    store = _store(args.config)
    try:
        cp = AuditTrail.from_config(store.engine, config).checkpoint()
    finally:
        store.close()
    if cp is None:
        print("no checkpoint written: the audit log is empty or checkpoints are disabled")
        return 1
    print(f"checkpoint {cp.number} signed at record {cp.seq}")
    return 0
