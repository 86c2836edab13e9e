"""Device rules: provisioning (credentials shown once), renaming, retirement, config pushes.

Every change is one audited transaction. Provisioning and retirement then rewrite the
broker's password file and ACL (after the commit, so the broker never knows a device the
database does not). A config push writes its command to the outbox in the same transaction;
the command publisher sends it after commit (no MQTT inside a transaction).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from edge.protocol import CmdChannel, ConfigPush, DeviceKind
from edge.validators import check_segment, utcnow
from hub.audit import AuditTrail
from hub.broker import (
    Account,
    BrokerError,
    BrokerUnreachable,
    DynsecControl,
    hash_password,
    new_password,
    write_accounts,
)
from hub.commands import repository as commands
from hub.commands.outbox import CommandOutbox
from hub.config import BrokerFilesConfig, HubConfig
from hub.devices import repository
from hub.devices.directory import DeviceDirectory
from hub.errors import Conflict, Invalid, NotFound, Unavailable
from hub.fusion import FUSION_DEVICE
from hub.pki import SiteCA

log = logging.getLogger(__name__)

# Labels the hub stores its own computed data under; no device may take them.
RESERVED_DEVICE_IDS = frozenset({FUSION_DEVICE})


class ProvisioningError(Invalid):
    """A device that cannot be provisioned as asked."""


class DeviceNotFound(NotFound):
    pass


class DeviceExists(Conflict):
    pass


class NoConfigPushed(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class Credentials:
    device: str
    mqtt_username: str
    mqtt_password: str | None
    cert_pem: str | None = None
    key_pem: str | None = None
    ca_pem: str | None = None


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What a repeatable provisioning did: secrets are set only when created or rotated."""

    credentials: Credentials
    created: bool
    rotated: bool


@dataclass(frozen=True, slots=True)
class _IssuedCertificate:
    cert_pem: str
    key_pem: str
    ca_pem: str
    serial: str


def _credentials(
    device: str, password: str | None, cert: _IssuedCertificate | None
) -> Credentials:
    if cert is None:
        return Credentials(device, device, password)
    return Credentials(device, device, password, cert.cert_pem, cert.key_pem, cert.ca_pem)


def _check_same_device(row: Any, site: str, kind: DeviceKind, device: str) -> None:
    """A repeated provisioning must name the device it provisioned: same site, same kind."""
    if row is None:
        raise DeviceNotFound(f"no device {device!r}")
    if row.status != "active":
        raise DeviceExists(f"device {device!r} is {row.status}; ids are never reused")
    if row.site != site or row.kind != kind.value:
        raise DeviceExists(
            f"device {device!r} exists as a {row.kind} of site {row.site!r}, "
            f"not a {kind.value} of site {site!r}: pick another id or retire the old one"
        )


@dataclass(frozen=True, slots=True)
class ConfigPushView:
    """A pushed config version, what the device answered, and where its command is."""

    device: str
    version: int
    created_by: str
    created_at: datetime
    config: dict[str, Any]
    applied_version: int | None
    status: str  # pending | applied | rejected
    error: str | None
    command_id: str | None
    command_state: str | None


class DeviceService:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        broker: BrokerFilesConfig | None,
        *,
        ca: SiteCA | None = None,
        reload: Callable[[], None] | None = None,
        directory: DeviceDirectory | None = None,
        outbox: CommandOutbox | None = None,
        control: Callable[[list[Account]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.broker = broker
        self.ca = ca
        self._reload = reload
        # Applies the ACLs to the running broker (DynsecControl.apply); the plugin never
        # re-reads its file on SIGHUP.
        self._control = control
        # Client ids of hub services (its own, its replicas'): a device named so could claim them.
        self.reserved_ids: set[str] = set()
        self.directory = directory
        self.outbox = outbox or CommandOutbox()
        # Accounts managed elsewhere (e.g. a shared lab broker's own users) kept on every sync.
        self.extra_accounts: Callable[[], list[Account]] | None = None

    # -- reading --------------------------------------------------------------------------

    def page(self, *, limit: int, after: str | None = None, **filters: str | None) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.page(conn, limit=limit, after=after, **filters)

    def get(self, device: str) -> Any:
        with self.engine.connect() as conn:
            row = repository.get_view(conn, device)
        if row is None:
            raise DeviceNotFound(f"no device {device!r}")
        return row

    def all(self) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.all_ordered(conn)

    def health(
        self,
        device: str,
        *,
        limit: int,
        after: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[Any]:
        with self.engine.connect() as conn:
            return repository.health_page(
                conn, device, limit=limit, after=after, since=since, until=until
            )

    # -- provisioning ---------------------------------------------------------------------

    def add(
        self,
        actor: str,
        site: str,
        kind: DeviceKind | str,
        device: str,
        name: str = "",
        *,
        with_password: bool = True,
        with_certificate: bool = False,
        location: tuple[float, float] | None = None,
    ) -> Credentials:
        kind = self._check_request(site, kind, device, with_password, with_certificate)
        password = new_password() if with_password else None
        details: dict[str, Any] = {
            "site": site,
            "kind": kind.value,
            "password": with_password,
            "certificate": with_certificate,
        }
        with self.audit.change(actor, "device.provision", device, details) as conn:
            existing = repository.get(conn, device)
            if existing is not None:
                raise DeviceExists(
                    f"device {device!r} already exists ({existing.status}); ids are never reused"
                )
            cert = self._issue_certificate(device) if with_certificate else None
            if cert is not None:
                details["cert_serial"] = cert.serial
            repository.insert(
                conn,
                {
                    "id": device,
                    "site": site,
                    "kind": kind.value,
                    "name": name,
                    "status": "active",
                    "mqtt_password_hash": hash_password(password) if password else None,
                    "cert_serial": cert.serial if cert else None,
                    "lon": location[0] if location else None,
                    "lat": location[1] if location else None,
                    "created_at": utcnow(),
                    "created_by": actor,
                },
            )
        self.sync_broker()
        return _credentials(device, password, cert)

    def ensure(
        self,
        actor: str,
        site: str,
        kind: DeviceKind | str,
        device: str,
        name: str = "",
        *,
        with_password: bool = True,
        with_certificate: bool = False,
        location: tuple[float, float] | None = None,
        rotate: bool = False,
    ) -> Provisioned:
        """Provisioning that can be repeated (an installer's play runs it on every run): create
        the device if it is missing (credentials shown once); an existing active device of the
        same site and kind keeps its credentials (none shown) unless ``rotate`` asks for new
        ones. A retired id, or one provisioned for another site or kind, is a conflict."""
        kind = self._check_request(site, kind, device, with_password, with_certificate)
        with self.engine.connect() as conn:
            existing = repository.get(conn, device)
        if existing is None:
            try:
                creds = self.add(
                    actor,
                    site,
                    kind,
                    device,
                    name,
                    with_password=with_password,
                    with_certificate=with_certificate,
                    location=location,
                )
            except DeviceExists:
                # Another run created it between the read and the insert: it exists now.
                pass
            else:
                return Provisioned(creds, created=True, rotated=False)
        if not rotate:
            with self.engine.connect() as conn:
                _check_same_device(repository.get(conn, device), site, kind, device)
            return Provisioned(Credentials(device, device, None), created=False, rotated=False)
        return Provisioned(
            self.rotate(
                actor,
                site,
                kind,
                device,
                with_password=with_password,
                with_certificate=with_certificate,
            ),
            created=False,
            rotated=True,
        )

    def rotate(
        self,
        actor: str,
        site: str,
        kind: DeviceKind,
        device: str,
        *,
        with_password: bool = True,
        with_certificate: bool = False,
    ) -> Credentials:
        """Replace an active device's credentials with new ones of the kinds asked; the old
        password stops working when the broker re-reads its password file."""
        password = new_password() if with_password else None
        details: dict[str, Any] = {"password": with_password, "certificate": with_certificate}
        with self.audit.change(actor, "device.rotate", device, details) as conn:
            _check_same_device(repository.get(conn, device), site, kind, device)
            cert = self._issue_certificate(device) if with_certificate else None
            if cert is not None:
                details["cert_serial"] = cert.serial
            repository.update_fields(
                conn,
                device,
                {
                    "mqtt_password_hash": hash_password(password) if password else None,
                    "cert_serial": cert.serial if cert else None,
                },
            )
        self.sync_broker()
        return _credentials(device, password, cert)

    def _check_request(
        self,
        site: str,
        kind: DeviceKind | str,
        device: str,
        with_password: bool,
        with_certificate: bool,
    ) -> DeviceKind:
        try:
            check_segment(site, "site")
            check_segment(device, "device")
        except ValueError as err:
            raise ProvisioningError(str(err)) from err
        if device in self.reserved_ids or device in {
            a.username for a in self._service_accounts()
        }:
            raise ProvisioningError(
                f"device id {device!r} is a hub service's client id or username"
            )
        if device in RESERVED_DEVICE_IDS:
            raise ProvisioningError(
                f"device id {device!r} is reserved for positions the hub computes itself"
            )
        try:
            checked = DeviceKind(kind)
        except ValueError as err:
            raise ProvisioningError(
                f"kind {kind!r} is not one of {', '.join(k.value for k in DeviceKind)}"
            ) from err
        if with_certificate and self.ca is None:
            raise ProvisioningError("client certificates need the site CA (hub config ca_dir)")
        if not with_password and not with_certificate:
            raise ProvisioningError("a device needs a password, a certificate, or both")
        return checked

    def _issue_certificate(self, device: str) -> _IssuedCertificate:
        if self.ca is None:  # checked by _check_request; a guard for the type checker
            raise ProvisioningError("client certificates need the site CA (hub config ca_dir)")
        try:
            pair = self.ca.issue_client(device, self.ca.directory / "issued")
            cert_pem = pair.cert_file.read_text()
            key_pem = pair.key_file.read_text()
            pair.key_file.unlink()  # handed to the installer once; the hub keeps none
            ca_pem = self.ca.cert_file.read_text()
        except (OSError, ValueError) as err:  # a missing or damaged CA on this hub
            raise Unavailable(f"the site CA cannot issue a certificate: {err}") from err
        return _IssuedCertificate(cert_pem, key_pem, ca_pem, _cert_serial(cert_pem))

    def update(
        self,
        actor: str,
        device: str,
        *,
        name: str | None = None,
        location: tuple[float, float] | None = None,
    ) -> Any:
        """Rename a device or record where it is mounted; returns the updated view."""
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if location is not None:
            values.update(lon=location[0], lat=location[1])
        if not values:
            raise Invalid("nothing to change: send name or location")
        with self.audit.change(actor, "device.update", device, values) as conn:
            if not repository.update_fields(conn, device, values):
                raise DeviceNotFound(f"no device {device!r}")
        return self.get(device)

    def retire(self, actor: str, device: str, reason: str) -> None:
        if not reason.strip():
            raise ProvisioningError("retiring a device needs a reason")
        with self.audit.change(actor, "device.retire", device, {"reason": reason}) as conn:
            if not repository.retire(conn, device, utcnow()):
                raise DeviceNotFound(f"no active device {device!r}")
            # The broker will refuse the device: nothing still queued for it can be delivered.
            commands.fail_open_for_device(conn, device, "the device was retired")
        self.sync_broker()

    # -- config push ----------------------------------------------------------------------

    def push_config(self, actor: str, device: str, config: dict[str, Any]) -> ConfigPushView:
        """Store the next config version and enqueue its retained publish, in one transaction."""
        with self.engine.connect() as conn:
            dev = repository.get_active(conn, device)
        if dev is None:
            raise DeviceNotFound(f"no active device {device!r}")
        now = utcnow()
        with self.audit.change(actor, "device.config_push", device) as conn:
            version = repository.next_config_version(conn, device)
            try:
                push = ConfigPush(
                    site=dev.site, device=device, config_version=version, config=config
                )
            except ValidationError as err:
                raise Invalid(f"config cannot be pushed: {err.errors()[0]['msg']}") from err
            repository.insert_config_push(
                conn,
                {
                    "device": device,
                    "version": version,
                    "message_id": push.id,
                    "config": config,
                    "created_by": actor,
                    "created_at": now,
                },
            )
            # The newest retained config is the only one that matters: older ones stop retrying.
            self.outbox.enqueue(conn, push, CmdChannel.CONFIG, created_by=actor, supersede=True)
        self.outbox.wake()
        return ConfigPushView(
            device, version, actor, now, config, None, "pending", None, push.id, "pending"
        )

    def latest_config(self, device: str) -> ConfigPushView:
        with self.engine.connect() as conn:
            row = repository.latest_config_push(conn, device)
            if row is None:
                raise NoConfigPushed(f"no config pushed to {device!r} yet")
            applied = repository.applied_config_version(conn, device)
            reply = (
                repository.reply_payload(conn, row.message_id, device) if row.message_id else None
            )
            command = commands.get(conn, row.message_id) if row.message_id else None
        status, error = "pending", None
        if reply is not None:
            ok, error = commands.reply_answer(reply)
            status = "applied" if ok else "rejected"
        elif applied is not None and applied >= row.version:
            status = "applied"
        return ConfigPushView(
            device,
            row.version,
            row.created_by,
            row.created_at,
            row.config,
            applied,
            status,
            error,
            row.message_id,
            command.state if command is not None else None,
        )

    # -- the broker's files ---------------------------------------------------------------

    def device_accounts(self) -> list[Account]:
        """Broker accounts of every active device."""
        with self.engine.connect() as conn:
            rows = repository.active(conn)
        return [Account.device(r.site, r.kind, r.id, r.mqtt_password_hash) for r in rows]

    def accounts(self) -> list[Account]:
        """Everything the broker's password file and ACL must hold."""
        return self._service_accounts() + self.device_accounts()

    def _service_accounts(self) -> list[Account]:
        accounts = self.broker.service_accounts() if self.broker is not None else []
        if self.extra_accounts is not None:
            accounts += self.extra_accounts()
        return accounts

    def sync_broker(self) -> None:
        """Rewrite the broker's password file and ACL from the registry and reload it."""
        if self.directory is not None:
            self.directory.refresh()
        if self.broker is None:
            return
        accounts = self.accounts()
        try:
            # The files first: a broker that is down (or restarts) reads them when it starts.
            write_accounts(self.broker.password_file, self.broker.acl_file, accounts)
        except OSError as err:
            # The database change stands; the next provisioning or retirement syncs again.
            raise Unavailable(
                f"device saved, but the broker's files were not updated: {err}"
            ) from err
        try:
            if self._reload is not None:
                self._reload()
            elif self.broker.pid_file is not None:
                _sighup(self.broker.pid_file)
            if self._control is not None:
                self._control(accounts)
        except BrokerUnreachable as err:
            log.warning("broker not reachable, it reads the updated files when it starts: %s", err)
        except (BrokerError, ValueError) as err:
            raise Unavailable(f"device saved, but the broker was not updated: {err}") from err
        log.info("broker accounts synced (%d accounts)", len(accounts))


def _sighup(pid_file: Path) -> None:
    """SIGHUP the broker in ``pid_file``; a missing file or a stale pid means it is down."""
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        log.info("no broker pid file %s: the broker is not running", pid_file)
        return
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        log.info("stale broker pid file %s: the broker is not running", pid_file)


def dynsec_control(config: HubConfig) -> Callable[[list[Account]], None] | None:
    """Apply ACL changes to the running broker as the hub's own MQTT account (a hub without
    broker files does not manage the broker)."""
    if config.broker is None:
        return None
    control = DynsecControl.for_bus(config.mqtt, f"{config.client_id}-dynsec")
    return control.apply if control is not None else None


# The name the hub used before the domain layer; the demo and older scripts still use it.
DeviceRegistry = DeviceService


def _cert_serial(cert_pem: str) -> str:
    from cryptography import x509

    return format(x509.load_pem_x509_certificate(cert_pem.encode()).serial_number, "x")
