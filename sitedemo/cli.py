"""The ``gridward demo`` command, registered through the ``gridward.commands`` entry-point
group (so neither the hub's nor the agents' CLI needs to know the demo exists)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.config import ConfigError


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", type=Path, default=Path(".gridward/demo"))
    parser.add_argument(
        "--site",
        type=Path,
        default=None,
        help="the demo site's config (default: configs/site.yaml of this checkout)",
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl+C)",
    )
    parser.add_argument("--port", type=int, default=8080, help="dashboard/API port (0: any free)")
    parser.set_defaults(func=_demo)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_arguments(
        sub.add_parser("demo", help="run broker, hub and simulated devices on this machine")
    )


def _demo(args: argparse.Namespace) -> int:
    # Imported here: `gridward --help` on an edge box must not need the hub's dependencies.
    from sitedemo.run import run_demo
    from sitedemo.site import DEFAULT_SITE_FILE, load_site

    site = load_site(args.site or DEFAULT_SITE_FILE)
    return run_demo(args.run_dir.resolve(), site, args.duration_s, api_port=args.port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sitedemo", description="the whole gridward stack on this machine"
    )
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return _demo(args)
    except ConfigError as err:
        print(f"gridward demo: {err}", file=sys.stderr)
        return 2
