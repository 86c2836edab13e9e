"""The ``gridward`` command. Command groups are discovered through the ``gridward.commands``
entry-point group, so an edge box without the hub installed still has a working CLI."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from edge.config import ConfigError, load_config

Handler = Callable[[argparse.Namespace], int]
AGENT_KINDS = ("camera", "lidar", "wristband", "glasses")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    proto = sub.add_parser("protocol", help="the MQTT wire contract")
    psub = proto.add_subparsers(dest="protocol_cmd", required=True)
    schema = psub.add_parser("schema", help="write JSON Schemas of every payload")
    schema.add_argument("--out", type=Path, default=Path("docs/schema"))
    schema.set_defaults(func=_protocol_schema)
    doc = psub.add_parser("doc", help="write docs/protocol.md from the models")
    doc.add_argument("--out", type=Path, default=Path("docs/protocol.md"))
    doc.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    doc.set_defaults(func=_protocol_doc)

    from edge.faces.cli import register as register_faces

    register_faces(sub)
    edge = sub.add_parser("edge", help="run an edge agent")
    esub = edge.add_subparsers(dest="kind", required=True)
    sim = esub.add_parser("sim", help="a simulated device walking a route (demo, tests)")
    sim.add_argument("--config", type=Path, required=True)
    sim.add_argument(
        "--validate-config",
        action="store_true",
        help="check the config, print what is wrong with line numbers, and exit",
    )
    sim.set_defaults(func=_edge_sim)
    # Each agent adds its own `gridward edge <kind>` command from edge/<kind>/cli.py.
    for kind in AGENT_KINDS:
        try:
            module = importlib.import_module(f"edge.{kind}.cli")
        except ImportError as err:
            logging.getLogger(__name__).debug("agent %s unavailable: %s", kind, err)
            continue
        module.register(esub)


def _protocol_schema(args: argparse.Namespace) -> int:
    from edge.protocol_doc import write_schemas

    for path in write_schemas(args.out):
        print(path)
    return 0


def _protocol_doc(args: argparse.Namespace) -> int:
    from edge.protocol_doc import render

    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run `gridward protocol doc`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(args.out)
    return 0


def _edge_sim(args: argparse.Namespace) -> int:
    import signal
    import threading

    from edge.sim import SimulatedDevice, SimulatedDeviceConfig

    config = load_config(args.config, SimulatedDeviceConfig)
    if args.validate_config:
        print(f"{args.config}: OK")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    device = SimulatedDevice(config)
    device.start()
    stop.wait()
    device.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridward", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    for ep in sorted(entry_points(group="gridward.commands"), key=lambda e: e.name):
        try:
            ep.load()(sub)
        except ImportError as err:
            # e.g. the hub group on an edge box without the hub extra installed
            logging.getLogger(__name__).debug("command group %s unavailable: %s", ep.name, err)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func: Handler = args.func
    try:
        return func(args)
    except ConfigError as err:
        print(f"gridward: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
