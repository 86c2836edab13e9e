"""``gridward edge wristband``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from edge.config import ConfigError, load_config


def register(esub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = esub.add_parser("wristband", help="BLE wristband gateway with local geofences")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--validate-config", action="store_true",
                        help="check the config and zones, print what is wrong, and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bridges.ble.keys import KeyFileError, load_keys
    from bridges.ble.sources import AdvertSource
    from edge.geofence import GeofenceError
    from edge.wristband.config import WristbandConfig
    from edge.wristband.service import WristbandError, WristbandService, load_engine

    try:
        config = load_config(args.config, WristbandConfig)
    except ConfigError as err:
        print(f"gridward: {err}", file=sys.stderr)  # noqa: T201 - operator-facing CLI output
        return 2
    try:
        engine = load_engine(config.zones_file)
        keys = load_keys(config.keys_file)
    except (GeofenceError, WristbandError, KeyFileError) as err:
        print(f"gridward: {err}", file=sys.stderr)  # noqa: T201
        return 2
    missing = [f"0x{b.band_id:08x}" for b in config.bands if b.band_id not in keys]
    if missing:
        print(f"gridward: no key for band(s) {', '.join(missing)}", file=sys.stderr)  # noqa: T201
        return 2
    if args.validate_config:
        zones = len(engine.zones) if engine else 0
        print(f"{args.config}: OK ({len(config.bands)} bands, {zones} zones)")  # noqa: T201
        return 0
    sources: list[AdvertSource] | None = None
    if config.simulation is not None:
        from edge.wristband.sim import SimulatedAirwaves

        sources = [SimulatedAirwaves(config, keys)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service = WristbandService(config, keys=keys, engine=engine, sources=sources)
    service.start()
    stop.wait()
    service.stop()
    return 0
