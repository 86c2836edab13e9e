"""Every example in configs/ loads through the real config model of what it configures, and
passes the `--validate-config` check of the command that would run it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from edge.camera.config import CameraConfig
from edge.cli import main
from edge.config import ConfigError, load_config
from edge.glasses.config import GlassesConfig
from edge.lidar.config import LidarConfig
from edge.wristband.config import WristbandConfig
from edge.wristband.service import load_engine
from hub.config import HubConfig
from sitedemo.site import DEFAULT_SITE_FILE, SiteConfig, load_site

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
MODELS: dict[str, type[BaseModel]] = {
    "site.yaml": SiteConfig,
    "hub.yaml": HubConfig,
    "camera.yaml": CameraConfig,
    "lidar.yaml": LidarConfig,
    "wristband.yaml": WristbandConfig,
    "glasses.yaml": GlassesConfig,
}
ZONE_FILES = ["wristband-zones.geojson"]
VALIDATE = {
    "hub.yaml": ["hub", "serve"],
    "camera.yaml": ["edge", "camera"],
    "lidar.yaml": ["edge", "lidar"],
    "wristband.yaml": ["edge", "wristband"],
    "glasses.yaml": ["edge", "glasses"],
}


def test_every_file_in_configs_is_checked_here() -> None:
    assert sorted(p.name for p in CONFIGS.iterdir()) == sorted([*MODELS, *ZONE_FILES])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_config_loads_through_its_model(name: str) -> None:
    config = load_config(CONFIGS / name, MODELS[name])  # ConfigError names key and line
    assert isinstance(config, MODELS[name])


@pytest.mark.parametrize("name", ZONE_FILES)
def test_zone_file_loads_into_a_geofence_engine(name: str) -> None:
    engine = load_engine(CONFIGS / name)
    assert engine is not None
    assert engine.zones


@pytest.mark.parametrize("name", sorted(VALIDATE))
def test_validate_config_accepts_it(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)  # relative paths in the examples are from the checkout
    if name == "wristband.yaml":
        # the band keys are the secret: never in configs/, read from the variable it documents
        keys = tmp_path / "band-keys.txt"
        config = load_config(CONFIGS / name, WristbandConfig)
        keys.write_text(
            "".join(f"0x{b.band_id:08x}  {os.urandom(16).hex()}\n" for b in config.bands)
        )
        keys.chmod(0o600)
        monkeypatch.setenv("GRIDWARD_BAND_KEYS_FILE", str(keys))
    if name == "glasses.yaml":
        # the local API token is the secret: from the variable the example documents
        monkeypatch.setenv("GRIDWARD_GLASSES_API_TOKEN", os.urandom(16).hex())
    code = main([*VALIDATE[name], "--config", str(CONFIGS / name), "--validate-config"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "OK" in out.out


def test_an_unknown_key_is_refused_by_the_same_path(tmp_path: Path) -> None:
    """The loader the tests above rely on does refuse: a typo in the site file is an error."""
    bad = tmp_path / "site.yaml"
    bad.write_text(DEFAULT_SITE_FILE.read_text(encoding="utf-8") + "gird: {}\n")
    with pytest.raises(ConfigError, match="gird"):
        load_site(bad)


def test_the_demo_site_file_is_the_default_and_names_its_cells() -> None:
    site = load_site()
    assert DEFAULT_SITE_FILE == CONFIGS / "site.yaml"
    assert len(site.grid.cell_ids()) == site.grid.rows * site.grid.cols == 12
    assert set(site.device_mounts) == {"camera-vtest", "lidar-yard", "wristband-gw-1"}


def test_hub_time_zone_must_be_an_iana_name() -> None:
    from pydantic import ValidationError

    from hub.config import HubConfig

    assert HubConfig(timezone="Asia/Shanghai").zone().key == "Asia/Shanghai"
    for bad in ("Mars/Base", "../../etc/passwd", "UTC+8"):
        with pytest.raises(ValidationError, match="unknown time zone"):
            HubConfig(timezone=bad)
