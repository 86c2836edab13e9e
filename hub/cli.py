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
    print("gridward hub: ingesting", flush=True)
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
