"""Device identities and their broker credentials.

Provisioning creates a device row, a random MQTT password (shown once; only the Mosquitto hash
is kept) and optionally a client certificate from the site CA; then the broker's password file
and ACL are regenerated from the registry and the broker reloads them (SIGHUP). Retiring a device
removes its account and ACL lines the same way, and hub ingest stops accepting its messages.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from edge.protocol import DeviceKind, Inbound
from edge.validators import check_segment, utcnow
from hub.audit import AuditTrail
from hub.broker import Account, hash_password, new_password, write_accounts
from hub.config import BrokerFilesConfig
from hub.fusion import FUSION_DEVICE
from hub.pki import SiteCA
from hub.schema import devices

log = logging.getLogger(__name__)


# Labels the hub stores its own computed data under; no device may take them.
RESERVED_DEVICE_IDS = frozenset({FUSION_DEVICE})


class ProvisioningError(ValueError):
    """A device that cannot be provisioned or retired as asked."""


@dataclass(frozen=True, slots=True)
class Credentials:
    device: str
    mqtt_username: str
    mqtt_password: str | None
    cert_pem: str | None = None
    key_pem: str | None = None
    ca_pem: str | None = None


class DeviceDirectory:
    """Cache of active devices for the ingest gate; refreshed on change and periodically so
    replicas pick up each other's provisioning."""

    def __init__(
        self, engine: Engine, refresh_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.engine = engine
        self.refresh_s = refresh_s
        self._clock = clock
        self._active: dict[str, tuple[str, str]] = {}
        self._retired: set[str] = set()
        self._loaded_at = -1e18
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(devices.c.id, devices.c.site, devices.c.kind, devices.c.status)
            ).all()
        with self._lock:
            self._active = {r.id: (r.site, r.kind) for r in rows if r.status == "active"}
            self._retired = {r.id for r in rows if r.status != "active"}
            self._loaded_at = self._clock()

    def gate(self, inbound: Inbound) -> str | None:
        """Ingest gate: None to accept, else the rejection reason."""
        if self._clock() - self._loaded_at > self.refresh_s:
            try:
                self.refresh()
            except SQLAlchemyError as err:
                # Keep judging with the cache we have; the next message retries the refresh.
                log.warning("device registry refresh failed, using the cached list: %s", err)
        topic = inbound.topic
        with self._lock:
            entry = self._active.get(topic.device)
            retired = topic.device in self._retired
        if entry is None:
            return "retired_device" if retired else "unknown_device"
        if entry != (topic.site, topic.kind.value):
            return "wrong_site_or_kind"
        return None


class DeviceRegistry:
    def __init__(
        self,
        engine: Engine,
        audit: AuditTrail,
        broker: BrokerFilesConfig | None,
        *,
        ca: SiteCA | None = None,
        reload: Callable[[], None] | None = None,
        directory: DeviceDirectory | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.broker = broker
        self.ca = ca
        self._reload = reload
        self.directory = directory
        # Accounts managed elsewhere (e.g. a shared lab broker's own users) kept on every sync.
        self.extra_accounts: Callable[[], list[Account]] | None = None

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
        check_segment(site, "site")
        check_segment(device, "device")
        if device in RESERVED_DEVICE_IDS:
            raise ProvisioningError(
                f"device id {device!r} is reserved for positions the hub computes itself"
            )
        try:
            kind = DeviceKind(kind)
        except ValueError as err:
            raise ProvisioningError(
                f"kind {kind!r} is not one of {', '.join(k.value for k in DeviceKind)}"
            ) from err
        if with_certificate and self.ca is None:
            raise ProvisioningError("client certificates need the site CA (hub config ca_dir)")
        if not with_password and not with_certificate:
            raise ProvisioningError("a device needs a password, a certificate, or both")
        password = new_password() if with_password else None
        details: dict[str, Any] = {
            "site": site,
            "kind": kind.value,
            "password": with_password,
            "certificate": with_certificate,
        }
        with self.audit.change(actor, "device.provision", device, details) as conn:
            existing = conn.execute(select(devices.c.status).where(devices.c.id == device)).first()
            if existing is not None:
                raise ProvisioningError(
                    f"device {device!r} already exists ({existing.status}); ids are never reused"
                )
            cert_pem = key_pem = ca_pem = None
            serial = None
            if with_certificate and self.ca is not None:
                pair = self.ca.issue_client(device, self.ca.directory / "issued")
                cert_pem = pair.cert_file.read_text()
                key_pem = pair.key_file.read_text()
                pair.key_file.unlink()  # handed to the installer once; the hub keeps no copy
                ca_pem = self.ca.cert_file.read_text()
                serial = _cert_serial(cert_pem)
                details["cert_serial"] = serial
            conn.execute(
                devices.insert().values(
                    id=device,
                    site=site,
                    kind=kind.value,
                    name=name,
                    status="active",
                    mqtt_password_hash=hash_password(password) if password else None,
                    cert_serial=serial,
                    lon=location[0] if location else None,
                    lat=location[1] if location else None,
                    created_at=utcnow(),
                    created_by=actor,
                )
            )
        self.sync_broker()
        return Credentials(device, device, password, cert_pem, key_pem, ca_pem)

    def retire(self, actor: str, device: str, reason: str) -> None:
        if not reason.strip():
            raise ProvisioningError("retiring a device needs a reason")
        with self.audit.change(actor, "device.retire", device, {"reason": reason}) as conn:
            res = conn.execute(
                update(devices)
                .where(devices.c.id == device, devices.c.status == "active")
                .values(status="retired", retired_at=utcnow(), mqtt_password_hash=None)
            )
            if res.rowcount != 1:
                raise ProvisioningError(f"no active device {device!r}")
        self.sync_broker()

    def device_accounts(self) -> list[Account]:
        """Broker accounts of every active device."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(devices).where(devices.c.status == "active")).all()
        return [Account.device(r.site, r.kind, r.id, r.mqtt_password_hash) for r in rows]

    def accounts(self) -> list[Account]:
        """Everything the broker's password file and ACL must hold."""
        accounts = self.broker.service_accounts() if self.broker is not None else []
        if self.extra_accounts is not None:
            accounts += self.extra_accounts()
        return accounts + self.device_accounts()

    def sync_broker(self) -> None:
        """Rewrite the broker's password file and ACL from the registry and reload it."""
        if self.directory is not None:
            self.directory.refresh()
        if self.broker is None:
            return
        accounts = self.accounts()
        write_accounts(self.broker.password_file, self.broker.acl_file, accounts)
        if self._reload is not None:
            self._reload()
        elif self.broker.pid_file is not None:
            pid = int(self.broker.pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        log.info("broker accounts synced (%d accounts)", len(accounts))


def _cert_serial(cert_pem: str) -> str:
    from cryptography import x509

    return format(x509.load_pem_x509_certificate(cert_pem.encode()).serial_number, "x")
