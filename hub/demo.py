"""``gridward demo``: the whole stack on one machine.

A Mosquitto broker with a generated config (password file, per-device ACL, TLS and websockets
listeners on free loopback ports), the hub (ingest, store, API, live map), and simulated field
devices replaying real data: a camera box on the pedestrian video ``vtest.avi``, a LiDAR scanner
guarding a yard, a wristband gateway with residents of a care home (one walks out), and two
patrol officers. Every device is provisioned through the hub with its own credentials.

The run directory is recreated on every start (it is demo data). Secrets are written 0600; the
admin password is printed once.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from sqlalchemy import select

from edge.bus import BusConfig
from edge.protocol import DeviceKind, EntityKind
from edge.sim import RoutePoint, SimulatedDevice, SimulatedDeviceConfig
from hub.auth import Role, create_user
from hub.broker import Account, BrokerLayout, Mosquitto, hash_password, new_password
from hub.config import ApiConfig, BrokerFilesConfig, HubConfig
from hub.pki import SiteCA
from hub.schema import grid_cells, pois, zones
from hub.service import HubService

log = logging.getLogger(__name__)

DEMO_SITE = "demo"
ORIGIN = (114.0570, 22.5430)  # a few blocks of a district (WGS84); any place works
M_PER_DEG = 111_320.0
OFFICER_ROUTES: dict[str, list[tuple[float, float]]] = {
    "officer-1": [(114.0550, 22.5420), (114.0590, 22.5420), (114.0590, 22.5450),
                  (114.0550, 22.5450)],
    "officer-2": [(114.0580, 22.5405), (114.0605, 22.5405), (114.0605, 22.5425),
                  (114.0580, 22.5425)],
}
# Where the fixed demo devices are mounted, metres east/north of ORIGIN.
DEVICE_MOUNTS: dict[str, tuple[float, float]] = {
    "camera-vtest": (5.0, 5.0),
    "lidar-yard": (40.0, 20.0),
    "wristband-gw-1": (0.0, 0.0),
}
# Agents with a demo piece: kind -> module exposing DEMO_DEVICES and start_demo().
AGENT_DEMOS: dict[DeviceKind, str] = {
    DeviceKind.CAMERA: "edge.camera.demo",
    DeviceKind.LIDAR: "edge.lidar.demo",
    DeviceKind.WRISTBAND: "edge.wristband.demo",
}


class Stoppable(Protocol):
    def stop(self) -> None: ...


def _secret_file(path: Path, value: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return path


def _offset(dx_m: float, dy_m: float) -> tuple[float, float]:
    lon0, lat0 = ORIGIN
    return (lon0 + dx_m / (M_PER_DEG * math.cos(math.radians(lat0))), lat0 + dy_m / M_PER_DEG)


def _square(x0: float, y0: float, size: float) -> dict[str, Any]:
    ring = [
        _offset(x0, y0),
        _offset(x0 + size, y0),
        _offset(x0 + size, y0 + size),
        _offset(x0, y0 + size),
    ]
    return {"type": "Polygon", "coordinates": [[list(p) for p in [*ring, ring[0]]]]}


@dataclass
class DemoStack:
    run_dir: Path
    api_port: int = 8080
    broker: Mosquitto | None = None
    hub: HubService | None = None
    pieces: list[Stoppable] = field(default_factory=list)
    admin_password: str = ""
    skipped: list[str] = field(default_factory=list)

    def start(self) -> None:
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True)
        secrets = self.run_dir / "secrets"
        secrets.mkdir(mode=0o700)
        ca = SiteCA(self.run_dir / "ca")
        layout = BrokerLayout.with_tls(self.run_dir / "broker", ca, persistence=True)
        hub_pw = new_password()
        service_accounts = _secret_file(
            secrets / "broker-service-accounts", f"hub:{hash_password(hub_pw)}\n"
        )
        layout.write_config()
        layout.write_accounts([Account.hub("hub", hash_password(hub_pw))])
        self.broker = Mosquitto(layout)
        self.broker.start()

        config = HubConfig(
            site=DEMO_SITE,
            database_url=f"sqlite:///{self.run_dir / 'hub.sqlite'}",
            mqtt=BusConfig(
                port=layout.port,
                username="hub",
                password_file=_secret_file(secrets / "hub.mqtt", hub_pw),
            ),
            api=ApiConfig(port=self.api_port),
            broker=BrokerFilesConfig(
                password_file=layout.password_file,
                acl_file=layout.acl_file,
                service_accounts_file=service_accounts,
            ),
            ca_dir=ca.directory,
            audit_head_file=self.run_dir / "audit.head",
        )
        self.hub = HubService(config, broker_reload=self.broker.reload)
        self.admin_password = new_password()
        with self.hub.store.engine.begin() as conn:
            create_user(conn, "admin", self.admin_password, Role.ADMIN, "Demo administrator")
        _secret_file(secrets / "admin.password", self.admin_password)
        self._seed_map()
        self.hub.start()

        passwords: dict[str, Path] = {}

        hub = self.hub

        def provision(kind: DeviceKind, device: str, name: str) -> None:
            mount = DEVICE_MOUNTS.get(device)
            creds = hub.registry.add(
                "demo", DEMO_SITE, kind, device, name, location=_offset(*mount) if mount else None
            )
            passwords[device] = _secret_file(secrets / f"{device}.mqtt", creds.mqtt_password or "")

        def mqtt_for(device: str) -> BusConfig:
            return BusConfig(port=layout.port, username=device, password_file=passwords[device])

        for name, route in OFFICER_ROUTES.items():
            device = f"glasses-{name}"
            provision(DeviceKind.GLASSES, device, f"Patrol {name}")
            sim = SimulatedDevice(
                SimulatedDeviceConfig(
                    site=DEMO_SITE,
                    device=device,
                    kind=DeviceKind.GLASSES,
                    entity=name,
                    entity_kind=EntityKind.OFFICER,
                    route=[RoutePoint(lon=lon, lat=lat) for lon, lat in route],
                    data_dir=self.run_dir / "edge",
                    health_interval_s=5.0,
                    alert_interval_s=None,
                    mqtt=mqtt_for(device),
                )
            )
            sim.start()
            self.pieces.append(sim)
        for kind, module_name in AGENT_DEMOS.items():
            try:
                module = importlib.import_module(module_name)
                for device in module.DEMO_DEVICES:
                    provision(kind, device, f"Demo {kind.value}")
                piece = module.start_demo(
                    DEMO_SITE, mqtt_for, self.run_dir / "edge" / kind.value, ORIGIN
                )
            except Exception as err:  # noqa: BLE001 - a missing optional part must not stop the demo
                log.warning("demo %s not started: %s", kind.value, err)
                self.skipped.append(f"{kind.value} ({err})")
                continue
            self.pieces.append(piece)

    def _seed_map(self) -> None:
        """Grid cells over the demo district, points of interest and the wristband zones."""
        if self.hub is None:
            raise RuntimeError("hub not created")
        from edge.validators import utcnow

        now = utcnow()
        teams = ["North team", "Central team", "South team"]
        cells = [
            {
                "id": f"cell-{'abc'[row]}{col + 1}",
                "site": DEMO_SITE,
                "name": f"{'ABC'[row]}{col + 1}",
                "team": teams[row],
                "geometry": _square(-400 + col * 200, 100 - row * 200, 200),
                "properties": {},
                "updated_at": now,
                # every row names every column: a multi-row insert takes its columns from row 1
                "warning_level": None,
                "warning_reason": None,
                "warning_set_by": None,
                "warning_set_at": None,
            }
            for row in range(3)
            for col in range(4)
        ]
        cells[6].update(
            warning_level="orange",
            warning_reason="market day crowds",
            warning_set_by="admin",
            warning_set_at=now,
        )
        cells[1].update(
            warning_level="yellow",
            warning_reason="school-run traffic",
            warning_set_by="admin",
            warning_set_at=now,
        )
        places = [
            ("aed-library", "AED, public library", "aed", 10, 30),
            ("shelter-school", "Emergency shelter, No. 3 school", "shelter", -120, -60),
            ("supplies-depot", "Flood supplies depot", "supplies", 150, -120),
            ("clinic", "Community clinic", "medical", -60, 80),
        ]
        with self.hub.store.engine.begin() as conn:
            conn.execute(grid_cells.insert(), cells)
            conn.execute(
                pois.insert(),
                [
                    {
                        "id": pid,
                        "site": DEMO_SITE,
                        "name": name,
                        "category": cat,
                        "lon": _offset(x, y)[0],
                        "lat": _offset(x, y)[1],
                        "properties": {},
                        "updated_at": now,
                    }
                    for pid, name, cat, x, y in places
                ],
            )
            try:
                wristband = importlib.import_module("edge.wristband.demo")
                for feat in wristband.demo_zones(ORIGIN)["features"]:
                    props = feat["properties"]
                    if conn.execute(select(zones.c.id).where(zones.c.id == props["id"])).first():
                        continue
                    conn.execute(
                        zones.insert().values(
                            id=props["id"],
                            site=DEMO_SITE,
                            name=props["name"],
                            kind=props["kind"],
                            geometry=feat["geometry"],
                            properties={},
                            version=1,
                            updated_at=now,
                            updated_by="demo",
                        )
                    )
            except ImportError as err:
                log.warning("wristband zones not seeded: %s", err)

    def stop(self) -> None:
        for piece in reversed(self.pieces):
            try:
                piece.stop()
            except Exception:  # stop the rest regardless
                log.exception("stopping a demo piece failed")
        self.pieces.clear()
        if self.hub is not None:
            self.hub.stop()
            self.hub = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def run_demo(run_dir: Path, duration_s: float | None = None, api_port: int = 8080) -> int:
    stack = DemoStack(run_dir, api_port=api_port)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"gridward demo: starting in {run_dir} ...", flush=True)
    try:
        stack.start()
    except OSError as err:
        stack.stop()
        print(
            f"gridward demo: could not start: {err}. If port {api_port} is taken, "
            "run with --port 0 (any free port) or another port.",
            flush=True,
        )
        return 1
    if stack.broker is None or stack.hub is None:
        raise RuntimeError("demo stack did not start")
    layout = stack.broker.layout
    port = stack.hub.api_port
    lines = [
        "",
        "gridward demo is running.",
        "",
        f"  Dashboard   http://127.0.0.1:{port}/",
        f"  Log in as   admin / {stack.admin_password}   (shown once; also in "
        f"{run_dir / 'secrets/admin.password'})",
        f"  API docs    http://127.0.0.1:{port}/docs",
        f"  Broker      mqtt://127.0.0.1:{layout.port}  (TLS + client certs :{layout.tls_port},"
        f" websockets :{layout.ws_port})",
        f"  Hub store   {run_dir / 'hub.sqlite'}",
        "  Devices     " + ", ".join(str(d) for d in _device_ids(stack)),
    ]
    if stack.skipped:
        lines.append("  Not started " + "; ".join(stack.skipped))
    lines += ["", "Press Ctrl+C to stop.", ""]
    print("\n".join(lines), flush=True)
    started = time.monotonic()
    try:
        while not stop.wait(min(10.0, duration_s or 10.0)):
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


def _device_ids(stack: DemoStack) -> list[str]:
    if stack.hub is None:
        return []
    from hub.schema import devices

    with stack.hub.store.engine.connect() as conn:
        return [r.id for r in conn.execute(select(devices.c.id).order_by(devices.c.id))]
