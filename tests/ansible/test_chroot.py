"""The edge role for real: ``site.yml`` run against a Debian 12 root filesystem (debootstrap,
cached) through the ``community.general.chroot`` connection, provisioning through a real hub
on loopback. The agent is installed from a wheelhouse, its config is valid, its unit file is
installed and enabled (the wants/ link; a chroot runs no systemd), its credential file is the
agent user's with mode 0600 and logs in at the real broker; a second run changes nothing; a
broken config is refused and the previous one kept; a credential file lost on the target is
replaced by rotated credentials, and the play says so.

Slow (minutes, needs root and a Debian mirror): marked ``provision``, run alone with
``pytest -m provision tests/ansible/test_chroot.py``."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.camera.testdata import cache_dir
from hub.auth import Role
from tests.ansible.support import ANSIBLE_DIR, BIN, ROOT, run_playbook
from tests.hub.conftest import RunningHub
from tests.hub.devices.test_routes import _can_connect
from tests.support.broker import BrokerHarness

pytestmark = [pytest.mark.provision, pytest.mark.timeout(2400)]

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What the chroot needs before Ansible can reach it (python) and what would otherwise be
# fetched on every run; the roles install the rest (chrony, bluez) from the mirror.
BASE_PACKAGES = ("python3", "python3-venv", "python3-apt", "systemd", "ca-certificates")
HOST = "gw-chroot"
KEY = "00112233445566778899aabbccddeeff"
SITE_PLAYBOOK = ANSIBLE_DIR / "site.yml"


def _root_prefix() -> list[str]:
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    probe = [sudo, "-n", "true"] if sudo else None
    if probe and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return [*probe[:2], "-E"]
    # Asked for by name (-m provision): a run that cannot happen is a failure, not a skip.
    pytest.fail("debootstrap and a chroot need root (or passwordless sudo)")


@pytest.fixture(scope="module")
def base_rootfs() -> Path:
    """A minimal Debian 12 made once with debootstrap, kept in the cache (never committed)."""
    prefix = _root_prefix()
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is not installed (set-up installs it: apt-get install "
                    "debootstrap)")
    key = hashlib.sha256(f"{SUITE} minbase {','.join(BASE_PACKAGES)}".encode()).hexdigest()[:12]
    cache = cache_dir() / "ansible"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{SUITE}-{key}"
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions never build the same tree at once
        if not (target / "usr" / "bin" / "python3").exists():
            partial = cache / f"{SUITE}-{key}.partial"
            subprocess.run([*prefix, "rm", "-rf", str(partial)], check=True)
            subprocess.run(
                [*prefix, "debootstrap", "--variant=minbase",
                 f"--include={','.join(BASE_PACKAGES)}", SUITE, str(partial), MIRROR],
                check=True, capture_output=True, timeout=1800,
            )
            subprocess.run([*prefix, "mv", str(partial), str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dependencies' wheels (cached per pyproject.toml) and a fresh gridward wheel."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    deps = cache_dir() / "ansible" / f"wheelhouse-wristband-{digest}"
    if not deps.exists():
        partial = deps.with_name(deps.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [str(BIN / "python"), "-m", "pip", "wheel", "-q", "--wheel-dir", str(partial),
             f"{ROOT}[wristband]"],
            check=True, capture_output=True, timeout=900,
        )
        for wheel in partial.glob("gridward-*.whl"):
            wheel.unlink()
        partial.rename(deps)
    out = tmp_path_factory.mktemp("wheelhouse")
    for wheel in deps.glob("*.whl"):
        shutil.copy2(wheel, out / wheel.name)
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out),
         str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )
    return out


@pytest.fixture
def rootfs(base_rootfs: Path, tmp_path: Path) -> Iterator[Path]:
    prefix = _root_prefix()
    tree = tmp_path / "rootfs"
    subprocess.run([*prefix, "cp", "-a", str(base_rootfs), str(tree)], check=True)
    # apt inside reaches the mirror with the host's resolver; services are never started
    # by package scripts in a chroot (policy-rc.d 101 = "not allowed").
    shutil.copy(Path("/etc/resolv.conf"), tree / "etc" / "resolv.conf")
    policy = tree / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    yield tree
    subprocess.run([*prefix, "rm", "-rf", str(tree)], check=True)


def _edge_config(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "zones_file": "/etc/gridward/zones.geojson",
        "keys_file": "/etc/gridward/band-keys.txt",
        "receivers": [
            {"id": "rx-hall", "lon": 114.0565, "lat": 22.5427, "zone": "care-home",
             "transport": {"type": "serial", "port": "/dev/ttyUSB0"}},
        ],
        "bands": [{"band_id": "0x00001001", "wearer": "resident-1"}],
        "position_interval_s": 2,
    }
    config.update(changes)
    return config


def _inventory(path: Path, tree: Path, hub: RunningHub, broker: BrokerHarness, *, token: str,
               wheels: Path, device: str) -> Path:
    host = {
        "ansible_connection": "community.general.chroot",
        "ansible_host": str(tree),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_become": False,
        "edge_kind": "wristband",
        "edge_device": device,
        "edge_name": "Care home gateway",
        "edge_config": _edge_config(),
        "edge_files": [{"dest": "zones.geojson",
                        "src": str(ROOT / "configs" / "wristband-zones.geojson")}],
        "edge_secret_files": [{"dest": "band-keys.txt", "content": f"0x00001001 {KEY}\n"}],
    }
    inventory = {
        "all": {
            "vars": {
                "gridward_site": hub.site,
                "gridward_hub_url": hub.base_url,
                "gridward_hub_api_token": token,
                "gridward_mqtt_host": "127.0.0.1",
                "gridward_mqtt_port": broker.port,
                "gridward_wheelhouse": str(wheels),
                "time_servers": ["127.0.0.1"],
            },
            "children": {"edge": {"hosts": {HOST: host}}},
        }
    }
    path.write_text(yaml.safe_dump(inventory))
    return path


def _owner(tree: Path, path: Path) -> str:
    uid = path.stat().st_uid
    for line in (tree / "etc" / "passwd").read_text().splitlines():
        name, _, line_uid, *_ = line.split(":")
        if int(line_uid) == uid:
            return name
    return str(uid)


def test_edge_role_in_a_debian_chroot(
    hub: RunningHub, broker: BrokerHarness, rootfs: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    device = f"{hub.site}-gw"
    token = hub.client(Role.INSTALLER).headers["Authorization"].removeprefix("Bearer ")
    inventory = _inventory(tmp_path / "hosts.yml", rootfs, hub, broker, token=token,
                           wheels=wheelhouse, device=device)
    home = tmp_path / "ansible-home"
    etc = rootfs / "etc" / "gridward"

    first = run_playbook(SITE_PLAYBOOK, inventory, home)
    assert first.returncode == 0, first.output[-8000:]
    assert first.counts(HOST)["failed"] == 0 and first.counts(HOST)["changed"] > 0
    assert token not in first.output

    # the agent, its valid config, its unit (enabled: the wants/ link), its credentials
    check = subprocess.run(
        [*_root_prefix(), "chroot", str(rootfs), "/opt/gridward/venv/bin/gridward", "edge",
         "wristband", "--config", "/etc/gridward/wristband.yaml", "--validate-config"],
        capture_output=True, text=True, check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "OK (1 bands" in check.stdout
    unit = rootfs / "etc" / "systemd" / "system" / "gridward-wristband.service"
    text = unit.read_text()
    for line in ("User=gridward", "Restart=on-failure", "StartLimitBurst=5",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/gridward",
                 "DevicePolicy=closed", "DeviceAllow=char-ttyUSB rw",
                 "SupplementaryGroups=bluetooth dialout"):
        assert line in text.splitlines(), line
    wants = rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants"
    assert (wants / "gridward-wristband.service").is_symlink()
    link = (wants / "gridward-wristband.service").readlink()
    assert link == Path("/etc/systemd/system/gridward-wristband.service")
    assert (wants / "chrony.service").is_symlink()
    assert "server 127.0.0.1 iburst" in (rootfs / "etc/chrony/conf.d/gridward.conf").read_text()
    password = etc / "mqtt.pw"
    for secret in (password, etc / "band-keys.txt"):
        assert secret.stat().st_mode & 0o777 == 0o600, secret
        assert _owner(rootfs, secret) == "gridward", secret
    assert _can_connect(broker.port, device, password), "the delivered password logs in"
    rendered = yaml.safe_load((etc / "wristband.yaml").read_text())
    assert rendered["device"] == device and rendered["mqtt"]["password_file"] == str(
        Path("/etc/gridward/mqtt.pw"))
    info = hub.client(Role.ADMIN).get(f"/api/v1/devices/{device}").json()
    assert info["kind"] == "wristband" and info["name"] == "Care home gateway"

    # a second run changes nothing
    second = run_playbook(SITE_PLAYBOOK, inventory, home)
    assert second.returncode == 0, second.output[-8000:]
    assert second.counts(HOST)["changed"] == 0, second.output[-8000:]

    # a broken config is refused on the target; the one in place stays
    before = (etc / "wristband.yaml").read_bytes()
    broken = _edge_config(position_interval_s=-1)
    third = run_playbook(SITE_PLAYBOOK, inventory, home,
                         "-e", json.dumps({"edge_config": broken}))
    assert third.returncode != 0
    assert third.counts(HOST)["failed"] == 1
    assert "failed to validate" in third.output
    assert "position_interval_s" in third.output
    assert (etc / "wristband.yaml").read_bytes() == before

    # the credential file lost on the target: rotated, and said so; the old password is dead
    old = password.read_text()
    old_copy = tmp_path / "old.pw"
    old_copy.write_text(old)
    password.unlink()
    fourth = run_playbook(SITE_PLAYBOOK, inventory, home)
    assert fourth.returncode == 0, fourth.output[-8000:]
    assert "was missing on the target, so the hub rotated" in fourth.output
    assert password.read_text() != old
    assert password.stat().st_mode & 0o777 == 0o600
    assert _can_connect(broker.port, device, password)
    assert not _can_connect(broker.port, device, old_copy)
    assert old not in fourth.output and password.read_text() not in fourth.output
