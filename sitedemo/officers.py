"""The demo's patrol officers: hub users (role officer) bound to their glasses, each running a
real glasses agent (``gridward edge glasses --config F``) that reads a simulated GNSS receiver,
draws its HUD into PNG frames and answers every dispatch by itself after a delay, so the loop
(alert -> incident -> dispatch -> notify -> acknowledge -> on my way -> arrived) closes on screen.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import Engine

from edge.bus_config import BusConfig
from edge.sim import RoutePoint
from hub.auth import Role, create_user
from hub.broker import new_password
from sitedemo.gnss import SimulatedGnss
from sitedemo.site import Officer

log = logging.getLogger(__name__)

# `gridward edge glasses` with this interpreter and this source tree (the console script may
# belong to another install of the package).
GRIDWARD = [sys.executable, "-c", "import sys; from edge.cli import main; sys.exit(main())"]


def glasses_device(officer: Officer) -> str:
    return f"glasses-{officer.id}"


def create_officer_users(
    engine: Engine, officers: list[Officer], secrets: Path,
    write_secret: Callable[[Path, str], Path],
) -> dict[str, str]:
    """One hub user of role officer per demo officer (the username is the officer id, which is
    also the ``entity`` of their positions); passwords go to ``secrets``."""
    passwords: dict[str, str] = {}
    with engine.begin() as conn:
        for officer in officers:
            passwords[officer.id] = new_password()
            create_user(conn, officer.id, passwords[officer.id], Role.OFFICER, officer.name)
            write_secret(secrets / f"{officer.id}.password", passwords[officer.id])
    return passwords


def bind_officers(base_url: str, admin_password: str, officers: list[Officer]) -> None:
    """Bind each officer to their glasses and put them on duty, through the hub's dispatch API
    (``PUT /api/v1/officers/{username}``), as a commander's desk would."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        res = client.post("/api/v1/auth/login",
                          json={"username": "admin", "password": admin_password})
        res.raise_for_status()
        client.headers["Authorization"] = f"Bearer {res.json()['token']}"
        for officer in officers:
            res = client.put(f"/api/v1/officers/{officer.id}",
                             json={"device": glasses_device(officer), "on_duty": True})
            res.raise_for_status()


def glasses_config(officer: Officer, *, site: str, mqtt: BusConfig, data_dir: Path,
                   hud_dir: Path, gnss_port: str) -> dict[str, Any]:
    """The generated agent config (edge/glasses/config.py's GlassesConfig, as YAML)."""
    return {
        "site": site,
        "device": glasses_device(officer),
        "data_dir": str(data_dir),
        "health_interval_s": 5.0,
        "mqtt": mqtt.model_dump(mode="json", exclude_defaults=True),
        "officer": {"username": officer.id},
        "language": officer.language,
        "display": {"sink": {"type": "png", "directory": str(hud_dir), "keep": 20}},
        "speech": {"enabled": False},  # a demo server has no loudspeaker worth waking
        "position": {"source": "gnss", "port": gnss_port},
        "position_interval_s": 1.0,
        "inputs": {"http": {"enabled": False}},
        "demo": True,
        "auto_answer": {"after_s": officer.answer_after_s},
    }


@dataclass
class DemoOfficer:
    """One officer's glasses agent process and the GNSS receiver it reads."""

    officer: Officer
    gnss: SimulatedGnss
    proc: subprocess.Popen[bytes]
    hud_dir: Path
    log_file: Path

    @classmethod
    def start(cls, officer: Officer, *, site: str, mqtt: BusConfig, run_dir: Path
              ) -> DemoOfficer:
        gnss = SimulatedGnss([RoutePoint(lon=p.lon, lat=p.lat) for p in officer.beat])
        gnss.start()
        device = glasses_device(officer)
        hud_dir = run_dir / "hud" / officer.id
        config_file = run_dir / "edge" / f"{device}.yaml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config = glasses_config(officer, site=site, mqtt=mqtt, data_dir=run_dir / "edge" / device,
                                hud_dir=hud_dir, gnss_port=gnss.port)
        config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        log_file = run_dir / "edge" / f"{device}.log"
        with log_file.open("wb") as out:
            proc = subprocess.Popen(
                [*GRIDWARD, "edge", "glasses", "--config", str(config_file)],
                stdout=out, stderr=subprocess.STDOUT,
            )
        return cls(officer, gnss, proc, hud_dir, log_file)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the agent says "stopped" and exits
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.warning("glasses agent of %s did not stop; killing it", self.officer.id)
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.gnss.stop()
