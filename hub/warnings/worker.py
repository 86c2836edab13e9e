"""The recompute worker: each tick, the cells whose incidents changed (incidents.updated_at
past the watermark) or that got located alerts, the cells an alert-rate rule coloured (their
windows decay), lapsed overrides; and every N ticks all cells (ages and deadlines move with
time alone)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from hub.clock import Clock
from hub.warnings.service import Change, WarningService
from hub.workers import WorkerStatus, thread_alive

log = logging.getLogger(__name__)


class WarningsWorker:
    def __init__(self, service: WarningService, clock: Clock) -> None:
        self.service = service
        self.config = service.config
        self.clock = clock
        self.ticks = 0
        self.errors = 0
        self.changes = 0
        self._incidents_mark: datetime | None = None
        self._alerts_mark: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[Change]:
        """One pass; the first after a (re)start recomputes every cell."""
        now = self.clock.now()
        overlap = timedelta(seconds=self.config.watermark_overlap_s)
        incidents_mark, alerts_mark = self._incidents_mark, self._alerts_mark
        full = incidents_mark is None or self.ticks % self.config.full_every_ticks == 0
        self.ticks += 1
        if full or incidents_mark is None or alerts_mark is None:
            changes = self.service.recompute(None)
        else:
            cells = self.service.changed_since(
                incidents_mark - overlap, alerts_mark - overlap, now
            )
            changes = self.service.recompute(cells) if cells else []
        # Incidents are stamped by the same clock: with the overlap, a change stamped before
        # this pass but committed after it is still read by the next one.
        self._incidents_mark = now
        self._alerts_mark = now
        self.changes += len(changes)
        return changes

    def _run(self) -> None:
        while not self._stop.wait(self.config.tick_s):
            try:
                self.tick()
            except Exception:  # keep the worker alive; the next tick retries
                self.errors += 1
                log.exception("warning recompute failed")

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hub-warnings", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    def status(self) -> WorkerStatus:
        return WorkerStatus("warnings", thread_alive(self._thread))
