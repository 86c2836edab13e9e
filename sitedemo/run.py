"""``gridward demo`` (``python -m sitedemo``): the whole stack on one machine.

A Mosquitto broker with a generated config (password file, per-device ACL, TLS and websockets
listeners on free loopback ports), the hub (ingest, store, API, live map), and simulated field
devices replaying real data: a camera box on the pedestrian video ``vtest.avi``, a LiDAR scanner
guarding a yard, a wristband gateway with residents of a care home (one walks out), and two
patrol officers: hub users bound to real glasses agents (a simulated GNSS receiver each, HUD
frames as PNG files, answers given by themselves after a delay). Every device is provisioned
through the hub with its own credentials.

The run directory is recreated on every start (it is demo data). Secrets are written 0600; the
admin password is printed once.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import signal
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Protocol

import httpx
from sqlalchemy import select

from edge.bus_config import BusConfig
from edge.protocol import DeviceKind
from hub.auth import Role, create_user
from hub.broker import Account, BrokerLayout, Mosquitto, hash_password, new_password
from hub.clock import ScaledClock, SystemClock
from hub.config import ApiConfig, BrokerFilesConfig, HubConfig
from hub.incidents.config import DEFAULT_ALERT_RULES, IncidentsConfig
from hub.pki import SiteCA
from hub.schema import grid_cells, pois, zones
from hub.service import HubService
from sitedemo.officers import DemoOfficer, bind_officers, create_officer_users, glasses_device
from sitedemo.site import SiteConfig
from sitedemo.workflow import WorkflowDriver, seed_organisation, summary

log = logging.getLogger(__name__)

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


@dataclass
class DemoStack:
    run_dir: Path
    site: SiteConfig
    api_port: int = 8080
    broker: Mosquitto | None = None
    hub: HubService | None = None
    pieces: list[Stoppable] = field(default_factory=list)
    admin_password: str = ""
    skipped: list[str] = field(default_factory=list)
    workflow: WorkflowDriver | None = None

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
            site=self.site.site,
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
            timezone=self.site.timezone,
            incidents=_incidents_config(self.site),
        )
        workflow = self.site.workflow
        clock = ScaledClock(workflow.clock_speedup) if workflow else None
        self.hub = HubService(config, broker_reload=self.broker.reload, clock=clock)
        if clock is not None:
            # Dispatch on real time: it weighs the officers' GNSS fixes, stamped by their
            # glasses in real UTC, against its clock (on the 600x clock every fix is minutes
            # old within a second, and every officer offline), and the glasses answer after
            # real seconds. The incident deadlines stay on the accelerated clock.
            self.hub.ctx.dispatch.clock = SystemClock()
        self.admin_password = new_password()
        with self.hub.store.engine.begin() as conn:
            create_user(conn, "admin", self.admin_password, Role.ADMIN, "Demo administrator")
        _secret_file(secrets / "admin.password", self.admin_password)
        self._seed_map()
        seed_organisation(self.hub.store.engine, self.site, secrets, _secret_file)
        create_officer_users(self.hub.store.engine, self.site.officers, secrets, _secret_file)
        self.hub.start()
        if workflow is not None:
            self.workflow = WorkflowDriver(
                f"http://127.0.0.1:{self.hub.api_port}", self.hub.store.engine, self.site
            )
            self.workflow.start()

        passwords: dict[str, Path] = {}

        hub, site, origin = self.hub, self.site, (self.site.origin.lon, self.site.origin.lat)

        def provision(kind: DeviceKind, device: str, name: str) -> None:
            mount = site.device_mounts.get(device)
            location = site.lonlat(mount) if mount else None
            creds = hub.registry.add("demo", site.site, kind, device, name, location=location)
            passwords[device] = _secret_file(secrets / f"{device}.mqtt", creds.mqtt_password or "")

        def mqtt_for(device: str) -> BusConfig:
            return BusConfig(port=layout.port, username=device, password_file=passwords[device])

        self._start_officers(provision, mqtt_for)
        for kind, module_name in AGENT_DEMOS.items():
            try:
                module = importlib.import_module(module_name)
                for device in module.DEMO_DEVICES:
                    provision(kind, device, f"Demo {kind.value}")
                piece = module.start_demo(
                    site.site, mqtt_for, self.run_dir / "edge" / kind.value, origin
                )
            except Exception as err:  # noqa: BLE001 - a missing optional part must not stop the demo
                log.warning("demo %s not started: %s", kind.value, err)
                self.skipped.append(f"{kind.value} ({err})")
                continue
            self.pieces.append(piece)

    def _start_officers(
        self,
        provision: Callable[[DeviceKind, str, str], None],
        mqtt_for: Callable[[str], BusConfig],
    ) -> None:
        """Each officer's glasses (provisioned, agent started), then the officers bound to them
        and on duty; the hub can send them once their first GNSS fix has arrived."""
        if self.hub is None:
            raise RuntimeError("hub not created")
        for officer in self.site.officers:
            device = glasses_device(officer)
            provision(DeviceKind.GLASSES, device, officer.name)
            self.pieces.append(
                DemoOfficer.start(officer, site=self.site.site, mqtt=mqtt_for(device),
                                  run_dir=self.run_dir)
            )
        if self.site.officers:
            try:
                bind_officers(f"http://127.0.0.1:{self.hub.api_port}", self.admin_password,
                              self.site.officers)
            except httpx.HTTPError as err:
                log.warning("officers not bound to their glasses: %s", err)
                self.skipped.append(f"officer binding ({err})")

    def _seed_map(self) -> None:
        """Grid cells over the demo district, points of interest and the wristband zones."""
        if self.hub is None:
            raise RuntimeError("hub not created")
        from edge.validators import utcnow

        now = utcnow()
        site, grid = self.site, self.site.grid
        cells = []
        for row in range(grid.rows):
            for col in range(grid.cols):
                cell_id = f"cell-{string.ascii_lowercase[row]}{col + 1}"
                west_m = grid.north_west_m.east_m + col * grid.cell_size_m
                south_m = grid.north_west_m.north_m - (row + 1) * grid.cell_size_m
                cells.append(
                    {
                        "id": cell_id,
                        "site": site.site,
                        "name": f"{string.ascii_uppercase[row]}{col + 1}",
                        "team": grid.row_teams[row],
                        "geometry": site.square(west_m, south_m, grid.cell_size_m),
                        "properties": {},
                        "updated_at": now,
                    }
                )
        with self.hub.store.engine.begin() as conn:
            conn.execute(grid_cells.insert(), cells)
        # Hand-set warnings are overrides (hub/warnings): a reason and an expiry, the longest
        # allowed; then the rules colour the cells from incidents and alerts.
        lasts = timedelta(hours=self.hub.config.warnings.override_max_h)
        for w in site.warnings:
            self.hub.ctx.warnings.set_override(
                "admin", w.cell, w.level, w.reason, self.hub.clock.now() + lasts
            )
        with self.hub.store.engine.begin() as conn:
            if site.places:
                conn.execute(
                    pois.insert(),
                    [
                        {
                            "id": place.id,
                            "site": site.site,
                            "name": place.name,
                            "category": place.category,
                            "lon": site.lonlat(place.at)[0],
                            "lat": site.lonlat(place.at)[1],
                            "properties": {},
                            "updated_at": now,
                        }
                        for place in site.places
                    ],
                )
            try:
                wristband = importlib.import_module("edge.wristband.demo")
                for feat in wristband.demo_zones((site.origin.lon, site.origin.lat))["features"]:
                    props = feat["properties"]
                    if conn.execute(select(zones.c.id).where(zones.c.id == props["id"])).first():
                        continue
                    conn.execute(
                        zones.insert().values(
                            id=props["id"],
                            site=site.site,
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
        if self.workflow is not None:
            self.workflow.stop()
            self.workflow = None
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


def _incidents_config(site: SiteConfig) -> IncidentsConfig:
    """The hub's default incident workflow, with the demo's alert rules first."""
    extra = site.workflow.alert_rules if site.workflow else []
    return IncidentsConfig(alert_rules=[*extra, *DEFAULT_ALERT_RULES])


def run_demo(
    run_dir: Path, site: SiteConfig, duration_s: float | None = None, api_port: int = 8080
) -> int:
    stack = DemoStack(run_dir, site, api_port=api_port)
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
        f"gridward demo is running: {stack.site.name} (site {stack.site.site}).",
        "",
        f"  Dashboard   http://127.0.0.1:{port}/",
        f"  Log in as   admin / {stack.admin_password}   (shown once; also in "
        f"{run_dir / 'secrets/admin.password'})",
        f"  API docs    http://127.0.0.1:{port}/docs",
        f"  Broker      mqtt://127.0.0.1:{layout.port}  (TLS + client certs :{layout.tls_port},"
        f" websockets :{layout.ws_port})",
        f"  Hub store   {run_dir / 'hub.sqlite'}",
        *_workflow_lines(stack),
        *_officer_lines(stack),
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
            if stack.workflow is not None:
                print(f"         {summary(stack.hub.store.engine)}", flush=True)
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
    finally:
        stack.stop()
    print("gridward demo stopped.", flush=True)
    return 0


def _workflow_lines(stack: DemoStack) -> list[str]:
    wf = stack.site.workflow
    if wf is None:
        return []
    return [
        f"  Workflow    hub clock {wf.clock_speedup:g}x real time; people: "
        + ", ".join(
            [wf.commander.username]
            + [d.supervisor.username for d in wf.departments]
            + [w.username for w in wf.grid_workers]
        )
        + f" (passwords in {stack.run_dir / 'secrets'})",
    ]


def _officer_lines(stack: DemoStack) -> list[str]:
    officers = [p for p in stack.pieces if isinstance(p, DemoOfficer)]
    if not officers:
        return []
    return [
        "  Officers    " + ", ".join(o.officer.id for o in officers)
        + f" (role officer, passwords in {stack.run_dir / 'secrets'}); their glasses answer"
        " each dispatch by themselves",
        *(f"  HUD frames  {o.officer.id}: {o.hud_dir / 'latest.png'}  (agent log {o.log_file})"
          for o in officers),
    ]


def _device_ids(stack: DemoStack) -> list[str]:
    if stack.hub is None:
        return []
    from hub.schema import devices

    with stack.hub.store.engine.connect() as conn:
        return [r.id for r in conn.execute(select(devices.c.id).order_by(devices.c.id))]
