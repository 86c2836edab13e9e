"""``gridward edge lidar --config F [--validate-config] [--simulate SCENE]``."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from edge.config import load_config


def register(esub: Any) -> None:
    parser = esub.add_parser("lidar", help="LiDAR perimeter agent (LD06/LD19, RPLIDAR A-series)")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--validate-config", action="store_true",
                        help="check the config, print what is wrong with line numbers, and exit")
    parser.add_argument("--simulate", type=Path, metavar="SCENE",
                        help="serve a simulated scanner (scene YAML) on a pseudo-terminal and "
                             "read it instead of scanner.port")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge.lidar.config import LidarConfig
    from edge.lidar.scene import SceneConfig

    config = load_config(args.config, LidarConfig)
    scene = load_config(args.simulate, SceneConfig) if args.simulate else None
    if args.validate_config:
        checked = ", ".join(str(p) for p in (args.config, args.simulate) if p)
        sys.stdout.write(f"{checked}: OK\n")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="gridward-lidar-") as tmp:
        return _serve(config, scene, Path(tmp), stop)


def _serve(config: Any, scene: Any, tmp: Path, stop: threading.Event) -> int:
    from edge.lidar.service import LidarService
    from edge.lidar.simulator import SimulatedScanner

    simulator = None
    if scene is not None:
        simulator = SimulatedScanner(scene.model_copy(update={"model": config.scanner.model}),
                                     tmp / "lidar-sim")
        simulator.start()
        config = config.model_copy(update={
            "scanner": config.scanner.model_copy(update={"port": str(simulator.link)})})
        sys.stdout.write(f"simulated {config.scanner.model} on {simulator.link}\n")
    service = LidarService(config)
    service.start()
    try:
        stop.wait()
    finally:
        service.stop()
        if simulator is not None:
            simulator.stop()
    return 0
