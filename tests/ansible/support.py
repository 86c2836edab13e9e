"""Running the repository's Ansible (ansible-playbook, ansible-lint from the project's venv)
and reading its results."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = ROOT / "ansible"
BIN = Path(sys.executable).parent
RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")


@dataclass(frozen=True, slots=True)
class PlayRun:
    returncode: int
    output: str
    recap: dict[str, dict[str, int]]

    def counts(self, host: str) -> dict[str, int]:
        assert host in self.recap, f"{host} not in the recap:\n{self.output[-4000:]}"
        return self.recap[host]


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of an ansible-playbook run: host -> {ok, changed, failed, ...}."""
    recap: dict[str, dict[str, int]] = {}
    _, _, tail = output.rpartition("PLAY RECAP")
    for line in tail.splitlines():
        match = RECAP_LINE.match(line.strip())
        if match:
            recap[match["host"]] = {
                key: int(value)
                for key, value in (pair.split("=") for pair in match["counts"].split())
            }
    return recap


def ansible_env(home: Path) -> dict[str, str]:
    """No user config, no Galaxy, no colour; collections only from the installed packages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1",
        PATH=f"{BIN}:{env.get('PATH', '')}",
        PYTHONPATH="",
    )
    return env


def run_playbook(
    playbook: Path, inventory: Path, home: Path, *extra: str, timeout_s: float = 900
) -> PlayRun:
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *extra],
        cwd=ANSIBLE_DIR,
        env=ansible_env(home),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    output = proc.stdout + proc.stderr
    return PlayRun(proc.returncode, output, parse_recap(proc.stdout))
