"""A real Mosquitto for tests: generated password file, per-device ACL, a TLS listener with a
CA and certificates made by the fixture, and a websockets listener."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.bus import Bus, BusConfig, TlsConfig
from edge.protocol import DeviceKind
from hub.broker import (
    Account,
    BrokerLayout,
    BrokerUnreachable,
    DynsecControl,
    Mosquitto,
    hash_password,
    new_password,
)
from hub.pki import SiteCA

_site_counter = itertools.count(1)


def unique_site(prefix: str = "t") -> str:
    """A topic prefix of its own for each test (gw/v1/<site>/...)."""
    return f"{prefix}{next(_site_counter)}-{int(time.time() * 1000) % 100000}"


@dataclass
class BrokerHarness:
    directory: Path
    ca: SiteCA = field(init=False)
    layout: BrokerLayout = field(init=False)
    proc: Mosquitto = field(init=False)
    accounts: dict[str, Account] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    # Other writers of this broker's accounts (a hub's device registry) whose accounts must
    # survive when the harness rewrites the files.
    extra_sources: list[Callable[[], list[Account]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ca = SiteCA(self.directory / "ca")
        self.layout = BrokerLayout.with_tls(self.directory / "broker", self.ca)
        self.layout.write_config()
        self.add_account(Account.hub("hub", None), "hub")
        self.proc = Mosquitto(self.layout)

    @property
    def port(self) -> int:
        return self.layout.port

    def start(self) -> None:
        self.proc.start()

    def stop(self) -> None:
        self.proc.stop()

    def add_account(self, account: Account, username: str) -> str:
        password = new_password()
        self.passwords[username] = password
        self.accounts[username] = account.with_hash(hash_password(password))
        self.write_accounts()
        return password

    def all_accounts(self) -> list[Account]:
        extra = [a for source in self.extra_sources for a in source()]
        names = {a.username for a in extra}
        return [a for a in self.accounts.values() if a.username not in names] + extra

    def write_accounts(self) -> None:
        self.layout.write_accounts(self.all_accounts())

    def control(self) -> DynsecControl:
        """The broker's ACL admin, logged in as the hub account."""
        return DynsecControl(
            "127.0.0.1", self.port, "hub", lambda: self.passwords["hub"], "harness-dynsec"
        )

    def sync(self) -> None:
        """Rewrite the files and apply them to the running broker (SIGHUP + dynamic security)."""
        accounts = self.all_accounts()
        self.layout.write_accounts(accounts)
        if self.proc.pid is not None:
            self.proc.reload()
            # A broker stopped meanwhile loads the files when it starts.
            with contextlib.suppress(BrokerUnreachable):
                self.control().apply(accounts)

    def add_device(self, site: str, kind: DeviceKind | str, device: str) -> BusConfig:
        """Provision a device account and reload the broker; returns its connection config."""
        self.add_account(Account.device(site, kind, device, None), device)
        if self.proc.pid is not None:
            self.sync()
            self._wait_login(device)
        return self.config_for(device)

    def config_for(self, username: str, **overrides: object) -> BusConfig:
        secret = self.directory / f"{username}.pw"
        secret.write_text(self.passwords[username], encoding="utf-8")
        values: dict[str, object] = {
            "port": self.port,
            "username": username,
            "password_file": secret,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.5,
            "keepalive_s": 5,
        }
        values.update(overrides)
        return BusConfig.model_validate(values)

    def tls_config_for(self, device: str) -> BusConfig:
        pair = self.ca.issue_client(device, self.directory / "clients")
        return BusConfig(
            port=self.layout.tls_port or 0,
            reconnect_min_s=0.05,
            reconnect_max_s=0.5,
            keepalive_s=5,
            tls=TlsConfig(
                ca_file=self.ca.cert_file, cert_file=pair.cert_file, key_file=pair.key_file
            ),
        )

    def hub_config(self, **overrides: object) -> BusConfig:
        return self.config_for("hub", **overrides)

    def _wait_login(self, username: str, timeout_s: float = 15.0) -> None:
        """SIGHUP reloads asynchronously: wait until the new account can log in."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # Device client ids are bound to their usernames.
            bus = Bus(self.config_for(username), client_id=username)
            bus.start()
            ok = bus.wait_connected(0.5)
            bus.stop()
            if ok:
                return
        raise TimeoutError(f"broker did not accept {username} within {timeout_s}s")
