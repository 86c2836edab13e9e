"""``gridward demo``: the whole stack on one machine.

A Mosquitto broker with a generated config (password file, per-device ACL, TLS and websockets
listeners on free loopback ports), the hub, and simulated field devices, all with their own
credentials. Everything lives in one run directory; secrets are written 0600 and never printed
except the one line an operator needs to log in.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from edge.bus import BusConfig, TlsConfig
from edge.protocol import DeviceKind, EntityKind
from edge.sim import RoutePoint, SimulatedDevice, SimulatedDeviceConfig
from hub.broker import Account, BrokerLayout, Mosquitto, hash_password, new_password
from hub.config import HubConfig
from hub.pki import SiteCA
from hub.service import HubService

log = logging.getLogger(__name__)

DEMO_SITE = "demo"
# A few blocks of a district (WGS84). Any place works; the map is drawn from these.
DEMO_ROUTES: dict[str, list[tuple[float, float]]] = {
    "officer-1": [
        (114.0550, 22.5420),
        (114.0590, 22.5420),
        (114.0590, 22.5450),
        (114.0550, 22.5450),
    ],
    "officer-2": [(114.0600, 22.5400), (114.0640, 22.5410), (114.0630, 22.5440)],
}


def _secret_file(path: Path, value: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return path


@dataclass
class DemoStack:
    run_dir: Path
    broker: Mosquitto | None = None
    hub: HubService | None = None
    devices: list[SimulatedDevice] = field(default_factory=list)

    def start(self, n_officers: int = 2, alert_interval_s: float = 20.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        secrets_dir = self.run_dir / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        ca = SiteCA(self.run_dir / "ca")
        layout = BrokerLayout.with_tls(self.run_dir / "broker", ca, persistence=True)
        hub_pw = new_password()
        accounts = [Account.hub("hub", hash_password(hub_pw))]
        device_pw: dict[str, str] = {}
        names = list(DEMO_ROUTES)[:n_officers]
        for name in names:
            device = f"glasses-{name}"
            device_pw[device] = new_password()
            accounts.append(
                Account.device(
                    DEMO_SITE, DeviceKind.GLASSES, device, hash_password(device_pw[device])
                )
            )
        layout.write_config()
        layout.write_accounts(accounts)
        self.broker = Mosquitto(layout)
        self.broker.start()

        hub_cfg = HubConfig(
            site=DEMO_SITE,
            database_url=f"sqlite:///{self.run_dir / 'hub.sqlite'}",
            mqtt=BusConfig(
                port=layout.port,
                username="hub",
                password_file=_secret_file(secrets_dir / "hub.mqtt", hub_pw),
            ),
        )
        self.hub = HubService(hub_cfg)
        self.hub.start()

        for name in names:
            device = f"glasses-{name}"
            cfg = SimulatedDeviceConfig(
                site=DEMO_SITE,
                device=device,
                kind=DeviceKind.GLASSES,
                entity=name,
                entity_kind=EntityKind.OFFICER,
                route=[RoutePoint(lon=lon, lat=lat) for lon, lat in DEMO_ROUTES[name]],
                data_dir=self.run_dir / "edge",
                health_interval_s=5.0,
                alert_interval_s=alert_interval_s,
                mqtt=BusConfig(
                    port=layout.port,
                    username=device,
                    password_file=_secret_file(secrets_dir / f"{device}.mqtt", device_pw[device]),
                ),
            )
            sim = SimulatedDevice(cfg)
            sim.start()
            self.devices.append(sim)

    def tls_example(self) -> TlsConfig | None:
        if self.broker is None or self.broker.layout.ca_file is None:
            return None
        return TlsConfig(ca_file=self.broker.layout.ca_file)

    def stop(self) -> None:
        for sim in self.devices:
            sim.stop()
        self.devices.clear()
        if self.hub is not None:
            self.hub.stop()
            self.hub = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def run_demo(run_dir: Path, duration_s: float | None = None) -> int:
    stack = DemoStack(run_dir)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"gridward demo: starting in {run_dir} ...", flush=True)
    stack.start()
    if stack.broker is None or stack.hub is None:
        raise RuntimeError("demo stack did not start")
    layout = stack.broker.layout
    print(
        "\n".join(
            [
                "",
                "gridward demo is running.",
                f"  broker      mqtt://127.0.0.1:{layout.port}  (TLS with client certs on "
                f":{layout.tls_port}, websockets on :{layout.ws_port})",
                f"  hub store   {run_dir / 'hub.sqlite'}",
                f"  devices     {', '.join(d.config.device for d in stack.devices)}",
                "  watch live  mosquitto_sub -h 127.0.0.1 -p "
                f'{layout.port} -u hub -P "$(cat {run_dir / "secrets/hub.mqtt"})"'
                " -t 'gw/v1/#' -v",
                "Press Ctrl+C to stop.",
                "",
            ]
        ),
        flush=True,
    )
    started = time.monotonic()
    try:
        while not stop.wait(10.0):
            s = stack.hub.ingest.stats
            print(
                f"[{time.monotonic() - started:6.0f}s] received {s.received}, alerts stored "
                f"{s.stored_alerts}, positions stored {s.stored_positions}, rejected "
                f"{sum(s.rejected.values())}",
                flush=True,
            )
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
    finally:
        stack.stop()
    print("gridward demo stopped.", flush=True)
    return 0
