"""Configuration models do not import the MQTT client: validating a config (``--validate-config``,
the installer's checks, the hub's config) must work where paho is absent or broken."""

from __future__ import annotations

import subprocess
import sys

import pytest

PAHO_FREE = [
    "edge.config",
    "edge.bus_config",
    "edge.camera.config",
    "edge.lidar.config",
    "edge.wristband.config",
    "edge.glasses.config",
    "edge.supervision",
    "edge.tracking",
    "edge.projection",
    "edge.alert_details",
]


@pytest.mark.parametrize("module", PAHO_FREE)
def test_config_module_imports_without_paho(module: str) -> None:
    # A fresh interpreter: this test process has paho loaded already.
    probe = (f"import sys, {module}\n"
             "loaded = sorted(m for m in sys.modules if m == 'paho' or m.startswith('paho.'))\n"
             "print(','.join(loaded))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "", f"{module} pulls in {result.stdout.strip()}"


def test_the_old_import_path_of_bus_config_still_works() -> None:
    from edge.bus import BusConfig as FromBus
    from edge.bus_config import BusConfig

    assert FromBus is BusConfig
