"""``gridward edge glasses``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from edge.config import ConfigError, load_config

if TYPE_CHECKING:
    from edge.glasses.config import GlassesConfig
    from edge.glasses.hud import HudRenderer
    from edge.glasses.service import GlassesAgent, PositionSource


def register(esub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = esub.add_parser("glasses", help="AR glasses: the officer's HUD, answers, position")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--validate-config", action="store_true",
                        help="check the config and the local API token, and exit")
    parser.set_defaults(func=run)


def _fail(message: object) -> int:
    print(f"gridward: {message}", file=sys.stderr)  # noqa: T201 - operator-facing CLI output
    return 2


def position_source(config: GlassesConfig) -> PositionSource | None:
    from edge.glasses.gnss import GnssReader
    from edge.glasses.service import PhoneFixes

    if config.position.source == "gnss":
        return GnssReader(config.position)
    if config.position.source == "phone":
        return PhoneFixes(config.position.max_fix_age_s)
    return None


def add_inputs(agent: GlassesAgent, config: GlassesConfig, token: str | None) -> None:
    from edge.glasses.inputs import KeyReader, LocalApi, SerialButton

    if token is not None:
        agent.add_input(LocalApi(config.inputs.http, agent, token))
    if config.inputs.keys.enabled:
        agent.add_input(KeyReader(agent))
    if config.inputs.button is not None:
        agent.add_input(SerialButton(config.inputs.button, agent))


def camera_check(config: GlassesConfig) -> str:
    """What the glasses camera will do (``off``, or the face matching with its backend loaded),
    or ``error: <why>`` (a missing recording, models missing or altered)."""
    camera = config.camera
    if camera is None or not camera.enabled:
        return "off"
    from edge.faces.stage_config import describe_faces
    from edge.vision.ingest import check_source

    problem = check_source(camera.source)
    if problem is not None:
        return f"error: camera.source.path: {problem}"
    return describe_faces(camera.faces)


def _check(args: argparse.Namespace) -> tuple[GlassesConfig, HudRenderer, str | None] | str:
    """The config, its renderer and the API token, or what is wrong with them."""
    from edge.glasses.config import GlassesConfig
    from edge.glasses.hud import HudRenderer, LayoutError
    from edge.glasses.inputs import read_token

    try:
        config = load_config(args.config, GlassesConfig)
    except ConfigError as err:
        return str(err)
    token: str | None = None
    try:
        if config.inputs.http.enabled:
            token = read_token(config.inputs.http)
        renderer = HudRenderer(config.display.width_px, config.display.height_px,
                               config.display.mode)
    except OSError as err:
        return f"cannot read the local API token: {err}"
    except (ValueError, LayoutError) as err:
        return str(err)
    return config, renderer, token


def _validate(args: argparse.Namespace, config: GlassesConfig) -> int:
    from edge.i18n import translate

    camera = camera_check(config)
    if camera.startswith("error: "):
        return _fail(f"{args.config}: {camera.removeprefix('error: ')}")
    print(translate("glasses.cli.ok", config.language, path=args.config,  # noqa: T201
                    officer=config.officer.username, source=config.position.source,
                    sink=config.display.sink.type))
    print(translate("glasses.cli.camera", config.language, faces=camera))  # noqa: T201
    return 0


def run(args: argparse.Namespace) -> int:
    from edge.faces.types import FaceModelMissingError
    from edge.glasses.service import GlassesAgent
    from edge.glasses.sinks import SinkError, make_sink
    from edge.glasses.speech import Speaker, SpeechError

    checked = _check(args)
    if isinstance(checked, str):
        return _fail(checked)
    config, renderer, token = checked
    if args.validate_config:
        return _validate(args, config)
    speaker = Speaker(config.speech)
    try:
        sink = make_sink(config.display.sink)
        speaker.start()
    except (SinkError, SpeechError) as err:
        return _fail(err)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        agent = GlassesAgent(config, renderer=renderer, sink=sink,
                             position=position_source(config),
                             speaker=speaker if config.speech.enabled else None)
    except (FaceModelMissingError, ConfigError) as err:  # the camera's models, said at start
        speaker.close()
        sink.close()
        return _fail(f"{args.config}: camera.faces: {err}")
    add_inputs(agent, config, token)
    try:
        agent.start()
    except OSError as err:  # the local API's port is taken, typically
        speaker.close()
        return _fail(f"cannot start: {err}")
    stop.wait()
    agent.stop()
    speaker.close()
    return 0
