"""What every agent shares for hub-pushed configuration: the CONFIG command handler (stale
check, validate, persist, swap, report), the on-disk record of the last push, and error
sentences that name the pushed key path.

An agent supplies ``parse`` (raw push -> prepared settings, or :class:`PushRejectedError`) and
``apply`` (swap them in atomically); see ``edge/camera/reload.py`` and ``edge/lidar/reload.py``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from edge.agent import AgentRuntime
from edge.protocol import ConfigPush, Message

log = logging.getLogger(__name__)

T = TypeVar("T")
_MAX_ERRORS_SHOWN = 3


class PushRejectedError(ValueError):
    """A pushed config that cannot be applied; the message is the sentence sent to the hub."""


def key_path(
    loc: Sequence[int | str], raw: Any, root: str = "config", union_tags: Collection[str] = ()
) -> str:
    """``config.zones[1] ('gate').polygon[0]`` from a pydantic error location, naming the zone
    by its id where the pushed item has one. ``union_tags`` are discriminator values pydantic
    puts in locations but operators never write; they are skipped."""
    out = root
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                out += f" ({node['id']!r})"
            continue
        if part in union_tags and not (isinstance(node, dict) and part in node):
            continue
        out += f".{part}"
        node = node.get(part) if isinstance(node, dict) else None
    return out


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def describe(
    err: ValidationError, raw: Any, root: str = "config", union_tags: Collection[str] = ()
) -> str:
    problems = [
        f"{key_path(e['loc'], raw, root, union_tags)}: {_clean(e['msg'])}" for e in err.errors()
    ]
    shown = "; ".join(problems[:_MAX_ERRORS_SHOWN])
    more = len(problems) - _MAX_ERRORS_SHOWN
    if more > 0:
        shown += f" (and {more} more)"
    return shown


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
            return (
                int(data["version"]),
                None if config is None else dict(config),
                int(data["rejected"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("ignored unreadable pushed config %s: %s", self.path, err)
            return None

    def save(self, version: int, config: Mapping[str, Any] | None, rejected: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = json.dumps(
            {"version": version, "config": config, "rejected": rejected}, sort_keys=True
        )
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

    def __init__(
        self,
        runtime: AgentRuntime,
        store: PushedConfigFile,
        parse: Callable[[Mapping[str, Any]], T],
        apply: Callable[[T], None],
    ) -> None:
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
            log.warning("pushed config version %d no longer fits the file config: %s", version, err)
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
                log.debug(
                    "ignored config version %d (applied %d, refused %d)",
                    version,
                    self.applied_version,
                    self.rejected_version,
                )
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
                    message,
                    f"the device cannot store the config under data_dir ({err}); "
                    "free space or fix permissions and push again",
                )
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
