"""`gridward demo` comes from the demo package's own entry point, not from the hub's CLI."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _declared_commands() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    commands: dict[str, str] = data["project"]["entry-points"]["gridward.commands"]
    return commands


def _parser_from(commands: dict[str, str]) -> argparse.ArgumentParser:
    """What edge.cli.build_parser does with the installed entry points, from pyproject.toml
    (the installed metadata may predate it until the next `pip install -e .`)."""
    parser = argparse.ArgumentParser(prog="gridward")
    sub = parser.add_subparsers(dest="command", required=True)
    for target in commands.values():
        module, _, func = target.partition(":")
        getattr(importlib.import_module(module), func)(sub)
    return parser


def test_the_demo_command_is_registered_by_sitedemo() -> None:
    commands = _declared_commands()
    assert commands["demo"] == "sitedemo.cli:register"
    args = _parser_from(commands).parse_args(["demo", "--port", "0", "--duration-s", "5"])
    assert args.func.__module__ == "sitedemo.cli"
    assert (args.port, args.duration_s) == (0, 5.0)


def test_the_hub_cli_no_longer_knows_the_demo() -> None:
    hub_only = _parser_from({"hub": _declared_commands()["hub"]})
    sub = next(a for a in hub_only._actions if isinstance(a, argparse._SubParsersAction))
    assert "demo" not in sub.choices
    assert "hub" in sub.choices


def test_python_m_sitedemo_takes_the_same_arguments() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "sitedemo", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    for option in ("--run-dir", "--duration-s", "--port"):
        assert option in res.stdout
