"""``ansible/`` is ansible-lint clean at the production profile, offline (no Galaxy: the
collections come from PyPI's ansible package)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.ansible.support import ANSIBLE_DIR, BIN, ansible_env


def test_ansible_lint_production_profile_offline(tmp_path: Path) -> None:
    config = (ANSIBLE_DIR / ".ansible-lint").read_text()
    assert "offline: true" in config and "profile: production" in config
    proc = subprocess.run(
        [str(BIN / "ansible-lint"), "-c", ".ansible-lint", "--nocolor", "--offline"],
        cwd=ANSIBLE_DIR,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr
