"""Hot reload of the zones (and the homography) the hub pushes to a camera.

The hub publishes a retained :class:`~edge.protocol.ConfigPush` whose ``config`` is a
:class:`CameraPush`. Each push is a complete statement *relative to the YAML file*: a key that
is present replaces the file's value (``"homography": null`` removes the file's homography), a
key that is absent keeps the file's value. The effective config is validated exactly like the
file (zone ids unique, every point inside the frame), plus the push-only checks below; a bad
push is refused with a sentence naming the key path, and the zones in force stay.

Only settings that are safe to swap between two frames may be pushed: zones with their filters,
cool-downs and dwell times, and the pixel-to-map homography. Source, detector, tracker and
motion settings change the pipeline itself and stay in the file (restart to change them).

The last applied push is kept in ``<data_dir>/<device>-pushed-config.json`` (atomic replace), so
it is in force again after a restart before the first frame and before the broker re-delivers
the retained push; re-delivered versions that are not newer than the applied (or last refused)
one are ignored.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import Field, ValidationError

from edge.agent import AgentRuntime
from edge.camera.config import CameraConfig
from edge.camera.homography import HomographyConfig
from edge.camera.zones import LineZone, ZoneConfig
from edge.config import StrictModel
from edge.protocol import ConfigPush, Message

log = logging.getLogger(__name__)

T = TypeVar("T")

# Tags of the zone union: pydantic puts them into error locations, operators never write them.
_UNION_TAGS = frozenset({"intrusion", "loitering", "line"})
_MAX_ERRORS_SHOWN = 3


class PushRejectedError(ValueError):
    """A pushed config that cannot be applied; the message is the sentence sent to the hub."""


class CameraPush(StrictModel):
    """What the hub may change on a running camera (``POST /api/v1/devices/{id}/config``)."""

    zones: list[ZoneConfig] | None = Field(
        default=None, max_length=64,
        description="replaces the file's zones (pixels of ingest.width_px x ingest.height_px)")
    homography: HomographyConfig | None = Field(
        default=None, description="replaces the file's homography; null removes it")


def key_path(loc: Sequence[int | str], raw: Any, root: str = "config") -> str:
    """``config.zones[1] ('gate').polygon[0]`` from a pydantic error location, naming the zone
    by its id where the pushed item has one."""
    out = root
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                out += f" ({node['id']!r})"
            continue
        if part in _UNION_TAGS and not (isinstance(node, dict) and part in node):
            continue
        out += f".{part}"
        node = node.get(part) if isinstance(node, dict) else None
    return out


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def describe(err: ValidationError, raw: Any, root: str = "config") -> str:
    problems = [f"{key_path(e['loc'], raw, root)}: {_clean(e['msg'])}" for e in err.errors()]
    shown = "; ".join(problems[:_MAX_ERRORS_SHOWN])
    more = len(problems) - _MAX_ERRORS_SHOWN
    if more > 0:
        shown += f" (and {more} more)"
    return shown


def parse_push(base: CameraConfig, raw: Mapping[str, Any]) -> CameraConfig:
    """The effective camera config after applying ``raw`` (a push's ``config``) to ``base``
    (the file's config); raises :class:`PushRejectedError` with what to fix."""
    hint = "; fix it and push again (the zones in force stay)"
    try:
        push = CameraPush.model_validate(raw)
    except ValidationError as err:
        raise PushRejectedError(describe(err, raw) + hint) from err
    w, h = base.ingest.width_px, base.ingest.height_px
    where = "pixels of the file's ingest.width_px x ingest.height_px"
    zones = push.zones or []
    seen: set[str] = set()
    for i, zone in enumerate(zones):
        if zone.id in seen:
            raise PushRejectedError(f"config.zones[{i}].id: zone ids must be unique, "
                                    f"{zone.id!r} is used twice" + hint)
        seen.add(zone.id)
        named = ("a", "b") if isinstance(zone, LineZone) else None
        points = [zone.a, zone.b] if isinstance(zone, LineZone) else zone.polygon
        for j, (x, y) in enumerate(points):
            if not (0 <= x <= w and 0 <= y <= h):
                at = f".{named[j]}" if named else f".polygon[{j}]"
                raise PushRejectedError(
                    f"config.zones[{i}] ({zone.id!r}){at}: ({x:g}, {y:g}) is outside the "
                    f"{w}x{h} frame; zone points are {where}" + hint)
    if push.homography is not None:
        for i, point in enumerate(push.homography.points):
            x, y = point.px
            if not (0 <= x <= w and 0 <= y <= h):
                raise PushRejectedError(
                    f"config.homography.points[{i}].px: ({x:g}, {y:g}) is outside the {w}x{h} "
                    f"frame; ground points are {where}" + hint)
    merged = base.model_dump(mode="python")
    for key in push.model_fields_set:
        merged[key] = getattr(push, key)
    if merged.get("zones") is None:
        merged["zones"] = []
    try:  # the file's own checks on the result, so a push accepts what the file accepts
        return CameraConfig.model_validate(merged)
    except ValidationError as err:
        raise PushRejectedError(describe(err, raw) + hint) from err


class PushedConfigFile:
    """The last applied push (version + raw config) and the last refused version, on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[int, dict[str, Any] | None, int] | None:
        """(applied version, its raw config or None, last refused version); None when the
        file is absent or unreadable."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            config = data["config"]
            return (int(data["version"]), None if config is None else dict(config),
                    int(data["rejected"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("ignored unreadable pushed config %s: %s", self.path, err)
            return None

    def save(self, version: int, config: Mapping[str, Any] | None, rejected: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = json.dumps({"version": version, "config": config, "rejected": rejected},
                          sort_keys=True)
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)  # a crash leaves the old file or the new one, never half of one


class ConfigReloader(Generic[T]):
    """The CONFIG command handler: stale check, validate, persist, swap, report.

    ``parse`` turns a push's raw config into the agent's prepared settings or raises
    :class:`PushRejectedError`; ``apply`` swaps them in atomically (the agent holds its frame
    or scan lock for that). Pushes are handled one at a time.
    """

    def __init__(self, runtime: AgentRuntime, store: PushedConfigFile,
                 parse: Callable[[Mapping[str, Any]], T], apply: Callable[[T], None]) -> None:
        self.runtime = runtime
        self.store = store
        self._parse = parse
        self._apply = apply
        self._lock = threading.Lock()
        self.applied_version = 0
        self.applied_config: dict[str, Any] | None = None
        self.rejected_version = 0

    def restore(self) -> bool:
        """Re-apply the persisted push (call before the agent starts). False when there is
        none or it no longer fits the file's config (the retained push is then re-judged)."""
        saved = self.store.load()
        if saved is None:
            return False
        version, raw, rejected = saved
        self.rejected_version = rejected
        if raw is None:
            return False
        try:
            settings = self._parse(raw)
        except PushRejectedError as err:
            self.runtime.counters["config_restore_failed"] += 1
            log.warning("pushed config version %d no longer fits the file config: %s",
                        version, err)
            return False
        self._apply(settings)
        self.applied_version, self.applied_config = version, raw
        self.runtime.config_version = version
        log.info("restored pushed config version %d", version)
        return True

    def handle(self, message: Message) -> None:
        if not isinstance(message, ConfigPush):
            return
        with self._lock:
            version = message.config_version
            if version <= max(self.applied_version, self.rejected_version):
                # a retained re-delivery after a reconnect, or an old push arriving late
                self.runtime.counters["config_stale"] += 1
                log.debug("ignored config version %d (applied %d, refused %d)", version,
                          self.applied_version, self.rejected_version)
                return
            try:
                settings = self._parse(message.config)
            except PushRejectedError as err:
                self._remember(self.applied_version, self.applied_config, version)
                self.runtime.config_rejected(message, str(err))
                return
            try:
                self._remember(version, message.config, self.rejected_version)
            except OSError as err:
                self.runtime.config_rejected(
                    message, f"the device cannot store the config under data_dir ({err}); "
                             "free space or fix permissions and push again")
                return
            self._apply(settings)
            self.applied_version, self.applied_config = version, dict(message.config)
            self.runtime.counters["config_applied"] += 1
            log.info("applied config version %d", version)
        self.runtime.config_applied(message)

    def _remember(self, version: int, config: Mapping[str, Any] | None, rejected: int) -> None:
        self.rejected_version = rejected
        try:
            self.store.save(version, config, rejected)
        except OSError:
            if config is self.applied_config:
                # only the refusal was new: it is still refused, and re-judged after a restart
                log.warning("could not record refused config version %d", rejected)
                return
            raise
