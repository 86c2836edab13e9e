"""The example inventory renders, through the roles' own templates, a config for every host
that the hub's and each agent's config model accept; the example site has what issue 16 asks
(one hub, two cameras, one LiDAR, one gateway, two glasses) and no secret in clear; the
broker role keeps the hub's flood limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge.camera.config import CameraConfig
from edge.config import load_config
from edge.glasses.config import GlassesConfig
from edge.lidar.config import LidarConfig
from edge.wristband.config import WristbandConfig
from hub.broker import FLOOD_LIMITS
from hub.config import HubConfig
from tests.ansible.support import ANSIBLE_DIR, run_playbook

EXAMPLE = ANSIBLE_DIR / "inventories" / "example"
MODELS: dict[str, type[BaseModel]] = {
    "camera": CameraConfig,
    "lidar": LidarConfig,
    "wristband": WristbandConfig,
    "glasses": GlassesConfig,
}
EXPECTED = {
    "hub-1": HubConfig,
    "cam-gate-1": CameraConfig,
    "cam-yard-2": CameraConfig,
    "lidar-yard": LidarConfig,
    "wristband-gw-1": WristbandConfig,
    "glasses-li-wei": GlassesConfig,
    "glasses-zhang-min": GlassesConfig,
}


def test_example_inventory_renders_valid_configs(tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    out.mkdir()
    run = run_playbook(
        ANSIBLE_DIR / "playbooks" / "render-configs.yml",
        EXAMPLE / "hosts.yml",
        tmp_path / "home",
        "-e", f"edge_render_dir={out}",
        "-e", f"hub_render_dir={out}",
        timeout_s=600,
    )
    assert run.returncode == 0, run.output[-6000:]
    assert sorted(p.stem for p in out.glob("*.yaml")) == sorted(EXPECTED)
    for host, model in EXPECTED.items():
        # ConfigError names the key and line of anything the model refuses
        config: Any = load_config(out / f"{host}.yaml", model)
        assert config.site == "north-district", host
        if model is not HubConfig:
            assert config.device == host
            assert config.mqtt.password_file == Path("/etc/gridward/mqtt.pw")


def test_example_inventory_keeps_secrets_in_the_vault() -> None:
    for path in EXAMPLE.rglob("*.yml"):
        text = path.read_text()
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and any(w in key.lower() for w in ("password", "token", "secret", "key")):
                value = value.strip()
                assert (
                    not value or "vault_" in value or value.startswith(("[", "{", "/", "\"{{"))
                ), f"{path}: {line.strip()} (secrets come from vault_* variables)"
    assert not (EXAMPLE / "group_vars" / "all" / "vault.yml").exists()


def test_broker_role_keeps_the_hub_flood_limits() -> None:
    template = (ANSIBLE_DIR / "roles" / "broker" / "templates" / "gridward.conf.j2").read_text()
    lines = template.splitlines()
    for setting in FLOOD_LIMITS:
        assert setting in lines, setting
    for setting in ("allow_anonymous false", "per_listener_settings false", "set_tcp_nodelay true"):
        assert setting in lines, setting
