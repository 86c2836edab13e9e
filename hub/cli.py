"""``gridward hub ...`` and ``gridward demo``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="run broker, hub and simulated devices on this machine")
    demo.add_argument("--run-dir", type=Path, default=Path(".gridward/demo"))
    demo.add_argument(
        "--duration-s",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl+C)",
    )
    demo.set_defaults(func=_demo)

    hub = sub.add_parser("hub", help="hub services")
    hsub = hub.add_subparsers(dest="hub_cmd", required=True)
    ingest = hsub.add_parser("ingest", help="run MQTT ingest into the store")
    ingest.add_argument("--config", type=Path, required=True)
    ingest.add_argument("--validate-config", action="store_true")
    ingest.set_defaults(func=_ingest)


def _demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    return run_demo(args.run_dir.resolve(), args.duration_s)


def _ingest(args: argparse.Namespace) -> int:
    import signal
    import threading

    from edge.config import load_config
    from hub.config import HubConfig
    from hub.service import HubService

    config = load_config(args.config, HubConfig)
    if args.validate_config:
        print(f"{args.config}: OK")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service = HubService(config)
    service.start()
    stop.wait()
    service.stop()
    return 0
