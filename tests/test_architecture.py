"""The dependency rules (docs: DESIGN, layout) hold: import-linter's contracts in
pyproject.toml ``[tool.importlinter]`` are kept by the code base.

The contracts are also shown to bite: each is run against a scratch tree of empty packages with
the project's names, first clean (every contract kept), then with one forbidden import added
per contract, which must break exactly the contract it names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
# The click command of import-linter's `lint-imports` script, run in a fresh interpreter: grimp
# finds packages through the import system, so this process's already-imported `edge` and `hub`
# would shadow the scratch tree's.
LINT = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]


def _contracts() -> list[dict[str, object]]:
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    contracts: list[dict[str, object]] = data["tool"]["importlinter"]["contracts"]
    return contracts


def _lint(cwd: Path, pythonpath: list[Path], config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    return subprocess.run(
        [*LINT, str(config), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_code_base_keeps_every_contract() -> None:
    res = _lint(ROOT, [ROOT, ROOT / "firmware-bridges"], PYPROJECT)
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in output, output


def test_contracts_cover_the_design_rules() -> None:
    """The rules the design names, by contract; a contract quietly dropped fails here."""
    by_type: dict[str, list[dict[str, object]]] = {}
    for contract in _contracts():
        by_type.setdefault(str(contract["type"]), []).append(contract)
    forbidden = {
        str(src): set(map(str, c["forbidden_modules"]))  # type: ignore[call-overload]
        for c in by_type["forbidden"]
        for src in c["source_modules"]  # type: ignore[attr-defined]
    }
    agents = {"edge.camera", "edge.lidar", "edge.wristband", "edge.glasses"}
    assert {"edge", "hub", "paho"} <= forbidden["bridges"]
    assert {"edge.*", "hub", "bridges"} <= forbidden["edge.protocol"]
    assert agents | {"sitedemo"} <= forbidden["hub"]
    for agent in agents:
        assert "hub" in forbidden[agent]
    assert any(set(c["modules"]) == agents for c in by_type["independence"])  # type: ignore[call-overload]


# --- the contracts can fail --------------------------------------------------------------------

SCRATCH_MODULES = [
    "edge/__init__.py",
    "edge/protocol.py",
    "edge/validators.py",
    "edge/errors.py",
    "edge/bus.py",
    "edge/sim.py",
    *(f"edge/{agent}/__init__.py" for agent in ("camera", "lidar", "wristband", "glasses")),
    "edge/camera/pipeline.py",
    "hub/__init__.py",
    "hub/service.py",
    "bridges/__init__.py",
    "bridges/codec.py",
    "sitedemo/__init__.py",
]
# module that gets the bad import -> (the import, the contract name it must break)
VIOLATIONS = {
    "bridges/codec.py": ("import paho.mqtt.client", "bridges (codecs"),
    "edge/protocol.py": ("import edge.bus", "edge.protocol imports only"),
    "edge/errors.py": ("import edge.protocol", "edge.validators and edge.errors"),
    "edge/validators.py": ("import edge.protocol", "edge.validators and edge.errors"),
    "edge/camera/pipeline.py": ("import edge.lidar", "agents never import each other"),
    "edge/wristband/__init__.py": ("import hub.service", "agents never import the hub"),
    "hub/service.py": ("import edge.sim", "the hub imports no agent"),
}


def _scratch_tree(tmp_path: Path, bad: str | None) -> Path:
    for rel in SCRATCH_MODULES:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
    # the allowed edges exist in the scratch tree too, so "kept" is not kept by emptiness
    (tmp_path / "edge/protocol.py").write_text(
        "import edge.validators\nimport edge.errors\n", encoding="utf-8"
    )
    (tmp_path / "hub/service.py").write_text("import edge.protocol\nimport edge.bus\n")
    (tmp_path / "sitedemo/__init__.py").write_text("import hub.service\nimport edge.camera\n")
    if bad is not None:
        path = tmp_path / bad
        path.write_text(path.read_text(encoding="utf-8") + VIOLATIONS[bad][0] + "\n")
    # the project's own contract section, verbatim
    lines = PYPROJECT.read_text(encoding="utf-8").splitlines()
    start = lines.index("[tool.importlinter]")
    section = [lines[start]]
    for line in lines[start + 1 :]:
        if line.startswith("[") and not line.startswith("[[tool.importlinter.contracts]]"):
            break
        section.append(line)
    config = tmp_path / "pyproject.toml"
    config.write_text("\n".join(section) + "\n", encoding="utf-8")
    return config


def test_a_scratch_tree_that_follows_the_rules_keeps_them(tmp_path: Path) -> None:
    res = _lint(tmp_path, [tmp_path], _scratch_tree(tmp_path, None))
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("bad", sorted(VIOLATIONS))
def test_each_contract_breaks_on_its_forbidden_import(tmp_path: Path, bad: str) -> None:
    res = _lint(tmp_path, [tmp_path], _scratch_tree(tmp_path, bad))
    output = res.stdout + res.stderr
    assert res.returncode == 1, output
    # "<name> BROKEN" or "<name> BROKEN (1 ignored import)"
    broken = [line for line in output.splitlines() if " BROKEN" in line]
    assert len(broken) == 1, output
    assert broken[0].startswith(VIOLATIONS[bad][1]), output
