"""Typed YAML configs: the base every agent config extends, and a loader whose errors name the
key path and the line in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.bus_config import BusConfig
from edge.validators import SegmentId

C = TypeVar("C", bound=BaseModel)


class ConfigError(Exception):
    """A config file that cannot be used; the message lists every problem with its line."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SupervisionConfig(StrictModel):
    """How a crashed sensing loop is restarted, and when it is given up on."""

    restart_min_s: Annotated[float, Field(gt=0, le=60, description=(
        "backoff before the first restart; doubles with every crash in the window"))] = 0.5
    restart_max_s: Annotated[float, Field(gt=0, le=3600, description=(
        "longest backoff between two restarts"))] = 30.0
    max_crashes: Annotated[int, Field(ge=1, le=1000, description=(
        "crashes within crash_window_s after which the loop is marked dead"))] = 5
    crash_window_s: Annotated[float, Field(gt=0, le=86_400, description=(
        "window in which crashes count towards max_crashes"))] = 300.0


class AgentConfig(StrictModel):
    """What every edge agent needs, whatever its kind."""

    site: SegmentId
    device: SegmentId
    mqtt: BusConfig = Field(default_factory=BusConfig)
    data_dir: Path = Field(
        default=Path("/var/lib/gridward"), description="outbox and local state live here"
    )
    health_interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    telemetry_queue_max: Annotated[int, Field(ge=10, le=1_000_000)] = 2000
    resend_after_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    outbox_max_items: Annotated[int, Field(ge=10, le=10_000_000, description=(
        "most alerts kept on disk awaiting a hub ack; when it is full a new alert is dropped, "
        "counted as alerts_dropped in health (ok: false) and logged at error level"))] = 100_000
    supervision: SupervisionConfig = Field(
        default_factory=SupervisionConfig,
        description="restart backoff and give-up policy of the agent's sensing loops")


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Map each key path in a YAML document to its 1-based line number."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                walk(value, (*path, str(i)))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


def _line_of(index: dict[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """Line of the deepest key of ``path`` present in the file. Elements that are not keys in
    the YAML (a tagged union's tag, e.g. ``source.rtsp.url``) are skipped, not stopped at."""
    kept: tuple[str, ...] = ()
    line = index.get(kept)
    for part in path:
        if (*kept, part) in index:
            kept = (*kept, part)
            line = index[kept]
    return line


def parse_config(text: str, model: type[C], source: str = "<config>") -> C:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        index = _line_index(text)
        problems = []
        for e in err.errors():
            path = tuple(str(p) for p in e["loc"])
            line = _line_of(index, path)
            key = ".".join(path) or "<top>"
            where = f"line {line}" if line is not None else "?"
            problems.append(f"  {source}:{where}: {key}: {e['msg']}")
        raise ConfigError(
            f"{source}: {err.error_count()} problem(s):\n" + "\n".join(problems)
        ) from err


def load_config(path: Path, model: type[C]) -> C:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from err
    return parse_config(text, model, str(path))
