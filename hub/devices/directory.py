"""``DeviceDirectory``: the ingest gate's cache of active devices."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from edge.protocol import Inbound
from hub.devices import repository

log = logging.getLogger(__name__)


class DeviceDirectory:
    """Cache of active devices for the ingest gate; refreshed on change and periodically so
    replicas pick up each other's provisioning."""

    def __init__(
        self, engine: Engine, refresh_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.engine = engine
        self.refresh_s = refresh_s
        self._clock = clock
        self._active: dict[str, tuple[str, str]] = {}
        self._retired: set[str] = set()
        self._loaded_at = -1e18
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self.engine.connect() as conn:
            rows = repository.directory_rows(conn)
        with self._lock:
            self._active = {r.id: (r.site, r.kind) for r in rows if r.status == "active"}
            self._retired = {r.id for r in rows if r.status != "active"}
            self._loaded_at = self._clock()

    def gate(self, inbound: Inbound) -> str | None:
        """Ingest gate: None to accept, else the rejection reason."""
        if self._clock() - self._loaded_at > self.refresh_s:
            try:
                self.refresh()
            except SQLAlchemyError as err:
                # Keep judging with the cache we have; the next message retries the refresh.
                log.warning("device registry refresh failed, using the cached list: %s", err)
        topic = inbound.topic
        with self._lock:
            entry = self._active.get(topic.device)
            retired = topic.device in self._retired
        if entry is None:
            return "retired_device" if retired else "unknown_device"
        if entry != (topic.site, topic.kind.value):
            return "wrong_site_or_kind"
        return None
