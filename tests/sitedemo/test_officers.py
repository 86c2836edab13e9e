"""The demo's officers: the glasses config the demo generates for each officer of the shipped
site file is one the agent accepts, and the officers become hub users of role officer bound
to their glasses and on duty, through the hub's dispatch API."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from edge.bus_config import BusConfig
from edge.glasses.config import GlassesConfig
from edge.protocol import DeviceKind
from hub.auth import Role, create_user
from sitedemo.officers import (
    GRIDWARD,
    bind_officers,
    create_officer_users,
    glasses_config,
    glasses_device,
)
from sitedemo.site import load_site
from tests.hub.conftest import PASSWORD, RunningHub, start_hub, stop_hub
from tests.support.broker import BrokerHarness, unique_site

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, officer_index: int) -> dict[str, object]:
    site = load_site()
    officer = site.officers[officer_index]
    pw = tmp_path / "pw"
    pw.write_text("x", encoding="utf-8")
    return glasses_config(officer, site=site.site, mqtt=BusConfig(port=1883, username="u",
                                                                   password_file=pw),
                          data_dir=tmp_path / "data", hud_dir=tmp_path / "hud",
                          gnss_port="/dev/pts/99")


def test_generated_glasses_configs_validate(tmp_path: Path) -> None:
    site = load_site()
    assert len(site.officers) == 2
    languages = set()
    for i, officer in enumerate(site.officers):
        config = GlassesConfig.model_validate(_config(tmp_path, i))
        assert config.device == glasses_device(officer) == f"glasses-{officer.id}"
        assert config.officer.username == officer.id
        assert config.demo and config.auto_answer is not None
        assert config.position.source == "gnss"
        assert config.display.sink.type == "png"
        languages.add(config.language)
    assert languages == {"en", "zh-CN"}  # one HUD in each shipped language


def test_the_agent_cli_accepts_the_generated_config(tmp_path: Path) -> None:
    path = tmp_path / "glasses.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, 1)), encoding="utf-8")
    res = subprocess.run(
        [*GRIDWARD, "edge", "glasses", "--config", str(path), "--validate-config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_officers_are_users_bound_to_their_glasses_and_on_duty(
    broker: BrokerHarness, tmp_path: Path
) -> None:
    site = load_site()
    running: RunningHub = start_hub(broker, unique_site("demo"), tmp_path)
    try:
        written: dict[Path, str] = {}

        def keep(path: Path, value: str) -> Path:
            written[path] = value
            return path

        passwords = create_officer_users(running.service.store.engine, site.officers,
                                         tmp_path, keep)
        for officer in site.officers:
            running.service.registry.add("demo", running.site, DeviceKind.GLASSES,
                                         glasses_device(officer), officer.name)
        with running.service.store.engine.begin() as conn:
            create_user(conn, "admin", PASSWORD, Role.ADMIN)  # bind_officers logs in as admin
        bind_officers(running.base_url, PASSWORD, site.officers)
        officers = {o["username"]: o for o in running.client(Role.ADMIN)
                    .get("/api/v1/officers").json()}
        for officer in site.officers:
            assert officers[officer.id]["device"] == glasses_device(officer)
            assert officers[officer.id]["on_duty"] is True
            assert written[tmp_path / f"{officer.id}.password"] == passwords[officer.id]
        # An officer logs in with the written password and holds the officer role.
        login = running.client(None).post("/api/v1/auth/login", json={
            "username": site.officers[0].id, "password": passwords[site.officers[0].id]})
        assert login.status_code == 200, login.text
    finally:
        stop_hub(broker, running)
